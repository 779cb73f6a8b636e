"""Which kernel rule applies to a scenario: the dispatch over (connection state, fault).

The rules themselves live in :mod:`netkit.model` (idle connections, keepalive)
and :mod:`netkit.retransmission` (data outstanding: RTO and zero-window probes).
"""

from __future__ import annotations

from dataclasses import replace

from .kernel import KernelInfo
from .keepalive import KeepaliveSettings
from .model import DeathPrediction, keepalive_death, reset_at_first_probe
from .retransmission import default_rto_s, unacked_death, zero_window_death


def predict(
    state: str,
    fault: str,
    family: str,
    settings: KeepaliveSettings,
    kernel: KernelInfo,
    rto_s: float | None = None,
    retries2: int | None = None,
) -> DeathPrediction:
    """The rule for a (state, fault) pair on this kernel: window, error, counts.

    ``rto_s`` is the connection's RTO (``tcpi_rto``; by default TCP_RTO_MIN
    plus a jiffy, what a veth gives), ``retries2`` the tested namespace's
    ``net.ipv4.tcp_retries2`` when the scenario sets it.  Raises NotModelled
    where netkit has no defensible rule.

    Idle connections follow :func:`netkit.model.keepalive_death`, with these
    fault-specific twists, each measured and explained:

    * ``peer-reboot``: the peer answers the first probe with a RST
      (``tcp_v4_send_reset`` takes the probe's ack number as its sequence, so
      it is in window) -> ``tcp_reset``: ECONNRESET at the first probe.
    * ``peer-gone`` over IPv6: every probe's route lookup fails and
      ``inet6_csk_xmit`` keeps it as a soft error (``sk_err_soft =
      ENETUNREACH``); ``tcp_write_err`` reports ``sk_err_soft ?: ETIMEDOUT``.
      IPv4's ``__ip_queue_xmit`` sets no soft error: ETIMEDOUT.  The failed
      probes still count (``tcp_write_wakeup`` returned <= 0).
    * ``one-way``: the peer still receives, so the final RST the tested side
      sends (``tcp_send_active_reset``) reaches it: it dies too, ECONNRESET.
    """
    rto_s = rto_s or default_rto_s(kernel)
    if state == "unacked":
        return unacked_death(settings, kernel, fault, family, rto_s, retries2)
    if state == "zero-window":
        return zero_window_death(settings, kernel, fault, family, rto_s, retries2)
    if fault == "peer-reboot":
        return reset_at_first_probe(settings, kernel)
    if fault == "peer-gone" and family == "ipv6":
        p = keepalive_death(settings, kernel, error="ENETUNREACH")
        return replace(p, rule=p.rule + "; IPv6 keeps the failed route lookup as sk_err_soft = ENETUNREACH, "
                       "which tcp_write_err reports instead of ETIMEDOUT")
    p = keepalive_death(settings, kernel)
    if fault == "one-way":
        return replace(p, peer_expected_error="ECONNRESET",
                       rule=p.rule + "; the tested side's final RST reaches the peer, which dies at the same moment")
    return p
