"""One collective timed on the flow model, as nccl-tests reports it (algbw, busbw in GB/s of 1e9 B)."""

from __future__ import annotations

from netsim.collectives.closed_form import bus_factor
from netsim.collectives.models import FlowModel
from netsim.network.compression import NicCodec
from netsim.network.topology import Topology


def bench_collective(
    topo: Topology, op: str, ranks: list[int], size: int, algo: str = "ring", fidelity: str = "macro",
    ideal: bool = False, spray: bool = False, compression: NicCodec | None = None, traffic: str = "default",
) -> dict:  # fmt: skip
    """Time one collective over `ranks` (send/recv: the first two)."""
    model = FlowModel(topo, ideal=ideal, fidelity=fidelity, spray=spray, codec=compression)
    finished = {}
    groups = [ranks] if op != "sendrecv" else [ranks[:2]]
    ev = model.collective(op, groups, size, traffic=traffic, algo=algo)
    ev.callbacks.append(lambda _e: finished.setdefault("t", model.env.now))
    model.env.run()
    t = finished["t"]
    n = len(groups[0])
    algbw = size / t / 1e9 if t > 0 else float("inf")
    return {
        "op": op, "ranks": n, "bytes": size, "time_us": t * 1e6, "algbw_GBps": algbw,
        "busbw_GBps": algbw * bus_factor(op, n), "flows": model.fluid.flows_started, "solves": model.fluid.solves,
    }  # fmt: skip
