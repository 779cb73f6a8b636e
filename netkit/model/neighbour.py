"""Data sent into a dead link: the neighbour entry's failure and what it does to the RTO timer.

With no carrier on the tested veth (link-down) a segment never leaves the
host: the carrier loss flushed the neighbour table (``neigh_carrier_down``,
called from ``arp_netdev_event`` / ``ndisc_netdev_event`` on NETDEV_CHANGE),
so the send creates a fresh entry that waits for an address that never comes
and queues the segment (``__neigh_event_send``)::

    atomic_set(&neigh->probes, NEIGH_VAR(neigh->parms, UCAST_PROBES));
    WRITE_ONCE(neigh->nud_state, NUD_INCOMPLETE);
    next = now + max(NEIGH_VAR(neigh->parms, RETRANS_TIME), HZ / 100);
    ...  __skb_queue_tail(&neigh->arp_queue, skb);   then neigh_probe(): atomic_inc(&neigh->probes)

``neigh_timer_handler`` re-arms ``now + RETRANS_TIME`` and probes until
``probes >= neigh_max_probes()`` = ``UCAST_PROBES + APP_PROBES +
MCAST_PROBES``; counting from ``UCAST_PROBES`` plus the immediate probe, the
entry fails on timer run ``MCAST_PROBES + APP_PROBES``: with netkit's pinned
values (:data:`PINNED`: ``mcast_solicit`` 3, ``app_solicit`` 0,
``retrans_time_ms`` 1000) 3 x 1 s after the send.  On the timer wheel the
first 1 s timer (250 jiffies at HZ=250, level 1) runs 1..8 jiffies late and
every re-arm from a run on the 8-jiffy grid lands exactly 256 jiffies later:
the entry fails 3.052..3.080 s after the send (docs/rules.md, "Link down with
data in flight", has the measurements behind this docstring).

Until then every retransmission the RTO timer attempts fails: the original
skb is still in the neighbour queue (``skb_still_in_host_queue`` -> -EBUSY,
which also sets TSQ_THROTTLED), and ``retrans_stamp`` is the send.  At the
failure ``neigh_invalidate`` hands the queued skb to ``error_report`` and
frees it; what follows differs by family:

* IPv4 (``arp_error_report`` -> ``ipv4_link_failure`` -> ``icmp_send(skb,
  ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, 0)``, delivered to ourselves):
  ``tcp_v4_err`` calls ``tcp_ld_RTO_revert`` (RFC 6069: ``if (!fastopen &&
  (code == ICMP_NET_UNREACH || code == ICMP_HOST_UNREACH))``), which undoes
  one backoff and -- the queued original having been sent ``remaining =
  icsk_rto - usecs_to_jiffies(delta_us)`` ago, long past the reverted RTO --
  runs ``tcp_retransmit_timer(sk)`` *at once*.  That run checks the deadline
  first: past it, ``tcp_write_err`` kills the connection with
  ``sk_err_soft ?: ETIMEDOUT`` = **ETIMEDOUT**, because ``tcp_v4_err``
  stores ``sk_err_soft = EHOSTUNREACH`` only after the switch that called the
  revert.  Not yet past it, the run retransmits for real (the skb was freed:
  a new neighbour cycle starts) and re-arms the clamped RTO; any later death
  reports the stored **EHOSTUNREACH**.
* IPv6 (``ndisc_error_report`` -> ``ip6_link_failure`` ->
  ``icmpv6_send(skb, ICMPV6_DEST_UNREACH, ICMPV6_ADDR_UNREACH, 0)``):
  ``tcp_v6_err`` reverts only for ``code == ICMPV6_NOROUTE``, so it just
  stores ``sk_err_soft = EHOSTUNREACH``.  But freeing the skb runs
  ``tcp_wfree``; the earlier -EBUSY left TSQ_THROTTLED set, so TSQ's
  ``tcp_tsq_write`` runs ``tcp_xmit_retransmit_queue`` (``lost_out >
  retrans_out``: the RTO had marked the segment lost), which retransmits it
  (TcpExt TCPSlowStartRetrans; ``icsk_retransmits`` unchanged) and re-arms
  the RTO timer for the full, backed-off ``icsk_rto`` -- *not* clamped to
  TCP_USER_TIMEOUT.  The connection then dies on that run: retries2 3,
  F + 1.632 s (+ rounding) = 4.716..4.744 s, EHOSTUNREACH; UT 4000 likewise
  at 4.73 s, not at 4 s.

(In IPv4 the ICMP is processed in NET_RX before TSQ's BH work, and after the
revert's retransmission ``lost_out == retrans_out``: TSQ does nothing.)

Why a replay, not nominal times plus worst-case lateness: the neighbour
failure (nominal 3.0 s) and the 4th RTO run (nominal 0.204 x 15 = 3.06 s)
are closer than their summed worst-case lateness (3 x 32 ms against 3 x 32 ms
+ 4 ms), and which one runs first decides the IPv6 outcome (ETIMEDOUT at
~3.1 s, or EHOSTUNREACH at ~4.7 s).  Both chains are level-1 timers re-armed
from runs on the same 8-jiffy grid, so their order is fixed: the failure
comes 16 or 24 jiffies before that RTO run, for every send phase.  So
:func:`link_down_deaths` replays the timers in jiffies (``runs_at_jiffy``,
the wheel's exact rounding) for every send phase on the coarsest grid in use
and each way the first RTO run can land (the tail loss probe finds the skb
still queued and ``tcp_rearm_rto`` arms the rest of the RTO, one jiffy: the
first attempt comes 2 jiffies after the RTO's own expiry), and
:func:`link_down_prediction` turns each (count, error) outcome into a window
from its earliest to its latest jiffy.  The replay assumes each timer
runs in the softirq of its bucket's jiffy; load only makes runs later, which
the two measurement jiffies and, beyond them, a failing verdict show.

A TCP_USER_TIMEOUT that kills by the clamp before the earliest failure
(3.052 s at HZ=250) keeps the plain clamp rule
(``retransmission._clamped_locally``).

What stays refused (NotModelled): the default ``tcp_retries2`` (15: ~15
minutes), and, on other kernels, a race the send's phase decides -- e.g. at
HZ=1000 the 1 s neighbour timer is level 2 (64-jiffy grid) while the RTO's
are level 1, so IPv6 with ``tcp_retries2`` 3 dies either at ~3.1 s
(ETIMEDOUT) or ~4.7 s (EHOSTUNREACH); netkit cannot know the phase, so it
does not predict one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..enums import Clock, CountSource
from ..errors import NotModelled
from ..kernel import KernelInfo
from .prediction import DeathPrediction
from .rto import backed_off_rto_jiffies
from .wheel import LVL_CLK_SHIFT, MEASUREMENT_JIFFIES, latest_death_s, packetdrill_bound_s, runs_at_jiffy, wheel_level

MCAST_SOLICIT = 3
APP_SOLICIT = 0
UCAST_SOLICIT = 3
RETRANS_TIME_MS = 1000
PINNED = {"mcast_solicit": MCAST_SOLICIT, "app_solicit": APP_SOLICIT, "ucast_solicit": UCAST_SOLICIT,
          "retrans_time_ms": RETRANS_TIME_MS}
"""The tested interface's neighbour parameters, written in its namespace for every link-down scenario.

