"""`netsim optimize bandwidth`: LIBRA's bandwidth split of a multi-dimensional topology for a
workload, from the closed forms, optionally confirmed on the flow model under contention."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from netsim.errors import InputError
from netsim.network.cost import dim_cost_per_GBps, load_cost_table
from netsim.network.topology import Topology, load_topology
from netsim.optimize.bandwidth import BandwidthProblem, Split, parse_constraint
from netsim.system.libra import LibraFlowLoop, loop_model
from netsim.workload.program import LayerProgram
from netsim.workload.simai_file import read_simai_workload, to_program


@dataclass
class Request:
    topology: str
    budget_GBps: float
    workload: str | None = None
    model: str | None = None
    objective: str = "perf"
    loop: str = "fwd-in-bckwd"
    constraints: list[str] = field(default_factory=list)
    confirm: str | None = None
    cost_file: str | None = None
    pipelined: bool = True


def dim_names(topo: Topology) -> list[str]:
    """Tier names where they are unique, else dim0, dim1, ...; both are accepted in constraints."""
    tiers = [d[4] for d in topo.dims]
    return [t if tiers.count(t) == 1 else f"dim{i}" for i, t in enumerate(tiers)]


def _program(req: Request, topo: Topology) -> LayerProgram:
    if (req.workload is None) == (req.model is None):
        raise InputError("give exactly one of --model NAME or --workload FILE", field="--model/--workload")
    if req.workload:
        return to_program(read_simai_workload(req.workload))
    from netsim.simulate import resolve_training
    from netsim.workload.compute import gpu_compute
    from netsim.workload.megatron import build_megatron

    model, par = resolve_training(req.model, topo.num_gpus, {"pp": 1})
    staged = build_megatron(model, par, gpu_compute(topo.gpu))
    return staged.unrolled[staged.representative()]


def _split_dict(s: Split, problem: BandwidthProblem, npus: int) -> dict:
    return {
        "split_GBps": [round(float(x), 6) for x in s.bandwidth_GBps], "split_pct": [round(float(x), 4) for x in s.pct],
        "time_us": s.time_ns / 1e3, "comm_us": s.comm_ns / 1e3, "cost_usd": s.cost_per_npu * npus,
        "cost_per_npu_usd": s.cost_per_npu,
    }  # fmt: skip


def optimize(req: Request) -> dict:
    t0 = time.perf_counter()
    topo = load_topology(req.topology)
    if not topo.dims:
        raise InputError(
            "bandwidth optimisation needs a multi_dim topology (fabric kind multi_dim)", where=req.topology
        )
    prog = _program(req, topo)
    sizes = [d[1] for d in topo.dims]
    try:
        model = loop_model(prog, sizes, req.loop, pipelined=req.pipelined)
    except ValueError as e:
        raise InputError(str(e), field="--workload") from None
    names = dim_names(topo)
    cons = [parse_constraint(c, names) for c in req.constraints]
    cost = dim_cost_per_GBps(topo, load_cost_table(req.cost_file))
    problem = BandwidthProblem(model, req.budget_GBps, cost, cons)
    best = problem.solve(req.objective)
    equal = problem.split(problem.equal)
    out = {**_split_dict(best, problem, topo.num_gpus), "dims": names, "objective": req.objective, "loop": req.loop,
           "budget_GBps": req.budget_GBps, "equal": _split_dict(equal, problem, topo.num_gpus),
           "speedup_vs_equal": equal.time_ns / best.time_ns,
           "comm_speedup_vs_equal": equal.comm_ns / best.comm_ns if best.comm_ns > 0 else 1.0,
           "solve_s": time.perf_counter() - t0}  # fmt: skip
    if req.confirm == "flow":
        out["confirm"] = confirm_on_flow(prog, topo, req, problem, best, equal)
    return out


def confirm_on_flow(prog, topo: Topology, req: Request, problem: BandwidthProblem, best: Split, equal: Split) -> list:
    """The closed-form optimum (dimensions pipelined, LIBRA's assumption), the optimum when they are
    not (phases in sequence, as the flow model runs them) and the equal split, ranked by the flow
    model's iteration time."""
    seq = loop_model(prog, [d[1] for d in topo.dims], req.loop, pipelined=False)
    seq_best = BandwidthProblem(seq, problem.B, problem.cost, problem.cons).solve(req.objective)
    rows = []
    for label, s in (("optimum (pipelined dims)", best), ("optimum (sequential dims)", seq_best), ("equal", equal)):
        b = s.bandwidth_GBps
        flow_ns = LibraFlowLoop(prog, topo.with_dim_bandwidths(b * 1e9), req.loop).run()
        rows.append({"split": label, "split_GBps": [round(float(x), 3) for x in b], "closed_form_us": problem.m.time_ns(b) / 1e3,
                     "sequential_us": seq.time_ns(b) / 1e3, "flow_us": flow_ns / 1e3})  # fmt: skip
    return sorted(rows, key=lambda r: r["flow_us"])
