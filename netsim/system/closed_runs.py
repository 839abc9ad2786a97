"""Runs of closed-form phases, planned once per model chunk and pass instead of called per phase.

A pipeline rank executes every micro-batch's rows in the same order, and most rows need no
network Event (compute, or a collective priced in closed form inside one NVSwitch domain). Their
effect on the rank is a fixed sequence of additions to its clock lag and its statistics. A
`ClosedRun` holds those additions in the order the per-phase code made them, so applying it
gives bit-identical sums (each accumulator sees the same additions in the same order), at the
cost of a tight loop instead of two method calls per phase (issue #18: the PP64 x 512
micro-batch case ran 1.3M closed phases). Rows that need the network, and the points where
gradient buckets are handed to the DP stream, split the runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from netsim.workload.program import CP, EP, Collective, Phase

RECOMPUTE_SUFFIX = "recompute ig"  # compute under this name also counts as recompute


def charged_to(group: str) -> str:
    """The StageStats attribute a blocking collective of `group` is charged to."""
    return "ep" if group == EP else "cp" if group == CP else "tp"


@dataclass
class ClosedRun:
    """The additions a run of closed phases makes: to the clock lag, to compute, recompute and
    the exposed TP / EP / CP seconds (StageStats attributes), each in execution order."""

    lag: list[float] = field(default_factory=list)
    compute: list[float] = field(default_factory=list)
    recompute: list[float] = field(default_factory=list)
    charges: dict[str, list[float]] = field(default_factory=lambda: {"tp": [], "ep": [], "cp": []})

    def add_compute(self, ns: float, name: str) -> None:
        sec = ns * 1e-9
        if sec > 0:
            self.compute.append(sec)
            if name.endswith(RECOMPUTE_SUFFIX):
                self.recompute.append(sec)
            self.lag.append(sec)

    def add_phase(self, ph: Phase, name: str, fixed: float) -> None:
        chunks = ph.overlap_chunks
        first = ph.compute_ns / chunks if chunks > 0 else ph.compute_ns
        self.add_compute(first, name)
        exposed = fixed if chunks <= 0 else max(0.0, fixed - (ph.compute_ns - first) * 1e-9)
        self.add_compute(ph.compute_ns - first, name)
        self.charges[charged_to(ph.collective.group)].append(exposed)
        self.lag.append(exposed)


# A pass as steps: ("phase", Phase, name, row), ("compute", ns, name), ("bucket", row).
Step = tuple


def plan(steps: Iterable[Step], fixed: Callable[[Collective], float | None]) -> list:
    """The pass as ClosedRuns and the steps between them: ("net", Phase, name, row) for a phase
    whose collective needs the network, ("bucket", row) where gradients go to the DP stream."""
    out: list = []
    run: ClosedRun | None = None
    for step in steps:
        kind = step[0]
        if kind == "compute":
            run = run or ClosedRun()
            run.add_compute(step[1], step[2])
            continue
        if kind == "phase":
            ph, name = step[1], step[2]
            c = ph.collective
            t = None if c is None else fixed(c)
            if c is None or t is not None:
                run = run or ClosedRun()
                if c is None:
                    run.add_compute(ph.compute_ns, name)
                else:
                    run.add_phase(ph, name, t)
                continue
            step = ("net", ph, name, step[3])
        if run is not None:
            out.append(run)
            run = None
        out.append(step)
    if run is not None:
        out.append(run)
    return out


STATS = ("compute", "recompute", "tp", "ep", "cp")  # the StageStats a sequence adds to


@dataclass
class NetRun:
    """Closed runs and blocking networked phases issued as one network sequence: the phases, the
    lag additions before the first collective (after whatever lag the rank carries), the gap
    before each later one (its lag from 0, summed in the same order), and each statistic's
    additions in execution order, as indices into `consts` followed by the collectives' seconds."""

    phases: list[Phase]
    lead: list[float]
    gaps: list[float]
    adds: dict[str, list[int]]
    consts: list[float]


def net_run(items: list) -> NetRun:
    """The NetRun of `items` (closed runs and "net" steps, as `sequences` delimits them)."""
    nets = [it for it in items if type(it) is not ClosedRun]
    consts: list[float] = []
    adds: dict[str, list[int]] = {k: [] for k in STATS}

    def const(attr: str, v: float) -> None:
        adds[attr].append(len(consts))
        consts.append(v)

    lags: list[list[float]] = [[]]
    for item in items:
        if type(item) is ClosedRun:
            lags[-1] += item.lag
            for attr, vals in (("compute", item.compute), ("recompute", item.recompute), *item.charges.items()):
                for v in vals:
                    const(attr, v)
            continue
        ph, name = item[1], item[2]
        sec = ph.compute_ns * 1e-9
        if sec > 0:
            lags[-1].append(sec)
            const("compute", sec)
            if name.endswith(RECOMPUTE_SUFFIX):
                const("recompute", sec)
        adds[charged_to(ph.collective.group)].append(-1 - (len(lags) - 1))  # the seconds of net phase k
        lags.append([])
    gaps = []
    for vals in lags[1:-1]:
        g = 0.0
        for v in vals:
            g += v
        gaps.append(g)
    n = len(consts)
    # -1 - k named net phase k: it lies after the constants.
    adds = {a: [i if i >= 0 else n - 1 - i for i in idx] for a, idx in adds.items() if idx}
    return NetRun([it[1] for it in nets], lags[0], gaps, adds, consts)


def sequences(items: list) -> dict[int, int]:
    """Where a planned pass's runs of blocking networked phases lie: the index of each run's first
    item -> one past its last networked phase. A run is closed runs and "net" steps without a
    gradient hand-off between them, and holds at least two networked phases (one alone gains
    nothing over the per-phase path)."""
    out: dict[int, int] = {}
    start, last, nets = 0, -1, 0
    for i, item in enumerate(items + [("bucket",)]):
        if type(item) is ClosedRun:
            continue
        if item[0] == "net" and item[1].overlap_chunks <= 0:
            nets += 1
            last = i
            continue
        if nets >= 2:
            out[start] = last + 1
        start, last, nets = i + 1, -1, 0
    return out
