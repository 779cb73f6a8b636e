"""The timer ledger, pure: tracefs text to armings, runs and the death; the rule to the jiffy; the machine apart.

Traces are written here as tracefs prints them (HZ=250, jiffy J starts at
J * 4 ms on the monotonic clock), so every figure below can be checked by hand.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

import netkit.evidence.ledger_check as ledger_check
from netkit import KeepaliveSettings, Scenario, ScenarioResult
from netkit.enums import DeathSource, Timing
from netkit.evidence.ledger import (
    Arming,
    Ledger,
    LedgerUnreadable,
    build,
    learned_timer,
    marked_pid,
    parse,
    socket_moments,
    timer_in,
)
from netkit.evidence.ledger_check import (
    WriteTimerRule,
    base_candidates,
    carried,
    expected_write_rearms,
    on_time,
    possible_buckets,
    rule_failures,
    write_timer_failures,
    write_timer_rule,
)
from netkit.evidence.wire import WireEvidence
from netkit.faults import fault_info
from netkit.kernel import KernelInfo
from netkit.model import keepalive_death, predict
from netkit.model.rto import clamp_rto_to_user_timeout_jiffies
from netkit.model.wheel import bucket_at_level, runs_at_jiffy

HZ = 250
TICK_US = 4000
OURS = "ffff888100000100"
OTHER = "ffff888100000200"  # another lab's socket: same addresses and ports, another timer
J0 = 8000  # the answered probe's run (a multiple of 8: level-1 buckets fall on it)
PID = 4242


def _ts(jiffy: int, plus_us: int = 20) -> str:
    us = jiffy * TICK_US + plus_us
    return f"{us // 10**6}.{us % 10**6:06d}"


def _start(timer: str, jiffy: int, delay: int, bucket: int, cpu: int = 1, pid: int = 0, plus_us: int = 30) -> str:
    task, flags = (f"python-{pid}", "d..1.") if pid else ("<idle>-0", "dNs3.")  # a system call; a softirq
    return (f"  {task}   [00{cpu}] {flags} {_ts(jiffy, plus_us)}: timer_start: timer={timer} "
            f"function=tcp_keepalive_timer expires={jiffy + delay} [timeout={delay}] bucket_expiry={bucket} "
            f"cpu={cpu} idx=88 flags=")


def _entry(timer: str, jiffy: int, cpu: int = 1, plus_us: int = 20) -> str:
    return (f"  <idle>-0   [00{cpu}] ..s1. {_ts(jiffy, plus_us)}: timer_expire_entry: timer={timer} "
            f"function=tcp_keepalive_timer now={jiffy} baseclk={jiffy}")


def _exit(timer: str, jiffy: int, cpu: int = 1, plus_us: int = 60) -> str:
    return f"  <idle>-0   [00{cpu}] ..s1. {_ts(jiffy, plus_us)}: timer_expire_exit: timer={timer}"


def _death(jiffy: int, cpu: int = 1, plus_us: int = 45) -> list[str]:
    addresses = "saddr=198.18.0.1 daddr=198.18.0.2 saddrv6=::ffff:198.18.0.1 daddrv6=::ffff:198.18.0.2"
    return [f"  <idle>-0   [00{cpu}] .Ns2. {_ts(jiffy, plus_us)}: inet_sock_set_state: family=AF_INET "
            f"protocol=IPPROTO_TCP sport=4242 dport=53914 {addresses} oldstate=TCP_ESTABLISHED newstate=TCP_CLOSE",
            f"  <idle>-0   [00{cpu}] .Ns2. {_ts(jiffy, plus_us + 4)}: inet_sk_error_report: family=AF_INET "
            f"protocol=IPPROTO_TCP sport=4242 dport=53914 {addresses} error=110"]


def keepalive_trace(late_run: int | None = None, late_jiffies: int = 0, late_us: int = 0,
                    delay: int = 250, timer: str = OURS, cpu: int = 1) -> tuple[str, list[int]]:
    """1/1/3 after an answered probe: the setsockopt arming, the answered probe's run, 3 probe runs, the death.

    Returns the trace and the jiffy each run after the answered probe's ran at.
    ``late_run`` (1..4) runs ``late_jiffies`` + ``late_us`` after its bucket.
    """
    lines = [_start(timer, J0 - 251, 250, J0, pid=PID)]  # expires J0 - 1: the bucket of J0
    now = J0
    ran = []
    for run in range(5):  # 0: the answered probe's run; 1..3: probes; 4: the death
        extra = late_us if run == late_run else 0
        if run == late_run:
            now += late_jiffies
        lines.append(_entry(timer, now, cpu, plus_us=20 + extra))
        if run == 4:
            lines += _death(now, cpu, plus_us=45 + extra)
        else:
            bucket = runs_at_jiffy(now, delay, HZ)
            lines.append(_start(timer, now, delay, bucket, cpu=cpu, plus_us=30 + extra))
        lines.append(_exit(timer, now, cpu, plus_us=60 + extra))
        if run:
            ran.append(now)
        if run < 4:
            now = runs_at_jiffy(now, delay, HZ)
    return "\n".join(lines), ran


ZERO_NS = (J0 * TICK_US + 100) * 1000  # t = 0: the answered probe's reply, 80 us after its run


def _ledger(text: str, timers=(OURS,)) -> Ledger:
    return build(parse(text), timers, HZ, ZERO_NS)


def test_a_keepalive_ledger_reads_as_the_kernel_ran_it():
    text, ran = keepalive_trace()
    ledger = _ledger(text)
    assert [a.delay for a in ledger.armings] == [250] * 5
    assert [a.by_run for a in ledger.armings] == [False] + [True] * 4
    assert [r.now for r in ledger.runs][1:] == ran == [J0 + 256, J0 + 512, J0 + 768, J0 + 1024]
    assert all(r.late_jiffies == 0 and r.late_s is not None and r.late_s < 1e-4 for r in ledger.runs)
    assert ledger.death is not None and ledger.death.error == 110
    assert ledger.death.t_s == pytest.approx(1024 * 0.004 - 100e-6 + 45e-6, abs=1e-6)
    assert rule_failures(ledger, 1, 3, 1) == []


def test_the_rule_check_catches_one_jiffy_that_the_window_hides(monkeypatch):
    ledger = _ledger(keepalive_trace()[0])
    monkeypatch.setattr(ledger_check, "RULE_SHIFT_JIFFIES", 1)  # the model's re-arm one jiffy off
    [failure] = rule_failures(ledger, 1, 3, 1)
    assert "251 jiffies" in str(failure) and "250, 250, 250" in str(failure)
    wrong_bucket = dataclasses.replace(ledger.armings[2], bucket=ledger.armings[2].bucket + 1)
    tampered = dataclasses.replace(ledger, armings=(*ledger.armings[:2], wrong_bucket, *ledger.armings[3:]))
    monkeypatch.setattr(ledger_check, "RULE_SHIFT_JIFFIES", 0)
    [failure] = rule_failures(tampered, 1, 3, 1)
    assert failure.rule == "ledger: wheel bucket"


def test_a_kernel_rearming_for_another_interval_fails_the_rule():
    ledger = _ledger(keepalive_trace(delay=251)[0])
    assert [f.rule for f in rule_failures(ledger, 1, 3, 1)] == ["ledger: keepalive re-arm"]


def test_another_labs_death_on_another_cpu_is_never_ours():
    ours, _ = keepalive_trace()
    theirs, _ = keepalive_trace(timer=OTHER, cpu=0, late_run=4, late_jiffies=-40)  # it dies 160 ms before ours
    merged = "\n".join(sorted(ours.splitlines() + theirs.splitlines(), key=lambda line: line.split("]")[1][7:]))
    ledger = _ledger(merged)
    assert len(ledger.runs) == 5 and ledger.death is not None
    assert ledger.death.t_s == _ledger(ours).death.t_s  # not the other lab's, 160 ms earlier, same 4-tuple


def test_a_close_outside_a_run_of_ours_is_not_a_death():
    text, _ = keepalive_trace()
    without_our_death = [line for line in text.splitlines() if "inet_" not in line]
    stray = _death(J0 + 1024, cpu=0)  # the same moment, the same 4-tuple, another CPU: another socket's
    assert _ledger("\n".join(without_our_death + stray)).death is None


def test_a_death_at_our_address_before_our_socket_had_it_is_another_sockets():
    # The trace of a whole process tree (one instance for a pool) once gave a zero-window run a death at -0.496 s,
    # error 101: another lab's socket, freed before ours was made at its address, died in its keepalive run there.
    ours, _ = keepalive_trace()
    earlier = J0 - 400  # before our setsockopt's arming at J0 - 251
    theirs = [_entry(OURS, earlier), *_death(earlier), _exit(OURS, earlier)]
    text = "\n".join([*theirs, *ours.splitlines()])
    assert _ledger(text).death is not None and _ledger(text).death.t_s < -1  # taken without the moment of ownership
    learned = parse(ours)[0].t_ns - 1000  # the learning call's start, 1 us before its arming
    ledger = build(parse(text), (OURS,), HZ, ZERO_NS, owned_from={OURS: learned})
    assert ledger == _ledger(ours)  # theirs is gone: our death, our runs


def test_a_close_before_the_socket_last_received_a_segment_is_not_its_death():
    # A program's socket (check-server) is armed by no call of netkit's: its address has no moment of ownership.
    # But it received a segment at t = 0 (tcp:tcp_probe, its cookie), so no CLOSE before that is its own.
    ours, _ = keepalive_trace()
    earlier = J0 - 400
    text = "\n".join([_entry(OURS, earlier), *_death(earlier), _exit(OURS, earlier), *ours.splitlines()])
    assert _ledger(text).death is not None and _ledger(text).death.t_s < -1
    ledger = build(parse(text), (OURS,), HZ, ZERO_NS, alive_at_ns=ZERO_NS)
    assert ledger.death == _ledger(ours).death  # its own, in the last run


def test_what_reuses_the_address_after_the_death_is_not_the_sockets():
    # pgbouncer connects again as soon as its server connection dies: the new socket, at the same address, armed its
    # keepalive timer (SO_KEEPALIVE's 7200 s, then TCP_KEEPIDLE's 1 s) and ran it, and the ledger counted a re-arm
    # "after a probe" more than the socket sent probes.
    ours, _ = keepalive_trace()
    end = _ledger(ours)
    assert end.death is not None
    after = end.runs[-1].now + 12
    reuse = [_start(OURS, after, 1800000, after + 1800000), _start(OURS, after, 250, after + 256),
             _entry(OURS, after + 256), _exit(OURS, after + 256)]
    ledger = _ledger("\n".join([*ours.splitlines(), *reuse]))
    assert ledger == end


def test_the_ledger_keeps_the_markers_of_its_own_thread_only():
    # Every run of a pool writes into one trace; the user-timeout clamp reads the latest of *our* markers before
    # the send (retrans_stamp lies after it): another worker's, later, would narrow that bracket past the stamp.
    ours, _ = keepalive_trace()

    def marker(pid: int, jiffy: int) -> str:
        return f"  python-{pid}   [000] ..... {_ts(jiffy)}: tracing_mark_write: nk-learning-{pid}"

    text = "\n".join([marker(PID, J0 - 260), marker(PID + 7, J0 - 255), *ours.splitlines()])
    assert len(_ledger(text).marks_s) == 2
    [only] = build(parse(text), (OURS,), HZ, ZERO_NS, marker_pid=PID).marks_s
    assert only == pytest.approx(-260 * TICK_US / 1e6 - 80e-6, abs=1e-6)


def test_a_run_whose_exit_was_not_seen_holds_no_death():
    text, _ = keepalive_trace()
    lines = text.splitlines()
    assert _ledger("\n".join(lines[:-1])).death is None


def test_the_timer_is_learned_from_the_one_arming_of_netkits_own_call():
    text, _ = keepalive_trace()
    lines = parse(text)
    call = (J0 - 251) * TICK_US * 1000
    assert learned_timer(lines, PID, "tcp_keepalive_timer", call, call + 10**6) == OURS
    assert learned_timer(lines, PID + 1, "tcp_keepalive_timer", call, call + 10**6) is None
    twice = parse(text + "\n" + _start(OTHER, J0 - 251, 250, J0, pid=PID))
    assert learned_timer(twice, PID, "tcp_keepalive_timer", call, call + 10**6) is None  # two: no guess
    # Another lab's timer re-armed by a softirq on the way out of our call carries our pid: not ours.
    softirq = _start(OTHER, J0 - 251, 250, J0, pid=PID).replace("d..1.", "d.s1.")
    assert learned_timer(parse(text + "\n" + softirq), PID, "tcp_keepalive_timer", call, call + 10**6) == OURS


def test_lateness_is_measured_and_what_carries_over_is_recomputed_on_the_wheel():
    text, _ = keepalive_trace(late_run=2, late_jiffies=3, late_us=1000)  # probe 2 13 ms late
    ledger = _ledger(text)
    assert ledger.runs[2].late_jiffies == 3
    assert ledger.runs[2].late_s == pytest.approx(0.013, abs=1e-5)
    shifts = carried(ledger, 250)
    assert shifts[2] == pytest.approx(0.013, abs=1e-5)
    assert shifts[3] == pytest.approx(0, abs=1e-4)  # re-armed from jiffy 8515: the same bucket, 8768, on time
    assert on_time(ledger, shifts).runs[2].t_s == pytest.approx(ledger.runs[2].t_s - 0.013, abs=1e-6)


def test_lost_events_are_flagged():
    text, _ = keepalive_trace()
    assert _ledger(text + "\nCPU:1 [LOST 12 EVENTS]").lost
    assert Ledger.from_dict(_ledger(text).to_dict()) == _ledger(text)


def _result(ledger: Ledger, probes_s: list[float], rst_s: float) -> ScenarioResult:
    kernel = KernelInfo("test", HZ, "test")
    scenario = Scenario(KeepaliveSettings(1, 1, 3), fault="blackhole")
    wire = WireEvidence(probes_s=probes_s, unanswered_probes=3, first_probe_s=probes_s[0], rst_s=rst_s,
                        spacing_s=[round(b - a, 6) for a, b in zip(probes_s, probes_s[1:], strict=False)])
    return ScenarioResult(scenario, kernel, keepalive_death(scenario.keepalive, kernel), measured_s=rst_s + 0.001,
                          error="ETIMEDOUT", probes=3, counters={"TCPKeepAlive": 3}, wire=wire, ledger=ledger)


def _frames(ledger: Ledger) -> tuple[list[float], float]:
    """The probes and the RST as the tap would stamp them: 10 us into the runs that sent them."""
    assert ledger.death is not None
    return [round(r.t_s + 1e-5, 6) for r in ledger.runs[1:4]], round(ledger.death.t_s - 1e-5, 6)


def test_probes_late_only_by_the_machine_are_machine_late_not_a_failure_of_the_kernel():
    # The CI failure of issue 22: probes 1 and 2 1.037 s apart against [0.996, 1.036].
    ledger = _ledger(keepalive_trace(late_run=2, late_jiffies=3, late_us=1000)[0])
    result = _result(ledger, *_frames(ledger))
    assert result.death_source is DeathSource.TRACE
    assert result.failures and "1.037 s apart" in str(result.failures[0])
    assert result.machine_late is not None and result.machine_late.startswith("machine late by 13.0 ms at run 3")
    assert result.evidence == "trace"


def test_a_late_probe_that_the_ledger_does_not_explain_is_a_failure():
    ledger = _ledger(keepalive_trace()[0])
    probes, rst = _frames(ledger)
    probes[1] += 0.013  # on the wire 13 ms late, yet its run was on time: not the machine
    result = _result(ledger, probes, rst)
    assert result.failures and result.machine_late is None


def test_an_early_death_is_never_the_machine():
    ledger = _ledger(keepalive_trace(late_run=2, late_jiffies=3, late_us=1000)[0])
    early = dataclasses.replace(ledger, death=dataclasses.replace(ledger.death, t_s=3.9))
    probes, rst = _frames(ledger)
    result = _result(early, probes, rst)
    assert any(f.early for f in result.failures) and result.machine_late is None


def test_a_rule_mismatch_fails_however_late_the_machine(monkeypatch):
    monkeypatch.setattr(ledger_check, "RULE_SHIFT_JIFFIES", 1)
    ledger = _ledger(keepalive_trace(late_run=2, late_jiffies=3, late_us=1000)[0])
    result = _result(ledger, *_frames(ledger))
    assert result.rule_failures and result.machine_late is None


def _as_linux_6_1(line: str) -> str:
    """A timer_start line as Linux 6.1 prints it: no bucket_expiry, the wheel index (level * 64 + slot) instead."""
    found = re.search(r"expires=(\d+) .* bucket_expiry=(\d+) cpu=(\d+) idx=\d+", line)
    if found is None:
        return line
    expires, bucket = int(found.group(1)), int(found.group(2))
    level = next(n for n in range(9) if bucket_at_level(expires, n) == bucket)
    index = level * 64 + ((bucket >> (3 * level)) & 63)
    return line.replace(f" bucket_expiry={bucket} ", " ").replace(" idx=88 ", f" idx={index} ")


def test_a_kernel_that_prints_the_wheel_index_instead_of_the_bucket_gives_the_same_ledger():
    text, _ = keepalive_trace(late_run=2, late_jiffies=3, late_us=1000)
    linux_6_1 = "\n".join(_as_linux_6_1(line) for line in text.splitlines())
    assert "bucket_expiry" not in linux_6_1
    assert len(re.findall(r"idx=(\d+)", linux_6_1)) == 5 and "idx=88" not in linux_6_1  # the five armings' own
    assert _ledger(linux_6_1) == _ledger(text)


def test_the_wheel_index_gives_the_bucket_this_kernel_printed_for_every_real_arming():
    # calc_index's formula from the printed idx, against the printed bucket_expiry: every timer_start of every capture
    checked = 0
    for path in sorted(LEDGERS.glob("*.json")):
        data = json.loads(path.read_text())
        for line in parse(data.get("trace", "")):
            if line.event == "timer_start" and "bucket_expiry" in line.fields:
                expires, level = int(line.fields["expires"]), int(line.fields["idx"]) // 64
                assert bucket_at_level(expires, level) == int(line.fields["bucket_expiry"]), (path.name, line)
                checked += 1
    assert checked > 100


def test_a_kernel_whose_timer_start_prints_no_bucket_says_so_instead_of_guessing():
    text, _ = keepalive_trace()
    neither = "\n".join(line.split(" bucket_expiry=")[0] for line in text.splitlines())  # no bucket, no idx
    with pytest.raises(LedgerUnreadable, match="neither bucket_expiry nor idx"):
        _ledger(neither)


def test_the_buckets_allowed_follow_the_bases_clock_not_a_tolerance():
    # A re-arm for 504 jiffies from a run on time: during the run base->clk is jiffies + 1, so the delta is 503:
    # level 1 (granularity 8), not level 2 (64).  The same re-arm from a run 6 jiffies late whose base was forwarded
    # only to its next expiry can see 509: level 2.  Anything else is a rule failure.
    on_time = Arming(1.0, "tcp_keepalive_timer", 8000, 8504, 8512, True, run_late=0)
    assert 8512 in possible_buckets(on_time, HZ) and 8512 + 56 not in possible_buckets(on_time, HZ)
    late = dataclasses.replace(on_time, run_late=6)
    assert ((8504 >> 6) + 1) << 6 in possible_buckets(late, HZ)  # level 2's rounding
    assert rule_failures(Ledger(HZ, (dataclasses.replace(on_time, bucket=8513),), (), None), None, None)


def test_lateness_before_t0_is_not_carried():
    # The answered probe's run (before t = 0) ran 3 jiffies late: t = 0 is the reply to that late probe, so the
    # model's axis already holds it; nothing of it is taken out of the runs after t = 0.
    ledger = _ledger(keepalive_trace(late_run=0, late_jiffies=3)[0])
    shifts = carried(ledger, 250)
    assert ledger.runs[0].late_jiffies == 3 and shifts[1:] == pytest.approx([0] * 4, abs=1e-4)


def test_a_thread_learns_its_trace_pid_from_its_own_marker():
    # In a container the thread's own pid is not the one the trace records: the marker it writes says which is.
    text, _ = keepalive_trace()
    marker = f"  python-{PID}   [001] ..... {_ts(J0 - 252)}: tracing_mark_write: nk-learning-0a1b2c"
    lines = parse(marker + "\n" + text)
    assert marked_pid(lines, "nk-learning-0a1b2c") == PID and marked_pid(lines, "nk-learning-ffffff") is None


def test_a_moved_ledger_says_by_how_much_and_the_observers_lateness_is_read_on_its_own_axis():
    from synthetic_ledger import keepalive_ledger, keepalive_result

    ledger = keepalive_ledger()
    moved = ledger.moved(0.05).moved(0.009)
    assert moved.moved_s == 0.059 and Ledger.from_dict(moved.to_dict()) == moved
    assert Ledger.from_dict({k: v for k, v in ledger.to_dict().items() if k != "moved_s"}).moved_s == 0.0  # older JSON
    assert moved.death is not None and ledger.death is not None and moved.death.t_s == round(ledger.death.t_s - 0.059, 6)
    # The observer's clock started 59 ms before the kernel's send: its death reading is 59 ms longer than the
    # kernel's, and only the 1 ms it read after the death is its lateness.
    result = dataclasses.replace(keepalive_result(measured_s=round(moved.death.t_s + 0.059 + 0.001, 6)), ledger=moved)
    assert result.death_source == DeathSource.TRACE and result.death_s == moved.death.t_s
    assert result.observer_late_s == 0.001
    assert keepalive_result().observer_late_s == 0.001  # an unmoved ledger: as before


# A routed lab's reject cell, as a gate on a loaded machine recorded it (ipv6-...-routed-ct2s-reject, 3/1/2): t = 0 is
# the handshake; SO_KEEPALIVE came 9 jiffies later, so its 750 jiffies crossed a level-2 boundary (64 jiffies).
ROUTED_ZERO = 4300862475
ROUTED = Ledger(HZ, (Arming(0.033915, "tcp_keepalive_timer", 4300862484, 4300863234, 4300863296, False),
                     Arming(3.281335, "tcp_keepalive_timer", 4300863296, 4300863546, 4300863552, True, 0)),
                (), None, zero_jiffy=ROUTED_ZERO)
ROUTED = dataclasses.replace(ROUTED, runs=(ledger_check.TimerRun(3.281322, "tcp_keepalive_timer", 4300863296,
                                                                 ROUTED.armings[0], 9.1e-05),))


def test_a_system_calls_arming_after_t0_carries_what_an_idle_machine_would_not_have():
    idle_bucket = runs_at_jiffy(ROUTED_ZERO, 750, HZ)
    assert idle_bucket == 4300863232  # armed in t = 0's jiffy: 64 jiffies sooner
    assert carried(ROUTED, 250, 750) == [pytest.approx(64 / HZ + 9.1e-05, abs=1e-6)]
    assert carried(ROUTED, 250) == [pytest.approx(9.1e-05)]  # without the idle setting: not recognised, not carried
    assert rule_failures(ROUTED, 1, 1, 3) == []  # the kernel kept the rule from its own arming (1 probe, re-armed)
    sentence = ledger_check.lateness_sentence(ROUTED, carried(ROUTED, 250, 750))
    assert sentence.startswith("machine late by 256.1 ms at run 1") and "0.1 ms its own" in sentence
    assert "its arming by a system call at 0.034 s, 9 jiffies after t = 0's jiffy" in sentence


def test_the_peers_rst_answering_a_late_probe_moves_back_with_it_and_no_other():
    wire = WireEvidence(probes_s=[3.281327], first_probe_s=3.281327, peer_rst_s=3.2814)
    shifts = carried(ROUTED, 250, 750)
    moved = ledger_check.wire_on_time(wire, ROUTED, shifts)
    assert moved.peer_rst_s == pytest.approx(3.2814 - shifts[0], abs=1e-6) and moved.probes_s[0] < 3.03
    unrelated = WireEvidence(peer_rst_s=1.5)  # no run of the tested socket just before it: the peer's own
    assert ledger_check.wire_on_time(unrelated, ROUTED, shifts).peer_rst_s == 1.5


def test_an_observers_death_is_judged_on_the_ledgers_axis_where_the_ledger_moved_t0():
    from synthetic_ledger import keepalive_ledger, keepalive_result

    no_death = dataclasses.replace(keepalive_ledger(), death=None).moved(0.069)  # the kernel's arming, 69 ms after
    result = dataclasses.replace(keepalive_result(measured_s=4.2), ledger=no_death)  # our clock's read
    assert result.death_source == DeathSource.OBSERVER and result.death_s == round(4.2 - 0.069, 6)
    assert result.measured_s == 4.2  # the observer's own reading stays as it read it


def test_a_programs_socket_is_found_by_its_cookie_and_its_timer_at_a_reference_sockets_offset():
    probe = ("          redis-server-7  [001] ..s2.   100.000100: tcp_probe: family=AF_INET src=198.18.0.1:6379 "
             "dest=198.18.0.2:5000 mark=0 data_len=0 snd_nxt=0x1 snd_una=0x1 snd_cwnd=10 ssthresh=2147483647 "
             "snd_wnd=64256 srtt=50 rcv_wnd=65160 sock_cookie={cookie:x} skbaddr=ffff888100aa0000 skaddr={sk}")
    lines = parse("\n".join([probe.format(cookie=0x2001, sk="ffff888104560000"),  # netkit's own socket
                             probe.format(cookie=0x2002, sk="ffff888107890000"),  # the program's
                             probe.format(cookie=0x2002, sk="ffff888107890000").replace("100.000100", "100.000200")]))
    own, _ = socket_moments(lines, 0x2001)
    program, received = socket_moments(lines, 0x2002)
    assert (own, program) == ("ffff888104560000", "ffff888107890000") and received == [100_000_100_000, 100_000_200_000]
    assert socket_moments(lines, 0x2003) == (None, [])  # a cookie never printed: no address
    # netkit's own keepalive timer was armed at ffff8881045600d8 (sk_timer at 0xd8): the program's is there too
    assert timer_in(program, (own, "ffff8881045600d8")) == "ffff8881078900d8"


# -- the write timer, from real traces (tests/data/ledger: Linux 6.18.44, HZ=250, captured with NETKIT_TIMER_LEDGER=1)

LEDGERS = Path(__file__).parent / "data" / "ledger"


def _real(name: str) -> tuple[Ledger, WriteTimerRule]:
    """A captured run's ledger, built as the run built it, and the write timer's rule for its scenario."""
    data = json.loads((LEDGERS / f"{name}.json").read_text())
    ledger = build(parse(data["trace"]), data["timers"], data["hz"], data["zero_ns"]).moved(data["moved_s"])
    s = data["scenario"]
    rule = write_timer_rule(s["state"], fault_info(s["fault"]).rule.data_path, s["user_timeout_ms"], None)
    assert rule is not None
    return ledger, rule


# (capture, the arming that starts the series, the kernel's re-arms): every figure is the kernel's, read from the trace
REAL = [
    # send: icsk_rto 51; the tail loss probe's run restarts the full RTO; RTO runs back off 102, 204; the clamp: the
    # first retransmission at 0.414 s + 1500 ms leaves 232 ms at 1.682 s = 58 jiffies.
    ("unacked-blackhole-ut1500", 51, [51, 102, 204, 58]),
    # link down: the loss probe finds the segment in the neighbour queue: 1 jiffy; retrans_stamp is the send, so
    # the clamp at 1.461 s leaves 1500 - 1461 = 39 ms = 10 jiffies.
    ("unacked-link-down-ut1500", 51, [1, 102, 204, 10]),
    # no route: the persist timer (tcp_check_probe_timer), 51 << 1, 2, 3; clamped in jiffies from its first run.
    ("unacked-peer-gone-ut3000", 51, [102, 204, 408, 22]),
    # the window-closing ACK: tcp_probe0_when = 52 (the transfer moved icsk_rto); 104, then the clamp 250 - 110.
    ("zero-window-blackhole-ut1000", 52, [104, 140]),
    ("zero-window-blackhole-ut3000", 52, [104, 208, 416, 5]),
]


@pytest.mark.parametrize("name,start,delays", REAL, ids=[r[0] for r in REAL])
def test_the_write_timers_rearms_on_this_kernel_are_the_rule_to_the_jiffy(name, start, delays):
    ledger, rule = _real(name)
    first, series, allowed = expected_write_rearms(ledger, rule)
    assert first is not None and first.delay == start and not first.by_run
    assert [a.delay for a in series] == delays
    assert allowed == [{d} for d in delays]  # one delay each: no millisecond turned between the moments read
    assert write_timer_failures(ledger, rule) == []
    assert ledger.death is not None and ledger.death.function == "tcp_write_timer" and ledger.death.error == 110


@pytest.mark.parametrize("name", [r[0] for r in REAL])
def test_a_planted_one_jiffy_error_in_a_write_timer_rearm_is_caught(name, monkeypatch):
    ledger, rule = _real(name)
    monkeypatch.setattr(ledger_check, "RULE_SHIFT_JIFFIES", 1)
    [failure] = write_timer_failures(ledger, rule)
    assert failure.rule == "ledger: write timer re-arm"
    delays = ", ".join(str(a.delay) for a in expected_write_rearms(ledger, rule)[1])
    assert f"re-armed for {delays} jiffies" in str(failure) and "re-arm 1 " in str(failure)


def test_a_probe_answered_just_before_t0_starts_the_series_with_the_rearm_its_answer_made():
    # Debian's 6.1 under emulation: the persist timer ran at -0.45 ms, its probe's answer (window 0) was t = 0 and
    # re-armed for the RTO inside that run.  Backing off from the earlier arming instead failed every such cell.
    data = json.loads((LEDGERS / "zero-window-blackhole-ut3000-linux-6.1-answered-probe.json").read_text())
    ledger, s = Ledger.from_dict(data["ledger"]), data["scenario"]
    rule = write_timer_rule(s["state"], fault_info(s["fault"]).rule.data_path, s["user_timeout_ms"], None, 53)
    assert rule is not None
    start, series, allowed = expected_write_rearms(ledger, rule)
    assert start is not None and start.by_run and start.delay == 53 and -0.001 < start.t_s < 0
    assert [a.delay for a in series] == [106, 212, 424] and allowed == [{106}, {212}, {424}]
    assert write_timer_failures(ledger, rule) == []


def test_a_kernel_backing_off_one_jiffy_wrong_fails_and_says_which_rearm():
    ledger, rule = _real("unacked-blackhole-ut1500")
    third = next(a for a in ledger.armings if a.by_run and a.delay == 204)
    tampered = dataclasses.replace(ledger, armings=tuple(
        dataclasses.replace(a, expires=a.expires + 1) if a is third else a for a in ledger.armings))
    [failure] = write_timer_failures(tampered, rule)
    assert "should re-arm for 51, 102, 204, 58 jiffies" in str(failure)
    assert "re-armed for 51, 102, 205, 58 jiffies: re-arm 3 at 0.854 s asked for 205" in str(failure)


def test_the_clamp_reads_the_tcp_clocks_milliseconds_from_the_traces_moments():
    # Link down: retrans_stamp is the send's skb timestamp, between netkit's marker and the send's arming (the same
    # millisecond of the trace's clock here); the clamped run at 1.461 s leaves 1500 - 1461 = 39 ms: 10 jiffies.
    ledger, rule = _real("unacked-link-down-ut1500")
    assert len(ledger.marks_s) == 2 and ledger.marks_s[-1] < 0 < ledger.armings[1].t_s
    assert expected_write_rearms(ledger, rule)[2][-1] == {10}
    assert clamp_rto_to_user_timeout_jiffies(408, 1500, 1461, HZ) == 10  # ceil(39 ms / 4 ms)
    assert Ledger.from_dict(ledger.to_dict()) == ledger  # the clock and the markers survive the JSON
    # Blackhole: retrans_stamp is read inside the first RTO run.  On a clock where a millisecond ends between that
    # run's entry and its re-arm, the stamp may be either, so elapsed may be one ms less: two delays, adjacent.
    ledger, rule = _real("unacked-blackhole-ut1500")
    _, series, _ = expected_write_rearms(ledger, rule)
    run = max((r for r in ledger.runs if r.t_s <= series[1].t_s), key=lambda r: r.t_s)
    entry_ns = ledger.mono_ns(run.t_s)
    assert entry_ns is not None and ledger.zero_ns is not None and series[1].t_s - run.t_s > 4e-6
    straddling = dataclasses.replace(ledger, zero_ns=ledger.zero_ns + (10**6 - 2000 - entry_ns % 10**6))
    last = expected_write_rearms(straddling, rule)[2][-1]
    assert len(last) == 2 and max(last) - min(last) == 1


def test_a_tick_between_the_kernels_jiffies_and_the_traces_prints_the_base_one_short_and_tcp_info_says_so():
    # A real run (a pair of full gates at once): the send's persist-timer arming printed 50 jiffies, its runs backed
    # off from icsk_rto 51 (102, 204, 408, then the clamp).  The CI's container run failed the same way.
    data = json.loads((LEDGERS / "unacked-peer-gone-ut3000-tick-between.json").read_text())
    ledger, s = Ledger.from_dict(data["ledger"]), data["scenario"]

    def rule(rto: int | None) -> WriteTimerRule:
        found = write_timer_rule(s["state"], fault_info(s["fault"]).rule.data_path, s["user_timeout_ms"], None, rto)
        assert found is not None
        return found

    start, series, allowed = expected_write_rearms(ledger, rule(51))
    assert start is not None and start.delay == 50 and [a.delay for a in series] == [102, 204, 408, 21]
    assert allowed == [{102}, {204}, {408}, {21}] and write_timer_failures(ledger, rule(51)) == []
    [unread] = write_timer_failures(ledger, rule(None))  # without tcp_info's word the trace's 50 is the base
    assert "should re-arm for 100, 200, 400, 21 jiffies" in str(unread)
    [other] = write_timer_failures(ledger, rule(52))  # an icsk_rto the arming cannot be one short of: no second base
    assert "after the arming for 50 jiffies" in str(other)
    assert base_candidates(start, rule(51)) == [50, 51] and base_candidates(start, rule(50)) == [50]


def test_a_keepalive_probe_between_the_fault_and_the_send_is_the_machines_lateness_not_an_early_death():
    # A real run (two gates at once, 128 jobs each): the send came 2.2 s after SO_KEEPALIVE, the keepalive timer
    # probed in between (TcpExt TCPKeepAlive 1, icsk_probes_out 1), and the persist timer aborted a probe early.
    data = json.loads((LEDGERS / "unacked-peer-gone-retries2-keepalive-before-send.json").read_text())
    kernel = KernelInfo("test", HZ, "test")
    scenario = Scenario(KeepaliveSettings(1, 1, 3), fault="peer-gone", state="unacked", retries2=3)
    m = data["measured"]

    def judged(counters: dict) -> ScenarioResult:
        return ScenarioResult(scenario, kernel, predict(scenario, kernel, 0.204), measured_s=m["measured_s"],
                              error=m["error"], probes=m["probes"], counters=counters,
                              ledger=Ledger.from_dict(data["ledger"]))

    result = judged(m["counters"])
    assert result.death_timing is Timing.EARLY and result.rule_failures == ()
    assert "1 keepalive probe(s) left between the fault and the send" in " | ".join(map(str, result.failures))
    assert result.machine_late == ("keepalive probes left between the fault and the send (TcpExt TCPKeepAlive 1): "
                                   "the machine was late sending")
    unexplained = judged({**m["counters"], "TCPKeepAlive": 0})  # the same early death with no probe to explain it
    assert unexplained.verdict == "fail" and unexplained.machine_late is None
    ledger = Ledger.from_dict(data["ledger"])  # a probe counted, but no keepalive run before the send: the kernel's
    after_only = dataclasses.replace(ledger, runs=tuple(r for r in ledger.runs if r.t_s > 0))
    late_probe = dataclasses.replace(result, ledger=after_only)
    assert late_probe.verdict == "fail" and late_probe.machine_late is None


def test_a_fault_after_the_run_it_had_to_precede_explains_an_early_death_too():
    # A real run (two gates at once, 128 jobs each): the zero-window fault took until 1.036 s, after the probe run
    # at 0.215 s.  t = 0 (the last segment received before the fault) moved past the answered probes while the user
    # timeout counted from the first one: the observer read 3.016 s against a window from 3.200 s.
    data = json.loads((LEDGERS / "zero-window-peer-gone-ut3000-fault-late.json").read_text())
    kernel = KernelInfo("test", HZ, "test")
    scenario = Scenario(KeepaliveSettings(1, 1, 3, user_timeout_ms=3000), fault="peer-gone", state="zero-window")
    m = data["measured"]

    def judged(fault_at_s: float) -> ScenarioResult:
        return ScenarioResult(scenario, kernel, predict(scenario, kernel, 0.204), measured_s=m["measured_s"],
                              error=m["error"], probes=m["probes"], counters=m["counters"], fault_at_s=fault_at_s,
                              fault_deadline_s=m["fault_deadline_s"], ledger=Ledger.from_dict(data["ledger"]))

    late = judged(m["fault_at_s"])
    assert late.rule_failures == () and any("EARLY" in str(f) for f in late.failures)
    assert late.verdict == "fail" and late.machine_late == (
        "the fault landed at 1.036 s, after the timer run at 0.215 s it had to precede: the machine was late placing it")
    in_time = judged(0.1)  # the same early reading with the fault in time: the kernel's, never the machine's
    assert in_time.verdict == "fail" and in_time.machine_late is None


def test_t0_moves_to_the_calls_arming_after_it_not_to_an_earlier_arming_of_the_same_timer():
    earlier = Arming(-0.5, "tcp_write_timer", 900, 951, 952, False)  # the connection's past (a CI run had one)
    send = Arming(0.00004, "tcp_write_timer", 1025, 1076, 1077, False)  # the send's, 40 us after our clock's read
    ledger = Ledger(HZ, (earlier, send), (), None)
    moved = ledger.moved_to_first_call("tcp_write_timer")
    assert moved.moved_s == 0.00004 and [a.t_s for a in moved.armings] == [-0.50004, 0.0]
    assert Ledger(HZ, (earlier,), (), None).moved_to_first_call("tcp_write_timer").moved_s == 0.0  # none after t = 0


def test_a_record_carries_the_rto_its_write_timer_rule_backs_off_from():
    kernel = KernelInfo("test", HZ, "test")
    scenario = Scenario(KeepaliveSettings(1, 1, 3, user_timeout_ms=3000), fault="peer-gone", state="unacked")
    assert predict(scenario, kernel, 0.204).rto_s == 0.204
    assert predict(Scenario(KeepaliveSettings(1, 1, 3), fault="blackhole"), kernel, 0.204).rto_s is None  # idle


def test_the_write_timer_rule_belongs_to_the_data_states_only():
    assert write_timer_rule("idle", fault_info("blackhole").rule.data_path, 3000, None) is None
    link_down = write_timer_rule("unacked", fault_info("link-down").rule.data_path, None, 3)
    assert link_down == WriteTimerRule(persist=False, held=True, user_timeout_ms=None, retries2=3)
    assert write_timer_rule("unacked", fault_info("peer-gone").rule.data_path, 3000, None).persist


def _unacked_result(ledger: Ledger) -> ScenarioResult:
    """The real unacked run's record, judged as the run judged it (death and count as the kernel reported them)."""
    kernel = KernelInfo("test", HZ, "test")
    scenario = Scenario(KeepaliveSettings(1, 1, 3, user_timeout_ms=1500), fault="blackhole", state="unacked")
    assert ledger.death is not None
    return ScenarioResult(scenario, kernel, predict(scenario, kernel, 0.204), measured_s=ledger.death.t_s + 0.001,
                          error="ETIMEDOUT", retransmits=3, ledger=ledger)


