"""The pipeline executor: every stage runs its schedule over a network model.

Symmetric ranks are folded: every rank of a pipeline stage runs the same program at the same
time, so one SimPy process drives a whole stage, and each collective it issues launches the
flows of every group of that kind in that stage at once (all TP groups, all DP groups), so
the network sees the full contention. A stage's collective ends when all its groups finish.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import simpy

from netsim.collectives.models import NetworkModel
from netsim.system import closed_runs
from netsim.system.result import Breakdown, RowReport
from netsim.system.schedules import SCHEDULES
from netsim.system.timeline import bw_columns
from netsim.workload.parallel import Parallelism
from netsim.workload.program import CP, DP_EP, EP, ETP, TP, Collective, Phase, Send, StageProgram

FOLD_ABOVE = 4096  # GPUs; larger clusters simulate TP and PP traffic of FOLD_REPLICAS DP replicas
FOLD_REPLICAS = 8
Span = tuple[str, str, float, float, str]


PASSES = ("fwd", "wg", "ig")


@dataclass
class RowTally:
    """One workload row on a stage, per pass (fwd, wg, ig), summed over its micro-batches: compute,
    exposed and total communication (seconds), and the last collective's (op, ranks, bytes)."""

    compute: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    exposed: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    total: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    count: list[int] = field(default_factory=lambda: [0, 0, 0])
    moved: list[tuple[str, int, float] | None] = field(default_factory=lambda: [None, None, None])

    def report(self, name: str, microbatches: int) -> RowReport:
        """EndToEnd.csv's row: per micro-batch as the workload's rows are (the gradient collective,
        which runs once per iteration, whole), in integer nanoseconds."""
        per = [max(1, microbatches), 1, max(1, microbatches)]
        ns = lambda v, k: round(v[k] * 1e9 / per[k])
        bw = [bw_columns(m[0], m[1], m[2], round(self.total[k] * 1e9 / max(1, self.count[k]))) if m else (0.0, 0.0)
              for k, m in enumerate(self.moved)]  # fmt: skip
        return RowReport(
            name=name, fwd_compute=ns(self.compute, 0), wg_compute=round(self.compute[1] * 1e9 / per[0]),
            ig_compute=ns(self.compute, 2), fwd_exposed=ns(self.exposed, 0), wg_exposed=ns(self.exposed, 1),
            ig_exposed=ns(self.exposed, 2), fwd_total=ns(self.total, 0), wg_total=ns(self.total, 1),
            ig_total=ns(self.total, 2), fwd_bw=bw[0], wg_bw=bw[1], ig_bw=bw[2],
        )  # fmt: skip


def _pass_of(name: str) -> int | None:
    """'mlp_column ig' -> 2; None for work outside a row's passes (e.g. the optimizer step)."""
    kind = name.rpartition(" ")[2]
    return PASSES.index(kind) if kind in PASSES else None


class _Discard(list):
    """A span list that keeps nothing."""

    def append(self, _item) -> None:
        pass


@dataclass
class StageStats:
    """Seconds a stage spent per category, its end, its timeline spans and its per-row tallies."""

    compute: float = 0.0
    recompute: float = 0.0
    cp: float = 0.0
    gather: float = 0.0
    tp: float = 0.0
    ep: float = 0.0
    pp: float = 0.0
    bubble: float = 0.0
    end: float = 0.0
    spans: list[Span] = field(default_factory=list)
    rows: dict[tuple[int, int], tuple[str, RowTally]] = field(default_factory=dict)  # (chunk, row) -> tally
    # False: no timeline spans and no per-row tallies (nothing will draw or write them; a PP64 x 512
    # micro-batch iteration records millions of them).
    record: bool = True

    def __post_init__(self) -> None:
        if not self.record:
            self.spans = _Discard()

    def tally(self, key: tuple[int, int] | None, row: str, name: str) -> tuple[RowTally, int] | None:
        if not self.record:
            return None
        k = _pass_of(name)
        if key is None or k is None:
            return None
        return self.rows.setdefault(key, (row, RowTally()))[1], k

    def tally_comm(self, key, row: str, name: str, exposed: float, total: float, c: Collective, ranks: int) -> None:
        got = self.tally(key, row, name)
        if got is not None:
            tally, k = got
            tally.exposed[k] += exposed
            tally.total[k] += total
            tally.count[k] += 1
            tally.moved[k] = (c.op, ranks, c.bytes)


