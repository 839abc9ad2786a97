"""LIBRA's training loops on a multi-dimensional network, as a function of per-dimension bandwidth.

reference/peers.md section 1: compute in cycles (ns at 1 GHz), sizes in bytes, bandwidth in GB/s
per NPU per dimension, so bytes / (GB/s) is ns. Model-parallel collectives (fwd, ig) span the
model-parallel group (innermost dimensions), wg collectives the data-parallel group (outermost).
Loops: `no-overlap` sum(fwd) + sum over reversed layers (ig + wg, compute and communication);
`overlap` each backward layer takes max(ig_c + ig_comm, ig_c + wg_c + wg_comm); `fwd-in-bckwd`
the no-overlap loop with the forward communication counted twice, as LIBRA's `*_fwd_in_bckwd`
runners do (its compute once: that reproduces the artifact's PerfPerCost split, 98.46 / 1.54 % for
2D 17B at 100 GB/s, where counting the forward compute twice gives 98.66 / 1.34).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from netsim.collectives.multidim import collective_ns, dim_traffic, group_dims
from netsim.ops import ALLTOALL
from netsim.workload.program import DP, LayerProgram, Phase

LOOPS = ("no-overlap", "overlap", "fwd-in-bckwd")


@dataclass
class LoopModel:
    """T(b) = compute + sum_k mult_k tau_k(b) + sum_m max(base_a + tau_a(b), base_b + tau_b(b)),
    with tau(b) a collective's time from its per-dimension traffic (max over dims, or the sum)."""

    ndims: int
    compute_ns: float = 0.0
    traffic: list[np.ndarray] = field(default_factory=list)  # one per distinct collective
    mult: list[float] = field(default_factory=list)
    overlapped: list[tuple[float, int, float, int]] = field(default_factory=list)  # (base_a, k_a, base_b, k_b)
    pipelined: bool = True

    def term(self, traffic: np.ndarray, mult: float = 0.0) -> int:
        """Index of a collective with this traffic (collectives with equal traffic share one)."""
        for k, t in enumerate(self.traffic):
            if np.array_equal(t, traffic):
                self.mult[k] += mult
                return k
        self.traffic.append(traffic)
        self.mult.append(mult)
        return len(self.traffic) - 1

    def tau(self, b: np.ndarray) -> np.ndarray:
        return np.array([collective_ns(t, b, self.pipelined) for t in self.traffic])

    def time_ns(self, b) -> float:
        tau = self.tau(np.asarray(b, dtype=float))
        t = self.compute_ns + float(np.dot(self.mult, tau)) if self.traffic else self.compute_ns
        for ba, ka, bb, kb in self.overlapped:
            t += max(ba + (tau[ka] if ka >= 0 else 0.0), bb + (tau[kb] if kb >= 0 else 0.0))
        return t

    def comm_ns(self, b) -> float:
        return self.time_ns(b) - self.time_ns_without_comm()

    def time_ns_without_comm(self) -> float:
        return self.compute_ns + sum(max(ba, bb) for ba, _ka, bb, _kb in self.overlapped)


