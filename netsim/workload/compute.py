"""Compute time of training kernels from FLOPs (or bytes) and a compute calibration file.

Two models live here. SimAI-compatible workloads (aicb.py) time every kernel as FLOPs / (peak x a
flat efficiency), as AICB's generator does. netsim's own Megatron workloads use the `training`
block of the calibration: GEMM time at a per-precision peak with an efficiency that falls for
small GEMMs (`gemm_s`), flash attention at its own efficiency, and memory-bound kernels from the
bytes they move. That block is fitted on published iteration times only
(calibration/published.md, `bench/fit_published.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from netsim.config.loader import read_yaml
from netsim.errors import InputError
from netsim.resources import CALIBRATION
from netsim.units import parse_bandwidth

DEFAULT_CALIBRATION = CALIBRATION / "compute.yaml"


@dataclass(frozen=True)
class TrainingFit:
    """Kernel efficiencies of real training runs, fitted on published iteration times.

    GEMM efficiency = gemm_efficiency x d / (d + gemm_half_dim), d the GEMM's smallest dimension:
    small TP shards and short micro-batches fill fewer tiles and waves (a saturating form with one
    shape constant, not a per-case value)."""

    gemm_efficiency: float
    gemm_half_dim: float
    attention_efficiency: float
    memory_efficiency: float
    fp8_gemm_efficiency: float | None = None  # of the FP8 peak; None: gemm_efficiency
    source: str = ""


@dataclass(frozen=True)
class GpuCompute:
    name: str
    peak_flops: float  # FLOP/s, dense bf16 (fp16 is the same on every GPU netsim knows)
    hbm_bandwidth: float  # bytes/s
    matmul_efficiency: float
    memory_efficiency: float
    source: str = ""
    peak_fp8_flops: float | None = None
    fit: TrainingFit | None = None

    def matmul_s(self, flops: float) -> float:
        return flops / (self.peak_flops * self.matmul_efficiency)

    def memory_s(self, nbytes: float) -> float:
        return nbytes / (self.hbm_bandwidth * self.memory_efficiency)

    def peak(self, precision: str) -> float:
        if precision != "fp8":
            return self.peak_flops
        if self.peak_fp8_flops is None:
            raise InputError(f"GPU {self.name} has no FP8 tensor cores (no peak_fp8_tflops in its calibration)",
                             field="precision")  # fmt: skip
        return self.peak_fp8_flops

    def gemm_s(self, m: float, n: float, k: float, precision: str = "bf16", count: float = 1.0) -> float:
        """`count` GEMMs of (m x k) @ (k x n) at the precision's peak; the flat efficiency without a fit."""
        flops = 2.0 * m * n * k * count
        if self.fit is None:
            return flops / (self.peak(precision) * self.matmul_efficiency)
        d = min(m, n, k)
        top = self.fit.gemm_efficiency
        if precision == "fp8" and self.fit.fp8_gemm_efficiency is not None:
            top = self.fit.fp8_gemm_efficiency
        eff = top * d / (d + self.fit.gemm_half_dim)
        return flops / (self.peak(precision) * eff)

    def attention_s(self, flops: float) -> float:
        """Flash attention (kept in bf16 under FP8 by Transformer Engine)."""
        eff = self.fit.attention_efficiency if self.fit else self.matmul_efficiency
        return flops / (self.peak_flops * eff)

    def stream_s(self, nbytes: float) -> float:
        """A memory-bound training kernel (norms, activations, dropout, casts)."""
        eff = self.fit.memory_efficiency if self.fit else self.memory_efficiency
        return nbytes / (self.hbm_bandwidth * eff)

    def with_fit(self, fit: TrainingFit) -> GpuCompute:
        return replace(self, fit=fit)

    def with_peaks(self, bf16_tflops: float, fp8_tflops: float | None, hbm_bandwidth: float) -> GpuCompute:
        """The same calibration on a part with other datasheet peaks (a published case's GPU)."""
        return replace(self, peak_flops=bf16_tflops * 1e12, hbm_bandwidth=hbm_bandwidth,
                       peak_fp8_flops=fp8_tflops * 1e12 if fp8_tflops else None)  # fmt: skip


def _fit(d: dict | None, where: str) -> TrainingFit | None:
    if d is None:
        return None
    try:
        return TrainingFit(
            gemm_efficiency=float(d["gemm_efficiency"]), gemm_half_dim=float(d["gemm_half_dim"]),
            attention_efficiency=float(d["attention_efficiency"]), memory_efficiency=float(d["memory_efficiency"]),
            fp8_gemm_efficiency=float(d["fp8_gemm_efficiency"]) if d.get("fp8_gemm_efficiency") else None,
            source=str(d.get("source", "")),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"training block needs numeric gemm_efficiency, gemm_half_dim, attention_efficiency and "
                         f"memory_efficiency ({e})", where=where, field="training") from None  # fmt: skip


@cache
def gpu_compute(name: str, calibration: str | Path | None = None) -> GpuCompute:
    """A GPU's compute calibration from calibration/compute.yaml or a file given with --calibration."""
    path = Path(calibration) if calibration else DEFAULT_CALIBRATION
    data = read_yaml(path).get("gpus")
    if not isinstance(data, dict):
        raise InputError("expected a 'gpus' mapping of GPU name to calibration", where=str(path), field="gpus")
    if name not in data:
        raise InputError(
            f"no compute calibration for GPU {name!r}; expected one of {', '.join(data)}", where=str(path), field="gpus"
        )
    d = data[name]
    try:
        fp8 = d.get("peak_fp8_tflops")
        return GpuCompute(
            name=name,
            peak_flops=float(d["peak_bf16_tflops"]) * 1e12,
            hbm_bandwidth=parse_bandwidth(d["hbm_bandwidth"]),
            matmul_efficiency=float(d["matmul_efficiency"]),
            memory_efficiency=float(d["memory_efficiency"]),
            source=d.get("source", ""),
            peak_fp8_flops=float(fp8) * 1e12 if fp8 else None,
            fit=_fit(d.get("training"), str(path)),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"GPU {name!r} needs peak_bf16_tflops, hbm_bandwidth, matmul_efficiency and "
                         f"memory_efficiency ({e})", where=str(path), field=f"gpus.{name}") from None  # fmt: skip
