"""`netsim study dlrm`: the SC'24 DLRM paper's speed-up table, from simulated all-to-alls.

For each lossless encoder of the paper (calibration/compression/dlrm-*.yaml: its ratio and GPU
throughputs) and each link bandwidth B, the embedding all-to-all of 8 GPUs (one per server, on
`fat_tree_512` by default, sprayed so the fabric adds no collisions) runs on the flow model with
and without the codec; speed-up = plain / compressed time. Beside it, the paper's formula
1 / (1/CR + B (1/Tc + 1/Td)) and its break-even bandwidth (1 - 1/CR) / (1/Tc + 1/Td), which the
study confirms by bisecting the simulated speed-up to 1 (reference/peers.md section 4).
The ratios and throughputs are the paper's measurements (a labelled scenario, not netsim's).

Then the lossy stage in front of each encoder (network/lossy.py): the paper's table-wise bounds
(training scripts: tighten 0.01, base 0.03, loosen 0.05 on its Criteo TB table lists) under its
step schedule (x2 for the first 65,536 iterations), int8/int16 codes, quantisation and
dequantisation as memory-bound kernels of the cluster's GPU, and the encoders' ratios taken as
measured at the benchmark's base bound 0.02 (an assumption: the repository does not say); and the
end-to-end DLRM iteration on a cluster with each encoder, against the same iteration in fp32.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from netsim.collectives.bench import bench_collective
from netsim.config.compression import BoundSchedule, CompressionProfile, Lossy, TableBounds, load_profile
from netsim.network.compression import NicCodec, load_codec
from netsim.network.lossy import bound_multiplier, table_bounds, wire_ratio
from netsim.network.topology import Topology
from netsim.workload.compute import GpuCompute
from netsim.workload.dlrm import EMBEDDING

ENCODERS = ("dlrm-ans", "dlrm-huffman", "dlrm-lz4", "dlrm-gpulz")
BANDWIDTHS_GBPS = (0.5, 12.5, 25.0)  # the paper's rows (GB/s)
SIZE = 2**30  # bytes each rank contributes to the all-to-all
RANKS = 8
# reference/peers.md section 4: Criteo TB's tightened and loosened tables, the training scripts'
# bounds, the benchmark's base bound (where the encoders' ratios are taken as measured).
PAPER_TABLES = TableBounds(count=26, tighten=0.01, loosen=0.05, tighten_tables=[0, 9, 10, 19, 20, 21, 22],
                           loosen_tables=[5, 8, 12, 15, 16, 17, 18, 24, 25])  # fmt: skip
BASE_BOUND, REFERENCE_BOUND = 0.03, 0.02
ITERATIONS = (0, 16_384, 32_768, 49_152, 65_536)


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
    plain = bench_collective(t, "alltoall", ranks, SIZE, spray=True, traffic=EMBEDDING)["time_us"]
    packed = bench_collective(t, "alltoall", ranks, SIZE, spray=True, compression=codec, traffic=EMBEDDING)
    return plain / packed["time_us"]


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


# ---- the lossy stage and the end-to-end iteration ------------------------------------------------


def lossy_profile(encoder: str, gpu: GpuCompute, iteration: int) -> CompressionProfile:
    """`encoder`'s profile behind the paper's lossy stage at `iteration`: fp32 in, int8/int16 codes;
    quantising reads 4 B and writes a code per value (dequantising the reverse), memory-bound on `gpu`."""
    base = load_profile(encoder)
    per_value = 4 + 1  # bytes moved per fp32 value with int8 codes
    q = f"{4 / gpu.stream_s(per_value) / 1e9:.6g} GB/s"  # source bytes per second
    stage = Lossy(bits="auto", source_bits=32, error_bound=BASE_BOUND, reference_error_bound=REFERENCE_BOUND,
                  tables=PAPER_TABLES, schedule=BoundSchedule(), iteration=iteration, quantize_throughput=q,
                  dequantize_throughput=q)  # fmt: skip
    return base.model_copy(update={"name": f"{base.name}+lossy@{iteration}", "lossy": stage})


@dataclass
class ScheduleRow:
    encoder: str
    iteration: int
    multiplier: float  # iteration-wise bound multiplier
    mean_bound: float  # over the tables
    wire_ratio: float  # wire bytes / fp32 bytes


def schedule_rows(gpu: GpuCompute, encoders=ENCODERS, iterations=ITERATIONS) -> list[ScheduleRow]:
    rows = []
    for enc in encoders:
        for it in iterations:
            p = lossy_profile(enc, gpu, it)
            bounds = table_bounds(p.lossy, it, PAPER_TABLES.count)
            r = wire_ratio(p.lossy, p.ratios.of(EMBEDDING), it)
            rows.append(ScheduleRow(enc, it, bound_multiplier(p.lossy, it), sum(bounds) / len(bounds), r))
    return rows


@dataclass
class EndToEndRow:
    encoder: str  # "none": the fp32 baseline
    bandwidth_GBps: float
    wire_ratio: float
    total_us: float
    exposed_ep_us: float
    speedup: float  # baseline total / this total


def end_to_end(topology: str, gpu: GpuCompute, bandwidths, encoders=ENCODERS, iteration: int = ITERATIONS[-1],
               model: str = "dlrm-criteo-tb") -> list[EndToEndRow]:  # fmt: skip
    """The DLRM iteration on `topology` (flow backend) at each NIC bandwidth, in fp32 and with each
    encoder behind the lossy stage at `iteration`."""
    from netsim.simulate import RunSpec, run

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for enc in encoders:
            p = lossy_profile(enc, gpu, iteration)
            files[enc] = Path(tmp) / f"{enc}.yaml"
            files[enc].write_text(yaml.safe_dump(p.model_dump(mode="json", exclude_none=True), sort_keys=False))
        for b in bandwidths:
            base = None
            for enc in ("none", *encoders):
                spec = {"topology": topology, "model": model, "bandwidth": f"{b:g} GB/s", "backend": "flow"}
                if enc != "none":
                    spec["compression"] = str(files[enc])
                d = run(RunSpec.parse(spec, where="study dlrm"), detail=False).to_dict()
                base = base or d["total_us"]
                ratio = 1.0 if enc == "none" else load_codec(str(files[enc])).ratio(EMBEDDING)
                rows.append(EndToEndRow(enc, b, ratio, d["total_us"], d["exposed_ep_us"], base / d["total_us"]))
    return rows