A new device copies the neighbour table's defaults (``neigh_parms_alloc``:
``kmemdup(&tbl->parms, ...)``), which a host may have tuned; pinning them
(to the kernel's own defaults) makes the failure time a property of the lab.
``delay_first_probe_time`` is not used: the entry is created after the flush
and goes straight from NONE to INCOMPLETE, never through DELAY.
"""

MAX_EVENTS = 200


def neighbour_sysctls(family: str, ifname: str) -> dict[str, int]:
    """``{"net.ipv4.neigh.<ifname>.mcast_solicit": 3, ...}`` for one family's table."""
    table = "ipv6" if family == "ipv6" else "ipv4"
    return {f"net.{table}.neigh.{ifname}.{name}": value for name, value in PINNED.items()}


@dataclass(frozen=True)
class Death:
    """One replayed outcome: when (jiffies after the send), ``tcpi_retransmits`` then, the error, and why."""

    jiffies: int
    count: int
    error: str
    story: tuple[str, ...]
    neighbour_failures: int  # how many times the neighbour entry failed before the death


@dataclass
class _Socket:
    """The state the replay tracks, in absolute jiffies."""

    sent: int
    rto: int  # icsk_rto
    rto_run: int  # when the RTO timer runs next
    neighbour_fails: int | None  # when the current neighbour cycle fails (None: nothing queued)
    retransmits: int = 0  # icsk_retransmits
    backoff: int = 0  # icsk_backoff
    skb_sent: int = 0  # the skb's last real transmission (tcp_skb_timestamp)
    throttled: bool = False  # TSQ_THROTTLED, set by a -EBUSY retransmission
    soft_error: str | None = None
    failures: int = 0
    story: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Rules:
    family: str
    hz: int
    base_rto: int  # the connection's RTO before any backoff (jiffies)
    deadline: int  # jiffies after retrans_stamp (= the send) at which retransmits_timed_out() holds
    user_timeout: bool  # the deadline is TCP_USER_TIMEOUT: the RTO is clamped to it
    neighbour_delay: int  # RETRANS_TIME (jiffies)
    neighbour_runs: int  # MCAST_PROBES + APP_PROBES
    rto_max_ms: int | None = None  # the socket's TCP_RTO_MAX_MS / tcp_rto_max_ms (None: TCP_RTO_MAX)

    def seconds(self, jiffies: int) -> str:
        return f"{jiffies / self.hz:.3f} s"


def _neighbour_cycle(start: int, r: _Rules) -> int:
    """When a neighbour entry that went INCOMPLETE at ``start`` fails (its timer re-arms from each run)."""
    at = start
    for _ in range(r.neighbour_runs):
        at = runs_at_jiffy(at, r.neighbour_delay, r.hz)
    return at


def neighbour_failure_jiffies(hz: int) -> tuple[int, int]:
    """Earliest and latest jiffy, after the send, at which the pinned neighbour entry fails (every send phase).

    (MCAST_PROBES + APP_PROBES) x RETRANS_TIME on the wheel: at HZ=250 (763, 770), i.e. 3.052-3.080 s.
    """
    delay = RETRANS_TIME_MS * hz // 1000
    r = _Rules("ipv4", hz, 0, 0, False, delay, MCAST_SOLICIT + APP_SOLICIT)
    period = 1 << (max(1, wheel_level(delay, hz)) * LVL_CLK_SHIFT)
    failures = [_neighbour_cycle(sent, r) - sent for sent in range(period)]
    return min(failures), max(failures)


def _rto_run(s: _Socket, now: int, r: _Rules) -> Death | None:
    """``tcp_retransmit_timer``: the deadline first (``tcp_write_timeout``), else retransmit, back off, re-arm."""
    elapsed = now - s.sent
    if s.retransmits and elapsed >= r.deadline:
        error = s.soft_error or "ETIMEDOUT"
        story = (*s.story, f"{r.seconds(elapsed)}: RTO run past the deadline: tcp_write_err, {error}")
        return Death(elapsed, s.retransmits, error, story, s.failures)
    s.retransmits += 1
    if s.neighbour_fails is not None:
        s.throttled = True  # skb_still_in_host_queue(): set_bit(TSQ_THROTTLED, ...); return -EBUSY
        s.story.append(f"{r.seconds(elapsed)}: retransmission {s.retransmits} fails locally (-EBUSY)")
    else:
        s.skb_sent, s.neighbour_fails = now, _neighbour_cycle(now, r)
        s.story.append(f"{r.seconds(elapsed)}: retransmission {s.retransmits} into a new neighbour cycle")
    s.backoff += 1
    s.rto = backed_off_rto_jiffies(s.rto, 1, r.hz, r.rto_max_ms)  # the ledger checks the kernel's re-arms by it too
    delay = s.rto
    if r.user_timeout:  # tcp_clamp_rto_to_user_timeout(): min(icsk_rto, remaining), 1 once it has passed
        delay = max(1, min(s.rto, r.deadline - elapsed))
    s.rto_run = runs_at_jiffy(now, delay, r.hz)
    return None


def _neighbour_failure(s: _Socket, now: int, r: _Rules) -> Death | None:
    """``neigh_invalidate``: the ICMP error to ourselves, then the skb freed (TSQ); see the module docstring."""
    elapsed = now - s.sent
    s.neighbour_fails = None
    s.failures += 1
    s.story.append(f"{r.seconds(elapsed)}: neighbour entry FAILED")
    if r.family == "ipv4":
        if s.retransmits and s.backoff:  # tcp_ld_RTO_revert()
            s.backoff -= 1
            s.rto = backed_off_rto_jiffies(r.base_rto, s.backoff, r.hz, r.rto_max_ms)
            remaining = s.rto - (now - s.skb_sent)
            if remaining > 0:
                s.rto_run = runs_at_jiffy(now, remaining, r.hz)
                s.story.append(f"{r.seconds(elapsed)}: ICMP host unreachable: tcp_ld_RTO_revert re-arms the RTO")
            else:
                s.story.append(f"{r.seconds(elapsed)}: ICMP host unreachable: tcp_ld_RTO_revert runs the RTO at once")
                death = _rto_run(s, now, r)
                if death:
                    return death
        s.soft_error = "EHOSTUNREACH"  # stored after the revert
    else:
        s.soft_error = "EHOSTUNREACH"  # ICMPV6_ADDR_UNREACH: no revert
        s.story.append(f"{r.seconds(elapsed)}: ICMPv6 address unreachable: sk_err_soft = EHOSTUNREACH, no revert")
    if s.throttled:  # tcp_wfree() -> tcp_tsq_write()
        s.throttled = False
        if s.neighbour_fails is None:  # lost_out > retrans_out: tcp_xmit_retransmit_queue()
            s.skb_sent, s.neighbour_fails = now, _neighbour_cycle(now, r)
            s.rto_run = runs_at_jiffy(now, s.rto, r.hz)  # tcp_reset_xmit_timer(..., icsk_rto, ...): not clamped
            s.story.append(f"{r.seconds(elapsed)}: TSQ retransmits it and re-arms the RTO for "
                           f"icsk_rto = {r.seconds(s.rto)}")
    return None


def _replay(s: _Socket, r: _Rules) -> list[Death]:
    """Run the socket's timers in order until it dies; a tie in one jiffy is replayed both ways."""
    for _ in range(MAX_EVENTS):
        fails = s.neighbour_fails
        if fails is not None and fails == s.rto_run:  # same jiffy: either timer may run first
            deaths = []
            for neighbour_first in (True, False):
                branch = replace(s, story=list(s.story))
                death = (_neighbour_failure(branch, fails, r) if neighbour_first else _rto_run(branch, fails, r))
                deaths += [death] if death else _replay(branch, r)
            return deaths
        if fails is not None and fails < s.rto_run:
            death = _neighbour_failure(s, fails, r)
        else:
            death = _rto_run(s, s.rto_run, r)
        if death:
            return [death]
    raise RuntimeError(f"no death within {MAX_EVENTS} timer runs")


def link_down_deaths(family: str, hz: int, rto_jiffies: int, deadline_jiffies: int, user_timeout: bool,
                     neighbour_delay_jiffies: int | None = None,
                     neighbour_runs: int = MCAST_SOLICIT + APP_SOLICIT, rto_max_ms: int | None = None) -> list[Death]:
    """Every outcome of data sent into a dead link, over every send phase on the wheel's coarsest grid in use.

    ``deadline_jiffies``: TCP_USER_TIMEOUT, or ``tcp_model_timeout(tcp_retries2)``, after the send.
    The first RTO run lands on ``runs_at_jiffy(send, rto)``, or two jiffies
    later when the tail loss probe ran first (it finds the skb still queued
    and ``tcp_rearm_rto`` arms the remaining ``max(delta_us, 1)``: one jiffy).
    """
    r = _Rules(family, hz, rto_jiffies, deadline_jiffies, user_timeout,
               neighbour_delay_jiffies if neighbour_delay_jiffies is not None else RETRANS_TIME_MS * hz // 1000,
               neighbour_runs, rto_max_ms)
    # every phase of the send on the grid of the coarsest wheel level any of these timers can use
    period = 1 << (max(1, wheel_level(deadline_jiffies + rto_jiffies, hz)) * LVL_CLK_SHIFT)
    deaths = []
    for sent in range(period):
        first = runs_at_jiffy(sent, rto_jiffies, hz)
        for tlp in (2, 1, 0):  # the first replay (the rule's story) takes the measured path: TLP first
            s = _Socket(sent, rto_jiffies, first + tlp, _neighbour_cycle(sent, r), skb_sent=sent,
                        story=[f"send; neighbour entry INCOMPLETE, fails at {r.seconds(_neighbour_cycle(sent, r) - sent)}"])
            deaths += _replay(s, r)
    return deaths


def link_down_prediction(deaths: list[Death], kernel: KernelInfo, what: str) -> DeathPrediction:
    """The prediction from the replayed outcomes: one window per (count, error), from their earliest jiffy.

    The window runs from one jiffy before the earliest replayed death (the
    send may come late in its jiffy) to the latest plus the measurement's two
    jiffies.  Raises NotModelled when the send's phase on the wheel decides
    the error, when it leaves more than two outcomes, or when one outcome
    spreads wider than packetdrill's tolerance (a race between the neighbour
    failure and an RTO run: netkit never widens a window to cover one).
    """
    groups: dict[tuple[int, str], list[Death]] = {}
    for death in deaths:
        groups.setdefault((death.count, death.error), []).append(death)
    ranked = sorted(groups.values(), key=lambda g: (-len(g), min(d.jiffies for d in g)))
    errors = sorted({d.error for d in deaths})
    if len(errors) > 1 or len(ranked) > 2:
        raise NotModelled(f"{what}: the send's phase on the timer wheel decides the outcome (the neighbour "
                          "failure races an RTO run): " + ", ".join(
                              f"{g[0].error} after {g[0].count} retransmissions at "
                              f"{min(d.jiffies for d in g) / kernel.hz:.3f}-{max(d.jiffies for d in g) / kernel.hz:.3f} s"
                              for g in ranked))
    windows = []
    for group in ranked:
        earliest, latest = min(d.jiffies for d in group), max(d.jiffies for d in group)
        expected = earliest / kernel.hz
        late = (latest - earliest) / kernel.hz
        if late + MEASUREMENT_JIFFIES * kernel.jiffy_s > packetdrill_bound_s(expected):
            raise NotModelled(f"{what}: the send's phase on the timer wheel spreads the death over "
                              f"{expected:.3f}-{latest / kernel.hz:.3f} s, wider than packetdrill's tolerance")
        windows.append((round(expected, 6), (round(expected - kernel.jiffy_s, 6), latest_death_s(expected, late, kernel)),
                        group[0].count))
    (expected, window, count), alternative = windows[0], (windows[1] if len(windows) > 1 else None)
    story = ranked[0][0].story
    return DeathPrediction(
        rule=f"{what}: " + "; ".join(story) + " (one send phase; the window covers every phase on the timer wheel)",
        expected_s=expected, window_s=window, expected_count=count, expected_error=errors[0],
        count_source=CountSource.RETRANSMITS, measured_from=Clock.SEND,
        alternative_window_s=alternative[1] if alternative else None,
        alternative_count=alternative[2] if alternative else None,
    )
