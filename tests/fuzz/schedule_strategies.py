"""Hypothesis strategies for schedule files: valid documents, one thing broken in them, and
damage to their text.

Documents are built as Python values and written as TOML by `to_toml` (every table inline, so
any value can go anywhere), which keeps mutations structural: a field's value replaced, a field
dropped or added, a table where a list belongs. `damaged_toml` then works on the text itself.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from datetime import date, datetime, time
from typing import Any

from hypothesis import strategies as st

from scaler.domain.schedule_file import (
    CLUSTER_FIELDS,
    EXCEPTION_FIELDS,
    POOL_FIELDS,
    ROOT_FIELDS,
    WINDOW_FIELDS,
)

Toml = Any

ZONES = ("Europe/Amsterdam", "UTC", "America/New_York", "Asia/Tokyo", "Australia/Lord_Howe")
POOL_NAMES = ("batch", "web", "gpu", "spot", "nightly")
TIMES = [f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30)]

# -- writing TOML --------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else toml_value(key)


def toml_value(value: Toml) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(_escaped(c) for c in value) + '"'
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    assert isinstance(value, dict), value
    return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def _escaped(char: str) -> str:
    code = ord(char)
    if char in '"\\' or code < 0x20 or code == 0x7F:
        return f"\\u{code:04x}"
    if 0xD800 <= code <= 0xDFFF:  # not encodable: TOML is UTF-8
        return "\\ufffd"
    return char


def to_toml(document: dict[str, Toml]) -> str:
    """One `key = value` line per top-level field, every table inline."""
    return "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in document.items())


# -- arbitrary TOML values -----------------------------------------------------------------------

toml_scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["Mon-Fri", "daily", "*", "keep", "24:00", "07:00", "2026-12-24", "UTC"]),
    st.dates(),
    st.datetimes(),
    st.times(),
)
toml_keys = st.one_of(
    st.sampled_from(sorted(ROOT_FIELDS | CLUSTER_FIELDS | POOL_FIELDS | WINDOW_FIELDS)),
    st.sampled_from(sorted(EXCEPTION_FIELDS | {"count", "min", "max", "power"})),
    st.text(max_size=8),  # "" included: an empty key is named '""'
)
toml_values = st.recursive(
    toml_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(toml_keys, children, max_size=4)
    ),
    max_leaves=12,
)

# -- valid documents -------------------------------------------------------------------------------


def states(max_count: int = 100) -> st.SearchStrategy[Toml]:
    counts = st.integers(0, max_count)
    return st.one_of(
        counts,
        counts.map(lambda c: {"count": c}),
        st.tuples(counts, counts).map(sorted).map(lambda b: {"min": b[0], "max": b[1]}),
        st.sampled_from([{"power": "Running"}, {"power": "Stopped"}, "keep"]),
    )


@st.composite
def windows(draw: st.DrawFn) -> list[dict[str, Toml]]:
    """One window, or two on days that do not meet (so they never overlap)."""
    start, end = sorted(draw(st.lists(st.sampled_from(TIMES), min_size=2, max_size=2, unique=True)))
    if draw(st.booleans()):
        days = draw(st.sampled_from(["Mon-Fri", "daily", "*", "Sat,Sun", "Mon,Wed-Fri"]))
        return [{"days": days, "start": start, "end": end, "state": draw(states())}]
    return [
        {"days": "Mon-Wed", "start": start, "end": end, "state": draw(states())},
        {"days": "Fri", "start": start, "end": draw(st.sampled_from(["24:00", end])), "state": 1},
    ]


@st.composite
def pools(draw: st.DrawFn) -> dict[str, Toml]:
    pool: dict[str, Toml] = {}
    if draw(st.booleans()):
        pool["windows"] = draw(windows())
    if "windows" not in pool or draw(st.booleans()):
        pool["outside"] = draw(states())
    if draw(st.booleans()):
        pool["enforce"] = draw(st.booleans())
    return pool


@st.composite
def exceptions(draw: st.DrawFn, pool_names: list[str]) -> dict[str, Toml]:
    rule: dict[str, Toml] = {}
    kind = draw(st.sampled_from(["dates", "range", "until"]))
    if kind == "dates":
        rule["dates"] = draw(st.lists(st.dates().map(date.isoformat), min_size=1, max_size=3))
    elif kind == "range":
        first, last = sorted(draw(st.lists(st.dates(), min_size=2, max_size=2)))
        rule["from"], rule["to"] = first.isoformat(), last.isoformat()
    else:
        rule["until"] = draw(st.dates(min_value=date(2000, 1, 2))).isoformat()
    rule["pools"] = draw(
        st.one_of(st.just("*"), st.lists(st.sampled_from(pool_names), min_size=1, unique=True))
    )
    rule["state"] = draw(states())
    return rule


@st.composite
def clusters(draw: st.DrawFn, index: int) -> dict[str, Toml]:
    names = draw(st.lists(st.sampled_from(POOL_NAMES), min_size=1, max_size=3, unique=True))
    cluster: dict[str, Toml] = {
        "resource_group": "rg-demo",
        "cluster": f"aks-{index}",
        "pools": {name: draw(pools()) for name in names},
    }
    if draw(st.booleans()):
        cluster["timezone"] = draw(st.sampled_from(ZONES))
    if draw(st.booleans()):
        cluster["enforce"] = draw(st.booleans())
    rules = draw(st.lists(exceptions(names), max_size=2))
    if rules:
        cluster["exceptions"] = rules
    return cluster


@st.composite
def valid_schedules(draw: st.DrawFn) -> dict[str, Toml]:
    """Documents `load_schedule` must accept."""
    count = draw(st.integers(1, 2))
    document: dict[str, Toml] = {"timezone": draw(st.sampled_from(ZONES))}
    if draw(st.booleans()):
        document["enforce"] = draw(st.booleans())
    document["clusters"] = [draw(clusters(i)) for i in range(count)]
    return document


# -- one thing broken ------------------------------------------------------------------------------


def tables(document: dict[str, Toml]) -> list[tuple[str, dict[str, Toml], frozenset[str]]]:
    """(path as errors name it, the table, its allowed fields) for every table in `document`
    that is where a schedule has one (a mutation may have put something else there)."""
    found: list[tuple[str, dict[str, Toml], frozenset[str]]] = [("", document, ROOT_FIELDS)]
    for i, cluster in _items(document.get("clusters"), list):
        where = f"clusters[{i}]"
        found.append((where, cluster, CLUSTER_FIELDS))
        for name, pool in _items(cluster.get("pools"), dict):
            found.append((f"{where}.pools.{name}", pool, POOL_FIELDS))
            for j, window in _items(pool.get("windows"), list):
                found.append((f"{where}.pools.{name}.windows[{j}]", window, WINDOW_FIELDS))
        for j, rule in _items(cluster.get("exceptions"), list):
            found.append((f"{where}.exceptions[{j}]", rule, EXCEPTION_FIELDS))
    return found


def _items(container: Toml, kind: type) -> list[tuple[Any, dict[str, Toml]]]:
    """(index or key, table) of the tables in `container`, if it is a `kind`."""
    if not isinstance(container, kind):
        return []
    pairs = container.items() if isinstance(container, dict) else enumerate(container)
    return [(key, value) for key, value in pairs if isinstance(value, dict)]


def _joined(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


@st.composite
def broken_schedules(draw: st.DrawFn) -> tuple[dict[str, Toml], str]:
    """(document, the field its error must name): a valid schedule with one thing wrong."""
    document = draw(valid_schedules())
    path, table, allowed = draw(st.sampled_from(tables(document)))
    kind = draw(st.sampled_from(["unknown_field", "bad_enforce", "bad_timezone", "bad_state"]))
    if kind == "unknown_field":
        key = draw(
            st.from_regex(r"[a-z_]{1,12}", fullmatch=True).filter(lambda k: k not in allowed)
        )
        table[key] = draw(toml_values)
        return document, _joined(path, key)
    if kind == "bad_enforce" and "enforce" in allowed:
        table["enforce"] = draw(toml_values.filter(lambda v: not isinstance(v, bool)))
        return document, _joined(path, "enforce")
    if kind == "bad_timezone" and "timezone" in allowed:
        table["timezone"] = draw(
            st.one_of(st.sampled_from(["Europe/Amsterdm", "CET+1", "", "utc "]), toml_values)
            .filter(lambda v: v not in ZONES)
            .filter(lambda v: not (isinstance(v, str) and _is_zone(v)))
        )
        return document, _joined(path, "timezone")
    if kind == "bad_state" and "state" in allowed:
        table["state"] = draw(
            st.one_of(
                st.integers(max_value=-1),
                st.integers(min_value=101),
                st.sampled_from(["kept", {"min": 5, "max": 2}, {"power": "stopped"}, {}, 1.5]),
            )
        )
        return document, _joined(path, "state")
    # The drawn table has no such field: an unknown one instead.
    table["unknown_field_x"] = 1
    return document, _joined(path, "unknown_field_x")


def _is_zone(name: str) -> bool:
    return name in zoneinfo.available_timezones()


@st.composite
def mutated_schedules(draw: st.DrawFn) -> dict[str, Toml]:
    """A valid schedule with any field replaced by any value, dropped, or one added."""
    document = draw(valid_schedules())
    for _ in range(draw(st.integers(1, 3))):
        _, table, _ = draw(st.sampled_from(tables(document)))
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "replace" and table:
            table[draw(st.sampled_from(sorted(table)))] = draw(toml_values)
        elif action == "drop" and table:
            del table[draw(st.sampled_from(sorted(table)))]
        else:
            table[draw(toml_keys)] = draw(toml_values)
    return document


# -- damage to the text -----------------------------------------------------------------------------


@st.composite
def damaged_toml(draw: st.DrawFn, text: str) -> str:
    """Truncate, splice, drop, duplicate or swap lines, or insert a table header."""
    lines = text.splitlines(keepends=True) or [""]
    kind = draw(
        st.sampled_from(
            [
                "truncate",
                "insert",
                "delete",
                "replace",
                "drop_line",
                "duplicate_line",
                "swap_lines",
                "header",
                "bom",
                "crlf",
            ]
        )
    )
    position = draw(st.integers(0, len(text)))
    line = draw(st.integers(0, len(lines) - 1))
    if kind == "truncate":
        return text[:position]
    if kind == "insert":
        junk = st.one_of(
            st.text(min_size=1, max_size=4),
            st.sampled_from(['"', "'", "[", "]]", "{", "}", "=", ",", "#", "\n", "\\", "\x00"]),
        )
        return text[:position] + draw(junk) + text[position:]
    if kind == "delete":
        return text[:position] + text[position + draw(st.integers(1, 8)) :]
    if kind == "replace":
        return text[:position] + draw(st.characters()) + text[position + 1 :]
    if kind == "drop_line":
        return "".join(lines[:line] + lines[line + 1 :])
    if kind == "duplicate_line":
        return "".join(lines[: line + 1] + lines[line:])
    if kind == "swap_lines":
        other = draw(st.integers(0, len(lines) - 1))
        lines[line], lines[other] = lines[other], lines[line]
        return "".join(lines)
    if kind == "header":
        header = draw(
            st.sampled_from(
                [
                    "[[clusters]]\n",
                    "[clusters]\n",
                    "[clusters.pools.batch]\n",
                    "[[clusters.exceptions]]\n",
                    "[[clusters.pools.batch.windows]]\n",
                    "[timezone]\n",
                ]
            )
        )
        return "".join([*lines[:line], header, *lines[line:]])
    if kind == "bom":
        return "\ufeff" + text
    return text.replace("\n", "\r\n")
