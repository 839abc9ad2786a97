"""What `netsim run` and every sweep point take: the run specification (strings as the user wrote
them; the simulate layer resolves them against topology and model)."""

from __future__ import annotations

from dataclasses import dataclass

BACKEND_NAMES = ("flow", "analytical")
MODES = ("physical", "simai")


@dataclass
class RunSpec:
    """Everything `netsim run` takes. Parallelism fields left None keep the preset's values."""

    topology: str
    model: str | None = None
    workload: str | None = None
    backend: str | None = None  # default: flow, or analytical when mode is "simai"
    mode: str = "physical"
    network: str = "real"  # "ideal": infinite bandwidth, zero latency (flow backend)
    fidelity: str = "macro"
    bandwidth: str | None = None
    tp: int | None = None
    pp: int | None = None
    dp: int | None = None
    gbs: int | None = None
    mbs: int | None = None
    seq: int | None = None
    sp: bool | None = None
    schedule: str | None = None
    compression: str | None = None  # profile name or YAML file
