"""Which kernel rule applies to a scenario: the dispatch over (connection state, fault).

The rules themselves live in :mod:`netkit.model.keepalive` (idle connections,
keepalive) and :mod:`netkit.model.retransmission` (data outstanding: RTO and
zero-window probes); the fault's twist is its :class:`FaultRule`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from ..enums import Clock, CountSource, Family, State
from ..errors import NotModelled
from ..keepalive import KeepaliveSettings
from ..kernel import KernelInfo
from .expectation import expected_by_person
from .fault_rule import ANSWERED_NEEDS_USER_TIMEOUT, DataPath, FaultRule
from .handshake import HandshakeFacts, handshake_death, handshake_not_modelled_reason
from .keepalive import keepalive_death, reset_at_first_probe
from .local_drop import (
    idle_survives_local_drop,
    local_drop_not_modelled_reason,
    probe_timer_local_drop,
    syn_sent_local_drop,
)
from .middlebox import middlebox_prediction
from .persist import PERSIST_NEEDS_RETRIES2, zero_window_death
from .prediction import DeathPrediction
from .retracted import retracted_not_modelled_reason, retracted_window_death
from .retransmission import RTO_NEEDS_RETRIES2, unacked_death
from .rto import default_rto_s


class Predictable(Protocol):
    """What the model needs of a scenario (:class:`netkit.Scenario` is one)."""

    @property
    def keepalive(self) -> KeepaliveSettings: ...
    @property
    def family(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def retries2(self) -> int | None: ...
    @property
    def fault_rule(self) -> FaultRule: ...
    @property
    def syn_retries(self) -> int | None: ...
    @property
    def middlebox_timeout_s(self) -> int | None: ...
    @property
    def middlebox(self) -> str: ...
    @property
    def rto_max_ms(self) -> int | None: ...
    @property
    def expect_s(self) -> float | None: ...


def predict(scenario: Predictable, kernel: KernelInfo, rto_s: float | None = None,
            handshake: HandshakeFacts | None = None) -> DeathPrediction:
    """The rule for a scenario on this kernel: window, error, counts.

    ``rto_s`` is the connection's RTO (``tcpi_rto``; by default TCP_RTO_MIN
    plus a jiffy, what a veth gives: a scenario with ``rto_min_us`` is
    predicted from the RTO its socket holds).  The socket's maximum RTO
    (``scenario.rto_max_ms``) caps the backoff of the data states' timers.
    ``handshake``: what the handshake states' rules read from the tested
    namespace (by default a new namespace's values).  Raises NotModelled where netkit has no defensible
    rule.

    The handshake states follow :mod:`netkit.model.handshake`.

    Idle connections follow :func:`netkit.model.keepalive.keepalive_death`,
    with the fault's twists, each measured and explained:

    * a peer that answers with a RST (peer-reboot): ``tcp_v4_send_reset``
      takes the probe's ack number as its sequence, so it is in window ->
      ``tcp_reset``: ECONNRESET at the first probe.
    * a soft error over IPv6 (peer-gone): every probe's route lookup fails
      and ``inet6_csk_xmit`` keeps it (``sk_err_soft = ENETUNREACH``);
      ``tcp_write_err`` reports ``sk_err_soft ?: ETIMEDOUT``.  The failed
      probes still count (``tcp_write_wakeup`` returned <= 0).
    * a peer that still receives (one-way): the final RST the tested side
      sends (``tcp_send_active_reset``) reaches it: it dies too, ECONNRESET.

    A scenario with ``expect_s`` is judged at that time instead
    (:func:`netkit.model.expectation.expected_by_person`).
    """
    p = _rule(scenario, kernel, rto_s, handshake)
    return p if scenario.expect_s is None else expected_by_person(p, scenario.expect_s, kernel)


def _rule(scenario: Predictable, kernel: KernelInfo, rto_s: float | None,
          handshake: HandshakeFacts | None) -> DeathPrediction:
    """The kernel's rule for the scenario (:func:`predict` without a person's expectation)."""
    fault, settings = scenario.fault_rule, scenario.keepalive
    if scenario.middlebox_timeout_s is not None:  # the routed topology: the router forgets (netkit.model.middlebox)
        return middlebox_prediction(settings, scenario.middlebox_timeout_s, scenario.middlebox, kernel)
    if fault.data_path is DataPath.REFUSED:
        return _local_drop(scenario, kernel, rto_s or default_rto_s(kernel), handshake)
    if State(scenario.state).handshake:
        return handshake_death(scenario.state, fault, scenario.family, scenario.syn_retries or 0,
                               settings.user_timeout_ms, kernel, handshake or HandshakeFacts.defaults(kernel))
    rto_s = rto_s or default_rto_s(kernel)
    if scenario.state == State.UNACKED:
        return replace(unacked_death(settings, kernel, fault, scenario.family, rto_s, scenario.retries2,
                                     scenario.rto_max_ms), rto_s=rto_s)
    if scenario.state == State.RETRACTED_WINDOW:
        return replace(retracted_window_death(settings, kernel, fault, scenario.family, rto_s, scenario.rto_max_ms),
                       rto_s=rto_s)
    if scenario.state == State.ZERO_WINDOW:
        return replace(zero_window_death(settings, kernel, fault, scenario.family, rto_s, scenario.retries2,
                                         scenario.rto_max_ms), rto_s=rto_s)
    if fault.data_path is DataPath.RESET:
        return reset_at_first_probe(settings, kernel)
    error = fault.timeout_error(scenario.family)
    p = keepalive_death(settings, kernel, error=error)
    if scenario.family == Family.IPV6 and error != "ETIMEDOUT":
        return replace(p, rule=p.rule + f"; IPv6 keeps the failed route lookup as sk_err_soft = {error}, "
                       "which tcp_write_err reports instead of ETIMEDOUT")
    if fault.peer_dies_too:
        return replace(p, peer_expected_error="ECONNRESET",
                       rule=p.rule + "; the tested side's final RST reaches the peer, which dies at the same moment")
    return p


def _local_drop(scenario: Predictable, kernel: KernelInfo, rto_s: float,
                handshake: HandshakeFacts | None) -> DeathPrediction:
    """The tested side's own qdisc refuses every packet: the resource-probe path (:mod:`.local_drop`)."""
    settings, ut = scenario.keepalive, scenario.keepalive.user_timeout_ms
    reason = local_drop_not_modelled_reason(scenario.state)
    if reason:
        raise NotModelled(reason)
    if scenario.state == State.IDLE:
        return idle_survives_local_drop(settings, kernel)
    if scenario.state == State.SYN_SENT:
        facts = handshake or HandshakeFacts.defaults(kernel)
        return syn_sent_local_drop(scenario.syn_retries or 0, facts.linear_timeouts, ut, kernel)
    error = scenario.fault_rule.timeout_error(scenario.family)
    if scenario.state == State.UNACKED:
        return replace(probe_timer_local_drop(
            kernel, rto_s, ut, scenario.retries2, error, CountSource.PROBES, Clock.SEND,
            "the data written after the fault never leaves (tcp_write_xmit stops at the refused segment, packets_out "
            "stays 0), so tcp_check_probe_timer hands it to the probe timer, not the RTO"), rto_s=rto_s)
    return replace(probe_timer_local_drop(
        kernel, rto_s, ut, scenario.retries2, error, CountSource.WIN_PROBES, Clock.LAST_RECEIVED,
        "the peer's receive window is closed, and every window probe is refused"), rto_s=rto_s)


