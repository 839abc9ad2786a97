"""How fast must NetZIP's engine ingest? The NetZIP study's iteration times over the in-NIC engine's
rate, with the ratios netsim measured.

The engine's rate is the one hardware number the paper does not publish (reference/netzip.md
section 4): its FPGA runs at 300 MHz and its ASIC projection at 1 GHz, and at the 64 B/cycle
datapath reference/codec_calibration.md section 2 assumes those give 19.2 and 64 GB/s. At 400 Gbps
(50 GB/s) a 64 GB/s engine caps the wire speed-up at 64/50 = 1.28x whatever the ratio, so the
sweep shows where the engine, not the ratio, decides the answer.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from netsim.config.compression import load_profile  # noqa: E402
from netsim.report.plots import natural_key  # noqa: E402
from netsim.sweep.grid import Point  # noqa: E402

# NetZIP's engine at its FPGA's and its ASIC's clock: GB/s, read from their profiles.
HARDWARE = {name: load_profile(name).compress_throughput / 1e9 for name in ("netzip-fpga", "netzip-asic")}


def engine_profiles(base: str, rates: tuple[float, ...], out: Path) -> dict[float, Path]:
    """One profile file per ingest rate: `base` (a profile name or file, its ratios resolved) with
    its compress and decompress throughput set to the rate."""
    p = load_profile(base)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for r in rates:
        d = p.model_dump(mode="json")
        d.update(name=f"{p.name}@{r:g}GBps", compress_throughput=f"{r:g} GB/s", decompress_throughput=f"{r:g} GB/s")
        f = out / f"engine-{r:g}GBps.yaml"
        f.write_text(yaml.safe_dump(d, sort_keys=False))
        files[r] = f
    return files


def engine_points(topology: str, models: list[str], bandwidths: list[str], profiles: dict[float, Path]) -> list[Point]:
    """Every model x NIC rate uncompressed, then with each engine rate (flow backend)."""
    rows = []
    for m in models:
        for bw in bandwidths:
            base = {"topology": topology, "model": m, "bandwidth": bw, "backend": "flow"}
            rows.append({**base, "compression": "none"})
            rows += [{**base, "compression": str(f)} for f in profiles.values()]
    return [Point(index=i, params=r) for i, r in enumerate(rows)]


def tidy(df: pd.DataFrame, profiles: dict[float, Path]) -> pd.DataFrame:
    """Results with the engine rate as a number and the iteration time relative to no compression."""
    rate_of = {str(f): r for r, f in profiles.items()}
    df = df[df["status"] == "ok"].copy()
    df["engine_GBps"] = df["compression"].map(lambda c: rate_of.get(str(c), float("nan")))
    base = df[df["compression"] == "none"].set_index(["model", "nic_bandwidth_gbps"])["total_us"]
    df["time_vs_uncompressed"] = [
        t / base[(m, g)] for m, g, t in zip(df["model"], df["nic_bandwidth_gbps"], df["total_us"])
    ]
    return df[df["compression"] != "none"].sort_values(["model", "nic_bandwidth_gbps", "engine_GBps"])


def plot_engine(df: pd.DataFrame, output: Path) -> None:
    """Iteration time / uncompressed over the engine rate, one line per model and NIC rate, with the
    FPGA and ASIC rates marked."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for (m, g), sub in sorted(df.groupby(["model", "nic_bandwidth_gbps"]), key=lambda kv: natural_key(kv[0][0])):
        ax.plot(sub["engine_GBps"], sub["time_vs_uncompressed"], marker="o", label=f"{m}, {g:g} Gbps")
    for name, r in HARDWARE.items():
        ax.axvline(r, color="grey", ls=":", lw=0.9)
        ax.text(r, 0.98, f" {name.removeprefix('netzip-').upper()} {r:g}", rotation=90, va="top", ha="right",
                fontsize=7, color="grey", transform=ax.get_xaxis_transform())  # fmt: skip
    ax.axhline(1, color="k", lw=0.8)
    ax.set_xscale("log", base=2)
    rates = [r for r in sorted(df["engine_GBps"].unique()) if r not in HARDWARE.values()]
    ax.set_xticks(rates, [f"{v:g}" for v in rates])
    ax.minorticks_off()
    ax.set_xlabel("engine ingest rate per direction (GB/s)")
    ax.set_ylabel("iteration time / uncompressed")
    ax.set_title("NetZIP engine rate, measured ratios (netzip-measured)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    plt.close(fig)


def knee(df: pd.DataFrame, within: float = 0.01) -> pd.DataFrame:
    """Per model and NIC rate: the slowest engine rate whose iteration is within `within` of the
    fastest engine's, i.e. the rate past which a faster engine stops paying."""
    out = []
    for (m, g), sub in df.groupby(["model", "nic_bandwidth_gbps"]):
        best = sub["time_vs_uncompressed"].min()
        ok = sub[sub["time_vs_uncompressed"] <= best * (1 + within)]
        at = {name: float(sub.loc[sub["engine_GBps"].sub(r).abs().idxmin(), "time_vs_uncompressed"])
              for name, r in HARDWARE.items() if (sub["engine_GBps"] - r).abs().min() < 1e-9}  # fmt: skip
        out.append({"model": m, "nic_bandwidth_gbps": g, "line_rate_GBps": g / 8, "best_time_vs_uncompressed": best,
                    "enough_GBps": float(ok["engine_GBps"].min()),
                    **{f"time_vs_uncompressed_{k.removeprefix('netzip-')}": v for k, v in at.items()}})  # fmt: skip
    key = [natural_key(m) for m in (r["model"] for r in out)]
    return pd.DataFrame([r for _k, r in sorted(zip(key, out), key=lambda kv: (kv[0], kv[1]["nic_bandwidth_gbps"]))])
