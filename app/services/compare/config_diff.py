"""Side-by-side comparison of run configurations, one row per flattened setting."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.domain.json_values import json_safe

# Shown first, in this order: they say what was trained on what.
IDENTITY_KEYS = ("strategy", "base_model", "dataset")


@dataclass(frozen=True)
class DiffRow:
    key: str
    values: dict[int, Any]
    """run_id -> value, in the order the configs were given; None where a run lacks the key."""
    differs: bool


def config_diff(configs: Mapping[int, Mapping], only_differences: bool = True) -> list[DiffRow]:
    """Rows comparing the runs' configs: identity keys first, then the rest alphabetically."""
    flat = {run_id: flatten(config) for run_id, config in configs.items()}
    if not flat:
        return []
    keys = {key for config in flat.values() for key in config}
    rows = []
    for key in sorted(keys, key=_sort_key):
        values = {run_id: config.get(key) for run_id, config in flat.items()}
        first, *rest = values.values()
        differs = not all(same(first, other) for other in rest)
        if differs or not only_differences:
            rows.append(DiffRow(key=key, values=values, differs=differs))
    return rows


def flatten(config: Mapping, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys; lists of named dicts (reward functions) keyed by name.

    ``{"reward_functions": [{"name": "exact_answer", "weight": 1.0}]}`` becomes
    ``{"reward_functions.exact_answer.weight": 1.0}``, so runs that list the same rewards in a
    different order still line up. Other lists are compared whole.
    """
    out: dict[str, Any] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{path}."))
        elif _is_named_list(value):
            out.update(_flatten_named(value, path))
        elif isinstance(value, list) and any(isinstance(item, Mapping) for item in value):
            out.update(flatten(dict(enumerate(value)), f"{path}."))
        else:
            out[path] = value
    return out


def _is_named_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, Mapping) and isinstance(item.get("name"), str) for item in value)
    )


def _flatten_named(items: list[Mapping], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    seen: dict[str, int] = {}
    for item in items:
        name = item["name"]
        seen[name] = seen.get(name, 0) + 1
        # The same reward twice (say regex_match with two patterns) must not overwrite itself.
        label = name if seen[name] == 1 else f"{name}#{seen[name]}"
        rest = {k: v for k, v in item.items() if k != "name"}
        leaves = flatten(rest, f"{path}.{label}.")
        # A bare {"name": ...} still shows up, so "has this reward" is part of the diff.
        out.update(leaves or {f"{path}.{label}": True})
    return out


def same(a: Any, b: Any) -> bool:
    """Config equality: 1 == 1.0, NaN == NaN, close floats equal; bools are not numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        # Values that went through JSON or a form can differ in the last bits.
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def _sort_key(key: str) -> tuple[int, str]:
    top = key.split(".", 1)[0]
    rank = IDENTITY_KEYS.index(top) if top in IDENTITY_KEYS else len(IDENTITY_KEYS)
    return rank, key


def to_json_safe(rows: list[DiffRow]) -> list[dict[str, Any]]:
    """Rows as plain JSON: run ids as string keys, NaN/inf as null (JSON has neither)."""
    return [
        {
            "key": row.key,
            "values": {str(run_id): json_safe(v) for run_id, v in row.values.items()},
            "differs": row.differs,
        }
        for row in rows
    ]
