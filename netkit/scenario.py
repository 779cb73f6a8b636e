"""A scenario is a plain value; running it yields a result that is data.

``Scenario`` says what to prove: keepalive settings (and TCP_USER_TIMEOUT),
address family, fault, connection state, which side is tested and where its
keepalive values come from.  ``run_scenario`` builds a lab, proves it, tears
the lab down and returns a ``ScenarioResult`` that can be asserted, printed or
written as JSON.  :mod:`netkit.pool` runs any number of them at once.

The procedure (for the default, idle state):

1. the client (client namespace) connects to the server (server namespace);
   the *tested* side (the server unless ``side="client"``) enables keepalive
   on its socket -- per socket, or from its namespace's sysctls -- and reads
   it back;
2. the connection stays silent; we wait until one keepalive probe has been
   answered (proof that the peer is up and probing works);
3. right after that reply the fault breaks the peer away;
4. we wait for the tested socket to die (poll wakes with POLLERR/POLLHUP)
   and read the kernel's own figures at once: ``tcpi_last_ack_recv`` (time
   since the last segment received -- the probe reply of step 2),
   ``tcpi_probes``, ``SO_ERROR``, and the namespace's TCPKeepAlive counter.
   If the model says the peer dies too (one-way), its death is timed against
   the tested side's on the monotonic clock.

Throughout, a packet socket in the tested namespace captures the tested veth
(:mod:`netkit.capture`): the result's ``wire`` holds the probes, replies and
RST with their kernel timestamps, and ``judge`` asserts them where the fault
lets them reach a wire.  Where it does not (link down, peer gone, netem),
the result says so and the kernel's counters are the evidence.  The capture
is written as pcap on request (``pcap=``) and for every failed scenario
(into ``pcap_dir``, or a temporary file).
"""

from __future__ import annotations

import errno
import json
import os
import re
import select
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from . import counters
from .capture import PROBES_NEVER_ON_WIRE, Capture, WireEvidence, analyse, write_pcap
from .errors import FeatureMissing, NetkitError, SettingError
from .faults import FaultContext, get_fault
from .faults import prepare as fault_prepare
from .faults import settle as fault_settle
from .keepalive import KeepaliveSettings
from .kernel import KernelInfo, kernel_info
from .lab import Endpoint, Lab, family_number
from .model import DeathPrediction, keepalive_schedule, wheel_granularity_s
from .privileges import require_privileges
from .rules import predict
from .tcpinfo import tcp_info

SAMPLE_INTERVAL_S = 0.02
WARMUP_SAMPLE_S = 0.002
WARMUP_LEAD_S = 0.1  # start sampling this long before the first probe is due
PEER_GRACE_S = 0.5  # how long to wait for the peer's death after the tested side's
# The RST reaches the peer within microseconds, but both deaths are seen by one
# Python thread polling both sockets; with dozens of scenarios sharing the GIL,
# the observer itself can be late by a few ms.  One sampling interval bounds it.
PEER_SAME_MOMENT_S = SAMPLE_INTERVAL_S
FAULT_DEADLINE_FRACTION = 0.5  # the fault must land well before the next keepalive timer run
STATES = ("idle", "unacked", "zero-window")
SIDES = ("server", "client")
KEEPALIVE_SOURCES = ("socket", "sysctl")
MAX_RETRIES2 = 15  # beyond the default the deadline is tens of minutes
ZERO_WINDOW_RCVBUF = 4096  # the peer's receive buffer: the window closes after a few KB
UNACKED_PAYLOAD = b"x" * 100
TCPEXT_COUNTERS = ("TCPKeepAlive", "TCPWinProbe", "TCPTimeouts", "TCPAbortOnTimeout", "TCPLossProbes",
                   "TCPSpuriousRtxHostQueues")
SYSCTLS = {"idle": "net.ipv4.tcp_keepalive_time", "intvl": "net.ipv4.tcp_keepalive_intvl", "cnt": "net.ipv4.tcp_keepalive_probes"}


class ScenarioCancelled(NetkitError):
    """The run was cancelled (Ctrl-C, or another scenario's caller gave up)."""


