"""``netkit gallery``: the exhibits, their judging and table (pure), the docs' table, and -- with ``--gallery``,
as scripts/check-gallery runs it in CI -- the whole gallery for real, every row checked.

The live run is the docs' command (docs/gallery-command.md), verbatim, once for the module: all exhibits at once,
each a check in its own lab (about 2.5 minutes: Go's defaults take 150 s alone).  It is opt-in because its programs
are (Go alone is ~450 MB): without ``--gallery`` those tests skip and say how to run them.
"""

import itertools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from netkit.check.result import CAUSES
from netkit.gallery import programs
from netkit.gallery.exhibits import EXHIBITS, KERNEL_RULE, OWN_TIMER, SURVIVES, select
from netkit.gallery.judging import BROKEN, HELD, SKIPPED, GalleryDocument, judge, skipped
from netkit.gallery.table import markdown
from netkit.privileges import missing_privileges

ROOT = Path(__file__).resolve().parent.parent
DOC, DOC_JSON = ROOT / "docs" / "gallery.md", ROOT / "docs" / "gallery.json"
PAGE = ROOT / "docs" / "gallery-command.md"  # the page that shows the gallery's commands and a few rows
README_COMMANDS = ("scripts/provision-gallery", "netkit gallery --json gallery.json --markdown gallery.md")
BY_NAME = {e.name: e for e in EXHIBITS}


# --- the exhibits -------------------------------------------------------------------------------------------

def test_ten_programs_from_four_ecosystems_with_two_behind_a_middlebox():
    programs_seen = {e.program.split(" (")[0] for e in EXHIBITS}
    assert len(programs_seen) >= 10, programs_seen
    assert {"Go", "JavaScript", "Python", "C"} <= {e.ecosystem for e in EXHIBITS}
    routed = [e for e in EXHIBITS if e.middlebox_timeout_s is not None]
    assert {e.expect for e in routed} == {SURVIVES, KERNEL_RULE}, "which survive, and which do not"
    assert {e.side for e in EXHIBITS} == {"client", "server"}


def test_every_exhibit_names_causes_requirements_and_files_that_exist():
    for e in EXHIBITS:
        assert set(e.causes) <= set(CAUSES), e.name
        for requirement in e.needs:
            programs.missing(requirement)  # known to the checker (no KeyError), whatever its answer here
        assert e.version in programs.VERSIONS, e.name
        for arg in e.command:
            for path in re.findall(r"\{examples\}(/\S+)", arg):
                assert (programs.examples_dir() / path.lstrip("/")).is_file(), (e.name, path)
        args = e.check_args()
        assert args[-1] == "--" and "--json" in args
        assert ("--middlebox-timeout" in args) == (e.middlebox_timeout_s is not None)


def test_select_takes_patterns_and_refuses_one_that_matches_nothing():
    assert [e.name for e in select(["go-*"])] == [e.name for e in EXHIBITS if e.name.startswith("go-")]
    assert select(None) == list(EXHIBITS)
    with pytest.raises(Exception, match="netkit gallery --list"):
        select(["nothing-like-this"])


# --- judging a row (pure) -----------------------------------------------------------------------------------

def _check(cause="keepalive", window=(3.996, 4.136), death=4.08, **extra):
    return {"verdict": "measured", "cause": cause, "rule": "idle + intvl x cnt", "model_expected_s": 4.0,
            "model_window_s": list(window), "kernel_death_s": death, "dead_between_s": [death - 0.004, death],
            "evidence": "trace", "rule_failures": [], "problems": [], "max_wait_s": 30.0, **extra}


