"""A SimAI workload as SimAI's packet-level backend executes it (reference/simai.md section 2).

Forward layers in order, backward in reverse; fwd/ig collectives block, wg collectives do not;
each rank has one collective queue (`CollectiveQueue`: one collective runs, waiting ones newest
first) and adds the layer's update time after each collective. PP is not simulated (as in
SimAI); DP = GPUs / TP. Ranks run in lockstep (folded): one process stands for every rank; the
per-rank replay of SimAI's own decomposition, for validation, is system/simai_replay.py.
"""

from __future__ import annotations

import simpy

from netsim.collectives.models import NetworkModel
from netsim.system.result import Breakdown
from netsim.workload.parallel import dp_group, tp_group
from netsim.workload.program import EP, TP, LayerProgram, Phase


class CollectiveQueue:
    """SimAI's per-rank collective queue as a policy: one collective at a time, newest waiting first."""

    def __init__(self, env: simpy.Environment, model: NetworkModel, spans: list):
        self.env, self.model, self.spans = env, model, spans
        self.waiting: list = []
        self.running = False

    def issue(self, op, groups, size, update_ns, label, traffic, kind) -> simpy.Event:
        ev = self.env.event()
        self.waiting.append((op, groups, size, ev, update_ns, label, traffic, kind))
        self._pump()
        return ev

    def _pump(self) -> None:
        if self.running or not self.waiting:
            return
        op, groups, size, ev, upd, label, traffic, kind = self.waiting.pop()  # LIFO: newest waiting first
        self.running = True
        t0 = self.env.now

        def fin(_e) -> None:
            self.running = False
            self.spans.append(("comm queue", label, t0, self.env.now - t0, "collective"))
            self.env.timeout(upd * 1e-9).callbacks.append(lambda _e: ev.succeed())
            self._pump()

        self.model.collective(op, groups, size, traffic, kind).callbacks.append(fin)


class QueueExecutor:
    """Runs a LayerProgram on every rank in lockstep through one CollectiveQueue."""

    def __init__(self, prog: LayerProgram, model: NetworkModel, gpus: int):
        self.prog, self.model, self.env = prog, model, model.env
        tp = prog.tp
        dp = gpus // tp
        # SimAI's packet backend has no PP: every GPU is in one stage, so DP = GPUs / TP.
        self.tpg = [tp_group(d * tp, tp, dp) for d in range(dp)]
        self.dpg = [dp_group(t, tp, dp) for t in range(tp)]
        self.spans: list = []
        self.queue = CollectiveQueue(self.env, model, self.spans)
        self.compute_s = self.blocking_s = self.end = 0.0

    def _issue(self, ph: Phase, size: int, upd: int, label: str):
        c = ph.collective
        if c is None or size <= 0:
            return None
        groups = self.tpg if c.group in (TP, EP) else self.dpg
        return self.queue.issue(c.op, groups, size, upd, label, c.traffic, c.group)

    def _compute(self, ns: int, name: str) -> simpy.Event:
        self.compute_s += ns * 1e-9
        self.spans.append(("compute", name, self.env.now, ns * 1e-9, "compute"))
        return self.env.timeout(ns * 1e-9)

    def _blocking(self, ev):
        if ev is not None:
            t0 = self.env.now
            yield ev
            self.blocking_s += self.env.now - t0

    def process(self):
        pending = []
        for x in self.prog.layers:
            yield self._compute(x.fwd.compute_ns, f"{x.name} fwd")
            size = 4096 if 0 < x.fwd.bytes < 4096 else x.fwd.bytes  # SimAI's minimum message
            yield from self._blocking(self._issue(x.fwd, size, x.update_ns, f"{x.name} fwd"))
        for x in reversed(self.prog.layers):
            yield self._compute(x.ig.compute_ns, f"{x.name} ig")
            yield from self._blocking(self._issue(x.ig, x.ig.bytes, x.update_ns, f"{x.name} ig"))
            yield self._compute(x.wg.compute_ns, f"{x.name} wg")
            ev = self._issue(x.wg, x.wg.bytes, x.update_ns, f"{x.name} wg")
            if ev is not None:
                pending.append(ev)
        if pending:
            yield self.env.all_of(pending)
        self.end = self.env.now

    def run(self) -> Breakdown:
        self.env.process(self.process())
        self.env.run()
        compute, tp, total = self.compute_s * 1e6, self.blocking_s * 1e6, self.end * 1e6
        dp = max(0.0, total - compute - tp)
        bubble = 0.0
        p = self.prog
        if p.pp > 1:
            # The file is one stage with its micro-batches unrolled; SimAI's packet backend does not
            # simulate the pipeline, so netsim adds the 1F1B bubble of uniform stages:
            # (p-1) x one micro-batch's compute + blocking communication.
            bubble = (p.pp - 1) * (compute + tp) / max(1, p.ga)
            total += bubble
        bd = Breakdown.from_parts(compute=compute, tp=tp, dp=dp, bubble=bubble, total=total, comm=tp + dp)
        bd.timeline = {"rank 0 (all ranks in lockstep)": Breakdown.spans_ns(self.spans)}
        report = self.model.report(self.end)
        comp = report.pop("compression", None)
        bd.extra = report
        if comp is not None:
            bd.extra["compression"] = comp
        return bd