def _choice(field_name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SettingError(field_name, value, "use one of " + ", ".join(allowed))


@dataclass(frozen=True)
class Scenario:
    """What to prove. Hashable, so it can key a dict of results.

    ``side``: whose timers are tested ("server": the accepted socket; "client":
    the client's view) -- the other side is the peer that the fault takes away.
    ``keepalive_via``: "socket" (setsockopt) or "sysctl" (only SO_KEEPALIVE on
    the socket; idle/intvl/cnt written to the tested namespace's
    ``net.ipv4.tcp_keepalive_*`` before it).
    """

    keepalive: KeepaliveSettings = KeepaliveSettings()
    family: str = "ipv4"
    fault: str = "link-down"
    state: str = "idle"
    side: str = "server"
    keepalive_via: str = "socket"
    retries2: int | None = None  # net.ipv4.tcp_retries2 in the tested namespace (data in flight, no user timeout)

    def __post_init__(self) -> None:
        family_number(self.family)
        get_fault(self.fault)
        _choice("state", self.state, STATES)
        _choice("side", self.side, SIDES)
        _choice("keepalive_via", self.keepalive_via, KEEPALIVE_SOURCES)
        if self.retries2 is not None and not (isinstance(self.retries2, int) and 1 <= self.retries2 <= MAX_RETRIES2):
            raise SettingError("retries2 (net.ipv4.tcp_retries2)", self.retries2, f"netkit uses whole numbers 1..{MAX_RETRIES2} (the default 15 already means ~15 minutes)")

    def require_supported(self) -> None:
        """Raise FeatureMissing (a skip, in tests) if this machine cannot run the scenario."""
        fault = get_fault(self.fault)
        reason = fault.unsupported_reason()
        if reason:
            raise FeatureMissing(f"fault {fault.name} is not available here: {reason}")

    @property
    def id(self) -> str:
        k = self.keepalive
        parts = [self.family, self.state, self.fault, f"{k.idle}/{k.intvl}/{k.cnt}"]
        if k.user_timeout_ms is not None:
            parts.append(f"ut{k.user_timeout_ms}")
        if self.side != "server":
            parts.append(f"{self.side}-side")
        if self.keepalive_via != "socket":
            parts.append(f"via-{self.keepalive_via}")
        if self.retries2 is not None:
            parts.append(f"retries2={self.retries2}")
        return "-".join(parts)


@dataclass(frozen=True)
class TimelineEvent:
    """Something the kernel did, timed from the last segment received.

    ``source``: "wire" (a frame's kernel timestamp on the tested veth),
    "sampled" (``tcp_info`` polled every 20 ms) or "" (the procedure itself).
    """

    t_s: float
    what: str
    source: str = ""


@dataclass(frozen=True)
class Progress:
    """A live sample while waiting for the death (for the demo's timeline)."""

    elapsed_s: float  # on the prediction's clock (since the last segment received, or the send)
    count: int  # probes (tcpi_probes) or retransmissions (tcpi_retransmits) so far
    expected_s: float


@dataclass
class ScenarioResult:
    scenario: Scenario
    kernel: KernelInfo
    prediction: DeathPrediction
    measured_s: float | None = None
    error: str | None = None
    probes: int | None = None  # tcpi_probes at death
    retransmits: int | None = None  # tcpi_retransmits at death
    counters: dict[str, int] = field(default_factory=dict)  # TcpExt deltas, fault to death, tested namespace
    peer_error: str | None = None  # the peer's socket error, when the model says it dies too
    peer_lag_s: float | None = None  # the peer's death minus the tested side's (monotonic clock)
    fault_at_s: float | None = None  # when the fault hit, since the last segment received
    timeline: list[TimelineEvent] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lab: str = ""
    kept_namespaces: list[str] = field(default_factory=list)  # under /run/netns, if kept
    wire: WireEvidence | None = None  # what the tested veth showed (None: no capture was made)
    pcap: str | None = None  # where the capture was written (always, for a failed scenario)
    pcap_data: bytes = field(default=b"", repr=False, compare=False)  # the capture as a pcap file

    def write_pcap(self, path: str) -> str:
        """Write the scenario's capture to ``path`` (a classic pcap file) and remember where."""
        self.pcap = write_pcap(path, self.pcap_data)
        return self.pcap

    @property
    def verdict(self) -> str:
        return "fail" if self.failures else "pass"

    @property
    def keepalive_counter(self) -> int | None:
        """Keepalive probes the tested namespace sent after the fault (TcpExt TCPKeepAlive)."""
        return self.counters.get("TCPKeepAlive")

    @property
    def count(self) -> int | None:
        """The figure the prediction's ``count_source`` names."""
        source = self.prediction.count_source
        if source == "tcpi_probes":
            return self.probes
        if source == "tcpi_retransmits":
            return self.retransmits
        return self.counters.get(source.split(".", 1)[-1])

    def judge(self) -> None:
        """Compare measurement with prediction; fill ``failures`` with reasons."""
        p = self.prediction
        if self.measured_s is None:
            self.failures.append(f"the connection did not die within {p.window_s[1]:.3f} s (+ grace)")
            return
        windows = " or ".join(f"[{lo:.3f}, {hi:.3f}] s with {n}" for (lo, hi), n in p.outcomes())
        earliest = min(lo for (lo, _), _ in p.outcomes())
        if self.measured_s < earliest:
            self.failures.append(f"died EARLY: {self.measured_s:.3f} s < window start {earliest:.3f} s")
        elif not p.contains(self.measured_s):
            self.failures.append(f"died late: {self.measured_s:.3f} s, outside {windows}")
        counts = sorted({n for _, n in p.outcomes()})
        if self.count not in counts:
            self.failures.append(f"{p.count_source} = {self.count} at death, expected {' or '.join(map(str, counts))}")
        elif p.contains(self.measured_s) and not p.matches(self.measured_s, self.count):
            self.failures.append(f"{p.count_source} = {self.count} at {self.measured_s:.3f} s; expected {windows}")
        if self.error != p.expected_error:
            self.failures.append(f"error {self.error}, expected {p.expected_error}")
        if p.peer_expected_error:
            if self.peer_error != p.peer_expected_error:
                self.failures.append(f"peer error {self.peer_error}, expected {p.peer_expected_error} (it should die too)")
            elif self.peer_lag_s is None or abs(self.peer_lag_s) > PEER_SAME_MOMENT_S:
                self.failures.append(f"peer died {self.peer_lag_s} s apart from the tested side, expected the same "
                                     f"moment (within the observer's {PEER_SAME_MOMENT_S} s)")
        self._judge_wire()

    def _judge_wire(self) -> None:
        """Where the probes reach the tested veth: count, spacing, first probe and RST, from the wire.

        Tolerances are the model's (timer wheel, :func:`netkit.model.wheel_granularity_s`):
        consecutive probes are ``intvl`` apart, late by at most one
        granularity of an ``intvl`` timer; the first leaves ``max(idle,
        intvl)`` after the last segment received, late by at most the first
        run's granularity.  One jiffy either way covers the jiffy clock the
        timer counts on against the tap's nanoseconds.
        """
        w, p, s = self.wire, self.prediction, self.scenario
        if w is None or not w.visible or self.measured_s is None:
            return
        problems = []
        jiffy, hz = self.kernel.jiffy_s, self.kernel.hz
        if s.state == "idle":
            k = s.keepalive
            counts = sorted({n for _, n in p.outcomes()})
            expected = " or ".join(map(str, counts))
            if p.expected_error == "ECONNRESET":  # the peer has forgotten the connection: its RST answers
                if len(w.probes_s) not in counts:
                    problems.append(f"{len(w.probes_s)} keepalive probes after the last segment received, expected {expected}")
                if w.peer_rst_s is None:
                    problems.append("no RST from the peer answered the probe")
                if w.rst_s is not None:
                    problems.append(f"the tested side sent a RST at {w.rst_s:.3f} s; a reset connection sends none")
            else:
                if w.unanswered_probes not in counts or w.unanswered_probes != self.probes:
                    problems.append(f"{w.unanswered_probes} unanswered keepalive probes, expected {expected} "
                                    f"(tcpi_probes {self.probes})")
                if w.rst_s is None:
                    problems.append("no RST from the tested side: a keepalive death sends one (tcp_send_active_reset)")
            low, high = k.intvl - jiffy, k.intvl + wheel_granularity_s(k.intvl, hz) + jiffy
            for n, gap in enumerate(w.spacing_s, 1):
                if not low <= gap <= high:
                    problems.append(f"probes {n} and {n + 1} are {gap:.3f} s apart, expected TCP_KEEPINTVL "
                                    f"{k.intvl} s within [{low:.3f}, {high:.3f}] s")
            schedule = keepalive_schedule(k)
            first_low = schedule.first_probe - jiffy
            first_high = schedule.first_probe + schedule.max_lateness(1, hz) + 2 * jiffy
            if w.first_probe_s is None or not first_low <= w.first_probe_s <= first_high:
                first = "none" if w.first_probe_s is None else f"{w.first_probe_s:.3f} s"
                problems.append(f"first probe at {first} after the last segment received, expected max(idle, intvl) = "
                                f"{schedule.first_probe} s within [{first_low:.3f}, {first_high:.3f}] s")
        else:
            if w.rst_s is not None:
                problems.append(f"the tested side sent a RST at {w.rst_s:.3f} s; a retransmission or persist timeout "
                                "sends none (tcp_write_err)")
            if s.state == "zero-window" and len(w.zero_window_probes_s) != self.counters.get("TCPWinProbe"):
                problems.append(f"{len(w.zero_window_probes_s)} zero-window probes on the wire, the kernel counted "
                                f"{self.counters.get('TCPWinProbe')} (TcpExt TCPWinProbe)")
        self.failures += [f"wire: {problem}" for problem in problems]

    def to_dict(self) -> dict[str, Any]:
        """The machine-readable verdict (the CLI's ``--json``)."""
        s, p = self.scenario, self.prediction
        return {
            "kernel": self.kernel.release,
            "hz": self.kernel.hz,
            "id": s.id,
            "family": s.family,
            "keepalive": s.keepalive.to_dict(),
            "keepalive_via": s.keepalive_via,
            "side": s.side,
            "fault": s.fault,
            "state": s.state,
            "rule": p.rule,
            "expected_s": p.expected_s,
            "window_s": list(p.window_s),
            "measured_s": self.measured_s,
            "error": self.error,
            "expected_error": p.expected_error,
            "probes": self.probes,
            "retransmits": self.retransmits,
            "count_source": p.count_source,
            "expected_count": p.expected_count,
            "alternative_window_s": list(p.alternative_window_s) if p.alternative_window_s else None,
            "alternative_count": p.alternative_count,
            "keepalive_counter": self.keepalive_counter,
            "counters": self.counters,
            "measured_from": p.measured_from,
            "retries2": s.retries2,
            "peer_error": self.peer_error,
            "peer_expected_error": p.peer_expected_error,
            "peer_lag_s": self.peer_lag_s,
            "fault_at_s": self.fault_at_s,
            "timeline": [asdict(e) for e in self.timeline],
            "wire": self.wire.to_dict() if self.wire else None,
            "pcap": self.pcap,
            "verdict": self.verdict,
            "failures": self.failures,
            "kept_namespaces": self.kept_namespaces,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def wire_summary(self) -> str:
        """One line: what the wire showed, or why it cannot show it and what the evidence is instead."""
        w = self.wire
        if w is None:
            return "no capture"
        if not w.visible:
            kernel = ", ".join(f"{name} {value}" for name, value in w.kernel.items() if value is not None)
            return f"{w.note}; the evidence is the kernel's counters: {kernel}"
        parts = [_plural(len(w.probes_s), "keepalive probe") + f" ({w.unanswered_probes} unanswered)"]
        if w.spacing_s:
            parts.append("spacing " + ", ".join(f"{g:.3f}" for g in w.spacing_s) + " s")
        if w.first_probe_s is not None:
            parts.append(f"first at {w.first_probe_s:.3f} s")
        if w.retransmissions_s:
            parts.append(_plural(len(w.retransmissions_s), "retransmission") + " (a tail loss probe counts)")
        if w.zero_window_probes_s:
            parts.append(_plural(len(w.zero_window_probes_s), "zero-window probe"))
        parts.append(f"RST sent at {w.rst_s:.3f} s" if w.rst_s is not None else "no RST sent")
        if w.peer_rst_s is not None:
            parts.append(f"RST from the peer at {w.peer_rst_s:.3f} s")
        drops = f", {w.drops} DROPPED by the capture" if w.drops else ""
        return f"{'; '.join(parts)} (on {w.interface}, {w.frames} frames{drops}; t = 0 is {w.anchor})"

    def explain(self) -> str:
        """The failure message for a person reading a CI log at 3 a.m."""
        p = self.prediction
        measured = "no death" if self.measured_s is None else f"{self.measured_s:.3f} s"
        lines = [
            f"{self.scenario.id} on {self.kernel.release} (HZ={self.kernel.hz}): {self.verdict.upper()}",
            f"  rule:     {p.rule}",
            f"  expected: {p.expected_s:.3f} s, window [{p.window_s[0]:.3f}, {p.window_s[1]:.3f}] s, "
            f"{p.count_source} = {p.expected_count}, {p.expected_error}"
            + (f"; or early: [{p.alternative_window_s[0]:.3f}, {p.alternative_window_s[1]:.3f}] s with {p.alternative_count}"
               if p.alternative_window_s else "")
            + (f"; peer dies too with {p.peer_expected_error}" if p.peer_expected_error else ""),
            f"  measured: {measured}, {self.probes} probes (tcpi_probes), {self.retransmits} retransmits, "
            f"{self.keepalive_counter} keepalives sent (TcpExt TCPKeepAlive), error {self.error}"
            + (f"; peer {self.peer_error}, {self.peer_lag_s} s apart" if p.peer_expected_error else ""),
        ]
        if self.wire is not None:
            lines.append(f"  wire:     {self.wire_summary()}")
        lines += [f"  problem:  {f}" for f in self.failures]
        if self.timeline:
            clock = "the send" if p.measured_from == "send" else "the last segment received"
            sources = []
            if any(e.source == "wire" for e in self.timeline):
                sources.append("[wire] = kernel timestamp of the frame on the tested veth")
            if any(e.source == "sampled" for e in self.timeline):
                sources.append("[sampled] = tcp_info polled every 20 ms")
            lines.append(f"  timeline (s since {clock}" + "".join(f"; {x}" for x in sources) + "):")
            lines += [f"    {e.t_s:8.3f}  {e.what}" + (f"  [{e.source}]" if e.source else "") for e in self.timeline]
        if self.pcap:
            lines.append(f"  pcap:     {self.pcap}  (read it: tcpdump -nr {self.pcap})")
        for name in self.kept_namespaces:
            lines.append(f"  kept for inspection: ip netns exec {name} ss -tino  (remove: netkit cleanup)")
        return "\n".join(lines)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _enable_keepalive(scenario: Scenario, endpoint: Endpoint, sock: socket.socket) -> None:
    """Per socket, or from the namespace's sysctls (already written before the connection)."""
    k = scenario.keepalive
    if scenario.keepalive_via == "socket":
        k.apply(sock)
        return
    # The sysctls were read when SO_KEEPALIVE armed the timer: it must come after them.
    if k.user_timeout_ms is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, k.user_timeout_ms)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)


