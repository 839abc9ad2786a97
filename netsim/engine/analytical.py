"""netsim's analytical backend: closed-form collectives on a replayed one-stage timeline.

Physically sound where SimAI-Analytical is not (simai_analytical_spec.md section 8):
- bandwidths are the topology's line rates in bytes/s (no GiB/GB mix-up), per rank shares
  of the server's NICs, NVLink inside a server (collectives/placement.py);
- every collective pays alpha-beta time with a per-step latency (no size-ratio tables, no
  small-message table);
- wg (DP) collectives run on their own stream and overlap the backward pass still running,
  as in SimAI's packet-level backend and Megatron; a row flagged `barrier` waits for them;
- the pipeline bubble is Σ_stages(t_fb) + (m-1)·max(t_fb) - m·t_fb(representative), i.e.
  (p-1)·t_fb for uniform stages, with t_fb one micro-batch's forward+backward incl. TP;
- pipeline p2p is blocking per micro-batch (Megatron's batched isend/irecv): 2(m+p-2) sends
  on the critical path.
Contention and ECMP are the flow backend's job.
"""

from __future__ import annotations

from dataclasses import dataclass

from netsim.collectives.closed_form import (
    ALLGATHER,
    ALLREDUCE,
    ALLTOALL,
    REDUCESCATTER,
    SENDRECV,
    bus_factor,
    collective_time,
)
from netsim.collectives.placement import GroupPlacement, place_group
from netsim.engine.result import Breakdown, RowReport
from netsim.network.topology import Topology
from netsim.workload.parallel import dp_group, rank_of, tp_group
from netsim.workload.rows import Workload

_OPS = (("ALLREDUCE", ALLREDUCE), ("ALLTOALL", ALLTOALL), ("ALLGATHER", ALLGATHER), ("REDUCESCATTER", REDUCESCATTER))


def parse_comm(comm: str, column: str) -> tuple[str | None, str]:
    """(op, group kind) of a SimAI type string; the bare type is TP in fwd/ig and DP in wg."""
    for prefix, op in _OPS:
        if comm.startswith(prefix):
            rest = comm[len(prefix) :]
            if rest == "":
                return op, ("DP" if column == "wg" else "TP")
            if rest == "_EP":
                return op, "EP"
            if rest == "_DP_EP":
                return op, "DP_EP"
            return op, "NONE"
    return None, "NONE"


@dataclass
class Groups:
    """Placements of the groups of rank 0's pipeline stage (all groups of a kind are alike)."""

    tp: GroupPlacement
    dp: GroupPlacement
    pp_hop: GroupPlacement | None

    @classmethod
    def build(cls, topo: Topology, tp: int, dp: int, pp: int, stage: int = 0) -> Groups:
        r0 = rank_of(0, 0, stage, tp, dp)
        tpg = place_group(topo, tp_group(r0, tp, dp))
        dpg = place_group(topo, dp_group(r0, tp, dp))
        hop = None
        if pp > 1:
            nxt = rank_of(0, 0, min(stage + 1, pp - 1) if stage + 1 < pp else stage - 1, tp, dp)
            hop = place_group(topo, [r0, nxt])
        return cls(tp=tpg, dp=dpg, pp_hop=hop)

    def for_kind(self, kind: str) -> GroupPlacement | None:
        if kind == "TP":
            return self.tp
        if kind in ("DP", "DP_EP", "EP"):
            return self.dp
        return None


def _bw_columns(op: str | None, n: int, size: int, t_ns: int) -> tuple[float, float]:
    if not op or t_ns <= 0 or size <= 0:
        return 0.0, 0.0
    algbw = size / (t_ns * 1e-9) / 2**30
    return algbw, algbw * bus_factor(op, n)


@dataclass
class StageReplay:
    """One stage's pass: compute stream, blocking TP collectives, a FIFO DP stream."""

    end_ns: float
    compute_ns: float
    blocking_ns: dict[str, float]
    rows: list[RowReport]
    per_microbatch_ns: float  # compute + blocking comm of one micro-batch
    spans: list[tuple[str, str, float, float, str]]


