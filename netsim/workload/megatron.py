"""netsim's own workloads: what Megatron-LM really sends and computes, per pipeline stage.

Unlike AICB (aicb.py) this counts grouped-query attention, SwiGLU's three matrices, the
embedding only on the first stage and the output layer only on the last, TP all-reduces in
backward as well as forward, and DP gradient buckets that overlap the last backward pass.
Rows use SimAI's layout (rows.py) so every backend reads one format.

Modelling choices (each is a documented approximation):
- backward = 2 x forward for linear layers (dgrad on the ig column, wgrad on wg); flash
  attention's backward = 2.5 x its forward, all on ig;
- gradients reduce in fp32 (Megatron's main_grad), bucketed at Megatron-LM's default DDP bucket
  size max(40M, 1M x dp) parameters, reduce-scattered (distributed optimizer) or all-reduced;
- the distributed optimizer all-gathers updated bf16 parameters after the optimizer step;
- pipeline sends carry one TP shard of the activation (2*b*s*h/t bytes: scatter-gather / SP).
"""

from __future__ import annotations

from dataclasses import dataclass

from netsim.config.model import ModelConfig
from netsim.workload.aicb import padded_vocab
from netsim.workload.compute import GpuCompute
from netsim.workload.parallel import Parallelism
from netsim.workload.rows import ACTIVATION, ACTIVATION_GRAD, DEFAULT_CLASS, GRADIENT, PARAMETER, Row, Workload

ADAM_BYTES_PER_PARAM = 30  # read fp32 param, grad, m, v; write param, m, v; write the bf16 copy


@dataclass(frozen=True)
class StageShape:
    layers: int
    first: bool
    last: bool


@dataclass(frozen=True)
class StageProgram:
    """One stage as the flow backend runs it: a micro-batch's rows, then the optimizer."""

    body: list[Row]
    buckets: dict[int, int]  # body row -> DP gradient bytes issued after its last backward
    grad_op: str
    optimizer_ns: int
    param_allgather_bytes: int
    pp_bytes: int


@dataclass
class StagedWorkload:
    """One Workload per pipeline stage (stages with equal shape share one object)."""

    stages: list[Workload]
    par: Parallelism
    model_name: str = ""

    def representative(self) -> int:
        """Index of the stage with the most compute (ties: the last)."""
        work = [sum(r.fwd_compute + r.ig_compute + r.wg_compute for r in w.rows) for w in self.stages]
        best = max(work)
        return max(i for i, v in enumerate(work) if v == best)


def stage_layers(layers: int, pp: int) -> list[int]:
    """Even split; when uneven, the first and last stages hold fewer (as Llama 3 405B did)."""
    base, extra = divmod(layers, pp)
    if extra == 0:
        return [base] * pp
    counts = [base + 1] * pp
    deficit = pp * (base + 1) - layers
    order = [0, pp - 1] + list(range(1, pp - 1))
    for i in order[:deficit]:
        counts[i] -= 1
    return counts


def layer_params(model: ModelConfig, tp: int) -> int:
    """Parameters of one transformer layer held by one TP rank."""
    h, k = model.hidden, model.hidden // model.heads
    q = k * model.heads
    kvd = k * model.kv
    norms = 2 * (2 * h if not model.gated_mlp else h)  # LayerNorm (w, b) or RMSNorm (w), replicated
    attn = h * (q + 2 * kvd) // tp + q * h // tp
    mlp = (3 if model.gated_mlp else 2) * h * model.ffn // tp
    return attn + mlp + norms


def stage_params(model: ModelConfig, par: Parallelism, shape: StageShape) -> int:
    v = padded_vocab(model.vocab, par.tp)
    p = shape.layers * layer_params(model, par.tp)
    if shape.first:
        p += v * model.hidden // par.tp + (par.seq * model.hidden if model.position_embeddings else 0)
    if shape.last:
        p += model.hidden * (2 if not model.gated_mlp else 1)  # final norm
        if not (model.tied_embeddings and par.pp == 1):
            p += v * model.hidden // par.tp
    return p


def _ns(seconds: float) -> int:
    return max(1, round(seconds * 1e9))