def _write_keepalive_sysctls(scenario: Scenario, endpoint: Endpoint) -> None:
    if scenario.keepalive_via != "sysctl":
        return
    for name, sysctl in SYSCTLS.items():
        value = getattr(scenario.keepalive, name)
        if endpoint.sysctl(sysctl, value) != str(value):
            raise NetkitError(f"{sysctl} in {endpoint.namespace.name} did not keep {value}")


def _wait_for_answered_probe(
    sock: socket.socket, k: KeepaliveSettings, armed_at: float, cancel: threading.Event
) -> None:
    """Return right after a keepalive probe's reply was received.

    A reply resets the socket's receive timestamp, so ``tcpi_last_ack_recv``
    drops back towards zero.  The first probe is due ``idle`` after keepalive
    was armed (``armed_at``, monotonic); we sleep until shortly before and
    then sample every 2 ms (sampling the whole time would cost dozens of
    concurrent scenarios a core), so the fault follows the reply within a few
    ms, long before the next timer run (>= 1 s).
    """
    limit = max(k.idle, k.intvl) + 2.0
    deadline = time.monotonic() + limit
    if cancel.wait(max(0.0, armed_at + k.idle - WARMUP_LEAD_S - time.monotonic())):
        raise ScenarioCancelled("cancelled while waiting for the first probe")
    previous = tcp_info(sock).last_ack_recv_ms
    while time.monotonic() < deadline:
        if cancel.wait(WARMUP_SAMPLE_S):
            raise ScenarioCancelled("cancelled while waiting for the first probe")
        now = tcp_info(sock).last_ack_recv_ms
        if now < previous:
            return
        previous = now
    raise NetkitError(f"no keepalive probe was answered within {limit:.0f} s while the peer was up")


