"""Run netkit's gate inside another kernel: virtme-ng boots it with the host's root as the guest's root.

:func:`run_gate_on_kernel` is what ``netkit gate --kernel IMAGE|SPEC|host``
calls once per kernel.  The guest sees the host's file system read-only (with
writable tmpfs overlays on /etc, /tmp, /var ...), so the repository and its
``.venv`` are there unchanged; a temporary directory is shared read-write for
the gate document and the guest's output, and the kernel's own ``boot/`` is
mounted on the guest's ``/boot`` so that netkit reads the guest kernel's
CONFIG_HZ.  virtme-ng links the kernel's modules (from the cache) into the
guest's ``/lib/modules``: Debian's netem is a module, loaded on first use.

Acceleration: KVM is tried first when ``/dev/kvm`` is usable, and the run is
repeated under QEMU's software emulation (TCG, ``--disable-kvm``) if the guest
never reached the gate; the document's ``guest.accel`` says which ran.  A
presence check is not enough: on some hosts ``/dev/kvm`` exists but cannot run
a stock kernel (a PVM backend: qemu fails with "failed to set MSR").
``NETKIT_GUEST_ACCEL=kvm|tcg`` forces one.  Under TCG the guest is slow, so
the gate runs with ``KSFT_MACHINE_SLOW=yes`` (late-only misses become XFAIL).

The guest's output does not depend on virtio-serial ports (virtme-ng's init
needs udev to find them, which a host without udev lacks): the gate writes
its document, output and exit status into the shared directory, and the
host follows its progress from there.  Every failure -- a missing tool, a
kernel that does not boot, a gate that does not finish in time -- raises
with the reason, after the virtual machine's whole process group is killed
and the temporary directory removed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any, Literal

from ..errors import EnvironmentUnusable
from .cache import CachedKernel, get

ACCEL_ENV = "NETKIT_GUEST_ACCEL"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GUEST_MEMORY = "4G"  # the gate forks a worker per scenario
GUEST_TIMEOUT_S = 1200.0  # boot + the whole gate under emulation; past this the guest is killed
# What emulation does to the deaths, measured (scripts/kernel-matrix's note; README): no window is widened for it.
TCG_PERTURBATION = ("measured 2026-11-29, the same 20 scenarios x3 runs, 2 at a time, host 6.18 vs Debian 6.1 under "
                    "TCG: keepalive deaths' median lateness equal within 16 ms (the timer wheel's step for 1 s "
                    "timers is 32 ms), retransmission (TCP_USER_TIMEOUT) deaths 4-9 ms later; the guest's timers "
                    "run on its own jiffies. Emulation slows the guest's user space instead (applying a fault, "
                    "building labs): hence at most GUEST_JOBS scenarios at once, and KSFT_MACHINE_SLOW=yes, which "
                    "only turns late-only misses into XFAIL; windows are not widened")
GUEST_JOBS = 2  # scenarios at once in a guest: measured to keep every verdict valid under TCG on 2 vCPUs
BOOT_TIMEOUT_S = 300.0  # from start to the gate's first line of shell, under TCG
KVM_BOOT_TIMEOUT_S = 90.0  # under KVM a boot takes seconds; a KVM that hangs (seen here) falls back to TCG
# The command the guest runs: netkit's CLI entry point, whichever module holds it (``netkit.cli`` as a module
# or a package), without relying on ``python -m`` or a console script.
WORKDIR = "@WORKDIR@"  # in cli_args: the directory shared with the guest
CLI = "import sys; from netkit.cli import main; sys.exit(main())"


class GuestFailed(EnvironmentUnusable):
    """The kernel did not boot, or the gate did not finish inside it; the message has the guest's last words."""


class _BootTimeout(Exception):
    """The guest did not reach the gate in time (the virtual machine is already killed)."""


def _venv_bin() -> str:
    return os.path.dirname(sys.executable)