def test_a_record_judges_the_write_timers_rule_and_a_one_jiffy_error_fails_it_with_the_death_inside(monkeypatch):
    ledger, _ = _real("unacked-blackhole-ut1500")
    result = _unacked_result(ledger)
    assert result.rule_failures == () and result.verdict == "pass", result.explain()
    monkeypatch.setattr(ledger_check, "RULE_SHIFT_JIFFIES", 1)
    planted = _unacked_result(ledger)
    assert planted.death_timing is Timing.INSIDE
    assert [f.rule for f in planted.rule_failures] == ["ledger: write timer re-arm"]
    assert planted.verdict == "fail" and planted.machine_late is None


def test_the_clamps_deadline_moves_with_a_late_run_that_took_retrans_stamp():
    """UT 12000 ms, maximum RTO 5 s: the tail loss probe and the first RTO run each ran a jiffy past their buckets,
    so retrans_stamp, and the clamp's absolute deadline 12 s after it, came 2 jiffies late: the machine's, not the
    kernel's (CI, 2026-12-05: such a run died 1.9 ms past the window and was not recognised as machine late)."""
    data = json.loads((LEDGERS / "unacked-blackhole-ut12000-rto-max-5000-late-stamp.json").read_text())
    ledger = Ledger.from_dict(data["ledger"])
    clamp = ledger.armings[-1] if ledger.armings[-1].function == "tcp_write_timer" else next(
        a for a in reversed(ledger.armings) if a.function == "tcp_write_timer")
    assert clamp.delay == 130 and clamp.bucket == clamp.expires + 6  # 2 jiffies sooner: the same level-1 bucket
    death_run = ledger.run_at(ledger.death.t_s)
    assert carried(ledger)[death_run] < 0.001  # the wheel swallowed the 2 jiffies: nothing carried to the death
    # The same run with the clamp one jiffy shorter: its expiry lands 1 jiffy past a bucket, and on time it would
    # have been 2 jiffies sooner, in the bucket before: 8 jiffies (32 ms) carried to the death.
    tampered = dataclasses.replace(ledger, armings=tuple(
        dataclasses.replace(a, expires=a.expires - 1) if a is clamp else a for a in ledger.armings))
    assert carried(tampered)[death_run] == pytest.approx(8 / 250 + 1.1e-05, abs=1e-6)