def _socket_error(sock: socket.socket) -> str:
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    return errno.errorcode.get(err, str(err)) if err else "none"


def _wait_for_death(
    sock: socket.socket,
    peer: socket.socket | None,
    result: ScenarioResult,
    since_anchor: Callable[[], float],
    cancel: threading.Event,
    on_progress: Callable[[Progress], None] | None,
) -> None:
    """Poll the dying socket (and the peer's, if it should die too); read the kernel's figures at death.

    ``since_anchor`` reads the clock the prediction counts on (time since the
    last segment received, or since the send).
    """
    expected = result.prediction.expected_s
    give_up_s = max(w[1] for w, _ in result.prediction.outcomes()) + max(2.0, 0.5 * expected)
    what = "retransmission" if result.prediction.count_source == "tcpi_retransmits" else "probe"
    mask = select.POLLERR | select.POLLHUP | select.POLLIN
    poller = select.poll()
    poller.register(sock, mask)
    if peer is not None:
        poller.register(peer, mask)
    peer_died_at: float | None = None
    seen = (0, 0)
    while True:
        if cancel.is_set():
            raise ScenarioCancelled("cancelled while waiting for the connection to die")
        events = dict(poller.poll(SAMPLE_INTERVAL_S * 1000))
        now = time.monotonic()
        if peer is not None and peer_died_at is None and peer.fileno() in events:
            peer_died_at = now
            poller.unregister(peer)
        if sock.fileno() in events:
            break
        info = tcp_info(sock)
        elapsed = since_anchor()
        if (info.probes, info.retransmits) != seen:
            if info.probes > seen[0]:
                result.timeline.append(TimelineEvent(round(elapsed, 3), f"probe {info.probes} sent, unanswered (tcpi_probes)",
                                                     "sampled"))
            if info.retransmits > seen[1]:
                result.timeline.append(TimelineEvent(round(elapsed, 3), f"retransmission {info.retransmits} (tcpi_retransmits)",
                                                     "sampled"))
            seen = (info.probes, info.retransmits)
        if on_progress:
            on_progress(Progress(elapsed, info.probes if what == "probe" else info.retransmits, expected))
        if elapsed > give_up_s:
            result.timeline.append(TimelineEvent(round(elapsed, 3), "still alive; gave up waiting"))
            return
    died_at = time.monotonic()
    info = tcp_info(sock)  # read first: every later syscall adds to the measurement
    result.measured_s = round(since_anchor() if result.prediction.measured_from == "send" else info.last_ack_recv_ms / 1000, 6)
    result.probes = info.probes
    result.retransmits = info.retransmits
    result.error = _socket_error(sock)
    result.timeline.append(TimelineEvent(result.measured_s, f"connection dead: {result.error}, state {info.state}"))
    if peer is None:
        return
    if peer_died_at is None and poller.poll(PEER_GRACE_S * 1000):
        peer_died_at = time.monotonic()
    if peer_died_at is not None:
        result.peer_error = _socket_error(peer)
        result.peer_lag_s = round(peer_died_at - died_at, 6)
        result.timeline.append(TimelineEvent(
            round(result.measured_s + result.peer_lag_s, 3), f"peer's connection dead: {result.peer_error}"))


