"""A scenario result as text: the one-line wire summary, the 3 a.m. explanation, the demo's lines.

It prints what the record stores (the judged death and its source, the
count, each event's kind) and judges nothing again; the record is imported
for type checking only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from ..enums import Clock, CountSource, DeathSource, EventKind, State
from ..evidence.ledger import Arming, Ledger
from ..evidence.verdict import OBSERVER_SAMPLE_S

if TYPE_CHECKING:
    from ..kernel import KernelInfo
    from ..model.prediction import DeathPrediction
    from ..scenario.result import ScenarioResult
    from ..scenario.spec import Scenario

PREPARATION = {
    "idle": "waiting for a keepalive probe to be answered, then breaking the path",
    "unacked": "breaking the path, then sending 100 bytes into it",
    "zero-window": "filling the peer's receive window until it closes, then breaking the path",
    "retracted-window": "cutting the peer's receive buffer, sending 16 KB it takes back its window for, then breaking the path",
    "syn-sent": "breaking the path, then connecting through it",
    "syn-recv": "the client sends its SYN and vanishes",
}
SAMPLED_EVERY = f"every {OBSERVER_SAMPLE_S * 1000:g} ms"  # the observer's interval, as the lines say it


def live_count(p: DeathPrediction) -> tuple[CountSource, int]:
    """What the demo's live samples count, and up to what: the prediction's count, or a survival's probes (0 they stay)."""
    if p.alive_until_s is not None:
        return CountSource.PROBES, 0
    return CountSource(p.count_source), p.expected_count


def watch_header(p: DeathPrediction) -> str:
    """The line above the demo's live samples: what t = 0 is and how often the count is read."""
    return f"  time since {Clock(p.measured_from).since} ({live_count(p)[0]} sampled {SAMPLED_EVERY}):"


DEMO_EVENTS = (EventKind.DEATH, EventKind.GAVE_UP)  # the observer's events the demo's closing lines repeat
COUNTED = {CountSource.PROBES: "unanswered probe", CountSource.RETRANSMITS: "retransmission",
           CountSource.WIN_PROBES: "window probe", CountSource.SYN_RETRANS: "SYN retransmission",
           CountSource.RETRANS_SEGS: "retransmission", CountSource.KEEPALIVES: "keepalive attempt"}


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def wire_summary(r: ScenarioResult) -> str:
    """One line: what the wire showed, or why it cannot show it and what the evidence is instead."""
    w = r.wire
    if w is None:
        return "no capture"
    if not w.visible:
        kernel = ", ".join(f"{name} {value}" for name, value in w.kernel.items() if value is not None)
        return f"{w.note}; the evidence is the kernel's counters: {kernel}"
    if State(r.state).handshake:
        what = "SYN-ACK" if r.state == State.SYN_RECV else "SYN"
        parts = [plural(len(w.retransmissions_s), f"{what} retransmission")]
        parts.append(f"RST from the peer at {w.peer_rst_s:.3f} s" if w.peer_rst_s is not None else "no RST")
        return f"{'; '.join(parts)} (on {w.interface}, {w.frames} frames; t = 0 is {w.anchor})"
    parts = [plural(len(w.probes_s), "keepalive probe") + f" ({w.unanswered_probes} unanswered)"]
    if w.spacing_s:
        parts.append("spacing " + ", ".join(f"{g:.3f}" for g in w.spacing_s) + " s")
    if w.first_probe_s is not None:
        parts.append(f"first at {w.first_probe_s:.3f} s")
    if w.retransmissions_s:
        parts.append(plural(len(w.retransmissions_s), "retransmission") + " (a tail loss probe counts)")
    if w.zero_window_probes_s:
        parts.append(plural(len(w.zero_window_probes_s), "zero-window probe"))
    parts.append(f"RST sent at {w.rst_s:.3f} s" if w.rst_s is not None else "no RST sent")
    if w.peer_rst_s is not None:
        parts.append(f"RST from the peer at {w.peer_rst_s:.3f} s")
    drops = f", {w.drops} DROPPED by the capture" if w.drops else ""
    return f"{'; '.join(parts)} (on {w.interface}, {w.frames} frames{drops}; t = 0 is {w.anchor})"


