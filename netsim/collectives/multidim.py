"""Hierarchical collectives across the dimensions of a multi-dimensional network (LIBRA).

LIBRA's model (reference/peers.md section 1, `Model._collective`; bandwidth only): a group takes
dimensions from the innermost outward (model parallel) or the outermost inward (data parallel),
a dimension partly when the group is smaller than it. An all-reduce of S bytes reduce-scatters
outward, the chunk shrinking by each dimension's size, and all-gathers back:
traffic on dim i = 2 S_i (n_i - 1) / n_i with S_i = S / prod_{j<i} n_j. An all-gather of an S-byte
contribution moves S prod_{j>i} n_j (n_i - 1) on dim i. Time on dim i = traffic_i / b_i; the
collective takes the max over dims when the dimensions pipeline (LIBRA's assumption) or their sum.
`hierarchical_phases` gives the same algorithm as per-dimension phases for the flow model.
"""

from __future__ import annotations

import numpy as np

from netsim.ops import ALLGATHER, ALLREDUCE, REDUCESCATTER


def group_dims(sizes: list[int], group: int, outermost: bool = False) -> list[tuple[int, int]]:
    """(dim, members in that dim) of a group of `group` NPUs, innermost dim first in the result."""
    left, out = group, []
    order = range(len(sizes) - 1, -1, -1) if outermost else range(len(sizes))
    for d in order:
        if left <= 1:
            break
        n = sizes[d]
        take = n if left >= n else left
        if (left >= n and left % n) or (left < n and n % left):
            raise ValueError(f"a group of {group} NPUs does not fit the dimensions {sizes}")
        out.append((d, take))
        left //= take
    if left > 1:
        raise ValueError(f"a group of {group} NPUs is larger than the network {sizes}")
    return sorted(out)


def dim_traffic(op: str, size: float, dims: list[tuple[int, int]], ndims: int) -> np.ndarray:
    """Bytes each NPU moves on every dimension for one collective (zeros off the group's dims)."""
    t = np.zeros(ndims)
    if op == ALLREDUCE or op == REDUCESCATTER:
        factor = 2.0 if op == ALLREDUCE else 1.0
        chunk = float(size)
        for d, n in dims:
            t[d] = factor * chunk * (n - 1) / n
            chunk /= n
    elif op == ALLGATHER:
        outer = 1.0
        for d, n in reversed(dims):
            t[d] = size * outer * (n - 1)
            outer *= n
    elif dims:
        raise ValueError(f"LIBRA's model has no {op}")
    return t


def collective_ns(traffic: np.ndarray, bandwidth_GBps: np.ndarray, pipelined: bool = True) -> float:
    """Time (ns) of a collective whose per-dimension traffic is `traffic` at `bandwidth_GBps` per NPU."""
    on = traffic > 0
    if not on.any():
        return 0.0
    per_dim = traffic[on] / bandwidth_GBps[on]
    return float(per_dim.max() if pipelined else per_dim.sum())


def hierarchical_phases(
    op: str, size: float, ranks: list[int], sizes: list[int]
) -> list[tuple[str, list[list[int]], float]]:
    """The flow model's version: (op, subgroups, bytes) per phase. An all-reduce reduce-scatters
    along each of the group's dimensions outward, then all-gathers inward; an all-gather gathers
    outermost first. Subgroups are the members that differ only in that dimension; the last field
    is the dimension."""
    strides = [int(np.prod(sizes[:d])) for d in range(len(sizes))]
    coords = {r: [(r // strides[d]) % sizes[d] for d in range(len(sizes))] for r in ranks}
    spanned = [d for d in range(len(sizes)) if len({c[d] for c in coords.values()}) > 1]

    def subgroups(d: int) -> list[list[int]]:
        lines: dict[tuple, list[int]] = {}
        for r in sorted(ranks):
            key = tuple(c for j, c in enumerate(coords[r]) if j != d)
            lines.setdefault(key, []).append(r)
        return list(lines.values())

    phases, chunk = [], float(size)
    if op == ALLGATHER:  # `size` is one NPU's contribution; a phase's size is what it gathers (SimAI's)
        held = float(size)
        for d in reversed(spanned):
            held *= len(subgroups(d)[0])
            phases.append((ALLGATHER, subgroups(d), held, d))
        return phases
    for d in spanned:  # reduce-scatter outward, the chunk shrinking
        phases.append((REDUCESCATTER, subgroups(d), chunk, d))
        chunk /= len(subgroups(d)[0])
    if op == ALLREDUCE:
        for d in reversed(spanned):
            chunk *= len(subgroups(d)[0])
            phases.append((ALLGATHER, subgroups(d), chunk, d))
    return phases
