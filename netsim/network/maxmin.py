"""Exact max-min fair rates for flows on capacitated links (vectorised water-filling).

The "local bottleneck" variant of progressive filling (reference/perf.md section 2): in one
round every link whose fair share is no larger than the smallest share along every unfrozen
flow through it is a bottleneck; all of them are frozen together (freezing one cannot lower
another's share), so rounds = depth of the bottleneck dependency chain, not the number of
distinct rates. Per-flow rate caps act as private links. A flow may consume `weight` x its rate
on every link it crosses (wire bytes of a compressed flow). Knows nothing about who asks.
"""

from __future__ import annotations

import importlib.util
import os
import time

import numpy as np

from netsim.errors import InputError

EPS = 1e-9
# NETSIM_SOLVER: "auto" (default: the compiled kernel once this process has spent COMPILE_AFTER_S
# seconds water-filling with numpy), "numpy", or "compiled".
SOLVER_ENV = "NETSIM_SOLVER"
# Twice what loading Numba and the cached kernels costs a process (0.7-0.8 s on the 2-core machine,
# 2026-12-03): a run that water-fills little (16K GPUs: ~0.6 s in all, 1 s in a slow hour) never
# pays that start-up, and one that switches (a 128-rank all-to-all: ~20 s of numpy water-filling)
# is at most ~3x the better of the two kernels by the time it does.
COMPILE_AFTER_S = 1.5


class _Kernel:
    """Which water-filling runs: numpy, or maxmin_kernel's compiled copy (bit-identical rates, so
    where a run switches changes no result). NETSIM_SOLVER is read once, at the first solve."""

    def __init__(self) -> None:
        self.spent = 0.0  # seconds of numpy water-filling so far
        self.compiled = None
        self.mode: str | None = None

    def choose(self):
        """The kernel for the next water-filling: None for numpy."""
        mode = self._mode()
        if mode == "numpy" or (mode == "auto" and not _HAVE_NUMBA):
            return None
        if mode == "auto" and self.compiled is None and self.spent < COMPILE_AFTER_S:
            return None
        if self.compiled is None:
            if not _HAVE_NUMBA:
                raise InputError(
                    "compiled needs Numba: pip install -e '.[fast]'", where="environment", field=SOLVER_ENV
                )
            from netsim.network import maxmin_kernel

            self.compiled = maxmin_kernel
        return self.compiled

    def current(self):
        """The kernel chosen so far, counting nothing (for work beside a solve, e.g. its memo key)."""
        return None if self._mode() == "numpy" else self.compiled

    def _mode(self) -> str:
        if self.mode is None:
            mode = os.environ.get(SOLVER_ENV, "auto")
            if mode not in ("auto", "numpy", "compiled"):
                raise InputError(
                    f"expected auto, numpy or compiled, got {mode!r}", where="environment", field=SOLVER_ENV
                )
            self.mode = mode
        return self.mode


_HAVE_NUMBA = importlib.util.find_spec("numba") is not None
KERNEL = _Kernel()


def max_min_rates(
    paths: np.ndarray, capacity: np.ndarray, caps: np.ndarray | None = None, weights: np.ndarray | None = None
) -> np.ndarray:
    """Rates (bytes/s) of F flows.

    paths: int array [F, H] of link indices, padded with `len(capacity) - 1`, which must be a
      dummy link of infinite capacity.
    capacity: [L] link capacities (bytes/s).
    caps: optional [F] per-flow rate bounds (np.inf for none).
    weights: optional [F] consumption per unit of rate on every link of the path (default 1).
    """
    F, H = paths.shape
    if F == 0:
        return np.zeros(F)
    # Water-fill only over the links these flows use (renumbered; the dummy stays last): a round
    # then costs O(links in use), not O(links in the fabric) (issue #18: 16K GPUs, 45 s -> 6 s).
    kernel = KERNEL.choose()
    if kernel is not None:
        w = np.ones(F) if weights is None else np.asarray(weights, dtype=float)
        cap = np.full(F, np.inf) if caps is None else np.asarray(caps, dtype=float)
        return kernel.max_min_rates(paths, capacity, cap, w)
    t0 = time.perf_counter()
    used_links, inv = np.unique(paths, return_inverse=True)
    dummy_id = capacity.shape[0] - 1
    if used_links[-1] != dummy_id:
        used_links = np.append(used_links, dummy_id)
    rates = _water_fill(inv.reshape(F, H), capacity[used_links], caps, weights)
    KERNEL.spent += time.perf_counter() - t0
    return rates


