"""The water-filling of maxmin.py compiled with Numba, when Numba is installed (`[fast]` extra).

Same rounds, same operations in the same order as the numpy version (sums accumulate link by
link in flow order, as np.bincount does; no fast-math, so no reassociation or fused multiply-add),
so the rates are bit-identical and switching kernels mid-run changes no result
(tests/network/test_maxmin_kernel.py checks it on random problems). A solve on a few hundred
flows costs a few microseconds instead of the numpy version's ~15 array calls per round.
Knows nothing about who asks.
"""

from __future__ import annotations

import numpy as np
from numba import njit

EPS = 1e-9  # the same tolerance as maxmin.EPS (not imported: this module must not pull numpy code paths)


@njit(cache=True)
def _renumber(paths: np.ndarray, dummy_id: int, slot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The links `paths` uses, numbered in first-seen order with the dummy last, and the paths in
    those numbers. (np.unique sorts them; the order of links changes no rate: every sum runs per
    link in flow order.) `slot` is an all -1 scratch array over every link, left all -1 again."""
    flat = paths.ravel()
    used = np.empty(flat.shape[0] + 1, dtype=np.int64)
    n = 0
    for x in flat:
        if x != dummy_id and slot[x] < 0:
            slot[x] = n
            used[n] = x
            n += 1
    slot[dummy_id] = n
    used[n] = dummy_id
    inv = np.empty(flat.shape[0], dtype=np.int64)
    for j in range(flat.shape[0]):
        inv[j] = slot[flat[j]]
    for i in range(n + 1):
        slot[used[i]] = -1
    return used[: n + 1], inv.reshape(paths.shape)


@njit(cache=True)
def _fill(paths: np.ndarray, capacity: np.ndarray, cap: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, int]:
    """Rates of F flows on renumbered links (dummy last); returns (rates, -1) or (_, bad flow).
    Each round visits only the unfrozen flows, in flow order (a large all-to-all has hundreds of
    rate levels, so most flows are frozen in most rounds); every sum is the numpy version's."""
    F, H = paths.shape
    L = capacity.shape[0]
    dummy = L - 1
    rate = np.zeros(F)
    rem = capacity.astype(np.float64).copy()
    rem[dummy] = np.inf
    load = np.zeros(L)
    for f in range(F):
        for h in range(H):
            load[paths[f, h]] += w[f]
    load[dummy] = 0.0
    share = np.empty(L)
    seen = np.empty(L)
    bottleneck = np.empty(L, dtype=np.bool_)
    fshare = np.empty(F)
    freeze = np.zeros(F, dtype=np.bool_)
    used = np.zeros(L)
    dropped = np.zeros(L)
    act = np.arange(F)  # the unfrozen flows, in flow order
    left = F
    while left > 0:
        for i in range(L):
            share[i] = rem[i] / load[i] if load[i] > EPS else np.inf
            seen[i] = np.inf
        share[dummy] = np.inf
        for j in range(left):
            f = act[j]
            m = np.inf
            for h in range(H):
                m = min(m, share[paths[f, h]])
            m = min(m, cap[f])
            if not np.isfinite(m):
                return rate, f
            fshare[f] = m
            for h in range(H):
                seen[paths[f, h]] = min(seen[paths[f, h]], m)
        for i in range(L):
            bottleneck[i] = share[i] <= seen[i] * (1 + EPS)
        bottleneck[dummy] = False
        any_frozen = False
        smallest = np.inf
        for j in range(left):
            f = act[j]
            smallest = min(smallest, fshare[f])
            hit = cap[f] <= fshare[f] * (1 + EPS)
            for h in range(H):
                hit = hit or bottleneck[paths[f, h]]
            freeze[f] = hit
            any_frozen = any_frozen or hit
        if not any_frozen:  # numerical corner: freeze the globally smallest share
            for j in range(left):
                f = act[j]
                freeze[f] = fshare[f] <= smallest * (1 + EPS)
        kept = 0
        for j in range(left):
            f = act[j]
            if freeze[f]:
                rate[f] = fshare[f]
                rw = fshare[f] * w[f]
                for h in range(H):
                    used[paths[f, h]] += rw
                    dropped[paths[f, h]] += w[f]
            else:
                act[kept] = f
                kept += 1
        left = kept
        for i in range(L):
            rem[i] = max(rem[i] - used[i], 0.0)
            load[i] -= dropped[i]
            used[i] = 0.0
            dropped[i] = 0.0
        load[dummy] = 0.0
        for i in range(L):
            if abs(load[i]) < EPS:
                load[i] = 0.0
    return rate, -1


@njit(cache=True)
def row_ids(
    paths: np.ndarray, caps: np.ndarray, w: np.ndarray, idx: np.ndarray, mix: np.ndarray, mix2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """fluid._flow_ids of the rows `idx` (the same wrap-around sums), without gathering them first."""
    F, H = idx.shape[0], paths.shape[1]
    ids = np.empty(F, dtype=np.uint64)
    ids2 = np.empty(F, dtype=np.uint64)
    cbits = caps.view(np.uint64)
    wbits = w.view(np.uint64)
    for j in range(F):
        r = idx[j]
        a = np.uint64(0)
        b = np.uint64(0)
        for h in range(H):
            x = np.uint64(paths[r, h])
            a += x * mix[h]
            b += x * mix2[h]
        a += cbits[r] * mix[H] + wbits[r] * mix[H + 1]
        b += cbits[r] * mix2[H] + wbits[r] * mix2[H + 1]
        b = (b ^ (b >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        b = (b ^ (b >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        ids[j] = a
        ids2[j] = b ^ (b >> np.uint64(31))
    return ids, ids2


_SLOTS: dict[int, np.ndarray] = {}  # renumbering scratch per fabric size (all -1 between calls)


def max_min_rates(paths: np.ndarray, capacity: np.ndarray, caps: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """maxmin.max_min_rates on the compiled kernel (caps and weights given as float arrays)."""
    L = capacity.shape[0]
    slot = _SLOTS.get(L)
    if slot is None:
        slot = _SLOTS[L] = np.full(L, -1, dtype=np.int64)
    used, inv = _renumber(np.ascontiguousarray(paths, dtype=np.int64), L - 1, slot)
    rate, bad = _fill(inv, np.ascontiguousarray(capacity[used], dtype=np.float64), caps, weights)
    if bad >= 0:
        raise ValueError(f"flow(s) [{bad}] cross no finite link and have no rate cap")
    return rate
