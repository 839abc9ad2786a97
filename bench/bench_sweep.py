"""Sweep throughput: 100 analytical runs on 1 and 2 local workers and on a Dask LocalCluster.

Run: python bench/bench_sweep.py   (prints runs per second for each executor)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from netsim.config.loader import parse_model  # noqa: E402
from netsim.config.sweep import SweepConfig  # noqa: E402
from netsim.sweep.grid import expand  # noqa: E402
from netsim.sweep.runner import execute  # noqa: E402

SWEEP = {
    "name": "bench",
    "base": {"topology": str(ROOT / "topologies/dcn_512.yaml"), "model": "7B", "backend": "analytical"},
    "grid": {
        "bandwidth": [f"{g} Gbps" for g in (50, 100, 150, 200, 250, 300, 350, 400, 600, 800)],
        "gbs": [128, 256, 384, 512, 640, 768, 896, 1024, 1152, 1280],
    },
}


def main() -> None:
    points = expand(parse_model(SweepConfig, SWEEP, "bench"))
    assert len(points) == 100
    for label, kw in (
        ("1 worker", {"workers": 1}),
        ("2 workers", {"workers": 2}),
        ("Dask LocalCluster, 2 workers", {"workers": 2, "dask": "local"}),
    ):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            df = execute(points, Path(d), **kw)
            wall = time.perf_counter() - t0
        ok = int((df.status == "ok").sum())
        print(f"{label:30s} {len(df)} runs ({ok} ok) in {wall:6.2f} s = {len(df) / wall:6.1f} runs/s", flush=True)


if __name__ == "__main__":
    main()
