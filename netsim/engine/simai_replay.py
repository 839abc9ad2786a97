"""SimAI's packet-level (ns-3) execution replayed on the fluid network, rank by rank.

For `netsim validate simai` on SimAI-ns3 references (reference/simai_ns3_semantics.md, whose
section numbers the comments cite). Unlike the folded flow backend, every GPU is a process with
its own collective queue (section 3, "Per-node collective queue": one running, waiting ones
newest first), and a collective ends at a rank when that rank's sends are serialised and its
receives acknowledged, so ranks drift apart as they do in SimAI. Collectives are SimAI's rings
(section 3), chunked into steps; a rank's step k+1 starts when its predecessor's step k has been
acknowledged, plus AS_SEND_LAT; arrivals before the rank has reached that collective wait in a
buffer. Flows get SimAI's source ports and ECMP hashes (sections 1-2) and its packet timing
(section 4, engine/flow.py apply_packet_timing).
"""

from __future__ import annotations

from collections import defaultdict

from netsim.collectives.algorithms import ring_channels
from netsim.engine.analytical import parse_comm
from netsim.engine.flow import apply_packet_timing, new_network
from netsim.engine.result import Breakdown
from netsim.network.topology import Topology
from netsim.workload.parallel import dp_group, tp_group


class _RingInstance:
    """One collective of one group, shared by its ranks."""

    def __init__(self, replay, op: str, ranks: list[int], size: float):
        self.r = replay
        n = len(ranks)
        self.rings = ring_channels(ranks, replay.topo.gpus_per_server, "simai")
        R = len(self.rings)
        self.steps = 2 * (n - 1) if op == "allreduce" else n - 1
        self.reduce = op in ("allreduce", "reducescatter")
        self.chunk = size / (n * R)
        self.nxt = [{ring[i]: ring[(i + 1) % n] for i in range(n)} for ring in self.rings]
        self.started: set[int] = set()
        self.buffered: dict[int, list[tuple[int, int]]] = defaultdict(list)
        self.left = {x: 2 * self.steps * R for x in ranks}  # sends to serialise + receives to ack
        self.done_cb: dict[int, object] = {}

    def start(self, rank: int, on_done) -> None:
        self.started.add(rank)
        self.done_cb[rank] = on_done
        if self.steps == 0:
            on_done()
            return
        for c in range(len(self.rings)):
            self._send(rank, c, 0)
        for c, k in self.buffered.pop(rank, []):
            self._send(rank, c, k)

    def _send(self, rank: int, c: int, k: int) -> None:
        # section 3 "Start delay": issue + 10 ns (+30 ns processing for reduction steps after the
        # first) + AS_SEND_LAT; the +10 ns is folded into the replay's alpha.
        delay = self.r.alpha + (30e-9 if (self.reduce and k > 0) else 0.0)
        dst = self.nxt[c][rank]

        def go():
            self.r.coll.send(
                rank, dst, self.chunk, lambda: self._received(dst, c, k + 1), on_drain=lambda: self._tick(rank)
            )

        self.r.after(delay, go)

    def _received(self, rank: int, c: int, k: int) -> None:
        self._tick(rank)
        if k < self.steps:
            if rank in self.started:
                self._send(rank, c, k)
            else:
                self.buffered[rank].append((c, k))

    def _tick(self, rank: int) -> None:
        self.left[rank] -= 1
        if self.left[rank] == 0:
            self.done_cb.pop(rank)()


class _AllToAllInstance:
    """SimAI's all-to-all: n(n-1) concurrent flows of S/n, one channel, no chaining (section 3)."""

    def __init__(self, replay, ranks: list[int], size: float):
        self.r = replay
        self.ranks = ranks
        self.chunk = size / len(ranks)
        n = len(ranks)
        self.left = {x: 2 * (n - 1) for x in ranks}  # sends to serialise + receives to ack
        self.done_cb: dict[int, object] = {}

    def start(self, rank: int, on_done) -> None:
        self.done_cb[rank] = on_done
        for dst in self.ranks:
            if dst != rank:

                def go(dst=dst):
                    self.r.coll.send(rank, dst, self.chunk, lambda: self._tick(dst), on_drain=lambda: self._tick(rank))

                self.r.after(self.r.alpha, go)

    def _tick(self, rank: int) -> None:
        # A rank's own sends start only once it has reached the collective, so its count cannot
        # reach zero before start() registered its callback.
        self.left[rank] -= 1
        if self.left[rank] == 0:
            self.done_cb.pop(rank)()


