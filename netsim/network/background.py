"""Background traffic on the fluid network: a source that observes link idleness and adds flows.

Knows nothing about training or checkpoints (system/checkpoint.py gives it GEMINI's meaning):
- `LinkIdleness` watches a set of links and records when foreground (priority 0) flows leave them
  idle, as seen at every re-solve of the fluid network;
- `BlockStream` moves bulk data for many (src, dst) pairs in lockstep, in blocks of a fixed size,
  with at most `buffers` blocks in flight: a receive buffer frees only when its block has been copied
  out (a pipelined device-to-host copy at `copy_bandwidth`, one copy stream per receiver), so the
  transfer of block i overlaps the copy of block i-1. Blocks are flows at a strict `priority` (1:
  below training) or, at priority 0, with a max-min `weight` w (w fair shares of a link).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from netsim.network.fluid import FluidNetwork


class LinkIdleness:
    """Busy intervals of `links` (carrying any priority-0 flow) on a fluid network, and the gaps."""

    def __init__(self, fluid: FluidNetwork, links: list[int]):
        self.fluid = fluid
        self.links = np.array(sorted(set(links)), dtype=np.int64)
        self.busy_since: float | None = None
        self.busy: list[tuple[float, float]] = []
        fluid.listeners.append(self._observe)

    def _observe(self, now: float) -> None:
        f = self.fluid
        idx = np.flatnonzero(f.active & (f.prio == 0))
        carried = bool(idx.size) and bool(np.isin(f.paths[idx], self.links).any())
        if carried and self.busy_since is None:
            self.busy_since = now
        elif not carried and self.busy_since is not None:
            if now > self.busy_since:
                self.busy.append((self.busy_since, now))
            self.busy_since = None

    def gaps(self, end: float) -> list[tuple[float, float]]:
        """Idle intervals (start, end) of the watched links within [0, end]."""
        out, t = [], 0.0
        busy = self.busy + ([(self.busy_since, end)] if self.busy_since is not None else [])
        for a, b in busy:
            if a > t:
                out.append((t, a))
            t = max(t, b)
        if end > t:
            out.append((t, end))
        return out


class BlockStream:
    """Bulk data for every (src, dst) pair in lockstep, block by block, through bounded buffers."""

    def __init__(
        self, fluid: FluidNetwork, routes: list[tuple[int, ...]], block: float, buffers: int,
        copy_bandwidth: float, priority: int = 1, weight: float = 1.0,
    ):  # fmt: skip
        self.fluid, self.env = fluid, fluid.env
        H, pad = fluid.H, fluid.L - 1
        self.paths = np.array([list(r) + [pad] * (H - len(r)) for r in routes], dtype=np.int64)
        self.lat = max((float(fluid.latency[list(r)].sum()) for r in routes), default=0.0)
        self.block, self.buffers, self.copy_bw = float(block), max(1, buffers), copy_bandwidth
        self.priority, self.weight = priority, weight
        self.pending = self.in_flight = self.sent = 0
        self.copy_free = 0.0
        self.first_start: float | None = None
        self.last_done = 0.0
        self.waiters: list[Callable[[], None]] = []

    def send(self, blocks: int) -> None:
        """Queue `blocks` more blocks per pair, starting now (as buffers allow)."""
        self.pending += blocks
        self._pump()

    def when_idle(self, fn: Callable[[], None]) -> None:
        """Call fn once every queued block has been sent and copied out."""
        if self.pending == 0 and self.in_flight == 0:
            fn()
        else:
            self.waiters.append(fn)

    def _pump(self) -> None:
        while self.pending and self.in_flight < self.buffers:
            self.pending -= 1
            self.in_flight += 1
            if self.first_start is None:
                self.first_start = self.env.now
            n = self.paths.shape[0]
            self.fluid.start_batch(
                # Weighted max-min as the solver's consumption weight: block/w "virtual" bytes at an
                # equalised virtual rate v move w*v real bytes/s, so the block gets w fair shares.
                self.paths, np.full(n, self.block / self.weight), self._arrived, delay=self.lat,
                weights=np.full(n, self.weight), priority=self.priority,
            )  # fmt: skip

    def _arrived(self) -> None:
        self.sent += 1
        start = max(self.env.now, self.copy_free)
        self.copy_free = start + (self.block / self.copy_bw if self.copy_bw else 0.0)
        self.env.timeout(self.copy_free - self.env.now).callbacks.append(self._copied)

    def _copied(self, _e) -> None:
        self.in_flight -= 1
        self.last_done = self.env.now
        self._pump()
        if self.pending == 0 and self.in_flight == 0:
            waiters, self.waiters = self.waiters, []
            for fn in waiters:
                fn()
