"""The GEMINI study: recovery probability, checkpoint-time reduction and effective training time,
as GEMINI's Fig 9, 11 and 14 (closed forms in system/failures.py, with a Monte Carlo check)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from netsim.system.failures import (  # noqa: E402
    SCHEMES,
    checkpoint_time_reduction,
    recovery_probability,
    recovery_probability_mc,
)


def recovery_table(ns=range(16, 128), ks=(2, 3, 4), m: int = 2, mc_trials: int = 0) -> pd.DataFrame:
    rows = []
    for n in ns:
        for k in ks:
            for placement in ("group", "ring"):
                row = {"instances": n, "failed": k, "placement": placement, "m": m,
                       "recovery_probability": recovery_probability(n, m, k, placement)}  # fmt: skip
                if mc_trials:
                    row["monte_carlo"] = recovery_probability_mc(n, m, k, placement, trials=mc_trials)
                rows.append(row)
    return pd.DataFrame(rows)


def reduction_table(ns=range(4, 17), gbps=(100, 200, 400), m: int = 2, storage_gbps: float = 20.0) -> pd.DataFrame:
    return pd.DataFrame(
        [{"instances": n, "instance_gbps": b, "reduction": checkpoint_time_reduction(b, n, m, storage_gbps)}
         for n in ns for b in gbps]
    )  # fmt: skip


def ratio_table(failure_rate: float, instances=range(200, 1001, 100), per_day=range(1, 9)) -> pd.DataFrame:
    rows = [{"axis": "failures_per_day", "x": f, "scheme": s.name, "ratio": s.effective_ratio(f)}
            for f in per_day for s in SCHEMES]  # fmt: skip
    rows += [{"axis": "instances", "x": n, "scheme": s.name, "ratio": s.effective_ratio(n * failure_rate)}
             for n in instances for s in SCHEMES]  # fmt: skip
    return pd.DataFrame(rows)


def write_figures(
    rec: pd.DataFrame, red: pd.DataFrame, ratio: pd.DataFrame, failure_rate: float, out: Path
) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    colors = dict(zip(sorted(rec["failed"].unique()), ("tab:blue", "tab:orange", "tab:green", "tab:red")))
    for (k, placement), sub in rec.groupby(["failed", "placement"]):
        ax.plot(sub["instances"], sub["recovery_probability"], ls="-" if placement == "group" else "--",
                color=colors.get(k), label=f"{placement}, {k} failed")  # fmt: skip
    ax.set(xlabel="instances N", ylabel="recovery probability (m = 2)", title="Recovery from CPU memory (Fig 9)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "recovery_probability.png", dpi=130)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for b, sub in red.groupby("instance_gbps"):
        ax.plot(sub["instances"], sub["reduction"], marker="o", label=f"{b} Gbps per instance")
    ax.set(xlabel="instances N", ylabel="checkpoint time reduction (x)", title="vs 20 Gbps remote storage (Fig 11)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "checkpoint_time_reduction.png", dpi=130)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, axis, label in ((axes[0], "failures_per_day", "failures per day"), (axes[1], "instances", "instances")):
        for name, sub in ratio[ratio["axis"] == axis].groupby("scheme", sort=False):
            ax.plot(sub["x"], sub["ratio"], marker="o", label=name)
        ax.set(xlabel=label, ylim=(0, 1.05))
    axes[0].set_ylabel("effective training-time ratio")
    axes[1].set_title(f"{failure_rate:.1%} failures per instance per day", fontsize=9)
    axes[0].legend(fontsize=8)
    fig.suptitle("Effective training time (Fig 14)")
    fig.tight_layout()
    fig.savefig(out / "effective_training_time.png", dpi=130)
    plt.close(fig)
    return ["recovery_probability.png", "checkpoint_time_reduction.png", "effective_training_time.png"]