def _fill_until_zero_window(sock: socket.socket, cancel: threading.Event) -> None:
    """Send until the peer's receive window is closed and everything in flight is acknowledged.

    Then nothing is unacknowledged, the rest waits in the write queue, and the
    persist timer (not the RTO) owns the connection.
    """
    sock.setblocking(False)
    deadline = time.monotonic() + 5.0
    try:
        while time.monotonic() < deadline:
            if cancel.is_set():
                raise ScenarioCancelled("cancelled while closing the window")
            try:
                sock.send(b"\0" * 65536)
                continue
            except BlockingIOError:
                pass
            if tcp_info(sock).unacked == 0:
                return
            time.sleep(WARMUP_SAMPLE_S / 4)
    finally:
        sock.setblocking(True)
    raise NetkitError("the peer's window did not close within 5 s")


def failure_pcap_path(scenario: Scenario, lab: str, directory: str | None = None) -> str:
    """Where a failed scenario's capture goes: ``directory``, or a new temporary file."""
    name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", scenario.id)
    if directory:
        os.makedirs(directory, exist_ok=True)
        return os.path.join(directory, f"{name}-{lab}.pcap")
    fd, path = tempfile.mkstemp(prefix=f"netkit-{name}-", suffix=".pcap")
    os.close(fd)
    return path


