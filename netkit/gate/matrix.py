"""The scenario matrix as data: every cell the gate runs and the test suite asserts, with a stable id.

One definition, two users: ``tests/test_fault_matrix.py`` and
``tests/test_keepalive_death.py`` parametrize over these lists, and ``netkit
gate`` runs them.  A cell's id is its scenario's id (``ipv4-idle-link-down-1/1/3``):
it names every setting that differs from the defaults, so it is stable as long
as the scenario is, and a baseline from an older run lines up with a newer one.

The groups, and why each cell is there:

- ``CORE``: the classic keepalive rule on an idle connection with the link
  down, for settings where intvl < idle, intvl = idle, intvl > idle (the
  answered probe re-arms for intvl) and a long count (lateness accumulates).
- ``FAULTS``: every way the peer goes away, each for two settings.
- ``USER_TIMEOUT``: TCP_USER_TIMEOUT shorter than, equal to and longer than
  idle + intvl*cnt = 4 s, and just past a timer run (3050 ms: two outcomes).
- ``SYSCTL``: keepalive from the namespace's sysctls instead of the socket.
- ``CLIENT_VIEW``: the client's own keepalive, the server taken away.
- ``UNACKED``, ``ZERO_WINDOW``: data in flight (retransmission timer) and a
  closed window (persist timer); keepalive stays on and must not interfere.
  A closed window whose peer hangs (``peer-hangs``: up, answering every probe
  with a zero window) still dies at the user timeout (the 5.11 fix "tcp: fix
  TCP_USER_TIMEOUT with zero window").
- ``RETRACTED_WINDOW``: the peer takes its window back to zero with data in
  flight (``net.ipv4.tcp_shrink_window``, Linux 6.5), then goes away:
  ``tcp_retransmit_timer``'s zero-window branch, where TCP_USER_TIMEOUT
  counts however recently the peer answered (CVE-2024-41007's fix) and
  ``tcp_retries2`` does not apply (without a user timeout: twice the maximum
  RTO of silence, 1 s here); with ``peer-hangs`` the peer stays up and
  answers every retransmission, and only the user timeout ends it -- on a
  kernel without the fix, never.  Skipped, with the reason, on a kernel without
  the sysctl (Debian's 6.1 and 6.12 have it).
- ``RTO_BOUNDS``: the socket's maximum RTO (Linux 6.15: ``TCP_RTO_MAX_MS``
  and ``net.ipv4.tcp_rto_max_ms``, 1 s and 5 s) capping the retransmission
  timer's backoff and ``tcp_model_timeout`` (``tcp_retries2``), its clamp
  under TCP_USER_TIMEOUT, the neighbour replay of link-down, and the persist
  timer's backoff; and ``net.ipv4.tcp_rto_min_us`` (6.11, 50 ms), which
  shortens the RTO but not the persist timer's base (``tcp_probe0_base``).
  Skipped, with the reason, on a kernel without them.  The same 50 ms
  minimum as a route's locked ``rto_min`` runs on every kernel.
- ``HANDSHAKE``: ``connect()`` to a dead peer (SYN-SENT) for every fault --
  the count and the time budget of the SYN timer, TCP_SYNCNT and the
  namespace's sysctl, TCP_USER_TIMEOUT shorter than the budget and longer
  (it replaces the budget: connect() takes longer) -- and a client that
  vanishes mid-handshake (SYN-RECV: the listener's SYN-ACK retries).
- ``LOCAL_DROP``: the tested side's own qdisc refuses every packet
  (``pfifo limit 0``, the link up): TCP's resource-probe path
  (:mod:`netkit.model.local_drop`).  Data written after it and a closed
  window die by the probe timer retrying every 500 ms with no backoff --
  by TCP_USER_TIMEOUT, a low ``tcp_retries2``, or the default 15 (~7.9 s);
  a connect() counts a SYN retransmission every 500 ms.  (The idle cells,
  which survive because a refused keepalive probe is never counted, are in
  ``FAULTS``.)  ``UPSTREAM`` is the kernel's own packetdrill test
  ``tcp_user_timeout_user-timeout-probe.pkt`` (unacked data, UT 3000 ms,
  ``pfifo limit 0``: alive at 3.25 s, ETIMEDOUT by 3.35 s, 6 probes,
  backoff 0) on netkit's lab: its connection has a 100 ms RTT, so its RTO
  is 300 ms, and a route's ``rto_min 300ms`` gives the veth the same RTO;
  ``tests/test_local_drop.py`` asserts the test's own figures on it.
- ``MIDDLEBOX``: the routed topology, a router that forgets idle flows
  (:mod:`netkit.model.middlebox`): keepalive 2/2/3 under a 3 s timeout
  survives three timeouts; 3/1/2 over a 2 s timeout dies by the keepalive
  rule when the router drops (ETIMEDOUT, 2 probes) and at the first probe when
  it rejects (ECONNRESET); each plain and masqueraded, and the NATed client's
  own keepalive (client side) for both verdicts.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence

from ..errors import InputError
from ..keepalive import KeepaliveSettings
from ..lab.faults import FAULTS as FAULT_REGISTRY
from ..scenario import Scenario

FAMILIES = ("ipv4", "ipv6")
FAULT_NAMES = tuple(FAULT_REGISTRY)  # every fault netkit has: a new one joins the matrix by existing
KEEPALIVE_ON = KeepaliveSettings(1, 1, 3)


def with_user_timeout(ms: int) -> KeepaliveSettings:
    return KeepaliveSettings(1, 1, 3, user_timeout_ms=ms)


CORE = [Scenario(KeepaliveSettings(*k), family) for family in FAMILIES for k in ((1, 1, 3), (2, 1, 2), (1, 2, 2), (1, 1, 10))]
FAULTS = [Scenario(KeepaliveSettings(*k), family, fault)
          for fault in FAULT_NAMES for family in FAMILIES for k in ((1, 1, 3), (2, 1, 2))]
USER_TIMEOUT = [Scenario(with_user_timeout(ms), family) for family in FAMILIES for ms in (2500, 4000, 6000, 3050)]
SYSCTL = [Scenario(KeepaliveSettings(2, 1, 2), family, keepalive_via="sysctl") for family in FAMILIES]
CLIENT_VIEW = [Scenario(KEEPALIVE_ON, family, fault, side="client")
               for family in FAMILIES for fault in ("link-down", "blackhole")]
UNACKED = [
    Scenario(settings, family, fault, state="unacked", retries2=retries2)
    for family in FAMILIES
    for fault, settings, retries2 in [
        ("blackhole", with_user_timeout(1500), None), ("blackhole", with_user_timeout(3000), None),
        ("blackhole", KEEPALIVE_ON, 3), ("one-way", with_user_timeout(3000), None),
        ("link-down", with_user_timeout(1500), None), ("link-down", with_user_timeout(2500), None),
        ("link-down", KEEPALIVE_ON, 3), ("link-down", with_user_timeout(3000), None),
        ("peer-gone", with_user_timeout(3000), None), ("peer-gone", KEEPALIVE_ON, 3),
        ("peer-reboot", KEEPALIVE_ON, None), ("netem-loss", with_user_timeout(3000), None),
    ]
]
ZERO_WINDOW = [
    Scenario(settings, family, fault, state="zero-window", retries2=retries2)
    for family in FAMILIES
    for fault, settings, retries2 in [
        ("blackhole", with_user_timeout(1000), None), ("blackhole", with_user_timeout(3000), None),
        ("blackhole", KEEPALIVE_ON, 3), ("one-way", with_user_timeout(3000), None),
        ("link-down", with_user_timeout(3000), None), ("peer-gone", with_user_timeout(3000), None),
        ("peer-reboot", with_user_timeout(3000), None), ("netem-loss", with_user_timeout(3000), None),
        ("peer-hangs", with_user_timeout(3000), None),
    ]
]
RETRACTED_WINDOW = [
    Scenario(settings, family, fault, state="retracted-window", retries2=retries2, rto_max_ms=rto_max)
    for family in FAMILIES
    for fault, settings, retries2, rto_max in [
        ("blackhole", with_user_timeout(2000), None, None), ("one-way", with_user_timeout(3000), None, None),
        ("peer-reboot", with_user_timeout(3000), None, None), ("blackhole", KEEPALIVE_ON, 3, 1000),
        ("peer-hangs", with_user_timeout(2000), None, None),
    ]
]

RTO_BOUNDS = [
    Scenario(settings, family, fault, state=state, retries2=retries2, rto_max_ms=rto_max, rto_max_via=via,
             rto_min_us=rto_min, rto_min_via=min_via)
    for family in FAMILIES
    for state, fault, settings, retries2, rto_max, via, rto_min, min_via in [
        ("unacked", "blackhole", KEEPALIVE_ON, 6, 1000, "sysctl", None, "sysctl"),
        ("unacked", "blackhole", with_user_timeout(12000), None, 5000, "socket", None, "sysctl"),
        ("unacked", "blackhole", with_user_timeout(4000), None, 1000, "socket", None, "sysctl"),
        ("unacked", "link-down", KEEPALIVE_ON, 3, 1000, "socket", None, "sysctl"),
        ("zero-window", "blackhole", KEEPALIVE_ON, 6, 1000, "socket", None, "sysctl"),
        ("zero-window", "blackhole", KEEPALIVE_ON, 5, 5000, "sysctl", None, "sysctl"),
        ("unacked", "blackhole", KEEPALIVE_ON, 3, None, "socket", 50000, "sysctl"),
        ("zero-window", "blackhole", KEEPALIVE_ON, 3, None, "socket", 50000, "sysctl"),
        ("unacked", "blackhole", KEEPALIVE_ON, 3, None, "socket", 50000, "route"),
        ("zero-window", "blackhole", KEEPALIVE_ON, 3, None, "socket", 50000, "route"),
    ]
]


HANDSHAKE = [
    Scenario(KeepaliveSettings(user_timeout_ms=ut), family, fault, state=state, keepalive_via=via, syn_retries=retries)
    for family in FAMILIES
    for state, fault, retries, ut, via in [
        ("syn-sent", "blackhole", 1, None, "socket"), ("syn-sent", "blackhole", 2, None, "socket"),
        ("syn-sent", "blackhole", 1, None, "sysctl"), ("syn-sent", "blackhole", 2, 1500, "socket"),
        ("syn-sent", "blackhole", 1, 10000, "socket"), ("syn-sent", "one-way", 1, None, "socket"),
        ("syn-sent", "link-down", 2, None, "socket"), ("syn-sent", "link-down", 2, 1500, "socket"),
        ("syn-sent", "peer-reboot", 2, None, "socket"), ("syn-sent", "peer-gone", 2, None, "socket"),
        ("syn-sent", "netem-loss", 1, None, "socket"),
        ("syn-recv", "blackhole", 1, None, "socket"), ("syn-recv", "blackhole", 2, None, "socket"),
        ("syn-recv", "blackhole", 1, None, "sysctl"),
    ]
]


LOCAL_DROP = [
    Scenario(settings, family, "local-drop", state=state, retries2=retries2, syn_retries=syn)
    for family in FAMILIES
    for state, settings, retries2, syn in [
        ("unacked", with_user_timeout(3000), None, None), ("unacked", KEEPALIVE_ON, 3, None),
        ("unacked", KEEPALIVE_ON, None, None), ("zero-window", with_user_timeout(3000), None, None),
        ("zero-window", KEEPALIVE_ON, 3, None), ("syn-sent", KeepaliveSettings(), None, 1),
        ("syn-sent", KeepaliveSettings(user_timeout_ms=1500), None, 2),
    ]
]
UPSTREAM = [Scenario(with_user_timeout(3000), family, "local-drop", state="unacked", rto_min_us=300_000,
                     rto_min_via="route") for family in FAMILIES]


MIDDLEBOX = [
    Scenario(KeepaliveSettings(*k), family, "middlebox-forgets", side=side, topology="routed", middlebox_timeout_s=timeout,
             middlebox=action, masquerade=masquerade)
    for family in FAMILIES
    for k, timeout, action, masquerade, side in [
        ((2, 2, 3), 3, "drop", False, "server"), ((3, 1, 2), 2, "drop", False, "server"),
        ((3, 1, 2), 2, "reject", False, "server"), ((2, 2, 3), 3, "drop", True, "server"),
        ((3, 1, 2), 2, "drop", True, "server"), ((3, 1, 2), 2, "reject", True, "server"),
        ((3, 1, 2), 2, "drop", True, "client"), ((3, 1, 2), 2, "reject", True, "client"),
    ]
]


def unique(scenarios: Iterable[Scenario]) -> list[Scenario]:
    """In order, each scenario once (CORE and FAULTS share the link-down 1/1/3 and 2/1/2 cells)."""
    return list(dict.fromkeys(scenarios))


BUILTIN = unique(CORE + FAULTS + USER_TIMEOUT + SYSCTL + CLIENT_VIEW + UNACKED + ZERO_WINDOW + RETRACTED_WINDOW + RTO_BOUNDS
                 + HANDSHAKE + LOCAL_DROP + UPSTREAM
                 + MIDDLEBOX)


def select(scenarios: Sequence[Scenario], patterns: Sequence[str]) -> list[Scenario]:
    """The scenarios whose id matches any of the shell-style patterns (all of them without patterns).

    A pattern that matches nothing is an error: a typo must not silently shrink a gate.
    """
    if not patterns:
        return list(scenarios)
    unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(s.id, p) for s in scenarios)]
    if unmatched:
        raise InputError(f"--only {unmatched[0]!r} matches no scenario id (see `netkit gate --list`)")
    return [s for s in scenarios if any(fnmatch.fnmatchcase(s.id, p) for p in patterns)]
