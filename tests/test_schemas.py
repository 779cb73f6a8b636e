"""The published JSON Schemas (netkit/schemas) against real documents: a gate, a demo, an inspect, a check-client
and a check-server run; each schema valid draft 2020-12, its enumerations netkit's own, and planted defects refused.

Real output is validated with every object of the schema *closed* (additionalProperties false where the schema
leaves it open for additive changes), so a key netkit writes but the schema does not describe fails here.  The
runs need root (labs); without it they skip, and the recorded documents of tests/data still validate.
"""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import wait_for
from jsonschema import Draft202012Validator

from netkit import enums, schemas
from netkit.check.result import CHECK_CLIENT_SCHEMA, CHECK_SERVER_SCHEMA
from netkit.cli.inspect import SCHEMA as INSPECT_SCHEMA
from netkit.document.codec import from_dict, to_dict
from netkit.document.records import GATE_SCHEMA, READABLE_SCHEMAS, RENAMED
from netkit.privileges import missing_privileges
from netkit.report.json import SCHEMA as RESULT_SCHEMA

DATA = Path(__file__).with_name("data")
HERE = Path(__file__).parent
needs_root = pytest.mark.skipif(missing_privileges() is not None, reason=str(missing_privileges()))


def closed(schema):
    """The schema with every object that lists its properties closed to others: what netkit's own output must meet."""
    if isinstance(schema, dict):
        schema = {key: closed(value) for key, value in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [closed(value) for value in schema]
    return schema


def problems(name, doc, strict=True):
    schema = schemas.load(name)
    validator = Draft202012Validator(closed(schema) if strict else schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message[:300]}" for e in validator.iter_errors(doc)]


def assert_valid(name, doc):
    found = problems(name, doc)
    assert not found, f"{name}: " + "\n".join(found[:10])


# ---------------------------------------------------------------- the schemas themselves


@pytest.mark.parametrize("name", schemas.NAMES)
def test_each_schema_is_valid_draft_2020_12_with_id_title_description(name):
    schema = schemas.load(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:netkit:schema:{name}"
    assert schema["title"] and "additive" in schema["description"]
    assert Path(str(schemas.path(name))).name == name.replace("/", "-") + ".schema.json"


def test_the_names_netkit_writes_are_the_published_ones_in_one_convention():
    written = [GATE_SCHEMA, RESULT_SCHEMA, INSPECT_SCHEMA, CHECK_SERVER_SCHEMA, CHECK_CLIENT_SCHEMA]
    assert written == list(schemas.NAMES)
    assert all(name.startswith("netkit.") and name.count("/") == 1 for name in written)
    assert schemas.FORMER_NAMES == RENAMED and set(RENAMED) < set(READABLE_SCHEMAS)  # the former name still reads
    assert schemas.load("netkit-gate/3") == schemas.load(GATE_SCHEMA)
    with pytest.raises(ValueError, match="no published schema 'netkit.nothing/1'"):
        schemas.path("netkit.nothing/1")


def _enum(schema, *path):
    for key in path:
        schema = schema[key]
    return [value for value in schema["enum"] if value is not None]


def test_the_enumerations_are_netkits_own():
    result, gate = schemas.load(RESULT_SCHEMA)["properties"], schemas.load(GATE_SCHEMA)
    assert _enum(result, "verdict") == list(enums.Verdict)
    assert _enum(result, "death_source") == list(enums.DeathSource)
    assert _enum(result, "death_timing") == list(enums.Timing)
    assert _enum(result, "count_source") == list(enums.CountSource)
    assert _enum(result, "fault") == list(enums.FaultName) and _enum(result, "state") == list(enums.State)
    assert _enum(result, "timeline", "items", "properties", "kind") == list(enums.EventKind)
    entry = gate["properties"]["scenarios"]["items"]["properties"]
    assert _enum(entry, "outcome") == list(enums.GateOutcome)
    assert list(gate["properties"]["totals"]["properties"]) == list(enums.GateOutcome)


def test_a_gate_run_is_a_scenario_result_plus_its_explanation():
    result, run = schemas.load(RESULT_SCHEMA), schemas.load(GATE_SCHEMA)["$defs"]["run"]
    assert {k: v for k, v in run["properties"].items() if k not in ("schema", "explain")} == \
        {k: v for k, v in result["properties"].items() if k != "schema"}
    assert run["required"] == [*result["required"], "explain"]


# ---------------------------------------------------------------- recorded documents (no root needed)


@pytest.mark.parametrize("recorded", ["gate-document.json", "gate-document-v1-full.json", "gate-document-v2.json"])
def test_a_recorded_document_rewritten_by_this_netkit_validates(recorded):
    doc = _rewritten(recorded)  # what gate merge would write from it
    assert doc["schema"] == GATE_SCHEMA
    assert problems(GATE_SCHEMA, doc, strict=False) == []
    assert_valid(GATE_SCHEMA, _without_planted(doc))


def _without_planted(value):
    """The document without the keys tests/data plants to stand for a later netkit's (``future_...``)."""
    if isinstance(value, dict):
        return {k: _without_planted(v) for k, v in value.items() if not k.startswith("future_")}
    if isinstance(value, list):
        return [_without_planted(v) for v in value]
    return value


def _rewritten(recorded):
    """A recorded document, read and written by this netkit (JSON data, as ``gate --json`` writes it)."""
    return json.loads(json.dumps(to_dict(from_dict(json.loads((DATA / recorded).read_text())))))


def _gate_doc():
    return _without_planted(_rewritten("gate-document.json"))


def _a_run(doc):
    run = copy.deepcopy(doc["scenarios"][0]["runs"][0])
    run.pop("explain")
    return {**run, "schema": RESULT_SCHEMA}


@pytest.mark.parametrize("name, plant, says", [
    (GATE_SCHEMA, lambda d: d.pop("totals"), "'totals' is a required property"),
    (GATE_SCHEMA, lambda d: d["scenarios"][0].update(outcome="passed"), "'passed' is not one of"),
    (GATE_SCHEMA, lambda d: d["scenarios"][0]["runs"][0].pop("verdict"), "'verdict' is a required property"),
    (GATE_SCHEMA, lambda d: d.update(schema="netkit-gate/3"), "'netkit.gate/3' was expected"),
    (GATE_SCHEMA, lambda d: d["scenarios"][0].update(window_s=[1.0]), "is not valid under any of the given schemas"),
    (RESULT_SCHEMA, "run", None),
])
def test_a_planted_defect_fails_validation(name, plant, says):
    doc = _gate_doc()
    if plant == "run":  # a result: a wrong verdict, a missing key, a wrong type
        run = _a_run(doc)
        assert_valid(RESULT_SCHEMA, run)
        for defect, message in ((dict(verdict="PASS"), "'PASS' is not one of"), (dict(hz="250"), "is not of type"),
                                (dict(death_timing="soon"), "'soon' is not one of")):
            assert any(message in p for p in problems(RESULT_SCHEMA, {**run, **defect}, strict=False)), defect
        del run["death_s"]
        assert any("'death_s' is a required property" in p for p in problems(RESULT_SCHEMA, run, strict=False))
        return
    plant(doc)
    found = problems(name, doc, strict=False)
    assert any(says in p for p in found), found


def test_an_added_key_is_an_additive_change_the_published_schema_accepts():
    doc = {**_gate_doc(), "a_later_key": 1}
    assert problems(GATE_SCHEMA, doc, strict=False) == []
    assert any("a_later_key" in p for p in problems(GATE_SCHEMA, doc))  # but netkit's own tests catch it


# ---------------------------------------------------------------- real runs


def netkit(*args):
    return subprocess.Popen([sys.executable, "-m", "netkit.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


SOCAT_1_1_1 = "TCP:{host}:{port},keepalive,keepidle=1,keepintvl=1,keepcnt=1"
OWN_SERVER = str(HERE / "keepalive_server.py")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The real documents, written by runs started together (each a few seconds): {name: (exit status, JSON)}."""
    folder = tmp_path_factory.mktemp("schemas")
    gate_json = folder / "gate.json"
    started = {
        "gate": netkit("gate", "--only", "ipv4-idle-link-down-1/1/3", "--only", "ipv6-idle-blackhole-1/1/3",
                       "--json", str(gate_json)),
        "demo": netkit("demo", "--idle", "1", "--intvl", "1", "--cnt", "1", "--json"),
        "check-client": netkit("check-client", "--json", "--", sys.executable, "-c",
                               "import socket, time; s = socket.create_connection(('{host}', {port})); "
                               "s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1); "
                               "s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1); "
                               "s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1); "
                               "s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 1); time.sleep(30)"),
        "check-server": netkit("check-server", "--port", "7100", "--json", "--", sys.executable, OWN_SERVER,
                               "--bind", "0.0.0.0", "--port", "7100", "--idle", "1", "--intvl", "1", "--cnt", "1"),
        "check-server-error": netkit("check-server", "--port", "7101", "--json", "--", "false"),
    }
    found = {}
    try:
        for name, proc in started.items():
            out, err = proc.communicate(timeout=120)
            text = gate_json.read_text() if name == "gate" and gate_json.exists() else out
            found[name] = (proc.returncode, json.loads(text) if text.strip() else None, err)
    finally:
        for proc in started.values():
            if proc.poll() is None:
                proc.kill()  # ours, by its Popen; only after a timeout
                proc.wait()
    return found


@needs_root
@pytest.mark.parametrize("name, schema, codes", [
    ("gate", GATE_SCHEMA, (0, 1, 3)),  # 3: the machine ran late (shared CPUs): the document is the same shape
    ("demo", RESULT_SCHEMA, (0, 1)),
    ("check-client", CHECK_CLIENT_SCHEMA, (0, 1)),
    ("check-server", CHECK_SERVER_SCHEMA, (0, 1)),
    ("check-server-error", CHECK_SERVER_SCHEMA, (2,)),
])
def test_a_real_document_validates(runs, name, schema, codes):
    code, doc, err = runs[name]
    assert code in codes and doc is not None, f"netkit {name} exited {code}: {err[-2000:]}"
    assert doc["schema"] == schema
    assert_valid(schema, doc)


@needs_root
def test_a_real_inspect_document_validates():
    from netkit.check.program import Program
    from netkit.lab.diag import tcp_sockets
    from netkit.lab.lab import Lab

    with Lab() as lab:
        program = Program([sys.executable, str(HERE / "inspect_target.py"), "--user-timeout", "5000"],
                          lab.server.namespace)
        try:
            wait_for(lambda: len([s for s in tcp_sockets(lab.server.namespace) if s.state == "ESTABLISHED"]) == 2,
                     timeout=10, what="the target's pair connected")
            done = subprocess.run([sys.executable, "-m", "netkit.cli", "inspect", str(program.pid), "--json"],
                                  capture_output=True, text=True, timeout=60)
        finally:
            program.stop()
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["schema"] == INSPECT_SCHEMA and doc["processes"][0]["sockets"]
    assert_valid(INSPECT_SCHEMA, doc)


def test_an_inspect_error_document_validates():
    done = subprocess.run([sys.executable, "-m", "netkit.cli", "inspect", "--port", "0", "--json"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert_valid(INSPECT_SCHEMA, json.loads(done.stdout))


def test_every_key_a_check_writes_is_in_its_schema_in_the_same_order():
    from test_check_pieces import CHECK_KEYS, CLIENT_KEYS

    for name, keys in ((CHECK_SERVER_SCHEMA, CHECK_KEYS), (CHECK_CLIENT_SCHEMA, CLIENT_KEYS)):
        result_form = schemas.load(name)["oneOf"][0]
        assert list(result_form["properties"]) == keys and result_form["required"] == keys


def test_every_key_a_result_writes_is_in_its_schema_in_the_same_order():
    from test_result import RESULT_KEYS

    schema = schemas.load(RESULT_SCHEMA)
    assert schema["required"] == RESULT_KEYS  # the keys every result has; the others only where they apply
    assert list(schema["properties"])[:len(RESULT_KEYS)] == RESULT_KEYS
