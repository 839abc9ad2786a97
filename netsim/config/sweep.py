"""Schema of a sweep file: `base` (any `netsim run` field), `grid` (cartesian) and/or `zip` (lockstep)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from netsim.config.run import RunSpec

RUN_FIELDS = tuple(RunSpec.model_fields)
MAX_POINTS = 100_000  # a larger grid is almost surely a typo (and its table would not fit a run)


class SweepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A folder name under sweeps_out/: no path separators, no leading dot (no escaping the folder).
    name: str = Field("sweep", max_length=100)
    base: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}
    zip: dict[str, list[Any]] = {}

    @model_validator(mode="after")
    def _check(self):
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", self.name) or ".." in self.name:
            raise ValueError(
                f"name: expected a folder name (letters, digits, _ . -; no '/', no '..'), got {self.name!r}"
            )
        for section in ("base", "grid", "zip"):
            for key in getattr(self, section):
                if key not in RUN_FIELDS:
                    raise ValueError(f"{section}.{key}: unknown run field; expected one of {', '.join(RUN_FIELDS)}")
        for key, values in {**self.grid, **self.zip}.items():
            if not values:
                raise ValueError(f"{key}: expected a non-empty list")
        points = 1
        for values in self.grid.values():
            points *= len(values)
        if points * max([len(v) for v in self.zip.values()] or [1]) > MAX_POINTS:
            raise ValueError(f"the sweep has more than {MAX_POINTS} points; split it into several sweeps")
        lengths = {len(v) for v in self.zip.values()}
        if len(lengths) > 1:
            raise ValueError(f"zip lists must have equal lengths, got {sorted(lengths)}")
        overlap = set(self.grid) & set(self.zip)
        if overlap:
            raise ValueError(f"{', '.join(sorted(overlap))}: in both grid and zip")
        if "topology" not in {**self.base, **self.grid, **self.zip}:
            raise ValueError("topology: required in base, grid or zip")
        return self
