"""Where a communication group sits on a topology, and the bandwidth its ring gets.

A group of n ranks with k ranks per server (TP groups are consecutive, DP groups strided by
TP: workload/parallel.py) runs NCCL-style rings: k channels, so each server's k NIC shares
carry one inter-server edge each, and intra-server edges use NVLink. Every group of the same
kind runs at the same time (all TP groups, or all DP groups), so a server's NICs are shared
evenly: a rank gets NICs x bandwidth / GPUs per server.
"""

from __future__ import annotations

from dataclasses import dataclass

from netsim.network.topology import Topology


@dataclass(frozen=True)
class GroupPlacement:
    n: int
    ranks_per_server: int
    servers: int
    bandwidth: float  # bytes/s per rank, the ring's bottleneck
    step_latency: float  # seconds: start overhead + the slowest ring edge's path latency
    # bytes/s per rank for a direct all-to-all: (n-1)/n of a rank's buffer over the slower of its
    # NVLink share ((k-1)/n of it) and its NIC share ((n-k)/n), which a ring's bandwidth is not.
    alltoall_bandwidth: float = float("inf")
    # Multi-dimensional topologies: (dim, members in that dim) the group spans, innermost first.
    dims: tuple[tuple[int, int], ...] = ()


def _path_latency(topo: Topology, a: int, b: int) -> float:
    return _latencies_from(topo, a).get(b, 0.0)


def _latencies_from(topo: Topology, src: int) -> dict:
    """Latency of the min-hop path (SimAI routes by BFS) from src to every node, cached."""
    key = ("latency_from", src)
    if key not in topo.cache:
        t = topo.links
        topo.cache[key] = {
            dst: sum(t.latency[t.link(u, v)] for u, v in zip(p, p[1:])) for dst, p in t.bfs_paths(src).items()
        }
    return topo.cache[key]


def _spanned_dims(topo: Topology, ranks: list[int]) -> tuple[tuple[int, int], ...]:
    out, stride = [], 1
    for d, (_kind, size, _bw, _lat, _tier) in enumerate(topo.dims):
        members = len({(r // stride) % size for r in ranks})
        if members > 1:
            out.append((d, members))
        stride *= size
    return tuple(out)


def place_group(topo: Topology, ranks: list[int]) -> GroupPlacement:
    n = len(ranks)
    if topo.dims:  # per-dimension bandwidths price it (collectives/multidim.py); no NIC sharing
        spanned = _spanned_dims(topo, ranks)
        bw = min((topo.dims[d][2] for d, _m in spanned), default=float("inf"))
        lat = sum(topo.dims[d][3] for d, _m in spanned)
        return GroupPlacement(n=n, ranks_per_server=1, servers=n, bandwidth=bw, step_latency=topo.alpha + lat,
                              dims=spanned)  # fmt: skip
    servers = len({topo.server_of(r) for r in ranks})
    k = max(1, n // servers)
    nic_per_rank = topo.nic_bandwidth_per_gpu()
    nv = topo.nvlink_bandwidth or float("inf")
    if servers == 1:
        bw = nv if n > 1 else float("inf")
    else:
        bw = min(nv, k * nic_per_rank) if k > 1 else nic_per_rank
    # The ring's slowest edge: first rank to its farthest member bounds every edge's latency.
    lat = max((_path_latency(topo, ranks[0], r) for r in ranks[1:]), default=0.0)
    a2a = bw if servers == 1 else _alltoall_bandwidth(n, k, nv, nic_per_rank)
    return GroupPlacement(n=n, ranks_per_server=k, servers=servers, bandwidth=bw, step_latency=topo.alpha + lat,
                          alltoall_bandwidth=a2a)  # fmt: skip


def _alltoall_bandwidth(n: int, k: int, nvlink: float, nic: float) -> float:
    """A direct all-to-all of S bytes per rank moves (k-1)/n S over NVLink and (n-k)/n S through
    the rank's NIC share, concurrently: time = max of the two; as a rate on (n-1)/n S."""
    t = max((k - 1) / n / nvlink if k > 1 else 0.0, (n - k) / n / nic)
    return (n - 1) / n / t if t > 0 else float("inf")
