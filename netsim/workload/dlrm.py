"""DLRM: sharded embedding tables, the pooled-embedding all-to-all, data-parallel MLPs (issue #16).

One training step of Naumov et al.'s DLRM as netsim's typed program, for the schedule executor:
- embeddings are model-parallel: `table-wise` puts whole tables on GPUs (T/n each), and the
  pooled embeddings go to the GPUs that own each sample with an all-to-all (forward) and come back
  as gradients with another (backward); `row-wise` splits every table over all GPUs, so the
  pooled partial sums are reduce-scattered (forward) and the gradients all-gathered (backward);
- the bottom and top MLPs are data-parallel over all GPUs, their fp32 gradients all-reduced once
  after the backward (one bucket, as PyTorch DDP's last bucket would be for MLPs this small);
- lookups and the sparse update are memory-bound (bytes of the rows read and written, fp32);
  the MLP GEMMs and the feature interaction (pairwise dot products) are GEMMs of their shapes.
The embedding traffic is class `embedding`, so a compression profile can target it alone.
"""

from __future__ import annotations

import math
from dataclasses import replace

from pydantic import Field

from netsim.config.loader import load_model
from netsim.config.model import Preset
from netsim.errors import InputError
from netsim.resources import WORKLOADS
from netsim.workload.compute import GpuCompute
from netsim.workload.parallel import Parallelism
from netsim.workload.program import (
    ACTIVATION_GRAD,
    ALLGATHER,
    ALLREDUCE,
    ALLTOALL,
    DP,
    EP,
    GRADIENT,
    REDUCESCATTER,
    Collective,
    Layer,
    LayerProgram,
    Phase,
    Send,
    StagedProgram,
    StageProgram,
)

EMBEDDING = "embedding"  # traffic class of the pooled embeddings and their gradients
FP32 = 4


class DlrmConfig(Preset):
    """A DLRM preset (workloads/dlrm/*.yaml)."""

    tables: int = Field(gt=0, le=100_000, strict=True)
    embedding_dim: int = Field(gt=0, le=65_536, strict=True)
    rows_per_table: int = Field(gt=0, strict=True)
    dense_features: int = Field(gt=0, strict=True)
    bottom_mlp: list[int] = Field(min_length=1)
    top_mlp: list[int] = Field(min_length=1)
    batch: int = Field(gt=0, strict=True)
    pooling: int = Field(1, gt=0, strict=True)  # lookups per table and sample (Criteo: one-hot)
    sharding: str = Field("table-wise", pattern="^(table-wise|row-wise)$")


def dlrm_presets() -> dict[str, DlrmConfig]:
    return {c.name: c for c in (load_model(DlrmConfig, f) for f in sorted((WORKLOADS / "dlrm").glob("*.yaml")))}


def find_dlrm(name: str) -> DlrmConfig | None:
    key = name.lower()
    for c in dlrm_presets().values():
        if key == c.name.lower() or key in (a.lower() for a in c.aliases):
            return c
    return None


def dlrm_parallelism(cfg: DlrmConfig, gpus: int) -> Parallelism:
    if cfg.batch % gpus:
        raise InputError(f"the global batch {cfg.batch} is not a multiple of the {gpus} GPUs", field="batch")
    return Parallelism(tp=1, pp=1, dp=gpus, ep=gpus, gbs=cfg.batch, mbs=cfg.batch // gpus, seq=1, sp=False,
                       distributed_optimizer=False, schedule="1f1b", sharding="none")  # fmt: skip


def _mlp(gpu: GpuCompute, rows: int, dims: list[int]) -> tuple[float, int]:
    """Forward seconds and parameters of an MLP over `rows` samples."""
    t = sum(gpu.gemm_s(rows, b, a) for a, b in zip(dims, dims[1:]))
    return t, sum(a * b + b for a, b in zip(dims, dims[1:]))


def _ns(s: float) -> int:
    return max(1, round(s * 1e9))


def build_dlrm(cfg: DlrmConfig, par: Parallelism, gpu: GpuCompute) -> StagedProgram:
    n, B, d, T = par.dp, cfg.batch, cfg.embedding_dim, cfg.tables
    local = B // n
    pooled = T * B * d * FP32  # every sample's pooled embedding of every table
    if cfg.sharding == "table-wise":
        # Tables do not split evenly (26 over 8 GPUs: 3 or 4 each): the busiest GPU's ceil(T/n) tables set
        # the pace, so its lookups and its share of the all-to-all are what is timed.
        mine = math.ceil(T / n)
        lookup_bytes = mine * B * cfg.pooling * d * FP32 * 2  # read the rows, write the pooled vectors
        fwd = Phase(_ns(gpu.stream_s(lookup_bytes)), ALLTOALL, EP, mine * B * d * FP32, EMBEDDING)
        bwd = Phase(1, ALLTOALL, EP, mine * B * d * FP32, EMBEDDING)
    else:
        lookup_bytes = T * B * cfg.pooling * d * FP32 * 2 / n
        fwd = Phase(_ns(gpu.stream_s(lookup_bytes)), REDUCESCATTER, EP, pooled, EMBEDDING)
        bwd = Phase(1, ALLGATHER, EP, pooled, EMBEDDING)
    update = Phase(_ns(gpu.stream_s(lookup_bytes * 1.5)), traffic=GRADIENT)  # read grad + row, write row (SGD)
    emb = Layer("embedding", fwd, Phase(bwd.compute_ns, bwd.op, bwd.group, bwd.bytes, ACTIVATION_GRAD), update)
    bot_t, bot_p = _mlp(gpu, local, [cfg.dense_features, *cfg.bottom_mlp])
    f = T + 1  # embedding vectors and the bottom MLP's output
    inter_t = gpu.gemm_s(f, f, d, count=local) + gpu.stream_s(local * f * f * FP32)
    top_t, top_p = _mlp(gpu, local, [d + f * (f - 1) // 2, *cfg.top_mlp])
    mlp = [
        Layer("bottom_mlp", Phase(_ns(bot_t)), Phase(_ns(bot_t)), Phase(_ns(bot_t))),
        Layer("interaction", Phase(_ns(inter_t)), Phase(_ns(2 * inter_t)), Phase(1)),
        Layer("top_mlp", Phase(_ns(top_t)), Phase(_ns(top_t)), Phase(_ns(top_t))),
    ]
    grads = Collective(ALLREDUCE, DP, (bot_p + top_p) * FP32, GRADIENT) if n > 1 else None
    prog = StageProgram(
        layers=[emb, *mlp], buckets={} if grads is None else {1: grads},
        optimizer_ns=_ns(gpu.memory_s((bot_p + top_p) * 16)), param_allgather=None,
        send_fwd=Send(0, EMBEDDING), send_bwd=Send(0, EMBEDDING), params=bot_p + top_p,
    )  # fmt: skip
    rows = list(prog.layers)
    if grads is not None:  # SimAI's layout carries the gradient all-reduce on the row that issues it
        rows[1] = replace(rows[1], wg=replace(rows[1].wg, op=grads.op, group=grads.group, bytes=grads.bytes))
    unrolled = LayerProgram(tp=1, pp=1, ga=1, vpp=1, all_gpus=n, layers=rows, ep=n, source="dlrm")
    memory = {"activation_bytes_per_gpu": local * (f * d + sum(cfg.top_mlp)) * FP32, "recompute": "none",
              "embedding_bytes_per_gpu": T * cfg.rows_per_table * d * FP32 // n}  # fmt: skip
    return StagedProgram(stages=[prog], unrolled=[unrolled], model_name=cfg.name, memory=memory)
