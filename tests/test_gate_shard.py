"""``netkit gate --shard K/N`` and ``netkit gate merge``: the split, the merge's round trip, and every refusal.

Pure, no root, except the one real test (marked slow): three parts of
``--only 'ipv4-idle-*'`` run and merged against one unsharded run of the same
selection.  The round trip uses ``gate-document-v1-full.json``, a whole
``netkit gate --json`` document of the built-in matrix, cut into the parts
the split makes, each written and read by the codec.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import gate, one_whole_gate_at_a_time

from netkit.document.codec import dump, load, load_as_written
from netkit.document.records import GateDocument, KernelRecord, ShardRecord, totals_of
from netkit.errors import InputError
from netkit.gate import matrix
from netkit.gate.merge import MergeRefused, Part, merge
from netkit.gate.shard import REFERENCE_KERNEL, parse_shard, partition, predicted_length_s, shard_of
from netkit.kernel import KernelInfo
from netkit.model.predict import predict
from netkit.privileges import missing_privileges

FULL = Path(__file__).parent / "data" / "gate-document-v1-full.json"
SELECTIONS = [[], ["ipv4-idle-*"], ["ipv6-*"], ["*-syn-*"], ["*-zero-window-*"], ["ipv4-unacked-*"], ["*-middlebox-*"]]


# ------------------------------------------------------------------ the split


@pytest.mark.parametrize("only", SELECTIONS, ids=lambda only: " ".join(only) or "all")
def test_every_scenario_lands_in_exactly_one_part_and_the_parts_are_balanced(only):
    selected = matrix.select(matrix.BUILTIN, only)
    length = {s.id: predicted_length_s(s) for s in selected}
    total, longest = sum(length.values()), max(length.values())
    for count in range(1, 9):
        parts = partition(selected, count)
        assert len(parts) == count
        ids = [s.id for part in parts for s in part]
        assert sorted(ids) == sorted(s.id for s in selected) and len(set(ids)) == len(ids), count
        for part in parts:  # each part in the selection's order
            assert part == [s for s in selected if s in part]
        largest = max(sum(length[s.id] for s in part) for part in parts)
        assert largest <= 1.3 * max(total / count, longest), (count, largest, total, longest)


def test_the_split_is_stable_and_knows_nothing_of_this_machine():
    first = [[s.id for s in part] for part in partition(matrix.BUILTIN, 5)]
    again = [[s.id for s in part] for part in partition(list(matrix.BUILTIN), 5)]
    assert first == again
    # The same split whatever order the scenarios come in: ties are broken by id, never by position or hash.
    shuffled = sorted(matrix.BUILTIN, key=lambda s: s.id[::-1])
    assert [sorted(s.id for s in part) for part in partition(shuffled, 5)] == [sorted(part) for part in first]
    # In another interpreter (another hash seed), the same ids.
    code = ("from netkit.gate import matrix; from netkit.gate.shard import partition; "
            "print([[s.id for s in p] for p in partition(matrix.BUILTIN, 5)])")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"})
    assert other.stdout.strip() == str(first)


def test_a_scenario_length_is_its_predicted_window_end_on_the_reference_kernel():
    s = matrix.select(matrix.BUILTIN, ["ipv4-idle-link-down-1/1/10"])[0]
    assert predicted_length_s(s) == max(predict(s, REFERENCE_KERNEL).window_s) > 10
    # another HZ would move the window by milliseconds; the split never reads this machine's kernel
    assert predicted_length_s(s, KernelInfo("6.1.0", 100, "test")) != predicted_length_s(s)
    skipped = matrix.select(matrix.BUILTIN, ["ipv4-unacked-netem-loss-*"])
    assert all(predicted_length_s(s) >= 0 for s in skipped)


def test_more_parts_than_scenarios_leaves_parts_empty():
    selected = matrix.select(matrix.BUILTIN, ["ipv4-idle-link-down-1/1/3"])
    parts = partition(selected, 3)
    assert [len(p) for p in parts] == [1, 0, 0]
    assert shard_of(selected, ShardRecord(2, 3)) == []


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "3", "a/b", "-1/2", "1/2/3", ""])
def test_a_bad_shard_is_refused_naming_it(text):
    with pytest.raises(InputError, match=f"--shard {text}: give K/N"):
        parse_shard(text)


def test_a_good_shard_reads_as_its_record():
    assert parse_shard("2/3") == ShardRecord(2, 3) and str(ShardRecord(2, 3)) == "2/3"
    assert parse_shard(" 1 / 1 ") == ShardRecord(1, 1)


def test_list_shows_the_parts_ids_and_they_add_up_to_the_selection():
    whole = gate("--list", "--only", "ipv4-idle-*").stdout.split()
    parts = [gate("--list", "--only", "ipv4-idle-*", "--shard", f"{k}/3").stdout.split() for k in (1, 2, 3)]
    assert sorted(sum(parts, [])) == sorted(whole) and all(parts)
    selected = matrix.select(matrix.BUILTIN, ["ipv4-idle-*"])
    assert parts == [[s.id for s in p] for p in partition(selected, 3)]


def test_the_shard_travels_with_a_guest_gate():
    from argparse import Namespace

    from netkit.gate.kernels import inner_gate_args

    args = Namespace(only=["ipv4-*"], matrix=None, known=None, baseline=None, pcap_dir=None, repeat=1,
                     slow_machine=False, jobs=None, shard="2/4")
    assert inner_gate_args(args)[-2:] == ["--shard", "2/4"]


# ------------------------------------------------------------------ the merge


def full() -> GateDocument:
    return load(str(FULL))


def cut(doc: GateDocument, count: int) -> list[GateDocument]:
    """The document as the parts of ``--shard K/count`` would have written it (the timings each their own)."""
    ids = [[s.id for s in part] for part in partition(matrix.BUILTIN, count)]
    parts = []
    for k, part_ids in enumerate(ids, start=1):
        entries = tuple(e for e in doc.scenarios if e.id in part_ids)
        options = dataclasses.replace(doc.options, shard=ShardRecord(k, count))
        parts.append(dataclasses.replace(
            doc, scenarios=entries, totals=totals_of(entries), options=options,
            started=f"2026-11-29T08:4{k}:00Z", ended=f"2026-11-29T08:5{k}:00Z", wall_s=10.0 + k))
    return parts


def written(tmp_path: Path, docs: list[GateDocument]) -> list[Part]:
    paths = []
    for i, doc in enumerate(docs):
        path = tmp_path / f"part{i}.json"
        path.write_text(dump(doc))
        paths.append(str(path))
    return [Part(path, *load_as_written(path)) for path in paths]


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_the_merge_of_the_parts_is_the_unsharded_document_apart_from_timings(tmp_path, count):
    doc = full()
    order = [s.id for s in matrix.BUILTIN]
    parts = written(tmp_path, list(reversed(cut(doc, count))))  # in any order
    merged = merge(parts, order=order)
    assert merged.options.shard is None
    assert merged.started == "2026-11-29T08:41:00Z" and merged.ended == f"2026-11-29T08:5{count}:00Z"
    assert merged.wall_s == 10.0 + count  # the longest part's
    assert merged.totals == doc.totals == totals_of(doc.scenarios)
    assert dataclasses.replace(merged, started=doc.started, ended=doc.ended, wall_s=doc.wall_s) == doc


def test_the_cli_merges_and_writes_every_report(tmp_path):
    parts = written(tmp_path, cut(full(), 3))
    out = tmp_path / "merged.json"
    done = gate("merge", *(p.path for p in parts), "--json", str(out), "--junit", str(tmp_path / "m.xml"),
                "--html", str(tmp_path / "m.html"), "--tap")
    assert done.returncode == 0, done.stderr
    assert "netkit gate merge: 3 document(s), 126 scenarios; the wall is the longest part's" in done.stderr
    assert done.stdout.startswith("TAP version 13") and (tmp_path / "m.xml").exists() and (tmp_path / "m.html").exists()
    merged = load(str(out))
    assert [e.id for e in merged.scenarios] == [e.id for e in full().scenarios]
    # gate diff and the side-by-side table take a merged document like any other
    same = gate("diff", str(FULL), str(out))
    assert same.returncode == 0 and "no changes" in same.stdout, same.stdout + same.stderr
    table = gate("diff", str(FULL), str(out), str(out))
    assert table.returncode == 0, table.stderr


def refusal(tmp_path: Path, docs: list[GateDocument], *, schema: str | None = None) -> str:
    parts = written(tmp_path, docs)
    if schema:
        parts[-1] = dataclasses.replace(parts[-1], schema=schema)
    with pytest.raises(MergeRefused) as refused:
        merge(parts)
    return str(refused.value)


def test_documents_of_another_kernel_are_refused(tmp_path):
    a, b = cut(full(), 2)
    b = dataclasses.replace(b, kernel=dataclasses.replace(b.kernel, release="6.1.0-37-amd64"))
    message = refusal(tmp_path, [a, b])
    assert "part0.json and" in message and "part1.json are not parts of one gate: kernel release" in message
    assert "'6.1.0-37-amd64'" in message


def test_documents_of_another_hz_are_refused(tmp_path):
    a, b = cut(full(), 2)
    message = refusal(tmp_path, [a, dataclasses.replace(b, kernel=KernelRecord(a.kernel.release, a.kernel.version, 1000))])
    assert "HZ 250 vs 1000" in message


def test_documents_of_another_matrix_or_selection_are_refused(tmp_path):
    a, b = cut(full(), 2)
    other_matrix = dataclasses.replace(b, options=dataclasses.replace(b.options, matrix="fleet.toml"))
    assert "matrix (--matrix) none vs 'fleet.toml'" in refusal(tmp_path, [a, other_matrix])
    other_only = dataclasses.replace(b, options=dataclasses.replace(b.options, only=("ipv4-*",)))
    assert "selection (--only) [] vs ['ipv4-*']" in refusal(tmp_path, [a, other_only])


def test_documents_of_another_schema_are_refused(tmp_path):
    assert "schema 'netkit.gate/3' vs 'netkit-gate/1'" in refusal(tmp_path, cut(full(), 2), schema="netkit-gate/1")


def test_a_part_written_under_the_former_name_merges_with_one_under_the_name_now(tmp_path):
    """netkit-gate/3 is netkit.gate/3 before the names were one convention: the same document."""
    a, b = cut(full(), 2)
    path = tmp_path / "old.json"
    path.write_text(dump(a).replace('"schema": "netkit.gate/3"', '"schema": "netkit-gate/3"', 1))
    old = Part(str(path), *load_as_written(str(path)))
    assert old.schema == "netkit.gate/3"
    assert len(merge([old, *written(tmp_path, [b])]).scenarios) == len(full().scenarios)


def test_a_scenario_in_two_documents_is_refused(tmp_path):
    doc = full()
    plain = dataclasses.replace(doc, options=dataclasses.replace(doc.options, shard=None))
    message = refusal(tmp_path, [plain, plain])
    assert f"{doc.scenarios[0].id} is in both" in message and message.endswith("a scenario must be in one part only")


def test_a_part_given_twice_or_missing_is_refused(tmp_path):
    a, b, c = cut(full(), 3)
    assert "are both part 2/3: give each part once" in refusal(tmp_path, [a, b, b])
    assert "part 3 of 3 missing" in refusal(tmp_path, [a, b])
    assert "part 1, 3 of 3 missing" in refusal(tmp_path, [b])


def test_parts_of_another_count_are_refused(tmp_path):
    a, _ = cut(full(), 2)
    _, b, _ = cut(full(), 3)
    assert "shard count (K/N) 2 vs 3" in refusal(tmp_path, [a, b])
    plain = dataclasses.replace(b, options=dataclasses.replace(b.options, shard=None))
    assert "shard count (K/N) 2 vs none" in refusal(tmp_path, [a, plain])


def test_the_cli_refuses_with_one_message_and_exit_2(tmp_path):
    a, b, _ = cut(full(), 3)
    parts = written(tmp_path, [a, b])
    done = gate("merge", *(p.path for p in parts), "--json", str(tmp_path / "m.json"))
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "netkit gate: part 3 of 3 missing: give the documents of every `--shard K/3` run"], done.stderr
    assert not (tmp_path / "m.json").exists()


# ------------------------------------------------------------------ for real


@pytest.mark.slow
@pytest.mark.skipif(missing_privileges() is not None, reason=str(missing_privileges()))
def test_three_parts_merged_are_one_unsharded_run(tmp_path):
    # 12 cells, none longer than 4.2 s (all ipv4-idle-* took 46 s, with 11 s cells): the whole selection, then its three
    # parts at once, as three CI jobs would run them (12 labs in all, as many as the whole run's): 21 s, where the four
    # gates one after another took 35 s
    only = ("--only", "ipv4-idle-*-1/1/3", "--only", "ipv4-idle-*-2/1/2")
    with one_whole_gate_at_a_time():
        whole = gate(*only, "--json", str(tmp_path / "whole.json"), timeout=120)
        with ThreadPoolExecutor(3) as jobs:
            parts = list(jobs.map(lambda k: gate(*only, "--shard", f"{k}/3", "--json", str(tmp_path / f"part{k}.json"),
                                                 timeout=120), (1, 2, 3)))
    assert (tmp_path / "whole.json").exists(), whole.stderr[-3000:]
    for k, done in enumerate(parts, start=1):
        assert (tmp_path / f"part{k}.json").exists(), done.stderr[-3000:]
        assert load(str(tmp_path / f"part{k}.json")).options.shard == ShardRecord(k, 3)
    merged = gate("merge", *(str(tmp_path / f"part{k}.json") for k in (1, 2, 3)), "--json", str(tmp_path / "merged.json"))
    assert merged.returncode in (0, 1), merged.stderr
    one, union = load(str(tmp_path / "whole.json")), load(str(tmp_path / "merged.json"))
    assert [(e.id, e.outcome) for e in union.scenarios] == [(e.id, e.outcome) for e in one.scenarios]
    assert union.totals == one.totals and union.options == one.options
    print(json.dumps({"whole_wall_s": one.wall_s, "parts_wall_s": [load(str(tmp_path / f"part{k}.json")).wall_s
                                                                    for k in (1, 2, 3)]}))


def test_a_part_says_so_in_its_summary_and_html_and_a_merged_document_does_not():
    from netkit.gate.summary import format_summary
    from netkit.report.html import to_html

    part = cut(full(), 3)[1]
    assert "126 scenarios" not in format_summary(part) and "(part 2/3 of the selection)" in format_summary(part)
    assert "shard 2/3" in to_html(part)
    assert "part " not in format_summary(full()).splitlines()[0]


def test_kernel_matrix_refuses_no_parts_before_it_runs_anything(tmp_path):
    script = Path(__file__).resolve().parent.parent / "scripts" / "kernel-matrix"
    done = subprocess.run([sys.executable, str(script), "--shards", "0", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and "--shards and --jobs take a whole number" in done.stderr
    assert not (tmp_path / "out").exists()