def test_a_death_inside_the_models_window_holds_and_early_or_late_is_broken():
    exhibit = BY_NAME["redis-py-keepalive-1-1-3"]
    assert judge(exhibit, _check(), "8.2.0").outcome == HELD
    early = judge(exhibit, _check(death=3.9), "8.2.0")
    assert early.outcome == BROKEN and early.why.startswith("died early")
    late = judge(exhibit, _check(death=4.2, kernel_death_s=None, dead_between_s=[4.15, 4.2]), "8.2.0")
    assert late.outcome == BROKEN and late.why.startswith("died late")
    ledger = judge(exhibit, _check(rule_failures=["ledger: re-armed for 251 jiffies"]), "8.2.0")
    assert ledger.outcome == BROKEN and "251 jiffies" in ledger.why


def test_the_wrong_cause_is_broken_even_at_the_right_time():
    row = judge(BY_NAME["redis-py-keepalive-1-1-3"], _check(cause="application-exit"), "8.2.0")
    assert row.outcome == BROKEN and "ended by application-exit" in row.why


def test_a_program_with_its_own_timer_holds_without_a_kernel_rule():
    row = judge(BY_NAME["grpc-no-keepalive"], _check(cause="application-fin", window=(0, 0), death=20.07), "1.7")
    assert row.outcome == HELD and row.expected_text == "measured, no kernel rule"


def test_behind_the_middlebox_only_a_survival_is_a_survival():
    exhibit = BY_NAME["node-keepalive-1000-middlebox"]
    assert judge(exhibit, {"verdict": "survived", "cause": "none", "max_wait_s": 10}, "20").outcome == HELD
    died = judge(exhibit, _check(problems=["x"]), "20")
    assert died.outcome == BROKEN and died.why.startswith("did not survive")


def test_a_server_dying_with_a_user_timeout_is_judged_as_one():
    exhibit = BY_NAME["postgres-keepalives-ut-2500"]
    row = judge(exhibit, _check(options={"user_timeout_ms": 2500}, window=(2.996, 3.136), death=3.07), "15")
    assert row.cause == "user-timeout" and row.outcome == HELD
    assert judge(exhibit, _check(options={"user_timeout_ms": 0}, window=(2.996, 3.136), death=3.07),
                 "15").outcome == BROKEN


def test_a_check_that_could_not_run_is_broken_with_its_error():
    row = judge(BY_NAME["nginx-so-keepalive-1-1-3"], {"verdict": "error", "error": "nginx did not listen"}, "1.22")
    assert row.outcome == BROKEN and "nginx did not listen" in row.why


def test_the_document_round_trips_and_its_exit_status_says_what_happened():
    rows = [judge(BY_NAME["redis-py-keepalive-1-1-3"], _check(), "8.2.0"),
            skipped(BY_NAME["go-dial-defaults"], "needs go: scripts/provision-gallery installs the gallery's programs")]
    doc = GalleryDocument("6.18.44", 250, rows, 12.5)
    again = GalleryDocument.from_json(doc.to_json())
    assert again == doc and again.exit_code == 4
    assert GalleryDocument("6.18.44", 250, rows[:1]).exit_code == 0
    assert GalleryDocument("6.18.44", 250, [judge(BY_NAME["redis-py-keepalive-1-1-3"], _check(death=3),
                                                  "8")]).exit_code == 1
    table = markdown(doc)
    assert "| redis-py 8.2.0 (Python) | client |" in table and "4 s [3.996, 4.136]" in table
    assert "not run: needs go" in table


# --- the docs' table ----------------------------------------------------------------------------------------

def test_the_docs_table_is_the_gallerys_output_for_its_document():
    doc = GalleryDocument.from_json(DOC_JSON.read_text())
    assert DOC.read_text() == markdown(doc), "regenerate: netkit gallery --from docs/gallery.json --markdown docs/gallery.md"
    assert [r.name for r in doc.rows] == [e.name for e in EXHIBITS], "the docs show every exhibit, in order"
    assert all(r.outcome == HELD for r in doc.rows), [(r.name, r.why) for r in doc.rows if r.outcome != HELD]


