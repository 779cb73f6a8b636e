"""The JSON Schemas (draft 2020-12) of the documents netkit writes, shipped with the package.

One file per document and version, ``netkit/schemas/<name>.schema.json`` with
the name's ``/`` written ``-`` (``netkit.gate/3`` is ``netkit.gate-3.schema.json``);
each has ``$id`` ``urn:netkit:schema:<name>``, a title and a description::

    netkit.gate/3             netkit gate --json FILE, gate merge --json FILE
    netkit.scenario-result/3  netkit demo --json, ScenarioResult.to_json()
    netkit.inspect/1          netkit inspect --json
    netkit.check-server/1     netkit check-server --json
    netkit.check-client/1     netkit check-client --json

Every document says its name in its ``schema`` key.  The number after the
slash changes only when a key is removed or renamed or changes its type or
meaning; an added key keeps it, so the schemas leave objects open to keys they
do not list and a consumer ignores the keys it does not know.  Validate with
any draft 2020-12 validator, e.g. ``jsonschema``::

    import json, jsonschema, netkit.schemas
    doc = json.load(open("gate.json"))
    jsonschema.validate(doc, netkit.schemas.load(doc["schema"]))
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from ..document.records import RENAMED

NAMES = ("netkit.gate/3", "netkit.scenario-result/3", "netkit.inspect/1", "netkit.check-server/1",
         "netkit.check-client/1")
FORMER_NAMES = RENAMED  # the gate document's name before one convention -> its name now: the same document


def filename(name: str) -> str:
    """``netkit.gate/3`` -> ``netkit.gate-3.schema.json``."""
    return name.replace("/", "-") + ".schema.json"


def path(name: str) -> Any:
    """The schema file of document ``name`` (a :class:`importlib.resources` Traversable: ``.read_text()``, ``str()``)."""
    name = FORMER_NAMES.get(name, name)
    if name not in NAMES:
        raise ValueError(f"no published schema {name!r}: netkit publishes {', '.join(NAMES)}")
    return resources.files(__name__).joinpath(filename(name))


def load(name: str) -> dict[str, Any]:
    """The schema of document ``name`` as JSON data (``netkit-gate/3`` gives ``netkit.gate/3``'s: the same document)."""
    schema: dict[str, Any] = json.loads(path(name).read_text(encoding="utf-8"))
    return schema


__all__ = ["FORMER_NAMES", "NAMES", "filename", "load", "path"]
