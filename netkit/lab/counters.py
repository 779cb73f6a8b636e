"""The kernel's per-namespace SNMP/TcpExt counters (``/proc/net/netstat`` and ``/proc/net/snmp``).

They count what the kernel *did*, independently of any packet capture: with
the peer link down, probes never reach a wire (the qdisc drops them before
any tap), yet ``TcpExt: TCPKeepAlive`` counts every one sent.
"""

from __future__ import annotations

from .namespaces import Namespace


def parse_netstat(text: str) -> dict[str, int]:
    """``{"TcpExt.TCPKeepAlive": 3, ...}`` from /proc/net/netstat's header/value line pairs."""
    counters: dict[str, int] = {}
    lines = text.splitlines()
    for header, values in zip(lines[::2], lines[1::2], strict=True):
        prefix, names = header.split(":", 1)
        _, numbers = values.split(":", 1)
        for name, number in zip(names.split(), numbers.split(), strict=True):
            counters[f"{prefix}.{name}"] = int(number)
    return counters


def tcpext(namespace: Namespace) -> dict[str, int]:
    """All counters of ``namespace`` (read from a thread inside it): TcpExt and the rest of netstat, and snmp's."""
    return {**parse_netstat(namespace.read_proc_net("snmp")), **parse_netstat(namespace.read_proc_net("netstat"))}


def tcpext_counts(namespace: Namespace, names: tuple[str, ...]) -> dict[str, int]:
    """``{"TCPKeepAlive": 3, ...}``: the named TcpExt counters of ``namespace`` (0 if this kernel lacks one).

    A name TcpExt lacks is looked up among the Tcp counters (``RetransSegs``).
    """
    found = tcpext(namespace)
    return {name: found.get(f"TcpExt.{name}", found.get(f"Tcp.{name}", 0)) for name in names}


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """What each counter of ``before`` grew by (from one tcpext_counts to the next)."""
    return {name: after[name] - before[name] for name in before}
