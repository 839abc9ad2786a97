"""The flow backend: SimPy clock, fluid max-min network, collectives as flows.

Symmetric ranks are folded: every rank of a pipeline stage runs the same program at the same
time, so one SimPy process drives a whole stage, and each collective it issues launches the
flows of every group of that kind in that stage at once (all TP groups, all DP groups), so
the network sees the full contention. A stage's collective ends when all its groups finish.
"""

from __future__ import annotations

import simpy

from netsim.collectives.closed_form import bus_factor
from netsim.collectives.engine import CollectiveEngine
from netsim.network.fluid import FluidNetwork
from netsim.network.routing import compile_network
from netsim.network.topology import Topology


def new_network(topo: Topology, ideal: bool = False, fidelity: str = "macro", spray: bool = False):
    env = simpy.Environment()
    net = compile_network(topo)
    fluid = FluidNetwork(env, net.capacity, net.latency)
    coll = CollectiveEngine(env, fluid, net, alpha=0.0 if ideal else topo.alpha, fidelity=fidelity, ideal=ideal,
                            spray=spray)
    return env, net, fluid, coll


def bench_collective(topo: Topology, op: str, ranks: list[int], size: int, algo: str = "ring",
                     fidelity: str = "macro", ideal: bool = False, spray: bool = False,
                     compression=None) -> dict:
    """Time one collective over `ranks` (nccl-tests' algbw/busbw, in GB/s of 1e9 bytes)."""
    env, net, fluid, coll = new_network(topo, ideal, fidelity, spray)
    if compression is not None:
        compression.attach(coll)
    finished = {}
    groups = [ranks] if op != "sendrecv" else [ranks[:2]]
    coll.run(op, groups, size, lambda: finished.setdefault("t", env.now), algo=algo)
    env.run()
    t = finished["t"]
    n = len(groups[0])
    algbw = size / t / 1e9 if t > 0 else float("inf")
    return {"op": op, "ranks": n, "bytes": size, "time_us": t * 1e6, "algbw_GBps": algbw,
            "busbw_GBps": algbw * bus_factor(op, n), "flows": fluid.flows_started, "solves": fluid.solves}
