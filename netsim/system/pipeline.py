"""The pipeline executor: every stage runs its schedule over a network model.

Symmetric ranks are folded: every rank of a pipeline stage runs the same program at the same
time, so one SimPy process drives a whole stage, and each collective it issues launches the
flows of every group of that kind in that stage at once (all TP groups, all DP groups), so
the network sees the full contention. A stage's collective ends when all its groups finish.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import simpy

from netsim.collectives.models import NetworkModel
from netsim.system.result import Breakdown
from netsim.system.schedules import SCHEDULES
from netsim.workload.parallel import Parallelism, dp_group, rank_of, tp_group
from netsim.workload.program import EP, TP, Collective, Phase, Send, StageProgram

FOLD_ABOVE = 4096  # GPUs; larger clusters simulate TP and PP traffic of FOLD_REPLICAS DP replicas
FOLD_REPLICAS = 8
Span = tuple[str, str, float, float, str]


@dataclass
class StageStats:
    """Seconds a stage spent per category, its end, and its timeline spans."""

    compute: float = 0.0
    tp: float = 0.0
    ep: float = 0.0
    pp: float = 0.0
    bubble: float = 0.0
    end: float = 0.0
    spans: list[Span] = field(default_factory=list)


def _args(op: str, group: str, nbytes: float, seconds: float) -> dict:
    """A collective span's trace args: what moved and how fast (algorithm bandwidth, GB/s)."""
    return {"op": op, "group": group, "bytes": nbytes, "algbw_GBps": nbytes / seconds / 1e9 if seconds > 0 else None}


class DpStream:
    """The DP stream of a stage: gradient collectives run one after another (FIFO), overlapping the
    compute stream; a GPU codec's kernels for them are charged to the compute stream."""

    def __init__(self, env: simpy.Environment, model: NetworkModel, groups: list[list[int]], st: StageStats):
        self.env, self.model, self.groups, self.st = env, model, groups, st
        self.tail: simpy.Event | None = None
        self.gpu_debt = 0.0

    def enqueue(self, c: Collective, name: str, dp: int) -> None:
        done = self.env.event()
        t0 = [0.0]
        done.callbacks.append(
            lambda _e: self.st.spans.append(
                (
                    "DP comm",
                    name,
                    t0[0],
                    self.env.now - t0[0],
                    "collective",
                    _args(c.op, "DP", c.bytes, self.env.now - t0[0]),
                )
            )
        )

        def go() -> None:
            t0[0] = self.env.now
            self.model.collective(c.op, self.groups, c.bytes, c.traffic, "DP", done=done)

        self.gpu_debt += self.model.gpu_codec_s(c.op, dp, c.bytes, c.traffic, "DP")
        prev = self.tail
        if prev is None or prev.processed:
            go()
        else:
            prev.callbacks.append(lambda _e: go())
        self.tail = done


