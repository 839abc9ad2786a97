"""netsim's own workloads: what Megatron-LM really sends and computes, per pipeline stage.

Unlike AICB (aicb.py) this counts grouped-query attention, SwiGLU's three matrices, the
embedding only on the first stage and the output layer only on the last, TP all-reduces in
backward as well as forward, and DP gradient buckets that overlap the last backward pass.
It emits typed programs (program.py): a StageProgram per stage for the schedule executor and
its unrolled LayerProgram (SimAI's layout) for the closed-form executor and export.

Modelling choices (each is a documented approximation):
- backward = 2 x forward for linear layers (dgrad on the ig column, wgrad on wg); flash
  attention's backward = 2.5 x its forward, all on ig;
- gradients reduce in fp32 (Megatron's main_grad), bucketed at Megatron-LM's default DDP bucket
  size max(40M, 1M x dp) parameters, reduce-scattered (distributed optimizer) or all-reduced;
- the distributed optimizer all-gathers updated bf16 parameters after the optimizer step;
- pipeline sends carry one TP shard of the activation (2*b*s*h/t bytes: scatter-gather / SP).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from netsim.config.model import ModelConfig
from netsim.workload.aicb import padded_vocab
from netsim.workload.compute import GpuCompute
from netsim.workload.parallel import Parallelism
from netsim.workload.program import (
    ACTIVATION,
    ACTIVATION_GRAD,
    ALLGATHER,
    ALLREDUCE,
    DEFAULT_CLASS,
    DP,
    GRADIENT,
    PARAMETER,
    REDUCESCATTER,
    TP,
    Collective,
    Layer,
    LayerProgram,
    Phase,
    Send,
    StagedProgram,
    StageProgram,
)

ADAM_BYTES_PER_PARAM = 30  # read fp32 param, grad, m, v; write param, m, v; write the bf16 copy
Comm = tuple[str | None, int]  # (op, bytes) of a TP collective; (None, 0) for none


@dataclass(frozen=True)
class StageShape:
    layers: int
    first: bool
    last: bool


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


def build_megatron(model: ModelConfig, par: Parallelism, gpu: GpuCompute) -> StagedProgram:
    """One program per pipeline stage (equal shapes share one object), and each unrolled."""
    counts = stage_layers(model.layers, par.pp)
    cache: dict[StageShape, tuple[StageProgram, LayerProgram]] = {}
    stages, unrolled = [], []
    for i, n in enumerate(counts):
        shape = StageShape(layers=n, first=i == 0, last=i == par.pp - 1)
        if shape not in cache:
            prog = _stage_program(model, par, gpu, shape)
            cache[shape] = (prog, _unroll(prog, model, par, gpu, shape))
        stages.append(cache[shape][0])
        unrolled.append(cache[shape][1])
    return StagedProgram(stages=stages, unrolled=unrolled, model_name=model.name)


def _phases(compute_fwd: int, fwd: Comm, compute_ig: int, ig: Comm, compute_wg: int) -> tuple[Phase, Phase, Phase]:
    """A layer's three phases: fwd/ig TP collectives (activation and activation-gradient class)."""
    return (
        Phase(compute_fwd, fwd[0], TP if fwd[0] else "NONE", fwd[1], ACTIVATION),
        Phase(compute_ig, ig[0], TP if ig[0] else "NONE", ig[1], ACTIVATION_GRAD),
        Phase(compute_wg, traffic=GRADIENT),
    )


def _layer(name: str, *phase_args) -> Layer:
    fwd, ig, wg = _phases(*phase_args)
    return Layer(name, fwd, ig, wg)


@dataclass(frozen=True)
class _Kernels:
    """Forward, input-gradient and weight-gradient compute of one layer and micro-batch (seconds)."""

    norm: float
    qkv: float
    core: float
    proj: float
    up: float
    act: float
    down: float


