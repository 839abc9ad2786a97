"""A chain of batches on the fluid network: each starts a gap after the previous one reports.

A pipeline rank's pass is such a chain: compute, a TP all-reduce, compute, another, ... When
each batch would run alone on idle links (a reservation, fluid.py), the chain's whole timeline
follows from the batches' drains: start s_k = d_(k-1) + gap_k, release r_k = s_k + end_k, report
d_k = r_k + delay_k, the same float operations the clock would make event by event. So the chain
runs ahead: it holds every link its batches use and sets one timer, for its last report.

Its links are idle between batches and it does not know the future, so it gives way: a start on
one of its links settles it at that instant (`settle`): batches already released are booked,
the one in flight becomes an ordinary reservation from its own start (the touching start then
expands it as it would any reservation), a pending start or report becomes a timer at its exact
time, and the chain goes on one batch at a time until its links are idle again when a batch
starts. The result is the per-event run's, except where two events share a timestamp and the
clock would have ordered them differently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from netsim.network.fluid import AloneRun, FluidNetwork, Timeline

# A batch as start_batch takes it: (paths, sizes, delay after its last flow drains).
Batch = tuple[np.ndarray, np.ndarray, float]


class BatchChain:
    """Batches that run one after another on a FluidNetwork, batch k starting gaps[k] seconds after
    batch k-1 reported (the first gaps[0] after the chain begins); `on_done(starts, reports)` gets
    each batch's start and report times once the last has reported."""

    def __init__(
        self, net: FluidNetwork, gaps: list[float], batches: list[Batch],
        on_done: Callable[[list[float], list[float]], None],
    ):  # fmt: skip
        self.net, self.gaps, self.batches, self.on_done = net, gaps, batches, on_done
        self.starts = [0.0] * len(batches)
        self.reports = [0.0] * len(batches)
        self.held = -1  # its owner id on the network while it runs ahead, else -1
        self.first = 0  # the first batch of the run ahead
        self.runs: list[tuple[AloneRun, Timeline]] = []
        self.times: list[tuple[float, float, float]] = []  # (start, release, report) of each batch ahead
        self.links = np.empty(0, dtype=np.int64)

    def begin(self) -> None:
        self._after_gap(0)

    def _after_gap(self, k: int) -> None:
        gap = self.gaps[k]
        if gap > 0:
            self.net.call_after(gap, lambda: self._start(k))
        else:
            self._start(k)

    def _start(self, k: int) -> None:
        if self._run_ahead(k):
            return
        self.starts[k] = self.net.env.now
        paths, sizes, delay = self.batches[k]
        self.net.start_batch(paths, sizes, lambda: self._reported(k), delay)

    def _reported(self, k: int) -> None:
        self.reports[k] = self.net.env.now
        if k + 1 == len(self.batches):
            self.on_done(self.starts, self.reports)
        else:
            self._after_gap(k + 1)

    def _run_ahead(self, k: int) -> bool:
        """From batch k on, if every batch is one the network has run alone (its drain known) and
        their links are idle now: work out the timeline, hold the links, set the last timer."""
        net = self.net
        known = net.known_alone(self.batches, k)
        if known is None or not net.may_hold(known[1]):
            return False
        runs, links = known
        t, times, gaps = net.env.now, [], self.gaps
        for i, (_run, timeline) in enumerate(runs):
            if i and gaps[k + i] > 0:  # the clock's timeout(gap) after the previous report
                t = t + gaps[k + i]
            s = t
            t = t + timeline.end
            r = t
            t = t + self.batches[k + i][2]
            times.append((s, r, t))
        self.first, self.runs, self.times, self.links = k, runs, times, links
        self.held = held = net.hold(links, self)
        net.call_at(t, lambda: self._finish(held))
        return True

    def _finish(self, held: int) -> None:
        if self.held != held:  # settled since
            return
        self.net.unhold(self.links, held)
        self.held = -1
        for i in range(len(self.runs)):
            self._book(i)
        self.on_done(self.starts, self.reports)

    def _book(self, i: int) -> None:
        k = self.first + i
        s, r, d = self.times[i]
        self.starts[k], self.reports[k] = s, d
        run, timeline = self.runs[i]
        self.net.book_alone(run, timeline, self.batches[k][1].shape[0], r)

    def settle(self) -> None:
        """A start is about to touch its links: become, at this instant, what the per-event run
        would be now (see the module docstring)."""
        net, now = self.net, self.net.env.now
        net.unhold(self.links, self.held)
        self.held = -1
        for i, (s, r, d) in enumerate(self.times):
            k = self.first + i
            if r <= now:
                self._book(i)
                if d <= now:
                    continue
                net.call_at(d, lambda k=k: self._reported(k))
            elif s <= now:
                self.starts[k] = s
                run, timeline = self.runs[i]
                _p, sizes, delay = self.batches[k]
                net.reserve_from(run, timeline, sizes, [sizes.shape[0], lambda k=k: self._reported(k), delay, None], s)
            else:
                net.call_at(s, lambda k=k: self._start(k))
            return
        self.on_done(self.starts, self.reports)