def _args(op: str, group: str, nbytes: float, seconds: float) -> dict:
    """A collective span's trace args: what moved and how fast (algorithm bandwidth, GB/s)."""
    return {"op": op, "group": group, "bytes": nbytes, "algbw_GBps": nbytes / seconds / 1e9 if seconds > 0 else None}


class DpStream:
    """A FIFO communication stream of a stage (gradient reduction, or parameter gathers): its
    collectives run one after another, overlapping the compute stream; a GPU codec's kernels for
    them are charged to the compute stream."""

    def __init__(self, env: simpy.Environment, model: NetworkModel, groups_of, st: StageStats):
        self.env, self.model, self.groups_of, self.st = env, model, groups_of, st
        self.tail: simpy.Event | None = None
        self.gpu_debt = 0.0

    def enqueue(self, c: Collective, name: str, dp: int, row: tuple[tuple[int, int], str] | None = None) -> simpy.Event:
        done = self.env.event()
        t0 = [0.0]

        def finished(_e) -> None:
            d = self.env.now - t0[0]
            self.st.spans.append(("DP comm", name, t0[0], d, "collective", _args(c.op, "DP", c.bytes, d)))
            if row is not None:
                self.st.tally_comm(row[0], row[1], "wg", 0.0, d, c, dp)

        done.callbacks.append(finished)

        def go() -> None:
            t0[0] = self.env.now
            self.model.collective(c.op, self.groups_of(c.group), c.bytes, c.traffic, "DP", done=done)

        self.gpu_debt += self.model.gpu_codec_s(c.op, dp, c.bytes, c.traffic, "DP")
        prev = self.tail
        if prev is None or prev.processed:
            go()
        else:
            prev.callbacks.append(lambda _e: go())
        self.tail = done
        return done


def expert_span(par: Parallelism) -> int:
    """DP replicas that whole EP and expert-TP groups cover (1 when they fit in one replica)."""
    per_replica = par.tp * par.cp
    return math.lcm(par.etp * par.ep, per_replica) // per_replica


