"""JSON as netsim prints it: a schema version, times rounded to the nanosecond, no NaN or Infinity
(JSON has neither: they become null), numpy scalars as plain numbers. Schemas: docs/schemas/."""

from __future__ import annotations

import json
import math
from typing import Any

RUN_SCHEMA = "netsim-run/1"
BENCH_SCHEMA = "netsim-bench-collective/1"


def _clean(v: Any, key: str = "") -> Any:
    if hasattr(v, "dtype") and hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float):
        if not math.isfinite(v):
            return None
        return round(v, 3) if key.endswith("_us") else v  # microseconds to the nanosecond
    if isinstance(v, dict):
        return {k: _clean(x, str(k)) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x, key) for x in v]
    return v


def dumps(obj: Any, schema: str | None = None, **kw) -> str:
    """The JSON text of `obj` (with `schema_version` first when `schema` is given)."""
    data = _clean(obj)
    if schema is not None and isinstance(data, dict):
        data = {"schema_version": schema, **data}
    return json.dumps(data, allow_nan=False, **kw)