def _kernels(model: ModelConfig, par: Parallelism, gpu: GpuCompute) -> _Kernels:
    b, s, h, t = par.mbs, par.seq, model.hidden, par.tp
    k = h // model.heads
    q, kvd, f = k * model.heads, k * model.kv, model.ffn
    return _Kernels(
        norm=gpu.memory_s(b * s * h * 2 * 2),
        qkv=gpu.matmul_s(2 * b * s * h * (q + 2 * kvd) / t),
        core=gpu.matmul_s(4 * b * s * s * q / t),
        proj=gpu.matmul_s(2 * b * s * q * h / t),
        up=gpu.matmul_s(2 * b * s * h * f * (2 if model.gated_mlp else 1) / t),
        act=gpu.memory_s(b * s * f / t * 2 * (3 if model.gated_mlp else 2)),
        down=gpu.matmul_s(2 * b * s * f * h / t),
    )


def _tp_comms(par: Parallelism, size: int) -> tuple[Comm, Comm, Comm, Comm]:
    """(fwd_in, fwd_out, bwd_out, bwd_in): all-gather / reduce-scatter under SP, else all-reduces."""
    none: Comm = (None, 0)
    if par.tp <= 1:
        return none, none, none, none
    if par.sp:
        return (ALLGATHER, size), (REDUCESCATTER, size), (ALLGATHER, size), (REDUCESCATTER, size)
    return none, (ALLREDUCE, size), none, (ALLREDUCE, size)


