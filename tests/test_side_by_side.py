"""Gate documents side by side (``netkit gate diff`` with N documents, ``scripts/kernel-matrix``): pure, no root."""

from __future__ import annotations

import json
import subprocess
import sys

from netkit.report.side_by_side import compare_rows, format_table, html_table


def _doc(release, hz, accel, cells, known=None):
    scenarios = [{"id": sid, "outcome": outcome, "fault": "link-down", "reason": None,
                  "measured_s": {"min": m, "median": m, "max": m} if m is not None else None,
                  "window_s": [3.996, 4.14], "known": (known or {}).get(sid)} for sid, outcome, m in cells]
    totals = {k: sum(1 for _, o, _ in cells if o == k) for k in ("pass", "fail", "xfail", "xpass", "skip", "error")}
    return {"kernel": {"release": release, "hz": hz}, "guest": {"accel": accel, "boot_s": 21.5 if accel != "none" else 0},
            "wall_s": 12.0, "totals": totals, "scenarios": scenarios}


HOST = _doc("6.18.44", 250, "none", [("a", "pass", 4.096), ("b", "skip", None), ("c", "pass", 3.212)])
OLD = _doc("6.1.0-56-amd64", 250, "tcg", [("a", "pass", 4.112), ("b", "pass", 4.096), ("c", "xfail", 3.44)],
           known={"c": {"outcome": "xfail", "reason": "the <window> stays open on 6.1"}})
FAST = _doc("6.12.117-netkit-hz1000", 1000, "tcg", [("a", "pass", 4.099), ("b", "pass", 4.095), ("c", "pass", 3.21)])


def test_the_table_marks_rows_where_kernels_disagree():
    rows = {r.id: r for r in compare_rows([HOST, OLD])}
    assert not rows["a"].differs  # 16 ms apart: inside the window's width
    assert rows["b"].differs and rows["c"].differs and rows["c"].marks == [False, True]
    text = format_table([HOST, OLD])
    assert "6.18.44 HZ=250 (host)" in text and "6.1.0-56-amd64 HZ=250 (tcg)" in text
    assert "xfail 3.440*" in text and text.count("<<") == 2
    assert "boot 21.5 s" in text
    markdown = format_table([HOST, OLD], markdown=True, only_differences=True)
    assert markdown.splitlines()[0] == "| scenario | 6.18.44 HZ=250 (host) | 6.1.0-56-amd64 HZ=250 (tcg) |"
    assert "| **c** | pass 3.212 | **xfail 3.440*** |" in markdown and "| a |" not in markdown


def test_a_timing_shift_wider_than_the_window_is_a_difference():
    rows = compare_rows([_doc("x", 250, "none", [("a", "pass", 4.0)]), _doc("y", 1000, "tcg", [("a", "pass", 4.3)])])
    assert rows[0].differs and rows[0].timing


def test_the_html_page_outlines_differing_cells_and_lists_known_reasons_escaped():
    page = html_table([HOST, OLD, FAST])
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "://" not in page
    assert page.count("<th>") == 4  # scenario + three kernels
    assert "6.12.117-netkit-hz1000 HZ=1000 (tcg)" in page
    assert page.count('<tr class="differs">') == 2  # b (skip on the host) and c (xfail on 6.1)
    assert page.count('class="mark"') == 3  # b on 6.1 and 6.12; c on 6.1
    assert "the &lt;window&gt; stays open on 6.1" in page and "<window>" not in page
    assert "<sup>1</sup>" in page


def _diff(*args):
    return subprocess.run([sys.executable, "-m", "netkit.cli", "gate", "diff", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)


def _write(tmp_path, name, doc):
    path = tmp_path / name
    path.write_text(json.dumps({"schema": "netkit-gate/1", "netkit": "test", "machine": {}, "options": {},
                                "started": "", "ended": "", "diff": None, **doc}))
    return str(path)


def test_diff_sets_three_documents_side_by_side_and_exits_1_when_they_disagree(tmp_path):
    paths = [_write(tmp_path, f"{n}.json", d) for n, d in (("host", HOST), ("old", OLD), ("fast", FAST))]
    done = _diff(*paths, "--html", str(tmp_path / "k.html"))
    assert done.returncode == 1, done.stderr
    assert "6.1.0-56-amd64 HZ=250 (tcg)" in done.stdout and "3 scenarios, 2 differ" in done.stdout
    assert (tmp_path / "k.html").read_text().count('<tr class="differs">') == 2
    rows = json.loads(_diff(*paths, "--json", "--differences").stdout)
    assert [r["id"] for r in rows] == ["b", "c"]
    agree = _diff(paths[0], paths[0], paths[0])
    assert agree.returncode == 0 and "0 differ" in agree.stdout


def test_diff_of_two_documents_keeps_old_to_new_unless_a_table_is_asked_for(tmp_path):
    old, new = _write(tmp_path, "old.json", HOST), _write(tmp_path, "new.json", HOST)
    assert "no changes" in _diff(old, new).stdout
    table = _diff(old, new, "--markdown")
    assert table.returncode == 0 and table.stdout.startswith("| scenario |")


def test_diff_refuses_one_document_and_an_unwritable_page_with_exit_2(tmp_path):
    one = _write(tmp_path, "one.json", HOST)
    alone = _diff(one)
    assert alone.returncode == 2 and "give two gate documents" in alone.stderr
    nowhere = _diff(one, one, one, "--html", str(tmp_path / "missing" / "k.html"))
    assert nowhere.returncode == 2 and "does not exist" in nowhere.stderr
    assert not (tmp_path / "missing").exists()


def test_kernel_matrix_prints_the_table_again_from_saved_documents(tmp_path):
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for name, doc in (("host", HOST), ("old", OLD), ("fast", FAST)):
        _write(tmp_path, f"{name}.json", doc)
    done = subprocess.run([sys.executable, os.path.join(root, "scripts", "kernel-matrix"), "--from", str(tmp_path),
                           "--markdown", "--differences"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.index("6.18.44 HZ=250 (host)") < first.index("6.1.0-56-amd64") < first.index("6.12.117-netkit")
    assert "| **b** |" in done.stdout and "| a |" not in done.stdout
    empty = subprocess.run([sys.executable, os.path.join(root, "scripts", "kernel-matrix"), "--from",
                            str(tmp_path / "none")], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert empty.returncode == 2 and "no gate documents" in empty.stderr
