"""A topology compiled to arrays, with up/down ECMP routing hashed as switches do.

Directed links get indices (capacity, latency, kind, tier); the last index is a dummy link of
infinite capacity used to pad paths for the max-min solver. Paths are min-hop up/down paths
(SimAI's BFS routes; hosts never transit; an intra-server pair always goes through its
NVSwitch). At every switch with several equal next hops, one is chosen per flow by
MurmurHash3_x86_32 over [sip, dip, sport | dport << 16] seeded with the switch id, the
next hops in ascending id order (reference/simai_ns3_semantics.md section 1).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import mmh3
import numpy as np

from netsim.network.links import LinkTable
from netsim.network.topology import Topology

DPORT = 100


def node_ip(n: int) -> int:
    return 0x0B000001 + ((n // 256) << 16) + ((n % 256) << 8)


def ecmp_hash(sip: int, dip: int, word3: int, seed: int) -> int:
    return mmh3.hash(struct.pack("<III", sip, dip, word3 & 0xFFFFFFFF), seed, signed=False)


@dataclass
class CompiledNetwork:
    topo: Topology
    capacity: np.ndarray  # [L + 1] bytes/s, last = inf
    latency: np.ndarray  # [L + 1] seconds, last = 0
    kind: list[str]  # per link: nvlink, nic, pcie, fabric
    tier_code: np.ndarray  # per link: the index of its utilisation-report label in tier_labels
    tier_labels: list[str]  # the labels, sorted
    link_of: dict[tuple[int, int], int]
    ends: list[tuple[int, int]]
    spray: bool = False
    _up: dict[int, list[int]] = field(default_factory=dict)
    _down: dict[int, list[int]] = field(default_factory=dict)
    _below: dict[int, frozenset] = field(default_factory=dict)
    _leaves_of: dict[int, frozenset] = field(default_factory=dict)
    _nvswitch_of: dict[int, int] = field(default_factory=dict)
    _port_of: dict[int, int] = field(default_factory=dict)  # GPU -> the node its leaf links to
    _down_to: dict[tuple[int, int], list[int]] = field(default_factory=dict)  # (switch, leaf) -> children
    _cache: dict = field(default_factory=dict)

    @property
    def dummy(self) -> int:
        return self.capacity.shape[0] - 1

    # ---- routing -------------------------------------------------------------------------
    def route(self, src: int, dst: int, word3: int) -> tuple[int, ...]:
        """Link indices from GPU src to GPU dst for a flow whose third hash word is word3."""
        key = (src, dst, word3)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        nodes = self._route_nodes(src, dst, word3)
        links = tuple(self.link_of[(a, b)] for a, b in zip(nodes, nodes[1:]))
        self._cache[key] = links
        return links

    def data_route(self, src: int, dst: int, sport: int) -> tuple[int, ...]:
        return self.route(src, dst, sport | (DPORT << 16))

    def ack_route(self, src: int, dst: int, sport: int) -> tuple[int, ...]:
        """The ACK path of a src->dst flow: receiver to sender, ports swapped (not the reverse path)."""
        return self.route(dst, src, DPORT | (sport << 16))

    def _route_nodes(self, src: int, dst: int, word3: int) -> list[int]:
        if src == dst:
            return [src]
        if self.topo.dims:
            return self._dim_order_nodes(src, dst)
        nvs = self._nvswitch_of.get(src)
        if nvs is not None and nvs == self._nvswitch_of.get(dst):
            return [src, nvs, dst]
        sip, dip = node_ip(src), node_ip(dst)
        targets = self._leaves_of[dst]
        single = next(iter(targets)) if len(targets) == 1 else None
        port = self._port_of.get(dst)
        path = [src]
        u = src
        for _ in range(64):
            if u in targets:
                # Down to the destination (directly, or through its NIC node).
                if port is not None:
                    path.append(port)
                    if port != dst:
                        path.append(dst)
                    return path
                nxt = [v for v in self._down_hosts(u) if v == dst or dst in self._host_gpus(v)]
                v = self._pick(nxt, u, sip, dip, word3)
                path.append(v)
                if v != dst:
                    path.append(dst)
                return path
            if single is not None:
                down = self._down_toward(u, single)
            else:
                down = [c for c in self._down.get(u, ()) if self._below[c] & targets]
            cands = down if down else self._up[u]
            v = self._pick(cands, u, sip, dip, word3)
            path.append(v)
            u = v
        raise RuntimeError(f"no route from {src} to {dst}")

    def _down_toward(self, switch: int, leaf: int) -> list[int]:
        """The children of `switch` below which `leaf` lies, in id order; built per pair on first
        use (a table of every pair was 4M entries at 102K GPUs, most never used)."""
        key = (switch, leaf)
        got = self._down_to.get(key)
        if got is None:
            got = self._down_to[key] = [c for c in self._down.get(switch, ()) if leaf in self._below[c]]
        return got

    def _pick(self, cands: list[int], at: int, sip: int, dip: int, word3: int) -> int:
        if len(cands) == 1:
            return cands[0]
        if at in self._leaves_of:
            # A host with several NICs: ns-3's Hash32 (Murmur3, seed 0x8BADF00D) over
            # {sip, dip, sport u16, dport u16} (simai_ns3_semantics.md section 1, multi-NIC hosts).
            key = struct.pack("<IIHH", sip, dip, word3 & 0xFFFF, (word3 >> 16) & 0xFFFF)
            return cands[mmh3.hash(key, 0x8BADF00D, signed=False) % len(cands)]
        return cands[ecmp_hash(sip, dip, word3, at) % len(cands)]

    def _down_hosts(self, leaf: int) -> list[int]:
        return sorted(v for v in self.topo.links.neighbors(leaf) if v not in self.topo.switch_tiers)

    def _host_gpus(self, v: int) -> set[int]:
        t = self.topo.links
        if t.kind_of(v) == "nic":
            return {u for u in t.neighbors(v) if t.kind_of(u) == "gpu"}
        return set()

    def _dim_order_nodes(self, src: int, dst: int) -> list[int]:
        """Dimension-order routing on a multi-dimensional network: correct dim 0 first; rings the
        shorter way round (ties forward), all-to-all links directly, switches through the line's switch."""
        t = self.topo.links
        path, u, stride = [src], src, 1
        for d, (kind, n, _bw, _lat, _tier) in enumerate(self.topo.dims):
            cu, cd = (u // stride) % n, (dst // stride) % n
            if cu != cd:
                if kind == "ring":
                    step = 1 if (cd - cu) % n <= n // 2 else -1
                    while cu != cd:
                        cu = (cu + step) % n
                        u = u + (cu - (u // stride) % n) * stride
                        path.append(u)
                else:
                    v = u + (cd - cu) * stride
                    if kind == "switch":
                        path.append(next(w for w in t.neighbors(u) if t.attrs[w].get("dim") == d))
                    path.append(v)
                    u = v
            stride *= n
        return path

    def all_routes(self, src: int, dst: int) -> list[tuple[int, ...]]:
        """Every min-hop up/down path (for packet spraying): all choices at each hop."""
        key = ("all", src, dst)
        if key in self._cache:
            return self._cache[key]
        if self.topo.dims:
            self._cache[key] = [self.route(src, dst, 0)]
            return self._cache[key]
        nvs = self._nvswitch_of.get(src)
        if src == dst:
            paths = [[src]]
        elif nvs is not None and nvs == self._nvswitch_of.get(dst):
            paths = [[src, nvs, dst]]
        else:
            targets = self._leaves_of[dst]
            port = self._port_of.get(dst)
            paths = []

            def walk(u: int, acc: list[int]) -> None:
                if u in targets:
                    paths.append(acc + ([port] if port not in (None, dst) else []) + [dst])
                    return
                down = [c for c in self._down.get(u, ()) if self._below[c] & targets]
                for v in down if down else self._up[u]:
                    walk(v, acc + [v])

            walk(src, [src])
        out = [tuple(self.link_of[(a, b)] for a, b in zip(p, p[1:])) for p in paths]
        self._cache[key] = out
        return out

    def path_latency(self, links: tuple[int, ...]) -> float:
        return float(self.latency[list(links)].sum()) if links else 0.0


def compile_network(topo: Topology) -> CompiledNetwork:
    if "compiled" in topo.cache:
        return topo.cache["compiled"]
    t, tiers = topo.links, topo.switch_tiers
    # Links in (end, end) order, each direction its own index: the order networkx's sorted edge
    # view gave (ends as the view orients them), so indices and ECMP results are unchanged.
    e = np.array(t.ends, dtype=np.int64).reshape(-1, 2)
    order = np.lexsort((e[:, 1], e[:, 0])).tolist()
    ends = [d for i in order for d in (t.ends[i], t.ends[i][::-1])]
    kinds = [k for i in order for k in (t.kind[i],) * 2]
    top = max(tiers.values(), default=0)  # once, not per link (issue #18: links x switches at 16K GPUs)
    labels: dict[tuple, str] = {}  # a label depends on the ends' tiers and the kind only
    tnames = []
    for (a, b), kind in zip(ends, kinds):
        key = (tiers.get(a), tiers.get(b), kind)
        name = labels.get(key)
        if name is None:
            name = labels[key] = _tier_label(topo, a, b, kind, top)
        tnames.append(name)
    codes = {n: i for i, n in enumerate(sorted(set(labels.values())))}
    net = CompiledNetwork(
        topo=topo,
        capacity=np.append(np.repeat(np.array(t.bandwidth)[order], 2), np.inf),
        latency=np.append(np.repeat(np.array(t.latency)[order], 2), 0.0),
        kind=kinds,
        tier_code=np.array([codes[n] for n in tnames], dtype=np.int64),
        tier_labels=sorted(codes),
        link_of=dict(zip(ends, range(len(ends)))),
        ends=ends,
    )
    _neighbours(net, t, tiers)
    topo.cache["compiled"] = net
    return net


def _neighbours(net: CompiledNetwork, t: LinkTable, tiers: dict[int, int]) -> None:
    """Up neighbours (GPU -> its NIC node(s) or leaf; NIC -> leaf; switch tier k -> tier k+1),
    down neighbours, the leaves below every switch and each GPU's leaves and port."""
    kinds, up, down = t.kinds, net._up, net._down
    for n in t.nodes():
        k = kinds.get(n)
        nbrs = t.neighbors(n)
        if k == "gpu":
            up[n] = sorted(v for v in nbrs if v in tiers or kinds.get(v) == "nic")
            for v in nbrs:
                if kinds.get(v) == "nvswitch" and len(t.neighbors(v)) > 1:
                    net._nvswitch_of[n] = v
        elif k == "nic":
            up[n] = sorted(v for v in nbrs if v in tiers)
        elif n in tiers:
            tier = tiers[n]
            up[n] = sorted(v for v in nbrs if tiers.get(v, -1) == tier + 1)
            down[n] = sorted(v for v in nbrs if tiers.get(v, 99) == tier - 1)
    for s in sorted(tiers, key=tiers.__getitem__):
        net._below[s] = frozenset([s]) if tiers[s] == 0 else frozenset().union(*(net._below[c] for c in down[s]))
    for n in t.nodes():
        if kinds.get(n) != "gpu":
            continue
        leaves = set()
        for v in up.get(n, ()):
            if v in tiers:
                leaves.add(v)
            else:
                leaves.update(up.get(v, ()))
        net._leaves_of[n] = frozenset(leaves)
        nbrs = t.neighbors(n)
        ports = [v for v in nbrs if v in tiers] + [v for v in nbrs if kinds.get(v) == "nic"]
        if len(ports) == 1:
            net._port_of[n] = ports[0] if ports[0] not in tiers else n


def _tier_label(topo: Topology, a: int, b: int, kind: str, top: int) -> str:
    if kind in ("nvlink", "pcie") or topo.dims:
        return kind
    ta, tb = topo.switch_tiers.get(a), topo.switch_tiers.get(b)
    if ta is None or tb is None:
        return "host-leaf"
    lo, hi = sorted((ta, tb))
    names = {0: "leaf", 1: "spine" if top == 1 else "agg", 2: "core"}
    return f"{names.get(lo, lo)}-{names.get(hi, hi)}"
