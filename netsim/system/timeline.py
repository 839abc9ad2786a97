"""The closed-form executor (the analytical backend): one stage's timeline replayed with closed-form
collective times, and the pipeline in closed form.

Physically sound where SimAI-Analytical is not (simai_analytical_spec.md section 8):
- bandwidths are the topology's line rates in bytes/s (no GiB/GB mix-up), per rank shares
  of the server's NICs, NVLink inside a server (collectives/placement.py);
- every collective pays alpha-beta time with a per-step latency (no size-ratio tables, no
  small-message table);
- wg (DP) collectives run on their own stream and overlap the backward pass still running,
  as in SimAI's packet-level backend and Megatron; a layer flagged `barrier` waits for them;
- the pipeline bubble is sum_stages(t_fb) + (m-1) max(t_fb) - m t_fb(representative), i.e.
  (p-1) t_fb for uniform stages, with t_fb one micro-batch's forward+backward incl. TP;
- pipeline p2p is blocking per micro-batch (Megatron's batched isend/irecv): 2(m+p-2) sends
  on the critical path.
Contention and ECMP are the flow model's job.
"""

from __future__ import annotations

from dataclasses import dataclass

from netsim.collectives.closed_form import SENDRECV, bus_factor
from netsim.collectives.models import ClosedFormModel
from netsim.collectives.placement import GroupPlacement
from netsim.system.result import Breakdown, RowReport
from netsim.workload.parallel import dp_group, rank_of, tp_group
from netsim.workload.program import DP, DP_EP, EP, TP, LayerProgram, Phase

Span = tuple[str, str, float, float, str]


@dataclass
class Groups:
    """Placements of the groups of one pipeline stage's rank 0 (all groups of a kind are alike)."""

    tp: GroupPlacement
    dp: GroupPlacement
    pp_hop: GroupPlacement | None

    @classmethod
    def build(cls, model: ClosedFormModel, tp: int, dp: int, pp: int, stage: int = 0) -> Groups:
        r0 = rank_of(0, 0, stage, tp, dp)
        hop = None
        if pp > 1:
            nxt = rank_of(0, 0, min(stage + 1, pp - 1) if stage + 1 < pp else stage - 1, tp, dp)
            hop = model.placement([r0, nxt])
        return cls(tp=model.placement(tp_group(r0, tp, dp)), dp=model.placement(dp_group(r0, tp, dp)), pp_hop=hop)

    def for_kind(self, kind: str) -> GroupPlacement | None:
        if kind == TP:
            return self.tp
        if kind in (DP, DP_EP, EP):
            return self.dp
        return None


def bw_columns(op: str | None, n: int, size: int, t_ns: int) -> tuple[float, float]:
    """SimAI's per-row (algbw, busbw) columns in GiB/s of one collective of `size` bytes over n ranks."""
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
    spans: list[Span]


