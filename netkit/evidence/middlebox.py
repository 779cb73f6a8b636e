"""The router's side of a routed scenario: what its conntrack table and the two ends showed, and its judging (pure).

Times are seconds since the tested socket's last segment received before
the watch began (the handshake), the clock of the scenario's prediction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..enums import MiddleboxAction
from ..model.prediction import DeathPrediction
from .timecheck import Failure, check_time

# One ctnetlink read of the router's entry: (t before it, t after it, whole seconds left or None: no entry, entry id).
# The kernel's state lies somewhere in between: an entry seen was there at the read's start at the latest
# reading; one missing was gone by its end.
Sample = tuple[float, float, "int | None", "int | None"]


def jumps_back(samples: tuple[Sample, ...]) -> tuple[float, ...]:
    """When the entry's remaining timeout (whole seconds, ctnetlink) went *up* for the same entry: a refresh seen."""
    found = []
    for (_, _, left0, id0), (t1, _, left1, id1) in zip(samples, samples[1:], strict=False):
        if left0 is not None and left1 is not None and id0 == id1 and left1 > left0:
            found.append(t1)
    return tuple(found)


def forgotten_s(samples: tuple[Sample, ...]) -> tuple[float | None, float | None]:
    """(last seen, first missing) around the entry's disappearance; None where the samples do not show it.

    "Last seen" is the start of the last read that found the entry, "first
    missing" the end of the first that did not: the entry vanished in between,
    whatever the reads' own duration.
    """
    last_seen = None
    for start, end, left, _ in samples:
        if left is not None:
            last_seen = start
        elif last_seen is not None:
            return last_seen, end
    return last_seen, None


