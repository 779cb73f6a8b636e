"""Other kernels: specs, choosing a Debian build, the cache's layout, the guest's command -- and, slow, the real thing.

The pure tests use synthetic ``apt-cache dumpavail`` text and fake cache
trees (no network, no root).  The slow ones fetch Debian's 6.1 kernel (once:
the real cache is reused) and boot it under virtme-ng; they skip, saying why,
where the tools or the mirror are missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from netkit.errors import EnvironmentUnusable, InputError
from netkit.gate import kernels as gate_kernels
from netkit.kernels import apt, cache, fetch, guest, tools
from netkit.kernels.cache import find_cached, hz_of_config, list_cached
from netkit.kernels.candidates import Candidate, choose, packages_for, parse_candidates
from netkit.kernels.spec import KernelSpecError, parse_spec

DUMPAVAIL = """\
Package: linux-image-6.1.0-55-amd64
Version: 6.1.190-1
Depends: kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool

Package: linux-image-6.1.0-56-amd64
Version: 6.1.192-2
Depends: kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool

Package: linux-image-6.1.0-56-amd64-unsigned
Version: 6.1.192-2

Package: linux-image-6.1.0-56-cloud-amd64
Version: 6.1.192-2

Package: linux-image-6.12.117+deb12-amd64
Version: 6.12.117-1~deb12u1
Depends: kmod

Package: linux-image-6.12.117+deb13-amd64
Version: 6.12.117-1
Depends: kmod

Package: linux-image-6.12.118+deb13-amd64
Version: 6.12.118-1
Depends: kmod

Package: linux-image-6.12-amd64
Version: 6.12.117-1~deb12u1
Depends: linux-image-6.12.117+deb12-amd64

Package: linux-image-7.3.4+deb13-amd64
Version: 7.3.4-1~bpo13+1
Depends: dracut | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, linux-base-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1),
 linux-binary-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), linux-modules-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1)

Package: linux-binary-7.3.4+deb13-amd64
Version: 7.3.4-1~bpo13+1
Depends: linux-base-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1)

Package: linux-modules-7.3.4+deb13-amd64
Version: 7.3.4-1~bpo13+1
Depends: kmod, linux-base-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1)

Package: linux-base-7.3.4+deb13-amd64
Version: 7.3.4-1~bpo13+1

Package: linux-image-7.2.12+deb13-amd64
Version: 7.2.12-1~bpo13+1
Depends: linux-binary-7.2.12+deb13-amd64 (= 7.2.12-1~bpo13+1)

