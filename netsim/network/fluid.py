"""The fluid (flow-level) network driven by a SimPy clock.

A flow is (links, remaining bytes, optional rate cap, weight). Whenever the set of flows
changes, all flows advance to `now`, rates are re-solved once for that timestamp (max-min,
maxmin.py), and a single timer is set for the earliest completion (a generation counter makes
stale timers no-ops: SimPy has no cancel). A drained flow's callback fires after its path's
propagation latency. Per-link carried bytes are accumulated for utilisation reports.
Knows nothing about collectives or LLMs.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from netsim.network import maxmin
from netsim.network.chain import Batch, BatchChain
from netsim.network.maxmin import max_min_rates, priority_max_min_rates

DONE_TIME = 1e-12  # a flow with under a picosecond of transfer left is done
ALONE_MEMO_FLOWS = 64  # batches solved alone up to this size are memoised by their bytes
RESERVED_SHARED_FLOWS = 4096  # a batch whose flows share links reserves up to this size
DRAIN_SEGMENTS = 64  # ... and drains alone in at most this many segments
RESERVATION_CACHE_FLOWS = 1_000_000  # flows (x segments) kept in the reservation caches (~200 MB)
MEMO_ENTRIES = 8192  # solutions kept for reuse (each a few KB at 512 GPUs)


@dataclass(frozen=True, slots=True)
class AloneRun:
    """A batch's flows as they run alone, each at a fixed rate: its `links` row-major over `paths`
    (the flow of each in `rows`), and its distinct links with how many of its flows use each.
    `shared`: some link carries two of its flows (the rates are a water-filling of the batch)."""

    paths: np.ndarray
    links: np.ndarray
    rows: np.ndarray
    uniq: np.ndarray
    counts: np.ndarray
    rates: np.ndarray
    caps: np.ndarray
    weights: np.ndarray
    shared: bool

    def book(self, out: np.ndarray, moved: np.ndarray) -> None:
        """Add each flow's `moved` bytes to every link it crosses."""
        self.book_crossings(out, moved[self.rows])

    def book_crossings(self, out: np.ndarray, crossed: np.ndarray) -> None:
        """Add the bytes of each (flow, link) crossing in `links` order to its link."""
        if self.shared:
            np.add.at(out, self.links, crossed)
        else:  # distinct links: a fancy add is the unbuffered one
            out[self.links] += crossed


@dataclass(frozen=True, slots=True)
class Timeline:
    """How a batch alone drains: from each segment's start (seconds after the batch's), its flows'
    bytes left then and their rates (0 once done), up to `end`; `crossed`: the wire bytes each
    (flow, link) crossing of its run has carried once it has drained."""

    starts: list[float]
    lefts: list[np.ndarray]
    rates: list[np.ndarray]
    end: float
    crossed: np.ndarray

    def at(self, elapsed: float) -> tuple[np.ndarray, np.ndarray]:
        """Every flow's bytes left and rate `elapsed` seconds in (0 left once done)."""
        k = max(0, bisect.bisect_right(self.starts, elapsed) - 1)
        rate = self.rates[k]
        return np.maximum(self.lefts[k] - rate * (elapsed - self.starts[k]), 0.0), rate


@dataclass(slots=True, eq=False)  # not frozen: one is made per collective, and a frozen init costs 3x
class Reservation:
    """A batch running alone on links no other flow uses, from `t0` until it drains or another
    start touches its links. `entry` is its batch record [flows, on_done, delay, on_drain]."""

    run: AloneRun
    sizes: np.ndarray
    t0: float
    entry: list
    timeline: Timeline


