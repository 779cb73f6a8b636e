"""The middlebox that forgets: a stateful router's idle timeout against the keepalive rule (no I/O).

A router that tracks connections (netfilter conntrack) keeps an ESTABLISHED
flow's entry for ``nf_conntrack_tcp_timeout_established`` after the flow's
last packet, then forgets it.  The rules, from net/netfilter/nf_conntrack_proto_tcp.c
(v6.x, function and statement; the line numbers move from release to release):

* **Every packet of the flow re-arms the entry.**  ``nf_conntrack_tcp_packet()``
  ends, for an in-window packet, with ``timeout = timeouts[new_state]``
  (``TCP_CONNTRACK_ESTABLISHED``: the sysctl) and ``nf_ct_refresh_acct(ct,
  ctinfo, skb, timeout)``.  A keepalive probe is in window: it carries no
  data and ``seq = snd_una - 1`` (``tcp_xmit_probe_skb``), so ``end =
  td_end - 1``, above the lower bound ``td_end - receiver->td_maxwin - 1``
  that ``tcp_in_window()`` checks, and its ACK is the receiver's ``td_end``.
  Probe and reply therefore refresh the entry, each time to the full timeout.
* **An expired entry is gone at the next lookup.**  ``nf_ct_is_expired()``
  compares ``ct->timeout`` with ``nfct_time_stamp`` (jiffies): the entry is
  not found (and is reaped) from the moment its timeout passed, whatever the
  garbage collector's pace; a ctnetlink dump skips it too.
* **A forgotten flow's next packet starts no entry -- unless the router picks
  flows up mid-stream.**  The packet makes a new, unconfirmed entry and
  ``nf_conntrack_tcp_packet()`` calls ``tcp_new()``: for a bare ACK the
  state table gives ``sNO -> sES`` ("Assumed"), and then ``if
  (tn->tcp_loose == 0) return false; /* Don't try to pick up connections. */``
  -> ``return -NF_ACCEPT``: the packet is *invalid* (no conntrack attached;
  nft's ``ct state invalid`` matches).  With ``nf_conntrack_tcp_loose = 1``,
  the kernel's default, ``tcp_new()`` instead builds an ESTABLISHED entry
  from the probe itself (``seen[0].td_end`` from its sequence, both
  directions ``IP_CT_TCP_FLAG_BE_LIBERAL``), and ``tcp_in_window()`` even
  has a branch for its answer (``sack == receiver->td_end + 1``: "Likely a
  reply to a keepalive"): the flow survives the router's forgetting.  netkit's
  middlebox therefore sets ``nf_conntrack_tcp_loose = 0`` in the router's
  namespace (as a cloud NAT, which cannot pick up a flow it has no mapping
  for, behaves); with 1 each probe re-creates the forgotten entry and the
  connection lives on (docs/rules.md, "The middlebox that forgets
  (conntrack)").  Masquerading, the NATed client's probe is picked up the same way
  and ``get_unique_tuple`` gives it back its old source port (free again), so
  the server sees the same flow and answers.  The server's probe, though, is
  addressed to the router's own address: picked up, it matches no NAT
  mapping, is delivered locally, and the router's TCP, which has no socket
  for it, answers with a RST (``tcp_v4_send_reset``): ECONNRESET at the first
  probe even though the router "drops".
* The router's verdict on the invalid packet is the scenario's choice:
  ``drop`` (``ct state invalid drop``) -- the probe vanishes, the keepalive
  rule runs its course (:func:`netkit.model.keepalive.keepalive_death`); or
  ``reject`` (``reject with tcp reset``) -- ``nf_send_reset`` answers the
  probe with a RST whose sequence number is the probe's ACK, i.e. the
  prober's ``rcv_nxt``, so ``tcp_validate_incoming`` accepts it and
  ``tcp_reset`` kills the connection with ECONNRESET at the first probe.

Hence the two cases netkit proves (and refuses the mix in between):

* ``max(idle, intvl)`` plus the keepalive timer's lateness below the
  middlebox timeout: the flow outlives any number of middlebox timeouts.
* ``idle`` above it: the first probe finds the entry expired.  Counted from
  the last segment received (the handshake: nothing else crosses an idle
  connection), the timer armed for ``idle`` at the connect fires at ``idle``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..enums import MiddleboxAction
from ..errors import NotModelled
from ..keepalive import KeepaliveSettings
from ..kernel import KernelInfo
from .keepalive import keepalive_death, reset_at_first_probe
from .prediction import DeathPrediction
from .wheel import wheel_granularity_s

SURVIVE_TIMEOUTS = 3  # a surviving flow is watched through this many middlebox timeouts
MAX_MIDDLEBOX_TIMEOUT_S = 432000  # the kernel's own default for ESTABLISHED: 5 days


@dataclass(frozen=True)
class MiddleboxCase:
    """Which side of the middlebox timeout the keepalive is on."""

    survives: bool
    why: str


def middlebox_case(k: KeepaliveSettings, timeout_s: int) -> MiddleboxCase | str:
    """The case these settings are, or (a str) why netkit has no rule for them (a SettingError's reason)."""
    longest = max(k.idle, k.intvl)
    if longest < timeout_s:
        return MiddleboxCase(True, f"every gap between the flow's packets is at most max(idle, intvl) = {longest} s "
                                   f"< the middlebox timeout {timeout_s} s")
    if k.idle > timeout_s:
        return MiddleboxCase(False, f"the first probe leaves at idle = {k.idle} s > the middlebox timeout "
                                    f"{timeout_s} s")
    if k.idle == timeout_s:
        return (f"idle {k.idle} s equals the middlebox timeout: whether the first probe meets the entry depends on "
                "sub-jiffy timing; choose idle above or below it")
    return (f"idle {k.idle} s is below the middlebox timeout {timeout_s} s but intvl {k.intvl} s is not: the first "
            "probe refreshes the entry and a later one finds it expired; netkit proves idle and intvl both below, or "
            "idle above")


def latest_gap_s(k: KeepaliveSettings, kernel: KernelInfo) -> float:
    """The longest silence on a flow guarded by this keepalive: the longer timer plus its wheel lateness and a jiffy."""
    longest = max(k.idle, k.intvl)
    return longest + wheel_granularity_s(longest, kernel.hz) + kernel.jiffy_s


def survival(k: KeepaliveSettings, timeout_s: int, kernel: KernelInfo) -> DeathPrediction:
    """The flow outlives ``SURVIVE_TIMEOUTS`` middlebox timeouts: no death; ``alive_until_s`` says how long is proven."""
    gap = latest_gap_s(k, kernel)
    watched = float(SURVIVE_TIMEOUTS * timeout_s)
    rule = (f"nf_conntrack_tcp_packet: every probe and its reply re-arm the router's entry to the full "
            f"{timeout_s} s (timeouts[ESTABLISHED], nf_ct_refresh_acct); the longest silence is max(idle, intvl) = "
            f"{max(k.idle, k.intvl)} s, {gap:.3f} s with the timer's lateness, < {timeout_s} s: the entry never "
            f"expires, the connection is alive after {SURVIVE_TIMEOUTS} middlebox timeouts ({watched:g} s) and "
            "carries data both ways")
    return DeathPrediction(rule=rule, expected_s=watched, window_s=(watched, watched), expected_count=0,
                           expected_error="none", alive_until_s=watched)


def expiry(k: KeepaliveSettings, timeout_s: int, action: str, kernel: KernelInfo) -> DeathPrediction:
    """The entry expired before the first probe: the keepalive rule (drop) or a reset at the first probe (reject)."""
    forgot = (f"the router forgot the flow {timeout_s} s after the handshake (nf_ct_is_expired); the first probe, at "
              f"idle = {k.idle} s, starts no entry (tcp_new: nf_conntrack_tcp_loose = 0) and is invalid")
    if MiddleboxAction(action) is MiddleboxAction.DROP:
        p = keepalive_death(k, kernel, last_segment="idle")
        return replace(p, rule=f"{forgot}, dropped by `ct state invalid drop`, like every later probe; {p.rule}")
    p = reset_at_first_probe(k, kernel, last_segment="idle")
    return replace(p, rule=(
        f"{forgot}; `reject with tcp reset` answers it with a RST whose seq is the probe's ack (nf_send_reset), "
        f"in window, so tcp_reset() kills the connection with ECONNRESET at {p.expected_s:g} s after the last "
        "segment received"))


def middlebox_prediction(k: KeepaliveSettings, timeout_s: int, action: str, kernel: KernelInfo) -> DeathPrediction:
    """The one prediction of a routed scenario.

    Raises ValueError for a case no rule covers (a Scenario refuses those
    already), NotModelled for a survival this kernel's timer wheel could spoil.
    """
    case = middlebox_case(k, timeout_s)
    if isinstance(case, str):
        raise ValueError(case)
    if not case.survives:
        return expiry(k, timeout_s, action, kernel)
    reason = survival_too_close(k, timeout_s, kernel)
    if reason:
        raise NotModelled(reason)
    return survival(k, timeout_s, kernel)


def survival_too_close(k: KeepaliveSettings, timeout_s: int, kernel: KernelInfo) -> str | None:
    """Why a 'survives' case is too close to call on this kernel (the timer's lateness reaches the timeout), or None."""
    gap = latest_gap_s(k, kernel)
    if gap < timeout_s:
        return None
    return (f"max(idle, intvl) = {max(k.idle, k.intvl)} s can be {gap:.3f} s late on this kernel's timer wheel "
            f"(HZ={kernel.hz}), not below the middlebox timeout {timeout_s} s: choose a longer timeout")
