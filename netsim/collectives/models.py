"""The one seam between the system layer and the network: issue a collective or a send, get an Event.

Like ASTRA-sim's AstraNetworkAPI, the interface is small (`NetworkModel`), and the schedule
executors in system/ never know which model answers. Three implementations:

- `ClosedFormModel` ("analytical"): alpha-beta closed forms on each group's placement
  (collectives/placement.py), with the NIC codec's cost model; no contention.
- `FlowModel` ("flow"): collectives as flows on the fluid max-min network (ECMP, contention).
- `FlowModel(packet=True)` ("packet"): SimAI's packet-level run replayed on the fluid network:
  SimAI's rings and ports, chunked steps and the packet-timing element.

A new model is one class here and one line in NETWORK_MODELS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np
import simpy

from netsim.collectives.closed_form import ALLTOALL, SENDRECV, bus_factor, collective_time, steps
from netsim.collectives.multidim import collective_ns, dim_traffic
from netsim.collectives.placement import GroupPlacement, place_group
from netsim.collectives.runner import CollectiveEngine
from netsim.network.fluid import FluidNetwork
from netsim.network.packet_timing import PAYLOAD, PacketTiming
from netsim.network.routing import compile_network
from netsim.network.topology import Topology

if TYPE_CHECKING:  # built by the caller; a plain max-min run imports neither the codec nor the transport
    from netsim.network.compression import NicCodec
    from netsim.network.dcqcn import Dcqcn


SEQUENCES = 4096  # collective sequences whose batches FlowModel keeps (by the caller's list)


class NetworkModel(Protocol):
    """What a schedule executor asks of a network: collectives and sends that complete as Events."""

    env: simpy.Environment
    fixed_cacheable: bool  # fixed_s depends only on (op, groups, size): an executor may reuse its answer

    def collective(
        self, op: str, groups: list[list[int]], size: float, traffic: str = "default", kind: str = "DP",
        done: simpy.Event | None = None,
    ) -> simpy.Event:  # fmt: skip
        """Run `op` of `size` bytes on every group at once; the Event (`done` if given) succeeds when
        all groups have finished."""
        ...

    def send(
        self, pairs: list[tuple[int, int]], size: float, traffic: str = "default", kind: str = "PP",
        done: simpy.Event | None = None,
    ) -> simpy.Event:  # fmt: skip
        """Point-to-point transfers of `size` bytes for every (src, dst) pair, completing together."""
        ...

    def sequence(
        self, colls: list[tuple[str, list[list[int]], float, str, str]], gaps: list[float]
    ) -> simpy.Event | None:
        """Collectives (op, groups, size, traffic, kind) one after another, collective k starting
        gaps[k] seconds after collective k-1 ended (a rank's compute between them; the first
        gaps[0] from now): an Event whose value is each one's seconds, or None where the model
        cannot run them so (the caller then issues them one by one, with the same result). A
        caller that passes the same `colls` list each time lets the model prepare it once."""
        ...

    def gpu_codec_s(self, op: str, n: int, size: float, traffic: str, kind: str) -> float:
        """Seconds of codec kernels a GPU-placed codec takes from the compute stream for a collective."""
        ...

    def report(self, duration: float) -> dict:
        """What the model measured (flows, solves, link utilisation, codec accounting)."""
        ...

    def fixed_s(self, op: str, groups: list[list[int]], size: float, traffic: str = "default",
                kind: str = "DP") -> float | None:  # fmt: skip
        """Seconds of a collective that needs no network simulation (a closed form), else None: an
        executor may then advance its clock without an Event. `fixed_cacheable`: the answer depends
        only on (op, groups, size), so it may be reused."""
        ...


class ClosedFormModel:
    """Closed-form collective times on group placements; a NIC codec prices what crosses servers."""

    def __init__(self, topo: Topology, codec: NicCodec | None = None, env: simpy.Environment | None = None):
        self.topo, self.codec = topo, codec
        self.env = env or simpy.Environment()
        self._placements: dict[tuple[int, ...], GroupPlacement] = {}

    def placement(self, ranks: list[int]) -> GroupPlacement:
        key = tuple(ranks)
        g = self._placements.get(key)
        if g is None:
            g = self._placements[key] = place_group(self.topo, list(ranks))
        return g

    def time_ns(self, op: str, g: GroupPlacement, size: float, traffic: str = "default", kind: str = "DP") -> float:
        """One collective's time on placement `g`; NVLink-only groups are never compressed. On a
        multi-dimensional topology: LIBRA's hierarchical closed form (dimensions pipelined)."""
        if g.dims and op != SENDRECV:
            bws = np.array([d[2] / 1e9 for d in self.topo.dims])
            return collective_ns(dim_traffic(op, size, list(g.dims), len(bws)), bws)
        if self.codec is None or g.servers <= 1:
            return collective_time(op, g.n, size, _bandwidth(op, g), g.step_latency) * 1e9
        return self._compressed_s(op, g, size, traffic, kind) * 1e9

    def _compressed_s(self, op: str, g: GroupPlacement, size: float, traffic: str, kind: str) -> float:
        c, n, bw, alpha = self.codec, g.n, _bandwidth(op, g), g.step_latency
        if not c.applies(traffic, kind) or size <= 0:
            return collective_time(op, n, size, bw, alpha)
        r = c.ratio(traffic)
        moved = bus_factor(op, n) * size
        if c.pipelined:
            rate = min(bw / r, c.engine_rate())
            c.acct.add(traffic, moved, moved * r, 0.0)
            return steps(op, n) * (alpha + c.p.latency) + moved / rate
        codec = c.collective_codec_s(op, n, size)
        c.acct.add(traffic, moved, moved * r, codec)
        return collective_time(op, n, size * r, bw, alpha) + codec

    def gpu_codec_ns(self, op: str, g: GroupPlacement, size: float, traffic: str, kind: str) -> float:
        """Codec kernel time a GPU-placed codec takes from the compute stream for one collective."""
        c = self.codec
        if c is None or c.p.placement != "gpu" or g.servers <= 1 or not c.applies(traffic, kind):
            return 0.0
        return c.collective_codec_s(op, g.n, size) * 1e9

    def gpu_codec_s(self, op: str, n: int, size: float, traffic: str, kind: str) -> float:
        c = self.codec
        if c is None or c.p.placement != "gpu" or not c.applies(traffic, kind):
            return 0.0
        return c.collective_codec_s(op, n, size)

    def collective(self, op, groups, size, traffic="default", kind="DP", done=None) -> simpy.Event:
        t = self.time_ns(op, self.placement(groups[0]), size, traffic, kind) if groups and size > 0 else 0.0
        return _after(self.env, t * 1e-9, done)

    def send(self, pairs, size, traffic="default", kind="PP", done=None) -> simpy.Event:
        t = self.time_ns(SENDRECV, self.placement(list(pairs[0])), size, traffic, kind) if pairs else 0.0
        return _after(self.env, t * 1e-9, done)

    def sequence(self, colls, gaps) -> None:
        return None  # every collective here is a closed form: an executor never needs one

    def report(self, duration: float) -> dict:
        return {"compression": self.codec.acct.report()} if self.codec is not None else {}

    @property
    def fixed_cacheable(self) -> bool:
        return self.codec is None  # a codec's accounting must see every call

    def fixed_s(self, op, groups, size, traffic="default", kind="DP") -> float | None:
        """Every collective here is a closed form: its seconds."""
        return self.time_ns(op, self.placement(groups[0]), size, traffic, kind) * 1e-9 if groups and size > 0 else 0.0


