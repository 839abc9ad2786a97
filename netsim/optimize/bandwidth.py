"""LIBRA's question: how to split a per-NPU bandwidth budget across a multi-dimensional network's
dimensions to train fastest (Perf) or at the best performance per dollar (PerfPerCost).

LIBRA ran 500k steps of Adam on the bandwidth tensor; the Perf problem is convex (each collective's
time is a max of b_d^-1 terms), so netsim solves it exactly in epigraph form with SLSQP:
variables b (GB/s per dim) and one time t_k per distinct collective; minimise
compute + sum_k mult_k t_k (+ the overlapped layers' max terms) subject to t_k >= traffic_kd / b_d,
sum b = budget, and any linear design constraints (LIBRA's ISPASS orderings, per-dimension caps).
PerfPerCost multiplies the objective by the network's cost (linear in b); it is not convex, so it
starts from the Perf optimum and the equal split and keeps the best.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from netsim.errors import InputError
from netsim.system.libra import LoopModel
from netsim.units import parse_bandwidth


@dataclass
class Constraint:
    """coef . b (<=, >=, ==) rhs, b in GB/s."""

    coef: np.ndarray
    op: str
    rhs: float


@dataclass
class Split:
    bandwidth_GBps: np.ndarray
    time_ns: float
    comm_ns: float
    cost_per_npu: float

    @property
    def pct(self) -> np.ndarray:
        return 100 * self.bandwidth_GBps / self.bandwidth_GBps.sum()


def parse_constraint(text: str, names: list[str]) -> Constraint:
    """'pod <= 100 GB/s', 'package >= node', 'node + pod == 200 GB/s' (names: tier names or dimN)."""
    m = re.fullmatch(r"\s*(.+?)\s*(<=|>=|==|=)\s*(.+?)\s*", text)
    if not m:
        raise InputError(f"expected 'DIM <= VALUE' (or >=, ==), got {text!r}", field="--constraint")
    coef, rhs = np.zeros(len(names)), 0.0
    for side, sign in ((m.group(1), 1.0), (m.group(3), -1.0)):
        for term in side.split("+"):
            t = term.strip().lower()
            if t in names:
                coef[names.index(t)] += sign
                continue
            try:
                rhs -= sign * parse_bandwidth(term.strip()) / 1e9
            except ValueError:
                raise InputError(
                    f"{term.strip()!r} is neither a dimension ({', '.join(names)}) nor a bandwidth",
                    field="--constraint",
                ) from None
    return Constraint(coef, "==" if m.group(2) in ("==", "=") else m.group(2), rhs)


class BandwidthProblem:
    """The epigraph form of one loop model's iteration time over a budget."""

    def __init__(self, model: LoopModel, budget: float, cost: np.ndarray, constraints: list[Constraint] = ()):
        self.m, self.B, self.cost, self.cons = model, budget, cost, list(constraints)
        self.D, self.K, self.M = model.ndims, len(model.traffic), len(model.overlapped)
        self.equal = np.full(self.D, budget / self.D)
        # Times are scaled by the equal split's communication time, so the solver sees changes of
        # order one even where compute dominates the iteration.
        self.T0 = max(model.comm_ns(self.equal), 1e-9 * model.time_ns(self.equal), 1e-12)

    def split(self, b: np.ndarray) -> Split:
        return Split(np.asarray(b), self.m.time_ns(b), self.m.comm_ns(b), float(self.cost @ b))

    def _start(self, b: np.ndarray) -> np.ndarray:
        tau = self.m.tau(b) / self.T0
        u = [max(ba / self.T0 + (tau[ka] if ka >= 0 else 0), bb / self.T0 + (tau[kb] if kb >= 0 else 0))
             for ba, ka, bb, kb in self.m.overlapped]  # fmt: skip
        return np.concatenate([b, tau, u])

    def _comm(self, x: np.ndarray) -> float:
        """Scaled iteration time less its compute (what the bandwidth split changes)."""
        t = x[self.D : self.D + self.K]
        return float(np.dot(self.m.mult, t)) + float(x[self.D + self.K :].sum()) - self._fixed

    @property
    def _fixed(self) -> float:
        return sum(max(ba, bb) for ba, _ka, bb, _kb in self.m.overlapped) / self.T0

    def _time(self, x: np.ndarray) -> float:
        return self.m.time_ns_without_comm() / self.T0 + self._comm(x)

    def _constraints(self) -> list[dict]:
        D, K, T0 = self.D, self.K, self.T0
        out = [{"type": "eq", "fun": lambda x: x[:D].sum() - self.B}]
        for k, tr in enumerate(self.m.traffic):
            a = tr / T0
            if not (a > 0).any():
                continue
            if self.m.pipelined:
                for d in np.flatnonzero(a > 0):
                    out.append({"type": "ineq", "fun": lambda x, k=k, d=d, ad=a[d]: x[D + k] - ad / x[d]})
            else:
                out.append(
                    {"type": "ineq", "fun": lambda x, k=k, a=a: x[D + k] - float((a[a > 0] / x[:D][a > 0]).sum())}
                )
        for j, (ba, ka, bb, kb) in enumerate(self.m.overlapped):
            for base, kk in ((ba, ka), (bb, kb)):
                out.append({"type": "ineq", "fun": lambda x, j=j, base=base, kk=kk: x[D + K + j] - base / T0
                            - (x[D + kk] if kk >= 0 else 0.0)})  # fmt: skip
        for c in self.cons:
            if c.op == "==":
                out.append({"type": "eq", "fun": lambda x, c=c: float(c.coef @ x[:D]) - c.rhs})
            else:
                s = 1.0 if c.op == "<=" else -1.0
                out.append({"type": "ineq", "fun": lambda x, c=c, s=s: s * (c.rhs - float(c.coef @ x[:D]))})
        return out

    def solve(self, objective: str = "perf") -> Split:
        """The best split for `perf` or `perf-per-cost`."""
        bounds = [(1e-6 * self.B, self.B)] * self.D + [(0.0, None)] * (self.K + self.M)
        cons = self._constraints()
        cost_eq = float(self.cost @ self.equal) or 1.0

        def perf(x):
            return self._comm(x)

        def ppc(x):
            return self._time(x) * float(self.cost @ x[: self.D]) / cost_eq

        best = self._run(perf, self._start(self.equal), bounds, cons)
        if objective == "perf-per-cost":
            cands = [self._run(ppc, self._start(b), bounds, cons) for b in (best, self.equal)]
            best = min(cands, key=lambda b: self.m.time_ns(b) * float(self.cost @ b))
        return self.split(best)

    def _run(self, fun, x0, bounds, cons) -> np.ndarray:
        res = minimize(fun, x0, method="SLSQP", bounds=bounds, constraints=cons,
                       options={"maxiter": 2000, "ftol": 1e-12})  # fmt: skip
        if not res.success and "Positive directional derivative" not in res.message:
            raise InputError(
                f"the optimiser did not converge ({res.message}); check the constraints", field="--constraint"
            )
        return np.asarray(res.x[: self.D])