def _expected_line(p: DeathPrediction) -> str:
    return (f"  expected: {p.expected_s:.3f} s, window [{p.window_s[0]:.3f}, {p.window_s[1]:.3f}] s, "
            f"{p.count_source} = {p.expected_count}, {p.expected_error}"
            + (f"; or early: {_early_outcome(p)}" if p.alternative_window_s else "")
            + (f"; peer dies too with {p.peer_expected_error}" if p.peer_expected_error else ""))


def _timeline_lines(r: ScenarioResult) -> list[str]:
    if not r.timeline:
        return []
    sources = []
    if any(e.source == "wire" for e in r.timeline):
        sources.append("[wire] = kernel timestamp of the frame on the tested veth")
    if any(e.source == "sampled" for e in r.timeline):
        sources.append(f"[sampled] = tcp_info polled {SAMPLED_EVERY}")
    since = Clock(r.prediction.measured_from).since
    lines = [f"  timeline (s since {since}" + "".join(f"; {x}" for x in sources) + "):"]
    return lines + [f"    {e.t_s:8.3f}  {e.what}" + (f"  [{e.source}]" if e.source else "") for e in r.timeline]


def death_sources(r: ScenarioResult) -> str:
    """``the kernel's RST on the wire at 6.045 s (the time judged); the observer read 6.048 s, 3.0 ms later``."""
    traced = r.death_source is DeathSource.TRACE  # the tracepoint's clock: microseconds
    what = "the kernel's CLOSE in its timer's run (the ledger)" if traced else "the kernel's RST on the wire"
    return (f"{what} at {r.kernel_death_s:.{6 if traced else 3}f} s (the time judged); "
            f"the observer read {r.measured_s:.3f} s, {1000 * (r.observer_late_s or 0.0):.1f} ms later")


def ledger_lines(r: ScenarioResult) -> list[str]:
    """The run's timer ledger (:func:`timer_ledger_lines`), or why it has none."""
    if r.ledger is None:
        return [f"  evidence: observer ({r.evidence_note or 'no timer ledger'})"]
    schedule = r.prediction.schedule
    intvl = None if schedule is None else round(schedule.intvl * r.ledger.hz)
    return timer_ledger_lines(r.ledger, intvl, Clock(r.prediction.measured_from).since, r.machine_late)


def timer_ledger_lines(ledger: Ledger, intvl_jiffies: int | None, since: str,
                       machine_late: str | None = None) -> list[str]:
    """The timer ledger, one line per arming and per run (what was asked, where the wheel put it, when it ran).

    Beside each keepalive re-arm the rule's figure (``intvl * HZ``); beside
    each run how late it was against its bucket's jiffy: the machine's
    lateness, reported apart from the rule.
    """
    def arming_text(a: Arming) -> str:
        rule = f" (rule: intvl * HZ = {intvl_jiffies})" if a.by_run and a.delay == intvl_jiffies else ""
        return f"{a.delay} jiffies{rule} -> bucket {a.bucket} (expires +{a.bucket - a.expires})"

    rows: list[tuple[float, str]] = [(a.t_s, f"{a.function} armed by a system call: {arming_text(a)}")
                                     for a in ledger.armings if not a.by_run]
    rearms = [a for a in ledger.armings if a.by_run]
    for run in ledger.runs:
        text = f"{run.function} ran at jiffy {run.now}"
        if run.late_s is not None:
            text += f", {run.late_s * 1000:.3f} ms after its bucket began"
        rearm = next((a for a in rearms if a.function == run.function and a.now == run.now and a.t_s >= run.t_s), None)
        if rearm is not None:
            text += f"; re-armed {arming_text(rearm)}"
        rows.append((run.t_s, text))
    if ledger.death is not None:
        rows.append((ledger.death.t_s, f"CLOSE in {ledger.death.function}'s run, error {ledger.death.error}"))
    lines = [f"  timer ledger (evidence: trace; jiffies at HZ={ledger.hz}; s since {since}"
             + ("; EVENTS LOST" if ledger.lost else "") + "):"]
    lines += [f"    {t:10.6f}  {text}" for t, text in sorted(rows, key=lambda row: row[0])]
    if machine_late:
        lines.append(f"    {machine_late}")
    return lines


