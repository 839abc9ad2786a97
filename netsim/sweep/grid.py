"""Expand a sweep into points; each point gets a stable id so a resumed sweep knows what is done."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

from netsim.config.sweep import SweepConfig


@dataclass(frozen=True)
class Point:
    index: int
    params: dict

    @property
    def run_id(self) -> str:
        blob = json.dumps(self.params, sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


def expand(cfg: SweepConfig, base_dir: Path | None = None) -> list[Point]:
    """grid x zip, grid keys varying slowest in file order; topology paths relative to the sweep file."""
    grid_keys = list(cfg.grid)
    grid_vals = [cfg.grid[k] for k in grid_keys]
    zip_rows = list(zip(*cfg.zip.values())) if cfg.zip else [()]
    zip_keys = list(cfg.zip)
    points = []
    for combo in itertools.product(*grid_vals):
        for zrow in zip_rows:
            params = dict(cfg.base)
            params.update(zip(grid_keys, combo))
            params.update(zip(zip_keys, zrow))
            params = {k: _resolve_path(k, v, base_dir) for k, v in params.items()}
            points.append(Point(index=len(points), params=params))
    return points


def _resolve_path(key: str, value, base_dir: Path | None):
    if key in ("topology", "workload") and isinstance(value, str) and base_dir is not None:
        p = Path(value)
        if not p.is_absolute() and not p.exists() and (base_dir / p).exists():
            return str(base_dir / p)
    return value
