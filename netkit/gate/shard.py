"""``netkit gate --shard K/N``: the selected scenarios split into N parts of about equal predicted length.

A CI job matrix (kernel x shard) runs one part per machine; ``netkit gate
merge`` (:mod:`.merge`) puts the parts' documents back together.  The split is
a function of the selection alone, so every job of a matrix computes the same
one without talking to the others:

* a scenario's *length* is the notion the gate already orders its runs by
  (:func:`length_s`: the end of its predicted window, the longest first),
  predicted on one fixed :data:`REFERENCE_KERNEL` -- never on the machine's
  own kernel, whose HZ would move a window by a few milliseconds and so could
  move a scenario to another part on another machine;
* the longest first (ties by id), each goes to the part with the least
  predicted total so far (ties: the lowest part): the classic
  longest-processing-time rule, which keeps the largest part within 4/3 of the
  best split;
* each part lists its scenarios in the selection's order.

Every scenario lands in exactly one part for any N; a part may be empty when N
exceeds the selection (it runs nothing and passes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol, TypeVar

from ..document.records import ShardRecord, Window
from ..errors import FeatureMissing, InputError, NotModelled
from ..kernel import KernelInfo
from ..model.predict import Predictable, predict

# The kernel every machine predicts the split with (HZ=250: Debian's and most distributions'); only the
# split uses it, each run is still judged by its own kernel's prediction.
REFERENCE_KERNEL = KernelInfo("6.12.0", 250, "netkit's reference kernel for --shard")
SHARD_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class Shardable(Predictable, Protocol):
    """What the split needs of a scenario (:class:`netkit.Scenario` is one): its prediction's inputs and its id."""

    @property
    def id(self) -> str: ...


S = TypeVar("S", bound=Shardable)


def parse_shard(text: str) -> ShardRecord:
    """``K/N`` (1 <= K <= N) as a record; anything else is refused with one message that names it."""
    match = SHARD_PATTERN.match(text)
    index, count = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if not match or not 1 <= index <= count:
        raise InputError(f"--shard {text}: give K/N, part K of N with 1 <= K <= N (e.g. --shard 2/3)")
    return ShardRecord(index, count)


def length_s(window: Window | None) -> float:
    """A scenario's length as the gate knows it before it runs: the end of its predicted window (0: no window)."""
    return max(window or (0.0, 0.0))


def predicted_length_s(scenario: Predictable, kernel: KernelInfo = REFERENCE_KERNEL) -> float:
    """:func:`length_s` of the scenario's prediction on ``kernel`` (0 for one netkit cannot predict: it is skipped)."""
    try:
        return length_s(predict(scenario, kernel).window_s)
    except (FeatureMissing, NotModelled):
        return 0.0


def partition(scenarios: Sequence[S], count: int) -> list[list[S]]:
    """The ``count`` parts (part K is ``[K - 1]``), each in the selection's order; see the module docstring."""
    lengths = {s.id: round(predicted_length_s(s), 6) for s in scenarios}  # rounded: the same on every machine
    totals = [0.0] * count
    part_of: dict[str, int] = {}
    for s in sorted(scenarios, key=lambda s: (-lengths[s.id], s.id)):
        part = min(range(count), key=lambda k: (totals[k], k))
        part_of[s.id] = part
        totals[part] += lengths[s.id]
    return [[s for s in scenarios if part_of[s.id] == k] for k in range(count)]


def shard_of(scenarios: Sequence[S], shard: ShardRecord) -> list[S]:
    """The scenarios of part ``shard.index`` of ``shard.count``."""
    return partition(scenarios, shard.count)[shard.index - 1]