class StageRunner:
    """One folded pipeline stage: compute stream, blocking TP/EP collectives, pipeline sends and
    receives, and its DP stream."""

    def __init__(self, ex: PipelineExecutor, i: int):
        self.ex, self.i, self.env = ex, i, ex.env
        self.prog: StageProgram = ex.programs[i]
        self.st = StageStats()
        par, replicas = ex.par, ex.replicas
        self.tpg = [tp_group(rank_of(0, d, i, par.tp, par.dp), par.tp, par.dp) for d in range(replicas)]
        self.dpg = [dp_group(rank_of(t, 0, i, par.tp, par.dp), par.tp, par.dp) for t in range(par.tp)]
        self.dp = DpStream(self.env, ex.model, self.dpg, self.st)

    def compute(self, ns: int, name: str):
        sec = ns * 1e-9
        if self.dp.gpu_debt > 0:
            self.st.spans.append(("compute", "codec kernels", self.env.now, self.dp.gpu_debt, "codec"))
            sec, self.dp.gpu_debt = sec + self.dp.gpu_debt, 0.0
        if sec > 0:
            self.st.spans.append(("compute", name, self.env.now, ns * 1e-9, "compute"))
            self.st.compute += ns * 1e-9
            yield self.env.timeout(sec)

    def blocking(self, ph: Phase, name: str):
        c = ph.collective
        if c is None:
            return
        groups = self.tpg if c.group in (TP, EP) else self.dpg
        t0 = self.env.now
        yield self.ex.model.collective(c.op, groups, c.bytes, c.traffic, c.group)
        d = self.env.now - t0
        if c.group == EP:
            self.st.ep += d
        else:
            self.st.tp += d
        self.st.spans.append(("TP comm", name, t0, d, "collective", _args(c.op, c.group, c.bytes, d)))

    def wait_recv(self, direction: str, j: int):
        ev, t0 = self.ex.recv[direction][self.i][j], self.env.now
        yield ev
        waited = self.env.now - t0
        transfer = self.env.now - self.ex.sent_at.get((direction, self.i, j), self.env.now)
        comm = min(waited, transfer)
        self.st.pp += comm
        self.st.bubble += waited - comm
        if waited > 0:
            self.st.spans.append(("PP recv", f"mb{j} wait", t0, waited, "stall"))

    def send(self, direction: str, to: int, j: int, s: Send) -> None:
        par = self.ex.par
        pairs = [
            (rank_of(t, d, self.i, par.tp, par.dp), rank_of(t, d, to, par.tp, par.dp))
            for t in range(par.tp)
            for d in range(self.ex.replicas)
        ]
        t0 = self.env.now
        self.ex.sent_at[(direction, to, j)] = t0
        done = self.ex.recv[direction][to][j]
        done.callbacks.append(
            lambda _e: self.st.spans.append(
                ("PP send", f"mb{j} {direction} to stage {to}", t0, self.env.now - t0, "send",
                 _args("sendrecv", "PP", s.bytes, self.env.now - t0))
            )
        )  # fmt: skip
        self.ex.model.send(pairs, s.bytes, s.traffic, "PP", done=done)

    def forward(self, j: int):
        if self.i > 0:
            yield from self.wait_recv("fwd", j)
        for x in self.prog.layers:
            yield from self.compute(x.fwd.compute_ns, f"{x.name} fwd")
            yield from self.blocking(x.fwd, f"{x.name} fwd")
        if self.i < self.ex.par.pp - 1:
            self.send("fwd", self.i + 1, j, self.prog.send_fwd)

    def backward(self, j: int):
        if self.i < self.ex.par.pp - 1:
            yield from self.wait_recv("bwd", j)
        last = j == self.ex.par.microbatches - 1
        for k in range(len(self.prog.layers) - 1, -1, -1):
            x = self.prog.layers[k]
            yield from self.compute(x.ig.compute_ns, f"{x.name} ig")
            yield from self.blocking(x.ig, f"{x.name} ig")
            yield from self.compute(x.wg.compute_ns, f"{x.name} wg")
            if last and k in self.prog.buckets:
                self.dp.enqueue(self.prog.buckets[k], f"grads@{x.name}", self.ex.par.dp)
        if self.i > 0:
            self.send("bwd", self.i - 1, j, self.prog.send_bwd)

    def process(self):
        for kind, j in self.ex.schedule.order(self.i, self.ex.par.pp, self.ex.par.microbatches):
            yield from (self.forward(j) if kind == "f" else self.backward(j))
        if self.dp.tail is not None:
            t0 = self.env.now
            yield self.dp.tail
            if self.env.now > t0:
                self.st.spans.append(("compute", "wait for DP", t0, self.env.now - t0, "stall"))
        yield from self.compute(self.prog.optimizer_ns, "optimizer step")
        g = self.prog.param_allgather
        if g is not None:
            t0 = self.env.now
            yield self.ex.model.collective(g.op, self.dpg, g.bytes, g.traffic, "DP")
            d = self.env.now - t0
            self.st.spans.append(("DP comm", "param all-gather", t0, d, "collective", _args(g.op, "DP", g.bytes, d)))
        self.st.end = self.env.now


class PipelineExecutor:
    """One training iteration: every stage runs the schedule (1F1B or GPipe) on the network model.

    `replicas`: how many DP replicas' TP and pipeline traffic to put on the network (all by
    default up to FOLD_ABOVE GPUs, else FOLD_REPLICAS). DP collectives always involve every rank.
    Replicas are symmetric, so this is exact when their TP/PP traffic shares no link with another
    replica's, and otherwise leaves out some contention on shared fabric links.
    """

    def __init__(
        self, programs: list[StageProgram], par: Parallelism, model: NetworkModel, schedule: str = "1f1b",
        replicas: int | None = None,
    ):  # fmt: skip
        self.programs, self.par, self.model, self.env = programs, par, model, model.env
        self.schedule = SCHEDULES[schedule]()
        if replicas is None:
            replicas = par.dp if par.world <= FOLD_ABOVE else min(par.dp, FOLD_REPLICAS)
        self.replicas = max(1, min(replicas, par.dp))
        p, m = par.pp, par.microbatches
        self.recv = {d: [[self.env.event() for _ in range(m)] for _ in range(p)] for d in ("fwd", "bwd")}
        self.sent_at: dict[tuple[str, int, int], float] = {}

    def start(self) -> simpy.Event:
        """Start every stage's process; the Event succeeds when the last stage has finished."""
        self.runners = [StageRunner(self, i) for i in range(self.par.pp)]
        return self.env.all_of([self.env.process(r.process()) for r in self.runners])

    def run(self) -> Breakdown:
        self.start()
        self.env.run()
        return self.result()

    def result(self) -> Breakdown:
        """The breakdown of the slowest stage, once the clock has run out."""
        stats = [r.st for r in self.runners]
        end = max(s.end for s in stats)
        k = max(range(len(stats)), key=lambda i: (stats[i].end, -i))
        st = stats[k]
        bd = Breakdown.from_parts(
            compute=st.compute * 1e6, tp=st.tp * 1e6, ep=st.ep * 1e6, pp=st.pp * 1e6, bubble=st.bubble * 1e6,
            total=end * 1e6,
        )  # fmt: skip
        par = self.par
        bd.timeline = {
            f"stage {i} (rank {rank_of(0, 0, i, par.tp, par.dp)})": Breakdown.spans_ns(s.spans)
            for i, s in enumerate(stats)
        }
        report = self.model.report(end)
        if "compression" in report:
            bd.extra["compression"] = report.pop("compression")
        counts = {key: report.pop(key) for key in ("flows", "solves") if key in report}
        bd.extra.update({"critical_stage": k, **counts, "simulated_dp_replicas": self.replicas, **report})
        return bd
