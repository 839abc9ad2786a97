"""Schema of a sweep file: `base` (any `netsim run` field), `grid` (cartesian) and/or `zip` (lockstep)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from netsim.config.run import RunSpec

RUN_FIELDS = tuple(RunSpec.model_fields)


class SweepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "sweep"
    base: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}
    zip: dict[str, list[Any]] = {}

    @model_validator(mode="after")
    def _check(self):
        for section in ("base", "grid", "zip"):
            for key in getattr(self, section):
                if key not in RUN_FIELDS:
                    raise ValueError(f"{section}.{key}: unknown run field; expected one of {', '.join(RUN_FIELDS)}")
        for key, values in {**self.grid, **self.zip}.items():
            if not values:
                raise ValueError(f"{key}: expected a non-empty list")
        lengths = {len(v) for v in self.zip.values()}
        if len(lengths) > 1:
            raise ValueError(f"zip lists must have equal lengths, got {sorted(lengths)}")
        overlap = set(self.grid) & set(self.zip)
        if overlap:
            raise ValueError(f"{', '.join(sorted(overlap))}: in both grid and zip")
        if "topology" not in {**self.base, **self.grid, **self.zip}:
            raise ValueError("topology: required in base, grid or zip")
        return self
