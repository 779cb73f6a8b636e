"""The CI recipes the repository ships: .github/workflows/gate.yml and the GitLab job docs/gate.md shows.

Neither can run here, so what can be checked is checked: each file is valid against its CI's
own schema (check-jsonschema's built-in copies, read offline), says what the issue promises
(every kernel and shard in the matrix, a merge job that needs the whole matrix, every document
and capture uploaded), runs commands that exist with options netkit parses, and the merge job's
shell step does the right thing against a stand-in ``netkit`` that records how it was called.
"""

from __future__ import annotations

import fnmatch
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from netkit.exitcodes import EXIT_CANNOT_RUN_HERE
from netkit.gate.kernels import label
from netkit.kernels.spec import parse_spec
from netkit.privileges import missing_privileges

pytest.importorskip("check_jsonschema")
from ruamel.yaml import YAML  # noqa: E402  (check-jsonschema's own YAML parser: YAML 1.2, so `on:` stays a string)

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "gate.yml"
GATE_PAGE = ROOT / "docs" / "gate.md"  # the docs page with the GitLab job
KERNELS = ["host", "debian:6.1", "debian:6.12", "debian:7.x"]  # what issue 23 asks the matrix to run


def gitlab_job_text() -> str:
    """docs/gate.md's ```yaml block that starts with ``# .gitlab-ci.yml``."""
    found = re.search(r"```yaml\n(# \.gitlab-ci\.yml\n.*?)```", GATE_PAGE.read_text(), re.S)
    assert found, "docs/gate.md shows a GitLab job in a ```yaml block starting with '# .gitlab-ci.yml'"
    return found.group(1)


def load_yaml(text: str) -> dict:
    return YAML(typ="safe").load(text)