def _traffic(ph: Phase, sizes: list[int], mp: int, npus: int) -> np.ndarray:
    nd = len(sizes)
    if ph.op is None or ph.bytes <= 0:
        return np.zeros(nd)
    data = ph.group == DP
    dims = group_dims(sizes, npus // mp if data else mp, outermost=data)
    return dim_traffic(ph.op, ph.bytes, dims, nd)


def loop_model(prog: LayerProgram, sizes: list[int], loop: str = "fwd-in-bckwd", pipelined: bool = True) -> LoopModel:
    """LIBRA's iteration time of a workload (one pass: LIBRA's num-passes 1) on dims of `sizes`."""
    if loop not in LOOPS:
        raise ValueError(f"unknown loop {loop!r}; expected one of {', '.join(LOOPS)}")
    npus, mp = int(np.prod(sizes)), prog.tp
    m = LoopModel(ndims=len(sizes), pipelined=pipelined)
    fwd_times = 2 if loop == "fwd-in-bckwd" else 1
    for x in prog.layers:
        tf, ti, tw = (_traffic(p, sizes, mp, npus) for p in (x.fwd, x.ig, x.wg))
        m.compute_ns += x.fwd.compute_ns
        m.term(tf, float(fwd_times))
        if loop == "overlap":
            ka, kb = m.term(ti), m.term(tw)
            m.overlapped.append((x.ig.compute_ns, ka, x.ig.compute_ns + x.wg.compute_ns, kb))
        else:
            m.compute_ns += x.ig.compute_ns + x.wg.compute_ns
            m.term(ti, 1.0)
            m.term(tw, 1.0)
    return m


class LibraFlowLoop:
    """The same loop on the flow model: each collective as its per-dimension phases (reduce-scatter
    outward, all-gather back) with every group of its kind at once, so links shared by groups and
    multi-hop ring paths contend. Phases run one after another (no pipelining across dimensions).
    Each dimension runs the algorithm ASTRA-sim's LIBRA configs give it (ring_direct_ring_...):
    rings on ring and switch dimensions, direct exchanges on fully-connected ones (every peer link)."""

    def __init__(self, prog: LayerProgram, topo, loop: str = "fwd-in-bckwd"):
        from netsim.collectives.models import FlowModel

        self.prog, self.loop = prog, loop
        self.model = FlowModel(topo)
        self.env = self.model.env
        self.sizes = [d[1] for d in topo.dims]
        self.kinds = [d[0] for d in topo.dims]
        n, mp = topo.num_gpus, prog.tp
        self.groups = {
            "MP": [list(range(g * mp, (g + 1) * mp)) for g in range(n // mp)],
            "DP": [list(range(t, n, mp)) for t in range(mp)],
        }
        self._plans: dict = {}

    def _plan(self, ph: Phase):
        from netsim.collectives.multidim import hierarchical_phases

        kind = "DP" if ph.group == DP else "MP"
        key = (ph.op, ph.bytes, kind)
        if key not in self._plans:
            per_group = [hierarchical_phases(ph.op, ph.bytes, g, self.sizes) for g in self.groups[kind] if len(g) > 1]
            merged = []
            for i in range(len(per_group[0]) if per_group else 0):
                op, _subs, size, d = per_group[0][i]
                if self.kinds[d] == "fully_connected":
                    op = ALLTOALL  # direct: each member sends size/n to every peer (RS and AG alike)
                merged.append((op, [s for p in per_group for s in p[i][1]], size))
            self._plans[key] = merged
        return self._plans[key]

    def comm(self, ph: Phase):
        if ph.op is None or ph.bytes <= 0:
            return
        for op, subgroups, size in self._plan(ph):
            yield self.model.collective(op, subgroups, size, kind="DP" if ph.group == DP else "TP")

    def _compute(self, ns: int):
        if ns > 0:
            yield self.env.timeout(ns * 1e-9)

    def _wg(self, x):
        yield from self._compute(x.wg.compute_ns)
        yield from self.comm(x.wg)

    def process(self):
        for x in self.prog.layers:
            yield from self._compute(x.fwd.compute_ns)
            yield from self.comm(x.fwd)
        for x in reversed(self.prog.layers):
            if self.loop == "fwd-in-bckwd":
                yield from self.comm(x.fwd)
            yield from self._compute(x.ig.compute_ns)
            if self.loop == "overlap":
                yield self.env.all_of([self.env.process(self.comm(x.ig)), self.env.process(self._wg(x))])
            else:
                yield from self.comm(x.ig)
                yield from self._wg(x)

    def run(self) -> float:
        """Iteration time (ns) on the flow model."""
        self.env.process(self.process())
        self.env.run()
        return self.env.now * 1e9
