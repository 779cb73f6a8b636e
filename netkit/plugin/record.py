"""What one test used -- its labs, the scenario results it asked for -- and what its failure report says of them.

State that belongs to one test lives in the item's stash (and, while it runs,
the config's), never in a module-level list.  A failing test's report names
the packet capture of every scenario it used and, with
``--netkit-keep-failed``, the namespaces kept for ``ip netns exec``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from .options import settings

if TYPE_CHECKING:  # a lab or a result is in a record only once a netkit fixture has imported them
    from ..lab.lab import Lab
    from ..scenario import ScenarioResult


@dataclass
class TestRecord:
    """What one test used: its labs, and the scenario results it asked the pool for (with their pcap paths)."""

    labs: list[Lab] = field(default_factory=list)
    results: list[ScenarioResult] = field(default_factory=list)


RUNNING_KEY = pytest.StashKey[TestRecord]()  # config.stash: the record of the test being run
RECORD_KEY = pytest.StashKey[TestRecord]()  # item.stash: that test's record


def start(item: pytest.Item) -> None:
    """A fresh record for the test about to run, reachable from its item and, while it runs, from the config."""
    record = item.stash[RECORD_KEY] = TestRecord()
    item.config.stash[RUNNING_KEY] = record


def finish(item: pytest.Item) -> None:
    if RUNNING_KEY in item.config.stash:
        del item.config.stash[RUNNING_KEY]


def _pcap_lines(item: pytest.Item) -> list[str]:
    """Write the capture of every scenario the failing test used (failed ones wrote theirs already); name them."""
    lines = []
    record = item.stash.get(RECORD_KEY, TestRecord())
    for result in {id(r): r for r in record.results}.values():  # each once, in order
        path = result.pcap
        if path is None and result.pcap_data:
            from ..scenario import failure_pcap_path

            path = result.write_pcap(failure_pcap_path(result.scenario, result.lab, settings(item.config).pcap_dir))
        if path:
            lines.append(f"{result.scenario.id} ({result.verdict}): {path}  (tcpdump -nr {path})")
            lines.append(f"    wire: {result.wire_summary()}")
    return lines


def failure_sections(item: pytest.Item) -> list[tuple[str, str]]:
    """The report sections of a failing test: its scenarios' captures; its labs, if kept, and how to enter them."""
    sections = []
    pcaps = _pcap_lines(item)
    if pcaps:
        sections.append(("netkit: packet captures", "\n".join(pcaps)))
    labs = item.stash.get(RECORD_KEY, TestRecord()).labs
    if not labs or not settings(item.config).keep_failed:
        return sections
    lines = []
    for lab in labs:
        for name in lab.keep():
            lines.append(f"ip netns exec {name} ss -tino")
    lines.append("remove them with: netkit cleanup  (once this pytest run has ended)")
    sections.append(("netkit: namespaces kept for inspection", "\n".join(lines)))
    return sections
