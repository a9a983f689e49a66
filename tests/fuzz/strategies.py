"""Hypothesis strategies for scale intents: valid ones, and ways to break them.

Everything is built relative to a `now` and the app's defaults, so the same strategies serve the
pure tests (a fixed clock) and the runs through the real stack (the wall clock).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from scaler.domain.errors import field_name
from scaler.domain.intents import (
    FIELDS,
    MAX_POOLS_PER_INTENT,
    MAX_REASON_CHARS,
    RETRY_FIELD,
    IntentDefaults,
)

SUB = "00000000-0000-0000-0000-000000000000"
DEFAULTS = IntentDefaults(SUB, "rg-demo", "aks-demo", max_count=100)
SEED_POOLS = ("system", "batch", "web", "spot", "gpu")

POOL_NAME = r"[a-z][a-z0-9]{0,11}"
ID = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,40}"
CLUSTER = r"[A-Za-z0-9]([-_A-Za-z0-9]{0,20}[A-Za-z0-9])?"
RESOURCE_GROUP = r"[-\w.()]{0,20}[-\w()]"
SUBSCRIPTION = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

Json = Any

# -- arbitrary JSON ----------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_keys = st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(json_keys, children, max_size=5)
    ),
    max_leaves=20,
)

# Everything JSON but an object: built directly, a filter on json_values rejects too much.
json_non_objects = st.one_of(json_scalars, st.lists(json_values, max_size=5))


# -- valid intents -----------------------------------------------------------------------------


def counts(max_count: int) -> st.SearchStrategy[int]:
    return st.integers(0, max_count)


def pool_requests(max_count: int) -> st.SearchStrategy[Json]:
    bounds = st.tuples(counts(max_count), counts(max_count)).map(sorted)
    return st.one_of(
        counts(max_count),
        counts(max_count).map(lambda c: {"count": c}),
        bounds.map(lambda b: {"min": b[0], "max": b[1]}),
        st.sampled_from(["Running", "Stopped"]).map(lambda p: {"power": p}),
    )


pool_names = st.one_of(st.sampled_from(SEED_POOLS), st.from_regex(POOL_NAME, fullmatch=True))
zones = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


def timestamp(moment: datetime, zone: timezone, zulu: bool) -> str:
    text = moment.astimezone(zone).isoformat()
    return text.replace("+00:00", "Z") if zulu else text


def timestamps(now: datetime, earliest: timedelta, latest: timedelta) -> st.SearchStrategy[str]:
    """ISO-8601 strings with a zone, between now+earliest and now+latest."""
    return st.builds(
        timestamp,
        st.timedeltas(earliest, latest).map(lambda delta: now + delta),
        zones,
        st.booleans(),
    )


def valid_intents(
    now: datetime, defaults: IntentDefaults = DEFAULTS, with_id: bool = True
) -> st.SearchStrategy[dict[str, Json]]:
    """Documents `parse_intent` must accept (the seed shorthand included)."""
    optional: dict[str, st.SearchStrategy[Json]] = {
        "resource_group": st.from_regex(RESOURCE_GROUP, fullmatch=True),
        "cluster": st.from_regex(CLUSTER, fullmatch=True),
        "subscription_id": st.from_regex(SUBSCRIPTION, fullmatch=True),
        "issued_at": timestamps(now, timedelta(days=-30), timedelta(0)),
        "expires_at": timestamps(now, timedelta(seconds=1), timedelta(days=365)),
        "dry_run": st.booleans(),
        "reason": st.one_of(st.none(), st.text(max_size=MAX_REASON_CHARS)),
        RETRY_FIELD: st.integers(1, defaults.max_attempts).map(lambda a: {"attempt": a}),
    }
    if with_id:
        optional["id"] = st.from_regex(ID, fullmatch=True)
    full = st.fixed_dictionaries(
        {
            "pools": st.dictionaries(
                pool_names, pool_requests(defaults.max_count), min_size=1, max_size=6
            )
        },
        optional=optional,
    )
    # The shorthand cannot name a pool like a field ("id", "cluster", ...): that is the full form.
    shorthand = st.dictionaries(
        pool_names.filter(lambda name: name not in FIELDS),
        counts(defaults.max_count),
        min_size=1,
        max_size=6,
    )
    return st.one_of(full, shorthand)


# -- mutations that always make an intent invalid ------------------------------------------------


def _full_form(doc: dict[str, Json]) -> dict[str, Json]:
    return doc if "pools" in doc else {"pools": dict(doc)}


def _a_pool(draw: st.DrawFn, doc: dict[str, Json]) -> str:
    return draw(st.sampled_from(sorted(doc["pools"])))


def _not_matching(pattern: str) -> Callable[[Json], bool]:
    """Values the contract refuses (a trailing newline included: names are fullmatched)."""
    compiled = re.compile(pattern)
    return lambda value: not (isinstance(value, str) and compiled.fullmatch(value))


@st.composite
def broken_intents(
    draw: st.DrawFn, now: datetime, defaults: IntentDefaults = DEFAULTS
) -> tuple[dict[str, Json], str]:
    """(document, the field the error must name): a valid intent with exactly one thing wrong."""
    doc = _full_form(dict(draw(valid_intents(now, defaults))))
    doc["pools"] = dict(doc["pools"])
    kind = draw(
        st.sampled_from(
            [
                "no_pools",
                "empty_pools",
                "pools_not_object",
                "too_many_pools",
                "unknown_field",
                "bad_pool_name",
                "negative",
                "above_max",
                "min_above_max",
                "bool_count",
                "fractional_count",
                "bad_power",
                "mixed_forms",
                "unknown_pool_field",
                "expired",
                "no_time_zone",
                "not_a_timestamp",
                "reason_too_long",
                "bad_attempt",
                "bad_id",
                "bad_cluster",
                "bad_resource_group",
                "bad_subscription",
                "bad_dry_run",
            ]
        )
    )
    max_count = defaults.max_count
    if kind == "no_pools":
        del doc["pools"]
        doc.setdefault("dry_run", False)  # else an empty document, also invalid, same field
        return doc, "pools"
    if kind == "empty_pools":
        doc["pools"] = {}
        return doc, "pools"
    if kind == "pools_not_object":
        doc["pools"] = draw(json_non_objects)
        return doc, "pools"
    if kind == "too_many_pools":
        doc["pools"] = {f"p{i}": 1 for i in range(MAX_POOLS_PER_INTENT + 1)}
        return doc, "pools"
    if kind == "unknown_field":
        name = draw(json_keys.filter(lambda k: k not in FIELDS))
        doc[name] = draw(json_values)
        return doc, field_name(name)
    if kind == "bad_pool_name":
        name = draw(st.text(max_size=20).filter(_not_matching(POOL_NAME)))
        doc["pools"][name] = 1
        return doc, f"pools.{name}"
    if kind == "expired":
        doc["expires_at"] = draw(timestamps(now, timedelta(days=-3650), timedelta(0)))
        doc.pop("issued_at", None)
        return doc, "expires_at"
    if kind == "no_time_zone":
        field = draw(st.sampled_from(["issued_at", "expires_at"]))
        doc[field] = (now + timedelta(hours=1)).replace(tzinfo=None).isoformat()
        return doc, field
    if kind == "not_a_timestamp":
        field = draw(st.sampled_from(["issued_at", "expires_at"]))
        doc[field] = draw(
            st.one_of(
                st.text(max_size=30).map(repr),  # quoted: never ISO-8601
                json_values.filter(lambda v: not isinstance(v, str)),
            )
        )
        return doc, field
    if kind == "reason_too_long":
        doc["reason"] = draw(st.text(min_size=MAX_REASON_CHARS + 1, max_size=MAX_REASON_CHARS + 5))
        return doc, "reason"
    if kind == "bad_attempt":
        doc[RETRY_FIELD] = draw(
            st.one_of(
                st.integers(max_value=0).map(lambda a: {"attempt": a}),
                st.integers(min_value=DEFAULTS.max_attempts + 1).map(lambda a: {"attempt": a}),
                st.sampled_from(
                    [{}, {"attempt": True}, {"attempt": 1.5}, {"attempt": 1, "x": 1}, [], "2", None]
                ),
            )
        )
        return doc, RETRY_FIELD
    patterns = {
        "bad_id": ("id", r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}"),
        "bad_cluster": ("cluster", r"[A-Za-z0-9]([-_A-Za-z0-9]{0,61}[A-Za-z0-9])?"),
        "bad_resource_group": ("resource_group", r"[-\w.()]{0,89}[-\w()]"),
        "bad_subscription": (
            "subscription_id",
            r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}",
        ),
    }
    if kind in patterns:
        field, pattern = patterns[kind]
        doc[field] = draw(
            st.one_of(st.text(max_size=40), json_values).filter(_not_matching(pattern))
        )
        return doc, field
    if kind == "bad_dry_run":
        doc["dry_run"] = draw(json_values.filter(lambda v: not isinstance(v, bool)))
        return doc, "dry_run"

    pool = _a_pool(draw, doc)
    where = f"pools.{pool}"
    if kind == "negative":
        doc["pools"][pool] = draw(
            st.sampled_from([lambda n: n, lambda n: {"count": n}, lambda n: {"min": n, "max": 1}])
        )(draw(st.integers(max_value=-1)))
    elif kind == "above_max":
        too_many = draw(st.integers(min_value=max_count + 1))
        doc["pools"][pool] = draw(
            st.sampled_from([lambda n: n, lambda n: {"count": n}, lambda n: {"min": 0, "max": n}])
        )(too_many)
    elif kind == "min_above_max":
        low = draw(st.integers(0, max_count - 1))
        doc["pools"][pool] = {"min": draw(st.integers(low + 1, max_count)), "max": low}
    elif kind == "bool_count":
        doc["pools"][pool] = draw(st.sampled_from([True, False, {"count": True}]))
    elif kind == "fractional_count":
        value = draw(st.floats(allow_nan=False, allow_infinity=False))
        doc["pools"][pool] = draw(st.sampled_from([value, {"count": value}]))
    elif kind == "bad_power":
        power = draw(
            st.one_of(
                st.sampled_from(["running", "STOPPED", "Deallocated", " Running", ""]),
                json_values,
            ).filter(lambda p: p not in ("Running", "Stopped"))
        )
        doc["pools"][pool] = {"power": power}
    elif kind == "mixed_forms":
        doc["pools"][pool] = draw(
            st.sampled_from(
                [
                    {"count": 1, "power": "Running"},
                    {"count": 1, "min": 1},
                    {"min": 1},
                    {"max": 2},
                    {"min": 1, "max": 2, "power": "Stopped"},
                    {},
                ]
            )
        )
    elif kind == "unknown_pool_field":
        key = draw(json_keys.filter(lambda k: k not in ("count", "min", "max", "power")))
        doc["pools"][pool] = {key: 1, **draw(st.sampled_from([{}, {"count": 1}]))}
    else:  # pragma: no cover - the list above is exhaustive
        raise AssertionError(kind)
    return doc, where


# -- text-level damage ---------------------------------------------------------------------------


@st.composite
def damaged_text(draw: st.DrawFn, text: str) -> str:
    """Truncate, splice, duplicate a key, wrap or re-encode serialised JSON."""
    kind = draw(
        st.sampled_from(
            [
                "truncate",
                "insert",
                "delete",
                "replace",
                "duplicate_key",
                "wrap_in_list",
                "nan",
                "trailing",
                "bom",
                "base64",
                "base64_damaged",
                "double_base64",
            ]
        )
    )
    position = draw(st.integers(0, len(text)))
    if kind == "truncate":
        return text[:position]
    if kind == "insert":
        return text[:position] + draw(st.text(min_size=1, max_size=3)) + text[position:]
    if kind == "delete":
        return text[:position] + text[position + draw(st.integers(1, 5)) :]
    if kind == "replace":
        return text[:position] + draw(st.characters()) + text[position + 1 :]
    if kind == "duplicate_key":
        return text.replace("{", '{"pools": {"batch": 1}, ', 1)
    if kind == "wrap_in_list":
        return f"[{text}]"
    if kind == "nan":
        return text.replace("1", draw(st.sampled_from(["NaN", "Infinity", "-Infinity"])), 1)
    if kind == "trailing":
        return text + draw(st.sampled_from(["}", "]", ",", "x", "\x00", "{}"]))
    if kind == "bom":
        return "\ufeff" + text
    encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
    if kind == "base64":
        return encoded
    if kind == "base64_damaged":
        return (
            encoded[:position]
            + draw(st.sampled_from(["!", "=", " ", "-", "_"]))
            + encoded[position:]
        )
    return base64.b64encode(encoded.encode("ascii")).decode("ascii")


def serialised(doc: Json, ensure_ascii: bool = True) -> str:
    return json.dumps(doc, ensure_ascii=ensure_ascii)
