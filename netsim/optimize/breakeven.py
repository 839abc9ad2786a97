"""When does compressing what the network carries pay? Break-even answers for a workload and network.

From the cost model (network/compression.py; DLRM's speed-up formula, reference/peers.md section 4):
a software codec (not pipelined) sends a message of S bytes in S/Tc + r S/B + S/Td (+ latency and
copies) instead of S/B, so it pays iff r + B/Tc + B/Td < 1 (latency and copies add
(2l + 2kS/C) B/S). Rings pay their codec on every step's chunk: the break-even ratio of a collective is
r* = 1 - codec(op, n, S) B / (busfactor(op, n) S) (all-reduce 1 - B/(2Tc) - B/Td, reduce-scatter
1 - B/Tc - B/Td, all-gather 1 - B/((n-1) Tc) - B/Td). A pipelined engine (in-NIC) pays for any r < 1
while it ingests faster than the link (E > B), and never otherwise. So, per codec:
(a) the ratio below which it shortens a transfer, (b) the throughput it needs at a given ratio,
(c) the link bandwidth above which it stops paying, (d) per traffic class of the workload, its
collectives' break-even ratio and what compressing that class alone does to the iteration.
Boundaries are confirmed by simulating transfers on the flow model just either side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netsim.collectives.bench import bench_collective
from netsim.collectives.closed_form import bus_factor
from netsim.collectives.models import ClosedFormModel
from netsim.config.compression import CLASSES, CompressionProfile, Ratios
from netsim.network.compression import NicCodec
from netsim.network.topology import Topology
from netsim.system import timeline
from netsim.workload.program import StagedProgram

PLACEMENTS = ("gpu", "host-cpu", "in-nic")


@dataclass(frozen=True)
class Codec:
    """The parts of a profile the break-even closed forms need (bytes/s, seconds)."""

    tc: float
    td: float
    latency: float
    pipelined: bool

    @classmethod
    def of(cls, p: CompressionProfile) -> Codec:
        return cls(p.compress_throughput, p.decompress_throughput, p.latency, p.pipelined or p.placement == "in-nic")


def ratio_breakeven(c: Codec, bw: float, size: float = float("inf")) -> float:
    """(a) for one transfer of `size` bytes at link bandwidth `bw`: 1 - B/Tc - B/Td - 2 l B/S."""
    if c.pipelined:
        return 1.0 if min(c.tc, c.td) > bw else 0.0
    lat = 2 * c.latency * bw / size if np.isfinite(size) else 0.0
    return 1.0 - bw / c.tc - bw / c.td - lat


def throughput_breakeven(c: Codec, bw: float, ratio: float) -> float:
    """(b) compress throughput needed at `ratio` (the decompressor scaled alike): B (1/Tc + 1/Td) Tc / (1 - r)."""
    if ratio >= 1:
        return float("inf")
    if c.pipelined:
        return bw * c.tc / min(c.tc, c.td)  # an engine must ingest at the line rate
    return bw * (1 / c.tc + 1 / c.td) * c.tc / (1 - ratio)


def bandwidth_breakeven(c: Codec, ratio: float) -> float:
    """(c) link bandwidth (bytes/s) above which the codec stops paying: (1 - r) / (1/Tc + 1/Td)."""
    if c.pipelined:
        return min(c.tc, c.td) if ratio < 1 else 0.0
    return max(0.0, (1 - ratio) / (1 / c.tc + 1 / c.td))


def collective_ratio_breakeven(codec: NicCodec, op: str, n: int, size: float, bw: float) -> float:
    """Break-even ratio of one ring collective with the cost model's per-step codec work."""
    if codec.pipelined:
        return 1.0 if codec.engine_rate() > bw else 0.0
    return 1.0 - codec.collective_codec_s(op, n, size) * bw / (bus_factor(op, n) * size)


def with_codec(p: CompressionProfile, ratio: float | None = None, scale: float = 1.0, placement: str | None = None):
    """A copy of a profile with every class at `ratio`, throughputs scaled, or another placement."""
    upd: dict = {
        "compress_throughput": p.compress_throughput * scale,
        "decompress_throughput": p.decompress_throughput * scale,
    }
    if ratio is not None:
        upd["ratios"] = Ratios(**dict.fromkeys(CLASSES, ratio))
    if placement is not None:
        upd.update(placement=placement, pipelined=placement == "in-nic", copies_per_side=0)
    return p.model_copy(update=upd)


class IterationModel:
    """The closed-form (analytical) iteration of a staged program, with or without a codec."""

    def __init__(self, staged: StagedProgram, par, topo: Topology):
        self.staged, self.par, self.topo = staged, par, topo

    def total_us(self, profile: CompressionProfile | None = None, classes: list[str] | None = None) -> float:
        codec = None
        if profile is not None:
            if classes is not None:
                profile = profile.model_copy(update={"classes": classes})
            codec = NicCodec(profile)
        model = ClosedFormModel(self.topo, codec=codec)
        st, par = self.staged, self.par
        return timeline.simulate(st.unrolled, model, par.tp, par.dp, par.pp, rep=st.representative()).total_us


def confirm_transfer(
    topo: Topology, p: CompressionProfile, r_star: float, size: int = 2**28, eps: float = 0.02
) -> dict:
    """A send/recv across the fabric on the flow model at r* - eps and r* + eps: compression must win
    just below the break-even ratio and lose just above."""
    a, b = 0, topo.num_gpus - 1
    plain = bench_collective(topo, "sendrecv", [a, b], size)["time_us"]
    out = {"ratio_breakeven": r_star, "plain_us": plain}
    for label, r in (("below", r_star - eps), ("above", r_star + eps)):
        if 0 < r <= 1:
            out[f"{label}_us"] = bench_collective(
                topo, "sendrecv", [a, b], size, compression=NicCodec(with_codec(p, r))
            )["time_us"]
    out["confirmed"] = out.get("below_us", 0) < plain < out.get("above_us", float("inf"))
    return out


