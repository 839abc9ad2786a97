"""Scaling table (issue #18): one Llama-3 405B iteration on fat-trees of 512 ... 131,072 GPUs.

Each row is a fresh process (`netsim run ... --json`), timed whole, with its peak RSS and the flow
backend's counts: flows started, max-min solves, network events (each ends flows and re-rates the
active ones) and the DP replicas simulated (above 4,096 GPUs the executor folds DP to 8 replicas).
Workload: TP8 PP16, one sequence per micro-batch, 16 micro-batches per DP replica (gbs = 16 dp),
as the issue's table. Fabrics: HGX-style servers (8 GPUs, 8 x 400 Gbps NICs) on non-blocking
3-tier k-ary fat-trees with as many pods as the GPUs need.

Run: python bench/bench_scale.py [--max-gpus N]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _proc import measure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# (GPUs, fat-tree k): hosts per pod = k^2 / 4, pods = ceil(GPUs / hosts per pod) <= k.
SIZES = [(512, 16), (4096, 32), (16_384, 48), (65_536, 64), (102_400, 80), (131_072, 96)]
TP, PP, MICROBATCHES = 8, 16, 16


def topology_yaml(gpus: int, k: int) -> str:
    servers = gpus // 8
    pods = math.ceil(gpus / (k * k // 4))
    return (
        f"name: fat_tree_{gpus}\n"
        f"description: {gpus} H100 GPUs ({servers} x 8) on a non-blocking k={k} fat-tree, {pods} pods\n"
        f"gpu: H100\nservers: {servers}\ngpus_per_server: 8\n"
        'nvlink: {bandwidth: "450 GB/s", latency: "25 ns"}\n'
        'nic: {count: 8, bandwidth: "400 Gbps"}\n'
        f'fabric: {{kind: fat_tree, k: {k}, pods: {pods}, link_bandwidth: "400 Gbps", latency: "500 ns"}}\n'
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-gpus", type=int, default=SIZES[-1][0], help="stop after this size")
    args = ap.parse_args()
    head = f"{'GPUs':>8s} {'k':>3s} {'wall s':>7s} {'peak MiB':>9s} {'flows':>9s} {'solves':>7s} {'events':>7s}"
    print(head + f" {'replicas':>8s} {'iteration ms':>13s}")
    with tempfile.TemporaryDirectory() as tmp:
        for gpus, k in SIZES:
            if gpus > args.max_gpus:
                break
            topo = Path(tmp) / f"fat_tree_{gpus}.yaml"
            topo.write_text(topology_yaml(gpus, k))
            gbs = MICROBATCHES * gpus // (TP * PP)
            cmd = [sys.executable, "-m", "netsim.cli", "run", str(topo), "--model", "405B", "--tp", str(TP),
                   "--pp", str(PP), "--mbs", "1", "--gbs", str(gbs), "--json"]  # fmt: skip
            wall, rss, out = measure(cmd)
            d = json.loads(out)
            print(
                f"{gpus:8d} {k:3d} {wall:7.2f} {rss:9.0f} {d['flows']:9d} {d['solves']:7d} {d['events']:7d} "
                f"{d['simulated_dp_replicas']:8d} {d['total_us'] / 1e3:13.1f}",
                flush=True,
            )


if __name__ == "__main__":
    import os

    os.chdir(ROOT)
    main()