class FluidNetwork:
    """Flows on links with max-min fair rates, driven by a SimPy clock: one solve per timestamp,
    one completion timer, batched flows that report together, per-link carried bytes."""

    memoise = True  # reuse max-min solutions (off only to check that reuse changes nothing)
    # Re-solve only what changed: a batch whose links carry no other flow is solved alone when it
    # starts, and its end re-solves nothing when its links are then idle (max-min rates of flows
    # that share no link are independent). Off only to check that it changes nothing.
    incremental = True
    # Run a batch that starts alone (idle links, no link shared by two of its flows) outside the
    # active flows until something touches its links: most of a training iteration's batches
    # (TP rings, pipeline sends) start and end without re-rating anything. Off only to check that
    # it changes nothing.
    reserve = True
    # Let a chain of batches (network/chain.py) run ahead while its links carry nothing else: one
    # timer for the whole chain. Off only to check that it changes nothing.
    run_ahead = True

    def __init__(
        self, env: simpy.Environment, capacity: np.ndarray, latency: np.ndarray, max_hops: int = 8, transport=None
    ):
        self.env = env
        self.transport = transport  # network.transport.WindowTransport, or None: plain max-min
        self.capacity = capacity
        self.latency = latency
        self.L = capacity.shape[0]
        self.H = max_hops
        self._grow(256)
        self.n_active = 0
        self.free: list[int] = list(range(255, -1, -1))
        self.last_t = 0.0
        self.pending = False
        self.gen = 0
        self.link_bytes = np.zeros(self.L)
        self.solves = 0
        self.events = 0  # network events: each ends flows and re-rates the active ones
        self.flows_started = 0
        self.prioritised = False  # any background (priority > 0) flow started
        self.listeners: list[Callable[[float], None]] = []  # observers of every re-solve (background traffic)
        # A batch is flows that report once, when the last of them has drained: [left, callback, delay].
        self.batches: dict[int, list] = {}
        self.next_batch = 0
        self._memo: dict[bytes, np.ndarray] = {}
        self._alone: dict[tuple[bytes, bytes, bytes], np.ndarray] = {}  # batch as given -> its rates
        self.memo_hits = 0
        self.users = np.zeros(self.L, dtype=np.int64)  # active flows per link (the dummy's count unused)
        self.dirty = False  # a start or an end touched links other flows use: re-solve everything
        self.fresh: list[np.ndarray] = []  # slots of batches that started on idle links
        self.reserved: dict[int, Reservation] = {}  # batches alone on idle links, by batch id
        self.owner = np.full(self.L, -1, dtype=np.int64)  # the reservation holding each link, or -1
        self._alone_runs: dict[tuple, AloneRun | bool] = {}
        self._timelines: dict[tuple, Timeline | None] = {}  # shared batches' drains, by batch and sizes
        self._keys_by_id: dict[int, tuple[np.ndarray, tuple]] = {}  # read-only paths -> their batch key
        # Read-only sizes (a collective at a size it ran before) -> (sizes, paths, run, timeline).
        self._ready: dict[int, tuple[np.ndarray, np.ndarray, AloneRun, Timeline]] = {}
        self._cached_flows = 0
        self._released_at = -1.0
        self.chains: dict[int, BatchChain] = {}  # chains running ahead (network/chain.py), by owner id
        self._known: dict[tuple[int, int], tuple] = {}  # (id(batches), first) -> their runs (known_alone)
        self._ready_epoch = 0  # counts the times _ready started again

    def _grow(self, n: int) -> None:
        old = getattr(self, "paths", None)
        k = 0 if old is None else old.shape[0]
        paths = np.full((n, self.H), self.L - 1, dtype=np.int64)
        acks = np.full((n, self.H), self.L - 1, dtype=np.int64)
        arrays = {name: np.zeros(n) for name in ("remaining", "rate", "size")}
        caps = np.full(n, np.inf)
        weight = np.ones(n)
        active = np.zeros(n, dtype=bool)
        batch = np.full(n, -1, dtype=np.int64)
        prio = np.zeros(n, dtype=np.int64)
        if old is not None:
            paths[:k] = self.paths
            acks[:k] = self.acks
            for name in arrays:
                arrays[name][:k] = getattr(self, name)
            caps[:k], weight[:k], active[:k] = self.caps, self.weight, self.active
            batch[:k] = self.batch
            prio[:k] = self.prio
        self.batch = batch
        self.prio = prio
        self.paths = paths
        self.acks = acks
        for name, arr in arrays.items():
            setattr(self, name, arr)
        self.caps, self.weight, self.active = caps, weight, active

    def start(
        self,
        links,
        size: float,
        on_done: Callable[[], None],
        cap: float = np.inf,
        weight: float = 1.0,
        extra_delay: float = 0.0,
        on_drain: Callable[[], None] | None = None,
        acks=(),
    ) -> None:
        """Send `size` bytes over `links` (ACKs back over `acks`, for a window transport); call on_done
        once they have drained and propagated."""
        links = tuple(links)
        delay = float(self.latency[list(links)].sum()) + extra_delay if links else extra_delay
        if size <= 0 or not links:
            if on_drain is not None:
                on_drain()
            self.call_after(delay, on_done)
            return
        if len(links) > self.H:
            raise ValueError(f"path of {len(links)} links exceeds {self.H}")
        row = np.full((1, self.H), self.L - 1, dtype=np.int64)
        row[0, : len(links)] = links
        ack = None
        if acks:
            ack = np.full((1, self.H), self.L - 1, dtype=np.int64)
            ack[0, : len(acks)] = acks
        self.start_batch(
            row,
            np.array([float(size)]),
            on_done,
            delay,
            caps=np.array([cap]),
            weights=np.array([weight]),
            on_drain=on_drain,
            acks=ack,
        )

    def start_batch(
        self,
        paths: np.ndarray,
        sizes: np.ndarray,
        on_done: Callable[[], None],
        delay: float,
        caps: np.ndarray | None = None,
        weights: np.ndarray | None = None,
        on_drain: Callable[[], None] | None = None,
        priority: int = 0,
        acks: np.ndarray | None = None,
    ) -> None:
        """Start flows (rows of `paths`, padded with the dummy link) that report together: on_done
        fires `delay` seconds after the last of them drains."""
        if self.chains:
            self._settle_chains(None if priority else paths)
        ready = self._ready.get(id(sizes)) if caps is None and weights is None and priority == 0 else None
        if ready is not None and ready[0] is sizes and ready[1] is paths:
            alone = self._reservable_again(ready[2], ready[3])
            if alone is not None:
                self._reserve(*alone, sizes, [sizes.shape[0], on_done, delay, on_drain])
                return
        if sizes.shape[0] and sizes.min() <= 0:
            keep = sizes > 0
            paths, sizes = paths[keep], sizes[keep]
            caps = caps[keep] if caps is not None else None
            weights = weights[keep] if weights is not None else None
        B = sizes.shape[0]
        if B == 0:
            self.call_after(delay, on_done)
            return
        entry = [B, on_done, delay, on_drain]
        alone = self._reservable(paths, sizes, caps, weights) if priority == 0 else None
        if alone is not None:
            self._reserve(*alone, sizes, entry)
            return
        self._advance()
        # A strict-priority solve couples flows differently: nothing stays reserved past it.
        self._expand(list(self.reserved) if priority else self._touched(paths))
        slots = self._insert(paths, sizes, sizes, caps, weights, acks, entry)
        self.prio[slots] = priority
        if priority:
            self.prioritised = True
        self._note_start(paths, slots)
        self.flows_started += B
        self._request_solve()

    def _insert(self, paths, sizes, remaining, caps, weights, acks, entry: list) -> np.ndarray:
        """Put a batch's flows into free slots (growing the arrays) as active flows; their slots."""
        B = sizes.shape[0]
        while len(self.free) < B:
            n = self.paths.shape[0]
            self._grow(2 * n)
            self.free.extend(range(2 * n - 1, n - 1, -1))
        # The slots list.pop() would give, B at a time: the free list's last B, last first.
        slots = np.array(self.free[-1 : -B - 1 : -1], dtype=np.int64)
        del self.free[-B:]
        self.paths[slots] = paths
        self.acks[slots] = self.L - 1 if acks is None else acks
        self.remaining[slots] = remaining
        self.size[slots] = sizes
        self.caps[slots] = np.inf if caps is None else caps
        self.weight[slots] = 1.0 if weights is None else weights
        self.prio[slots] = 0
        self.active[slots] = True
        bid = self.next_batch
        self.next_batch += 1
        self.batch[slots] = bid
        self.batches[bid] = entry
        self.n_active += B
        return slots

    # ---- reservations: batches alone on idle links ------------------------------------------
    def _reservable(self, paths, sizes, caps, weights) -> tuple[AloneRun, Timeline] | None:
        """How a starting batch runs alone and how it drains, if it is alone: its links carry
        nothing, every flow moves, and it may be reserved (_may_reserve)."""
        if not self._may_reserve():
            return None
        key = self._batch_key(paths, caps, weights)
        fixed = caps is None and weights is None and not paths.flags.writeable and not sizes.flags.writeable
        run = self._alone_runs.get(key)
        if run is None:
            if self.users[paths[paths != self.L - 1]].any():
                return None  # not alone now: work it out when it is
            run = self._alone_runs[key] = self._alone_run(paths, caps, weights)
            self._cache_budget(paths.shape[0])
        if run is False or self.users[run.uniq].any():
            return None
        if not run.shared:  # every flow at its rate until its own end
            end = float((sizes / run.rates).max())
            timeline = Timeline([0.0], [sizes], [run.rates], end, (sizes * run.weights)[run.rows])
        else:
            tkey = (key, sizes.tobytes())
            timeline = self._timelines.get(tkey, False)
            if timeline is False:
                timeline = self._timelines[tkey] = self._drain_alone(run, sizes)
                self._cache_budget(sizes.shape[0] * (len(timeline.starts) if timeline else 1))
            if timeline is None:
                return None
        if fixed:
            if len(self._ready) >= MEMO_ENTRIES:
                self._ready.clear()
                self._ready_epoch += 1
            self._ready[id(sizes)] = (sizes, paths, run, timeline)
        return run, timeline

    def _reservable_again(self, run: AloneRun, timeline: Timeline) -> tuple[AloneRun, Timeline] | None:
        """A batch given as the same read-only paths and sizes arrays as one reserved before (a
        collective's plan at its size): the same run and drain, if it may be reserved now."""
        if not self._may_reserve() or self.users[run.uniq].any():
            return None
        return run, timeline

    def _may_reserve(self) -> bool:
        """Nothing observes the flow arrays (a re-solve listener) or couples flows across links
        (priorities, a window transport), and reservations are on."""
        return (
            self.reserve and self.incremental and self.transport is None and not self.prioritised and not self.listeners
        )

    def _batch_key(self, paths: np.ndarray, caps: np.ndarray | None, weights: np.ndarray | None) -> tuple:
        """Collectives start the same batch (their cached paths) every micro-batch: its facts are
        worked out once, keyed by its bytes. A read-only paths array (a collective's plan) is
        looked up by identity first (hashing its bytes was a third of a reservation's cost); the
        entry holds the array, so its id is not reused while it is there."""
        plain = caps is None and weights is None and not paths.flags.writeable
        if plain:
            hit = self._keys_by_id.get(id(paths))
            if hit is not None and hit[0] is paths:
                return hit[1]
        key = (
            paths.tobytes(),
            None if caps is None else caps.tobytes(),
            None if weights is None else weights.tobytes(),
        )
        if plain:
            self._keys_by_id[id(paths)] = (paths, key)
        return key

    def _cache_budget(self, flows: int) -> None:
        """Count what the reservation caches hold; past the budget (or MEMO_ENTRIES entries) they
        start again (a batch of 4,096 flows keeps ~1 MB)."""
        self._cached_flows += flows
        if self._cached_flows > RESERVATION_CACHE_FLOWS or len(self._alone_runs) + len(self._timelines) > MEMO_ENTRIES:
            self._alone_runs.clear()
            self._timelines.clear()
            self._keys_by_id.clear()
            self._ready.clear()
            self._ready_epoch += 1
            self._cached_flows = 0

    def _drain_alone(self, run: AloneRun, sizes: np.ndarray) -> Timeline | None:
        """A batch whose flows share links, alone: as the network would run it, event by event:
        flows move at their rates until the first ends, the network's done rule ends every flow
        then within it, and the rest are water-filled again (a re-solve gives flows that share no
        link with others the rates they get alone: the incremental solve rests on it). None past
        DRAIN_SEGMENTS segments (each keeps every flow's bytes and rate)."""
        left, live, t = sizes.astype(float), np.ones(sizes.shape[0], dtype=bool), 0.0
        rates = run.rates
        starts, lefts, rate_list = [], [], []
        while live.any():
            if len(starts) == DRAIN_SEGMENTS:
                return None
            eta = left[live] / rates[live]
            dt = float(eta.min())
            starts.append(t)
            lefts.append(left.copy())
            rate_list.append(rates)
            left = np.where(live, left - rates * dt, 0.0)
            done = live & ((left <= np.maximum(rates, 1.0) * DONE_TIME) | (left <= 1e-9 * sizes))
            live &= ~done
            left[done] = 0.0
            t += dt
            rates = np.zeros_like(rates)
            if live.any():
                rates[live] = self._solve_rows(run.paths[live], run.caps[live], run.weights[live])
        return Timeline(starts, lefts, rate_list, t, (sizes * run.weights)[run.rows])

    def _alone_run(self, paths, caps, weights) -> AloneRun | bool:
        """The batch's rates alone. Flows that share no link run at their narrowest link
        (capacity / weight) or their cap: the water-filling's first round with the same divisions
        (as _alone_rates); otherwise the batch is water-filled alone as the slots' solve would
        (up to RESERVED_SHARED_FLOWS flows). False if it is larger or a flow would not move."""
        B = paths.shape[0]
        weights = np.ones(B) if weights is None else weights
        caps = np.full(B, np.inf) if caps is None else caps
        rows, cols = np.nonzero(paths != self.L - 1)
        links = paths[rows, cols]
        uniq, counts = np.unique(links, return_counts=True)
        shared = uniq.size < links.size
        if not shared:
            rates = np.minimum((self.capacity[paths] / weights[:, None]).min(axis=1), caps)
        elif B <= RESERVED_SHARED_FLOWS:
            rates = self._solve_rows(paths, caps, weights)
        else:
            return False
        if not (rates > 0).all():
            return False
        return AloneRun(paths.copy(), links, rows, uniq, counts, rates, caps, weights, shared)

    def _reserve(
        self, run: AloneRun, timeline: Timeline, sizes: np.ndarray, entry: list, t0: float | None = None
    ) -> None:
        """Run a batch alone without entering the active flows: its end is known now, so one
        timer and nothing else re-rated. A later start on one of its links turns it into active
        flows where it has got to (_expand)."""
        rid = self.next_batch
        self.next_batch += 1
        self.users[run.uniq] += run.counts
        self.owner[run.uniq] = rid
        now = self.env.now
        self.reserved[rid] = Reservation(run, sizes, now if t0 is None else t0, entry, timeline)
        self.solves += 1
        self.flows_started += sizes.shape[0]
        if t0 is None or t0 == now:
            ev = self.env.timeout(timeline.end)
            ev.callbacks.append(lambda _e: self._release(rid))
        else:
            self.call_at(t0 + timeline.end, lambda: self._release(rid))

    def _release(self, rid: int) -> None:
        """A reservation's last flow has drained (unless it was expanded since)."""
        res = self.reserved.pop(rid, None)
        if res is None:
            return
        self._count_release(self.env.now)
        run = res.run
        self.users[run.uniq] -= run.counts
        self.owner[run.uniq] = -1
        run.book_crossings(self.link_bytes, res.timeline.crossed)
        _, on_done, delay, on_drain = res.entry
        if on_drain is not None:
            on_drain()
        self.call_after(delay, on_done)

    def _count_release(self, t: float) -> None:
        if t != self._released_at:  # batches ending together are one network event
            self.events += 1
            self._released_at = t

    # ---- chains: batches one after another, run ahead while alone (network/chain.py) ----------
    def start_chain(
        self, gaps: list[float], batches: list[Batch], on_done: Callable[[list[float], list[float]], None]
    ) -> None:
        """Start batches one after another, batch k gaps[k] seconds after batch k-1 reported;
        on_done(starts, reports) once the last has."""
        BatchChain(self, gaps, batches, on_done).begin()

    def known_alone(self, batches: list[Batch], k: int) -> tuple[list[tuple[AloneRun, Timeline]], np.ndarray] | None:
        """How batches[k:] (read-only arrays, each reserved before) run alone, and every link they
        use; None if one is not known. A chain's batches are looked up once per list (its
        identity), again only after the caches start again."""
        key = (id(batches), k)
        hit = self._known.get(key)
        if hit is not None and hit[0] is batches and hit[1] == self._ready_epoch:
            return hit[2], hit[3]
        runs = []
        for paths, sizes, _d in batches[k:]:
            ready = self._ready.get(id(sizes))
            if ready is None or ready[0] is not sizes or ready[1] is not paths:
                return None
            runs.append((ready[2], ready[3]))
        distinct = {id(run.uniq): run.uniq for run, _t in runs}  # a TP pass: one ring plan throughout
        links = (
            next(iter(distinct.values())) if len(distinct) == 1 else np.unique(np.concatenate(list(distinct.values())))
        )
        if len(self._known) >= MEMO_ENTRIES:
            self._known.clear()
        self._known[key] = (batches, self._ready_epoch, runs, links)
        return runs, links

    def may_hold(self, links: np.ndarray) -> bool:
        """Whether a chain may run ahead on `links` now: they carry nothing and it may reserve."""
        return self.run_ahead and self._may_reserve() and not self.users[links].any()

    def hold(self, links: np.ndarray, chain: BatchChain) -> int:
        """Mark `links` as held by `chain` (a start on them settles it first); its owner id."""
        cid = self.next_batch
        self.next_batch += 1
        self.users[links] += 1
        self.owner[links] = cid
        self.chains[cid] = chain
        return cid

    def unhold(self, links: np.ndarray, cid: int) -> None:
        self.users[links] -= 1
        self.owner[links] = -1
        del self.chains[cid]

    def book_alone(self, run: AloneRun, timeline: Timeline, flows: int, released: float) -> None:
        """A chain's batch that ran alone and drained at `released`: its bytes and counts, as its
        reservation would have made them."""
        self.solves += 1
        self.flows_started += flows
        self._count_release(released)
        run.book_crossings(self.link_bytes, timeline.crossed)

    def reserve_from(self, run: AloneRun, timeline: Timeline, sizes: np.ndarray, entry: list, t0: float) -> None:
        """A reservation that began at `t0` (a settling chain's batch in flight)."""
        self._reserve(run, timeline, sizes, entry, t0)

    def call_at(self, t: float, fn: Callable[[], None]) -> None:
        """Call fn at time `t` (>= now): exactly `t` whenever now >= t / 2, where t - now is exact
        (Sterbenz); earlier the clock may only reach a neighbour of `t` (it has no absolute timer)."""
        self.call_after(max(0.0, t - self.env.now), fn)

    def _settle_chains(self, paths: np.ndarray | None) -> None:
        """Settle the chains holding any of `paths`' links (every chain if None), oldest first."""
        if paths is None:
            ids = sorted(self.chains)
        else:
            own = self.owner[paths[paths != self.L - 1]]
            ids = sorted({o for o in own[own >= 0].tolist() if o in self.chains})
        for cid in ids:
            self.chains[cid].settle()

    def _touched(self, paths: np.ndarray) -> list[int]:
        """The reservations holding any of `paths`' links, oldest first."""
        if not self.reserved:
            return []
        own = self.owner[paths[paths != self.L - 1]]
        return sorted(set(own[own >= 0].tolist()))

    def _expand(self, rids: list[int]) -> None:
        """Reservations `rids` become active flows at the bytes they have left now (the caller has
        advanced the active flows to now and re-solves them all after: their links' users
        already count them, so the start that touched them is a dirty one)."""
        for rid in rids:
            res = self.reserved.pop(rid)
            run = res.run
            self.owner[run.uniq] = -1
            # Flows already done come in with nothing left: the re-solve that follows ends them
            # before it rates the rest.
            left, rate = res.timeline.at(self.env.now - res.t0)
            slots = self._insert(run.paths, res.sizes, left, run.caps, run.weights, None, res.entry)
            self.rate[slots] = rate
            self.dirty = True

    def _note_start(self, paths: np.ndarray, slots: np.ndarray) -> None:
        if self.incremental and self.transport is None and not self.prioritised:
            if self.users[paths[paths != self.L - 1]].any():
                self.dirty = True
            else:
                self.fresh.append(slots)
        else:
            self.dirty = True
        np.add.at(self.users, paths.ravel(), 1)

    def _note_end(self, fin: np.ndarray) -> None:
        ended = self.paths[fin]
        np.subtract.at(self.users, ended.ravel(), 1)
        if self.users[ended[ended != self.L - 1]].any():
            self.dirty = True

    def call_after(self, delay: float, fn: Callable[[], None]) -> None:
        """Call fn `delay` seconds from now (at now + delay, as the clock adds them)."""
        ev = self.env.timeout(delay)
        ev.callbacks.append(lambda _e: fn())

    def _request_solve(self) -> None:
        if not self.pending:
            self.pending = True
            ev = self.env.timeout(0)
            ev.callbacks.append(self._solve_now)

    def _advance(self) -> np.ndarray | None:
        """Move every active flow to `now`; the active slots when it had to find them."""
        dt = self.env.now - self.last_t
        idx = None
        if dt > 0 and self.n_active:
            idx = np.flatnonzero(self.active)
            self.remaining[idx] -= self.rate[idx] * dt
        self.last_t = self.env.now
        return idx

    def _book(self, idx: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Add to `out` the bytes (wire bytes: x weight) each link has carried of flows `idx`."""
        moved = (self.size[idx] - self.remaining[idx]) * self.weight[idx]
        np.add.at(out, self.paths[idx].ravel(), np.repeat(moved, self.H))
        return out

    def _solve_now(self, _ev=None) -> None:
        self.pending = False
        self.events += 1
        idx = self._advance()
        if idx is None:
            idx = np.flatnonzero(self.active)
        if idx.size:
            left = self.remaining[idx]
            done = (left <= np.maximum(self.rate[idx], 1.0) * DONE_TIME) | (left <= 1e-9 * self.size[idx])
            if done.any():
                fin = idx[done]
                # Carried bytes are booked when a flow ends, not on every event (issue #18: a
                # bincount over every active flow per event was 10 % of a 512-GPU run).
                self._book(fin, self.link_bytes)
                self._note_end(fin)
                self.active[fin] = False
                self.n_active -= fin.size
                self.free.extend(fin.tolist())
                for b, c in sorted(Counter(self.batch[fin].tolist()).items()):
                    entry = self.batches[b]
                    entry[0] -= c
                    if entry[0] == 0:
                        del self.batches[b]
                        if entry[3] is not None:
                            entry[3]()
                        self.call_after(entry[2], entry[1])
            idx = idx[~done]
        self.gen += 1
        if idx.size:
            self._resolve(idx)
            rate = self.rate[idx]
            eta = np.divide(self.remaining[idx], rate, out=np.full(idx.size, np.inf), where=rate > 0).min()
            gen = self.gen
            ev = self.env.timeout(max(eta, 0.0))
            ev.callbacks.append(lambda _e, g=gen: self._timer(g))
        for fn in self.listeners:
            fn(self.env.now)

    def _resolve(self, idx: np.ndarray) -> None:
        """New rates for the active flows `idx`: all of them, or only the batches that started on idle links."""
        if self.dirty or not self.incremental:
            self.rate[idx] = self._rates(idx)
            self.solves += 1
        else:
            for slots in self.fresh:
                self.rate[slots] = self._alone_rates(slots)
                self.solves += 1
        self.dirty = False
        self.fresh = []

    def _alone_rates(self, slots: np.ndarray) -> np.ndarray:
        """Rates of a batch on otherwise idle links. If no two of its flows share a link, each runs
        at its own narrowest link (capacity / weight) or its cap: what the water-filling gives in
        its first round, with the same divisions, so bit-identical (pipeline sends are such)."""
        p = self.paths[slots]
        # Its links carried nothing before it started and no start since made the solve dirty, so
        # they carry only this batch: each is used once exactly when no two of its flows share one.
        if (self.users[p[p != self.L - 1]] == 1).all():
            share = (self.capacity[p] / self.weight[slots][:, None]).min(axis=1)
            return np.minimum(share, self.caps[slots])
        if not self.memoise or slots.size > ALONE_MEMO_FLOWS:
            return self._rates(slots)
        # A batch alone repeats exactly, in the same order, every micro-batch (pipeline sends): its
        # bytes name it, and a hit is what _rates gave it before (bit-identical, no id hashing).
        key = (p.tobytes(), self.caps[slots].tobytes(), self.weight[slots].tobytes())
        got = self._alone.get(key)
        if got is None:
            if len(self._alone) >= MEMO_ENTRIES:
                self._alone.clear()
            got = self._alone[key] = self._rates(slots)
        else:
            self.memo_hits += 1
        return got  # copied into the rate array by the caller

    def _rates(self, idx: np.ndarray) -> np.ndarray:
        if self.transport is not None and not self.prioritised:
            # The window fixed point is a function of the flows' data and ACK paths, caps and
            # weights: memoised like max-min, named by both paths.
            t = self.transport
            return self._memoised(
                idx, lambda r: t.rates(self.paths[r], self.acks[r], self.caps[r], self.weight[r]), acks=True
            )
        if self.prioritised and self.prio[idx].any():
            return priority_max_min_rates(
                self.paths[idx], self.capacity, self.prio[idx], self.caps[idx], self.weight[idx]
            )
        return self._memoised(idx, lambda r: max_min_rates(self.paths[r], self.capacity, self.caps[r], self.weight[r]))

    def _memoised(self, idx: np.ndarray, solve: Callable[[np.ndarray], np.ndarray], acks: bool = False) -> np.ndarray:
        """Rates from `solve` (max-min, or the transport's fixed point, whose flows are named by
        their ACK paths too), reused when the same set of flows (paths, caps, weights) was solved before:
        training repeats its collectives every micro-batch, so most solves repeat (issue #18: 81 %
        on 175B/512). Flows are put in a canonical order first (sorted by a 64-bit id of path, cap
        and weight) and every solve runs in that order, so a reused solution is bit-identical to a
        fresh one. The set is named by its flows' two independent 64-bit ids in that order (a
        128-bit digest of them: at 16K GPUs the arrays would hold hundreds of MB, and hashing every
        hop cost more than the compiled solve), so two sets are confused only if some flow's pair
        of ids collides (~2^-128). Flows whose first ids collide keep their given order."""
        if acks:
            rows = np.hstack([self.paths[idx], self.acks[idx]])
            ids, ids2 = _flow_ids(rows, self.caps[idx], self.weight[idx], np.arange(idx.size))
        else:
            ids, ids2 = _flow_ids(self.paths, self.caps, self.weight, idx)
        return self._reuse(ids, ids2, lambda order: solve(idx[order]))

    def _solve_rows(self, paths: np.ndarray, caps: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Max-min rates of flows given as rows (not slots), memoised as _memoised does: the same
        canonical order and the same key, so a batch solved here or in the slots agrees."""
        ids, ids2 = _flow_ids(paths, caps, weights, np.arange(paths.shape[0]))
        return self._reuse(ids, ids2, lambda o: max_min_rates(paths[o], self.capacity, caps[o], weights[o]))

    def _reuse(self, ids: np.ndarray, ids2: np.ndarray, solve: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """The memo: `solve(order)` gives the rates of the flows in canonical `order`."""
        order = np.argsort(ids, kind="stable")
        h = hashlib.blake2b(ids[order].tobytes(), digest_size=16)
        h.update(ids2[order].tobytes())
        key = h.digest()
        rates = self._memo.get(key) if self.memoise else None
        if rates is None:
            if len(self._memo) >= MEMO_ENTRIES:
                self._memo.clear()
            rates = solve(order)
            self._memo[key] = rates
        else:
            self.memo_hits += 1
        out = np.empty_like(rates)
        out[order] = rates
        return out

    def _timer(self, gen: int) -> None:
        if gen == self.gen:
            self._solve_now()

    def utilisation(self, duration: float) -> np.ndarray:
        """Mean utilisation of every link over `duration` seconds (a chain still running ahead is
        settled first)."""
        if self.chains:
            self._settle_chains(None)
        self._advance()
        carried = self._book(np.flatnonzero(self.active), self.link_bytes.copy())
        for res in self.reserved.values():
            run = res.run
            left, _rate = res.timeline.at(self.env.now - res.t0)
            run.book(carried, (res.sizes - left) * run.weights)
        with np.errstate(divide="ignore", invalid="ignore"):
            u = carried / (self.capacity * duration)
        u[~np.isfinite(u)] = 0.0
        return u


# The first draws of numpy.random.default_rng(seed).integers(1, 2**63, dtype=np.uint64), which
# the flow ids have used from the start (a test checks them): importing numpy.random was 18 ms of
# a 512-GPU run. Later draws continue the same stream, so a wider row takes them from numpy.
_MIX_DRAWS = {
    18: (
        "331C7391F26171EA 5BD43E849B4AB0BF 23F204D0EF2B7E79 0A96BAE8AEDF5ECA 7C2177727B15EE77 482EC06858F82D53"
        " 52791BFA488EC8ED 49D6EC92DEA37815 3CD8A0D564784D5F 0FAADE4FAE51C07B 2823EAEE6730B2D4 5E3C1534D5519927"
        " 742552E6D887E85E 71BDB562D8E7B2F5 79629422DF655456 03406F89BD9D6273 5E780C614EE40E26 5617C262130A4EB4"
    ),
    19: (
        "35CEF8EDCB65AA9B 7682E2FE2DA80171 230E2BF8B0844E68 07AFAC337037CDAE 27BFE356B884E335 5BED7E9983D3AEDB"
        " 63F6AE207F7BA370 44F41DC12944D2D3 27E4A7046C7A602D 754AF2ABB6616830 76CB2DA91902DDD3 37DFEB5956863D1F"
        " 3470CEA464CF032A 4E7ED1CEADF39D8B 5B57AC44F613977A 4F6005875593CC10 376B4D14EB6D71F5 38901DD4DEFEF7D6"
    ),
}


@functools.cache
def _row_mix(width: int, seed: int = 18) -> np.ndarray:
    draws = _MIX_DRAWS.get(seed, "")
    if width <= len(draws.split()):
        mix = np.array([int(x, 16) for x in draws.split()[:width]], dtype=np.uint64)
    else:
        mix = np.random.default_rng(seed).integers(1, 2**63, size=width, dtype=np.uint64)
    return mix | np.uint64(1)


def _flow_ids(paths: np.ndarray, caps: np.ndarray, w: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit ids per flow `idx` from its path, cap and weight (fixed odd
    multipliers per column, summed with wrap-around; the second mixed further, so it is not
    linear in the columns): one sort key instead of a lexicographic sort over every hop."""
    width = paths.shape[1] + 2
    kernel = maxmin.KERNEL.current()  # the solve's own time counts towards the switch
    if kernel is not None:
        return kernel.row_ids(paths, caps, w, idx, _row_mix(width), _row_mix(width, 19))
    cols = np.concatenate(
        [paths[idx].astype(np.uint64), caps[idx].view(np.uint64)[:, None], w[idx].view(np.uint64)[:, None]], axis=1
    )
    # Unsigned array arithmetic wraps without a warning (only numpy scalars warn): no errstate,
    # whose context costs more than the sums here.
    ids = (cols * _row_mix(width)).sum(axis=1, dtype=np.uint64)
    return ids, _finalise((cols * _row_mix(width, 19)).sum(axis=1, dtype=np.uint64))


def _finalise(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on a 1-d array (maxmin_kernel.row_ids applies the same)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))
