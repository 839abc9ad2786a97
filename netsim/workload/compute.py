"""Compute time of training kernels from FLOPs (or bytes) and calibration/compute.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from netsim.config.loader import read_yaml
from netsim.errors import InputError
from netsim.resources import CALIBRATION
from netsim.units import parse_bandwidth


@dataclass(frozen=True)
class GpuCompute:
    name: str
    peak_flops: float  # FLOP/s, dense bf16
    hbm_bandwidth: float  # bytes/s
    matmul_efficiency: float
    memory_efficiency: float
    source: str = ""

    def matmul_s(self, flops: float) -> float:
        return flops / (self.peak_flops * self.matmul_efficiency)

    def memory_s(self, nbytes: float) -> float:
        return nbytes / (self.hbm_bandwidth * self.memory_efficiency)


@cache
def gpu_compute(name: str) -> GpuCompute:
    path = CALIBRATION / "compute.yaml"
    data = read_yaml(path)["gpus"]
    if name not in data:
        raise InputError(
            f"no compute calibration for GPU {name!r}; expected one of {', '.join(data)}", where=str(path), field="gpus"
        )
    d = data[name]
    return GpuCompute(
        name=name,
        peak_flops=float(d["peak_bf16_tflops"]) * 1e12,
        hbm_bandwidth=parse_bandwidth(d["hbm_bandwidth"]),
        matmul_efficiency=float(d["matmul_efficiency"]),
        memory_efficiency=float(d["memory_efficiency"]),
        source=d.get("source", ""),
    )
