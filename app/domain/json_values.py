"""Numbers as JSON can carry them: JSON has no NaN or infinity, so every API answer turns them
into ``null`` (a gap in a chart, an empty cell), one policy for every payload."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float inside it (lists, tuples, mappings) as None."""
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