def _start_capture(tested: Endpoint) -> tuple[Capture | None, str | None]:
    """The tested veth's capture, started; or None and why (the scenario runs on without wire evidence)."""
    capture = Capture(tested.namespace, tested.ifindex, f"{tested.ifname} in {tested.namespace.name}")
    try:
        return capture.start(), None
    except OSError as exc:
        return None, f"no packet capture ({exc}; needs CONFIG_PACKET)"


def _wire_evidence(
    result: ScenarioResult,
    capture: Capture | None,
    capture_error: str | None,
    addresses: tuple[tuple[str, int], tuple[str, int]],
    fault_ns: int,
    sent_ns: int | None,
) -> None:
    """Fill ``result.wire`` (and its pcap bytes) from the capture; merge the wire's events into the timeline."""
    s, p = result.scenario, result.prediction
    kernel = {"tcpi_probes": result.probes, "tcpi_retransmits": result.retransmits}
    kernel.update({f"TcpExt.{name}": result.counters.get(name)
                   for name in ("TCPKeepAlive", "TCPWinProbe", "TCPAbortOnTimeout")})
    if capture is None:
        result.wire = WireEvidence(visible=False, note=capture_error or "no capture", error=capture_error, kernel=kernel)
        return
    wire = analyse(capture.frames, *addresses, fault_ns, p.measured_from, sent_ns)
    wire.interface, wire.drops, wire.error, wire.kernel = capture.label, capture.drops, capture.error, kernel
    result.pcap_data = capture.pcap()
    blind = PROBES_NEVER_ON_WIRE.get(s.fault)
    if blind or capture.error:
        what = "probes" if s.state == "idle" else "retransmissions and probes"
        seen = len(wire.probes_s) + len(wire.retransmissions_s) + len(wire.zero_window_probes_s)
        counted = result.count if result.count is not None else "?"
        wire.visible = False
        wire.note = (f"the wire cannot show the {what}: {blind or capture.error} ({seen} captured after the fault, "
                     f"the kernel counted {counted})")
        result.wire = wire
        return
    wire.note = f"every {'probe' if s.state == 'idle' else 'segment'} after the fault passed the tested veth's tap"
    result.wire = wire
    kept = [e for e in result.timeline if e.source != "sampled"]
    if p.measured_from != "send" and any(e.t_s == 0 for e in wire.events) and kept and kept[0].t_s == 0:
        kept = kept[1:]  # the wire's own line for the last segment received says the same, timestamped
    merged = kept + [TimelineEvent(e.t_s, e.what, "wire") for e in wire.events]
    result.timeline = sorted(merged, key=lambda e: (e.t_s, e.source != "wire"))  # at a tie the wire saw it first