def _expert_groups(par: Parallelism, stage: int, replicas: int) -> tuple[list[list[int]], ...]:
    """Expert-TP and EP groups among the simulated replicas, and the full expert-DP groups (the
    ranks holding the same experts' shards), on the stage's expert mesh (Parallelism.expert_rank)."""
    etp, size = par.etp, par.etp * par.ep
    sim, every = par.tp * par.cp * replicas, par.tp * par.cp * par.dp
    rank = par.expert_rank
    etpg = [[rank(b * etp + k, stage) for k in range(etp)] for b in range(sim // etp)]
    epg = [[rank(b * size + e * etp + k, stage) for e in range(par.ep)] for b in range(sim // size) for k in range(etp)]
    edpg = [[rank(j + size * m, stage) for m in range(every // size)] for j in range(size)]
    return etpg, epg, edpg


class StageRunner:
    """One folded pipeline rank: its model chunks' compute stream, blocking (or compute-overlapped)
    TP/CP/EP collectives, pipeline sends and receives, and two DP streams (gradient reduction and
    parameter gathers, separate as in Megatron-Core and FSDP)."""

    def __init__(self, ex: PipelineExecutor, i: int):
        self.ex, self.i, self.env = ex, i, ex.env
        par, replicas = ex.par, ex.replicas
        self.chunks: list[StageProgram] = [ex.programs[c * par.pp + i] for c in range(ex.chunks)]
        self.st = StageStats(record=ex.detail)
        # Phase names per chunk and row, (fwd, ig, wg), built once instead of per micro-batch.
        self.names = [
            [tuple(f"{x.name} {p}" for p in ("fwd", "ig", "wg")) for x in prog.layers] for prog in self.chunks
        ]
        self.tpg = [[par.rank(t, c, d, i) for t in range(par.tp)] for c in range(par.cp) for d in range(replicas)]
        self.cpg = [[par.rank(t, c, d, i) for c in range(par.cp)] for t in range(par.tp) for d in range(replicas)]
        # Gradients and sharded parameters are reduced / gathered over DP x CP (identical weights).
        self.dpg = [[par.rank(t, c, d, i) for d in range(par.dp) for c in range(par.cp)] for t in range(par.tp)]
        self.etpg, self.epg, self.edpg = _expert_groups(par, i, replicas)
        self._group_map = {TP: self.tpg, EP: self.epg, ETP: self.etpg, CP: self.cpg, DP_EP: self.edpg}
        self._pairs: dict[int, list[tuple[int, int]]] = {}  # destination rank -> this rank's send pairs
        self.dp = DpStream(self.env, ex.model, self._groups, self.st)
        self.params = DpStream(self.env, ex.model, self._groups, self.st)
        self.ready: dict[tuple[int, int], simpy.Event] = {}  # (chunk, row) -> parameters gathered
        self.lag = 0.0  # seconds of work done on this rank's stream but not yet on the clock
        self._fixed_cache: dict[tuple, float | None] = {}
        self._plans: dict[tuple, list] = {}  # (chunk, pass, buckets) -> closed_runs.plan
        self._seq_plans: dict[int, tuple[list, dict]] = {}  # id(plan) -> (plan, its _sequences)
        self.row_key: tuple[int, int] | None = None  # the (chunk, row) whose phases run now, for EndToEnd.csv
        self.row_name = ""

    def compute(self, ns: float, name: str) -> None:
        """Compute on this rank's stream. The clock is not advanced here: work accumulates in `lag`
        until the rank next meets the network or another rank (`flush`), so a run of compute and
        NVLink-only collectives costs one Event, not one per phase."""
        sec = ns * 1e-9
        debt = self.dp.gpu_debt + self.params.gpu_debt
        if debt > 0:
            self.st.spans.append(("compute", "codec kernels", self.env.now + self.lag, debt, "codec"))
            self.lag += debt
            self.dp.gpu_debt = self.params.gpu_debt = 0.0
        if sec > 0:
            self.st.compute += sec
            if self.st.record:
                self.st.spans.append(("compute", name, self.env.now + self.lag, sec, "compute"))
                got = self.st.tally(self.row_key, self.row_name, name)
                if got is not None:
                    got[0].compute[got[1]] += sec
            if name.endswith(closed_runs.RECOMPUTE_SUFFIX):
                self.st.recompute += sec
            self.lag += sec

    def flush(self):
        """Advance the clock over the accumulated work."""
        if self.lag > 0:
            lag, self.lag = self.lag, 0.0
            yield self.env.timeout(lag)

    def _groups(self, group: str) -> list[list[int]]:
        return self._group_map.get(group, self.dpg)

    def _charge(self, group: str, t0: float, d: float, name: str, c: Collective) -> None:
        attr = closed_runs.charged_to(group)
        setattr(self.st, attr, getattr(self.st, attr) + d)
        if d > 0 and self.st.record:
            self.st.spans.append((f"{group} comm", name, t0, d, "collective", _args(c.op, group, c.bytes, d)))

    def _fixed(self, c: Collective) -> float | None:
        model = self.ex.model
        if not model.fixed_cacheable:
            return model.fixed_s(c.op, self._groups(c.group), c.bytes, c.traffic, c.group)
        key = (c.op, c.group, c.bytes)
        if key not in self._fixed_cache:
            self._fixed_cache[key] = model.fixed_s(c.op, self._groups(c.group), c.bytes, c.traffic, c.group)
        return self._fixed_cache[key]

    def closed(self, ph: Phase, name: str) -> bool:
        """Run a phase that needs no network Event (no collective, or one in closed form) and say
        so; False leaves the phase to `networked`. (Most phases of a long pipeline are closed: a
        plain call, not a generator per phase.) With overlap_chunks the collective starts after
        the first chunk of compute and only what outlasts the rest of the compute is exposed."""
        c = ph.collective
        if c is None:
            self.compute(ph.compute_ns, name)
            return True
        fixed = self._fixed(c)
        if fixed is None:
            return False
        chunks = ph.overlap_chunks
        first = ph.compute_ns / chunks if chunks > 0 else ph.compute_ns
        self.compute(first, name)
        t0 = self.env.now + self.lag
        exposed = fixed if chunks <= 0 else max(0.0, fixed - (ph.compute_ns - first) * 1e-9)
        self.compute(ph.compute_ns - first, name)
        self._charge(c.group, t0, exposed, name, c)
        if self.st.record:
            self.st.tally_comm(self.row_key, self.row_name, name, exposed, fixed, c, len(self._groups(c.group)[0]))
        self.lag += exposed
        return True

    def networked(self, ph: Phase, name: str):
        """A phase's compute, then its collective on the network (blocking, or pipelined with the
        compute in overlap_chunks chunks)."""
        c = ph.collective
        chunks = ph.overlap_chunks
        first = ph.compute_ns / chunks if chunks > 0 else ph.compute_ns
        self.compute(first, name)
        if self.lag > 0:  # flush(), inline: most of an iteration's Events pass here
            lag, self.lag = self.lag, 0.0
            yield self.env.timeout(lag)
        issued = self.env.now
        groups = self._groups(c.group)
        ev = self.ex.model.collective(c.op, groups, c.bytes, c.traffic, c.group)
        if chunks > 0:
            self.compute(ph.compute_ns - first, name)
            yield from self.flush()
        t0 = self.env.now
        yield ev
        self._charge(c.group, t0, self.env.now - t0, name if chunks <= 0 else f"{name} (overlapped)", c)
        if self.st.record:
            self.st.tally_comm(self.row_key, self.row_name, name, self.env.now - t0, self.env.now - issued, c,
                               len(groups[0]))  # fmt: skip

    def wait_recv(self, direction: str, vs: int, j: int):
        yield from self.flush()
        ev, t0 = self.ex.recv[direction][vs][j], self.env.now
        yield ev
        waited = self.env.now - t0
        transfer = self.env.now - self.ex.sent_at.get((direction, vs, j), self.env.now)
        comm = min(waited, transfer)
        self.st.pp += comm
        self.st.bubble += waited - comm
        if waited > 0:
            self.st.spans.append(("PP recv", f"mb{j} wait", t0, waited, "stall"))

    def send(self, direction: str, to_vs: int, j: int, s: Send) -> None:
        to = to_vs % self.ex.par.pp
        pairs = self._pairs.get(to)
        if pairs is None:
            par = self.ex.par
            pairs = self._pairs[to] = [(par.rank(t, c, d, self.i), par.rank(t, c, d, to))
                                       for t in range(par.tp) for c in range(par.cp) for d in range(self.ex.replicas)]  # fmt: skip
        t0 = self.env.now
        self.ex.sent_at[(direction, to_vs, j)] = t0
        done = self.ex.recv[direction][to_vs][j]
        if self.st.record:
            done.callbacks.append(
                lambda _e: self.st.spans.append(
                    ("PP send", f"mb{j} {direction} to stage {to}", t0, self.env.now - t0, "send",
                     _args("sendrecv", "PP", s.bytes, self.env.now - t0))
                )
            )  # fmt: skip
        self.ex.model.send(pairs, s.bytes, s.traffic, "PP", done=done)

    def _gather(self, c: int, rows) -> None:
        """Issue FSDP's gathers of chunk c's units (in the order the rows will need them)."""
        prog = self.chunks[c]
        for k in rows:
            self.ready[(c, k)] = self.params.enqueue(prog.gathers[k], f"params@{prog.layers[k].name}", self.ex.dp)

    def _wait(self, ev: simpy.Event | None, name: str):
        yield from self.flush()
        if ev is not None and not ev.processed:
            t0 = self.env.now
            yield ev
            self.st.gather += self.env.now - t0
            self.st.spans.append(("compute", f"wait for {name}", t0, self.env.now - t0, "stall"))

    def _planned(self, c: int) -> bool:
        """Whether chunk c's passes run as planned closed runs: nothing to record per phase, no
        parameter gathers between rows, closed-form times that do not change."""
        return not self.st.record and not self.chunks[c].gathers and self.ex.model.fixed_cacheable

    def _plan(self, c: int, kind: str, buckets: bool = False) -> list:
        key = (c, kind, buckets)
        got = self._plans.get(key)
        if got is None:
            prog, names = self.chunks[c], self.names[c]
            if kind == "f":
                steps = [("phase", x.fwd, names[k][0], k) for k, x in enumerate(prog.layers)]
            else:
                steps = []
                for k in range(len(prog.layers) - 1, -1, -1):
                    x = prog.layers[k]
                    steps += [("phase", x.ig, names[k][1], k), ("compute", x.wg.compute_ns, names[k][2])]
                    if buckets and k in prog.buckets:
                        steps.append(("bucket", k))
            got = self._plans[key] = closed_runs.plan(steps, self._fixed)
        return got

    def _apply(self, run: closed_runs.ClosedRun) -> None:
        """A closed run's additions, in the order the per-phase calls made them."""
        self.compute(0.0, "closed run")  # a codec's pending GPU time goes first, as before a run's first phase
        lag = self.lag
        for v in run.lag:
            lag += v
        self.lag = lag
        self._apply_stats(run)

    def _apply_stats(self, run: closed_runs.ClosedRun) -> None:
        st = self.st
        for attr, vals in (("compute", run.compute), ("recompute", run.recompute), *run.charges.items()):
            if vals:
                acc = getattr(st, attr)
                for v in vals:
                    acc += v
                setattr(st, attr, acc)

    def _run_plan(self, c: int, items: list):
        """Run a planned pass: closed runs applied, networked phases and DP hand-offs in between;
        a run of networked phases (with the closed runs between them) as one sequence on the
        network where the model can run it so (`_sequence`)."""
        prog, ex = self.chunks[c], self.ex
        seqs = self._sequences(items)
        i, n = 0, len(items)
        while i < n:
            got = seqs.get(i)
            if got is not None and not (self.dp.gpu_debt or self.params.gpu_debt):
                stop, run, colls = got
                ev = self._sequence(run, colls)
                if ev is not None:
                    yield ev
                    self._charge_sequence(run, ev.value)
                    i = stop
                    continue
            item = items[i]
            i += 1
            if type(item) is closed_runs.ClosedRun:
                self._apply(item)
            elif item[0] == "net":
                self.row_key, self.row_name = (c, item[3]), prog.layers[item[3]].name
                yield from self.networked(item[1], item[2])
            else:
                k = item[1]
                yield from self.flush()
                self.dp.enqueue(prog.buckets[k], f"grads@{prog.layers[k].name}", ex.dp, ((c, k), prog.layers[k].name))
        self.row_key = None

    def _sequences(self, items: list) -> dict[int, tuple[int, closed_runs.NetRun, list]]:
        """A plan's runs of networked phases (closed_runs.sequences), each as (its end, its NetRun,
        its collectives as the model's sequence takes them), worked out once per plan."""
        got = self._seq_plans.get(id(items))
        if got is None or got[0] is not items:
            seqs = {}
            for a, b in closed_runs.sequences(items).items():
                run = closed_runs.net_run(items[a:b])
                colls = [(p.collective.op, self._groups(p.collective.group), p.collective.bytes, p.collective.traffic,
                          p.collective.group) for p in run.phases]  # fmt: skip
                seqs[a] = (b, run, colls)
            got = self._seq_plans[id(items)] = (items, seqs)
        return got[1]

    def _sequence(self, run: closed_runs.NetRun, colls: list) -> simpy.Event | None:
        """The run's collectives as the network model's sequence, the first after the lag the
        per-phase code would have flushed before it; None if the model cannot run it so."""
        lag = self.lag
        for v in run.lead:
            lag += v
        ev = self.ex.model.sequence(colls, [lag, *run.gaps])
        if ev is not None:
            self.lag = 0.0
        return ev

    def _charge_sequence(self, run: closed_runs.NetRun, seconds: list[float]) -> None:
        """A finished sequence's additions to the stage's statistics, each in the per-phase order."""
        st, vals = self.st, run.consts + seconds
        for attr, idx in run.adds.items():
            acc = getattr(st, attr)
            for i in idx:
                acc += vals[i]
            setattr(st, attr, acc)

    def forward(self, c: int, j: int):
        ex, prog, vs = self.ex, self.chunks[c], c * self.ex.par.pp + self.i
        names = self.names[c]
        if vs > 0:
            yield from self.wait_recv("fwd", vs, j)
        if self._planned(c):
            yield from self._run_plan(c, self._plan(c, "f"))
            if vs < ex.virtual - 1:
                yield from self.flush()
                self.send("fwd", vs + 1, j, prog.send_fwd)
            return
        if prog.gathers and prog.regather:
            yield from self.flush()
            self._gather(c, sorted(prog.gathers))
        for k, x in enumerate(prog.layers):
            if k in prog.gathers:
                yield from self._wait(self.ready.get((c, k)), "parameter all-gather")
            self.row_key, self.row_name = (c, k), x.name
            name = names[k][0]
            if not self.closed(x.fwd, name):
                yield from self.networked(x.fwd, name)
        self.row_key = None
        if vs < ex.virtual - 1:
            yield from self.flush()
            self.send("fwd", vs + 1, j, prog.send_fwd)

    def backward(self, c: int, j: int):
        ex, prog, vs = self.ex, self.chunks[c], c * self.ex.par.pp + self.i
        names = self.names[c]
        if vs < ex.virtual - 1:
            yield from self.wait_recv("bwd", vs, j)
        last = j == ex.par.microbatches - 1
        if self._planned(c):
            yield from self._run_plan(c, self._plan(c, "b", last and ex.overlap_grads))
            if vs > 0:
                yield from self.flush()
                self.send("bwd", vs - 1, j, prog.send_bwd)
            return
        unit_end = ex.unit_ends[id(prog)]
        if prog.gathers and prog.regather:
            yield from self.flush()
            self._gather(c, sorted(prog.gathers, reverse=True))
        for k in range(len(prog.layers) - 1, -1, -1):
            x = prog.layers[k]
            if k in unit_end and prog.regather:
                yield from self._wait(self.ready.get((c, unit_end[k])), "FSDP all-gather")
            self.row_key, self.row_name = (c, k), x.name
            name = names[k][1]
            if not self.closed(x.ig, name):
                yield from self.networked(x.ig, name)
            self.compute(x.wg.compute_ns, names[k][2])
            if last and ex.overlap_grads and k in prog.buckets:
                yield from self.flush()
                self.dp.enqueue(prog.buckets[k], f"grads@{x.name}", ex.dp, ((c, k), x.name))
        self.row_key = None
        if vs > 0:
            yield from self.flush()
            self.send("bwd", vs - 1, j, prog.send_bwd)

    def process(self):
        ex = self.ex
        # Parameters kept through the iteration are gathered once, in the order the forwards need them
        # (Megatron chains each bucket's gather to the previous one's; FSDP prefetches the next unit).
        for c, prog in enumerate(self.chunks):
            if prog.gathers and not prog.regather:
                self._gather(c, sorted(prog.gathers))
        for kind, c, j in ex.schedule.order(self.i, ex.par.pp, ex.par.microbatches, ex.chunks):
            yield from (self.forward(c, j) if kind == "f" else self.backward(c, j))
            ex.pass_done()
        yield from self.flush()
        if not ex.overlap_grads:
            for c in range(len(self.chunks) - 1, -1, -1):
                prog = self.chunks[c]
                for k in sorted(prog.buckets, reverse=True):
                    self.dp.enqueue(
                        prog.buckets[k], f"grads@{prog.layers[k].name}", ex.dp, ((c, k), prog.layers[k].name)
                    )
        if self.dp.tail is not None:
            t0 = self.env.now
            yield self.dp.tail
            if self.env.now > t0:
                self.st.spans.append(("compute", "wait for DP", t0, self.env.now - t0, "stall"))
        self.compute(sum(p.optimizer_ns for p in self.chunks), "optimizer step")
        yield from self.flush()
        for prog in self.chunks:
            g = prog.param_allgather
            if g is not None:
                t0 = self.env.now
                yield ex.model.collective(g.op, self.dpg, g.bytes, g.traffic, "DP")
                d = self.env.now - t0
                self.st.spans.append(("DP comm", "param all-gather", t0, d, "collective",
                                      _args(g.op, "DP", g.bytes, d)))  # fmt: skip
        self.st.end = self.env.now
        ex.pass_done()  # the stage's gradient reduction and optimizer step count as one more pass


class PipelineExecutor:
    """One training iteration: every pipeline rank runs the schedule (1F1B, GPipe, interleaved) over
    its model chunks on the network model.

    `programs` holds one StageProgram per virtual stage (pp x chunks; rank i's chunk c is
    programs[c * pp + i]). `replicas`: how many DP replicas' TP, CP and pipeline traffic to put on
    the network (all by default up to FOLD_ABOVE GPUs, else FOLD_REPLICAS). DP collectives always
    involve every rank. Replicas are symmetric, so this is exact when their TP/PP traffic shares no
    link with another replica's, and otherwise leaves out some contention on shared fabric links.
    """

    def __init__(
        self, programs: list[StageProgram], par: Parallelism, model: NetworkModel, schedule: str = "1f1b",
        replicas: int | None = None, progress: Callable[[int, int], None] | None = None, detail: bool = True,
    ):  # fmt: skip
        self.programs, self.par, self.model, self.env = programs, par, model, model.env
        self.detail = detail  # record timeline spans and per-row tallies (trace, figures, EndToEnd.csv)
        self.progress, self.passes_done = progress, 0
        self.chunks = len(programs) // par.pp
        self.virtual = len(programs)
        self.schedule = SCHEDULES["interleaved" if self.chunks > 1 else schedule]()
        if replicas is None:
            replicas = par.dp if par.world <= FOLD_ABOVE else min(par.dp, FOLD_REPLICAS)
        self.replicas = max(1, min(replicas, par.dp))
        span = expert_span(par)
        if span > 1:  # an expert group spans several DP replicas: simulate whole groups
            self.replicas = max(span, self.replicas - self.replicas % span)
        self.dp = par.dp * par.cp
        # FSDP reduce-scatters as each unit's gradients are ready; Megatron only with overlap_grad_reduce.
        self.overlap_grads = par.overlap_grad_reduce or par.fsdp
        self.unit_ends = {id(p): _unit_ends(p) for p in programs}
        m = par.microbatches
        self.recv = {d: [[self.env.event() for _ in range(m)] for _ in range(self.virtual)] for d in ("fwd", "bwd")}
        self.sent_at: dict[tuple[str, int, int], float] = {}

    def start(self) -> simpy.Event:
        """Start every stage's process; the Event succeeds when the last stage has finished."""
        self.runners = [StageRunner(self, i) for i in range(self.par.pp)]
        return self.env.all_of([self.env.process(r.process()) for r in self.runners])

    def pass_done(self) -> None:
        """One forward or backward of one micro-batch on one chunk (or a stage's end of iteration)
        has finished somewhere."""
        self.passes_done += 1
        if self.progress is not None:
            self.progress(self.passes_done, 2 * self.par.microbatches * self.virtual + self.par.pp)

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
        us = {k: getattr(st, k) * 1e6 for k in ("compute", "tp", "ep", "pp", "bubble", "cp")}
        dp = max(0.0, end * 1e6 - sum(us.values()))
        cp = us.pop("cp")
        bd = Breakdown.from_parts(**us, total=end * 1e6, dp=dp, comm=us["tp"] + us["ep"] + us["pp"] + dp + cp)
        par = self.par
        bd.timeline = {f"stage {i} (rank {par.rank(pp=i)})": Breakdown.spans_ns(s.spans) for i, s in enumerate(stats)}
        bd.rows = [tally.report(name, par.microbatches) for _key, (name, tally) in sorted(st.rows.items())]
        report = self.model.report(end)
        if "compression" in report:
            bd.extra["compression"] = report.pop("compression")
        counts = {key: report.pop(key) for key in ("flows", "solves", "events") if key in report}
        bd.extra.update({"critical_stage": k, **counts, "simulated_dp_replicas": self.replicas, **report})
        bd.extra.update({"recompute_us": st.recompute * 1e6, "exposed_cp_us": st.cp * 1e6,
                         "exposed_param_gather_us": st.gather * 1e6})  # fmt: skip
        return bd


def _unit_ends(prog: StageProgram) -> dict[int, int]:
    """For FSDP's backward: the last row of each gathered unit -> the unit's first row."""
    starts = sorted(prog.gathers) + [len(prog.layers)]
    return {z - 1: a for a, z in zip(starts, starts[1:])}
