"""Schema of a topology YAML: servers with GPUs, an NVLink domain, NICs, and a fabric."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from netsim.config.quantities import Bandwidth, Time

# Strict integer counts (YAML's `true` is not 1) and the documented size limits of a topology.
PositiveInt = Annotated[int, Field(strict=True, gt=0)]
MAX_SERVERS, MAX_GPUS_PER_SERVER, MAX_GPUS = 1 << 17, 64, 1 << 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NvlinkSpec(_Strict):
    """Scale-up domain inside a server (NVLink + NVSwitch): per-GPU unidirectional bandwidth."""

    bandwidth: Bandwidth
    latency: Time = 25e-9


class NicSpec(_Strict):
    """Scale-out NICs of one server; `count` NICs of `bandwidth` each (line rate)."""

    count: PositiveInt = 1
    bandwidth: Bandwidth
    latency: Time = 0.0


class FatTreeSpec(_Strict):
    """3-tier k-ary fat-tree (Al-Fares et al.): pods of k/2 edge + k/2 aggregation switches, (k/2)^2 cores.

    `pods` may be fewer than k (a partly populated tree). `oversubscription` >= 1 divides the
    edge-to-aggregation bandwidth (down:up capacity at the edge).
    """

    kind: Literal["fat_tree"]
    k: PositiveInt = Field(le=256)
    pods: PositiveInt | None = None
    oversubscription: float = Field(1.0, ge=1.0, le=1024.0, allow_inf_nan=False)
    link_bandwidth: Bandwidth | None = None
    latency: Time = 500e-9

    @model_validator(mode="after")
    def _check(self):
        if self.k % 2:
            raise ValueError(f"k must be even, got {self.k}")
        if self.pods is not None and self.pods > self.k:
            raise ValueError(f"pods must be at most k={self.k}, got {self.pods}")
        return self


class LeafSpineSpec(_Strict):
    """2-tier leaf-spine (SimAI's DCN+): every leaf links to every spine."""

    kind: Literal["leaf_spine"]
    leaves: PositiveInt
    hosts_per_leaf: PositiveInt
    spines: PositiveInt
    uplink_bandwidth: Bandwidth | None = None
    latency: Time = 500e-9


class RailOptimizedSpec(_Strict):
    """Rail-optimized: NIC r of every server joins rail r's leaves; leaves of all rails share spines."""

    kind: Literal["rail_optimized"]
    servers_per_leaf: PositiveInt
    spines: PositiveInt
    uplink_bandwidth: Bandwidth | None = None
    latency: Time = 500e-9


class ClosSpec(_Strict):
    """3-tier Clos in pods: leaves (ToRs) of `hosts_per_leaf` NIC ports, `leaves_per_pod` leaves
    joined by `spines_per_pod` spines with full mesh, pods joined by `cores` core switches.
    `oversubscription` divides leaf uplinks, `pod_oversubscription` the pods' uplinks to the cores
    (Llama 3: 1:1 inside a 3072-GPU pod, 1:7 above it). Rail-optimized: NIC r of every server in a
    pod joins rail r's leaves. Each spine and core stands for a plane of switches, so a link here
    carries the capacity of the parallel links it aggregates."""

    kind: Literal["clos"]
    hosts_per_leaf: PositiveInt
    leaves_per_pod: PositiveInt
    spines_per_pod: PositiveInt = 8
    cores: PositiveInt = 8
    oversubscription: float = Field(1.0, ge=1.0, le=1024.0, allow_inf_nan=False)
    pod_oversubscription: float = Field(1.0, ge=1.0, le=1024.0, allow_inf_nan=False)
    rail_optimized: bool = False
    latency: Time = 500e-9


class SimaiFileSpec(_Strict):
    """A SimAI topology file (gen_Topo_Template.py output), path relative to this YAML."""

    kind: Literal["simai"]
    file: str


class DimSpec(_Strict):
    """One dimension of a multi-dimensional network (LIBRA): `size` NPUs joined by a ring, all-to-all
    links or a switch, with `bandwidth` per NPU in this dimension (LIBRA's b_d) and a cost tier."""

    kind: Literal["ring", "fully_connected", "switch"]
    size: PositiveInt
    bandwidth: Bandwidth = Field(gt=0)
    latency: Time = 1e-9
    tier: Literal["tile", "package", "node", "pod"]


class MultiDimSpec(_Strict):
    """LIBRA's multi-dimensional network, innermost dimension first; NPU ids vary fastest in dim 0."""

    kind: Literal["multi_dim"]
    dims: list[DimSpec] = Field(min_length=1)


FabricSpec = Annotated[
    FatTreeSpec | LeafSpineSpec | RailOptimizedSpec | ClosSpec | SimaiFileSpec | MultiDimSpec,
    Field(discriminator="kind"),
]


class TopologyConfig(_Strict):
    name: str
    description: str = ""
    gpu: str = "H100"
    servers: PositiveInt | None = None
    gpus_per_server: PositiveInt = Field(1, le=MAX_GPUS_PER_SERVER)
    nvlink: NvlinkSpec | None = None
    nic: NicSpec | None = None
    fabric: FabricSpec
    # Fixed start overhead of every transfer (NCCL step launch and synchronisation).
    alpha: Time = 2e-6
    # Flows (QPs / NCCL channels) a ring edge or point-to-point transfer between two GPUs is split
    # into, each hashed by ECMP on its own: NCCL_IB_QPS_PER_CONNECTION x channels per NIC; Llama 3's
    # library opened 16 per GPU pair. 1 = one flow per ring edge (SimAI's and netsim's default).
    flows_per_pair: PositiveInt = Field(1, le=64)

    @model_validator(mode="after")
    def _check(self):
        if isinstance(self.fabric, SimaiFileSpec):
            return self
        if (self.servers or 0) > MAX_SERVERS or (self.servers or 0) * self.gpus_per_server > MAX_GPUS:
            raise ValueError(
                f"{self.servers} servers x {self.gpus_per_server} GPUs is above netsim's limits "
                f"({MAX_SERVERS} servers, {MAX_GPUS} GPUs)"
            )
        if isinstance(self.fabric, FatTreeSpec):
            k = self.fabric.k
            ports = (self.fabric.pods or k) * (k // 2) ** 2
            hosts = (self.servers or 0) * (self.nic.count if self.nic else 1)
            if hosts > ports:
                raise ValueError(f"{hosts} NIC ports do not fit a k={k} fat-tree ({ports} host ports at most)")
        if isinstance(self.fabric, MultiDimSpec):
            npus = 1
            for d in self.fabric.dims:
                npus *= d.size
            if (self.servers or 0) * self.gpus_per_server != npus:
                raise ValueError(
                    f"servers x gpus_per_server must equal the product of the dims' sizes ({npus}), "
                    f"got {(self.servers or 0) * self.gpus_per_server}"
                )
            return self
        if self.servers is None:
            raise ValueError("servers is required for this fabric")
        if self.nic is None:
            raise ValueError("nic is required for this fabric")
        g, n = self.gpus_per_server, self.nic.count
        if g % n and n % g:
            raise ValueError(f"nic.count ({n}) and gpus_per_server ({g}) must divide one another")
        if g > 1 and self.nvlink is None:
            raise ValueError("nvlink is required when gpus_per_server > 1")
        return self