def run_scenario(
    scenario: Scenario,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    keep_failed: bool = False,
    pcap: str | None = None,
    pcap_dir: str | None = None,
) -> ScenarioResult:
    """Prove one scenario on this kernel. Raises FeatureMissing if it cannot run here.

    With ``keep_failed`` a failing scenario's namespaces are named under
    /run/netns before teardown, for ``ip netns exec``.  The tested veth is
    captured throughout: with ``pcap`` the capture is written there; a failed
    scenario's capture is always written -- to ``pcap``, else into
    ``pcap_dir``, else to a temporary file -- and ``result.pcap`` says where.
    A scenario that breaks off with a NetkitError writes it the same way and
    names it in the exception's notes.
    """
    require_privileges()  # before anything else: the message names the command to run instead
    cancel = cancel or threading.Event()
    kernel = kernel_info()
    scenario.require_supported()
    predict(scenario.state, scenario.fault, scenario.family, scenario.keepalive, kernel,
            retries2=scenario.retries2)  # NotModelled early
    with Lab() as lab:
        tested = lab.server if scenario.side == "server" else lab.client
        capture, capture_error = _start_capture(tested)
        if capture is not None:
            lab.callback(capture.stop)  # before the namespaces are released
        try:
            result = _prove(scenario, kernel, lab, capture, capture_error, cancel, on_progress)
        except NetkitError as exc:
            if capture is not None and not isinstance(exc, (ScenarioCancelled, FeatureMissing)):
                capture.stop()
                path = write_pcap(pcap or failure_pcap_path(scenario, lab.name, pcap_dir), capture.pcap())
                note = f"capture of {scenario.id} until it broke off: {path} (tcpdump -nr {path})"
                if hasattr(exc, "add_note"):  # Python 3.11+
                    exc.add_note(note)
            raise
        if pcap:
            result.write_pcap(pcap)
        elif result.failures:
            result.write_pcap(failure_pcap_path(scenario, lab.name, pcap_dir))
        if keep_failed and result.failures:
            result.kept_namespaces = lab.keep()
    return result