def check_jsonschema(schema: str, path: pathlib.Path) -> subprocess.CompletedProcess:
    """check-jsonschema with its built-in copy of ``schema``; where it can, in a network namespace of its own (offline)."""
    offline = ["unshare", "--net"] if missing_privileges() is None and shutil.which("unshare") else []
    return subprocess.run([*offline, sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def workflow() -> dict:
    return load_yaml(WORKFLOW.read_text())


@pytest.fixture(scope="module")
def gitlab() -> dict:
    return load_yaml(gitlab_job_text())


def steps_of(job: dict) -> list[dict]:
    return list(job["steps"])


def step_named(job: dict, words: str) -> dict:
    (step,) = [s for s in job["steps"] if words in s.get("name", "")]
    return step


def command_lines(script: str) -> list[str]:
    """The script's lines, backslash continuations joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", script)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def parse(argv: list[str]) -> object:
    """netkit's own parser reads ``argv`` (a SystemExit, failing the test, on an unknown option)."""
    from netkit.cli.main import build_parser

    return build_parser().parse_args(argv)


# --- schemas -----------------------------------------------------------------------------------------------------


def test_the_github_workflow_is_valid_against_the_workflow_schema():
    done = check_jsonschema("vendor.github-workflows", WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_readme_gitlab_job_is_valid_against_the_gitlab_ci_schema(tmp_path):
    job = tmp_path / ".gitlab-ci.yml"
    job.write_text(gitlab_job_text())
    done = check_jsonschema("vendor.gitlab-ci", job)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("schema, text", [
    ("vendor.github-workflows", "on: push\njobs:\n  gate:\n    runs-on: ubuntu-24.04\n    steps: not-a-list\n"),
    ("vendor.gitlab-ci", "netkit-gate:\n  script: [true]\n  allow_failure:\n    exit_codes: four\n"),
])
def test_the_schemas_refuse_a_broken_file(tmp_path, schema, text):
    """The validation is real: the same command refuses a wrong file (and reads its schema without a network)."""
    bad = tmp_path / "bad.yml"
    bad.write_text(text)
    done = check_jsonschema(schema, bad)
    assert done.returncode == 1 and "Schema validation errors" in done.stdout, done.stdout + done.stderr


# --- the GitHub workflow ----------------------------------------------------------------------------------------


def test_the_matrix_is_every_kernel_by_every_shard(workflow):
    gate = workflow["jobs"]["gate"]
    matrix = gate["strategy"]["matrix"]
    shards = int(workflow["env"]["SHARDS"])
    assert matrix["kernel"] == KERNELS
    assert matrix["shard"] == list(range(1, shards + 1)) and shards >= 2
    assert gate["strategy"]["fail-fast"] is False, "one kernel's failure must not cancel the other kernels' evidence"
    assert f"/{shards}" in gate["name"], "the job's name shows K/N with the same N"
    for spec in KERNELS:
        parse_spec(spec)  # a spec netkit accepts (KernelSpecError otherwise)


def test_each_job_provisions_with_the_repository_scripts_and_runs_the_gate_as_root(workflow):
    gate = workflow["jobs"]["gate"]
    runs = "\n".join(s.get("run", "") for s in steps_of(gate))
    assert "scripts/provision.sh" in command_lines(runs)
    guest = step_named(gate, "Guest tools")
    assert guest["if"] == "matrix.kernel != 'host'"
    installer = (ROOT / "scripts" / "check-other-kernel").read_text()
    for tool in ("qemu-system-x86", "busybox-static", "kmod", "virtme-ng"):
        assert tool in guest["run"] and tool in installer, tool
    (command,) = [line for line in command_lines(step_named(gate, "Gate")["run"]) if "netkit gate" in line]
    assert command.startswith("sudo netkit gate ")
    argv = shlex.split(command.replace("$KERNEL", "debian:6.1").replace("$SHARD/$SHARDS", "2/3"))[2:]
    assert argv[argv.index("--kernel") + 1] == "debian:6.1" and argv[argv.index("--shard") + 1] == "2/3"
    parse(argv)


def test_every_document_and_failed_capture_is_uploaded_under_a_name_per_kernel_and_shard(workflow):
    gate = workflow["jobs"]["gate"]
    (upload,) = [s for s in steps_of(gate) if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["if"] == "always()", "a failed gate's documents and captures are the ones worth keeping"
    folder = upload["with"]["path"].rstrip("/")
    command = " ".join(command_lines(step_named(gate, "Gate")["run"]))
    for option in ("--json", "--junit", "--pcap-dir"):
        value = re.search(rf"{option} (\S+)", command)
        assert value and value.group(1).startswith(f"{folder}/"), f"{option} writes outside the uploaded {folder}/"
    name = upload["with"]["name"]
    assert "${{ matrix.shard }}" in name and "${{ steps.out.outputs.label }}" in name


def test_the_artifact_label_is_netkits_own_label_for_the_kernel(workflow, tmp_path):
    """The label step's bash gives what netkit names a kernel's files (debian:6.1 -> debian-6.1): no ':' in a name."""
    step = step_named(workflow["jobs"]["gate"], "Name the outputs")
    for spec in KERNELS:
        out = tmp_path / "output"
        out.write_text("")
        subprocess.run(["bash", "-eo", "pipefail", "-c", step["run"]], check=True, cwd=tmp_path,
                       env={**os.environ, "KERNEL": spec, "SHARD": "2", "SHARDS": "3", "GITHUB_OUTPUT": str(out)})
        assert out.read_text() == f"label={label(spec)}\n"
        assert (tmp_path / "out" / "job").read_text() == f"{spec} shard 2/3\n", "the artifact is never empty"


def test_the_merge_job_needs_the_matrix_and_downloads_every_shard(workflow):
    merge = workflow["jobs"]["merge"]
    assert merge["needs"] in ("gate", ["gate"])
    assert "!cancelled()" in merge["if"], "a failed shard must not stop the merge of the others"
    (download,) = [s for s in steps_of(merge) if s.get("uses", "").startswith("actions/download-artifact@")]
    pattern = download["with"]["pattern"]
    assert all(fnmatch.fnmatch(f"gate-{label(spec)}-{k}", pattern) for spec in KERNELS for k in (1, 2, 3))
    (upload,) = [s for s in steps_of(merge) if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert not fnmatch.fnmatch(upload["with"]["name"], pattern), "the merged artifact is not taken for a shard"
    assert upload["with"]["path"].rstrip("/") == "merged" and upload["if"] == "always()"


def test_every_action_is_pinned_by_major_version(workflow):
    uses = [s["uses"] for job in workflow["jobs"].values() for s in steps_of(job) if "uses" in s]
    assert uses and all(re.fullmatch(r"actions/[\w-]+@v\d+", u) for u in uses), uses


STUB_NETKIT = """#!/usr/bin/env python3
# Records its arguments; writes the files --json/--junit/--html name; prints a table for --markdown.
import json, os, sys
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
for option in ("--json", "--junit", "--html"):
    if option in args:
        with open(args[args.index(option) + 1], "w") as f:
            f.write("{}")
if "--markdown" in args:
    print("| table of", args[1], "|")
sys.exit(int(os.environ.get("STUB_STATUS_" + args[1].upper(), "0")))
"""


def run_merge_step(workflow: dict, tmp_path: pathlib.Path, missing: tuple[str, ...] = (), **statuses: str):
    """The merge job's shell step, in a folder of downloaded shards, with a stand-in netkit on PATH."""
    step = step_named(workflow["jobs"]["merge"], "Merge per kernel")
    work, bin_dir = tmp_path / "work", tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "netkit").write_text(STUB_NETKIT)
    (bin_dir / "netkit").chmod(0o755)
    shards = int(workflow["env"]["SHARDS"])
    for spec in KERNELS:
        for k in range(1, shards + 1):
            folder = work / "shards" / f"gate-{label(spec)}-{k}"
            folder.mkdir(parents=True)
            if f"{label(spec)}-{k}" not in missing:
                (folder / "gate.json").write_text("{}")
    summary, log = tmp_path / "summary.md", tmp_path / "calls"
    log.write_text("")
    env = {**os.environ, "LC_ALL": "C", "PATH": f"{bin_dir}:{os.environ['PATH']}", "SHARDS": str(shards),
           "GITHUB_STEP_SUMMARY": str(summary), "STUB_LOG": str(log),
           **{f"STUB_STATUS_{k.upper()}": v for k, v in statuses.items()}}
    done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=work, env=env,
                          capture_output=True, text=True, timeout=60)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    return done, calls, summary.read_text(), work


def test_the_merge_step_merges_each_kernel_and_sets_them_side_by_side(workflow, tmp_path):
    done, calls, summary, work = run_merge_step(workflow, tmp_path)
    assert done.returncode == 0, done.stderr
    merges = [c for c in calls if c[:2] == ["gate", "merge"]]
    labels = sorted(label(spec) for spec in KERNELS)
    assert [m[2:5] for m in merges] == [[f"shards/gate-{lb}-{k}/gate.json" for k in (1, 2, 3)] for lb in labels]
    for lb, m in zip(labels, merges, strict=True):
        assert {"--json", "--junit", "--html", "--markdown"} <= set(m), m
        assert m[m.index("--json") + 1] == f"merged/gate.{lb}.json"
    (diff,) = [c for c in calls if c[:2] == ["gate", "diff"]]
    assert diff[2:6] == [f"merged/gate.{lb}.json" for lb in labels] and "--markdown" in diff and "--html" in diff
    parse(diff)
    assert (work / "merged" / "side-by-side.html").exists()
    assert summary.count("| table of merge |") == len(KERNELS) and "| table of diff |" in summary
    assert all(f"## {lb}" in summary for lb in labels) and "## Side by side" in summary


def test_the_merge_step_says_which_shard_is_missing_and_fails(workflow, tmp_path):
    done, calls, summary, _ = run_merge_step(workflow, tmp_path, missing=("debian-6.12-2",))
    assert done.returncode == 1
    assert "debian-6.12: shard 2/3 wrote no document" in summary
    (partial,) = [c for c in calls if c[:2] == ["gate", "merge"] and "merged/gate.debian-6.12.json" in c]
    assert partial[2:4] == ["shards/gate-debian-6.12-1/gate.json", "shards/gate-debian-6.12-3/gate.json"]


@pytest.mark.parametrize("statuses, exit_status", [
    ({"merge": "1", "diff": "1"}, 0),  # a failed scenario (its shard's job is red) and kernels that differ: shown
    ({"merge": "2"}, 2),  # shards that do not merge: the job fails
])
def test_the_merge_step_fails_only_when_the_shards_do_not_merge(workflow, tmp_path, statuses, exit_status):
    done, _, _, _ = run_merge_step(workflow, tmp_path, **statuses)
    assert done.returncode == exit_status, done.stderr


def test_the_merge_command_lines_parse():
    argv = ["gate", "merge", "a.json", "b.json", "--json", "m.json", "--junit", "m.xml", "--html", "m.html",
            "--markdown"]
    parse(argv)


# --- the docs' GitLab job ---------------------------------------------------------------------------------------


def test_the_gitlab_job_runs_commands_that_exist(gitlab):
    """Scripts that exist, and a gate command netkit parses, writing the JUnit file GitLab reads."""
    job = gitlab["netkit-gate"]
    lines = list(job["script"])
    assert any(line.split()[:1] == ["scripts/provision.sh"] for line in lines)
    gates = []
    for line in lines:
        words = shlex.split(line, comments=True)
        if words[0].startswith("scripts/"):
            assert os.access(ROOT / words[0], os.X_OK), line
        elif words[0] == "netkit":
            words = words[:words.index(">")] if ">" in words else words
            gates.append(parse(words[1:]))
    (gate,) = gates
    assert gate.junit == job["artifacts"]["reports"]["junit"]
    assert {gate.json, gate.html} <= set(job["artifacts"]["paths"])
    assert gate.pcap_dir.rstrip("/") in {p.rstrip("/") for p in job["artifacts"]["paths"]}, "captures are kept"


def test_the_gitlab_job_publishes_its_junit_file_when_nothing_can_run(gitlab):
    job = gitlab["netkit-gate"]
    assert job["artifacts"]["when"] == "always"
    assert job["allow_failure"]["exit_codes"] == [EXIT_CANNOT_RUN_HERE]
    provision = next(line for line in job["script"] if line.startswith("scripts/provision.sh"))
    assert "--no-doctor" in provision, "provisioning must not end the job before the gate writes gate.xml"
