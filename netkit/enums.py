"""The closed vocabularies netkit speaks in, as str-valued enums.

Each member *is* its string (``Family.IPV4 == "ipv4"``, same hash, same JSON),
so results, ids and JSON read exactly as the plain strings did, and code that
passes ``"ipv4"`` keeps working; a type checker, though, now knows the
allowed values, and a typo fails at once instead of falling through a chain
of ``if state == ...``.
"""

from __future__ import annotations

import enum

from .errors import UnknownChoice


class StrEnum(enum.StrEnum):
    """A str that is also an enum member; prints as its value (``format``, ``str``, f-strings: enum.StrEnum's)."""

    __hash__ = str.__hash__  # a member hashes as its string: a str key must find it (and it must find str keys)

    def __repr__(self) -> str:  # in a printed list or dict too, a member reads as the string it is
        return repr(self.value)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(member.value for member in cls)


class Family(StrEnum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"


def family_of(value: object) -> Family:
    """``value`` as a Family; anything else (``"IPv4"`` too) is an UnknownChoice naming the two."""
    if value not in Family.values():
        raise UnknownChoice(f"unknown address family {value!r}: use 'ipv4' or 'ipv6'")
    return Family(value)


class State(StrEnum):
    """The connection's state when the peer goes away."""

    IDLE = "idle"
    UNACKED = "unacked"
    ZERO_WINDOW = "zero-window"
    RETRACTED_WINDOW = "retracted-window"  # data in flight when the peer takes its window back to zero
    SYN_SENT = "syn-sent"  # connect() to a peer that is gone: the tested side is the client
    SYN_RECV = "syn-recv"  # a client that vanishes mid-handshake: the tested side is the server's listener

    @property
    def handshake(self) -> bool:
        """The connection never got established: no keepalive, its own timers (SYN, SYN-ACK)."""
        return self in (State.SYN_SENT, State.SYN_RECV)

    @property
    def tested_side(self) -> Side | None:
        """The side a handshake state fixes (None: the scenario chooses)."""
        return {State.SYN_SENT: Side.CLIENT, State.SYN_RECV: Side.SERVER}.get(self)


class Side(StrEnum):
    """Whose timers are tested; the other side is the peer that goes away."""

    SERVER = "server"
    CLIENT = "client"


class KeepaliveVia(StrEnum):
    """Where the tested side's keepalive values come from."""

    SOCKET = "socket"
    SYSCTL = "sysctl"


class RtoMinVia(StrEnum):
    """Where a scenario's minimum RTO is set: the namespace's sysctl (Linux 6.11+) or the route to the peer."""

    SYSCTL = "sysctl"  # net.ipv4.tcp_rto_min_us, read by tcp_init_sock into icsk_rto_min
    ROUTE = "route"  # the route's locked rto_min metric (RTAX_RTO_MIN), which tcp_rto_min() prefers: any kernel


class Clock(StrEnum):
    """What t = 0 is for a prediction's times."""

    LAST_RECEIVED = "last-received"  # the last segment received (tcpi_last_ack_recv)
    SEND = "send"  # the data sent into the broken path
    SYN = "syn"  # the first SYN (connect())
    SYN_ACK = "syn-ack"  # the listener's first SYN-ACK
    WINDOW_CLOSED = "window-closed"  # the ACK that closed the window, when a hung peer answers after it

    @property
    def since(self) -> str:
        return {Clock.SEND: "the send", Clock.SYN: "the first SYN", Clock.SYN_ACK: "the first SYN-ACK",
                Clock.WINDOW_CLOSED: "the ACK that closed the window"}.get(self, "the last segment received")

    @property
    def on_the_observers_clock(self) -> bool:
        """Read at death on the observer's monotonic clock, not from ``tcpi_last_ack_recv`` (answers move that)."""
        return self in (Clock.SEND, Clock.WINDOW_CLOSED)


class CountSource(StrEnum):
    """The kernel figure a prediction's count is read from."""

    PROBES = "tcpi_probes"
    RETRANSMITS = "tcpi_retransmits"
    WIN_PROBES = "TcpExt.TCPWinProbe"
    SYN_RETRANS = "TcpExt.TCPSynRetrans"  # SYN and SYN-ACK retransmissions (tcp_retransmit_skb, tcp_rtx_synack)
    RETRANS_SEGS = "Tcp.RetransSegs"  # every retransmitted segment (__tcp_retransmit_skb), /proc/net/snmp
    KEEPALIVES = "TcpExt.TCPKeepAlive"  # keepalive probes tried (tcp_xmit_probe_skb counts before it transmits)

    @property
    def counter(self) -> str | None:
        """The namespace counter's name (TcpExt or Tcp), for the counts that are one."""
        prefix, _, name = self.value.partition(".")
        return name if prefix in ("TcpExt", "Tcp") else None


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"


class LastSegment(StrEnum):
    """What the tested socket last received before the fault (the keepalive timer's arming)."""

    PROBE_REPLY = "probe-reply"  # a keepalive probe had just been answered
    IDLE = "idle"  # nothing since the handshake or the last data


class FaultName(StrEnum):
    """A way the peer goes away, by name; what each means is :mod:`netkit.faults`, how it is done :mod:`netkit.lab.faults`."""

    LINK_DOWN = "link-down"
    PEER_GONE = "peer-gone"
    BLACKHOLE = "blackhole"
    ONE_WAY = "one-way"
    PEER_REBOOT = "peer-reboot"
    NETEM_LOSS = "netem-loss"
    LOCAL_DROP = "local-drop"  # the tested side's own qdisc refuses every packet (pfifo limit 0)
    MIDDLEBOX_FORGETS = "middlebox-forgets"  # the routed lab's: its router forgets the idle flow
    PEER_HANGS = "peer-hangs"  # the window states': the peer stays up, answering with a zero window


class Topology(StrEnum):
    """How the two ends are joined: one veth pair, or through a router namespace (a stateful middlebox)."""

    DIRECT = "direct"
    ROUTED = "routed"


class MiddleboxAction(StrEnum):
    """What the routed lab's router does with a packet of a flow it has forgotten (conntrack: invalid)."""

    DROP = "drop"  # ct state invalid drop
    REJECT = "reject"  # ct state invalid reject with tcp reset


class EventKind(StrEnum):
    """What a timeline event is, decided where the event is made (never guessed back from its wording).

    The wire's frames get theirs from :mod:`netkit.evidence.classify`; the
    observer's and the procedures' events are given theirs where they are
    created.  Reports choose markers, colours and the lines they print by it.
    """

    LAST_SEGMENT = "last segment received"  # t = 0 of most clocks: the last segment the tested side received
    FAULT = "fault"  # the path broken
    PROBE = "probe"  # a keepalive probe left the tested side (unanswered, as far as is known)
    ANSWERED_PROBE = "answered probe"  # a keepalive probe the peer answered
    PROBE_REPLY = "probe reply"  # the peer's answer to a probe
    ZERO_WINDOW_PROBE = "zero-window probe"  # the persist timer's window probe
    RETRANSMISSION = "retransmission"  # data, SYN or SYN-ACK sent again (the tail loss probe too)
    RST = "rst"  # a reset, either side's
    DEATH = "death"  # the tested connection is dead (its error read)
    PEER_DEATH = "peer death"  # the peer's connection is dead too
    GAVE_UP = "gave up"  # the watch ended with the connection still alive
    CONNECT = "connect"  # a connection made or attempted (SYN, connect())
    DATA = "data"  # payload, an ACK or a FIN: traffic that is none of the above
    OTHER = "other"


class DeathSource(StrEnum):
    """Whose clock the judged death time is read from."""

    TRACE = "trace"  # the kernel's own moment: the CLOSE transition inside its timer's run (the timer ledger)
    WIRE = "wire"  # the kernel's own timestamp: the frame on the tested veth that marks the death (a RST)
    OBSERVER = "observer"  # tcpi_last_ack_recv (or the send's clock) read when netkit's observer woke


class Timing(StrEnum):
    """Where a judged time fell against its window(s), decided once by ``check_time``."""

    INSIDE = "inside"
    EARLY = "early"  # before every window: always a real failure
    LATE = "late"  # after every window (or between two, past the first)
    NONE = "none"  # nothing to judge: no death was seen


class GateOutcome(StrEnum):
    """A gate scenario's one outcome, in the order every report lists them."""

    PASS = "pass"
    FAIL = "fail"
    XFAIL = "xfail"
    XPASS = "xpass"
    SKIP = "skip"
    ERROR = "error"
    INCONCLUSIVE = "inconclusive"  # the machine ran the timers too late to judge, twice (netkit.gate.outcome)
