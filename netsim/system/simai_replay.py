"""SimAI's packet-level (ns-3) execution replayed on the fluid network, rank by rank.

For `netsim validate simai` on SimAI-ns3 references (reference/simai_ns3_semantics.md, whose
section numbers the comments cite). Unlike the folded flow backend, every GPU is a process with
its own collective queue (section 3, "Per-node collective queue": one running, waiting ones
newest first), and a collective ends at a rank when that rank's sends are serialised and its
receives acknowledged, so ranks drift apart as they do in SimAI. Collectives are SimAI's rings
(section 3), chunked into steps; a rank's step k+1 starts when its predecessor's step k has been
acknowledged, plus AS_SEND_LAT; arrivals before the rank has reached that collective wait in a
buffer. Flows get SimAI's source ports and ECMP hashes (sections 1-2) and its packet timing
(section 4, network/packet_timing.py).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from netsim.collectives.algorithms import ring_channels
from netsim.collectives.models import FlowModel
from netsim.network.topology import Topology
from netsim.system.result import Breakdown
from netsim.workload.parallel import dp_group, tp_group
from netsim.workload.program import EP, TP, LayerProgram, Phase

if TYPE_CHECKING:
    from netsim.network.dcqcn import Dcqcn

REPORT_TAIL = 100e-9  # SimAI adds 100 ns to rank 0's finish when it prints the total


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
            self.r.model.send_one(
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
                    self.r.model.send_one(
                        rank, dst, self.chunk, lambda: self._tick(dst), on_drain=lambda: self._tick(rank)
                    )

                self.r.after(self.r.alpha, go)

    def _tick(self, rank: int) -> None:
        # A rank's own sends start only once it has reached the collective, so its count cannot
        # reach zero before start() registered its callback.
        self.left[rank] -= 1
        if self.left[rank] == 0:
            self.done_cb.pop(rank)()


class SimaiReplay:
    """Every GPU as a process with SimAI's collective queue, on the packet-level network model."""

    def __init__(
        self, prog: LayerProgram, topo: Topology, send_lat: float, payload: int | None = None, window: bool = False,
        dcqcn: Dcqcn | None = None,
    ):  # fmt: skip
        self.prog, self.topo = prog, topo
        self.model = FlowModel(topo, packet=True, send_lat=send_lat, payload=payload, window=window, dcqcn=dcqcn)
        self.env = self.model.env
        self.alpha = send_lat
        G, tp = topo.num_gpus, prog.tp
        dp = G // tp
        # PP is not simulated by SimAI's packet backend: one stage, DP = GPUs / TP.
        self.tp_of = {r: tuple(tp_group(r, tp, dp)) for r in range(G)}
        self.dp_of = {r: tuple(dp_group(r, tp, dp)) for r in range(G)}
        self.instances: dict[tuple, _RingInstance] = {}
        self.count: dict[tuple, int] = defaultdict(int)
        self.rank0: list[dict] = []  # rank 0's collectives, issue to end + update time, as SimAI's CSV rows

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
        return _Rank(self, rank, stats).process()

    def run(self) -> Breakdown:
        stats = {r: {"compute": 0.0, "blocking": 0.0, "end": 0.0} for r in range(self.topo.num_gpus)}
        for r in range(self.topo.num_gpus):
            self.env.process(self.rank_process(r, stats[r]))
        self.env.run()
        # SimAI prints rank 0's finish + 100 ns as the iteration (semantics sections 0.6 and 6.5), and
        # rank 0's own parts; the slowest rank and the mean are kept beside it.
        st = stats[0]
        ends = [s["end"] for s in stats.values()]
        last = max(stats, key=lambda r: (stats[r]["end"], -r))
        bd = Breakdown.from_parts(compute=st["compute"] * 1e6, tp=st["blocking"] * 1e6,
                                  total=(st["end"] + REPORT_TAIL) * 1e6)  # fmt: skip
        bd.extra = {
            "total_max_us": (max(ends) + REPORT_TAIL) * 1e6,
            "total_mean_us": (sum(ends) / len(ends) + REPORT_TAIL) * 1e6,
            "slowest_rank": last,
            "flows": self.model.fluid.flows_started,
            "solves": self.model.fluid.solves,
        }
        if self.model.fluid.transport is not None:
            bd.extra["max_queue_bytes"] = self.model.fluid.transport.max_queue_bytes
        bd.extra["rank0_collectives"] = self.rank0
        return bd


class _Rank:
    """One GPU: its layers in SimAI's order through its own collective queue (newest waiting first)."""

    def __init__(self, replay: SimaiReplay, rank: int, stats: dict):
        self.r, self.rank, self.stats, self.env = replay, rank, stats, replay.env
        self.queue: list = []
        self.running = False

    def _pump(self) -> None:
        if self.running or not self.queue:
            return
        inst, ev, upd = self.queue.pop()  # newest waiting first
        self.running = True

        def fin():
            self.running = False
            self.r.after(upd * 1e-9, ev.succeed)
            self._pump()

        inst.start(self.rank, fin)

    def _issue(self, ph: Phase, size: int, upd: int, row: tuple[int, str, str]):
        c = ph.collective
        if c is None or size <= 0:
            return None
        group = self.r.tp_of[self.rank] if c.group in (TP, EP) else self.r.dp_of[self.rank]
        if len(group) < 2:
            return None
        ev = self.env.event()
        if self.rank == 0:
            self._record(ev, row, c.op, size)
        self.queue.append((self.r.instance(self.rank, c.op, group, size), ev, upd))
        self._pump()
        return ev

    def _record(self, ev, row: tuple[int, str, str], op: str, size: int) -> None:
        """Rank 0's time for a row's collective, from issue (queue wait included) to its end plus
        the row's update time: what SimAI's EndToEnd.csv lists as that row's total comm."""
        t0 = self.env.now
        entry = {"row": row[0], "layer": row[1], "column": row[2], "op": op, "bytes": size}
        self.r.rank0.append(entry)
        ev.callbacks.append(lambda _e: entry.update(us=(self.env.now - t0) * 1e6))

    def _compute(self, ns: int):
        self.stats["compute"] += ns * 1e-9
        return self.env.timeout(ns * 1e-9)

    def _blocking(self, ev):
        if ev is not None:
            t0 = self.env.now
            yield ev
            self.stats["blocking"] += self.env.now - t0

    def process(self):
        pending = []
        layers = self.r.prog.layers
        for i, x in enumerate(layers):
            yield self._compute(x.fwd.compute_ns)
            size = 4096 if 0 < x.fwd.bytes < 4096 else x.fwd.bytes
            yield from self._blocking(self._issue(x.fwd, size, x.update_ns, (i, x.name, "fwd")))
        for i in range(len(layers) - 1, -1, -1):
            x = layers[i]
            yield self._compute(x.ig.compute_ns)
            yield from self._blocking(self._issue(x.ig, x.ig.bytes, x.update_ns, (i, x.name, "ig")))
            yield self._compute(x.wg.compute_ns)
            ev = self._issue(x.wg, x.wg.bytes, x.update_ns, (i, x.name, "wg"))
            if ev is not None:
                pending.append(ev)
        if pending:
            yield self.env.all_of(pending)
        self.stats["end"] = self.env.now
