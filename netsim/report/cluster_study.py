"""Beyond LIBRA: a real cluster's scale-out knobs optimised on the flow simulator.

NICs per server x NIC speed x leaf oversubscription on a 64 x 8-GPU HGX-like, rail-optimized fabric
(32 servers per rail leaf, 32 spines; the leaf uplinks shrink with the oversubscription), one flow
run per point. Cost uses LIBRA's Pod row (calibration/network_cost/libra.json, $ per GB/s): each
server's NIC bandwidth pays NIC + link + leaf switch port, and the leaf uplinks (NIC bandwidth /
oversubscription) pay link + switch port. Performance is 1 / iteration time; perf per dollar is
normalised to the shipped hgx_h100_512 point (8 x 400 Gbps, 1:1).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from netsim.network.cost import load_cost_table  # noqa: E402

SERVERS, GPUS = 64, 8
KNOBS = {"nics": (1, 2, 4, 8), "gbps": (100, 200, 400), "oversubscription": (1, 2, 4)}


def topology_yaml(nics: int, gbps: int, over: int) -> str:
    up = gbps / over  # 32 servers per leaf and 32 spines: uplinks per leaf = 32 x up
    return (
        f"name: hgx_{nics}x{gbps}g_{over}to1\ngpu: H100\nservers: {SERVERS}\ngpus_per_server: {GPUS}\n"
        f'nvlink: {{bandwidth: "450 GB/s", latency: "25 ns"}}\nnic: {{count: {nics}, bandwidth: "{gbps} Gbps"}}\n'
        f'fabric: {{kind: rail_optimized, servers_per_leaf: 32, spines: 32, uplink_bandwidth: "{up:g} Gbps", '
        f'latency: "500 ns"}}\n'
    )


def write_topologies(out: Path) -> pd.DataFrame:
    """One topology file per knob setting; the table of knobs and network cost."""
    (out / "topologies").mkdir(parents=True, exist_ok=True)
    pod = load_cost_table()["pod"]
    rows = []
    for nics, gbps, over in itertools.product(*KNOBS.values()):
        f = out / "topologies" / f"hgx_{nics}x{gbps}g_{over}to1.yaml"
        f.write_text(topology_yaml(nics, gbps, over))
        down = nics * gbps / 8  # GB/s of NIC bandwidth per server
        per_server = down * (pod["nic"] + pod["link"] + pod["switch"]) + down / over * (pod["link"] + pod["switch"])
        rows.append({"topology": str(f), "nics": nics, "gbps": gbps, "oversubscription": over,
                     "nic_GBps_per_gpu": down / GPUS, "network_cost_usd": per_server * SERVERS})  # fmt: skip
    return pd.DataFrame(rows)


def finish(knobs: pd.DataFrame, results: pd.DataFrame, server_cost: float = 0.0) -> pd.DataFrame:
    """Join the runs; perf per $ counts the network, plus `server_cost` per 8-GPU server if given
    (LIBRA's metric is the network alone; a cluster buyer's includes the servers)."""
    df = knobs.merge(results[["topology", "status", "total_us", "exposed_comm_us"]], on="topology")
    df["cost_usd"] = df.network_cost_usd + server_cost * SERVERS
    df["perf_per_musd"] = 1.0 / (df.total_us * 1e-6) / (df.cost_usd / 1e6)
    base = df[(df.nics == 8) & (df.gbps == 400) & (df.oversubscription == 1)].perf_per_musd
    df["perf_per_cost_vs_hgx"] = df.perf_per_musd / (float(base.iloc[0]) if len(base) else 1.0)
    return df.sort_values(["oversubscription", "nic_GBps_per_gpu", "nics"])


def write_figure(df: pd.DataFrame, model: str, out: Path, cost_label: str = "network $") -> str:
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4))
    for over, sub in df.groupby("oversubscription"):
        sub = sub.groupby("nic_GBps_per_gpu", as_index=False).agg({"total_us": "min", "perf_per_cost_vs_hgx": "max"})
        axes[0].plot(sub.nic_GBps_per_gpu, sub.total_us / 1e6, marker="o", label=f"{over}:1 leaf")
        axes[1].plot(sub.nic_GBps_per_gpu, sub.perf_per_cost_vs_hgx, marker="o", label=f"{over}:1 leaf")
    ticks = sorted(df.nic_GBps_per_gpu.unique())
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_xlabel("scale-out bandwidth per GPU (GB/s)")
        ax.legend(fontsize=8)
    axes[0].set_ylabel(f"{model} iteration time (s)")
    axes[1].set_ylabel(f"perf per {cost_label} (vs 8 x 400 Gbps, 1:1)")
    fig.suptitle(f"{model} on 512 H100 (64 x 8, rail-optimized): NICs x speed x oversubscription")
    fig.tight_layout()
    fig.savefig(out / "cluster_knobs.png", dpi=130)
    plt.close(fig)
    return "cluster_knobs.png"