def test_a_tick_inside_the_tail_loss_probe_s_run_is_not_a_rule_error():
    """Debian's 6.1 under emulation (a dry CI, 2026-12-06): the tail loss probe's run began at jiffy J, restarted the
    full RTO (14 jiffies: the route's 50 ms minimum) to J + 14, and its timer_start printed J + 1: "asked for 13".
    The kernel asked for J + 14 - J; a re-arm that truly asked for 13 from its run's own jiffy still fails."""
    data = json.loads((LEDGERS / "tlp-rearm-tick-6.1.json").read_text())
    ledger = Ledger.from_dict(data["ledger"])
    rule = write_timer_rule("unacked", fault_info("blackhole").rule.data_path, None, 3, rto_jiffies=14)
    assert write_timer_failures(ledger, rule) == []
    tlp = next(a for a in ledger.armings if a.by_run and a.function == "tcp_write_timer")
    assert (tlp.delay, tlp.now - next(r for r in ledger.runs if r.arming is not None and r.now < tlp.now and
                                      r.function == tlp.function).now) == (13, 1)
    short = dataclasses.replace(tlp, expires=tlp.expires - 1)  # asked for 13 from J, or 12 as printed: wrong either way
    planted = dataclasses.replace(ledger, armings=tuple(short if a is tlp else a for a in ledger.armings))
    [failure] = write_timer_failures(planted, rule)
    assert "asked for 12" in str(failure)