class StageTimeline:
    """Replays one stage's layers: the compute stream with its blocking collectives, and the DP
    stream of wg collectives overlapping it."""

    def __init__(self, prog: LayerProgram, groups: Groups, model: ClosedFormModel):
        self.prog, self.groups, self.model = prog, groups, model
        n = len(prog.layers)
        self.t = self.dp_free = self.compute = 0.0
        self.stalls: list[tuple[float, float]] = []
        self.blocking = {"TP": 0.0, "EP": 0.0}
        self.tot = [[0, 0, 0] for _ in range(n)]
        self.bws = [[(0.0, 0.0)] * 3 for _ in range(n)]
        self.wg_spans: dict[int, tuple[float, float]] = {}
        self.spans: list[Span] = []

    def span(self, thread: str, name: str, start: float, dur: float, cat: str) -> None:
        if dur > 0:
            self.spans.append((thread, name, start, dur, cat))

    def comm(self, i: int, col: int, ph: Phase) -> tuple[str | None, float]:
        """(op, ns) of a phase's collective; records its total time and bandwidth columns."""
        if ph.op is None or ph.bytes <= 0:
            return None, 0.0
        g = self.groups.for_kind(ph.group)
        if g is None:
            return ph.op, 0.0
        d = self.model.time_ns(ph.op, g, ph.bytes, ph.traffic, ph.group)
        self.tot[i][col] = round(d)
        self.bws[i][col] = bw_columns(ph.op, g.n, ph.bytes, round(d))
        return ph.op, d

    def blocking_phase(self, i: int, col: int, column: str, ph: Phase) -> None:
        """Compute, then a collective the compute stream waits for."""
        name = self.prog.layers[i].name
        self.span("compute", f"{name} {column}", self.t, ph.compute_ns, "compute")
        self.t += ph.compute_ns
        self.compute += ph.compute_ns
        op, d = self.comm(i, col, ph)
        self.span(f"{ph.group} comm", f"{name} {column} {op}", self.t, d, "collective")
        self.t += d
        self.blocking["EP" if ph.group == EP else "TP"] += d

    def overlapped_phase(self, i: int, ph: Phase) -> None:
        """wg compute, then its collective on the DP stream (after the GPU codec's kernels, if any)."""
        name = self.prog.layers[i].name
        self.span("compute", f"{name} wg", self.t, ph.compute_ns, "compute")
        self.t += ph.compute_ns
        self.compute += ph.compute_ns
        op, d = self.comm(i, 2, ph)
        if d > 0:
            g = self.groups.for_kind(ph.group)
            extra = self.model.gpu_codec_ns(op, g, ph.bytes, ph.traffic, ph.group) if g is not None else 0.0
            self.span("compute", f"{name} codec kernels", self.t, extra, "codec")
            self.t += extra
            start = max(self.t, self.dp_free)
            self.dp_free = start + d
            self.wg_spans[i] = (start, self.dp_free)
            self.span(f"{ph.group} comm", f"{name} wg {op}", start, d, "collective")

    def run(self) -> StageReplay:
        layers = self.prog.layers
        for i, x in enumerate(layers):
            self.blocking_phase(i, 0, "fwd", x.fwd)
        for i in range(len(layers) - 1, -1, -1):
            x = layers[i]
            if x.barrier and self.dp_free > self.t:
                self.stalls.append((self.t, self.dp_free))
                self.span("compute", "wait for DP", self.t, self.dp_free - self.t, "stall")
                self.t = self.dp_free
            self.blocking_phase(i, 1, "ig", x.ig)
            self.overlapped_phase(i, x.wg)
        end = max(self.t, self.dp_free)
        if end > self.t:
            self.stalls.append((self.t, end))
        per_mb = (self.compute + self.blocking["TP"] + self.blocking["EP"]) / max(1, self.prog.ga)
        return StageReplay(
            end_ns=end, compute_ns=self.compute, blocking_ns=self.blocking, rows=self.row_reports(),
            per_microbatch_ns=per_mb, spans=self.spans,
        )  # fmt: skip

    def row_reports(self) -> list[RowReport]:
        rows = []
        for i, x in enumerate(self.prog.layers):
            wg_exp = 0.0
            if i in self.wg_spans:
                a, b = self.wg_spans[i]
                wg_exp = sum(max(0.0, min(b, s1) - max(a, s0)) for s0, s1 in self.stalls)
            tot, bws = self.tot[i], self.bws[i]
            rows.append(RowReport(
                name=x.name, fwd_compute=x.fwd.compute_ns, wg_compute=x.wg.compute_ns, ig_compute=x.ig.compute_ns,
                fwd_exposed=tot[0], wg_exposed=round(wg_exp), ig_exposed=tot[1],
                fwd_total=tot[0], wg_total=tot[2], ig_total=tot[1], fwd_bw=bws[0], wg_bw=bws[2], ig_bw=bws[1],
            ))  # fmt: skip
        return rows


def simulate(
    stages: list[LayerProgram], model: ClosedFormModel, tp: int, dp: int, pp: int, rep: int | None = None,
) -> Breakdown:  # fmt: skip
    """Iteration-time breakdown for a pipeline whose stage i runs `stages[i]`."""
    if rep is None:
        rep = len(stages) - 1
    replays: dict[int, StageReplay] = {}
    timeline = {}
    rep_groups = Groups.build(model, tp, dp, pp, stage=rep)
    for i, w in enumerate(stages):
        if id(w) not in replays:
            groups = rep_groups if i == rep else Groups.build(model, tp, dp, pp, stage=i)
            replays[id(w)] = StageTimeline(w, groups, model).run()
            timeline[f"stage {i} (rank {rank_of(0, 0, i, tp, dp)})"] = replays[id(w)].spans
    main, w = replays[id(stages[rep])], stages[rep]
    m = max(1, w.ga)
    fb = [replays[id(s)].per_microbatch_ns for s in stages]
    bubble = sum(fb) + (m - 1) * max(fb) - m * fb[rep] if pp > 1 else 0.0
    pp_ns = 0.0
    if pp > 1 and w.pp_bytes > 0:
        pp_ns = 2 * (m + pp - 2) * model.time_ns(SENDRECV, rep_groups.pp_hop, w.pp_bytes, "activation", "PP")
    tp_ns, ep_ns = main.blocking_ns["TP"], main.blocking_ns["EP"]
    dp_ns = main.end_ns - main.compute_ns - tp_ns - ep_ns
    compute_us, comm_us, bubble_us = main.compute_ns / 1e3, (tp_ns + ep_ns + dp_ns + pp_ns) / 1e3, bubble / 1e3
    res = Breakdown.from_parts(
        compute=compute_us, tp=tp_ns / 1e3, ep=ep_ns / 1e3, dp=dp_ns / 1e3, pp=pp_ns / 1e3, bubble=bubble_us,
        comm=comm_us, total=compute_us + comm_us + bubble_us, rows=main.rows, timeline=timeline,
    )  # fmt: skip
    res.extra.update(model.report(0.0))
    res.extra.update({
        "representative_stage": rep, "microbatches": m,
        "tp_busbw_GBps": _gbps(rep_groups.tp), "dp_busbw_GBps": _gbps(rep_groups.dp),
    })  # fmt: skip
    return res


def _gbps(g: GroupPlacement) -> float:
    return g.bandwidth / 1e9 if g.bandwidth != float("inf") else 0.0
