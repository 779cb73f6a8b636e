"""The layers: the import contracts hold, the checker catches a planted violation, the pure parts need no pyroute2.

The contracts are ``[tool.importlinter]`` in pyproject.toml (``scripts/test``
runs ``lint-imports`` after mypy).  A planted violation is checked on a copy
of the package, so the tree under test is never touched.  The pure parts are
imported in a fresh interpreter whose ``import pyroute2`` fails: a scenario
is built and predicted there, which is what a docstring's "pure" promises.
"""

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
needs_lint_imports = pytest.mark.skipif(not LINT_IMPORTS.exists(),
                                        reason="import-linter is not installed: pip install -e '.[test]'")
CONTRACTS = {  # contract id -> the first words of its name, as lint-imports reports it
    "pure": "The pure layers touch no kernel",
    "lab": "The lab composes nothing",
    "kernels": "Other kernels run the gate but do not import it",
    "acyclic": "No import cycles",
}


def lint_imports(root: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the package under ``root`` with ``root``'s pyproject.toml (that copy, not the installed one)."""
    args = [str(LINT_IMPORTS), "--no-logo", "--no-cache", *(f"--contract={c}" for c in contracts)]
    return subprocess.run(args, cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)


@needs_lint_imports
def test_the_tree_keeps_every_contract():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in CONTRACTS.values():
        assert re.search(re.escape(name) + r".*?KEPT", done.stdout, re.S), done.stdout


@needs_lint_imports
@pytest.mark.parametrize("contract, module, planted", [
    ("pure", "netkit/model/wheel.py", "from ..lab import namespaces"),  # the model reaching for the kernel
    ("pure", "netkit/report/text.py", "import subprocess"),
    ("pure", "netkit/scenario/spec.py", "from ..lab.faults import get_fault"),  # a scenario is a plain value
    ("lab", "netkit/lab/proc.py", "from ..scenario import spec"),  # the lab reaching up to a composition
    ("kernels", "netkit/kernels/cache.py", "from ..gate import summary"),
    ("acyclic", "netkit/evidence/frames.py", "from . import wire"),  # wire -> classify -> frames -> wire
])
def test_a_planted_violation_breaks_its_contract(tmp_path, contract, module, planted):
    shutil.copytree(ROOT / "netkit", tmp_path / "netkit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    assert lint_imports(tmp_path, contract).returncode == 0  # the copy keeps it, until:
    path = tmp_path / module
    text = path.read_text()
    head, tail = text.split("\nfrom __future__ import annotations\n", 1) if "from __future__" in text else ("", text)
    path.write_text(head + "\nfrom __future__ import annotations\n" + planted + "  # planted\n" + tail)
    done = lint_imports(tmp_path, contract)
    assert done.returncode != 0, done.stdout
    assert CONTRACTS[contract] in done.stdout and "BROKEN" in done.stdout, done.stdout


# A fresh interpreter in which pyroute2 cannot be imported, as on a machine without it.
NO_PYROUTE2 = """
import sys
from importlib.abc import MetaPathFinder

class NoPyroute2(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "pyroute2" or name.startswith("pyroute2."):
            raise ImportError(f"{name} is blocked by this test")
        return None

sys.meta_path.insert(0, NoPyroute2())
"""


def run_without_pyroute2(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", NO_PYROUTE2 + textwrap.dedent(code)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_import_netkit_model_loads_no_pyroute2():
    out = run_without_pyroute2("""
        import netkit.model, netkit.evidence.verdict, netkit.report.text, netkit.report.check, netkit.report.inspect
        import netkit.check.infer, netkit.check.verdict, netkit.inspect.assess, netkit.inspect.procnet
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("pyroute2", "subprocess")
                        or m.startswith(("netkit.lab", "netkit.scenario.run")))
        print(loaded)
    """)
    assert out.strip() == "[]"


def test_a_scenario_is_built_and_predicted_without_pyroute2():
    out = run_without_pyroute2("""
        from netkit import KeepaliveSettings, Scenario
        from netkit.kernel import KernelInfo
        from netkit.model import predict
        hz250 = KernelInfo("test", 250, "test")
        for s in (Scenario(KeepaliveSettings(1, 1, 3), "ipv6", "blackhole"),
                  Scenario(KeepaliveSettings(2, 1, 3), fault="middlebox-forgets", topology="routed",
                           middlebox_timeout_s=1),
                  Scenario(state="syn-sent", fault="netem-loss", syn_retries=2)):
            print(s.id, predict(s, hz250).expected_s, s.fault_info.wire_blind is None)
        try:
            Scenario(fault="nope")
        except Exception as exc:
            print(type(exc).__name__, exc)
        print(sorted(m for m in sys.modules if m.startswith(("pyroute2", "netkit.lab"))))
        try:
            from netkit import Lab  # the lab itself still needs pyroute2: proof that it is blocked here
        except ImportError as exc:
            print("Lab:", exc)
    """)
    assert out.splitlines() == [
        "ipv6-idle-blackhole-1/1/3 4.0 True",
        "ipv4-idle-middlebox-forgets-2/1/3-routed-ct1s-drop 5.0 True",
        "ipv4-syn-sent-netem-loss-syn2 7.0 False",
        "UnknownChoice unknown fault 'nope': choose one of link-down, peer-gone, blackhole, one-way, peer-reboot, "
        "netem-loss, local-drop",
        "[]",
        "Lab: pyroute2 is blocked by this test",
    ]


def test_the_package_names_stay_importable():
    import netkit
    import netkit.scenario

    for name in netkit.__all__:
        assert getattr(netkit, name) is not None, name
        assert name in dir(netkit)
    assert netkit.run_scenario is netkit.scenario.run_scenario
    from netkit.scenario import failure_pcap_path, run_scenario
    from netkit.scenario.run import failure_pcap_path as home
    from netkit.scenario.run import run_scenario as run_home

    assert (run_scenario, failure_pcap_path) == (run_home, home)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        netkit.nothing_here  # noqa: B018


def test_each_lab_fault_carries_the_pure_record_of_its_name():
    from netkit import faults
    from netkit.errors import UnknownChoice
    from netkit.lab.faults import FAULTS, MIDDLEBOX_FORGETS, PEER_HANGS, fault_object, get_fault

    assert [f.info for f in FAULTS.values()] == list(faults.DIRECT_FAULTS.values())
    assert all(get_fault(name).name == name and fault_object(name) is get_fault(name) for name in faults.DIRECT_FAULTS)
    assert fault_object("middlebox-forgets") is MIDDLEBOX_FORGETS and MIDDLEBOX_FORGETS.info is faults.MIDDLEBOX_FORGETS
    assert fault_object("peer-hangs") is PEER_HANGS and PEER_HANGS.info is faults.PEER_HANGS
    for named_only in faults.NAMED_ONLY:  # not ways to break the direct lab (check-client's, say)
        with pytest.raises(UnknownChoice, match=f"unknown fault '{named_only}': choose one of link-down, "):
            get_fault(named_only)


def test_exit_codes_are_defined_once():
    defined = [f"{path.relative_to(ROOT)}: {line.strip()}" for path in sorted((ROOT / "netkit").rglob("*.py"))
               for line in path.read_text().splitlines() if re.match(r"\s*EXIT_\w+(\s*,\s*EXIT_\w+)*\s*=", line)]
    assert defined and all(entry.startswith("netkit/exitcodes.py:") for entry in defined), defined
