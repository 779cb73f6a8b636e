"""``netkit inspect``'s text: the one-line verdict first, then where the values come from, then one row per socket. Pure."""

from __future__ import annotations

from ..inspect.assess import (
    EFFECTIVE,
    NOT_SET,
    SOCKET,
    SOCKET_OR_NAMESPACE,
    UNKNOWN,
    ProcessAssessment,
    Setting,
    SocketAssessment,
)
from ..tcpsocket import WILDCARDS

MARKS = {SOCKET: "*", SOCKET_OR_NAMESPACE: "=", EFFECTIVE: ""}
LEGEND = ("* set on the socket (differs from its namespace's sysctl); = its namespace's sysctl value "
          "(inherited, or set to the same value: the kernel cannot tell which)")
COLUMNS = ("fd", "state", "local", "remote", "keepalive", "idle", "intvl", "cnt", "user timeout", "idle: noticed",
           "in flight: noticed")


def _endpoint(address: str, port: int) -> str:
    if address in WILDCARDS and port == 0:
        return "*"
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _setting(s: Setting, unit: str = "") -> str:
    if s.source == UNKNOWN:
        return "?"
    if s.source == NOT_SET or s.value is None:
        return "-"
    return f"{s.value}{unit}{MARKS.get(s.source, '')}"


def _row(s: SocketAssessment) -> tuple[str, ...]:
    keepalive = {True: "on", False: "off", None: "?"}[s.keepalive]
    flight = s.flight_death if s.flight_death_s is None else f"{s.flight_death} ({s.flight_by})"
    idle = s.idle_death
    if s.state == "LISTEN":  # nothing in flight; its options are what accepted sockets start with
        idle, flight = f"accepted: {idle}", "-"
    return (str(s.fd) if s.fd is not None else "?", s.state, _endpoint(*s.local), _endpoint(*s.remote), keepalive,
            _setting(s.idle, "s"), _setting(s.intvl, "s"), _setting(s.cnt), _setting(s.user_timeout_ms, " ms"),
            idle, flight)


def table(rows: list[tuple[str, ...]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def process_lines(a: ProcessAssessment) -> list[str]:
    f = a.facts
    lines = [a.verdict]
    where = "the host's" if not f.foreign_namespace else "not the host's"
    ns = f"net:[{f.netns}] ({where})" if f.netns is not None else "unreadable"
    sysctls = (f"keepalive {f.sysctls.keepalive_text()}, tcp_retries2 {f.sysctls.retries2}"
               + "".join(f", {name} {value}" for name, value in (("tcp_rto_max_ms", f.sysctls.rto_max_ms),
                                                                 ("tcp_rto_min_us", f.sysctls.rto_min_us))
                         if value is not None) if f.sysctls else "unknown")
    lines.append(f"  network namespace {ns}; its sysctls: {sysctls}")
    via = ("getsockopt on fds borrowed with pidfd_getfd" if f.borrowed else "sock_diag's timers only (options not readable)")
    lines.append(f"  read via: {via}; socket table: {f.table}")
    for w in a.warnings:
        lines.append(f"  warning: {w}")
    if a.sockets:
        lines += table([COLUMNS, *(_row(s) for s in a.sockets)])
        if any(s.read_via == "getsockopt" for s in a.sockets):
            lines.append(f"  {LEGEND}")
    for s in a.sockets:
        detail = [f"timer: {s.timer}"] + s.notes
        if s.netns is not None and s.netns != f.netns:
            detail.insert(0, f"in network namespace net:[{s.netns}], not the process's (a socket keeps the namespace "
                             "it was made in); values compared with that namespace's sysctls")
        if s.idle_rule:
            detail.append(f"idle: {s.idle_rule}")
        if s.flight_rule and s.state != "LISTEN":
            detail.append(f"in flight: {s.flight_rule}")
        lines.append(f"  fd {s.fd if s.fd is not None else '?'} ({s.state} {_endpoint(*s.local)} -> "
                     f"{_endpoint(*s.remote)}):")
        lines += [f"    {d}" for d in detail]
    for note in f.notes:
        lines.append(f"  note: {note}")
    return lines