Package: linux-binary-7.2.12+deb13-amd64
Version: 7.2.12-1~bpo13+1
"""


# --- specs ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, kind, series, debian, release", [
    ("debian:6.1", "series", "6.1", None, None),
    ("debian:6.12", "series", "6.12", None, None),
    ("debian:7.x", "series", "7", None, None),
    ("debian:7", "series", "7", None, None),
    ("bookworm-6.12", "series", "6.12", 12, None),
    ("bookworm-security-6.12", "series", "6.12", 12, None),
    ("trixie-backports-7.x", "series", "7", 13, None),
    ("linux-image-6.1.0-56-amd64", "release", None, None, "6.1.0-56-amd64"),
    ("7.3.4+deb13-amd64", "release", None, None, "7.3.4+deb13-amd64"),
    ("build:6.12-hz1000", "build", "6.12", None, None),
    ("host", "host", None, None, None),
    ("/boot/vmlinuz-x", "image", None, None, "/boot/vmlinuz-x"),
])
def test_specs_parse(text, kind, series, debian, release):
    spec = parse_spec(text)
    assert (spec.kind, spec.series, spec.debian, spec.release) == (kind, series, debian, release)


@pytest.mark.parametrize("text", ["", "bogus", "debian:", "debian:six", "ubuntu-6.1", "linux-image-amd64",
                                  "6.1.0-56-cloud-arm64", "build:6.12"])
def test_a_bad_spec_is_an_input_error_listing_the_forms(text):
    with pytest.raises(InputError, match="debian:SERIES"):
        parse_spec(text)


def test_a_series_matches_whole_components_only():
    spec = parse_spec("debian:6.1")
    assert spec.matches_series("6.1.0-56-amd64", 12)
    assert not spec.matches_series("6.12.117+deb12-amd64", 12)  # 6.1 is not a prefix of 6.12 here


# --- choosing a build ----------------------------------------------------------------------------------------


def _choose(text):
    candidates, records = parse_candidates(DUMPAVAIL)
    chosen = choose(parse_spec(text), candidates)
    return chosen, packages_for(chosen, records)


def test_generic_amd64_builds_only():
    candidates, _ = parse_candidates(DUMPAVAIL)
    names = {c.package for c in candidates}
    assert "linux-image-6.1.0-56-amd64" in names
    assert not {n for n in names if "unsigned" in n or "cloud" in n or n == "linux-image-6.12-amd64"}


@pytest.mark.parametrize("text, release", [
    ("debian:6.1", "6.1.0-56-amd64"),  # the newest ABI
    ("debian:6.12", "6.12.118+deb13-amd64"),  # the newest release of the series, whichever Debian built it
    ("bookworm-6.12", "6.12.117+deb12-amd64"),  # Debian 12's build (bookworm-security)
    ("trixie-6.12", "6.12.118+deb13-amd64"),
    ("debian:7.x", "7.3.4+deb13-amd64"),
    ("debian:7.2", "7.2.12+deb13-amd64"),
    ("linux-image-6.1.0-55-amd64", "6.1.0-55-amd64"),
])
def test_a_spec_chooses_the_newest_matching_build(text, release):
    chosen, _ = _choose(text)
    assert chosen.release == release


def test_equal_versions_prefer_debian_12():
    a = Candidate("6.12.117+deb12-amd64", "linux-image-6.12.117+deb12-amd64", "6.12.117-1~deb12u1", 12)
    b = Candidate("6.12.117+deb13-amd64", "linux-image-6.12.117+deb13-amd64", "6.12.117-1", 13)
    assert choose(parse_spec("debian:6.12"), [b, a]) is a


def test_from_7x_the_image_binary_modules_and_base_packages_are_fetched():
    _, packages = _choose("debian:7.x")
    assert sorted(packages) == sorted(["linux-image-7.3.4+deb13-amd64", "linux-binary-7.3.4+deb13-amd64",
                                       "linux-modules-7.3.4+deb13-amd64", "linux-base-7.3.4+deb13-amd64"])
    _, packages = _choose("debian:6.1")
    assert packages == ["linux-image-6.1.0-56-amd64"]  # kmod, linux-base (unversioned) are not the kernel's


def test_an_unknown_series_names_the_series_offered():
    with pytest.raises(KernelSpecError, match=r"debian:5\.10.*6\.1, 6\.12, 7\.2, 7\.3"):
        _choose("debian:5.10")


def test_hz_is_read_from_the_config():
    assert hz_of_config("CONFIG_HZ_250=y\nCONFIG_HZ=250\n") == 250
    assert hz_of_config("# CONFIG_HZ is not set\n") is None


# --- the cache on disk ---------------------------------------------------------------------------------------


def _fake_kernel(root, release, hz=250, spec="debian:6.1", source="debian"):
    d = root / release
    (d / "boot").mkdir(parents=True)
    (d / "boot" / f"vmlinuz-{release}").write_bytes(b"\0" * 4096)
    (d / "boot" / f"config-{release}").write_text(f"CONFIG_HZ={hz}\n")
    (d / "lib" / "modules" / release).mkdir(parents=True)
    (d / cache.MARKER).write_text(json.dumps({"release": release, "spec": spec, "source": source}))
    return d


def test_list_shows_complete_kernels_only(tmp_path):
    _fake_kernel(tmp_path, "6.1.0-56-amd64")
    _fake_kernel(tmp_path, "6.12.117+deb12-amd64", spec="bookworm-6.12")
    _fake_kernel(tmp_path, "6.12.117-netkit-hz1000", hz=1000, spec="build:6.12-hz1000", source="build")
    (tmp_path / ".tmp-fetch-x" / "7.3.4+deb13-amd64").mkdir(parents=True)  # an interrupted fetch
    (tmp_path / "apt").mkdir()
    kernels = list_cached(str(tmp_path))
    assert [(k.release, k.hz) for k in kernels] == [("6.1.0-56-amd64", 250), ("6.12.117+deb12-amd64", 250),
                                                    ("6.12.117-netkit-hz1000", 1000)]
    assert kernels[0].size_bytes() >= 4096
    assert find_cached(parse_spec("debian:6.12"), str(tmp_path)).release == "6.12.117+deb12-amd64"
    assert find_cached(parse_spec("trixie-6.12"), str(tmp_path)) is None
    assert find_cached(parse_spec("build:6.12-hz1000"), str(tmp_path)).hz == 1000


def test_the_7x_layout_is_normalised(tmp_path):
    release = "7.3.4+deb13-amd64"
    mods = tmp_path / "usr" / "lib" / "modules" / release
    (mods / "kernel" / "net" / "sched").mkdir(parents=True)
    (mods / "vmlinuz").write_bytes(b"image")
    (mods / "config").write_text("CONFIG_HZ=250\n")
    (mods / "kernel" / "net" / "sched" / "sch_netem.ko.xz").write_bytes(b"mod")
    fetch._normalise(str(tmp_path), release, ["linux-binary-x"])
    assert (tmp_path / "boot" / f"vmlinuz-{release}").read_bytes() == b"image"
    assert (tmp_path / "boot" / f"config-{release}").exists()
    assert (tmp_path / "lib" / "modules" / release / "kernel" / "net" / "sched" / "sch_netem.ko.xz").exists()
    assert not (tmp_path / "usr").exists()


def test_a_package_without_an_image_is_refused(tmp_path):
    (tmp_path / "usr" / "share" / "doc").mkdir(parents=True)
    with pytest.raises(EnvironmentUnusable, match="no kernel image"):
        fetch._normalise(str(tmp_path), "7.3.4+deb13-amd64", ["linux-image-7.3.4+deb13-amd64"])


def test_a_failed_fetch_leaves_no_cache_behind(tmp_path, monkeypatch):
    """A spec no build matches (the lists are simulated): the cache this call created is gone again."""
    where = tmp_path / "kernels"
    monkeypatch.setenv(cache.CACHE_ENV, str(where))
    monkeypatch.setattr(apt.PrivateApt, "update", lambda self: os.makedirs(self.dir, exist_ok=True))
    monkeypatch.setattr(apt.PrivateApt, "lists_age_s", lambda self: 1.0)
    monkeypatch.setattr(apt.PrivateApt, "candidates", lambda self: parse_candidates(DUMPAVAIL))
    with pytest.raises(KernelSpecError, match="no Debian amd64 kernel matches 'debian:5.10'"):
        fetch.get("debian:5.10")
    assert not where.exists()


def test_the_private_apt_configuration_never_names_the_hosts_state(tmp_path):
    private = apt.PrivateApt(str(tmp_path))
    private._write_config()
    conf = (tmp_path / "apt" / "apt.conf").read_text()
    for key in ("Dir::State ", "Dir::State::status", "Dir::Cache ", "Dir::Etc::SourceList", "Dir::Etc::SourceParts"):
        line = next(line for line in conf.splitlines() if line.startswith(key))
        assert str(tmp_path) in line, line
    assert "#clear APT::Update::Post-Invoke-Success;" in conf  # the host's hooks do not run on our lists
    sources = (tmp_path / "apt" / "sources.list").read_text()
    assert "trixie-backports main" in sources and "bookworm-security main" in sources


def test_the_cli_refuses_a_bad_spec_with_exit_2_and_creates_nothing(tmp_path):
    env = dict(os.environ, **{cache.CACHE_ENV: str(tmp_path / "c")})
    done = subprocess.run([sys.executable, "-m", "netkit.kernels", "get", "debian:6.1", "bogus"], env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and "unknown kernel spec 'bogus'" in done.stderr
    assert not (tmp_path / "c").exists()  # every spec is checked before anything is fetched
    done = subprocess.run([sys.executable, "-m", "netkit.kernels", "list"], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "no kernels in" in done.stdout


# --- the guest -----------------------------------------------------------------------------------------------


def test_missing_tools_are_named_with_what_to_install(monkeypatch):
    monkeypatch.setattr(tools.shutil, "which", lambda *a, **k: None)
    monkeypatch.setattr(tools, "is_static_elf", lambda path: False)
    monkeypatch.setattr(tools.os.path, "exists", lambda path: False)
    with pytest.raises(EnvironmentUnusable) as caught:
        tools.find_tools()
    message = str(caught.value)
    assert "pip install virtme-ng" in message
    assert "apt-get install qemu-system-x86" in message
    assert "apt-get install busybox-static" in message
    assert "apt-get install kmod" in message  # virtme-ng runs depmod: without it, its traceback, not ours


def test_static_elf_detection(tmp_path):
    assert not tools.is_static_elf(sys.executable)  # dynamically linked
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    header[54:56] = (56).to_bytes(2, "little")  # phentsize, and no program header at all
    (tmp_path / "static").write_bytes(bytes(header))
    assert tools.is_static_elf(str(tmp_path / "static"))
    (tmp_path / "text").write_text("#!/bin/sh\n")
    assert not tools.is_static_elf(str(tmp_path / "text"))


def test_acceleration_can_be_forced(monkeypatch):
    monkeypatch.setenv(tools.ACCEL_ENV, "tcg")
    assert tools.accelerations() == ["tcg"]
    monkeypatch.setenv(tools.ACCEL_ENV, "hvf")
    with pytest.raises(EnvironmentUnusable, match="use kvm, tcg or auto"):
        tools.accelerations()


def test_the_guest_script_marks_the_start_and_keeps_the_exit_status():
    script = guest.guest_script("/tmp/w", ["-c", guest.CLI, "gate", "--json", f"{guest.WORKDIR}/gate.json"],
                                slow=True, python="/r/.venv/bin/python", cwd="/r")
    assert "/tmp/w/started" in script and "--json /tmp/w/gate.json" in script
    assert "KSFT_MACHINE_SLOW=yes " in script
    assert script.rstrip().endswith("mv /tmp/w/rc.tmp /tmp/w/rc")
    assert "KSFT_MACHINE_SLOW" not in guest.guest_script("/tmp/w", [], slow=False, python="p", cwd="/r")


def test_the_vng_command(tmp_path):
    k = cache.CachedKernel("6.1.0-56-amd64", "/c/6.1.0-56-amd64", "/c/6.1.0-56-amd64/boot/vmlinuz-6.1.0-56-amd64",
                           "/c/6.1.0-56-amd64/boot/config-6.1.0-56-amd64", 250)
    vng = {"vng": "vng"}
    tcg = guest.vng_command(vng, k, "/tmp/w", "tcg", cpus=2)
    assert "--disable-kvm" in tcg and tcg[tcg.index("--rodir") + 1] == "/boot=/c/6.1.0-56-amd64/boot"
    assert tcg[tcg.index("--rwdir") + 1] == "/tmp/w" and tcg[-2:] == ["--exec", "sh /tmp/w/run.sh"]
    assert "--disable-kvm" not in guest.vng_command(vng, k, "/tmp/w", "kvm", cpus=2)


# --- the real thing (slow) -----------------------------------------------------------------------------------


def _tools_or_skip():
    try:
        return tools.find_tools()
    except EnvironmentUnusable as exc:
        pytest.skip(str(exc))


def _debian_61_or_skip():
    """Debian's 6.1 from the cache; fetched (392 MiB from Debian's mirror) only with NETKIT_TEST_FETCH=1."""
    if os.environ.get("NETKIT_TEST_FETCH") != "1":
        try:
            cached = find_cached(parse_spec("debian:6.1"))
        except InputError as exc:  # the cache cannot be read (HOME still root's after su): the message says so
            pytest.skip(str(exc))
        if cached is None:
            pytest.skip("Debian's 6.1 kernel is not cached: fetch it with NETKIT_TEST_FETCH=1 "
                        "or `netkit kernels get debian:6.1`")
        return cached
    try:
        return fetch.get("debian:6.1", prefer_cached=True).kernel  # fetched once, then the cache answers
    except (EnvironmentUnusable, InputError) as exc:
        pytest.skip(f"cannot fetch Debian's 6.1 kernel here: {exc}")


def _guests_of(workdir_prefix):
    """Running qemu (or vng) processes whose command line names this prefix (this test's own directory)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if ("qemu-system" in cmd or "vng" in cmd or "virtme" in cmd) and workdir_prefix in cmd:
            found.append(int(pid))
    return found


@pytest.mark.slow
def test_debian_61_is_fetched_with_netem_as_a_module():
    kernel = _debian_61_or_skip()
    assert kernel.release.startswith("6.1.") and kernel.hz == 250
    mods = os.path.join(kernel.root, "lib", "modules", kernel.release)
    assert os.path.exists(os.path.join(mods, "modules.dep"))  # depmod'ed at fetch time
    assert any(name.startswith("sch_netem.ko") for name in os.listdir(os.path.join(mods, "kernel", "net", "sched")))


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(os.environ.get("NETKIT_TEST_GUESTS") != "1",
                    reason="boots Debian 6.1 (about 1.5 min under emulation): NETKIT_TEST_GUESTS=1; "
                           "CI runs scripts/check-other-kernel instead")
def test_the_gate_runs_in_debian_61_and_netem_loss_passes_there(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("the gate needs root inside the guest too")
    _tools_or_skip()
    _debian_61_or_skip()
    out = tmp_path / "gate-6.1.json"
    monkeypatch.setattr(guest.tempfile, "tempdir", str(tmp_path))  # the guest's shared directory: ours to check
    doc = gate_kernels.run_gate_on_kernel("debian:6.1", ["--only", "ipv4-idle-link-down-1/1/3",
                                                  "--only", "ipv4-idle-netem-loss-1/1/3"], str(out), echo=None)
    assert doc["kernel"]["release"].startswith("6.1.") and doc["kernel"]["hz"] == 250
    assert doc["guest"]["accel"] in ("kvm", "tcg") and doc["guest"]["boot_s"] > 0
    outcomes = {e["id"]: e["outcome"] for e in doc["scenarios"]}
    assert outcomes["ipv4-idle-netem-loss-1/1/3"] == "pass", doc["scenarios"]
    assert outcomes["ipv4-idle-link-down-1/1/3"] in ("pass", "xfail")
    assert json.loads(out.read_text())["guest"] == doc["guest"]
    assert not _guests_of(str(tmp_path))
    assert not [n for n in os.listdir(tmp_path) if n.startswith("netkit-guest-")]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_kernel_that_does_not_boot_fails_clearly_and_leaves_nothing(tmp_path, monkeypatch):
    _tools_or_skip()
    monkeypatch.setenv(tools.ACCEL_ENV, "tcg")
    image = tmp_path / "vmlinuz-broken"
    image.write_bytes(b"not a kernel\n" * 100)
    monkeypatch.setattr(guest.tempfile, "tempdir", str(tmp_path))  # the guest's shared directory: ours to check
    started = time.monotonic()
    with pytest.raises(EnvironmentUnusable, match="did not boot"):
        gate_kernels.run_gate_on_kernel(str(image), ["--only", "ipv4-idle-link-down-1/1/3"], str(tmp_path / "g.json"),
                                 echo=None)
    assert time.monotonic() - started < 240
    assert not _guests_of(str(tmp_path))  # no qemu left running
    assert sorted(os.listdir(tmp_path)) == ["vmlinuz-broken"]  # no shared directory, no document


# --- the gate's --kernel option ------------------------------------------------------------


def _doc(release, hz, accel, cells):
    scenarios = [{"id": sid, "outcome": outcome, "fault": "link-down", "reason": None,
                  "measured_s": {"min": m, "median": m, "max": m} if m is not None else None,
                  "window_s": [3.996, 4.14]} for sid, outcome, m in cells]
    totals = {k: sum(1 for _, o, _ in cells if o == k) for k in ("pass", "fail", "xfail", "xpass", "skip", "error")}
    from netkit.document.codec import from_dict

    return from_dict({"kernel": {"release": release, "hz": hz}, "wall_s": 12.0, "totals": totals, "scenarios": scenarios,
                      "guest": {"accel": accel, "boot_s": 21.5 if accel != "none" else 0}})


def _gate_args(tmp_path, **over):
    import argparse

    values = dict(kernel=["debian:6.1", "host"], only=["ipv4-*"], matrix=None, known="known.toml", baseline=None,
                  pcap_dir=None, repeat=2, slow_machine=False, json=str(tmp_path / "gate.json"), junit=None,
                  html=str(tmp_path / "gate.html"), tap=False, markdown=False)
    values.update(over)
    return argparse.Namespace(**values)


def test_the_kernel_option_runs_each_kernel_and_names_files_per_kernel(tmp_path, monkeypatch, capsys):
    calls = []

    def fake(spec, gate_args, out_json):
        calls.append((spec, gate_args, out_json))
        if spec == "host":
            return _doc("6.18.44", 250, "none", [("a", "pass", 4.096)])
        return _doc("6.1.0-56-amd64", 250, "tcg", [("a", "fail", 4.5)])

    monkeypatch.setattr(gate_kernels, "run_gate_on_kernel", fake)
    args = _gate_args(tmp_path)
    status = gate_kernels.gate_on_kernels(args, render=lambda name, doc: f"<{name} {doc.kernel.release}>")
    assert status == 1  # 6.1 failed
    assert [c[2] for c in calls] == [str(tmp_path / "gate.debian-6.1.json"), str(tmp_path / "gate.host.json")]
    assert calls[0][1] == ["--only", "ipv4-*", "--known", os.path.abspath("known.toml"), "--repeat", "2"]
    assert (tmp_path / "gate.host.html").read_text() == "<html 6.18.44>"
    assert "6.1.0-56-amd64 HZ=250 (tcg)" in capsys.readouterr().out


def test_the_kernel_option_writes_kcidb_and_nipa_files_per_kernel(tmp_path, monkeypatch):
    monkeypatch.setattr(gate_kernels, "run_gate_on_kernel", lambda spec, gate_args, out_json: _doc(
        "6.1.0-56-amd64" if spec != "host" else "6.18.44", 250, "tcg" if spec != "host" else "none",
        [("a", "pass", 4.096)]))
    args = _gate_args(tmp_path, html=None, kcidb=str(tmp_path / "kcidb.json"), kcidb_origin="lab",
                      kcidb_checkout_id=None, kcidb_build_id=None, nipa=str(tmp_path / "nipa.json"),
                      nipa_branch="net-next", nipa_executor="netkit", nipa_link=None)
    assert gate_kernels.gate_on_kernels(args, render=lambda name, doc: "") == 0
    guest = json.loads((tmp_path / "kcidb.debian-6.1.json").read_text())
    assert guest["builds"][0]["id"] == "lab:6.1.0-56-amd64"
    assert guest["tests"][0]["environment"]["misc"]["emulated"] is True
    host = json.loads((tmp_path / "nipa.host.json").read_text())
    assert host["branch"] == "net-next" and host["results"][0]["result"] == "pass"


def test_a_kernel_that_cannot_run_is_exit_4_and_the_others_still_run(tmp_path, monkeypatch, capsys):
    def fake(spec, gate_args, out_json):
        if spec != "host":
            raise EnvironmentUnusable("kernel x did not boot")
        return _doc("6.18.44", 250, "none", [("a", "pass", 4.096)])

    monkeypatch.setattr(gate_kernels, "run_gate_on_kernel", fake)
    assert gate_kernels.gate_on_kernels(_gate_args(tmp_path, html=None), render=lambda n, d: "") == 4  # cannot run here
    captured = capsys.readouterr()
    assert "--kernel debian:6.1: kernel x did not boot" in captured.err and "(host)" in captured.out
    with pytest.raises(InputError, match="unknown kernel spec 'debian:bogus'"):  # before anything runs
        gate_kernels.gate_on_kernels(_gate_args(tmp_path, kernel=["host", "debian:bogus"]), render=lambda n, d: "")
    with pytest.raises(InputError, match="--tap with several --kernel"):
        gate_kernels.gate_on_kernels(_gate_args(tmp_path, tap=True), render=lambda n, d: "")


def test_check_other_kernel_refuses_an_unknown_spec_with_exit_2(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("scripts/check-other-kernel re-runs itself through sudo")
    if shutil.which("qemu-system-x86_64") is None or not os.path.exists(os.path.join(os.path.dirname(sys.executable), "vng")):
        pytest.skip("would install qemu and virtme-ng first")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(["bash", os.path.join(root, "scripts", "check-other-kernel"), "debian:none"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
                          env=dict(os.environ, TMPDIR=str(tmp_path)))
    assert done.returncode == 2, done.stderr
    assert "unknown kernel spec 'debian:none'" in done.stderr
    assert not os.path.exists(tmp_path / "netkit-check-other-kernel.json")


def test_a_guest_runs_two_scenarios_at_once(monkeypatch):
    assert gate_kernels.gate_command(["--only", "x"], "/w/g.json", 2) == ["-c", guest.CLI, "gate", "--json", "/w/g.json",
                                                                   "--only", "x", "--jobs", "2"]
    assert gate_kernels.gate_command(["--jobs", "1"], "/w/g.json", 2)[-2:] == ["--jobs", "1"]  # the caller's choice wins
    assert gate_kernels.gate_command([], "/w/g.json", 2)[-2:] == ["--jobs", "2"]
    assert gate_kernels.gate_command([], "/w/g.json", None) == ["-c", guest.CLI, "gate", "--json", "/w/g.json"]


@pytest.mark.parametrize("args, says", [
    (["--hz", "123"], "--hz 123: the kernel offers 100, 250, 300 or 1000"),
    (["--jobs", "0"], "--jobs 0: give a whole number, 1 or more"),
    (["--frobnicate"], "unknown argument: --frobnicate"),
])
def test_build_kernel_refuses_bad_arguments_with_exit_2_before_building(args, says, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("scripts/build-kernel re-runs itself through sudo")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(["bash", os.path.join(root, "scripts", "build-kernel"), *args], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, env={**os.environ, "NETKIT_KERNEL_CACHE": str(tmp_path)})
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert os.listdir(tmp_path) == []


def test_the_gate_on_a_kernel_without_qemu_says_what_to_install_exits_4_and_leaves_nothing(tmp_path):
    env = {**os.environ, "PATH": os.path.dirname(sys.executable), "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "netkit.cli", "gate", "--kernel", "debian:6.1", "--only",
                           "ipv4-idle-link-down-1/1/3", "--json", str(tmp_path / "gate.json")],
                          env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert done.returncode == 4, done.stdout + done.stderr  # cannot run here
    assert "apt-get install qemu-system-x86" in done.stderr
    assert os.listdir(tmp_path) == []


def test_the_kernels_package_imports_nothing_of_the_gate():
    """netkit.kernels fetches and boots kernels; the gate's --kernel option (netkit.gate.kernels) is built on it."""
    code = ("import pkgutil, importlib, sys, netkit.kernels as k\n"
            "for m in pkgutil.iter_modules(k.__path__): importlib.import_module(f'netkit.kernels.{m.name}')\n"
            "print(sorted(n for n in sys.modules if n.startswith('netkit.gate')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
