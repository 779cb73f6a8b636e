"""Timer ledgers and results written by hand (no tracefs): a 1/1/3 keepalive death at HZ=250, on time or late.

The ledger is what the tracepoints would give for an idle socket blackholed
at t = 0: the arming made by netkit's setsockopt (idle 1 s), then three runs
that each sent a probe and re-armed for intvl (250 jiffies, in the wheel's
bucket), and a fourth run that killed the socket (ETIMEDOUT).  ``late_s``
makes the killing run that much late (its softirq), as on a busy machine:
the death then falls past the window [3.996, 4.136] although the kernel kept
the rule, which is what *machine late* means.
"""

from __future__ import annotations

from netkit import KeepaliveSettings, Scenario, ScenarioResult
from netkit.evidence.ledger import Arming, KernelDeath, Ledger, TimerRun
from netkit.kernel import KernelInfo
from netkit.model import keepalive_death
from netkit.model.wheel import runs_at_jiffy

HZ = 250
TIMER = "tcp_keepalive_timer"


def keepalive_ledger(late_s: float = 0.0, first_jiffy: int = 1000) -> Ledger:
    armings = [Arming(0.0, TIMER, first_jiffy, first_jiffy + HZ, runs_at_jiffy(first_jiffy, HZ, HZ), False)]
    runs = []
    for n in range(4):
        due = armings[-1]
        last = n == 3
        t = round((due.bucket - first_jiffy) / HZ + (late_s if last else 0.0), 6)
        runs.append(TimerRun(t, TIMER, due.bucket, due, late_s if last else 0.0))
        if not last:  # the run sent a probe and re-armed for intvl
            armings.append(Arming(t, TIMER, due.bucket, due.bucket + HZ, runs_at_jiffy(due.bucket, HZ, HZ), True))
    return Ledger(HZ, tuple(armings), tuple(runs), KernelDeath(round(runs[-1].t_s + 0.00002, 6), 110, TIMER))


def keepalive_result(late_s: float = 0.0, ledger: bool = True, **changes: object) -> ScenarioResult:
    """The 1/1/3 scenario's result with that ledger (or, ``ledger=False``, none: evidence observer)."""
    kernel = KernelInfo("6.18.0-test", HZ, "test")
    scenario = Scenario(KeepaliveSettings(1, 1, 3))
    led = keepalive_ledger(late_s)
    assert led.death is not None
    measured: dict[str, object] = {"measured_s": round(led.death.t_s + 0.001, 6), "error": "ETIMEDOUT", "probes": 3,
                                   "counters": {"TCPKeepAlive": 3}}
    if ledger:
        measured["ledger"] = led
    else:
        measured["evidence_note"] = "tracefs is not mounted here"
    measured.update(changes)
    return ScenarioResult(scenario, kernel, keepalive_death(scenario.keepalive, kernel), **measured)  # type: ignore[arg-type]