def test_the_docs_show_the_opt_in_step_and_the_command_in_the_block_check_gallery_runs():
    done = subprocess.run([str(ROOT / "scripts" / "readme-commands"), "--where", "gallery", "--shell"],
                          capture_output=True, text=True, check=True)
    assert [" ".join(shlex.split(c, comments=True)) for c in done.stdout.splitlines()] == list(README_COMMANDS)
    page = PAGE.read_text()
    assert "(gallery.md)" in page, "the page links the whole table"
    table = DOC.read_text()
    section = page[page.index("# A gallery"):].splitlines()
    start = next(i for i, line in enumerate(section) if line.startswith("| "))
    excerpt = list(itertools.takewhile(lambda line: line.startswith("| "), section[start:]))[2:]
    assert excerpt and all(line in table for line in excerpt), "the page's rows are the docs' table's, verbatim"


# --- the real thing (--gallery) -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gallery(request, tmp_path_factory):
    """The docs' gallery command's exit status, document and table: the run scripts/check-gallery made (its
    NETKIT_GALLERY_DOCUMENT), else the command run here, verbatim, once."""
    if not request.config.getoption("--gallery"):
        pytest.skip("the live gallery runs real programs for ~3 minutes: scripts/check-gallery (or pytest --gallery)")
    if missing_privileges() is not None:
        pytest.skip(str(missing_privileges()))
    document = os.environ.get("NETKIT_GALLERY_DOCUMENT")
    if document:
        return None, GalleryDocument.from_json(Path(document).read_text()), \
            Path(os.environ["NETKIT_GALLERY_TABLE"]).read_text()
    cwd = tmp_path_factory.mktemp("gallery")
    argv = shlex.split(README_COMMANDS[1])
    done = subprocess.run([sys.executable, "-m", "netkit.cli", *argv[1:]], cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    return done, GalleryDocument.from_json((cwd / "gallery.json").read_text()), (cwd / "gallery.md").read_text()


def test_the_gallery_runs_every_exhibit_at_once_and_exits_0(gallery):
    _, doc, table = gallery  # exit 0: asserted where it ran (here, or scripts/check-gallery)
    assert doc.exit_code == 0
    assert [r.name for r in doc.rows] == [e.name for e in EXHIBITS] and table == markdown(doc)
    one_after_another = sum(e.takes_s for e in EXHIBITS)
    assert doc.wall_s < 0.6 * one_after_another, f"{doc.wall_s} s: not concurrent ({one_after_another} s in a row)"


@pytest.mark.parametrize("name", [e.name for e in EXHIBITS])
def test_each_row_holds(gallery, name):
    _, doc, _ = gallery
    row = next(r for r in doc.rows if r.name == name)
    assert row.outcome != SKIPPED, f"{name}: {row.why}"
    assert row.outcome == HELD, f"{name}: {row.why}"
    exhibit, check = BY_NAME[name], row.check
    assert row.version and "?" not in row.version
    if exhibit.expect == KERNEL_RULE:  # the death inside the model's window for the settings read off the socket
        low, high = check["model_window_s"]
        first, last = ((check["kernel_death_s"],) * 2 if check["kernel_death_s"] is not None
                       else check["dead_between_s"])  # the kernel's CLOSE, else sock_diag's bracket around it
        assert last >= low and first <= high, ((first, last), (low, high))
        assert check["options"] is not None and check["options"]["keepalive"], "judged on the socket's own options"
    elif exhibit.expect == SURVIVES:
        assert check["verdict"] == "survived" and check["counters"]["TCPKeepAlive"] > 0
    else:
        assert exhibit.expect == OWN_TIMER and row.cause in exhibit.causes


def test_the_gallery_leaves_no_process_nor_namespace(gallery):
    _, doc, _ = gallery
    for row in doc.rows:
        pid = row.check.get("pid")
        assert pid is None or not os.path.exists(f"/proc/{pid}"), f"{row.name}: pid {pid} left running"
    assert not [n for n in os.listdir("/run/netns") if n.startswith("nk")] if os.path.isdir("/run/netns") else True
    assert not list(Path("/tmp").glob("nk-gallery-*")), "a launcher's private directory was left"