class SimaiReplay:
    def __init__(self, w, topo: Topology, send_lat: float):
        self.w, self.topo = w, topo
        self.env, self.net, self.fluid, self.coll = new_network(topo, fidelity="chunked")
        self.coll.ring_style, self.coll.port_policy, self.coll.nvlink_closed_form = "simai", "flow", False
        apply_packet_timing(self.net, self.fluid, self.coll)
        self.alpha = send_lat
        G, tp = topo.num_gpus, w.tp
        dp = G // tp
        # PP is not simulated by SimAI's packet backend: one stage, DP = GPUs / TP.
        self.tp_of = {r: tuple(tp_group(r, tp, dp)) for r in range(G)}
        self.dp_of = {r: tuple(dp_group(r, tp, dp)) for r in range(G)}
        self.instances: dict[tuple, _RingInstance] = {}
        self.count: dict[tuple, int] = defaultdict(int)

    def after(self, delay: float, fn) -> None:
        self.env.timeout(delay).callbacks.append(lambda _e: fn())

    def instance(self, rank: int, op: str, group: tuple, size: float) -> _RingInstance:
        key = (rank, group)
        seq = self.count[key]
        self.count[key] += 1
        ikey = (group, seq)
        inst = self.instances.get(ikey)
        if inst is None:
            kind = _AllToAllInstance if op == "alltoall" else _RingInstance
            inst = self.instances[ikey] = (
                kind(self, list(group), size) if op == "alltoall" else kind(self, op, list(group), size)
            )
        return inst

    def rank_process(self, rank: int, stats: dict):
        env = self.env
        queue: list = []
        running = [False]

        def pump():
            if running[0] or not queue:
                return
            inst, ev, upd = queue.pop()  # newest waiting first
            running[0] = True

            def fin():
                running[0] = False
                self.after(upd * 1e-9, ev.succeed)
                pump()

            inst.start(rank, fin)

        def issue(comm, size, column, upd):
            op, kind = parse_comm(comm, column)
            if op is None or size <= 0:
                return None
            group = self.tp_of[rank] if kind in ("TP", "EP") else self.dp_of[rank]
            if len(group) < 2:
                return None
            ev = env.event()
            queue.append((self.instance(rank, op, group, size), ev, upd))
            pump()
            return ev

        def proc():
            pending = []
            for r in self.w.rows:
                stats["compute"] += r.fwd_compute * 1e-9
                yield env.timeout(r.fwd_compute * 1e-9)
                ev = issue(r.fwd_comm, 4096 if 0 < r.fwd_bytes < 4096 else r.fwd_bytes, "fwd", r.update)
                if ev is not None:
                    t0 = env.now
                    yield ev
                    stats["blocking"] += env.now - t0
            for r in reversed(self.w.rows):
                stats["compute"] += r.ig_compute * 1e-9
                yield env.timeout(r.ig_compute * 1e-9)
                ev = issue(r.ig_comm, r.ig_bytes, "ig", r.update)
                if ev is not None:
                    t0 = env.now
                    yield ev
                    stats["blocking"] += env.now - t0
                stats["compute"] += r.wg_compute * 1e-9
                yield env.timeout(r.wg_compute * 1e-9)
                ev = issue(r.wg_comm, r.wg_bytes, "wg", r.update)
                if ev is not None:
                    pending.append(ev)
            if pending:
                yield env.all_of(pending)
            stats["end"] = env.now

        return proc()

    def run(self) -> Breakdown:
        stats = {r: {"compute": 0.0, "blocking": 0.0, "end": 0.0} for r in range(self.topo.num_gpus)}
        for r in range(self.topo.num_gpus):
            self.env.process(self.rank_process(r, stats[r]))
        self.env.run()
        # The iteration ends when its last rank does (SimAI prints rank 0's end; they coincide
        # when rank 0 is the slowest, as in the shared references).
        last = max(stats, key=lambda r: (stats[r]["end"], -r))
        st = stats[last]
        bd = Breakdown()
        bd.total_us = st["end"] * 1e6
        bd.compute_us = st["compute"] * 1e6
        bd.exposed_tp_us = st["blocking"] * 1e6
        bd.exposed_dp_us = max(0.0, bd.total_us - bd.compute_us - bd.exposed_tp_us)
        bd.exposed_comm_us = bd.exposed_tp_us + bd.exposed_dp_us
        bd.extra = {
            "slowest_rank": last,
            "rank0_total_us": stats[0]["end"] * 1e6,
            "flows": self.fluid.flows_started,
            "solves": self.fluid.solves,
        }
        return bd
