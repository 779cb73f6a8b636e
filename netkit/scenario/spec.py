"""A scenario is a plain value: what to prove.  No I/O here (nothing here touches the kernel); :mod:`.run` proves it.

Building one checks every field, names its fault (:mod:`netkit.faults`) and
gives the model its rule, so a scenario can be made, hashed and predicted on
a machine without pyroute2 or privileges.  What this machine can run is
asked where it runs: :func:`netkit.scenario.requirements.require_supported`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..enums import (
    Family,
    FaultName,
    KeepaliveVia,
    MiddleboxAction,
    RtoMinVia,
    Side,
    State,
    StrEnum,
    Topology,
    family_of,
)
from ..errors import SettingError
from ..faults import WINDOW_STATES, FaultInfo, fault_info
from ..keepalive import KeepaliveSettings, whole_in
from ..model.fault_rule import FaultRule
from .middlebox_spec import check_middlebox
from .rto_spec import check_rto_bounds

STATES = State.values()
SIDES = Side.values()
KEEPALIVE_SOURCES = KeepaliveVia.values()
MAX_RETRIES2 = 15  # beyond the default the deadline is tens of minutes
MAX_CONNECTIONS = 1000  # per scenario: one server, this many idle clients, one fault
MAX_SYN_RETRIES = 6  # the kernel's default tcp_syn_retries: 127 s; more is minutes per scenario
MAX_EXPECT_S = 86400.0  # a day: an expected death later than that is a typo, not a policy


def require_scenario(value: object, where: str) -> Scenario:
    """``value`` if it is a Scenario; else a TypeError that names it, where it was given, and what to give."""
    if not isinstance(value, Scenario):
        raise TypeError(f"{where}: {value!r} is not a netkit.Scenario: give one, e.g. "
                        "Scenario(KeepaliveSettings(1, 1, 3))")
    return value


def _choice(scenario: Scenario, field_name: str, kind: type[StrEnum]) -> None:
    """Check a field against its enum and store the member (still equal to, and hashing as, the string)."""
    value = getattr(scenario, field_name)
    try:
        object.__setattr__(scenario, field_name, kind(value))
    except ValueError:
        raise SettingError(field_name, value, "use one of " + ", ".join(kind.values())) from None


@dataclass(frozen=True)
class Scenario:
    """What to prove. Hashable, so it can key a dict of results.

    ``side``: whose timers are tested ("server": the accepted socket; "client":
    the client's view) -- the other side is the peer that the fault takes away.
    ``keepalive_via``: "socket" (setsockopt) or "sysctl" (only SO_KEEPALIVE on
    the socket; idle/intvl/cnt written to the tested namespace's
    ``net.ipv4.tcp_keepalive_*`` before it).
    ``connections``: how many connections between the same two namespaces
    (idle state only): the server accepts them all, the tested side's
    keepalive is set on every one, and one fault must kill each inside the
    window; the first is the one measured in detail, as with one connection.
    ``topology``: "direct" (one veth pair, the default) or "routed": client
    and server joined through a router namespace that tracks connections
    (:mod:`netkit.lab.routed`); its fault is always "middlebox-forgets", the
    router forgetting the idle flow ``middlebox_timeout_s`` after its last
    packet (its namespace's ``nf_conntrack_tcp_timeout_established``).
    ``middlebox``: what the router does with a forgotten flow's packets,
    "drop" or "reject" (a TCP RST); ``masquerade``: the router also SNATs the
    client to its own address.  Whether the flow survives or dies follows from
    keepalive idle/intvl against the timeout (:mod:`netkit.model.middlebox`).
    ``rto_max_ms``: the tested socket's maximum RTO (Linux 6.15+), set with
    ``TCP_RTO_MAX_MS`` (``rto_max_via="socket"``) or as the tested namespace's
    ``net.ipv4.tcp_rto_max_ms`` before the connection (``"sysctl"``);
    ``expect_s``: the death time a person relies on (a policy's "a dead peer
    is noticed in N s"): the run is judged against it instead of the model's
    time, in the window :func:`netkit.model.expectation.window_for_expectation`
    gives; the kernel's rule still judges the error and the count.
    ``rto_min_us``: the tested namespace's ``net.ipv4.tcp_rto_min_us`` (Linux
    6.11+, ``rto_min_via="sysctl"``) or the tested side's route to its peer
    with a locked ``rto_min`` metric (``"route"``, whole milliseconds: what
    ``ip route ... rto_min 50ms`` sets, on any kernel).  Both only in the data
    states (:mod:`.rto_spec`).
    """

    keepalive: KeepaliveSettings = KeepaliveSettings()
    family: str = Family.IPV4
    fault: str = FaultName.LINK_DOWN
    state: str = State.IDLE
    side: str = Side.SERVER
    keepalive_via: str = KeepaliveVia.SOCKET
    retries2: int | None = None  # net.ipv4.tcp_retries2 in the tested namespace (data in flight, no user timeout)
    connections: int = 1  # idle connections that the one fault must kill (1..MAX_CONNECTIONS)
    topology: str = Topology.DIRECT
    middlebox_timeout_s: int | None = None  # routed: the router's conntrack established timeout, seconds
    middlebox: str = MiddleboxAction.DROP  # routed: "drop" or "reject" a forgotten flow's packets
    masquerade: bool = False  # routed: the router SNATs the client to its server-side address
    syn_retries: int | None = None  # handshake states: SYN (syn-sent) or SYN-ACK (syn-recv) retries
    rto_max_ms: int | None = None  # data states: the tested socket's maximum RTO (None: the kernel's 120 s)
    rto_max_via: str = KeepaliveVia.SOCKET  # TCP_RTO_MAX_MS on the socket, or the namespace's tcp_rto_max_ms
    rto_min_us: int | None = None  # data states: net.ipv4.tcp_rto_min_us in the tested namespace, or the route's
    rto_min_via: str = RtoMinVia.SYSCTL  # the namespace's tcp_rto_min_us, or the route to the peer's rto_min
    expect_s: float | None = None  # the death time a person expects, judged instead of the model's (None: the model's)

    def __post_init__(self) -> None:
        if not isinstance(self.keepalive, KeepaliveSettings):
            raise SettingError("keepalive", self.keepalive, "give a KeepaliveSettings, e.g. KeepaliveSettings(1, 1, 3)")
        object.__setattr__(self, "family", family_of(self.family))
        object.__setattr__(self, "fault", fault_info(self.fault).name)  # unknown: an UnknownChoice naming the choices
        _choice(self, "state", State)
        _choice(self, "side", Side)
        state = State(self.state)
        if state.tested_side is not None:
            object.__setattr__(self, "side", state.tested_side)  # the handshake state decides who is tested
        _choice(self, "keepalive_via", KeepaliveVia)
        r2 = self.retries2
        if r2 is not None and not whole_in(r2, 1, MAX_RETRIES2):
            raise SettingError("retries2 (net.ipv4.tcp_retries2)", self.retries2,
                               f"netkit uses whole numbers 1..{MAX_RETRIES2} (the default 15 already means ~15 minutes)")
        if r2 is not None and (self.state == State.IDLE or state.handshake):
            raise SettingError("retries2 (net.ipv4.tcp_retries2)", r2, "it applies to data in flight (state unacked, "
                                                                        "zero-window or retracted-window); keepalive "
                                                                        "decides an idle connection")
        if self.fault == FaultName.PEER_HANGS and self.state not in WINDOW_STATES:
            raise SettingError("fault", self.fault, "a hung peer answers keepalive probes and acknowledges data, so "
                                                    f"nothing ends {self.state}: it is a window state's fault (state "
                                                    "zero-window or retracted-window)")
        n = self.connections
        if not whole_in(n, 1, MAX_CONNECTIONS):
            raise SettingError("connections", n, f"use a whole number 1..{MAX_CONNECTIONS}")
        if n > 1 and self.fault == FaultName.LOCAL_DROP:
            raise SettingError("connections", n, "a local drop keeps an idle connection alive, and netkit watches one "
                                                 "connection live: use connections=1")
        if n > 1 and self.state != State.IDLE:
            raise SettingError("connections", n, f"more than one connection is supported only for the idle state, "
                                                 f"not {self.state}: use connections=1")
        _choice(self, "topology", Topology)
        _choice(self, "middlebox", MiddleboxAction)
        check_middlebox(self)  # the routed topology's rules, in their own module
        _choice(self, "rto_max_via", KeepaliveVia)
        _choice(self, "rto_min_via", RtoMinVia)
        check_rto_bounds(self)
        self._check_handshake(state)
        expect = self.expect_s
        if expect is not None and (isinstance(expect, bool) or not isinstance(expect, (int, float))
                                   or not 0 < expect <= MAX_EXPECT_S):
            raise SettingError("expect_s", expect, f"give the expected death time in seconds, above 0 and at most "
                                                   f"{MAX_EXPECT_S:g} (a day)")

    def _check_handshake(self, state: State) -> None:
        """``syn_retries`` belongs to the handshake states, and they need it; TCP_USER_TIMEOUT only to SYN-SENT."""
        n = self.syn_retries
        if not state.handshake:
            if n is not None:
                raise SettingError("syn_retries", n, "it applies to the handshake states (syn-sent, syn-recv), "
                                                     f"not {self.state}")
            return
        if n is None:
            raise SettingError("syn_retries", n, f"the {self.state} state needs it: give 1..{MAX_SYN_RETRIES} (the "
                                                 "kernel's defaults, 6 SYN and 5 SYN-ACK retries, take 127 s and 63 s)")
        if not whole_in(n, 1, MAX_SYN_RETRIES):
            raise SettingError("syn_retries", n, f"use a whole number 1..{MAX_SYN_RETRIES} (6 SYN retries, the "
                                                 "kernel's default, take 127 s)")
        if state == State.SYN_RECV and self.keepalive.user_timeout_ms is not None:
            raise SettingError("user_timeout_ms (TCP_USER_TIMEOUT)", self.keepalive.user_timeout_ms,
                               "a half-open handshake's request socket ignores it (reqsk_timer_handler counts "
                               "SYN-ACKs only): leave it unset for syn-recv")

    @property
    def fault_info(self) -> FaultInfo:
        """What the fault is (:mod:`netkit.faults`); how it is done is :func:`netkit.lab.faults.fault_object`'s."""
        return fault_info(self.fault)

    @property
    def fault_rule(self) -> FaultRule:
        """The fault's twist to the kernel's rule (what :func:`netkit.model.predict` reads)."""
        return self.fault_info.rule

    @property
    def id(self) -> str:
        k = self.keepalive
        handshake = State(self.state).handshake
        settings = f"syn{self.syn_retries}" if handshake else f"{k.idle}/{k.intvl}/{k.cnt}"
        parts = [self.family, self.state, self.fault, settings]
        if k.user_timeout_ms is not None:
            parts.append(f"ut{k.user_timeout_ms}")
        if self.side != Side.SERVER and not handshake:
            parts.append(f"{self.side}-side")
        if self.keepalive_via != KeepaliveVia.SOCKET:
            parts.append(f"via-{self.keepalive_via}")
        if self.retries2 is not None:
            parts.append(f"retries2={self.retries2}")
        if self.rto_max_ms is not None:  # named as the kernel names it: the socket option's unit, or the sysctl
            via_sysctl = self.rto_max_via == KeepaliveVia.SYSCTL
            parts.append(f"{'tcp_rto_max_ms' if via_sysctl else 'rto_max_ms'}={self.rto_max_ms}")
        if self.rto_min_us is not None:  # named as set: the sysctl's microseconds, or the route's rto_min
            parts.append(f"tcp_rto_min_us={self.rto_min_us}" if self.rto_min_via == RtoMinVia.SYSCTL
                         else f"route_rto_min={self.rto_min_us // 1000}ms")
        if self.connections > 1:
            parts.append(f"x{self.connections}")
        if self.expect_s is not None:
            parts.append(f"expect{self.expect_s:g}s")
        if self.topology == Topology.ROUTED:
            parts += ["routed", f"ct{self.middlebox_timeout_s}s", str(self.middlebox)]
            if self.masquerade:
                parts.append("masq")
        return "-".join(parts)