@dataclass(frozen=True)
class MiddleboxEvidence:
    """The router's conntrack entry for the flow over time, its invalid counter, and what each end saw."""

    timeout_s: int
    action: str
    masquerade: bool
    entry_at_connect: str | None  # "ESTABLISHED, 2 s left, id N"; None: the router did not track the flow
    samples: tuple[Sample, ...] = ()  # the entry, sampled from the router every SAMPLE_S
    sample_s: float = 0.01
    clock: str = "the handshake's last segment"  # what t = 0 of the samples is, and how it was read
    entry_after: str | None = None  # expiry: an entry for the flow after the death (must be None: no pick-up)
    invalid: int | None = None  # the router's conntrack "invalid" statistic, from the connect to the end
    peer_state: str | None = None  # the peer's TCP state at the tested side's death (survival: at the end)
    peer_error: str | None = None
    peer_send: str | None = None  # expiry: what became of the peer's next send ("ECONNRESET", "unanswered")
    data_after: str | None = None  # survival: "both ways" once data crossed in both directions after the watch
    looked_up_s: float | None = None  # when the lookup of entry_at_connect returned (s after the handshake)

    @property
    def refreshes_seen(self) -> tuple[float, ...]:
        return jumps_back(self.samples)

    @property
    def forgotten(self) -> tuple[float | None, float | None]:
        return forgotten_s(self.samples)

    @property
    def lived_s(self) -> float | None:
        """How long the first entry (its id) was seen, from the first sample on."""
        first = next(((t, i) for t, _, left, i in self.samples if left is not None), None)
        if first is None:
            return None
        last = first[0]
        for t, _, left, i in self.samples:
            if left is None or i != first[1]:
                break
            last = t
        return last

    def summary(self) -> str:
        parts = [f"router {self.action}{' + masquerade' if self.masquerade else ''}, conntrack established timeout "
                 f"{self.timeout_s} s; entry at connect: {self.entry_at_connect or 'none'}"]
        refreshes = self.refreshes_seen
        if refreshes:
            parts.append(f"{len(refreshes)} refreshes seen (remaining timeout jumped back at "
                         + ", ".join(f"{t:.2f}" for t in refreshes[:8]) + (" ..." if len(refreshes) > 8 else "")
                         + " s)")
        last, missing = self.forgotten
        if missing is not None:
            parts.append(f"entry forgotten between {last:.3f} and {missing:.3f} s")
        elif self.lived_s is not None:
            parts.append(f"the same entry alive through {self.lived_s:.3f} s")
        if self.entry_after is not None or missing is not None:
            parts.append(f"after the death: {self.entry_after or 'no entry'}")
        if self.invalid is not None:
            parts.append(f"router's conntrack invalid +{self.invalid}")
        if self.peer_state is not None:
            parts.append(f"peer {self.peer_state}, error {self.peer_error}")
        if self.peer_send is not None:
            parts.append(f"peer's next send: {self.peer_send}")
        if self.data_after is not None:
            parts.append(f"data afterwards: {self.data_after}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        last, missing = self.forgotten
        return {"timeout_s": self.timeout_s, "action": self.action, "masquerade": self.masquerade,
                "entry_at_connect": self.entry_at_connect, "refreshes_seen_s": list(self.refreshes_seen),
                "lived_s": self.lived_s, "last_seen_s": last, "first_missing_s": missing,
                "entry_after": self.entry_after, "invalid": self.invalid, "peer_state": self.peer_state,
                "peer_error": self.peer_error, "peer_send": self.peer_send, "data_after": self.data_after,
                "samples": len(self.samples), "sample_s": self.sample_s, "looked_up_s": self.looked_up_s}


ROUTER_LOOKED_LATE = "the router's entry"  # a precondition: netkit looked for the entry too late to see it


def judge_middlebox(m: MiddleboxEvidence | None, p: DeathPrediction, jiffy_s: float) -> tuple[Failure, ...]:
    """The router's evidence against the rule (:mod:`netkit.model.middlebox`); empty: it did what the rule says."""
    if m is None:
        return ()
    found: list[Failure | None] = []
    if m.entry_at_connect is None and m.looked_up_s is not None and m.looked_up_s >= m.timeout_s:
        return (Failure(ROUTER_LOOKED_LATE, f"a lookup within {m.timeout_s} s of the handshake",
                        f"{m.looked_up_s:.3f} s", message=(
            f"the router's entry was looked up {m.looked_up_s:.3f} s after the handshake, when its own "
            f"{m.timeout_s} s timeout may have ended it: the rule cannot apply to this run")),)
    if m.entry_at_connect is None:
        return (Failure("middlebox: conntrack entry", "an ESTABLISHED entry at the connect", "none",
                        message="the router had no conntrack entry for the flow after the handshake: it does not "
                                "track it, nothing can expire"),)
    if p.alive_until_s is not None:
        found += _survived(m, p)
    else:
        found += _forgot(m, p, jiffy_s)
    return tuple(f for f in found if f)


def _survived(m: MiddleboxEvidence, p: DeathPrediction) -> list[Failure | None]:
    alive = p.alive_until_s or 0.0
    needed = math.floor(alive / m.timeout_s)
    lived = m.lived_s
    found: list[Failure | None] = []
    if lived is None or lived < alive:  # the watch samples until alive_until_s: every sample must show the entry
        found.append(Failure("middlebox: entry kept", f"the same entry through {alive:g} s",
                             f"{'none' if lived is None else f'{lived:.3f} s'}", message=(
            f"the router's entry for the flow was seen, without a gap and with one id, through "
            f"{lived if lived is not None else 0:.3f} s; expected it kept through {alive:g} s by the keepalive "
            f"probes (at least {needed} refreshes: unrefreshed it would have gone at {m.timeout_s} s)")))
    if not m.refreshes_seen:
        found.append(Failure("middlebox: refreshes", "its remaining timeout jumping back", "never seen", message=(
            "the entry's remaining timeout never went up: no probe was seen refreshing it")))
    if m.data_after != "both ways":
        found.append(Failure("middlebox: data afterwards", "both ways", str(m.data_after), message=(
            f"after {alive:g} s the connection did not carry data both ways: {m.data_after}")))
    return found


def _forgot(m: MiddleboxEvidence, p: DeathPrediction, jiffy_s: float) -> list[Failure | None]:
    found: list[Failure | None] = []
    last, missing = m.forgotten
    # nf_ct_is_expired: ct->timeout (jiffies) is the last packet's jiffy + timeout; the packet came up to a jiffy
    # after its jiffy began, so the entry goes between timeout - 1 jiffy and timeout after it -- never later.
    # The samples bracket the moment: it must lie in (last seen, first missing], and that bracket must meet
    # [timeout - jiffy, timeout]; a jiffy more either way for the clocks (the tap's against the router's jiffies).
    forgotten = None if missing is None else (missing if last is None else last, missing)
    found.append(check_time(
        "the router's entry gone", (m.timeout_s - 2 * jiffy_s, m.timeout_s + jiffy_s), forgotten,
        rule="middlebox: entry forgotten",
        early=("the router's entry vanished EARLY: gone by {last:.3f} s, before {low:.3f} s "
               f"(its timeout {m.timeout_s} s, nf_ct_is_expired)"),
        late=("the router's entry was still there at {first:.3f} s, after {high:.3f} s "
              f"(its timeout {m.timeout_s} s after the handshake, nf_ct_is_expired)"),
        missing=(f"the router's entry never vanished while it was watched (last seen at {last} s); expected at "
                 f"{m.timeout_s} s after the handshake")))
    if m.entry_after is not None:
        found.append(Failure("middlebox: no pick-up", "no entry after the death", m.entry_after, message=(
            f"the router holds an entry for the flow after the death ({m.entry_after}): a probe re-created it "
            "(nf_conntrack_tcp_loose?)")))
    if m.peer_state != "ESTABLISHED" or m.peer_error != "none":
        found.append(Failure("middlebox: peer", "ESTABLISHED, no error (it never learns)",
                             f"{m.peer_state}, {m.peer_error}", message=(
            f"the peer was {m.peer_state} with error {m.peer_error} at the tested side's death; behind a router that "
            "forgot the flow it cannot learn of it (the RST or the probes never reach it)")))
    # The router's own count of what it found invalid (no entry, none started: tcp_new with tcp_loose 0).  Drop:
    # every probe, the tested side's final RST and the peer's data, at least (the peer's retransmissions add to
    # it: measured cnt + 4 within the 0.5 s watched).  Reject: the probe and the peer's data, each with the RST
    # the router answers it with -- nf_send_reset's RST leaves through the router's own OUTPUT hook, where
    # conntrack finds it invalid too (a RST starts nothing: tcp_conntracks[0][RST][sNO] = sIV): exactly 4.
    if m.action == MiddleboxAction.REJECT:
        if m.invalid is not None and m.invalid != 4:
            found.append(Failure("middlebox: invalid", "4", str(m.invalid), message=(
                f"the router counted {m.invalid} invalid packets, expected 4: the probe and the peer's data, "
                "each with the RST it answered it with")))
    elif m.invalid is not None and m.invalid < p.expected_count + 2:
        found.append(Failure("middlebox: invalid", f">= {p.expected_count + 2}", str(m.invalid), message=(
            f"the router counted {m.invalid} invalid packets, expected at least {p.expected_count + 2}: "
            f"{p.expected_count} probes, the tested side's RST and the peer's data")))
    expected_send = "ECONNRESET" if m.action == MiddleboxAction.REJECT else "unanswered"
    if m.peer_send != expected_send:
        found.append(Failure("middlebox: peer's next send", expected_send, str(m.peer_send), message=(
            f"the peer's next send after the death: {m.peer_send}, expected {expected_send} (the router "
            f"{'rejects' if m.action == MiddleboxAction.REJECT else 'drops'} a forgotten flow's packets)")))
    return found


__all__ = ["MiddleboxEvidence", "Sample", "forgotten_s", "judge_middlebox", "jumps_back"]
