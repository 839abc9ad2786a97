"""Run collectives on the fluid network: every group of a lockstep set at once.

Fidelities (DESIGN.md, reference/perf.md section 6):
- macro (default): one flow per ring edge and channel carrying the algorithm's total bytes for
  that edge, then steps x (alpha + the slowest edge's latency); one solve per start/finish;
- chunked: every step is a flow of S/(n*R) bytes; a rank's step k+1 starts when its
  predecessor's step k has arrived (+ alpha), as SimAI's flow model does.
Ports: every flow takes the next source port of its (src, dst) pair (from 10000), so ECMP
spreads or collides flows the way switches hash real QPs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from netsim.collectives.algorithms import double_binary_tree, ring_channels, server_groups, tree_depth
from netsim.collectives.closed_form import ALLGATHER, ALLREDUCE, ALLTOALL, BROADCAST, REDUCE, REDUCESCATTER, SENDRECV
from netsim.collectives.multidim import hierarchical_phases
from netsim.network.fluid import FluidNetwork
from netsim.network.routing import CompiledNetwork

if TYPE_CHECKING:  # the codec and packet elements are imported by whoever builds them
    from netsim.network.compression import NicCodec
    from netsim.network.packet_timing import PacketTiming

ALGOS = ("ring", "tree", "hierarchical", "direct", "auto")


class Join:
    """Call `fn` after `n` arrivals (n == 0: at once).

    Collectives complete through plain callbacks rather than SimPy Events: a 512-GPU iteration
    finishes hundreds of thousands of flows, and an Event per flow doubles the event count. The
    network models wrap each collective's completion in one Event (collectives/models.py)."""

    __slots__ = ("n", "fn")

    def __init__(self, n: int, fn: Callable[[], None]):
        self.n, self.fn = n, fn
        if n == 0:
            fn()

    def __call__(self) -> None:
        self.n -= 1
        if self.n == 0:
            self.fn()


RING_OPS = (ALLREDUCE, ALLGATHER, REDUCESCATTER)  # collectives a macro ring runs as one batch
PLAN_IDS = 4096  # group lists remembered by identity (callers that build new lists each time)
SIZES_PER_PLAN = 64  # a ring plan's batches remembered by (op, bytes)


@dataclass(frozen=True, slots=True)
class PairPlan:
    """Point-to-point flows of a list of (src, dst) pairs as one batch: padded link rows
    (read-only), each flow's fraction of its pair's bytes, the pair it belongs to, the longest
    path latency, and the batch's sizes at each byte count it has run (read-only)."""

    paths: np.ndarray
    fracs: np.ndarray
    owner: np.ndarray
    lat: float
    sized: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RingPlan:
    """Every group's ring flows as one batch: padded link rows (read-only), each flow's fraction
    of a rank's bytes, the group size, the largest mean and largest longest ring-edge latency
    over the groups, and the batch's sizes and delay at each (op, bytes) it has run."""

    paths: np.ndarray
    fracs: np.ndarray
    n: int
    mean_lat: float
    max_lat: float
    sized: dict = field(default_factory=dict)  # (op, bytes) -> _ring_sizes


def _with_peers(op: str, groups: list[list[int]]) -> list[list[int]]:
    """The groups that communicate (more than one member; every send/recv pair); the same list
    when all do (callers key their plans on it)."""
    if op == SENDRECV or not groups or min(map(len, groups)) > 1:
        return groups
    return [g for g in groups if len(g) > 1]