def find_tools() -> dict[str, str]:
    """virtme-ng's vng, qemu, a static busybox and depmod, or EnvironmentUnusable saying what to install."""
    missing = []
    vng = shutil.which("vng", path=f"{_venv_bin()}:{os.environ.get('PATH', '')}")
    if vng is None:
        missing.append(f"virtme-ng ({_venv_bin()}/pip install virtme-ng)")
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        missing.append("qemu (apt-get install qemu-system-x86)")
    busybox = next((p for p in ("/bin/busybox", "/usr/bin/busybox", "/usr/sbin/busybox") if os.path.isfile(p)), None)
    if busybox is None or not is_static_elf(busybox):
        missing.append("a static busybox for the guest's initramfs and its 9p root (apt-get install busybox-static)")
    if shutil.which("depmod") is None and not os.path.exists("/sbin/depmod"):
        missing.append("depmod, which virtme-ng runs for the guest's modules (apt-get install kmod)")
    if missing:
        raise EnvironmentUnusable(f"running the gate in another kernel needs {'; '.join(missing)}")
    assert vng and qemu and busybox
    return {"vng": vng, "qemu": qemu, "busybox": busybox}


def is_static_elf(path: str) -> bool:
    """True for an ELF executable without a program interpreter (PT_INTERP), i.e. statically linked."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only (amd64)
                return False
            order: Literal["little", "big"] = "little" if head[5] == 1 else "big"
            phoff = int.from_bytes(head[32:40], order)
            phentsize = int.from_bytes(head[54:56], order)
            phnum = int.from_bytes(head[56:58], order)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    return all(int.from_bytes(table[i:i + 4], order) != 3 for i in range(0, len(table), phentsize))


def kvm_usable() -> bool:
    """/dev/kvm can be opened: worth trying (it may still fail to run the kernel; see the module docstring)."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


_kvm_failed: list[str] = []  # this process saw qemu itself fail under KVM: do not try it for every kernel


def accelerations() -> list[str]:
    forced = os.environ.get(ACCEL_ENV, "").strip().lower()
    if forced in ("kvm", "tcg"):
        return [forced]
    if forced not in ("", "auto"):
        raise EnvironmentUnusable(f"{ACCEL_ENV}={forced!r}: use kvm, tcg or auto")
    return ["kvm", "tcg"] if kvm_usable() and not _kvm_failed else ["tcg"]


def resolve(kernel: str, say: Callable[[str], None] | None = None) -> CachedKernel:
    """A spec or image path to a kernel on disk (fetched into the cache when needed)."""
    return get(kernel, prefer_cached=True, say=say).kernel


def guest_script(workdir: str, python_args: list[str], *, slow: bool, python: str, cwd: str) -> str:
    """The shell script the guest runs: mark the start, run ``python <python_args>``, keep its output and status."""
    env = "KSFT_MACHINE_SLOW=yes " if slow else ""
    w = shlex.quote(workdir)
    python_args = [a.replace(WORKDIR, workdir) for a in python_args]
    return "\n".join([
        "#!/bin/sh",
        f"echo \"$(cat /proc/uptime)\" > {w}/started",
        f"cd {shlex.quote(cwd)} || exit 125",
        f"{env}PYTHONDONTWRITEBYTECODE=1 {shlex.quote(python)} {shlex.join(python_args)} > {w}/stdout 2> {w}/stderr",
        f"echo $? > {w}/rc.tmp && mv {w}/rc.tmp {w}/rc",
        "",
    ])


def vng_command(tools: dict[str, str], kernel: CachedKernel, workdir: str, accel: str, *, cpus: int,
                memory: str = GUEST_MEMORY) -> list[str]:
    argv = [tools["vng"], "--run", kernel.image, "--cpus", str(cpus), "--memory", memory,
            "--rwdir", workdir, "--cwd", REPO_ROOT, "--verbose", "--exec", f"sh {workdir}/run.sh"]
    if accel == "tcg":
        argv.insert(3, "--disable-kvm")
    if kernel.boot_dir:
        argv[3:3] = ["--rodir", f"/boot={kernel.boot_dir}"]
    return argv


class _Follower:
    """Copy the guest's stderr (the gate's progress) to ours as it grows, each line prefixed."""

    def __init__(self, path: str, prefix: str, out: Any) -> None:
        self.path, self.prefix, self.out, self.offset, self.partial = path, prefix, out, 0, ""

    def poll(self) -> None:
        if self.out is None:
            return
        try:
            with open(self.path, errors="replace") as f:
                f.seek(self.offset)
                data = f.read()
                self.offset = f.tell()
        except OSError:
            return
        lines = (self.partial + data).split("\n")
        self.partial = lines.pop()
        for line in lines:
            text = line.split("\r")[-1]
            if text.strip():
                self.out.write(f"{self.prefix}{text}\n")
        self.out.flush()


