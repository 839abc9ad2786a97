"""LIBRA's Fig 12-14 as a study: for 2D/3D/4D networks and the 17B/175B/1T workloads, the equal,
Perf-optimal and PerfPerCost-optimal splits at every budget from 100 to 1000 GB/s per NPU:
communication speed-up over 2D EqualBW at the same budget (Fig 12), network cost (Fig 13) and
performance per cost normalised to 2D EqualBW at 100 GB/s (Fig 14). Closed forms only."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from netsim.network.cost import dim_cost_per_GBps, load_cost_table  # noqa: E402
from netsim.network.topology import Topology  # noqa: E402
from netsim.optimize.bandwidth import BandwidthProblem  # noqa: E402
from netsim.system.libra import loop_model  # noqa: E402
from netsim.workload.program import LayerProgram  # noqa: E402

SPLITS = ("EqualBW", "PerfOptBW", "PerfPerCostOptBW")


def study_rows(networks: dict[str, Topology], programs: dict[str, LayerProgram], budgets, loop: str) -> pd.DataFrame:
    table = load_cost_table()
    rows = []
    for net, topo in networks.items():
        sizes, cost = [d[1] for d in topo.dims], dim_cost_per_GBps(topo, table)
        for wl, prog in programs.items():
            model = loop_model(prog, sizes, loop)
            for B in budgets:
                p = BandwidthProblem(model, float(B), cost)
                for name, s in zip(SPLITS, (p.split(p.equal), p.solve("perf"), p.solve("perf-per-cost"))):
                    rows.append({"network": net, "workload": wl, "budget_GBps": B, "split": name,
                                 "comm_ns": s.comm_ns, "time_ns": s.time_ns, "cost_usd": s.cost_per_npu * topo.num_gpus,
                                 "split_pct": "/".join(f"{x:.2f}" for x in s.pct)})  # fmt: skip
    df = pd.DataFrame(rows)
    base = df[(df.network == "2D") & (df.split == "EqualBW")].set_index(["workload", "budget_GBps"])
    df["speedup_vs_2d_equal"] = [base.comm_ns[(w, b)] / c for w, b, c in zip(df.workload, df.budget_GBps, df.comm_ns)]
    first = base.xs(min(budgets), level="budget_GBps")
    df["perf_per_cost_vs_2d_equal_100"] = [
        (first.comm_ns[w] / c) / (u / first.cost_usd[w]) for w, c, u in zip(df.workload, df.comm_ns, df.cost_usd)
    ]
    return df


def write_figures(df: pd.DataFrame, out: Path) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for col, ylabel, fname, log in (
        ("speedup_vs_2d_equal", "comm speed-up vs 2D EqualBW", "libra_speedup.png", False),
        ("cost_usd", "network cost ($)", "libra_cost.png", True),
        ("perf_per_cost_vs_2d_equal_100", "perf / cost vs 2D EqualBW @100", "libra_perf_per_cost.png", True),
    ):
        nets, wls = sorted(df.network.unique()), list(dict.fromkeys(df.workload))
        fig, axes = plt.subplots(
            len(nets), len(wls), figsize=(3.6 * len(wls), 2.8 * len(nets)), sharex=True, squeeze=False
        )
        for i, net in enumerate(nets):
            for j, wl in enumerate(wls):
                ax = axes[i][j]
                for split in SPLITS:
                    sub = df[(df.network == net) & (df.workload == wl) & (df.split == split)]
                    ax.plot(sub.budget_GBps, sub[col], marker="o", ms=3, label=split)
                if log:
                    ax.set_yscale("log")
                ax.set_title(f"{net}, {wl}", fontsize=9)
                if i == len(nets) - 1:
                    ax.set_xlabel("BW per NPU (GB/s)")
                if j == 0:
                    ax.set_ylabel(ylabel, fontsize=8)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", ncol=len(SPLITS), fontsize=8)
        fig.tight_layout(rect=(0, 0, 1, 0.96))
        fig.savefig(out / fname, dpi=120)
        plt.close(fig)
        names.append(fname)
    return names


def headline(df: pd.DataFrame, budget: float) -> pd.DataFrame:
    """Perf-optimal splits and speed-ups over the same network's equal split at one budget."""
    at = df[df.budget_GBps == budget]
    eq = at[at.split == "EqualBW"].set_index(["network", "workload"]).comm_ns
    opt = at[at.split == "PerfOptBW"].set_index(["network", "workload"])
    return pd.DataFrame({"split_pct": opt.split_pct, "comm_speedup_vs_equal": eq / opt.comm_ns,
                         "cost_usd": opt.cost_usd}).reset_index()  # fmt: skip
