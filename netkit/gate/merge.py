"""``netkit gate merge``: one gate document from the documents of a sharded gate (``--shard K/N``).

Each CI job of a kernel x shard matrix writes the document of its part
(:mod:`.shard`); :func:`merge` makes the document the unsharded gate would
have written on that kernel: the same scenarios in the selection's order, the
totals recounted, the options without the shard.  Only the timings cannot be
those of one run: ``started`` is the earliest part's, ``ended`` the latest
part's, and ``wall_s`` (with ``guest``, when the parts ran in guests) the
longest part's -- the wall of the whole gate when every part has its own
machine, and what the summary then shows.  A part's ``--baseline`` comparison
is not carried over (it compared the baseline with one part only): compare
the merged document with ``netkit gate diff BASELINE MERGED``.

Documents that are not parts of one gate are refused, naming the two files
that disagree: another kernel release or HZ, another schema, other options
(the matrix, ``--only``, ``--repeat``, ``--known``, a slow machine), a
scenario in two documents, and, where the documents say ``K/N``, another N,
a part given twice or a part missing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..document.records import GateDocument, totals_of
from ..errors import InputError


@dataclass(frozen=True)
class Part:
    """One document given to the merge: its file (for the messages), the schema it was written with, the document."""

    path: str
    schema: str
    doc: GateDocument


class MergeRefused(InputError):
    """Documents that are not the parts of one gate (exit status 2); the message names the files."""


# What every part must share, each with the words a refusal uses.
SAME: tuple[tuple[str, Callable[[Part], Any]], ...] = (
    ("schema", lambda p: p.schema),
    ("kernel release", lambda p: p.doc.kernel.release),
    ("HZ", lambda p: p.doc.kernel.hz),
    ("matrix (--matrix)", lambda p: p.doc.options.matrix),
    ("selection (--only)", lambda p: p.doc.options.only),
    ("--repeat", lambda p: p.doc.options.repeat),
    ("--known", lambda p: p.doc.options.known),
    ("slow machine", lambda p: p.doc.options.slow_machine),
    ("shard count (K/N)", lambda p: p.doc.options.shard.count if p.doc.options.shard else None),
)


def merge(parts: Sequence[Part], order: Sequence[str] | None = None) -> GateDocument:
    """The merged document; ``order``: the selection's ids in the gate's order (else the merged ids are sorted)."""
    if not parts:
        raise MergeRefused("give the documents of a sharded gate to merge (`netkit gate --shard K/N --json FILE`)")
    _check_alike(parts)
    _check_shards(parts)
    seen: dict[str, str] = {}
    for part in parts:
        for entry in part.doc.scenarios:
            if entry.id in seen:
                raise MergeRefused(f"{entry.id} is in both {seen[entry.id]} and {part.path}: a scenario must be in "
                                   "one part only")
            seen[entry.id] = part.path
    position = {sid: i for i, sid in enumerate(order or ())}
    entries = sorted((e for p in parts for e in p.doc.scenarios), key=lambda e: (position.get(e.id, len(position)), e.id))
    first = min(parts, key=lambda p: p.doc.options.shard.index if p.doc.options.shard else 0).doc
    longest = max(parts, key=lambda p: p.doc.wall_s or 0.0).doc
    started = [p.doc.started for p in parts if p.doc.started]
    ended = [p.doc.ended for p in parts if p.doc.ended]
    return dataclasses.replace(
        first,
        started=min(started, default=None),  # ISO 8601 UTC, as the gate writes them: text order is time order
        ended=max(ended, default=None),
        wall_s=longest.wall_s,
        guest=longest.guest,
        options=dataclasses.replace(first.options, shard=None),
        totals=totals_of(entries),
        scenarios=tuple(entries),
        diff=None,
    )


def _check_alike(parts: Sequence[Part]) -> None:
    first = parts[0]
    for what, value in SAME:
        for part in parts[1:]:
            if value(part) != value(first):
                raise MergeRefused(f"{first.path} and {part.path} are not parts of one gate: {what} "
                                   f"{_show(value(first))} vs {_show(value(part))}")


def _check_shards(parts: Sequence[Part]) -> None:
    """Where the parts say K/N (all do, with one N, or none does: :data:`SAME`), each K once, none missing."""
    first = parts[0].doc.options.shard
    if first is None:
        return
    given: dict[int, str] = {}
    for part in parts:
        shard = part.doc.options.shard
        assert shard is not None  # its N is the first's (SAME)
        if shard.index in given:
            raise MergeRefused(f"{given[shard.index]} and {part.path} are both part {shard}: give each part once")
        given[shard.index] = part.path
    missing = [str(k) for k in range(1, first.count + 1) if k not in given]
    if missing:
        raise MergeRefused(f"part {', '.join(missing)} of {first.count} missing: give the documents of every "
                           f"`--shard K/{first.count}` run")


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return repr(list(value))
    return "none" if value is None else repr(value) if isinstance(value, str) else str(value)