def _bandwidth(op: str, g: GroupPlacement) -> float:
    """Per-rank bandwidth of `op` on `g`: rings use the ring's bottleneck, a direct all-to-all its own."""
    return g.alltoall_bandwidth if op == ALLTOALL else g.bandwidth


def _after(env: simpy.Environment, delay: float, done: simpy.Event | None) -> simpy.Event:
    if done is None:
        return env.timeout(delay)
    env.timeout(delay).callbacks.append(lambda _e: done.succeed())
    return done


class FlowModel:
    """Collectives as flows on the fluid network, built with its NIC elements (codec, packet timing)."""

    def __init__(
        self, topo: Topology, ideal: bool = False, fidelity: str = "macro", spray: bool = False,
        codec: NicCodec | None = None, packet: bool = False, send_lat: float | None = None,
        payload: int | None = None, window: bool = False, alltoall: str = "pxn", transport: str = "maxmin",
        dcqcn: Dcqcn | None = None,
    ):  # fmt: skip
        self.env = simpy.Environment()
        self.net = compile_network(topo)
        self.timing = PacketTiming(self.net, payload or PAYLOAD) if packet else None
        capacity = self.timing.capacity if packet else self.net.capacity
        fixed_point = None
        if window or transport == "window":
            from netsim.network.transport import build_window_transport
        if packet and window:  # SimAI.conf HAS_WIN: the RDMA window on top of max-min (network/transport.py)
            fixed_point = build_window_transport(self.net, self.timing, self.timing.payload, dcqcn)
        elif transport == "window":  # `run --transport window`: the same element on netsim's own collectives
            timing = PacketTiming(self.net, payload or PAYLOAD)
            capacity = timing.capacity
            fixed_point = build_window_transport(self.net, timing, timing.payload)
        self.fluid = FluidNetwork(self.env, capacity, self.net.latency, transport=fixed_point)
        alpha = 0.0 if ideal else topo.alpha
        self.alpha = send_lat if send_lat is not None else alpha
        self.coll = CollectiveEngine(
            self.env, self.fluid, self.net, alpha=alpha, fidelity="chunked" if packet else fidelity, ideal=ideal,
            spray=spray, codec=codec, timing=self.timing,
            # SimAI's packet backend: its own ring order, a new source port per flow, NVLink as links.
            ring_style="simai" if packet else ("bidirectional" if topo.dims else "nccl"),
            port_policy="flow" if packet else "connection",
            nvlink_closed_form=not packet, alltoall=alltoall,
        )  # fmt: skip
        self.codec = codec
        self._sequences: dict[int, tuple[list, list]] = {}  # id(colls) -> (colls, their batches or None)
        self._pairs: dict[int, tuple[list, list[list[int]]]] = {}  # id(pairs) -> (a copy, them as lists)

    def collective(
        self, op, groups, size, traffic="default", kind="DP", done=None, algo="ring", shares=None
    ) -> simpy.Event:
        ev = done if done is not None else self.env.event()
        self.coll.run(op, groups, size, ev.succeed, algo=algo, traffic=traffic, kind=kind, shares=shares)
        return ev

    def send(self, pairs, size, traffic="default", kind="PP", done=None) -> simpy.Event:
        ev = done if done is not None else self.env.event()
        self.coll.run(SENDRECV, self._pair_lists(pairs), size, ev.succeed, traffic=traffic, kind=kind)
        return ev

    def _pair_lists(self, pairs) -> list[list[int]]:
        """`pairs` as lists, the same list for the same pairs (the engine finds its plan by identity).
        Pairs given as tuples (the pipeline's) are found again by identity, checked by value."""
        hit = self._pairs.get(id(pairs))
        if hit is not None and hit[0] == pairs:
            return hit[1]
        if len(self._pairs) >= SEQUENCES:
            self._pairs.clear()
        lists = [list(p) for p in pairs]
        self._pairs[id(pairs)] = ([tuple(p) for p in pairs], lists)
        return lists

    def sequence(self, colls, gaps) -> simpy.Event | None:
        """Collectives that are each one plain batch of flows (macro rings without a codec) as one
        chain on the fluid network (network/chain.py): while their links carry nothing else, the
        whole run is worked out at once instead of an Event per collective."""
        hit = self._sequences.get(id(colls))
        if hit is not None and hit[0] is colls:
            batches = hit[1]
        else:
            batches = [self.coll.plain_batch(*c) for c in colls]
            if len(self._sequences) >= SEQUENCES:
                self._sequences.clear()
            self._sequences[id(colls)] = (colls, batches)
        if None in batches:
            return None
        ev = self.env.event()
        self.fluid.start_chain(gaps, batches, lambda starts, ends: ev.succeed([e - s for s, e in zip(starts, ends)]))
        return ev

    def gpu_codec_s(self, op: str, n: int, size: float, traffic: str, kind: str) -> float:
        """Codec kernel time a GPU-placed codec takes from the compute stream for an overlapped collective."""
        c = self.codec
        if c is None or c.p.placement != "gpu" or not c.applies(traffic, kind):
            return 0.0
        return c.collective_codec_s(op, n, size)

    fixed_cacheable = True  # NVLink closed forms have no side effects

    def fixed_s(self, op, groups, size, traffic="default", kind="DP") -> float | None:
        """Seconds of a collective that puts no flow on the network (NVLink-only), else None."""
        return self.coll.fixed_time(op, groups, size)

    def send_one(self, src: int, dst: int, size: float, on_done, on_drain=None) -> None:
        """One raw transfer with callbacks, for executors that model per-rank transport steps."""
        self.coll.send(src, dst, size, on_done, on_drain=on_drain)

    def report(self, duration: float) -> dict:
        out = {
            "flows": self.fluid.flows_started,
            "solves": self.fluid.solves,
            "events": self.fluid.events,
            **link_report(self, duration),
        }
        if self.codec is not None:
            out["compression"] = self.codec.acct.report()
        return out


def link_report(model: FlowModel, duration: float, top: int = 5) -> dict:
    """Mean and max utilisation per link tier, and the busiest links."""
    net = model.net
    if duration <= 0:
        return {"link_utilization": {}, "busiest_links": []}
    u = model.fluid.utilisation(duration)[:-1]
    util = {}
    for code, name in enumerate(net.tier_labels):  # a few tiers: one mask each, links in id order
        v = u[net.tier_code == code]
        util[name] = {"mean": float(np.mean(v)), "max": float(np.max(v))}
    # Equal loads tie by link id: a utilisation is a sum of floats, equal only to ~1e-13.
    order = np.lexsort((np.arange(u.size), -np.round(u, 9)))[:top]
    busiest = [
        {
            "link": f"{net.ends[i][0]}->{net.ends[i][1]}",
            "tier": net.tier_labels[net.tier_code[i]],
            "utilization": float(u[i]),
        }
        for i in order
        if u[i] > 0
    ]
    return {"link_utilization": util, "busiest_links": busiest}


NETWORK_MODELS = {
    "analytical": ClosedFormModel,
    "flow": FlowModel,
    "packet": lambda topo, **kw: FlowModel(topo, packet=True, **kw),
}
