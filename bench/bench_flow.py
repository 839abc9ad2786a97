"""Flow-backend speed and memory: one training iteration per case, each in a fresh process.

Targets (issue #18, medians on 2 cores, whole process): GPT-175B on fat_tree_512 and on
hgx_h100_512 within 1 s each; Llama-3 405B on 16,384 GPUs within 5 s. Run: python bench/bench_flow.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _proc import measure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CASES = [
    ("GPT-175B, 512 GPUs, hgx_h100_512", ["topologies/hgx_h100_512.yaml", "--model", "175B"]),
    ("GPT-175B, 512 GPUs, fat_tree_512", ["topologies/fat_tree_512.yaml", "--model", "175B"]),
    ("Llama-3 405B, 512 GPUs, hgx_h100_512", ["topologies/hgx_h100_512.yaml", "--model", "405B"]),
    ("Mixtral 8x7B (EP8), 512 GPUs, hgx_h100_512", ["topologies/hgx_h100_512.yaml", "--model", "mixtral-8x7b"]),
    (
        "Llama-3 405B, 16,384 GPUs, fat-tree k=48 (gbs 2048)",
        ["bench/fat_tree_16384.yaml", "--model", "405B", "--gbs", "2048"],
    ),
    (
        "Llama-3 405B, 102,400 GPUs, fat-tree k=80 (gbs 12800)",
        ["bench/fat_tree_102400.yaml", "--model", "405B", "--gbs", "12800"],
    ),
]


def main() -> None:
    print(f"{'case':55s} {'wall s':>8s} {'peak MiB':>9s} {'iteration ms':>13s} {'flows':>9s}")
    for name, args in CASES:
        cmd = [sys.executable, "-m", "netsim.cli", "run", *args, "--json"]
        wall, rss, out = measure(cmd + [])
        d = json.loads(out)
        print(f"{name:55s} {wall:8.2f} {rss:9.0f} {d['total_us'] / 1e3:13.1f} {d.get('flows', 0):9d}", flush=True)


if __name__ == "__main__":
    import os

    os.chdir(ROOT)
    main()
