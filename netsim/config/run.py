"""What `netsim run` and every sweep point take: the run specification, validated once at the edge.

Units are parsed here (a bandwidth becomes bytes/s); the layers below never see unit strings. The
combination rules that need the topology or the model (parallelism, GPU counts) live where those
are resolved.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from netsim.config.loader import parse_model
from netsim.config.quantities import Bandwidth
from netsim.errors import InputError

BACKEND_NAMES = ("flow", "analytical")
MODES = ("physical", "simai")


class RunSpec(BaseModel):
    """Everything `netsim run` takes. Parallelism fields left None keep the preset's values."""

    model_config = ConfigDict(extra="forbid")

    topology: str
    model: str | None = None
    workload: str | None = None
    backend: Literal["flow", "analytical"] | None = None  # default: flow, or analytical when mode is "simai"
    mode: Literal["physical", "simai"] = "physical"
    network: Literal["real", "ideal"] = "real"  # "ideal": infinite bandwidth, zero latency
    fidelity: Literal["macro", "chunked"] = "macro"
    alltoall: Literal["direct", "pxn"] = "pxn"  # the flow backend's all-to-all (NCCL's default: PXN)
    transport: Literal["maxmin", "window"] = "maxmin"  # the flow backend's rates (network/transport.py)
    bandwidth: Bandwidth | None = Field(None, gt=0)  # NIC line rate override, bytes/s
    # Flow backend: DP replicas whose TP/CP/PP traffic goes on the network (None: the executor's
    # rule, FOLD_ABOVE / FOLD_REPLICAS in system/pipeline.py; DP collectives always span every rank).
    dp_replicas: PositiveInt | None = None
    tp: PositiveInt | None = None
    pp: PositiveInt | None = None
    dp: PositiveInt | None = None
    gbs: PositiveInt | None = None
    mbs: PositiveInt | None = None
    seq: PositiveInt | None = None
    sp: bool | None = None
    schedule: Literal["1f1b", "gpipe", "interleaved"] | None = None
    # Training options (README "Training options"); None keeps the preset's value.
    cp: PositiveInt | None = None
    ep: PositiveInt | None = None
    etp: PositiveInt | None = None
    vpp: PositiveInt | None = None
    recompute: Literal["none", "selective", "selective-op", "full"] | None = None
    precision: Literal["bf16", "fp16", "fp8"] | None = None
    kernels: Literal["fused", "eager"] | None = None
    sharding: Literal["none", "distributed-optimizer", "zero-1", "fsdp", "fsdp-no-reshard-after-forward"] | None = None
    overlap_grad_reduce: bool | None = None
    overlap_param_gather: bool | None = None
    tp_comm_overlap: bool | None = None
    calibration: str | None = None  # a compute calibration YAML (calibration/compute.yaml's schema)
    compression: str | None = None  # profile name or YAML file
    # GEMINI checkpoints (flow backend): mode, every N iterations, m replicas, placement, remote storage.
    checkpoint: Literal["none", "blocking", "interleaved"] = "none"
    checkpoint_every: PositiveInt = 1
    replicas: PositiveInt = 2
    placement: Literal["group", "ring"] = "group"
    storage_bandwidth: Bandwidth = Field(20e9 / 8, gt=0)  # 20 Gbps

    @classmethod
    def parse(cls, data: dict[str, Any], where: str = "run") -> RunSpec:
        """A spec from user-given fields; a bad field is an InputError naming it."""
        return parse_model(cls, data, where)

    def resolved(self) -> RunSpec:
        """The spec with its defaults filled in and its field combinations checked."""
        spec = self
        if spec.backend is None:
            spec = spec.model_copy(update={"backend": "analytical" if spec.mode == "simai" else "flow"})
        if spec.backend == "flow" and spec.mode == "simai":
            raise InputError(
                "--mode simai is a mode of the analytical backend; add --backend analytical", field="--mode"
            )
        if spec.checkpoint != "none" and (spec.backend != "flow" or spec.workload is not None):
            raise InputError(
                "checkpoint traffic is simulated by the flow backend on a --model run", field="--checkpoint"
            )
        if spec.dp_replicas is not None and (spec.backend != "flow" or spec.workload is not None):
            raise InputError(
                "only the flow backend on a --model run folds DP replicas (closed forms see no contention)",
                field="--dp-replicas",
            )
        if (spec.model is None) == (spec.workload is None):
            raise InputError("give exactly one of --model NAME or --workload FILE", field="--model/--workload")
        return spec