def _prove(
    scenario: Scenario,
    kernel: KernelInfo,
    lab: Lab,
    capture: Capture | None,
    capture_error: str | None,
    cancel: threading.Event,
    on_progress: Callable[[Progress], None] | None,
) -> ScenarioResult:
    """The procedure (module docstring), in a built lab whose tested veth is being captured."""
    fault = get_fault(scenario.fault)
    k = scenario.keepalive
    tested, peer = (lab.server, lab.client) if scenario.side == "server" else (lab.client, lab.server)
    _write_keepalive_sysctls(scenario, tested)
    if scenario.retries2 is not None:
        tested.sysctl("net.ipv4.tcp_retries2", scenario.retries2)
    rcvbuf = {peer.role: ZERO_WINDOW_RCVBUF} if scenario.state == "zero-window" else None
    server_sock, client_sock = lab.connect(scenario.family, rcvbuf=rcvbuf)
    tested_sock, peer_sock = (server_sock, client_sock) if scenario.side == "server" else (client_sock, server_sock)
    addresses = (tested_sock.getsockname()[:2], tested_sock.getpeername()[:2])
    _enable_keepalive(scenario, tested, tested_sock)  # in the data states too: it must not interfere
    armed_at = time.monotonic()
    ctx = FaultContext(lab, scenario.family, tested, peer, peer_sock, lab.listeners if peer is lab.server else [])
    fault_prepare(fault, ctx)

    def since_last_received() -> float:
        return tcp_info(tested_sock).last_ack_recv_ms / 1000

    since_anchor = since_last_received
    if scenario.state == "idle":
        _wait_for_answered_probe(tested_sock, k, armed_at, cancel)
        first = "last segment received (reply to a keepalive probe)"
    elif scenario.state == "zero-window":
        _fill_until_zero_window(tested_sock, cancel)  # the bulk transfer moves the RTO: read it after
        first = "last segment received (the ACK that closed the window)"
    else:
        first = f"{len(UNACKED_PAYLOAD)} bytes sent into the broken path"
    rto_s = tcp_info(tested_sock).rto_us / 1e6
    prediction = predict(scenario.state, scenario.fault, scenario.family, k, kernel, rto_s, scenario.retries2)
    result = ScenarioResult(scenario, kernel, prediction, lab=lab.name)
    result.timeline.append(TimelineEvent(0.0, first))
    before = counters.tcpext_counts(tested.namespace, TCPEXT_COUNTERS)
    fault_ns = time.time_ns()  # the capture's clock (CLOCK_REALTIME): frames before it are the connection's past
    sent_ns = None
    fault.apply(ctx)
    if scenario.state == "unacked":  # break the path completely, then send into it
        fault_settle(fault, ctx)
        sent_at = time.monotonic()
        sent_ns = time.time_ns()
        tested_sock.send(UNACKED_PAYLOAD)
        since_anchor = lambda: time.monotonic() - sent_at  # noqa: E731
        latest_fault_s = None
    elif scenario.state == "zero-window":
        latest_fault_s = FAULT_DEADLINE_FRACTION * rto_s  # well before the first window probe
    else:
        latest_fault_s = FAULT_DEADLINE_FRACTION * min(k.idle, k.intvl)  # well before the next keepalive run
    if latest_fault_s is not None:
        result.fault_at_s = since_last_received()
        result.timeline.append(TimelineEvent(result.fault_at_s, f"fault: {fault.description}"))
        if result.fault_at_s >= latest_fault_s:
            result.failures.append(
                f"the fault took until {result.fault_at_s:.3f} s after the last segment received, too close to "
                "the next timer run for the rule to apply (machine overloaded?)")
        fault_settle(fault, ctx)
    watch_peer = peer_sock if prediction.peer_expected_error else None
    _wait_for_death(tested_sock, watch_peer, result, since_anchor, cancel, on_progress)
    after = counters.tcpext_counts(tested.namespace, TCPEXT_COUNTERS)
    result.counters = {name: after[name] - before[name] for name in TCPEXT_COUNTERS}
    if capture is not None:
        capture.stop()  # the RST left in the timer run that killed the socket: it is queued already
    _wire_evidence(result, capture, capture_error, addresses, fault_ns, sent_ns)
    result.judge()
    return result
