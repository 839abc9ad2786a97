"""Window-limited transport: the RDMA window of SimAI's ns-3 NICs on top of max-min sharing.

An element built with the network from a SimAI.conf (reference/simai_ns3_semantics.md section 4,
"Window"): every queue pair may keep W bytes in flight, W = the fabric's largest bandwidth-delay
product plus one packet (GLOBAL_T forces the global window). Max-min sharing alone assumes every
flow can fill its share; with a window it reaches rate <= W / (RTT0 + queueing on its data path
and on its ACK path).

Queues. A NIC schedules its queue pairs round-robin and holds back what the window allows, so
only switch egress ports queue. At a saturated switch port, each flow bottlenecked there keeps
W - rate x (the rest of its RTT) bytes in that queue; the port's delay is the sum over capacity.
A flow is never slowed by its own bottleneck's queue (that queue is its window's excess by
construction); it is slowed by queues elsewhere on its data path and on its ACK path (ACKs share
the switch FIFOs with data: ACK_HIGH_PRIO 0; at the receiving NIC they go first). The rates and
queue delays are a fixed point, found by damped iteration of max-min solves with window caps.

ACKs. Built from packet timing, a link's capacity is its payload rate without ACKs, and the ACKs
crossing it take their share (an ACK's serialisation over a data packet's, per ACK: semantics
section 6.3) of each acknowledged flow's rate, inside the same fixed point. So where a queue
forms follows the ACK load: of two equally loaded ports in series, the one that also carries
other flows' ACKs is the bottleneck and holds the queue.

DCQCN (CC_MODE 1, given a `Dcqcn` with the ports' ECN ramps): a switch port whose window queue
passes KMIN marks packets and its flows' reaction points cut their rates; under SimAI's settings
the port then cycles between KMIN and the windows' queue, still fully used, and holds DCQCN's mean
queue for that many window-limited flows at that capacity (network/dcqcn.mean_queues: 1.34 MB
instead of the windows' 1.69 MB for 8 flows at 400 Gbps). So DCQCN changes rates here through
queueing delay only. `max_queue_bytes` reports the largest queue seen. Knows nothing about
collectives.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from netsim.network.dcqcn import Dcqcn, Marking, mean_queues
from netsim.network.maxmin import max_min_rates

ITERATIONS = 30
DAMPING = 0.5
TOLERANCE = 1e-4
ACK_ROUNDS = 3


class WindowTransport:
    """Per-link queueing flags and RTT terms, the window, and the rate fixed point."""

    def __init__(self, capacity: np.ndarray, queues: np.ndarray, data_rtt: np.ndarray, ack_rtt: np.ndarray,
                 window: float, ack_share: np.ndarray | None = None, dcqcn: Dcqcn | None = None,
                 ramps: list[Marking | None] | None = None):  # fmt: skip
        self.capacity = capacity
        self.queues = queues.astype(bool)  # links whose egress is a switch port (they can queue)
        self.data_rtt = data_rtt  # per link: propagation + a packet's serialisation
        self.ack_rtt = ack_rtt  # per link: propagation + an ACK's serialisation
        self.window = window
        # Per link: an ACK's serialisation over a data packet's. Given, a flow's ACKs take that
        # share of its rate on every link of its ACK path (semantics section 6.3, per flow), and
        # `capacity` is the payload rate of a link without ACKs; None: ACKs are already in capacity.
        self.ack_share = ack_share
        self.max_queue_bytes = 0.0
        # DCQCN and each link's ECN ramp (None: that egress does not mark), both or neither.
        self.dcqcn = dcqcn
        self.ramps = ramps if dcqcn is not None and ramps is not None else None
        self.kmin = None if self.ramps is None else np.array([np.inf if m is None else m.kmin for m in self.ramps])
        self._dcqcn_tables: dict[tuple, np.ndarray] = {}

    def rates(self, paths: np.ndarray, acks: np.ndarray, caps: np.ndarray, weights: np.ndarray) -> np.ndarray:
        L = self.capacity.shape[0]
        dummy = L - 1
        cap, r = self._max_min_with_acks(paths, acks, caps, weights)
        base = self.data_rtt[paths].sum(axis=1) + self.ack_rtt[acks].sum(axis=1)
        # The receiving NIC sends ACKs first: no queue on an ACK path's first link.
        ack_q = acks.copy()
        ack_q[:, 0] = dummy
        d = np.zeros(L)
        for _ in range(ITERATIONS):
            bn, has_bn = self._bottlenecks(paths, cap, r, weights)
            wait = d[paths].sum(axis=1) + d[ack_q].sum(axis=1)
            own = np.where(has_bn, d[bn], 0.0)
            rest = base + wait - own
            excess = np.maximum(self.window - r * rest, 0.0)
            at = has_bn & self.queues[bn]
            q = np.bincount(bn[at], weights=excess[at], minlength=L)
            q[dummy] = 0.0
            if self.ramps is not None:
                q = self._dcqcn_queues(q, bn[at])
            d = DAMPING * d + (1 - DAMPING) * q / np.where(self.capacity > 0, self.capacity, np.inf)
            wait = d[paths].sum(axis=1) + d[ack_q].sum(axis=1)
            own = np.where(has_bn, d[bn], 0.0)
            new = max_min_rates(paths, cap, np.minimum(caps, self.window / (base + wait - own)), weights)
            if np.allclose(new, r, rtol=TOLERANCE, atol=0.0):
                r = new
                break
            r = new
            cap = self._data_capacity(acks, r)
        # The queues the final rates imply (d, damped, lags them when no rate depends on it).
        self.max_queue_bytes = max(self.max_queue_bytes, float(q[:dummy].max(initial=0.0)))
        return r

    def _dcqcn_queues(self, q: np.ndarray, bottlenecked: np.ndarray) -> np.ndarray:
        """Marking ports' queues held at DCQCN's mean for the flows bottlenecked there (a window
        queue below KMIN marks nothing and stays)."""
        over = np.flatnonzero(q > self.kmin)
        if over.size == 0:
            return q
        n = np.bincount(bottlenecked, minlength=q.shape[0])
        q = q.copy()
        for link in over.tolist():
            if n[link]:
                q[link] = min(q[link], self._dcqcn_queue(int(n[link]), link))
        return q

    def _dcqcn_queue(self, flows: int, link: int) -> float:
        """DCQCN's mean queue for `flows` flows at `link` (network/dcqcn.mean_queues, one table of
        1 ... 64 flows per port rate, grown when more flows meet; the flows' RTT is the window's
        own, window / capacity)."""
        cap, ramp = float(self.capacity[link]), self.ramps[link]
        key = (cap, ramp)
        table = self._dcqcn_tables.get(key)
        if table is None or table.size < flows:
            size = max(64, flows)
            table = mean_queues(self.dcqcn, ramp, cap, np.arange(1, size + 1), self.window, self.window / cap)
            self._dcqcn_tables[key] = table
        return float(table[flows - 1])

    def _max_min_with_acks(self, paths, acks, caps, weights) -> tuple[np.ndarray, np.ndarray]:
        """Max-min rates and the data capacity their ACKs leave (a contraction by the ACK share,
        about 1/181 at 400 Gbps: a few rounds converge)."""
        cap = self.capacity
        r = max_min_rates(paths, cap, caps, weights)
        if self.ack_share is None:
            return cap, r
        for _ in range(ACK_ROUNDS):
            cap = self._data_capacity(acks, r)
            r = max_min_rates(paths, cap, caps, weights)
        return self._data_capacity(acks, r), r

    def _data_capacity(self, acks: np.ndarray, r: np.ndarray) -> np.ndarray:
        """What each link leaves for data once the ACKs crossing it at rates `r` are served. ACKs
        are demand, not competitors: a flow's ACKs never slow it on a link its data does not use."""
        if self.ack_share is None:
            return self.capacity
        load = np.bincount(
            acks.ravel(), weights=(self.ack_share[acks] * r[:, None]).ravel(), minlength=self.capacity.shape[0]
        )
        out = self.capacity - load
        out[-1] = np.inf
        return np.maximum(out, 0.0)

    def _bottlenecks(self, paths: np.ndarray, cap: np.ndarray, r: np.ndarray, weights: np.ndarray):
        """Each flow's bottleneck: a saturated link on its path where no flow runs faster."""
        F, H = paths.shape
        L = cap.shape[0]
        load = np.bincount(paths.ravel(), weights=np.repeat(r * weights, H), minlength=L)
        sat = load >= cap * (1 - 1e-6)
        sat[L - 1] = False
        top = np.zeros(L)
        np.maximum.at(top, paths.ravel(), np.repeat(r, H))
        hit = sat[paths] & (r[:, None] >= top[paths] * (1 - 1e-6))
        has = hit.any(axis=1)
        return paths[np.arange(F), hit.argmax(axis=1)], has