def replay_stage(w: Workload, groups: Groups, ns_time, gpu_codec_ns=None) -> StageReplay:
    t = 0.0
    dp_free = 0.0
    stalls: list[tuple[float, float]] = []
    blocking = {"TP": 0.0, "EP": 0.0}
    compute = 0.0
    n_rows = len(w.rows)
    tot = [[0, 0, 0] for _ in range(n_rows)]
    bws = [[(0.0, 0.0)] * 3 for _ in range(n_rows)]
    wg_spans: dict[int, tuple[float, float]] = {}
    spans: list[tuple[str, str, float, float, str]] = []

    def span(thread: str, name: str, start: float, dur: float, cat: str) -> None:
        if dur > 0:
            spans.append((thread, name, start, dur, cat))

    def run(i: int, col: int, column: str, comm: str, size: int):
        op, kind = parse_comm(comm, column)
        if op is None or size <= 0:
            return None, kind, 0.0
        g = groups.for_kind(kind)
        if g is None:
            return op, kind, 0.0
        traffic = w.rows[i].phases()[col][4]
        d = ns_time(op, g, size, traffic, kind)
        tot[i][col] = round(d)
        bws[i][col] = _bw_columns(op, g.n, size, round(d))
        return op, kind, d

    def blocking_phase(i: int, col: int, column: str, compute_ns: int, comm: str, size: int) -> None:
        """Compute, then a collective the compute stream waits for."""
        nonlocal t, compute
        name = w.rows[i].name
        span("compute", f"{name} {column}", t, compute_ns, "compute")
        t += compute_ns
        compute += compute_ns
        op, kind, d = run(i, col, column, comm, size)
        span(f"{kind} comm", f"{name} {column} {op}", t, d, "collective")
        t += d
        blocking["EP" if kind == "EP" else "TP"] += d

    for i, r in enumerate(w.rows):
        blocking_phase(i, 0, "fwd", r.fwd_compute, r.fwd_comm, r.fwd_bytes)
    for i in range(n_rows - 1, -1, -1):
        r = w.rows[i]
        if r.barrier and dp_free > t:
            stalls.append((t, dp_free))
            span("compute", "wait for DP", t, dp_free - t, "stall")
            t = dp_free
        blocking_phase(i, 1, "ig", r.ig_compute, r.ig_comm, r.ig_bytes)
        span("compute", f"{r.name} wg", t, r.wg_compute, "compute")
        t += r.wg_compute
        compute += r.wg_compute
        op, kind, d = run(i, 2, "wg", r.wg_comm, r.wg_bytes)
        if d > 0 and gpu_codec_ns is not None:
            # A GPU codec's kernels for this overlapped collective take the GPU from compute.
            g = groups.for_kind(kind)
            extra = gpu_codec_ns(op, g, r.wg_bytes, r.wg_class, kind) if g is not None else 0.0
            span("compute", f"{r.name} codec kernels", t, extra, "codec")
            t += extra
        if d > 0:
            start = max(t, dp_free)
            dp_free = start + d
            wg_spans[i] = (start, dp_free)
            span(f"{kind} comm", f"{r.name} wg {op}", start, d, "collective")
    end = max(t, dp_free)
    if end > t:
        stalls.append((t, end))
    rows = []
    for i, r in enumerate(w.rows):
        wg_exp = 0.0
        if i in wg_spans:
            a, b = wg_spans[i]
            wg_exp = sum(max(0.0, min(b, s1) - max(a, s0)) for s0, s1 in stalls)
        rows.append(
            RowReport(
                name=r.name,
                fwd_compute=r.fwd_compute,
                wg_compute=r.wg_compute,
                ig_compute=r.ig_compute,
                fwd_exposed=tot[i][0],
                wg_exposed=round(wg_exp),
                ig_exposed=tot[i][1],
                fwd_total=tot[i][0],
                wg_total=tot[i][2],
                ig_total=tot[i][1],
                fwd_bw=bws[i][0],
                wg_bw=bws[i][2],
                ig_bw=bws[i][1],
            )
        )
    per_mb = (compute + blocking["TP"] + blocking["EP"]) / max(1, w.ga)
    return StageReplay(
        end_ns=end, compute_ns=compute, blocking_ns=blocking, rows=rows, per_microbatch_ns=per_mb, spans=spans
    )


