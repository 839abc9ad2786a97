"""Schema of a compression profile: where a codec runs, how fast, and how much it shrinks what."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from netsim.config.loader import load_model, read_yaml
from netsim.config.quantities import Bandwidth, Size, Time
from netsim.errors import InputError
from netsim.resources import CALIBRATION

# `embedding`: DLRM's pooled embeddings in the forward all-to-all (workload/dlrm.py).
CLASSES = ("gradient", "activation", "activation_grad", "parameter", "optimizer_state", "embedding", "default")
GROUPS = ("dp", "tp", "pp", "ep")


class Ratios(BaseModel):
    """compressed / original bytes per traffic class (lower is better)."""

    model_config = ConfigDict(extra="forbid")

    default: float = Field(1.0, gt=0)
    gradient: float | None = Field(None, gt=0)
    activation: float | None = Field(None, gt=0)
    activation_grad: float | None = Field(None, gt=0)
    parameter: float | None = Field(None, gt=0)
    optimizer_state: float | None = Field(None, gt=0)
    embedding: float | None = Field(None, gt=0)

    def of(self, traffic: str) -> float:
        v = getattr(self, traffic, None) if traffic in CLASSES else None
        return self.default if v is None else v


class TableBounds(BaseModel):
    """The DLRM paper's table-wise level: tables tagged tighten or loosen get their own bound."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(gt=0, le=100_000, description="tables whose slices make up the all-to-all")
    tighten: float = Field(gt=0, lt=1)
    loosen: float = Field(gt=0, lt=1)
    tighten_tables: list[int] = []
    loosen_tables: list[int] = []

    @model_validator(mode="after")
    def _check(self):
        for i in [*self.tighten_tables, *self.loosen_tables]:
            if not 0 <= i < self.count:
                raise ValueError(f"table {i} is outside 0..{self.count - 1}")
        if set(self.tighten_tables) & set(self.loosen_tables):
            raise ValueError("a table cannot be both tightened and loosened")
        return self


class BoundSchedule(BaseModel):
    """The DLRM paper's iteration-wise level (stage_check): bounds x C early in training."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["step", "linear", "constant"] = "step"
    multiplier: float = Field(2.0, ge=1, le=1000)
    early_iterations: int = Field(65_536, gt=0)


class Lossy(BaseModel):
    """Error-bounded quantisation before the lossless encoder (DLRM, reference/peers.md section 4):
    values become int8/int16 codes (ratio 8/32 or 16/32 of fp32, 8/16 or 16/16 of bf16); with
    `reference_error_bound` the encoder's ratio follows the bound (network/lossy.py)."""

    model_config = ConfigDict(extra="forbid")

    bits: Literal[8, 16, "auto"] = 8
    source_bits: Literal[16, 32] = 32
    error_bound: float = Field(0.01, gt=0, lt=1, description="relative to the tensor's value range")
    reference_error_bound: float | None = Field(None, gt=0, lt=1, description="the bound `ratios` were measured at")
    min_bits: float = Field(1.0, ge=0, le=16, description="the lossless coder's floor, bits per value")
    tables: TableBounds | None = None
    schedule: BoundSchedule | None = None
    iteration: int = Field(0, ge=0, description="training iteration the run is at (for the schedule)")
    quantize_throughput: Bandwidth | None = None
    dequantize_throughput: Bandwidth | None = None


class CompressionProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    source: str = ""
    placement: Literal["none", "host-cpu", "gpu", "smartnic", "in-nic"]
    compress_throughput: Bandwidth | None = None
    decompress_throughput: Bandwidth | None = None
    latency: Time = 0.0  # per message (per packet for in-nic: the pipeline fill)
    pipelined: bool = False
    copy_bandwidth: Bandwidth | None = None  # PCIe / DMA for the extra copies the placement needs
    copies_per_side: int = Field(0, ge=0)
    packet_size: Size = 4096
    raw_fallback: bool = True
    ratios: Ratios | str = Ratios()  # literals, or an analyzer ratio profile YAML
    lossy: Lossy | None = None
    groups: list[Literal["dp", "tp", "pp", "ep"]] = list(GROUPS)
    classes: list[str] = list(CLASSES)

    @model_validator(mode="after")
    def _check(self):
        if self.placement != "none" and (self.compress_throughput is None or self.decompress_throughput is None):
            raise ValueError("compress_throughput and decompress_throughput are required unless placement is none")
        if self.copies_per_side and self.copy_bandwidth is None:
            raise ValueError("copy_bandwidth is required when copies_per_side > 0")
        for c in self.classes:
            if c not in CLASSES:
                raise ValueError(f"classes: unknown traffic class {c!r}; expected one of {', '.join(CLASSES)}")
        return self


# ---- loading profiles by name or file ------------------------------------------------------------

PROFILE_DIR = CALIBRATION / "compression"


def list_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name_or_file: str) -> CompressionProfile:
    p = Path(name_or_file)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.exists():
            raise InputError("file not found", where=str(p))
        prof = load_model(CompressionProfile, p)
        base = p.parent
    else:
        f = PROFILE_DIR / f"{name_or_file}.yaml"
        if not f.exists():
            raise InputError(
                f"unknown compression profile {name_or_file!r}; expected one of "
                f"{', '.join(list_profiles())} or a YAML file",
                field="--compression",
            )
        prof = load_model(CompressionProfile, f)
        base = f.parent
    if isinstance(prof.ratios, str):
        prof = prof.model_copy(update={"ratios": _analyzer_ratios(base / prof.ratios)})
    return prof


def _analyzer_ratios(path: Path) -> Ratios:
    """A ratio profile written by `netsim analyze` ({traffic_class: ratio, ...} under `ratios`)."""
    data = read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("ratios"), dict):
        raise InputError("expected a ratio profile with a 'ratios' mapping", where=str(path), field="ratios")
    try:
        return Ratios.model_validate(data["ratios"])
    except Exception as e:
        raise InputError(f"bad ratios ({e})", where=str(path), field="ratios") from None