def explain(r: ScenarioResult) -> str:
    """The failure message for a person reading a CI log at 3 a.m."""
    p = r.prediction
    measured = "no death" if r.measured_s is None else (
        death_sources(r) if r.kernel_death_s is not None else f"{r.measured_s:.3f} s")
    lines = [
        f"{r.scenario.id} on {r.kernel.release} (HZ={r.kernel.hz}): {r.verdict.upper()}",
        f"  rule:     {p.rule}",
        _expected_line(p),
        f"  measured: {measured}, {r.probes} probes (tcpi_probes), {r.retransmits} retransmits, "
        f"{r.keepalive_counter} keepalives sent (TcpExt TCPKeepAlive), error {r.error}"
        + (f"; peer {r.peer_error}, {r.peer_lag_s} s apart" if p.peer_expected_error else ""),
    ]
    if r.wire is not None:
        lines.append(f"  wire:     {wire_summary(r)}")
    if r.connections:
        lines.append(f"  connections: {connections_summary(r)}")
    if r.middlebox is not None:
        lines.append(f"  middlebox: {r.middlebox.summary()}")
    lines += [f"  problem:  {f}" for f in r.failures]
    lines += _timeline_lines(r)
    if r.ledger is not None:
        lines += ledger_lines(r)
    if r.pcap:
        lines.append(f"  pcap:     {r.pcap}  (read it: tcpdump -nr {r.pcap})")
    for name in r.kept_namespaces:
        lines.append(f"  kept for inspection: ip netns exec {name} ss -tino  (remove: netkit cleanup)")
    return "\n".join(lines)


def connections_summary(r: ScenarioResult) -> str:
    """One line for a many-connection scenario: how many died as the rule says, the spread, errors, counts."""
    p = r.prediction
    dead = [c for c in r.connections if c.measured_s is not None]
    parts = [f"{len(r.connections)}, {r.connections_passed} died inside the window with the right {p.count_source} "
             "and error"]
    if dead:
        times = [c.measured_s for c in dead if c.measured_s is not None]
        parts.append(f"deaths seen by the observer {min(times):.3f}..{max(times):.3f} s")
        rst = [c.wire_rst_s for c in dead if c.wire_rst_s is not None]
        if rst:
            parts.append(f"RSTs on the wire {min(rst):.3f}..{max(rst):.3f} s")
        errors: dict[str, int] = {}
        for c in dead:
            errors[str(c.error)] = errors.get(str(c.error), 0) + 1
        parts.append("errors " + ", ".join(f"{e} x{n}" for e, n in sorted(errors.items())))
    if len(dead) < len(r.connections):
        parts.append(f"{len(r.connections) - len(dead)} never died")
    return "; ".join(parts)


# -- the demo -------------------------------------------------------------------------