def not_modelled_reason(scenario: Predictable) -> str | None:
    """Why netkit has no defensible rule for this scenario (None: it has one).

    Decided from the scenario alone -- no RTO needed -- so a run can refuse
    before it builds a lab, and :func:`predict` raises NotModelled with the
    same reason.  One refusal needs the kernel and the connection: with the
    link down, :func:`netkit.model.neighbour.link_down_prediction` refuses a
    race between the neighbour failure and an RTO run that the send's phase
    on the timer wheel decides (e.g. IPv6, tcp_retries2 = 3 at HZ=1000);
    only :func:`predict`, which has the HZ and the RTO, can see it.
    """
    fault, ut = scenario.fault_rule, scenario.keepalive.user_timeout_ms
    if scenario.middlebox_timeout_s is not None:  # a routed Scenario refuses what netkit.model.middlebox cannot tell
        return None
    if fault.data_path is DataPath.REFUSED:  # the resource-probe path needs no tcp_retries2: the default ends it
        return local_drop_not_modelled_reason(scenario.state)
    if State(scenario.state).handshake:
        return handshake_not_modelled_reason(scenario.state, fault)
    if scenario.state == State.RETRACTED_WINDOW:
        return retracted_not_modelled_reason(fault, ut, scenario.rto_max_ms)
    if scenario.state == State.IDLE or fault.data_path is DataPath.RESET:
        return None
    if fault.data_path is DataPath.ANSWERED and not ut:
        return ANSWERED_NEEDS_USER_TIMEOUT
    if ut or scenario.retries2 is not None:
        return None
    if scenario.state == State.UNACKED and fault.data_path in (DataPath.LOST, DataPath.LOCAL):
        return RTO_NEEDS_RETRIES2
    return PERSIST_NEEDS_RETRIES2
