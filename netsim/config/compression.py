"""Schema of a compression profile: where a codec runs, how fast, and how much it shrinks what."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from netsim.config.quantities import Bandwidth, Size, Time

CLASSES = ("gradient", "activation", "activation_grad", "parameter", "optimizer_state", "default")
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

    def of(self, traffic: str) -> float:
        v = getattr(self, traffic, None) if traffic in CLASSES else None
        return self.default if v is None else v


class Lossy(BaseModel):
    """Error-bounded quantisation before the lossless encoder (DLRM, reference/peers.md section 4):
    values become int8/int16 codes (ratio 8/32 or 16/32 of fp32, 8/16 or 16/16 of bf16)."""

    model_config = ConfigDict(extra="forbid")

    bits: Literal[8, 16] = 8
    source_bits: Literal[16, 32] = 32
    error_bound: float = Field(0.01, gt=0, description="relative to the tensor's value range")
    quantize_throughput: Bandwidth | None = None

    @property
    def ratio(self) -> float:
        return min(1.0, self.bits / self.source_bits)


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