def demo_header(scenario: Scenario, kernel: KernelInfo, p: DeathPrediction) -> list[str]:
    """What the demo prints before the lab is built: settings, the rule, the window it will judge by."""
    if scenario.topology == "routed":
        from .middlebox import middlebox_header

        return [*middlebox_header(scenario, kernel, p), watch_header(p)]
    k = scenario.keepalive
    ut = f" user_timeout={k.user_timeout_ms}ms" if k.user_timeout_ms is not None else ""
    if State(scenario.state).handshake:
        what = "connect()" if scenario.state == State.SYN_SENT else "listener"
        tested = f"{scenario.side} {what} syn_retries={scenario.syn_retries}{ut} (via {scenario.keepalive_via})"
    else:
        tested = f"{scenario.side} keepalive idle={k.idle}s intvl={k.intvl}s cnt={k.cnt}{ut} (via {scenario.keepalive_via})"
    expect = (f"expect: alive through {p.alive_until_s:g} s, tcpi_probes 0; " if p.alive_until_s is not None else
              f"expect death at {p.expected_s:.3f} s, window [{p.window_s[0]:.3f}, {p.window_s[1]:.3f}] s, "
              f"{p.expected_error}{_or_early(p)}; ")
    return [
        f"netkit demo: {tested} over {scenario.family}, {scenario.state} connection; fault: {scenario.fault}; "
        f"kernel {kernel.release} (HZ={kernel.hz})",
        f"rule: {p.rule}",
        f"{expect}{PREPARATION[scenario.state]}...",
        watch_header(p),
    ]


def _early_outcome(p: DeathPrediction) -> str:
    """The second outcome's window and count: where timer lateness lets an earlier run end the connection."""
    assert p.alternative_window_s is not None
    low, high = p.alternative_window_s
    return f"[{low:.3f}, {high:.3f}] s with {p.alternative_count}"


def _or_early(p: DeathPrediction) -> str:
    """The demo's announcement of the second outcome (empty: none)."""
    return f" (or, if timer lateness lets an earlier run qualify, {_early_outcome(p)})" if p.alternative_window_s else ""


def print_demo_result(r: ScenarioResult, out: TextIO) -> None:
    """The demo's closing lines: the death, the wire, the verdict, where the evidence is."""
    p = r.prediction
    (low, high), expected_count = p.window_s, p.expected_count
    for (early_low, early_high), count in p.outcomes()[1:]:  # the outcome the kernel took is the one shown
        if r.death_s is not None and early_low <= r.death_s <= early_high:
            (low, high), expected_count = (early_low, early_high), count
    for event in r.timeline:
        if event.kind in DEMO_EVENTS:
            print(f"  {event.t_s:7.3f} s  {event.what}", file=out)
    wire = r.wire
    if wire is not None and wire.visible:
        print(f"  on the wire ({wire.interface}, kernel timestamps), s since {wire.anchor}:", file=out)
        for event in wire.events:
            print(f"  {event.t_s:7.3f} s  {event.what}", file=out)
    if wire is not None:
        print(f"wire: {wire_summary(r)}", file=out)
    if r.ledger is not None:
        for line in ledger_lines(r):
            print(line[2:], file=out)
    if r.kernel_death_s is not None:
        print(f"death: {death_sources(r)}", file=out)
    since = Clock(p.measured_from).since
    measured = "did not die" if r.death_s is None else f"died {r.death_s:.3f} s after {since}"
    if r.middlebox is not None:
        print(f"middlebox: {r.middlebox.summary()} (t = 0: {r.middlebox.clock})", file=out)
    if p.alive_until_s is not None:
        from .middlebox import survival_verdict

        print(survival_verdict(r), file=out)
    else:
        window = "the early outcome's window" if (low, high) != tuple(p.window_s) else "window"
        print(f"verdict: {r.verdict.upper()} - {measured} ({window} [{low:.3f}, {high:.3f}] s); "
              f"{p.count_source} {r.count} (expected {expected_count}); error {r.error} (expected {p.expected_error})",
              file=out)
    for failure in r.failures:
        print(f"  problem: {failure}", file=out)
    if r.ledger is None:
        print(f"evidence: observer ({r.evidence_note or 'no timer ledger'})", file=out)
    for name in r.kept_namespaces:
        print(f"  kept: ip netns exec {name} ss -tino   (remove with: netkit cleanup)", file=out)
    if r.pcap:
        print(f"pcap: {r.pcap}  (read it: tcpdump -nr {r.pcap})", file=out)
