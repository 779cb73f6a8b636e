"""What this machine offers netkit: privileges, kernel features, tools.

Every check probes the real thing where it can, inside a throwaway anonymous
namespace (never in the host namespace): a feature listed in the kernel config
can still be unusable, and a feature can exist without a readable config.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass

from .kernel import kernel_info
from .lab import tracefs
from .lab.lab import Lab
from .lab.namespaces import Namespace
from .lab.qdisc import qdisc_probe
from .privileges import missing_privileges


@dataclass(frozen=True)
class Check:
    name: str
    present: bool
    detail: str  # what was found, and what its absence means for netkit
    essential: bool  # without it netkit cannot run at all


def _try(probe: Callable[[], str]) -> tuple[bool, str]:
    try:
        return True, probe()
    except Exception as exc:  # a probe failing is the finding, whatever the reason
        return False, str(exc) or type(exc).__name__


def _probe_netns() -> str:
    Namespace.create("nk-doctor").close()
    return "unshare(CLONE_NEWNET) works"


def _probe_veth() -> str:
    with Lab():
        pass
    return "a veth pair between two namespaces builds and tears down"


NO_TRACE = "runs are judged from the observer and the wire; evidence: observer"


def _probe_tracefs() -> str:
    """Mounted (or mountable: then mounted, as systemd does at boot), and a private instance builds and goes."""
    before = tracefs._mounted()
    root = tracefs.tracefs_root()
    tracefs.TraceInstance.create({}, root=root).close()
    where = f"mounted at {root}" if before else f"was not mounted; mounted it at {root}"
    return f"{where}; a private instance builds and tears down"


def _probe_trace_events() -> str:
    """Every event a timer ledger reads, by tracefs's own name (group:event)."""
    root = tracefs.tracefs_root()
    missing = tracefs.missing_events(root)
    if missing:
        raise LookupError(f"this kernel has no {', '.join(e.replace('/', ':') for e in missing)}")
    lacking = tracefs.missing_fields(root)
    if lacking:
        raise LookupError(f"this kernel's {'; '.join(lacking)}")
    return ", ".join(e.replace("/", ":") for e in tracefs.EVENTS)


def _tool(name: str) -> Callable[[], str]:
    def probe() -> str:
        path = shutil.which(name)
        if not path:
            raise FileNotFoundError(f"{name} not on PATH")
        return path

    return probe


def run_checks() -> list[Check]:
    kernel = kernel_info()
    checks = [Check("kernel", True, f"{kernel.release}, HZ={kernel.hz} (from {kernel.hz_source})", False)]
    privileges = missing_privileges()
    checks.append(Check("root", privileges is None, privileges or "CAP_SYS_ADMIN and CAP_NET_ADMIN held", True))
    if privileges:
        return checks  # every other probe needs the privileges
    probes: list[tuple[str, Callable[[], str], bool, str]] = [
        ("network namespaces", _probe_netns, True, "no labs can be built"),
        ("veth", _probe_veth, True, "the two lab namespaces cannot be joined"),
        ("nsenter", _tool("nsenter"), False, "programs cannot be started inside a lab (util-linux)"),
        ("setpriv", _tool("setpriv"), False, "programs cannot be started inside a lab (util-linux)"),
        ("nftables", _tool("nft"), False, "the blackhole fault falls back to iptables"),
        ("iptables", _tool("iptables"), False, "no fallback for the blackhole fault without nftables"),
        ("sch_netem", qdisc_probe("netem", loss=100), False, "the netem-loss fault is skipped"),
        ("pfifo limit 0", qdisc_probe("pfifo", limit=0), False, "the local-drop fault is skipped"),
        ("tcpdump", _tool("tcpdump"), False, "captures use netkit's own packet socket"),
        ("tracefs", _probe_tracefs, False, NO_TRACE),
        ("tracefs events", _probe_trace_events, False, NO_TRACE),
    ]
    for name, probe, essential, meaning in probes:
        ok, detail = _try(probe)
        checks.append(Check(name, ok, detail if ok else f"{detail} -> {meaning}", essential))
    return checks


def usable(checks: list[Check]) -> bool:
    return all(c.present for c in checks if c.essential)


def as_dicts(checks: list[Check]) -> list[dict[str, object]]:
    return [asdict(c) for c in checks]