def _transformer_layer(model: ModelConfig, par: Parallelism, kn: _Kernels, comms) -> list[tuple[Layer, int]]:
    """One transformer layer's rows with the parameters whose gradients each produces."""
    h, t, f = model.hidden, par.tp, model.ffn
    k = h // model.heads
    q, kvd = k * model.heads, k * model.kv
    fwd_in, fwd_out, bwd_out, bwd_in = comms
    lp = layer_params(model, t)
    la = h * (q + 2 * kvd) // t + q * h // t
    if par.sp:
        # Column-parallel input all-gather and row-parallel output reduce-scatter.
        return [
            (_layer("attention_column", _ns(kn.norm + kn.qkv + kn.core), fwd_in, _ns(kn.qkv + 2.5 * kn.core + kn.norm),
                    bwd_in, _ns(kn.qkv)), la - q * h // t),
            (_layer("attention_row", _ns(kn.proj), fwd_out, _ns(kn.proj), bwd_out, _ns(kn.proj)), q * h // t),
            (_layer("mlp_column", _ns(kn.norm + kn.up + kn.act), fwd_in, _ns(kn.up + kn.act + kn.norm), bwd_in,
                    _ns(kn.up)), lp - la - f * h // t),
            (_layer("mlp_row", _ns(kn.down), fwd_out, _ns(kn.down), bwd_out, _ns(kn.down)), f * h // t),
        ]  # fmt: skip
    attn_f, attn_ig = kn.norm + kn.qkv + kn.core + kn.proj, kn.qkv + 2.5 * kn.core + kn.proj + kn.norm
    mlp_f, mlp_ig = kn.norm + kn.up + kn.act + kn.down, kn.up + kn.act + kn.down + kn.norm
    return [
        (_layer("attention", _ns(attn_f), fwd_out, _ns(attn_ig), bwd_in, _ns(kn.qkv + kn.proj)), la),
        (_layer("mlp", _ns(mlp_f), fwd_out, _ns(mlp_ig), bwd_in, _ns(kn.up + kn.down)), lp - la),
    ]


def _micro_batch(model: ModelConfig, par: Parallelism, gpu: GpuCompute, shape: StageShape) -> list[tuple[Layer, int]]:
    """Rows of one micro-batch with the parameters whose gradients each row produces."""
    b, s, h, t = par.mbs, par.seq, model.hidden, par.tp
    v = padded_vocab(model.vocab, t)
    kn = _kernels(model, par, gpu)
    comms = _tp_comms(par, 2 * b * s * h)  # one bf16 activation, whole (SimAI's size convention for AG/RS too)
    fwd_in, fwd_out, _bwd_out, bwd_in = comms
    out: list[tuple[Layer, int]] = []
    if shape.first:
        emb_params = v * h // t + (s * h if model.position_embeddings else 0)
        mem = _ns(gpu.memory_s(b * s * h * 2 * 2))
        out.append((_layer("embedding", mem, fwd_out, 1, (None, 0), mem), emb_params))
    for _ in range(shape.layers):
        out += _transformer_layer(model, par, kn, comms)
    if shape.last:
        logits = gpu.matmul_s(2 * b * s * h * v / t)
        ce = gpu.memory_s(b * s * v / t * 4 * 2)
        out_params = 0 if (model.tied_embeddings and par.pp == 1) else v * h // t
        row = _layer(
            "output_layer", _ns(kn.norm + logits + ce), fwd_in, _ns(logits + ce + kn.norm), bwd_in, _ns(logits)
        )
        out.append((row, out_params))
        if t > 1:  # vocab-parallel cross entropy: max, sum of exponentials, target logit (fp32)
            for i in range(1, 4):
                fwd = Phase(1, ALLREDUCE, TP, 4 * b * s, DEFAULT_CLASS)
                out.append((Layer(f"cross_entropy{i}", fwd, Phase(1, traffic=ACTIVATION_GRAD), Phase(1)), 0))
    return out


def _buckets(body: list[tuple[Layer, int]], par: Parallelism) -> dict[int, Collective]:
    """DP gradient buckets of max(40M, 1M x dp) parameters in fp32, filled in backward order; the
    remainder goes with the first layer."""
    if par.dp <= 1:
        return {}
    bucket = max(40_000_000, 1_000_000 * par.dp)
    op = REDUCESCATTER if par.distributed_optimizer else ALLREDUCE
    sizes: dict[int, int] = {}
    pending = 0
    for i in range(len(body) - 1, -1, -1):
        pending += body[i][1]
        if pending >= bucket:
            sizes[i] = 4 * pending
            pending = 0
    if pending:
        sizes[0] = sizes.get(0, 0) + 4 * pending
    return {i: Collective(op, DP, n, GRADIENT) for i, n in sizes.items()}


def _stage_program(model: ModelConfig, par: Parallelism, gpu: GpuCompute, shape: StageShape) -> StageProgram:
    body = _micro_batch(model, par, gpu, shape)
    total_params = stage_params(model, par, shape)
    shard = total_params / par.dp if par.distributed_optimizer else total_params
    gather = None
    if par.dp > 1 and par.distributed_optimizer:
        gather = Collective(ALLGATHER, DP, 2 * total_params, PARAMETER)
    pp_bytes = 2 * par.mbs * par.seq * model.hidden // par.tp if par.pp > 1 else 0
    return StageProgram(
        layers=[x for x, _p in body],
        buckets=_buckets(body, par),
        optimizer_ns=_ns(gpu.memory_s(shard * ADAM_BYTES_PER_PARAM)),
        param_allgather=gather,
        send_fwd=Send(pp_bytes, ACTIVATION),
        send_bwd=Send(pp_bytes, ACTIVATION_GRAD),
        params=total_params,
    )


def _unroll(
    prog: StageProgram, model: ModelConfig, par: Parallelism, gpu: GpuCompute, shape: StageShape
) -> LayerProgram:
    """The stage as SimAI's layer list: the parameter all-gather and the optimizer step (which waits
    for the gradients) first, then every micro-batch. SimAI-layout backward runs rows last -> first,
    so micro-batch 0's copy finishes last: its rows carry the DP gradient buckets."""
    layers: list[Layer] = []
    if prog.param_allgather is not None:
        g = prog.param_allgather
        layers.append(Layer("param_allgather", Phase(1), Phase(1), Phase(1, g.op, g.group, g.bytes, g.traffic)))
    layers.append(Layer("optimizer_step", Phase(1), Phase(prog.optimizer_ns), Phase(1), barrier=True))
    for i, x in enumerate(prog.layers):
        c = prog.buckets.get(i)
        layers.append(
            x if c is None else replace(x, wg=replace(x.wg, op=c.op, group=c.group, bytes=c.bytes, traffic=c.traffic))
        )
    for _ in range(par.microbatches - 1):
        layers.extend(prog.layers)
    return LayerProgram(
        tp=par.tp, ep=par.ep, pp=par.pp, vpp=shape.layers, ga=par.microbatches, all_gpus=par.world,
        layers=layers, pp_bytes=prog.send_fwd.bytes, source="megatron",
    )  # fmt: skip


__all__ = ["build_megatron", "stage_layers", "layer_params", "stage_params"]
