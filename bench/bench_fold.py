"""What folding DP replicas costs in accuracy and saves in time (issue #18, `run --dp-replicas`).

Llama-3 405B (TP8 PP16, 16 micro-batches per replica) on the fat-trees of `bench_scale.py`: each
row is a fresh `netsim run ... --json` process with its TP/PP traffic simulated for N of the DP
replicas, against the unfolded run (every replica). The error is the folded iteration time's
relative difference from the unfolded one; what folding leaves out is contention between replicas.

Run: python bench/bench_fold.py [--max-gpus N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _proc import measure  # noqa: E402
from bench_scale import MICROBATCHES, PP, SIZES, TP, topology_yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FOLDS = (2, 8, 32)  # simulated replicas compared with every replica


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-gpus", type=int, default=16_384, help="largest fat-tree (the unfolded run grows with it)")
    args = ap.parse_args()
    print(f"{'GPUs':>7s} {'replicas':>12s} {'wall s':>7s} {'peak MiB':>9s} {'iteration ms':>13s} {'vs all':>9s}")
    with tempfile.TemporaryDirectory() as tmp:
        for gpus, k in SIZES:
            if gpus > args.max_gpus:
                break
            dp = gpus // (TP * PP)
            topo = Path(tmp) / f"fat_tree_{gpus}.yaml"
            topo.write_text(topology_yaml(gpus, k))
            cmd = [sys.executable, "-m", "netsim.cli", "run", str(topo), "--model", "405B", "--tp", str(TP),
                   "--pp", str(PP), "--mbs", "1", "--gbs", str(MICROBATCHES * dp), "--json"]  # fmt: skip
            full = None
            for n in [dp, *(f for f in FOLDS if f < dp)]:
                wall, rss, out = measure([*cmd, "--dp-replicas", str(n)])
                total = json.loads(out)["total_us"]
                full = full or total
                print(f"{gpus:7d} {f'{n} of {dp}':>12s} {wall:7.2f} {rss:9.0f} {total / 1e3:13.1f} "
                      f"{(total / full - 1) * 100:+8.2f}%", flush=True)  # fmt: skip


if __name__ == "__main__":
    import os

    os.chdir(ROOT)
    main()