def _boot(tools: dict[str, str], kernel: CachedKernel, workdir: str, accel: str, cpus: int,
          timeout_s: float, echo: Any) -> tuple[int | None, float | None, float]:
    """One attempt: (the guest command's exit status or None, boot seconds or None, wall seconds)."""
    console = os.path.join(workdir, "console.log")
    env = dict(os.environ, PATH=f"{_venv_bin()}:{os.environ.get('PATH', '')}")
    started = time.monotonic()
    with open(console, "wb") as log:
        proc = subprocess.Popen(vng_command(tools, kernel, workdir, accel, cpus=cpus), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    follower = _Follower(os.path.join(workdir, "stderr"), f"[{kernel.release}] ", echo)
    boot_s = None
    try:
        while proc.poll() is None:
            now = time.monotonic() - started
            if boot_s is None and os.path.exists(os.path.join(workdir, "started")):
                boot_s = now
                if echo:
                    echo.write(f"[{kernel.release}] booted under {accel} in {boot_s:.1f} s; running the gate\n")
            limit = KVM_BOOT_TIMEOUT_S if accel == "kvm" else BOOT_TIMEOUT_S
            if boot_s is None and now > limit:
                raise _BootTimeout(f"did not reach the gate in {limit:.0f} s under {accel}; last console lines:\n"
                                   f"{_tail(console)}")
            if now > timeout_s:
                raise GuestFailed(f"the gate in kernel {kernel.release} did not finish in {timeout_s:.0f} s "
                                  f"(booted in {boot_s or 0:.1f} s, under {accel}); its last output:\n"
                                  f"{_tail(os.path.join(workdir, 'stderr'))}")
            follower.poll()
            time.sleep(0.2)
    finally:
        _kill_group(proc)
    follower.poll()
    if boot_s is None and os.path.exists(os.path.join(workdir, "started")):
        boot_s = time.monotonic() - started
    try:
        with open(os.path.join(workdir, "rc")) as f:
            rc: int | None = int(f.read().strip())
    except (OSError, ValueError):
        rc = None
    return rc, boot_s, time.monotonic() - started


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """End vng, qemu and anything they started (their own session), and reap vng."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group, if any
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as f:
            text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\x1b.|[\x00-\x08\x0b-\x1f\x7f]", "",
                          f.read().replace("\r", "\n"))
    except OSError:
        return "    (none)"
    kept = [line.strip()[:300] for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(f"    {line}" for line in kept) or "    (none)"


def run_in_kernel(kernel: str, python_args: list[str], *, echo: Any = sys.stderr,
                  timeout_s: float = GUEST_TIMEOUT_S, cpus: int | None = None,
                  collect: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Boot ``kernel`` and run netkit's Python with ``python_args`` inside (``@WORKDIR@`` in them is the shared
    directory); ``collect(workdir)`` runs before the cleanup.

    Returns {kernel, release, image, accel, boot_s, wall_s, slow, exit_status, stdout, tried}.
    """
    tools = find_tools()
    def say(text: str) -> None:
        if echo:
            echo.write(f"netkit: {text}\n")
            echo.flush()

    found = resolve(kernel, say)
    cpus = cpus or min(os.cpu_count() or 1, 4)
    tried: list[str] = []
    workdir = tempfile.mkdtemp(prefix="netkit-guest-")
    try:
        plan = accelerations()
        for accel in plan:
            for name in ("started", "rc", "stdout", "stderr"):
                if os.path.exists(os.path.join(workdir, name)):
                    os.unlink(os.path.join(workdir, name))
            with open(os.path.join(workdir, "run.sh"), "w") as f:
                f.write(guest_script(workdir, python_args, slow=accel == "tcg", python=sys.executable, cwd=REPO_ROOT))
            try:
                rc, boot_s, wall_s = _boot(tools, found, workdir, accel, cpus, timeout_s, echo)
                why = _tail(os.path.join(workdir, "console.log"), 4)
            except _BootTimeout as timeout:
                rc, boot_s, why = None, None, f"    {timeout}"
            if boot_s is None:
                tried.append(f"{accel}: the guest never reached the gate:\n{why}")
                if accel == "kvm" and "qemu-system" in why and "kvm" in why.lower():
                    _kvm_failed.append(why)  # qemu's own KVM error, not this kernel's: the same for every kernel
                if echo and accel == "kvm" and "tcg" in plan:
                    echo.write(f"[{found.release}] KVM cannot run this kernel here; falling back to TCG "
                               f"(software emulation, slow):\n{why}\n")
                continue
            if rc is None:
                raise GuestFailed(f"the guest (kernel {found.release}, {accel}) ended before the gate finished "
                                  f"(a panic or an out-of-memory kill?); last console lines:\n"
                                  f"{_tail(os.path.join(workdir, 'console.log'))}\nlast gate output:\n"
                                  f"{_tail(os.path.join(workdir, 'stderr'))}")
            with open(os.path.join(workdir, "stdout"), errors="replace") as f:
                stdout = f.read()
            if collect:
                collect(workdir)
            return {"kernel": kernel, "release": found.release, "image": found.image, "accel": accel,
                    "boot_s": round(boot_s, 2), "wall_s": round(wall_s, 2), "slow": accel == "tcg",
                    "hz": found.hz, "exit_status": rc, "stdout": stdout, "stderr_path": None, "tried": tried}
        raise GuestFailed(f"kernel {found.release} ({found.image}) did not boot: "
                          + "; ".join(tried))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def gate_command(gate_args: list[str], json_path: str, jobs: int | None) -> list[str]:
    """Python arguments running ``netkit gate --json json_path gate_args``, at most ``jobs`` scenarios at once."""
    gate = ["gate", "--json", json_path, *gate_args]
    if jobs is None or "--jobs" in gate_args:
        return ["-c", CLI, *gate]
    return ["-c", CLI, *gate, "--jobs", str(jobs)]


def run_gate_on_kernel(kernel: str, gate_args: list[str], out_json: str, *, echo: Any = sys.stderr,
                       timeout_s: float = GUEST_TIMEOUT_S, jobs: int | None = GUEST_JOBS) -> dict[str, Any]:
    """Run ``netkit gate --json <out_json> <gate_args>`` in ``kernel`` (a spec, an image path, or "host").

    In a guest at most ``jobs`` scenarios run at once (``gate --jobs``): under emulation the guest's user
    space is 4-5x slower, and with every scenario at once half the cells missed their fault deadline (the
    kernel's timers, on the guest's own jiffies, were on time); on the host the gate runs as it always does.

    Returns the loaded gate document with a ``guest`` entry added (also written to ``out_json``):
    {kernel, release, image, accel ("kvm" | "tcg" | "none" for the host), boot_s, wall_s, slow, exit_status}.
    Raises EnvironmentUnusable (a tool is missing, the kernel did not boot) or InputError (unknown spec).
    """
    from ..gate.codec import read as load  # the document's checked JSON; imported late (netkit's modules are moving)

    out_json = os.path.abspath(out_json)
    if kernel == "host":
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-c", CLI, "gate", "--json", out_json, *gate_args],
                              stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
        if not os.path.exists(out_json):
            raise GuestFailed(f"the gate on the host wrote no document (exit {done.returncode})")
        doc = load(out_json)
        doc["guest"] = {"kernel": "host", "release": os.uname().release, "image": None, "accel": "none",
                        "boot_s": 0.0, "wall_s": round(time.monotonic() - started, 2),
                        "slow": bool(doc.get("machine", {}).get("slow")), "exit_status": done.returncode}
        _write(out_json, doc)
        return doc

    copied: dict[str, bool] = {}

    def collect(workdir: str) -> None:
        src = os.path.join(workdir, "gate.json")
        if os.path.exists(src):
            shutil.copyfile(src, out_json)
            copied["json"] = True

    info = run_in_kernel(kernel, gate_command(gate_args, f"{WORKDIR}/gate.json", jobs), echo=echo,
                         timeout_s=timeout_s, collect=collect)
    if not copied:
        raise GuestFailed(f"the gate in kernel {info['release']} ({info['accel']}) wrote no document "
                          f"(exit {info['exit_status']}); its output:\n{info['stdout'][-2000:]}")
    doc = load(out_json)
    doc["guest"] = {k: info[k] for k in ("kernel", "release", "image", "hz", "accel", "boot_s", "wall_s", "slow",
                                         "exit_status")}
    doc["guest"]["jobs"] = jobs
    doc["guest"]["kvm_failure"] = info["tried"][0] if info["tried"] else (
        f"not tried: KVM failed earlier in this process ({_kvm_failed[0].strip()})" if _kvm_failed and
        info["accel"] == "tcg" else None)
    doc["guest"]["perturbation"] = TCG_PERTURBATION.replace("GUEST_JOBS", str(jobs)) if info["slow"] else None
    _write(out_json, doc)
    return doc


def _write(path: str, doc: dict[str, Any]) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, path)