def _water_fill(
    paths: np.ndarray, capacity: np.ndarray, caps: np.ndarray | None, weights: np.ndarray | None
) -> np.ndarray:
    F, H = paths.shape
    rate = np.zeros(F)
    L = capacity.shape[0]
    dummy = L - 1
    w = np.ones(F) if weights is None else np.asarray(weights, dtype=float)
    cap = np.full(F, np.inf) if caps is None else np.asarray(caps, dtype=float)
    rem = capacity.astype(float).copy()
    rem[dummy] = np.inf
    unfrozen = np.ones(F, dtype=bool)
    flat = paths.ravel()
    wflat = np.repeat(w, H)
    # Weighted number of unfrozen flows per link: share = remaining capacity / that.
    load = np.bincount(flat, weights=wflat, minlength=L)
    load[dummy] = 0.0
    while unfrozen.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(load > EPS, rem / np.where(load > EPS, load, 1.0), np.inf)
        share[dummy] = np.inf
        idx = np.flatnonzero(unfrozen)
        p = paths[idx]
        fshare = np.minimum(share[p].min(axis=1), cap[idx])
        if not np.isfinite(fshare).all():
            bad = idx[~np.isfinite(fshare)]
            raise ValueError(f"flow(s) {bad[:5].tolist()} cross no finite link and have no rate cap")
        # Smallest flow share seen by each link.
        seen = np.full(L, np.inf)
        np.minimum.at(seen, p.ravel(), np.repeat(fshare, H))
        bottleneck = share <= seen * (1 + EPS)
        bottleneck[dummy] = False
        on_bottleneck = bottleneck[p].any(axis=1)
        capped = cap[idx] <= fshare * (1 + EPS)
        freeze = on_bottleneck | capped
        if not freeze.any():  # numerical corner: freeze the globally smallest share
            freeze = fshare <= fshare.min() * (1 + EPS)
        fz = idx[freeze]
        r = fshare[freeze]
        rate[fz] = r
        unfrozen[fz] = False
        used = np.bincount(paths[fz].ravel(), weights=np.repeat(r * w[fz], H), minlength=L)
        dropped = np.bincount(paths[fz].ravel(), weights=np.repeat(w[fz], H), minlength=L)
        rem -= used
        np.maximum(rem, 0.0, out=rem)
        load -= dropped
        load[dummy] = 0.0
        load[np.abs(load) < EPS] = 0.0
    return rate


def priority_max_min_rates(
    paths: np.ndarray, capacity: np.ndarray, priority: np.ndarray, caps: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:  # fmt: skip
    """Strict priority over max-min classes: level 0 shares the links max-min fairly, level 1 shares
    what level 0 leaves, and so on; a lower level never slows a higher one (802.1Q strict priority)."""
    F, H = paths.shape
    rate = np.zeros(F)
    w = np.ones(F) if weights is None else np.asarray(weights, dtype=float)
    cap = np.full(F, np.inf) if caps is None else np.asarray(caps, dtype=float)
    rem = capacity.astype(float).copy()
    for level in np.unique(priority):
        sel = np.flatnonzero(priority == level)
        r = max_min_rates(paths[sel], rem, cap[sel], w[sel])
        rate[sel] = r
        rem -= np.bincount(paths[sel].ravel(), weights=np.repeat(r * w[sel], H), minlength=rem.shape[0])
        np.maximum(rem, 0.0, out=rem)
        rem[-1] = np.inf
    return rate
