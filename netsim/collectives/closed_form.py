"""Alpha-beta closed forms of ring collectives (Thakur et al. 2005; NCCL's busbw definitions).

`bw` is the per-rank bus bandwidth (bytes/s) of the group's bottleneck, `alpha` the cost of
one step (start overhead + path latency). Sizes follow SimAI: S is the whole buffer (the
gathered total for all-gather, the input for reduce-scatter).
"""

from __future__ import annotations

from netsim.ops import ALLGATHER, ALLREDUCE, ALLTOALL, BROADCAST, REDUCE, REDUCESCATTER, SENDRECV

__all__ = [
    "ALLGATHER", "ALLREDUCE", "ALLTOALL", "BROADCAST", "REDUCE", "REDUCESCATTER", "SENDRECV",
    "bus_factor", "collective_time", "steps",
]  # fmt: skip


def bus_factor(op: str, n: int) -> float:
    """busbw = algbw x factor (nccl-tests PERFORMANCE.md; broadcast and reduce: factor 1)."""
    if n <= 1:
        return 0.0 if op != SENDRECV else 1.0
    if op == ALLREDUCE:
        return 2 * (n - 1) / n
    if op in (ALLGATHER, REDUCESCATTER, ALLTOALL):
        return (n - 1) / n
    return 1.0


def steps(op: str, n: int) -> int:
    if op == ALLREDUCE:
        return 2 * (n - 1)
    if op in (ALLGATHER, REDUCESCATTER, ALLTOALL):
        return n - 1
    if op in (BROADCAST, REDUCE):
        return n - 1  # the chain's pipeline fill: the last rank is n-1 hops from the root
    return 1


def collective_time(op: str, n: int, size: float, bw: float, alpha: float) -> float:
    """Seconds for a ring (or direct all-to-all, or a single send) of `size` bytes over n ranks."""
    if size <= 0 or (n <= 1 and op != SENDRECV):
        return 0.0
    return steps(op, n) * alpha + bus_factor(op, n) * size / bw
