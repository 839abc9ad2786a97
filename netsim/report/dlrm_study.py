"""`netsim study dlrm`: the SC'24 DLRM paper's speed-up table, from simulated all-to-alls.

For each lossless encoder of the paper (calibration/compression/dlrm-*.yaml: its ratio and GPU
throughputs) and each link bandwidth B, the embedding all-to-all of 8 GPUs (one per server, on
`fat_tree_512` by default, sprayed so the fabric adds no collisions) runs on the flow model with
and without the codec; speed-up = plain / compressed time. Beside it, the paper's formula
1 / (1/CR + B (1/Tc + 1/Td)) and its break-even bandwidth (1 - 1/CR) / (1/Tc + 1/Td), which the
study confirms by bisecting the simulated speed-up to 1 (reference/peers.md section 4).
The ratios and throughputs are the paper's measurements (a labelled scenario, not netsim's).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from netsim.collectives.bench import bench_collective
from netsim.network.compression import NicCodec, load_codec
from netsim.network.topology import Topology

ENCODERS = ("dlrm-ans", "dlrm-huffman", "dlrm-lz4", "dlrm-gpulz")
BANDWIDTHS_GBPS = (0.5, 12.5, 25.0)  # the paper's rows (GB/s)
SIZE = 2**30  # bytes each rank contributes to the all-to-all
RANKS = 8


@dataclass
class DlrmRow:
    encoder: str
    ratio: float  # compressed / original (1 / CR)
    compress_GBps: float
    decompress_GBps: float
    bandwidth_GBps: float
    speedup: float  # simulated
    speedup_formula: float
    breakeven_GBps: float  # simulated (bisection)
    breakeven_formula_GBps: float


def formula_speedup(ratio: float, tc: float, td: float, b: float) -> float:
    return 1.0 / (ratio + b * (1 / tc + 1 / td))


def formula_breakeven(ratio: float, tc: float, td: float) -> float:
    return (1 - ratio) / (1 / tc + 1 / td)


def simulated_speedup(topo: Topology, codec: NicCodec, b_GBps: float) -> float:
    t = topo.with_nic_bandwidth(b_GBps * 1e9)
    ranks = list(range(RANKS))
    plain = bench_collective(t, "alltoall", ranks, SIZE, spray=True)["time_us"]
    return plain / bench_collective(t, "alltoall", ranks, SIZE, spray=True, compression=codec)["time_us"]


def simulated_breakeven(topo: Topology, codec: NicCodec, lo: float = 0.01, hi: float = 10_000.0) -> float:
    """The bandwidth (GB/s) where the simulated speed-up crosses 1 (geometric bisection)."""
    if simulated_speedup(topo, codec, lo) <= 1.0:
        return lo
    for _ in range(40):
        mid = (lo * hi) ** 0.5
        if simulated_speedup(topo, codec, mid) > 1.0:
            lo = mid
        else:
            hi = mid
        if hi / lo < 1.001:
            break
    return (lo * hi) ** 0.5


def study(topo: Topology, encoders=ENCODERS, bandwidths=BANDWIDTHS_GBPS) -> list[DlrmRow]:
    rows = []
    for name in encoders:
        codec = load_codec(name)
        r = codec.ratio("default")
        tc, td = codec.p.compress_throughput / 1e9, codec.p.decompress_throughput / 1e9
        be = simulated_breakeven(topo, codec)
        for b in bandwidths:
            rows.append(DlrmRow(name, r, tc, td, b, simulated_speedup(topo, codec, b), formula_speedup(r, tc, td, b),
                                be, formula_breakeven(r, tc, td)))  # fmt: skip
    return rows


def to_dicts(rows: list[DlrmRow]) -> list[dict]:
    return [asdict(r) for r in rows]


def plot_speedups(topo: Topology, output, encoders=ENCODERS, bandwidths=(0.25, 0.5, 1, 2, 4, 8, 12.5, 25, 50, 100)):
    """Speed-up over link bandwidth per encoder: simulated all-to-alls (markers) on the paper's
    formula (lines), with each encoder's simulated break-even marked where it is in range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = study(topo, encoders, tuple(bandwidths))
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for enc in encoders:
        sub = [r for r in rows if r.encoder == enc]
        line = ax.plot([r.bandwidth_GBps for r in sub], [r.speedup_formula for r in sub], lw=1.2,
                       label=f"{enc.removeprefix('dlrm-')} (ratio {sub[0].ratio:.2f})")[0]  # fmt: skip
        ax.plot([r.bandwidth_GBps for r in sub], [r.speedup for r in sub], "o", color=line.get_color(), ms=4)
        be = sub[0].breakeven_GBps
        if bandwidths[0] <= be <= bandwidths[-1]:
            ax.axvline(be, color=line.get_color(), ls=":", lw=0.8)
    ax.axhline(1, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("link bandwidth per GPU (GB/s)")
    ax.set_ylabel("all-to-all speed-up with the encoder")
    ax.set_title("DLRM embedding all-to-all (8 GPUs): simulated (dots) vs the paper's formula; dotted: break-even",
                 fontsize=8)  # fmt: skip
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    plt.close(fig)