def collective_ns(op: str, g: GroupPlacement, size: int, traffic: str = "default", kind: str = "DP") -> float:
    return collective_time(op, g.n, size, g.bandwidth, g.step_latency) * 1e9


def compressed_ns(stage):
    """Collective time with a compression stage on the NICs (NVLink-only groups stay plain)."""

    def ns(op: str, g: GroupPlacement, size: int, traffic: str = "default", kind: str = "DP") -> float:
        if g.servers <= 1:
            return collective_ns(op, g, size)
        return stage.closed_form_s(op, g.n, size, g.bandwidth, g.step_latency, traffic, kind) * 1e9

    return ns


def gpu_codec(stage):
    """Codec kernel time (ns) a GPU-placed stage spends on one collective."""

    def ns(op: str, g: GroupPlacement, size: int, traffic: str, kind: str) -> float:
        if g.servers <= 1 or not stage.applies(traffic, kind):
            return 0.0
        return stage.collective_codec_s(op, g.n, size) * 1e9

    return ns


def simulate(
    stages: list[Workload],
    topo: Topology,
    tp: int,
    dp: int,
    pp: int,
    rep: int | None = None,
    ns_time=collective_ns,
    compression=None,
) -> Breakdown:
    """Iteration-time breakdown for a pipeline whose stage i runs `stages[i]`."""
    if compression is not None:
        ns_time = compressed_ns(compression)
    gpu_codec_ns = gpu_codec(compression) if compression is not None and compression.p.placement == "gpu" else None
    if rep is None:
        rep = len(stages) - 1
    replays: dict[int, StageReplay] = {}
    timeline = {}
    rep_groups = Groups.build(topo, tp, dp, pp, stage=rep)
    for i, w in enumerate(stages):
        if id(w) not in replays:
            groups = rep_groups if i == rep else Groups.build(topo, tp, dp, pp, stage=i)
            replays[id(w)] = replay_stage(w, groups, ns_time, gpu_codec_ns)
            timeline[f"stage {i} (rank {rank_of(0, 0, i, tp, dp)})"] = replays[id(w)].spans
    main = replays[id(stages[rep])]
    w = stages[rep]
    m = max(1, w.ga)
    fb = [replays[id(s)].per_microbatch_ns for s in stages]
    bubble = sum(fb) + (m - 1) * max(fb) - m * fb[rep] if pp > 1 else 0.0
    pp_ns = 0.0
    if pp > 1 and w.pp_comm_bytes > 0:
        hop = rep_groups.pp_hop
        pp_ns = 2 * (m + pp - 2) * ns_time(SENDRECV, hop, w.pp_comm_bytes, "activation", "PP")
    tp_ns, ep_ns = main.blocking_ns["TP"], main.blocking_ns["EP"]
    dp_ns = main.end_ns - main.compute_ns - tp_ns - ep_ns
    res = Breakdown(rows=main.rows, timeline=timeline)
    res.compute_us = main.compute_ns / 1e3
    res.exposed_tp_us = tp_ns / 1e3
    res.exposed_ep_us = ep_ns / 1e3
    res.exposed_dp_us = dp_ns / 1e3
    res.exposed_pp_us = pp_ns / 1e3
    res.bubble_us = bubble / 1e3
    res.exposed_comm_us = (tp_ns + ep_ns + dp_ns + pp_ns) / 1e3
    res.total_us = res.compute_us + res.exposed_comm_us + res.bubble_us
    if compression is not None:
        res.extra["compression"] = compression.acct.report()
    res.extra.update(
        {
            "representative_stage": rep,
            "microbatches": m,
            "tp_busbw_GBps": _gbps(rep_groups.tp),
            "dp_busbw_GBps": _gbps(rep_groups.dp),
        }
    )
    return res


def _gbps(g: GroupPlacement) -> float:
    return g.bandwidth / 1e9 if g.bandwidth != float("inf") else 0.0