def confirm_engine(topo: Topology, p: CompressionProfile, bw: float, ratio: float, size: int = 2**28) -> dict:
    """A pipelined engine's boundary is its ingest rate: at 0.95 B it must lose, at 1.05 B win."""
    a, b = 0, topo.num_gpus - 1
    plain = bench_collective(topo, "sendrecv", [a, b], size)["time_us"]
    out = {"engine_breakeven_GBps": bw / 1e9, "plain_us": plain}
    for label, f in (("below", 0.95), ("above", 1.05)):
        q = with_codec(p, ratio, scale=f * bw / min(p.compress_throughput, p.decompress_throughput))
        out[f"engine_{label}_us"] = bench_collective(topo, "sendrecv", [a, b], size, compression=NicCodec(q))["time_us"]
    out["confirmed"] = out["engine_above_us"] < plain < out["engine_below_us"]
    return out


def per_class(
    staged: StagedProgram, par, topo: Topology, p: CompressionProfile, it: IterationModel, base: float
) -> dict:
    """(d) every traffic class the iteration sends across servers: its bytes, its largest
    collective's break-even ratio, the codec's ratio for it, and the iteration with only it compressed."""
    model = ClosedFormModel(topo)
    rep = staged.representative()
    groups = timeline.Groups.build(model, par.tp, par.dp, par.pp, stage=rep)
    codec = NicCodec(p)
    seen: dict[str, dict] = {}
    for x in staged.unrolled[rep].layers:
        for ph in (x.fwd, x.ig, x.wg):
            c, g = ph.collective, groups.for_kind(ph.group) if ph.collective else None
            if c is None or g is None or g.servers <= 1:
                continue
            e = seen.setdefault(c.traffic, {"bytes": 0, "largest": (0, None, None)})
            e["bytes"] += c.bytes
            if c.bytes > e["largest"][0]:
                e["largest"] = (c.bytes, c.op, g)
    out = {}
    for cls, e in sorted(seen.items()):
        size, op, g = e["largest"]
        r_star = collective_ratio_breakeven(codec, op, g.n, size, g.bandwidth)
        t = it.total_us(p, classes=[cls])
        out[cls] = {"bytes_per_iteration": e["bytes"], "largest_collective": op, "group_size": g.n,
                    "ratio_breakeven": r_star, "codec_ratio": codec.ratio(cls),
                    "worth_compressing": codec.ratio(cls) < r_star, "iteration_change_pct": 100 * (t / base - 1)}  # fmt: skip
    return out


def heat_map(it: IterationModel, p: CompressionProfile, base: float, placement: str, n: int = 10) -> dict:
    """Iteration-time change (%) over ratio x compress throughput for one placement."""
    ratios = np.linspace(0.1, 1.0, n)
    tputs = np.geomspace(10e9, 1e12, n)
    grid = np.zeros((n, n))
    for i, r in enumerate(ratios):
        for j, t in enumerate(tputs):
            q = with_codec(p, float(r), scale=t / p.compress_throughput, placement=placement)
            grid[i, j] = 100 * (it.total_us(q) / base - 1)
    return {"ratios": ratios.tolist(), "compress_GBps": (tputs / 1e9).tolist(), "change_pct": grid.tolist()}


def study(topo: Topology, staged: StagedProgram, par, p: CompressionProfile, ratio: float | None = None,
          confirm: bool = True, maps: bool = True) -> dict:  # fmt: skip
    """Every break-even answer for one codec on one workload and network (see the module doc)."""
    bw = topo.nic_bandwidth_per_gpu()
    c = Codec.of(p)
    r = p.ratios.of("default") if ratio is None else ratio
    it = IterationModel(staged, par, topo)
    base = it.total_us()
    out = {
        "codec": p.name, "placement": p.placement, "link_GBps": bw / 1e9, "ratio": r,
        "ratio_breakeven": ratio_breakeven(c, bw),
        "throughput_breakeven_GBps": throughput_breakeven(c, bw, r) / 1e9,
        "bandwidth_breakeven_Gbps": bandwidth_breakeven(c, r) * 8 / 1e9,
        "baseline_us": base, "with_codec_us": it.total_us(p),
        "per_class": per_class(staged, par, topo, p, it, base),
    }  # fmt: skip
    if confirm:
        out["confirm"] = confirm_boundaries(topo, p, bw)
    if maps:
        out["heat_maps"] = {pl: heat_map(it, p, base, pl) for pl in PLACEMENTS}
    return out


def confirm_boundaries(topo: Topology, p: CompressionProfile, bw: float) -> list[dict]:
    """Three boundary points per placement, each simulated just either side."""
    rows = []
    for placement in PLACEMENTS:
        if placement == "in-nic":  # the boundary is the ingest rate, at any ratio below 1
            for r in (0.3, 0.6, 0.9):
                q = with_codec(p, placement=placement)
                rows.append({"placement": placement, "ratio": r, **confirm_engine(topo, q, bw, r)})
            continue
        # Throughputs where the break-even ratio lies inside (0.05, 0.95): the codec's, and faster.
        c0 = Codec.of(with_codec(p, placement=placement))
        k = max(1.0, 1.1 * bw * (1 / c0.tc + 1 / c0.td) / 0.95)
        for scale in (k, 2 * k, 4 * k):
            q = with_codec(p, scale=scale, placement=placement)
            row = confirm_transfer(topo, q, ratio_breakeven(Codec.of(q), bw, 2**28))
            rows.append({"placement": placement, "compress_GBps": q.compress_throughput / 1e9, **row})
    return rows
