"""Build a topology (the tables of GPUs, NVSwitches, NICs, switches and links) from its config.

Node ids follow SimAI's convention (reference/simai.md section 3): GPUs 0..G-1 first, then
NVSwitches, then NIC nodes (only where NICs are shared or several per GPU), then switches by tier.
Every edge is a full-duplex link with a per-direction `bandwidth` (bytes/s) and `latency` (s).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from netsim.config.loader import load_model
from netsim.config.topology import (
    ClosSpec,
    FatTreeSpec,
    LeafSpineSpec,
    MultiDimSpec,
    RailOptimizedSpec,
    SimaiFileSpec,
    TopologyConfig,
)
from netsim.errors import InputError, read_text
from netsim.network.links import LinkTable

# PCIe Gen5 x16 per direction; links a GPU to a NIC it does not own alone.
PCIE_BANDWIDTH = 64e9


@dataclass
class Topology:
    """A cluster: GPUs, servers, NICs and NVLink domains, the fabric's nodes and links (tables with
    link bandwidths in bytes/s and latencies in s; `graph` gives them as a networkx graph), switch
    tiers, and the per-step start overhead alpha. Built from a netsim YAML or read from a SimAI
    topology file; compiled to arrays by routing.py."""

    name: str
    gpu: str
    num_gpus: int
    gpus_per_server: int
    nics_per_server: int
    nic_bandwidth: float
    nvlink_bandwidth: float | None
    nvlink_latency: float
    hop_latency: float
    links: LinkTable
    source: str = ""
    fabric: str = ""
    description: str = ""
    switch_tiers: dict[int, int] = field(default_factory=dict)
    alpha: float = 2e-6
    flows_per_pair: int = 1  # flows a GPU pair's transfer is split into (QPs x channels), each ECMP-hashed
    # Multi-dimensional networks (LIBRA): (kind, size, bandwidth per NPU, latency, tier) per dim,
    # innermost first; NPU ids vary fastest in dim 0.
    dims: tuple[tuple[str, int, float, float, str], ...] = ()
    cache: dict = field(default_factory=dict, repr=False, compare=False)  # derived facts (paths)

    @property
    def graph(self):
        """The fabric as a networkx Graph, built on first use (a run never needs it)."""
        if "graph" not in self.cache:
            self.cache["graph"] = self.links.to_graph()
        return self.cache["graph"]

    @property
    def num_servers(self) -> int:
        return self.num_gpus // self.gpus_per_server

    def server_of(self, gpu: int) -> int:
        return gpu // self.gpus_per_server

    def nic_bandwidth_per_gpu(self) -> float:
        return self.nic_bandwidth * self.nics_per_server / self.gpus_per_server

    def leaf_oversubscription(self) -> float:
        """Largest down:up capacity ratio over tier-0 switches (1.0 = non-blocking)."""
        worst = 1.0
        for sw, tier in self.switch_tiers.items():
            if tier != 0:
                continue
            down = up = 0.0
            for nb in self.links.neighbors(sw):
                bw = self.links.bandwidth[self.links.link(sw, nb)]
                if nb in self.switch_tiers:
                    up += bw
                else:
                    down += bw
            if up > 0:
                worst = max(worst, down / up)
        return worst

    def with_dim_bandwidths(self, bandwidths: list[float]) -> Topology:
        """A multi-dimensional topology with new per-NPU bandwidths per dimension (a LIBRA split)."""
        from netsim.config.topology import DimSpec, MultiDimSpec, TopologyConfig

        # Values are already SI floats: construct without re-parsing unit strings.
        dims = [DimSpec.model_construct(kind=k, size=n, bandwidth=float(bw), latency=lat, tier=t)
                for (k, n, _b, lat, t), bw in zip(self.dims, bandwidths)]  # fmt: skip
        cfg = TopologyConfig.model_construct(
            name=self.name, gpu=self.gpu, servers=self.num_servers, gpus_per_server=self.gpus_per_server,
            fabric=MultiDimSpec.model_construct(kind="multi_dim", dims=dims), description=self.description,
        )  # fmt: skip
        return _build_multi_dim(cfg, cfg.fabric)

    def with_nic_bandwidth(self, bandwidth: float) -> Topology:
        """A copy whose NIC links run at `bandwidth` (the `--bandwidth` override)."""
        t = Topology(**{**self.__dict__, "links": self.links.with_bandwidth("nic", bandwidth), "cache": {}})
        t.nic_bandwidth = bandwidth
        return t

    def summary(self) -> dict:
        return {
            "name": self.name,
            "fabric": self.fabric,
            "gpus": self.num_gpus,
            "gpus_per_server": self.gpus_per_server,
            "nics_per_server": self.nics_per_server,
            "nic_bandwidth_gbps": self.nic_bandwidth * 8 / 1e9,
            "nvlink_bandwidth_GBps": (self.nvlink_bandwidth or 0.0) / 1e9,
            "hop_latency_ns": self.hop_latency * 1e9,
            "alpha_us": self.alpha * 1e6,
            "switches": len(self.switch_tiers),
            "links": self.links.number_of_links(),
            "leaf_oversubscription": round(self.leaf_oversubscription(), 4),
        }


class _Builder:
    """Accumulates nodes and links with SimAI-style id order."""

    def __init__(self) -> None:
        self.links = LinkTable()
        self.tiers: dict[int, int] = {}

    def node(self, nid: int, kind: str, **attrs) -> int:
        return self.links.add_node(nid, kind, **attrs)

    def link(self, a: int, b: int, bandwidth: float, latency: float, kind: str) -> None:
        self.links.add_link(a, b, bandwidth, latency, kind)


def _endpoints(cfg: TopologyConfig, b: _Builder, next_id: int) -> tuple[list[tuple[int, int]], int]:
    """Create GPUs, NVSwitches and NIC nodes; return [(fabric-facing node, server)] per NIC port."""
    servers, gps, nics = cfg.servers, cfg.gpus_per_server, cfg.nic.count
    G = servers * gps
    for r in range(G):
        b.node(r, "gpu", server=r // gps)
    nid = G
    if gps > 1:
        for s in range(servers):
            sw = b.node(nid, "nvswitch", server=s)
            for r in range(s * gps, (s + 1) * gps):
                b.link(r, sw, cfg.nvlink.bandwidth, cfg.nvlink.latency, "nvlink")
            nid += 1
    ports: list[tuple[int, int]] = []
    if nics == gps:
        ports = [(r, r // gps) for r in range(G)]
    else:
        for s in range(servers):
            for j in range(nics):
                nic = b.node(nid, "nic", server=s, index=j)
                nid += 1
                if nics < gps:
                    per = gps // nics
                    owners = range(s * gps + j * per, s * gps + (j + 1) * per)
                else:
                    owners = [s * gps + j // (nics // gps)]
                for r in owners:
                    b.link(r, nic, PCIE_BANDWIDTH, 0.0, "pcie")
                ports.append((nic, s))
    return ports, max(nid, next_id)


def _attach(b: _Builder, port: int, switch: int, cfg: TopologyConfig) -> None:
    b.link(port, switch, cfg.nic.bandwidth, cfg.fabric.latency, "nic")


def _build_fat_tree(cfg: TopologyConfig, spec: FatTreeSpec, b: _Builder) -> None:
    ports, nid = _endpoints(cfg, b, 0)
    half = spec.k // 2
    per_pod = half * half
    pods = spec.pods or math.ceil(len(ports) / per_pod)
    if len(ports) > pods * per_pod:
        raise ValueError(
            f"{len(ports)} NIC ports do not fit a k={spec.k} fat-tree with {pods} pods "
            f"({pods * per_pod} host ports): not every GPU is connected"
        )
    bw = spec.link_bandwidth or cfg.nic.bandwidth
    edges = [[0] * half for _ in range(pods)]
    aggs = [[0] * half for _ in range(pods)]
    for p in range(pods):
        for i in range(half):
            edges[p][i] = b.node(nid, "switch", tier=0, pod=p)
            b.tiers[nid] = 0
            nid += 1
    for p in range(pods):
        for j in range(half):
            aggs[p][j] = b.node(nid, "switch", tier=1, pod=p)
            b.tiers[nid] = 1
            nid += 1
    cores = []
    for c in range(half * half):
        cores.append(b.node(nid, "switch", tier=2))
        b.tiers[nid] = 2
        nid += 1
    for e, (port, _server) in enumerate(ports):
        p, i = divmod(e, per_pod)
        _attach(b, port, edges[p][i // half], cfg)
    for p in range(pods):
        for i in range(half):
            for j in range(half):
                b.link(edges[p][i], aggs[p][j], bw / spec.oversubscription, spec.latency, "fabric")
        for j in range(half):
            for c in range(half):
                b.link(aggs[p][j], cores[j * half + c], bw, spec.latency, "fabric")


def _build_leaf_spine(cfg: TopologyConfig, spec: LeafSpineSpec, b: _Builder) -> None:
    ports, nid = _endpoints(cfg, b, 0)
    if len(ports) > spec.leaves * spec.hosts_per_leaf:
        raise ValueError(
            f"{len(ports)} NIC ports do not fit {spec.leaves} leaves x {spec.hosts_per_leaf} "
            f"host ports: not every GPU is connected"
        )
    up = spec.uplink_bandwidth or cfg.nic.bandwidth
    leaves, nid = _switches(b, nid, spec.leaves, 0)
    spines, nid = _switches(b, nid, spec.spines, 1)
    for e, (port, _server) in enumerate(ports):
        _attach(b, port, leaves[e // spec.hosts_per_leaf], cfg)
    for leaf in leaves:
        for sp in spines:
            b.link(leaf, sp, up, spec.latency, "fabric")


def _build_rail(cfg: TopologyConfig, spec: RailOptimizedSpec, b: _Builder) -> None:
    ports, nid = _endpoints(cfg, b, 0)
    nics = cfg.nic.count
    per_rail = math.ceil(cfg.servers / spec.servers_per_leaf)
    up = spec.uplink_bandwidth or cfg.nic.bandwidth
    leaves, nid = _switches(b, nid, nics * per_rail, 0)
    spines, nid = _switches(b, nid, spec.spines, 1)
    for e, (port, server) in enumerate(ports):
        rail = e % nics
        _attach(b, port, leaves[rail * per_rail + server // spec.servers_per_leaf], cfg)
    for leaf in leaves:
        for sp in spines:
            b.link(leaf, sp, up, spec.latency, "fabric")


def _switches(b: _Builder, nid: int, count: int, tier: int, **attrs) -> tuple[list[int], int]:
    out = []
    for _ in range(count):
        out.append(b.node(nid, "switch", tier=tier, **attrs))
        b.tiers[nid] = tier
        nid += 1
    return out, nid


def _clos_leaf(e: int, spec: ClosSpec, nics: int) -> tuple[int, int]:
    """(pod, leaf within the pod) of NIC port e (ports are numbered server by server)."""
    per_pod = spec.hosts_per_leaf * spec.leaves_per_pod
    pod, local = divmod(e, per_pod)
    if not spec.rail_optimized or nics == 1:
        return pod, local // spec.hosts_per_leaf
    server, rail = divmod(local, nics)
    return pod, rail * (spec.leaves_per_pod // nics) + server // spec.hosts_per_leaf


def _build_clos(cfg: TopologyConfig, spec: ClosSpec, b: _Builder) -> None:
    ports, nid = _endpoints(cfg, b, 0)
    nics, bw = cfg.nic.count, cfg.nic.bandwidth
    if spec.rail_optimized and spec.leaves_per_pod % nics:
        raise ValueError(f"a rail-optimized pod needs leaves_per_pod ({spec.leaves_per_pod}) to be a multiple of "
                         f"the NICs per server ({nics})")  # fmt: skip
    pods = math.ceil(len(ports) / (spec.hosts_per_leaf * spec.leaves_per_pod))
    leaves = [_switches(b, nid + p * spec.leaves_per_pod, spec.leaves_per_pod, 0, pod=p)[0] for p in range(pods)]
    nid += pods * spec.leaves_per_pod
    spines = []
    for p in range(pods):
        row, nid = _switches(b, nid, spec.spines_per_pod, 1, pod=p)
        spines.append(row)
    cores, nid = _switches(b, nid, spec.cores if pods > 1 else 0, 2)
    for e, (port, _server) in enumerate(ports):
        p, leaf = _clos_leaf(e, spec, nics)
        _attach(b, port, leaves[p][leaf], cfg)
    up = spec.hosts_per_leaf * bw / spec.oversubscription / spec.spines_per_pod
    pod_up = spec.leaves_per_pod * spec.hosts_per_leaf * bw / spec.oversubscription / spec.pod_oversubscription
    for p in range(pods):
        for leaf in leaves[p]:
            for sp in spines[p]:
                b.link(leaf, sp, up, spec.latency, "fabric")
        for sp in spines[p]:
            for c in cores:
                b.link(sp, c, pod_up / (spec.spines_per_pod * len(cores)), spec.latency, "fabric")


_RATE = re.compile(r"^([\d.]+)(Gbps|Mbps|Tbps|Kbps|bps)$")
_DELAY = re.compile(r"^([\d.eE+-]+)(ms|us|ns|s)$")
_RATE_SCALE = {"bps": 1, "Kbps": 1e3, "Mbps": 1e6, "Gbps": 1e9, "Tbps": 1e12}
_DELAY_SCALE = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def _simai_link(b: _Builder, ln: str, err, total: int, G: int, nvs_ids: set, found: dict) -> None:
    """One link line of a SimAI topology file; records NIC/NVLink rates and hop latencies in `found`."""
    tok = ln.split()
    if len(tok) < 4:
        raise err("expected '<src> <dst> <rate e.g. 400Gbps> <delay e.g. 0.0005ms> <error_rate>'")
    try:
        a, c = int(tok[0]), int(tok[1])
    except ValueError:
        raise err("expected integer node ids") from None
    mr, md = _RATE.match(tok[2]), _DELAY.match(tok[3])
    if not mr:
        raise err(f"expected a rate like 400Gbps, got {tok[2]!r}")
    if not md:
        raise err(f"expected a delay like 0.0005ms, got {tok[3]!r}")
    if not (0 <= a < total and 0 <= c < total):
        raise err(f"node id out of range 0..{total - 1}")
    try:
        bw = float(mr.group(1)) * _RATE_SCALE[mr.group(2)] / 8
        lat = float(md.group(1)) * _DELAY_SCALE[md.group(2)]
    except ValueError:
        raise err(f"expected numbers in the rate and delay, got {tok[2]!r} and {tok[3]!r}") from None
    if not 0 < bw < float("inf"):
        raise err(f"expected a positive, finite rate, got {tok[2]!r}")
    if not 0 <= lat < float("inf"):
        raise err(f"expected a non-negative delay, got {tok[3]!r}")
    if a == c:
        raise err(f"a link from node {a} to itself")
    if a < G and c < G:
        raise err(f"a direct GPU-to-GPU link ({a}-{c}); SimAI links GPUs through NVSwitches and switches")
    gpu_end = a < G or c < G
    other = c if a < G else a
    if gpu_end and other in nvs_ids:
        kind = "nvlink"
        found["nv_bw"], found["nv_lat"] = bw, lat
    elif gpu_end:
        kind = "nic"
        found["nic_bw"] = bw
        found["hop_lat"] = max(found["hop_lat"], lat)
    else:
        kind = "fabric"
        found["hop_lat"] = max(found["hop_lat"], lat)
    b.link(a, c, bw, lat, kind)


def read_simai_topology(path: str | Path, name: str | None = None, alpha: float = 2e-6) -> Topology:
    """Parse SimAI's topology file format (ns3/common.h SetupNetwork; reference/simai.md section 3)."""
    p = Path(path)
    lines = read_text(p, "SimAI topology file").splitlines()

    def err(lineno: int, msg: str) -> InputError:
        return InputError(msg, where=f"{path}:{lineno}")

    if len(lines) < 2:
        raise err(
            1, "expected a SimAI topology header '<nodes> <gpus_per_server> <nvswitches> <switches> <links> <gpu_type>'"
        )
    head = lines[0].split()
    if len(head) < 5 or not all(t.isdigit() for t in head[:5]):
        raise err(
            1, "expected a SimAI topology header '<nodes> <gpus_per_server> <nvswitches> <switches> <links> <gpu_type>'"
        )
    total, gps, n_nvs, n_sw, n_links = (int(t) for t in head[:5])
    gpu_type = head[5] if len(head) > 5 else "H100"
    G = total - n_nvs - n_sw
    if G <= 0 or gps <= 0 or G % gps:
        raise err(1, f"{G} GPUs is not a positive multiple of gpus_per_server={gps}")
    try:
        special = [int(t) for t in lines[1].split()]
    except ValueError:
        raise err(2, "expected the ids of all NVSwitches and switches") from None
    if len(special) != n_nvs + n_sw:
        raise err(2, f"expected {n_nvs + n_sw} NVSwitch and switch ids, got {len(special)}")
    nvs_ids, sw_ids = set(special[:n_nvs]), set(special[n_nvs:])
    b = _Builder()
    for r in range(G):
        b.node(r, "gpu", server=r // gps)
    for nid in special[:n_nvs]:
        b.node(nid, "nvswitch")
    for nid in special[n_nvs:]:
        b.node(nid, "switch")
    links = [ln for ln in enumerate(lines[2:], start=3) if ln[1].strip()]
    if len(links) != n_links:
        raise err(1, f"header promises {n_links} links, file has {len(links)}")
    found = {"nic_bw": None, "nv_bw": None, "nv_lat": 0.0, "hop_lat": 0.0}
    for lineno, ln in links:
        _simai_link(b, ln, lambda msg, n=lineno: err(n, msg), total, G, nvs_ids, found)
    nic_bw, nv_bw, nv_lat, hop_lat = found["nic_bw"], found["nv_bw"], found["nv_lat"], found["hop_lat"]
    # Tier 0 = switches with GPUs attached (ASW), tier 1 = the rest (PSW).
    for s in sw_ids:
        b.tiers[s] = 0 if any(nb < G for nb in b.links.neighbors(s)) else 1
    if nic_bw is None:
        raise InputError("no GPU-to-switch link found", where=str(path))
    topo = Topology(
        name=name or p.name,
        gpu=gpu_type,
        num_gpus=G,
        gpus_per_server=gps,
        nics_per_server=gps,
        nic_bandwidth=nic_bw,
        nvlink_bandwidth=nv_bw,
        nvlink_latency=nv_lat,
        hop_latency=hop_lat,
        links=b.links,
        source=str(path),
        fabric="simai",
        switch_tiers=b.tiers,
        alpha=alpha,
    )
    _check_connected(topo, str(path))
    return topo


def _check_connected(topo: Topology, where: str) -> None:
    comp = topo.links.reachable(0)
    for r in range(topo.num_gpus):
        if r not in comp:
            raise InputError(
                f"GPU {r} is not connected to GPU 0: the topology must connect every GPU", where=where, field="fabric"
            )


def is_simai_topology_file(path: str | Path) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            head = f.readline().split()
    except (OSError, UnicodeDecodeError):
        return False
    return len(head) >= 5 and all(t.isdigit() for t in head[:5])


def dim_strides(sizes) -> list[int]:
    """Rank stride of each dimension (dim 0 fastest)."""
    out, s = [], 1
    for n in sizes:
        out.append(s)
        s *= n
    return out


def _build_multi_dim(cfg: TopologyConfig, spec: MultiDimSpec) -> Topology:
    """LIBRA's links per dimension and line of NPUs: a ring of b/2 links (a 2-ring: its two links to
    one peer, b), all-to-all links of b/(n-1), or a switch with a link of b per NPU."""
    b = _Builder()
    sizes = [d.size for d in spec.dims]
    npus = cfg.servers * cfg.gpus_per_server
    for r in range(npus):
        b.node(r, "gpu", server=r // cfg.gpus_per_server)
    nid = npus
    for d, (dim, stride) in enumerate(zip(spec.dims, dim_strides(sizes))):
        n = dim.size
        for base in (r for r in range(npus) if (r // stride) % n == 0):
            line = [base + k * stride for k in range(n)]
            if n < 2:
                continue
            if dim.kind == "ring":
                bw = dim.bandwidth if n == 2 else dim.bandwidth / 2
                for k in range(n if n > 2 else 1):
                    b.link(line[k], line[(k + 1) % n], bw, dim.latency, dim.tier)
            elif dim.kind == "fully_connected":
                for i, u in enumerate(line):
                    for v in line[i + 1 :]:
                        b.link(u, v, dim.bandwidth / (n - 1), dim.latency, dim.tier)
            else:
                sw = b.node(nid, "switch", dim=d)
                nid += 1
                for u in line:
                    b.link(u, sw, dim.bandwidth, dim.latency, dim.tier)
    return Topology(
        name=cfg.name, gpu=cfg.gpu, num_gpus=npus, gpus_per_server=cfg.gpus_per_server, nics_per_server=1,
        nic_bandwidth=spec.dims[-1].bandwidth, nvlink_bandwidth=None, nvlink_latency=0.0,
        hop_latency=max(d.latency for d in spec.dims), links=b.links, fabric="multi_dim", description=cfg.description,
        alpha=0.0, dims=tuple((d.kind, d.size, d.bandwidth, d.latency, d.tier) for d in spec.dims),
    )  # fmt: skip


def build_topology(cfg: TopologyConfig, where: str = "", base_dir: Path | None = None) -> Topology:
    spec = cfg.fabric
    if isinstance(spec, MultiDimSpec):
        topo = _build_multi_dim(cfg, spec)
        topo.source = where
        return topo
    if isinstance(spec, SimaiFileSpec):
        f = Path(spec.file)
        if not f.is_absolute() and base_dir is not None:
            f = base_dir / f
        return read_simai_topology(f, name=cfg.name, alpha=cfg.alpha)
    b = _Builder()
    try:
        if isinstance(spec, FatTreeSpec):
            _build_fat_tree(cfg, spec, b)
        elif isinstance(spec, LeafSpineSpec):
            _build_leaf_spine(cfg, spec, b)
        elif isinstance(spec, RailOptimizedSpec):
            _build_rail(cfg, spec, b)
        elif isinstance(spec, ClosSpec):
            _build_clos(cfg, spec, b)
    except ValueError as e:
        raise InputError(str(e), where=where, field="fabric") from None
    topo = Topology(
        name=cfg.name,
        gpu=cfg.gpu,
        num_gpus=cfg.servers * cfg.gpus_per_server,
        gpus_per_server=cfg.gpus_per_server,
        nics_per_server=cfg.nic.count,
        nic_bandwidth=cfg.nic.bandwidth,
        nvlink_bandwidth=cfg.nvlink.bandwidth if cfg.nvlink else None,
        nvlink_latency=cfg.nvlink.latency if cfg.nvlink else 0.0,
        hop_latency=spec.latency,
        links=b.links,
        source=where,
        fabric=spec.kind,
        description=cfg.description,
        switch_tiers=b.tiers,
        alpha=cfg.alpha,
        flows_per_pair=cfg.flows_per_pair,
    )
    _check_connected(topo, where)
    return topo


def load_topology(path: str | Path) -> Topology:
    """A topology YAML, or a SimAI topology file (detected by its numeric header)."""
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", where=str(path))
    if is_simai_topology_file(p):
        return read_simai_topology(p)
    cfg = load_model(TopologyConfig, p)
    return build_topology(cfg, where=str(path), base_dir=p.parent)
