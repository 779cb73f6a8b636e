"""What a fault changes in the kernel's rules: the twist a fault gives the prediction, as data.

A fault (:mod:`netkit.lab.faults`) owns one of these; the model reads only
this, so the timing rules stay pure and every fault-specific branch of the
model is named by what the kernel sees, not by the fault's name.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..enums import Family, StrEnum


class DataPath(StrEnum):
    """What becomes of a segment the tested side sends after the fault."""

    RESET = "reset"  # it reaches a peer that forgot the connection: a RST answers (tcp_reset, ECONNRESET)
    LOCAL = "local"  # the tested side's own device has no carrier: it waits in the neighbour queue (-EBUSY)
    NO_ROUTE = "no-route"  # the route lookup fails: nothing leaves, nothing is in flight
    LOST = "lost"  # it leaves and vanishes (dropped at the peer or in a qdisc)
    REFUSED = "refused"  # the tested side's own qdisc refuses it: the transmit returns NET_XMIT_DROP (> 0)
    ANSWERED = "answered"  # it reaches a peer that is up but reads nothing: its kernel answers with a zero window


ANSWERED_NEEDS_USER_TIMEOUT = (
    "a hung peer keeps answering with a zero window, and every answer restarts the kernel's count (icsk_probes_out, "
    "rcv_tstamp): without TCP_USER_TIMEOUT the connection never dies (RFC 1122 4.2.2.17), whatever tcp_retries2 "
    "says; set a user timeout")


@dataclass(frozen=True)
class FaultRule:
    """The fault's twist to the rule and to the expected error.

    ``soft_error_ipv6``: over IPv6 every failed route lookup is kept as a soft
    error (``inet6_csk_xmit``: ``sk_err_soft``) that ``tcp_write_err``
    reports instead of ETIMEDOUT; IPv4's ``__ip_queue_xmit`` sets none.
    ``peer_dies_too``: the peer still receives, so the tested side's final RST
    (``tcp_send_active_reset``) reaches it and it dies with ECONNRESET.
    """

    data_path: DataPath
    soft_error_ipv6: str | None = None
    peer_dies_too: bool = False

    def timeout_error(self, family: str) -> str:
        """The error a timeout reports (``tcp_write_err``: ``sk_err_soft ?: ETIMEDOUT``)."""
        if family == Family.IPV6 and self.soft_error_ipv6:
            return self.soft_error_ipv6
        return "ETIMEDOUT"
