"""A scenario is a plain value; running it yields a result that is data.

``Scenario`` says what to prove (keepalive settings, address family, fault);
``run_scenario`` builds a lab, proves it, tears the lab down and returns a
``ScenarioResult`` that can be asserted, printed or written as JSON.
``run_many`` runs any number of scenarios at once: each spends nearly all its
time waiting for kernel timers, so threads overlap them perfectly and a matrix
takes about as long as its longest scenario.

The procedure, as the design card has it:

1. the client (client namespace) connects to the server (server namespace);
   the server enables keepalive on the *accepted* socket and reads it back;
2. the client stays connected and silent; we wait until one keepalive probe
   has been answered (proof that the peer is up and probing works);
3. right after that reply we drop the peer link (the fault);
4. we wait for the server socket to die (poll wakes with POLLERR/POLLHUP)
   and read the kernel's own figures at once: ``tcpi_last_ack_recv`` (time
   since the last segment received -- the probe reply of step 2),
   ``tcpi_probes``, ``SO_ERROR``, and the namespace's TCPKeepAlive counter.
"""

from __future__ import annotations

import errno
import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from . import counters
from .errors import FeatureMissing, NetkitError
from .faults import get_fault
from .keepalive import KeepaliveSettings
from .kernel import KernelInfo, kernel_info
from .lab import Lab, family_number
from .model import DeathPrediction, keepalive_death
from .tcpinfo import tcp_info

SAMPLE_INTERVAL_S = 0.02
WARMUP_SAMPLE_S = 0.002


class ScenarioCancelled(NetkitError):
    """The run was cancelled (Ctrl-C, or another scenario's caller gave up)."""


@dataclass(frozen=True)
class Scenario:
    """What to prove. Hashable, so it can key a dict of results."""

    keepalive: KeepaliveSettings = KeepaliveSettings()
    family: str = "ipv4"
    fault: str = "link-down"

    def __post_init__(self) -> None:
        family_number(self.family)
        get_fault(self.fault)

    @property
    def id(self) -> str:
        k = self.keepalive
        return f"{self.family}-{self.fault}-{k.idle}/{k.intvl}/{k.cnt}"


@dataclass(frozen=True)
class TimelineEvent:
    """Something the kernel did, timed from the last segment received."""

    t_s: float
    what: str


@dataclass(frozen=True)
class Progress:
    """A live sample while waiting for the death (for the demo's timeline)."""

    elapsed_s: float  # since the last segment received
    probes: int
    expected_s: float


