"""A user's own matrix, as a TOML file: ``netkit gate --matrix FILE``.

Each ``[[scenario]]`` table is one cell -- or several: a list in ``family``,
``fault``, ``state`` or ``keepalive`` multiplies, so four lines can describe
a fleet's whole policy::

    [[scenario]]
    keepalive = [[60, 10, 6], [7200, 75, 9]]   # idle s, intvl s, cnt probes
    user_timeout_ms = 30000                    # optional TCP_USER_TIMEOUT
    family = ["ipv4", "ipv6"]                  # default "ipv4"
    fault = ["link-down", "blackhole"]         # default "link-down"
    state = "idle"                             # idle | unacked | zero-window | syn-sent | syn-recv
    side = "server"                            # server | client
    keepalive_via = "socket"                   # socket | sysctl
    retries2 = 3                               # net.ipv4.tcp_retries2, data states
    syn_retries = 2                            # TCP_SYNCNT (or the sysctl), handshake states
    rto_max_ms = 5000                          # the socket's maximum RTO (Linux 6.15+), data states
    rto_max_via = "socket"                     # socket (TCP_RTO_MAX_MS) | sysctl (net.ipv4.tcp_rto_max_ms)
    rto_min_us = 50000                         # net.ipv4.tcp_rto_min_us (Linux 6.11+), data states
    rto_min_via = "sysctl"                     # sysctl | route (the route to the peer's locked rto_min, any kernel)
    expect_s = 64                              # optional: the death time you rely on, judged instead of the model's

A router that forgets idle flows (``topology = "routed"``; the fault is then
``middlebox-forgets`` unless given)::

    [[scenario]]
    keepalive = [[300, 60, 5], [400, 60, 5]]   # below and above AWS NAT's 350 s
    topology = "routed"
    middlebox_timeout_s = 350
    middlebox = "reject"                       # drop (default) | reject
    masquerade = true

A mistake is reported with the file, the line and the key, and what is
allowed: the person editing the file should not have to guess.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from typing import Any

from ..errors import InputError
from ..keepalive import KeepaliveSettings
from ..scenario import Scenario

MULTIPLYING = ("family", "fault", "state", "keepalive")
ROUTED_KEYS = ("topology", "middlebox_timeout_s", "middlebox", "masquerade")  # netkit.scenario.middlebox_spec
RTO_KEYS = ("rto_max_ms", "rto_max_via", "rto_min_us", "rto_min_via")  # netkit.scenario.rto_spec
KEYS = (*MULTIPLYING, "user_timeout_ms", "side", "keepalive_via", "retries2", "syn_retries", "expect_s", *RTO_KEYS,
        *ROUTED_KEYS)


class MatrixFileError(InputError):
    """A matrix file that cannot be read as intended; the message names file, line and key."""


def load_matrix(path: str) -> list[Scenario]:
    """The scenarios a matrix file describes, in file order, each once."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise MatrixFileError(f"matrix file {path}: cannot read it ({exc.strerror})") from None
    text = raw.decode("utf-8", errors="replace")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MatrixFileError(f"{path}: not valid TOML: {exc}") from None
    unknown = [key for key in data if key != "scenario"]
    if unknown:
        raise MatrixFileError(f"{path}:{line_of(text, None, unknown[0])}: unknown top-level key {unknown[0]!r}: "
                              "write each cell as a [[scenario]] table")
    tables = data.get("scenario")
    if not isinstance(tables, list) or not tables:
        raise MatrixFileError(f"{path}: no [[scenario]] table: nothing to run (see `netkit gate --help`)")
    scenarios: list[Scenario] = []
    for number, table in enumerate(tables):
        scenarios.extend(_cells(path, text, number, table))
    return list(dict.fromkeys(scenarios))


def _cells(path: str, text: str, number: int, table: dict[str, Any]) -> list[Scenario]:
    def fail(key: str | None, message: str) -> MatrixFileError:
        where = f"{path}:{line_of(text, number, key)}"
        return MatrixFileError(f"{where}: [[scenario]] #{number + 1}" + (f", key {key!r}" if key else "") + f": {message}")

    if not isinstance(table, dict):
        raise fail(None, f"{table!r} is not a table: write each cell as a [[scenario]] table")
    for key in table:
        if key not in KEYS:
            raise fail(key, f"unknown key; allowed: {', '.join(KEYS)}")
    if "keepalive" not in table:
        raise fail(None, "missing key 'keepalive' = [idle, intvl, cnt]")
    lists = {key: _as_list(table.get(key), key) for key in MULTIPLYING}
    for key, values in lists.items():
        if key in table and not values:
            raise fail(key, "an empty list runs nothing: give one value or more, or leave the key out")
    cells = []
    default_fault = "middlebox-forgets" if table.get("topology") == "routed" else "link-down"
    optional = {key: table[key] for key in (*RTO_KEYS, *ROUTED_KEYS) if key in table}
    for family, fault, state, keepalive in itertools.product(
        lists["family"] or ["ipv4"], lists["fault"] or [default_fault], lists["state"] or ["idle"], lists["keepalive"]
    ):
        if not (isinstance(keepalive, list) and len(keepalive) == 3):
            raise fail("keepalive", f"{keepalive!r} is not [idle, intvl, cnt]")
        idle, intvl, cnt = keepalive
        try:
            settings = KeepaliveSettings(idle, intvl, cnt, user_timeout_ms=table.get("user_timeout_ms"))
            cells.append(Scenario(settings, family, fault, state, table.get("side", "server"),
                                  table.get("keepalive_via", "socket"), table.get("retries2"),
                                  syn_retries=table.get("syn_retries"), expect_s=table.get("expect_s"), **optional))
        except (ValueError, KeyError) as exc:  # SettingError is a ValueError; an unknown fault a KeyError
            raise fail(_key_named_in(str(exc), table), str(exc).strip("'\"")) from None
    return cells


def _as_list(value: Any, key: str) -> list[Any]:
    """A key's values as a list: a scalar is one value; ``keepalive`` is one [i, i, c] or a list of them."""
    if value is None:
        return []
    if key == "keepalive":
        return value if isinstance(value, list) and value and isinstance(value[0], list) else [value]
    return value if isinstance(value, list) else [value]


def _key_named_in(message: str, table: dict[str, Any]) -> str | None:
    """Which of the table's keys an error message is about (the settings' errors name their field)."""
    for key in sorted(table, key=len, reverse=True):
        if key in message or key.replace("_ms", "").replace("_", " ") in message:
            return key
    for field in ("idle", "intvl", "cnt"):
        if re.search(rf"\b{field}\b", message):
            return "keepalive"
    return None


def line_of(text: str, number: int | None, key: str | None, table: str = "scenario") -> int:
    """The 1-based line of ``key`` in the ``number``-th [[table]] (or the table's header, or 1)."""
    lines = text.splitlines()
    start, end = 0, len(lines)
    if number is not None:
        headers = [i for i, line in enumerate(lines) if re.match(rf"\s*\[\[\s*{re.escape(table)}\s*\]\]", line)]
        if number < len(headers):
            start = headers[number]
            end = headers[number + 1] if number + 1 < len(headers) else len(lines)
    if key is not None:
        for i in range(start, end):
            if re.match(rf"\s*{re.escape(key)}\s*=", lines[i]):
                return i + 1
    return start + 1
