"""One collective timed on the flow model, as nccl-tests reports it (algbw, busbw in GB/s of 1e9 B)."""

from __future__ import annotations

from netsim.collectives.closed_form import bus_factor
from netsim.collectives.models import FlowModel
from netsim.network.compression import NicCodec
from netsim.network.topology import Topology


def bench_collective(
    topo: Topology, op: str, ranks: list[int], size: int, algo: str = "ring", fidelity: str = "macro",
    ideal: bool = False, spray: bool = False, compression: NicCodec | None = None, traffic: str = "default",
    skew: float = 0.0,
) -> dict:  # fmt: skip
    """Time one collective over `ranks` (send/recv: the first two). `skew` (all-to-all): the first
    rank receives (1 + skew) times the mean share of every buffer, the others share the rest
    evenly (one hot expert rank: the MoE option moe_imbalance's meaning)."""
    model = FlowModel(topo, ideal=ideal, fidelity=fidelity, spray=spray, codec=compression)
    finished = {}
    groups = [ranks] if op != "sendrecv" else [ranks[:2]]
    ev = model.collective(op, groups, size, traffic=traffic, algo=algo, shares=hot_shares(len(ranks), skew))
    ev.callbacks.append(lambda _e: finished.setdefault("t", model.env.now))
    model.env.run()
    t = finished["t"]
    n = len(groups[0])
    algbw = size / t / 1e9 if t > 0 else float("inf")
    return {
        "op": op, "ranks": n, "bytes": size, "time_us": t * 1e6, "algbw_GBps": algbw,
        "busbw_GBps": algbw * bus_factor(op, n), "flows": model.fluid.flows_started, "solves": model.fluid.solves,
    }  # fmt: skip


def hot_shares(n: int, skew: float) -> list[float] | None:
    """Shares of a buffer per destination with the first receiving (1 + skew)/n; None when even."""
    if skew == 0:
        return None
    if not 0 < skew <= n - 1:
        raise ValueError(f"skew must be in (0, {n - 1}] for {n} ranks; got {skew}")
    hot = (1 + skew) / n
    return [hot] + [(1 - hot) / (n - 1)] * (n - 1)