@dataclass
class ScenarioResult:
    scenario: Scenario
    kernel: KernelInfo
    prediction: DeathPrediction
    measured_s: float | None = None
    error: str | None = None
    probes: int | None = None
    keepalive_counter: int | None = None  # TcpExt TCPKeepAlive sent after the fault
    fault_at_s: float | None = None  # when the fault hit, since the last segment received
    timeline: list[TimelineEvent] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lab: str = ""
    kept_namespaces: list[str] = field(default_factory=list)  # under /run/netns, if kept

    @property
    def verdict(self) -> str:
        return "fail" if self.failures else "pass"

    def judge(self) -> None:
        """Compare measurement with prediction; fill ``failures`` with reasons."""
        p = self.prediction
        low, high = p.window_s
        if self.measured_s is None:
            self.failures.append(f"the connection did not die within {high:.3f} s (+ grace)")
        elif self.measured_s < low:
            self.failures.append(f"died EARLY: {self.measured_s:.3f} s < window start {low:.3f} s")
        elif self.measured_s > high:
            self.failures.append(f"died late: {self.measured_s:.3f} s > window end {high:.3f} s")
        if self.measured_s is not None and self.error != p.expected_error:
            self.failures.append(f"error {self.error}, expected {p.expected_error}")
        if self.measured_s is not None and self.probes != p.expected_probes:
            self.failures.append(f"{self.probes} probes sent (tcpi_probes), expected {p.expected_probes}")

    def to_dict(self) -> dict[str, Any]:
        """The machine-readable verdict (the CLI's ``--json``)."""
        return {
            "kernel": self.kernel.release,
            "hz": self.kernel.hz,
            "family": self.scenario.family,
            "keepalive": self.scenario.keepalive.to_dict(),
            "fault": self.scenario.fault,
            "state": "idle",
            "rule": self.prediction.rule,
            "expected_s": self.prediction.expected_s,
            "window_s": list(self.prediction.window_s),
            "measured_s": self.measured_s,
            "error": self.error,
            "expected_error": self.prediction.expected_error,
            "probes": self.probes,
            "expected_probes": self.prediction.expected_probes,
            "keepalive_counter": self.keepalive_counter,
            "fault_at_s": self.fault_at_s,
            "timeline": [asdict(e) for e in self.timeline],
            "verdict": self.verdict,
            "failures": self.failures,
            "kept_namespaces": self.kept_namespaces,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def explain(self) -> str:
        """The failure message for a person reading a CI log at 3 a.m."""
        p = self.prediction
        measured = "no death" if self.measured_s is None else f"{self.measured_s:.3f} s"
        lines = [
            f"{self.scenario.id} on {self.kernel.release} (HZ={self.kernel.hz}): {self.verdict.upper()}",
            f"  rule:     {p.rule}",
            f"  expected: {p.expected_s:.3f} s, window [{p.window_s[0]:.3f}, {p.window_s[1]:.3f}] s, "
            f"{p.expected_probes} probes, {p.expected_error}",
            f"  measured: {measured}, {self.probes} probes (tcpi_probes), "
            f"{self.keepalive_counter} sent (TcpExt TCPKeepAlive), error {self.error}",
        ]
        lines += [f"  problem:  {f}" for f in self.failures]
        if self.timeline:
            lines.append("  timeline (s since the last segment received):")
            lines += [f"    {e.t_s:8.3f}  {e.what}" for e in self.timeline]
        for name in self.kept_namespaces:
            lines.append(f"  kept for inspection: ip netns exec {name} ss -tino  (remove: netkit cleanup)")
        return "\n".join(lines)


def _keepalive_sent(lab: Lab) -> int:
    return counters.tcpext(lab.server.namespace).get("TcpExt.TCPKeepAlive", 0)


def _wait_for_answered_probe(sock: socket.socket, k: KeepaliveSettings, cancel: threading.Event) -> None:
    """Return right after a keepalive probe's reply was received.

    A reply resets the socket's receive timestamp, so ``tcpi_last_ack_recv``
    drops back towards zero.  Sampled every 2 ms: the fault then follows the
    reply within a few ms, long before the next timer run (>= 1 s).
    """
    deadline = time.monotonic() + max(k.idle, k.intvl) + 2.0
    previous = tcp_info(sock).last_ack_recv_ms
    while time.monotonic() < deadline:
        if cancel.wait(WARMUP_SAMPLE_S):
            raise ScenarioCancelled("cancelled while waiting for the first probe")
        now = tcp_info(sock).last_ack_recv_ms
        if now < previous:
            return
        previous = now
    raise NetkitError(f"no keepalive probe was answered within {max(k.idle, k.intvl) + 2:.0f} s while the peer was up")


def _wait_for_death(
    sock: socket.socket,
    result: ScenarioResult,
    cancel: threading.Event,
    on_progress: Callable[[Progress], None] | None,
) -> None:
    """Poll the dying socket; record the timeline; read the kernel's figures at death."""
    expected = result.prediction.expected_s
    give_up_s = result.prediction.window_s[1] + max(2.0, 0.5 * expected)
    poller = select.poll()
    poller.register(sock, select.POLLERR | select.POLLHUP | select.POLLIN)
    last_probes = 0
    while True:
        if cancel.is_set():
            raise ScenarioCancelled("cancelled while waiting for the connection to die")
        if poller.poll(SAMPLE_INTERVAL_S * 1000):
            break
        info = tcp_info(sock)
        elapsed = info.last_ack_recv_ms / 1000
        if info.probes != last_probes:
            result.timeline.append(TimelineEvent(elapsed, f"probe {info.probes} sent, unanswered (tcpi_probes={info.probes})"))
            last_probes = info.probes
        if on_progress:
            on_progress(Progress(elapsed, info.probes, expected))
        if elapsed > give_up_s:
            result.timeline.append(TimelineEvent(elapsed, "still alive; gave up waiting"))
            return
    info = tcp_info(sock)  # read first: every later syscall adds to the measurement
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    result.measured_s = info.last_ack_recv_ms / 1000
    result.probes = info.probes
    result.error = errno.errorcode.get(err, str(err)) if err else "none"
    result.timeline.append(TimelineEvent(result.measured_s, f"connection dead: {result.error}, state {info.state}"))


def run_scenario(
    scenario: Scenario,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    keep_failed: bool = False,
) -> ScenarioResult:
    """Prove one scenario on this kernel. Raises FeatureMissing if it cannot run here.

    With ``keep_failed`` a failing scenario's namespaces are named under
    /run/netns before teardown, for ``ip netns exec``.
    """
    cancel = cancel or threading.Event()
    kernel = kernel_info()
    fault = get_fault(scenario.fault)
    reason = fault.unsupported_reason()
    if reason:
        raise FeatureMissing(f"fault {fault.name} is not available here: {reason}")
    result = ScenarioResult(scenario, kernel, keepalive_death(scenario.keepalive, kernel, "probe-reply"))
    with Lab() as lab:
        result.lab = lab.name
        server, _client = lab.connect(scenario.family)
        scenario.keepalive.apply(server)
        _wait_for_answered_probe(server, scenario.keepalive, cancel)
        sent_before = _keepalive_sent(lab)
        fault.apply(lab)
        result.fault_at_s = tcp_info(server).last_ack_recv_ms / 1000
        result.timeline.append(TimelineEvent(0.0, "last segment received (reply to a keepalive probe)"))
        result.timeline.append(TimelineEvent(result.fault_at_s, f"fault: {fault.description}"))
        _wait_for_death(server, result, cancel, on_progress)
        result.keepalive_counter = _keepalive_sent(lab) - sent_before
        result.judge()
        if keep_failed and result.failures:
            result.kept_namespaces = lab.keep()
    return result


class ScenarioPool:
    """Runs scenarios concurrently in threads; ask for any result when you need it.

    ``submit`` starts a scenario at once (a scenario submitted twice runs
    once); ``result`` waits for it.  ``close`` cancels whatever still runs and
    waits until every lab is torn down -- also on Ctrl-C.
    """

    def __init__(self, max_workers: int = 64, keep_failed: bool = False) -> None:
        self.keep_failed = keep_failed
        self.cancel = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="netkit-scenario")
        self._futures: dict[Scenario, Future[ScenarioResult]] = {}

    def submit(self, *scenarios: Scenario) -> None:
        for scenario in scenarios:
            if scenario not in self._futures:
                self._futures[scenario] = self._pool.submit(
                    run_scenario, scenario, cancel=self.cancel, keep_failed=self.keep_failed
                )

    def result(self, scenario: Scenario) -> ScenarioResult:
        """The scenario's result; re-raises what it raised (e.g. FeatureMissing)."""
        self.submit(scenario)
        try:
            return self._futures[scenario].result()
        except BaseException:
            if not self._futures[scenario].done():  # interrupted while waiting
                self.close()
            raise

    def close(self) -> None:
        self.cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ScenarioPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def run_many(scenarios: Iterable[Scenario], *, keep_failed: bool = False) -> list[ScenarioResult | BaseException]:
    """Run scenarios concurrently; results (or the exception each raised) in input order."""
    scenarios = list(scenarios)
    outcomes: list[ScenarioResult | BaseException] = []
    with ScenarioPool(max_workers=max(1, len(scenarios)), keep_failed=keep_failed) as pool:
        pool.submit(*scenarios)
        for scenario in scenarios:
            try:
                outcomes.append(pool.result(scenario))
            except Exception as exc:
                outcomes.append(exc)
    return outcomes