def window_bytes(paths: list[tuple[int, ...]], latency: np.ndarray, rate: np.ndarray, payload: int) -> float:
    """SimAI's global window (common.h ReadConf): the largest over host pairs of
    (2 x propagation + a payload's serialisation per hop) x the path's slowest rate; a queue pair
    sends while below it, so whole packets up to the first at or above it are in flight."""
    best = 0.0
    for p in paths:
        if not p:
            continue
        idx = list(p)
        rtt = 2 * latency[idx].sum() + (payload / rate[idx]).sum()
        best = max(best, rtt * rate[idx].min())
    return math.ceil(best / payload - 1e-9) * payload


def build_window_transport(net, timing, payload: int, dcqcn: Dcqcn | None = None) -> WindowTransport:
    """The element for a compiled network and its packet timing (switch egress ports queue), with
    DCQCN at every switch egress whose link rate has a ramp when `dcqcn` is given. The element
    counts payload bytes: DCQCN's packets and ramps are scaled from wire bytes to payload."""
    switches = set(net.topo.switch_tiers) | {n for n, k in net.topo.links.kinds.items() if k == "nvswitch"}
    queues = np.array([a in switches for a, _b in net.ends] + [False])
    G = net.topo.num_gpus
    far = [net.data_route(src, dst, 10000) for src in {0, G - 1} for dst in range(G) if dst != src]
    raw = net.capacity
    window = window_bytes(far, net.latency, raw, payload)
    data_rtt = net.latency + timing.packet_s  # both padded with the dummy link's 0
    ramps = None
    if dcqcn is not None:
        ramps, dcqcn = _payload_ramps(net, queues, dcqcn, payload)
    return WindowTransport(timing.payload_capacity, queues, data_rtt, timing.ack_return_s, window, timing.ack_share,
                           dcqcn, ramps)  # fmt: skip


def _payload_ramps(net, queues: np.ndarray, dcqcn: Dcqcn, payload: int) -> tuple[list[Marking | None], Dcqcn]:
    """Each link's ramp in payload bytes (a switch egress with a ramp for its rate, else None), and
    DCQCN counting packets of `payload` bytes (rates in packets/s are unchanged)."""
    share = payload / dcqcn.packet
    ramps: list[Marking | None] = []
    for link, raw in enumerate(net.capacity.tolist()):
        m = dcqcn.ramp(raw * 8) if queues[link] else None
        ramps.append(None if m is None else Marking(m.kmin * share, m.kmax * share, m.pmax))
    return ramps, dataclasses.replace(dcqcn, packet=float(payload))
