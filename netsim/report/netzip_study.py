"""The NetZIP study's table and figures from a sweep's results.

Fig. 3/4 of NetZIP: the share of an iteration spent in exposed communication, per model and NIC
rate, without compression. Fig. 13: training-time reduction 1 - T(stage) / T(none) per model,
rate and stage. Reference claims (reference/netzip.md section 3): in-NIC NetZIP up to 35%
shorter training; software codecs on CPU/GPU/SmartNIC make communication slower.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

MODEL_ORDER = ["7B", "13B", "22B", "70B", "175B", "405B"]
# Which ratios a stage's result rests on: netsim's own measurements, or a paper's claim.
SCENARIO = {"netzip-in-nic": "NetZIP's reported ratios (scenario)"}
MEASURED = "measured ratios"
LABELS = {
    "netzip-measured": "NetZIP engine, measured ratios",
    "netzip-in-nic": "NetZIP engine, NetZIP's ratios (scenario)",
}


def tidy(df: pd.DataFrame) -> pd.DataFrame:
    df = df[df["status"] == "ok"].copy()
    # One column per quantity: the run's own numeric rate and topology name, not copies of them.
    df = df.rename(columns={"topology_name": "network"})
    df["comm_share"] = df["exposed_comm_us"] / df["total_us"]
    df["ratios_from"] = [SCENARIO.get(c, MEASURED) if c != "none" else "" for c in df["compression"]]
    base = df[df["compression"] == "none"].set_index(["network", "model", "nic_bandwidth_gbps"])["total_us"]
    df["reduction"] = [
        1 - t / base.get((n, m, g), float("nan"))
        for n, m, g, t in zip(df["network"], df["model"], df["nic_bandwidth_gbps"], df["total_us"])
    ]
    return df


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """Training-time reduction per stage: best and worst case over models and rates, per network."""
    comp = df[df["compression"] != "none"]
    out = comp.groupby(["network", "compression"])["reduction"].agg(["min", "max"]).reset_index()
    best = comp.loc[
        comp.groupby(["network", "compression"])["reduction"].idxmax(),
        ["network", "compression", "model", "nic_bandwidth_gbps"],
    ]
    out = out.merge(best, on=["network", "compression"])
    out["ratios_from"] = [SCENARIO.get(c, MEASURED) for c in out["compression"]]
    out = out.rename(
        columns={
            "min": "worst_reduction",
            "max": "best_reduction",
            "model": "best_model",
            "nic_bandwidth_gbps": "best_nic_bandwidth_gbps",
        }
    )
    return out.sort_values(["ratios_from", "network", "compression"], key=lambda s: s.map(_scenario_first))


def _scenario_first(v):
    return (0 if v == MEASURED else 1) if isinstance(v, str) and v in (MEASURED, *SCENARIO.values()) else v


def _models(df):
    return [m for m in MODEL_ORDER if m in set(df["model"])] + sorted(set(df["model"]) - set(MODEL_ORDER))


def plot_comm_share(df: pd.DataFrame, output: str | Path) -> None:
    d = df[df["compression"] == "none"]
    nets = sorted(d["network"].unique())
    fig, axes = plt.subplots(1, len(nets), figsize=(5 * len(nets), 3.8), squeeze=False, sharey=True)
    for ax, net in zip(axes[0], nets):
        sub = d[d["network"] == net]
        models = _models(sub)
        rates = sorted(sub["nic_bandwidth_gbps"].unique())
        width = 0.8 / len(rates)
        for j, g in enumerate(rates):
            vals = [sub[(sub.model == m) & (sub.nic_bandwidth_gbps == g)]["comm_share"].mean() * 100 for m in models]
            ax.bar([i + j * width for i in range(len(models))], vals, width, label=f"{g:g} Gbps")
        ax.set_xticks([i + width * (len(rates) - 1) / 2 for i in range(len(models))], models)
        ax.set_title(net)
        ax.set_ylabel("exposed communication, % of iteration")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Communication share without compression (cf. NetZIP Fig. 3/4)", fontsize=10)
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    plt.close(fig)


def plot_reduction(df: pd.DataFrame, output: str | Path) -> None:
    d = df[df["compression"] != "none"]
    nets = sorted(d["network"].unique())
    models = _models(d)
    fig, axes = plt.subplots(
        len(nets), len(models), figsize=(3.4 * len(models), 3.2 * len(nets)), squeeze=False, sharey=True
    )
    for r, net in enumerate(nets):
        for c, m in enumerate(models):
            ax = axes[r][c]
            sub = d[(d.network == net) & (d.model == m)]
            for codec, g in sub.groupby("compression"):
                g = g.sort_values("nic_bandwidth_gbps")
                ax.plot(g["nic_bandwidth_gbps"], 1 - g["reduction"], marker="o", label=LABELS.get(codec, codec),
                        ls="--" if codec in SCENARIO else "-")  # fmt: skip
            ax.axhline(1, color="k", lw=0.8)
            ax.axhline(0.65, color="grey", ls=":", lw=0.8)
            ax.set_yscale("log")
            ticks = [0.3, 0.5, 0.7, 1, 2, 5, 10, 20]
            ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
            ax.minorticks_off()
            rates = sorted(sub["nic_bandwidth_gbps"].unique())
            ax.set_xscale("log", base=2)
            ax.set_xticks(rates, [f"{v:g}" for v in rates])
            ax.set_title(f"{m} on {net}", fontsize=9)
            ax.set_xlabel("NIC bandwidth (Gbps)")
            if c == 0:
                ax.set_ylabel("training time / uncompressed")
            ax.grid(alpha=0.3, which="both")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(
        "Normalised training time by compression stage (cf. NetZIP Fig. 13; dotted: NetZIP's best, -35%)", fontsize=10
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(output, dpi=110)
    plt.close(fig)