def build_megatron(model: ModelConfig, par: Parallelism, gpu: GpuCompute) -> StagedWorkload:
    counts = stage_layers(model.layers, par.pp)
    cache: dict[StageShape, Workload] = {}
    stages = []
    for i, n in enumerate(counts):
        shape = StageShape(layers=n, first=i == 0, last=i == par.pp - 1)
        if shape not in cache:
            cache[shape] = _build_stage(model, par, gpu, shape)
        stages.append(cache[shape])
    return StagedWorkload(stages=stages, par=par, model_name=model.name)


def _build_stage(model: ModelConfig, par: Parallelism, gpu: GpuCompute, shape: StageShape) -> Workload:
    b, s, h, t = par.mbs, par.seq, model.hidden, par.tp
    k = h // model.heads
    q, kvd = k * model.heads, k * model.kv
    f = model.ffn
    v = padded_vocab(model.vocab, t)
    m = par.microbatches
    T = 2 * b * s * h  # one bf16 activation, whole (SimAI's size convention for AG/RS too)
    tpc = t > 1
    act_bytes = b * s * h * 2

    # Forward compute per micro-batch (seconds).
    norm = gpu.memory_s(act_bytes * 2)
    qkv = gpu.matmul_s(2 * b * s * h * (q + 2 * kvd) / t)
    core = gpu.matmul_s(4 * b * s * s * q / t)
    proj = gpu.matmul_s(2 * b * s * q * h / t)
    up = gpu.matmul_s(2 * b * s * h * f * (2 if model.gated_mlp else 1) / t)
    act = gpu.memory_s(b * s * f / t * 2 * (3 if model.gated_mlp else 2))
    down = gpu.matmul_s(2 * b * s * f * h / t)
    attn_f = norm + qkv + core + proj
    attn_ig = qkv + 2.5 * core + proj + norm
    attn_wg = qkv + proj
    mlp_f = norm + up + act + down
    mlp_ig = up + act + down + norm
    mlp_wg = up + down

    def tp_op(op: str, size: int) -> tuple[str, int]:
        return (op, size) if tpc else ("NONE", 0)

    fwd_in = tp_op("ALLGATHER", T) if par.sp else ("NONE", 0)
    fwd_out = tp_op("REDUCESCATTER", T) if par.sp else tp_op("ALLREDUCE", T)
    bwd_out = tp_op("ALLGATHER", T) if par.sp else ("NONE", 0)
    bwd_in = tp_op("REDUCESCATTER", T) if par.sp else tp_op("ALLREDUCE", T)

    def micro_batch() -> list[tuple[Row, int]]:
        """Rows of one micro-batch with the parameters whose gradients each row produces."""
        out: list[tuple[Row, int]] = []
        if shape.first:
            emb_params = v * h // t + (s * h if model.position_embeddings else 0)
            out.append(
                (
                    Row(
                        "embedding",
                        _ns(gpu.memory_s(act_bytes * 2)),
                        *fwd_out,
                        1,
                        "NONE",
                        0,
                        _ns(gpu.memory_s(act_bytes * 2)),
                        "NONE",
                        0,
                    ),
                    emb_params,
                )
            )
        lp = layer_params(model, t)
        la = h * (q + 2 * kvd) // t + q * h // t
        for _ in range(shape.layers):
            if par.sp:
                # Column-parallel input all-gather and row-parallel output reduce-scatter.
                out.append(
                    (
                        Row(
                            "attention_column",
                            _ns(norm + qkv + core),
                            *fwd_in,
                            _ns(qkv + 2.5 * core + norm),
                            *bwd_in,
                            _ns(qkv),
                            "NONE",
                            0,
                        ),
                        la - q * h // t,
                    )
                )
                out.append(
                    (Row("attention_row", _ns(proj), *fwd_out, _ns(proj), *bwd_out, _ns(proj), "NONE", 0), q * h // t)
                )
                out.append(
                    (
                        Row(
                            "mlp_column",
                            _ns(norm + up + act),
                            *fwd_in,
                            _ns(up + act + norm),
                            *bwd_in,
                            _ns(up),
                            "NONE",
                            0,
                        ),
                        lp - la - f * h // t,
                    )
                )
                out.append((Row("mlp_row", _ns(down), *fwd_out, _ns(down), *bwd_out, _ns(down), "NONE", 0), f * h // t))
            else:
                out.append(
                    (Row("attention", _ns(attn_f), *fwd_out, _ns(attn_ig), *bwd_in, _ns(attn_wg), "NONE", 0), la)
                )
                out.append((Row("mlp", _ns(mlp_f), *fwd_out, _ns(mlp_ig), *bwd_in, _ns(mlp_wg), "NONE", 0), lp - la))
        if shape.last:
            logits = gpu.matmul_s(2 * b * s * h * v / t)
            ce = gpu.memory_s(b * s * v / t * 4 * 2)
            out_params = 0 if (model.tied_embeddings and par.pp == 1) else v * h // t
            out.append(
                (
                    Row(
                        "output_layer",
                        _ns(norm + logits + ce),
                        *fwd_in,
                        _ns(logits + ce + norm),
                        *bwd_in,
                        _ns(logits),
                        "NONE",
                        0,
                    ),
                    out_params,
                )
            )
            if tpc:  # vocab-parallel cross entropy: max, sum of exponentials, target logit (fp32)
                for i in range(1, 4):
                    out.append(
                        (
                            Row(
                                f"cross_entropy{i}",
                                1,
                                "ALLREDUCE",
                                4 * b * s,
                                1,
                                "NONE",
                                0,
                                1,
                                "NONE",
                                0,
                                fwd_class=DEFAULT_CLASS,
                            ),
                            0,
                        )
                    )
        return out

    body = micro_batch()
    body_rows = [r for r, _p in body]
    total_params = stage_params(model, par, shape)
    bucket = max(40_000_000, 1_000_000 * par.dp)
    grad_op = "REDUCESCATTER" if par.distributed_optimizer else "ALLREDUCE"
    # SimAI-layout backward runs rows last -> first, so micro-batch 0's copy finishes last: its
    # rows carry the DP gradient buckets, filled in backward order.
    first_mb: list[Row] = []
    buckets: dict[int, int] = {}  # body row index -> gradient bytes reduced after its backward
    pending = 0
    for i in range(len(body) - 1, -1, -1):
        row, params = body[i]
        pending += params
        if par.dp > 1 and pending >= bucket:
            row = _with_wg(row, grad_op, 4 * pending)
            buckets[i] = 4 * pending
            pending = 0
        first_mb.append(row)
    first_mb.reverse()
    if par.dp > 1 and pending:
        first_mb[0] = _with_wg(first_mb[0], grad_op, 4 * pending)
        buckets[0] = buckets.get(0, 0) + 4 * pending
    shard = total_params / par.dp if par.distributed_optimizer else total_params
    rows: list[Row] = []
    if par.dp > 1 and par.distributed_optimizer:
        rows.append(
            Row("param_allgather", 1, "NONE", 0, 1, "NONE", 0, 1, "ALLGATHER", 2 * total_params, wg_class=PARAMETER)
        )
    optimizer_ns = _ns(gpu.memory_s(shard * ADAM_BYTES_PER_PARAM))
    rows.append(Row("optimizer_step", 1, "NONE", 0, optimizer_ns, "NONE", 0, 1, "NONE", 0, barrier=True))
    rows.extend(first_mb)
    for _ in range(m - 1):
        rows.extend(r for r, _p in body)
    pp_comm = str(2 * b * s * h // t) if par.pp > 1 else "0"
    return Workload(
        tp=t,
        ep=par.ep,
        pp=par.pp,
        vpp=shape.layers,
        ga=m,
        all_gpus=par.world,
        pp_comm=pp_comm,
        rows=rows,
        source="megatron",
        meta={
            "generator": "netsim-megatron",
            "model": model.name,
            "params_per_rank": total_params,
            "stage_layers": shape.layers,
            "first_stage": shape.first,
            "last_stage": shape.last,
            # The same stage as a per-micro-batch program, for the flow backend.
            "program": StageProgram(
                body=body_rows,
                buckets=buckets,
                grad_op=grad_op,
                optimizer_ns=optimizer_ns,
                param_allgather_bytes=2 * total_params if (par.dp > 1 and par.distributed_optimizer) else 0,
                pp_bytes=2 * b * s * h // t if par.pp > 1 else 0,
            ),
        },
    )


def _with_wg(row: Row, op: str, nbytes: int) -> Row:
    from dataclasses import replace

    return replace(row, wg_comm=op, wg_bytes=row.wg_bytes + nbytes if row.wg_comm == op else nbytes, wg_class=GRADIENT)


__all__ = [
    "build_megatron",
    "StagedWorkload",
    "stage_layers",
    "layer_params",
    "stage_params",
    "ACTIVATION",
    "ACTIVATION_GRAD",
]
