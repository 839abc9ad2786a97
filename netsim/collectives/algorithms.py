"""Collective algorithms as transfers: ring channels, trees, all-to-all pairs.

Ring construction follows NCCL as SimAI's MockNccl does (reference/simai_ns3_semantics.md
section 3): R = ranks per server channels; channel c visits server 0's local ranks rotated by
c, then every next server with the same local pattern.
"""

from __future__ import annotations

from collections import Counter


def ring_channels(ranks: list[int], gpus_per_server: int, style: str = "nccl") -> list[list[int]]:
    """Rings of a group. style "simai": SimAI's order; "nccl": every other server's local order
    reversed, so each inter-server hop joins GPUs of the same local index (the same NIC rail),
    as NCCL's rail-aware ring search (with PXN) achieves on rail-optimized fabrics; "bidirectional":
    the sorted order both ways round, half the data each (a ring dimension's two directions)."""
    r = sorted(ranks)
    if style == "bidirectional":
        return [r, r[:1] + r[1:][::-1]] if len(r) > 2 else [r]
    servers = Counter(x // gpus_per_server for x in r)
    nlocal = max(servers.values())
    nnodes = len(servers)
    if nlocal == 1 or any(v != nlocal for v in servers.values()) or nnodes * nlocal != len(r):
        return [r]
    delta = r[nlocal] - r[0] if nnodes > 1 else 0
    local = r[:nlocal]
    rings = []
    for c in range(nlocal):
        pattern = local[c:] + local[:c]
        if style == "nccl":
            ring = [x + s * delta for s in range(nnodes) for x in (pattern if s % 2 == 0 else pattern[::-1])]
        else:
            ring = [x + s * delta for s in range(nnodes) for x in pattern]
        if sorted(ring) != r:  # irregular spacing: fall back to the sorted order, rotated
            ring = r[c:] + r[:c]
        rings.append(ring)
    return rings


def binary_tree(ranks: list[int]) -> list[tuple[int, int]]:
    """(child, parent) edges of a balanced binary tree over ranks in order (heap layout)."""
    return [(ranks[i], ranks[(i - 1) // 2]) for i in range(1, len(ranks))]


def double_binary_tree(ranks: list[int]) -> list[list[tuple[int, int]]]:
    """NCCL's two complementary trees: the second over the ranks shifted by one."""
    n = len(ranks)
    second = ranks[1:] + ranks[:1] if n > 2 else list(reversed(ranks))
    return [binary_tree(ranks), binary_tree(second)]


def tree_depth(n: int) -> int:
    d = 0
    while (1 << d) < n + 1:
        d += 1
    return max(d - 1, 1)


def server_groups(ranks: list[int], gpus_per_server: int) -> list[list[int]]:
    by: dict[int, list[int]] = {}
    for r in sorted(ranks):
        by.setdefault(r // gpus_per_server, []).append(r)
    return list(by.values())