class CollectiveEngine:
    """Collectives decomposed into flows on a FluidNetwork: rings (macro or chunked), trees,
    hierarchical, all-to-all and send/recv, with ECMP source ports per connection, NVLink-only
    groups in closed form, and the NIC elements (codec, packet timing) it was built with."""

    def __init__(
        self,
        env,
        fluid: FluidNetwork,
        net: CompiledNetwork,
        alpha: float,
        fidelity: str = "macro",
        ideal: bool = False,
        spray: bool = False,
        ring_style: str = "nccl",
        nvlink_closed_form: bool = True,
        port_policy: str = "connection",
        codec: NicCodec | None = None,
        timing: PacketTiming | None = None,
        alltoall: str = "pxn",
    ):
        self.env, self.fluid, self.net = env, fluid, net
        # All-to-all: "pxn" (NCCL's default, NCCL_P2P_PXN_LEVEL=2: NVLink to the destination's rail,
        # then that rail) or "direct" (one flow per pair); `run(algo=...)` overrides it per call.
        self.alltoall = alltoall
        self.alpha = alpha
        self.fidelity = fidelity
        self.ideal = ideal
        self.spray = spray
        self.ports: dict[tuple[int, int], int] = defaultdict(lambda: 10000)
        self.gps = net.topo.gpus_per_server
        self.codec = codec  # network.compression.NicCodec on the NICs' path, or None
        self.timing = timing  # network.packet_timing.PacketTiming for packet-level replay, or None
        self.ring_style = ring_style
        # "connection": a ring edge / p2p pair keeps its QP (and so its ECMP path) for the run, as
        # NCCL keeps connections per communicator; "flow": every flow takes a new source port, as
        # SimAI's ns-3 backend does.
        self.port_policy = port_policy
        self.conn_ports: dict[tuple, int] = {}
        self._plans: dict = {}
        self._ring_by_id: dict[int, tuple[list[list[int]], RingPlan]] = {}
        self._pairs_by_id: dict[int, tuple[list[list[int]], PairPlan]] = {}  # sends' pair lists
        # Collectives whose every group sits inside one NVLink domain are priced in closed form:
        # NVSwitch is non-blocking and carries no other group's traffic at that moment.
        self.nvlink_closed_form = nvlink_closed_form and net.topo.nvlink_bandwidth is not None
        self.closed_form_count = 0

    # ---- primitives ------------------------------------------------------------------------
    def next_port(self, src: int, dst: int) -> int:
        p = self.ports[(src, dst)]
        self.ports[(src, dst)] = (p + 1) & 0xFFFF
        return p

    def _codec(self, traffic: str, kind: str):
        c = self.codec
        return c if (c is not None and c.applies(traffic, kind)) else None

    def send(
        self,
        src: int,
        dst: int,
        size: float,
        on_done: Callable[[], None],
        traffic: str = "default",
        conn=None,
        on_drain: Callable[[], None] | None = None,
        kind: str = "DP",
    ) -> None:
        """One point-to-point transfer; on_done when the last byte has arrived (on_drain when it
        has left the sender)."""
        if self.ideal or src == dst or size <= 0:
            if on_drain is not None:
                on_drain()
            self._after(0.0, on_done)
            return
        if self.port_policy == "connection":
            key = (src, dst, conn)
            sport = self.conn_ports.get(key)
            if sport is None:
                sport = self.conn_ports[key] = self.next_port(src, dst)
        else:
            sport = self.next_port(src, dst)
        if self.spray:
            routes = self.net.all_routes(src, dst)
            j = Join(len(routes), on_done)
            for r in routes:
                self.fluid.start(r, size / len(routes), j)
            return
        links = self.net.data_route(src, dst, sport)
        if self.timing is not None:
            acks = self.net.ack_route(src, dst, sport) if self.fluid.transport is not None else ()
            self.fluid.start(links, size, on_done, extra_delay=self.timing.extra_delay(links), on_drain=on_drain,
                             acks=acks)  # fmt: skip
            return
        c = self._codec(traffic, kind) if self.net.topo.server_of(src) != self.net.topo.server_of(dst) else None
        if c is None:
            self.fluid.start(links, size, on_done, on_drain=on_drain)
            return
        r = c.ratio(traffic)
        if c.pipelined:
            c.acct.add(traffic, size, size * r, 0.0)
            self.fluid.start(
                links, size, on_done, cap=c.engine_rate(), weight=r, extra_delay=c.p.latency, on_drain=on_drain
            )
        else:
            pre, post = c.compress_s(size), c.decompress_s(size)
            c.acct.add(traffic, size, size * r, pre + post)
            self._after(
                pre, lambda: self.fluid.start(links, size, on_done, weight=r, extra_delay=post, on_drain=on_drain)
            )

    def _after(self, delay: float, fn: Callable[[], None]) -> None:
        if delay <= 0:
            ev = self.env.timeout(0)
        else:
            ev = self.env.timeout(delay)
        ev.callbacks.append(lambda _e: fn())

    def edge_latency(self, src: int, dst: int) -> float:
        return self.net.path_latency(self.net.data_route(src, dst, 0))

    # ---- collectives -----------------------------------------------------------------------
    def run(
        self,
        op: str,
        groups: list[list[int]],
        size: float,
        on_done: Callable[[], None],
        algo: str = "ring",
        traffic: str = "default",
        kind: str = "DP",
        shares: list[float] | None = None,
    ) -> None:
        """Run `op` of `size` bytes (SimAI convention) on every group at once; on_done when all finish.
        `shares` (all-to-all only): the fraction of each rank's buffer sent to each group member, in
        group order (default 1/n each)."""
        groups = _with_peers(op, groups)
        if not groups or size <= 0:
            self._after(0.0, on_done)
            return
        if self.ideal:
            self._after(0.0, on_done)
            return
        if self.nvlink_closed_form and op != SENDRECV and self._all_intra_server(groups) and self.timing is None:
            self._after(self._nvlink_time(op, len(groups[0]), size), on_done)
            return
        if self.net.topo.dims and op in (ALLREDUCE, ALLGATHER, REDUCESCATTER):
            self._dimension_phases(op, groups, size, on_done, traffic, kind)
            return
        self._run_flat(op, groups, size, on_done, algo, traffic, kind, shares)

    def fixed_time(self, op: str, groups: list[list[int]], size: float) -> float | None:
        """Seconds `run` would take without putting flows on the network (no group, ideal, or an
        NVLink-only collective priced in closed form); None when it needs the network."""
        groups = [g for g in groups if len(g) > 1 or op == SENDRECV]
        if not groups or size <= 0 or self.ideal:
            return 0.0
        if self.nvlink_closed_form and op != SENDRECV and self._all_intra_server(groups) and self.timing is None:
            return self._nvlink_time(op, len(groups[0]), size)
        return None

    def _run_flat(self, op, groups, size, on_done, algo="ring", traffic="default", kind="DP", shares=None) -> None:
        """One level of algorithm (on groups that communicate): batched rings, batched pairs, or
        per-group algorithms."""
        if not groups or size <= 0:
            self._after(0.0, on_done)
            return
        batchable = self.timing is None
        if op in RING_OPS and algo in ("ring", "auto") and self.fidelity == "macro" and batchable:
            self._ring_batch(op, groups, size, on_done, traffic, kind)
            return
        if op == SENDRECV and batchable:
            self._pairs_batch(groups, size, on_done, traffic, kind)
            return
        join = Join(len(groups), on_done)
        for g in groups:
            self._one(op, g, size, join, algo, traffic, kind, shares)

    def _dimension_phases(self, op, groups, size, on_done, traffic, kind) -> None:
        """A multi-dimensional network's hierarchical collective (collectives/multidim.py): per
        dimension a ring (ring and switch dimensions) or a direct exchange (fully connected), every
        group's phase at once, one phase after another."""
        sizes = [d[1] for d in self.net.topo.dims]
        kinds = [d[0] for d in self.net.topo.dims]
        # SimAI's all-gather size is the gathered buffer; the hierarchy takes one member's share.
        per = [hierarchical_phases(op, size / len(g) if op == ALLGATHER else size, g, sizes) for g in groups]
        phases = []
        for i in range(len(per[0])):
            p_op, _subs, p_size, d = per[0][i]
            phases.append(
                (ALLTOALL if kinds[d] == "fully_connected" else p_op, [s for p in per for s in p[i][1]], p_size)
            )

        def step(i: int) -> None:
            if i == len(phases):
                on_done()
                return
            p_op, subs, p_size = phases[i]
            # A fully connected dimension is a direct exchange by definition (LIBRA, ASTRA-sim).
            algo = "direct" if p_op == ALLTOALL else "ring"
            self._run_flat(
                p_op, _with_peers(p_op, subs), p_size, lambda: step(i + 1), algo=algo, traffic=traffic, kind=kind
            )

        step(0)

    def _all_intra_server(self, groups) -> bool:
        g = self.gps
        return all(len({r // g for r in grp}) == 1 for grp in groups)

    def _nvlink_time(self, op: str, n: int, size: float) -> float:
        from netsim.collectives.closed_form import collective_time

        topo = self.net.topo
        return collective_time(op, n, size, topo.nvlink_bandwidth, self.alpha + 2 * topo.nvlink_latency)

    def _one(self, op, ranks, size, done, algo, traffic, kind="DP", shares=None):
        if op == SENDRECV:
            src, dst = ranks
            self._after(self.alpha, lambda: self.send(src, dst, size, done, traffic, kind=kind))
            return
        if op == ALLTOALL:
            w = dict(zip(ranks, shares)) if shares is not None else None
            how = {"hierarchical": "pxn", "direct": "direct"}.get(algo, self.alltoall)
            if how == "pxn":
                self._alltoall_pxn(ranks, size, done, traffic, kind, w)
            else:
                self._alltoall(ranks, size, done, traffic, kind, w)
            return
        if op in (BROADCAST, REDUCE):
            self._chain(op, ranks, size, done, traffic, kind)
            return
        if algo == "auto":
            algo = "ring"
        if algo == "tree" and op == ALLREDUCE:
            self._tree_allreduce(ranks, size, done, traffic)
        elif (
            algo == "hierarchical"
            and op == ALLREDUCE
            and len(server_groups(ranks, self.gps)) > 1
            and len(server_groups(ranks, self.gps)[0]) > 1
        ):
            self._hierarchical(ranks, size, done, traffic)
        else:
            self._ring(op, ranks, size, done, traffic, kind)

    def _ring(self, op, ranks, size, done, traffic, kind="DP"):
        """Chunked fidelity (macro-flow rings go through _ring_batch)."""
        n = len(ranks)
        rings = ring_channels(ranks, self.gps, self.ring_style)
        steps = 2 * (n - 1) if op == ALLREDUCE else n - 1
        self._ring_chunked(rings, steps, size / (n * len(rings)), done, traffic, kind)

    def _ring_batch(self, op, groups, size, done, traffic="default", kind="DP"):
        """Macro-flow rings of every group as one batch of flows (paths cached per communicator)."""
        plan = self._ring_plan(groups)
        c = self._codec(traffic, kind)
        if c is None:
            sizes, delay = self._sized(op, plan, size)
            self.fluid.start_batch(plan.paths, sizes, done, delay=delay)
            return
        steps, factor, tail = self._ring_steps(op, plan)
        r = c.ratio(traffic)
        codec = c.collective_codec_s(op, plan.n, size) + c.fill_latency_s(steps)
        c.acct.add(traffic, factor * size, factor * size * r, 0.0 if c.pipelined else codec)
        caps = c.engine_rate() * plan.fracs if c.pipelined else None  # a rank's flows share its engine
        self.fluid.start_batch(
            plan.paths, plan.fracs * size * factor, done, delay=plan.max_lat + tail + codec,
            weights=np.full(len(plan.fracs), r), caps=caps,
        )  # fmt: skip

    def _sized(self, op: str, plan: RingPlan, size: float) -> tuple[np.ndarray, float]:
        sized = plan.sized.get((op, size))
        if sized is None:
            if len(plan.sized) >= SIZES_PER_PLAN:
                plan.sized.clear()
            sized = plan.sized[(op, size)] = self._ring_sizes(op, plan, size)
        return sized

    def plain_batch(self, op: str, groups: list[list[int]], size: float, traffic: str, kind: str) -> tuple | None:
        """The one batch of flows `run` starts for this collective, as (paths, sizes, delay), when
        it is a macro ring on the network without a codec; None for anything else (nothing to
        start, NVLink-only, hierarchical dimensions, chunked or packet fidelity, a codec)."""
        if op not in RING_OPS or size <= 0 or self.ideal or self.fidelity != "macro" or self.timing is not None:
            return None
        groups = _with_peers(op, groups)
        if not groups or self.net.topo.dims or self._codec(traffic, kind) is not None:
            return None
        if self.nvlink_closed_form and self._all_intra_server(groups):
            return None
        plan = self._ring_plan(groups)
        return (plan.paths, *self._sized(op, plan, size))

    def _ring_steps(self, op: str, plan: RingPlan) -> tuple[int, float, float]:
        """A macro ring's steps, each rank's bytes sent per byte of `size`, and the steps' alpha
        and latency beyond the slowest edge's."""
        steps = 2 * (plan.n - 1) if op == ALLREDUCE else plan.n - 1
        factor = 2 * (plan.n - 1) / plan.n if op == ALLREDUCE else (plan.n - 1) / plan.n
        return steps, factor, max(0.0, steps * (self.alpha + plan.mean_lat) - plan.max_lat)

    def _ring_sizes(self, op: str, plan: RingPlan, size: float) -> tuple[np.ndarray, float]:
        """A ring batch's flow sizes (read-only: the network finds a batch it has run by them) and
        its delay after the last flow drains: the slowest edge's latency, then every other step's
        alpha and mean edge latency."""
        _steps, factor, tail = self._ring_steps(op, plan)
        sizes = plan.fracs * size * factor
        sizes.flags.writeable = False
        return sizes, plan.max_lat + tail

    def _ring_plan(self, groups: list[list[int]]) -> RingPlan:
        """The flows of every group's rings (cached per communicator). The pipeline passes the same
        group lists every time: they are found by identity, checked by value."""
        hit = self._ring_by_id.get(id(groups))
        if hit is not None and hit[0] == groups:
            return hit[1]
        key = ("ring", tuple(tuple(g) for g in groups), self.spray)
        plan = self._plans.get(key)
        if plan is None:
            rows, fracs, tails_lat = [], [], []
            H = self.fluid.H
            for g in groups:
                rings = ring_channels(g, self.gps, self.ring_style)
                lats = []
                q = self.net.topo.flows_per_pair
                for c, ring in enumerate(rings):
                    for a, b in zip(ring, ring[1:] + ring[:1]):
                        # flows_per_pair flows per ring edge and channel, each its own connection
                        # (split over every path when spraying).
                        for k in range(q):
                            routes = self.net.all_routes(a, b) if self.spray else [self._conn_route(a, b, (c, k))]
                            for links in routes:
                                rows.append(list(links) + [self.fluid.L - 1] * (H - len(links)))
                                fracs.append(1.0 / len(rings) / len(routes) / q)
                        lats.append(self.net.path_latency(routes[0]))
                tails_lat.append((sum(lats) / len(lats), max(lats)))
            paths = np.array(rows, dtype=np.int64)
            paths.flags.writeable = False  # the network keys it by identity
            plan = self._plans[key] = RingPlan(
                paths, np.array(fracs), len(groups[0]), max(m for m, _x in tails_lat), max(x for _m, x in tails_lat)
            )
        if len(self._ring_by_id) >= PLAN_IDS:
            self._ring_by_id.clear()
        self._ring_by_id[id(groups)] = ([list(g) for g in groups], plan)
        return plan

    def _pairs_plan(self, pairs, conn) -> PairPlan:
        """The flows of every (src, dst) pair (cached per pair list and connection). Pipeline
        sends pass the same list every time: found by identity, checked by value; an all-to-all's
        lists are new each call (a copy to check them by would cost more than the key)."""
        by_id = conn == "p2p"
        hit = self._pairs_by_id.get(id(pairs)) if by_id else None
        if hit is not None and hit[0] == pairs:
            return hit[1]
        key = (conn, tuple(tuple(p) for p in pairs), self.spray)
        plan = self._plans.get(key)
        if plan is None:
            H, pad = self.fluid.H, self.fluid.L - 1
            rows, fracs, owner, lat = [], [], [], 0.0
            q = self.net.topo.flows_per_pair
            for i, (a, b) in enumerate(pairs):
                for k in range(q):
                    routes = self.net.all_routes(a, b) if self.spray else [self._conn_route(a, b, (conn, k))]
                    for links in routes:
                        rows.append(list(links) + [pad] * (H - len(links)))
                        fracs.append(1.0 / len(routes) / q)
                        owner.append(i)
                        lat = max(lat, self.net.path_latency(links))
            paths = np.array(rows, dtype=np.int64)
            paths.flags.writeable = False  # the network keys it by identity
            plan = self._plans[key] = PairPlan(paths, np.array(fracs), np.array(owner, dtype=np.int64), lat)
        if by_id:
            if len(self._pairs_by_id) >= PLAN_IDS:
                self._pairs_by_id.clear()
            self._pairs_by_id[id(pairs)] = ([list(p) for p in pairs], plan)
        return plan

    def _pairs_batch(self, pairs, size, done, traffic="default", kind="PP", conn="p2p"):
        """Concurrent point-to-point flows of `size` bytes (or a list: one size per pair), one per
        (src, dst) pair, as one batch after the start overhead (split over every path when
        spraying); send/recv and all-to-all."""
        plan = self._pairs_plan(pairs, conn)
        paths, fracs, owner, lat = plan.paths, plan.fracs, plan.owner, plan.lat
        per_pair = np.asarray(size, dtype=float)
        if per_pair.ndim:
            sizes = fracs * per_pair[owner]
        else:  # one size for every pair: read-only and kept, so the network finds a batch it has run
            sizes = plan.sized.get(size)
            if sizes is None:
                if len(plan.sized) >= SIZES_PER_PLAN:
                    plan.sized.clear()
                sizes = plan.sized[size] = fracs * float(size)
                sizes.flags.writeable = False
        c = self._codec(traffic, kind)
        if c is None:
            self._after(self.alpha, lambda: self.fluid.start_batch(paths, sizes, done, delay=lat))
            return
        r = c.ratio(traffic)
        w = np.full(len(sizes), r)
        sent = _busiest_sender(pairs, size)
        if c.pipelined:
            c.acct.add(traffic, sent, sent * r, 0.0)
            caps = c.engine_rate() * fracs
            self._after(
                self.alpha,
                lambda: self.fluid.start_batch(paths, sizes, done, delay=lat + c.p.latency, weights=w, caps=caps),
            )
            return
        # One codec per GPU: a rank compresses everything it sends (n-1 chunks of an all-to-all) and
        # decompresses everything it receives, not one chunk in parallel per peer.
        pre, post = c.compress_s(sent), c.decompress_s(sent)
        c.acct.add(traffic, sent, sent * r, pre + post)
        self._after(self.alpha + pre, lambda: self.fluid.start_batch(paths, sizes, done, delay=lat + post, weights=w))

    def _conn_route(self, src: int, dst: int, conn) -> tuple[int, ...]:
        key = (src, dst, conn)
        sport = self.conn_ports.get(key)
        if sport is None or self.port_policy != "connection":
            sport = self.next_port(src, dst)
            if self.port_policy == "connection":
                self.conn_ports[key] = sport
        return self.net.data_route(src, dst, sport)

    def _ring_chunked(self, rings, steps, chunk, done, traffic, kind="DP"):
        join = Join(sum(len(r) for r in rings), done)
        for ring in rings:
            n = len(ring)
            nxt = {ring[i]: ring[(i + 1) % n] for i in range(n)}
            # arrived[r][k]: rank r has received step k from its predecessor.

            def step(r: int, k: int, nxt=nxt, c=len(rings)) -> None:
                if k == steps:
                    join()
                    return
                self._after(
                    self.alpha,
                    lambda: self.send(r, nxt[r], chunk, lambda: step(nxt[r], k + 1), traffic, conn=c, kind=kind),
                )

            # Each rank's step 0 starts at once; step k+1 of rank r is sent by r after receiving
            # step k, i.e. the chain is driven by arrivals. A rank finishes after its last receive.
            for r in ring:
                step(r, 0)

    def _alltoall(self, ranks, size, done, traffic, kind, share: dict[int, float] | None):
        """Direct all-to-all: n(n-1) concurrent flows, S/n (or S x share[b]) from every a to every b."""
        pairs = [(a, b) for a in ranks for b in ranks if a != b]
        sizes = [size * share[b] for _a, b in pairs] if share is not None else size / len(ranks)
        if self.timing is None:
            self._pairs_batch(pairs, sizes, done, traffic, kind, conn="a2a")
            return
        join = Join(len(pairs), done)
        each = sizes if isinstance(sizes, list) else [sizes] * len(pairs)
        for (a, b), s in zip(pairs, each):
            self._after(self.alpha, lambda a=a, b=b, s=s: self.send(a, b, s, join, traffic, kind=kind))

    def _alltoall_pxn(self, ranks, size, done, traffic, kind, share: dict[int, float] | None):
        """NCCL's PXN all-to-all: rank (a, i) hands everything bound for local index j on any server
        to its NVLink peer (a, j), which sends it on its own NIC to (b, j): every inter-server byte
        stays on one rail (no spine on a rail-optimized fabric) in k x fewer, larger flows. The two
        hops are pipelined in chunks in NCCL, so they run as concurrent macro flows here (as a
        ring's steps do). Needs several ranks per server and the same local indices on every
        server; otherwise (and in packet replay: SimAI's ns-3 sends direct) it is the direct one."""
        g = self.gps
        servers = server_groups(ranks, g)
        locals_ = [[r % g for r in s] for s in servers]
        one_level = len(servers) == 1 or len(servers[0]) == 1
        if one_level or any(li != locals_[0] for li in locals_) or self.timing is not None:
            self._alltoall(ranks, size, done, traffic, kind, share)
            return
        if share is None:
            share = {r: 1.0 / len(ranks) for r in ranks}
        nvl, rail = [], []
        for srv in servers:
            for a in srv:
                for b in srv:
                    if a != b:  # a's data for b's rail: b's own chunk and every other server's peer of b
                        nvl.append(((a, b), size * sum(share[s[srv.index(b)]] for s in servers)))
            for j, a in enumerate(srv):
                for other in servers:
                    if other is not srv:  # (a, j) -> (b, j) carries all k local ranks' chunks for (b, j)
                        rail.append(((a, other[j]), len(srv) * size * share[other[j]]))
        join = Join(2, done)
        for part, conn in ((nvl, "pxn-nvlink"), (rail, "pxn-rail")):
            self._pairs_batch([p for p, _s in part], [s for _p, s in part], join, traffic, kind, conn=conn)

    def _chain(self, op, ranks, size, done, traffic, kind="DP"):
        """NCCL's rooted ring (broadcast from / reduce to ranks[0]): per channel the ring opened at
        the root, each of its n-1 edges carrying that channel's share of the whole buffer, pipelined
        in chunks; macro flows run the edges at once and add the pipeline fill of n-2 further hops."""
        rings = [_rotate_to(r, ranks[0]) for r in ring_channels(ranks, self.gps, self.ring_style)]
        edges = [list(zip(r, r[1:])) for r in rings]
        if op == REDUCE:
            edges = [[(b, a) for a, b in reversed(e)] for e in edges]
        lat = max(self.edge_latency(a, b) for e in edges for a, b in e)
        tail = max(0, len(ranks) - 2) * (self.alpha + lat)
        join = Join(len(edges), lambda: self._after(tail, done))
        share = size / len(rings)
        for c, pairs in enumerate(edges):
            if self.timing is None:
                self._pairs_batch(pairs, share, join, traffic, kind, conn=("chain", c))
                continue
            hop = Join(len(pairs), join)
            for a, b in pairs:
                self._after(
                    self.alpha, lambda a=a, b=b, c=c, hop=hop: self.send(a, b, share, hop, traffic, conn=c, kind=kind)
                )

    def _tree_allreduce(self, ranks, size, done, traffic):
        trees = double_binary_tree(ranks)
        depth = tree_depth(len(ranks))
        edges = [(c, p) for t in trees for c, p in t]
        lat = max(self.edge_latency(c, p) for c, p in edges)
        tail = 2 * depth * (self.alpha + lat) - lat
        join = Join(2 * len(edges), lambda: self._after(tail, done))
        half = size / len(trees)
        for c, p in edges:
            self.send(c, p, half, join, traffic)  # reduce up (pipelined)
            self.send(p, c, half, join, traffic)  # broadcast down

    def _hierarchical(self, ranks, size, done, traffic):
        local = server_groups(ranks, self.gps)
        k = len(local[0])
        cross = [[g[i] for g in local] for i in range(k)]

        def phase3():
            self.run(ALLGATHER, local, size, done, "ring", traffic)

        def phase2():
            self.run(ALLREDUCE, cross, size / k, phase3, "ring", traffic)

        self.run(REDUCESCATTER, local, size, phase2, "ring", traffic)


def _rotate_to(ring: list[int], root: int) -> list[int]:
    i = ring.index(root)
    return ring[i:] + ring[:i]


def _busiest_sender(pairs, size) -> float:
    """Bytes the busiest source of `pairs` sends (size: one for all pairs, or one per pair)."""
    if not isinstance(size, list):
        return size * sum(1 for a, _b in pairs if a == pairs[0][0])
    out: dict[int, float] = defaultdict(float)
    for (a, _b), s in zip(pairs, size):
        out[a] += s
    return max(out.values())
