"""netsim's own workloads: what Megatron-LM (and FSDP trainers) really send and compute, per pipeline stage.

Unlike AICB (aicb.py) this counts grouped-query attention, SwiGLU's three matrices, causal flash
attention, the embedding only on the first stage and the output layer only on the last, TP
collectives in backward as well as forward, and DP gradient buckets that overlap backward. It emits
typed programs (program.py): a StageProgram per pipeline stage, or per model chunk under the
interleaved schedule (stages[c * pp + i] is rank i's chunk c), and per rank the unrolled
LayerProgram (SimAI's layout) for the closed-form executor and export.

Modelling choices (each is a documented approximation; README "Training options"):
- GEMM time from its shape (compute.py `gemm_s`); dgrad and wgrad are GEMMs of the forward's size;
  FP8 runs the linear layers at the FP8 peak plus Transformer Engine's casts, and keeps attention
  and the output layer in BF16;
- flash attention with a causal mask: half of the s^2 score FLOPs, backward 2.5 x forward (it
  recomputes the scores, so selective recompute adds no time, only saves memory);
- full recompute re-runs each transformer layer's forward, TP collectives included, before its
  backward (Megatron's `--recompute-granularity full --recompute-method uniform`);
- selective-op is torchtitan's op-level selective activation checkpointing: every matmul output
  is saved except every second one of each block in forward order (wq, wk, wv, wo, w1, w3, w2 for
  SwiGLU, so wk, wo and w3 are recomputed; wk, wo and w2 without gating), whose GEMMs re-run before
  the layer's backward; saved collective outputs are not re-sent;
- context parallelism: each rank holds s/cp tokens; K and V of the whole sequence are all-gathered
  in forward and again, with the dK/dV reduce-scatter, in backward (an all-reduce's bytes),
  pipelined with the attention kernel as Transformer Engine's ring attention does;
- gradients reduce in `grad_reduce_dtype`, bucketed at Megatron's default DDP bucket size
  max(40M, 1M x dp) parameters, reduce-scattered (distributed optimizer) or all-reduced; FSDP
  reduce-scatters per transformer layer and all-gathers each layer's bf16 parameters before its
  forward (every micro-batch, and before its backward too, unless no-reshard-after-forward, where
  parameters stay gathered through the iteration);
- pipeline sends carry one TP shard of the activation (2*b*s*h/t bytes: scatter-gather / SP).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from netsim.config.model import ModelConfig
from netsim.errors import InputError
from netsim.workload.compute import GpuCompute
from netsim.workload.parallel import Parallelism, padded_vocab
from netsim.workload.program import (
    ACTIVATION,
    ACTIVATION_GRAD,
    ALLGATHER,
    ALLREDUCE,
    ALLTOALL,
    CP,
    DEFAULT_CLASS,
    DP,
    DP_EP,
    EP,
    ETP,
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
FP8_CAST_BYTES = 3  # Transformer Engine casts a GEMM input: read bf16 (2 B), write fp8 (1 B)
# Megatron's vocab-parallel cross entropy, bytes per logit: upcast to fp32 (read 2, write 4), max (4),
# subtract (4 + 4), exp (4 + 4), sum (4), normalise and keep the softmax for backward (4 + 4 - 4 reused);
# backward: softmax minus one-hot (4 + 4) and the bf16 gradient (2).
CE_FWD_BYTES = 34
CE_BWD_BYTES = 10
# PyTorch eager (torchtitan without torch.compile) runs every elementwise op as its own kernel; bytes
# per element, against the fused kernels above (norm read + write 4, bias-dropout-add 7, activation 6):
# RMSNorm as torchtitan writes it: x.float() (read 2, write 4), pow(2) (4 + 4), mean (4), x * rsqrt
# (4 + 4), type_as (4 + 2), * weight (2 + 2). An eager LayerNorm is one ATen kernel (as fused); the
# residual add is counted as the fused bias-dropout-add.
EAGER_RMSNORM_BYTES = 36
EAGER_ROPE_BYTES = 20  # per q / k element: float() (2 + 4), complex multiply (4 + 4), type_as (4 + 2)
EAGER_SWIGLU_BYTES = 10  # silu(w1 x) (2 + 2), then * w3 x (4 + 2)


@dataclass(frozen=True)
class StageShape:
    layers: int
    first: bool
    last: bool


def stage_layers(layers: int, stages: int, first_last_fewer: bool = False) -> list[int]:
    """Layers per (virtual) stage. Even split; when uneven, the first and last stages hold fewer
    (as Llama 3 405B did). `first_last_fewer`: the first and last hold one layer fewer than the rest
    (Megatron's account for the embedding and the output layer)."""
    if first_last_fewer and stages > 1 and (layers + 2) % stages == 0:
        per = (layers + 2) // stages
        return [per - 1] + [per] * (stages - 2) + [per - 1]
    base, extra = divmod(layers, stages)
    if extra == 0:
        return [base] * stages
    counts = [base + 1] * stages
    deficit = stages * (base + 1) - layers
    order = [0, stages - 1] + list(range(1, stages - 1))
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
    if model.experts:  # the router and any shared expert; the routed experts' own: expert_params
        return attn + h * model.experts + shared_expert_params(model, tp) + norms
    return attn + mlp + norms


def shared_expert_params(model: ModelConfig, tp: int) -> int:
    """Parameters of a MoE layer's shared expert held by one TP rank (TP-sharded like a dense MLP)."""
    return (3 if model.gated_mlp else 2) * model.hidden * (model.shared_expert_ffn or 0) // tp


def expert_params(model: ModelConfig, par: Parallelism) -> int:
    """Parameters of the experts one rank holds in one MoE layer (experts / ep of them, sharded
    over expert TP)."""
    if not model.experts:
        return 0
    f = model.moe_ffn_hidden or model.ffn
    return (model.experts // par.ep) * (3 if model.gated_mlp else 2) * model.hidden * f // par.etp


def _embedding_params(model: ModelConfig, par: Parallelism) -> int:
    v = padded_vocab(model.vocab, par.tp)
    return v * model.hidden // par.tp + (par.seq * model.hidden if model.position_embeddings else 0)


def _output_params(model: ModelConfig, par: Parallelism) -> int:
    v = padded_vocab(model.vocab, par.tp)
    return 0 if (model.tied_embeddings and par.pp == 1) else v * model.hidden // par.tp


def stage_params(model: ModelConfig, par: Parallelism, shape: StageShape) -> int:
    p = shape.layers * (layer_params(model, par.tp) + expert_params(model, par))
    if shape.first:
        p += _embedding_params(model, par)
    if shape.last:
        p += model.hidden * (2 if not model.gated_mlp else 1) + _output_params(model, par)  # final norm, output
    return p


def _ns(seconds: float) -> int:
    return max(1, round(seconds * 1e9))


def build_megatron(model: ModelConfig, par: Parallelism, gpu: GpuCompute) -> StagedProgram:
    """One program per pipeline stage, or per model chunk under the interleaved schedule (equal
    shapes share one object), and each rank's unrolled layer list."""
    v = par.vpp
    counts = stage_layers(model.layers, par.pp * v, par.first_last_fewer)
    cache: dict[StageShape, StageProgram] = {}
    stages = []
    for vs, n in enumerate(counts):
        shape = StageShape(layers=n, first=vs == 0, last=vs == par.pp * v - 1)
        if shape not in cache:
            cache[shape] = _stage_program(model, par, gpu, shape)
        stages.append(cache[shape])
    unrolled = [_unroll([stages[c * par.pp + i] for c in range(v)], par, counts[i]) for i in range(par.pp)]
    return StagedProgram(stages=stages, unrolled=unrolled, model_name=model.name, chunks=v,
                         memory=memory_estimate(model, par))  # fmt: skip


def memory_estimate(model: ModelConfig, par: Parallelism) -> dict:
    """Per-GPU bytes on the rank that holds the most: activations at the 1F1B peak and model state."""
    counts = stage_layers(model.layers, par.pp * par.vpp, par.first_last_fewer)
    return {"activation_bytes_per_gpu": activation_bytes(model, par, counts), "recompute": par.recompute,
            "model_state_bytes_per_gpu": model_state_bytes(model, par, counts)}  # fmt: skip


def activation_bytes(model: ModelConfig, par: Parallelism, counts: list[int]) -> int:
    """Activations the first pipeline rank holds at the 1F1B peak (Korthikanti et al. 2022, eq. for
    s b h per layer; flash attention stores no s^2 scores): 34 sbh/t with SP (sequence-sharded norms
    and dropout), 10 sbh + 24 sbh/t without, 2 sbh (the layer input) under full recompute, plus
    then the one layer whose forward is being re-run."""
    s, b, h, t = par.seq // par.cp, par.mbs, model.hidden, par.tp
    stored = 34 * s * b * h / t if par.sp else (10 + 24 / t) * s * b * h
    per_layer = 2 * s * b * h if par.recompute == "full" else stored
    layers = sum(counts[c * par.pp] for c in range(par.vpp))
    in_flight = (
        min(par.microbatches, par.pp)
        if par.vpp == 1
        else min(par.microbatches * par.vpp, par.pp * par.vpp + par.pp - 1) / par.vpp
    )
    return int(per_layer * layers * in_flight + (stored if par.recompute == "full" else 0))


def model_state_bytes(model: ModelConfig, par: Parallelism, counts: list[int]) -> int:
    """Weights, gradients and Adam states on the pipeline rank that holds the most parameters:
    bf16 weights (2 B; FP8 keeps them too), gradients in grad_reduce_dtype (Megatron's main_grad),
    fp32 master weights, m and v (12 B) sharded over DP by the distributed optimizer / ZeRO-1, and
    all three sharded under FSDP (Rajbhandari et al., ZeRO, section 3)."""
    per_stage = [stage_params(model, par, StageShape(n, vs == 0, vs == len(counts) - 1)) for vs, n in enumerate(counts)]
    params = max(sum(per_stage[c * par.pp + i] for c in range(par.vpp)) for i in range(par.pp))
    grad = 4 if par.grad_reduce_dtype == "fp32" else 2
    if par.sharding.startswith("fsdp"):
        return params * (2 + grad + 12) // par.dp
    optimizer = 12 if par.sharding == "none" else 12 / par.dp
    return int(params * (2 + grad + optimizer))


def _row(name: str, fwd: Phase, ig: Phase, wg_ns: int) -> Layer:
    return Layer(name, fwd, ig, Phase(wg_ns, traffic=GRADIENT))


def _tp_phase(ns: float, comm: Comm, traffic: str, par: Parallelism) -> Phase:
    if comm[0] is None:
        return Phase(_ns(ns), traffic=traffic)
    chunks = min(par.tp, 8) if par.tp_comm_overlap else 0
    return Phase(_ns(ns), comm[0], TP, comm[1], traffic, overlap_chunks=chunks)


@dataclass(frozen=True)
class _Kernels:
    """Forward, input-gradient and weight-gradient compute of one layer and micro-batch (seconds)."""

    gpu: GpuCompute
    norm: float  # one norm plus one bias-dropout-add, forward
    qkv: float
    core_fwd: float
    core_bwd: float
    proj: float
    up: float
    act: float
    down: float
    cast_qkv: float  # FP8 input casts (0 in bf16/fp16)
    cast_proj: float
    cast_up: float
    cast_down: float
    eager_attn: float = 0.0  # extra forward seconds of unfused elementwise ops (kernels="eager")
    eager_mlp: float = 0.0


def _eager_bytes(model: ModelConfig, par: Parallelism, tokens: float, elem_h: float) -> tuple[float, float]:
    """HBM bytes per layer forward that eager PyTorch moves beyond the fused kernels: (attention side:
    its RMSNorm, RoPE on q and k, the GQA K/V repeat; MLP side: its RMSNorm, SwiGLU). Backward
    moves twice as much, as the fused kernels' backward does here."""
    k = model.hidden // model.heads
    q, kvd, t = k * model.heads / par.tp, k * model.kv / par.tp, par.tp
    norm = EAGER_RMSNORM_BYTES - 4 if model.gated_mlp else 0.0  # Llama-family (gated MLP) models use RMSNorm
    rope = 0.0 if model.position_embeddings else EAGER_ROPE_BYTES * (q + kvd)
    # torchtitan's repeat_kv materialises K and V at the query heads' width: read kvd, write q, each.
    repeat = 2 * (2 * kvd + 2 * q) if model.kv < model.heads else 0.0
    swiglu = (EAGER_SWIGLU_BYTES - 6) * model.ffn / t if model.gated_mlp else 0.0
    return elem_h * norm + tokens * (rope + repeat), elem_h * norm + tokens * swiglu


def _kernels(model: ModelConfig, par: Parallelism, gpu: GpuCompute) -> _Kernels:
    b, t, h = par.mbs, par.tp, model.hidden
    tokens = b * par.seq // par.cp
    k = h // model.heads
    q, kvd, f = k * model.heads, k * model.kv, model.ffn
    prec = "fp8" if par.precision == "fp8" else "bf16"
    # Elementwise work runs on the rank's sequence shard under SP, on the whole sequence without.
    elem_h = tokens * h / (t if par.sp else 1)
    core = 4 * b * (par.seq // par.cp) * par.seq * q / t * 0.5  # causal: half the scores
    cast = (lambda n: gpu.stream_s(FP8_CAST_BYTES * tokens * n)) if prec == "fp8" else (lambda n: 0.0)
    up, act, down = _mlp_s(gpu, model, tokens, f, t, prec)
    attn_x, mlp_x = _eager_bytes(model, par, tokens, elem_h) if par.kernels == "eager" else (0.0, 0.0)
    return _Kernels(
        gpu=gpu,
        norm=gpu.stream_s(elem_h * (2 + 2 + 7)),  # norm read + write, bias-dropout-add read 2 write 1 + mask
        qkv=gpu.gemm_s(tokens, (q + 2 * kvd) / t, h, prec),
        core_fwd=gpu.attention_s(core),
        core_bwd=gpu.attention_s(2.5 * core),
        proj=gpu.gemm_s(tokens, h, q / t, prec),
        up=up, act=act, down=down,
        cast_qkv=cast(h), cast_proj=cast(q / t), cast_up=cast(h), cast_down=cast(f / t),
        eager_attn=gpu.stream_s(attn_x), eager_mlp=gpu.stream_s(mlp_x),
    )  # fmt: skip


def _mlp_s(
    gpu: GpuCompute, model: ModelConfig, tokens: float, f: int, t: int, prec: str, count: int = 1
) -> tuple[float, float, float]:
    """Seconds of an MLP of intermediate size f (TP-sharded over t) on `tokens` rows, split over
    `count` equal GEMMs (a rank's local experts): the up (and gate) projection, the activation's
    memory traffic, the down projection. Dense layers, routed experts and shared experts share it."""
    m = tokens / count if count > 1 else tokens
    up = gpu.gemm_s(m, (2 if model.gated_mlp else 1) * f / t, model.hidden, prec, count=count)
    act = gpu.stream_s(tokens * f / t * 2 * (3 if model.gated_mlp else 2))
    down = gpu.gemm_s(m, model.hidden, f / t, prec, count=count)
    return up, act, down


def _tp_comms(par: Parallelism, size: int) -> tuple[Comm, Comm, Comm, Comm]:
    """(fwd_in, fwd_out, bwd_out, bwd_in): all-gather / reduce-scatter under SP, else all-reduces."""
    none: Comm = (None, 0)
    if par.tp <= 1:
        return none, none, none, none
    if par.sp:
        return (ALLGATHER, size), (REDUCESCATTER, size), (ALLGATHER, size), (REDUCESCATTER, size)
    return none, (ALLREDUCE, size), none, (ALLREDUCE, size)


def _core_row(model: ModelConfig, par: Parallelism, kn: _Kernels) -> Layer:
    """The attention kernel; under CP with its K/V exchange pipelined over the CP ring's steps."""
    if par.cp <= 1:
        return _row("core_attention", Phase(_ns(kn.core_fwd)), Phase(_ns(kn.core_bwd)), 1)
    kv = 2 * 2 * par.mbs * par.seq * (model.hidden // model.heads) * model.kv // par.tp  # K and V, bf16
    fwd = Phase(_ns(kn.core_fwd), ALLGATHER, CP, kv, ACTIVATION, overlap_chunks=par.cp)
    ig = Phase(_ns(kn.core_bwd), ALLREDUCE, CP, kv, ACTIVATION_GRAD, overlap_chunks=par.cp)
    return _row("core_attention", fwd, ig, 1)


def _transformer_layer(model: ModelConfig, par: Parallelism, kn: _Kernels, comms) -> list[tuple[Layer, int]]:
    """One transformer layer's rows with the parameters whose gradients each produces; under full
    recompute, rows that re-run the forward (TP collectives included) before the layer's backward."""
    h, t, f = model.hidden, par.tp, model.ffn
    q = (h // model.heads) * model.heads
    fwd_in, fwd_out, bwd_out, bwd_in = comms
    lp = layer_params(model, t)
    mlp_norm = h if model.gated_mlp else 2 * h
    mlp = (
        h * model.experts + shared_expert_params(model, t)
        if model.experts
        else (3 if model.gated_mlp else 2) * h * f // t
    )
    la = lp - mlp - mlp_norm  # attention and its norm: the rest belongs to the MLP rows
    attn_col = kn.norm + kn.eager_attn + kn.qkv + kn.cast_qkv
    rows = [
        (_row("attention_column", _tp_phase(attn_col, fwd_in, ACTIVATION, par),
              _tp_phase(kn.qkv + 2 * (kn.norm + kn.eager_attn), bwd_in, ACTIVATION_GRAD, par), _ns(kn.qkv)),
         la - q * h // t),
        (_core_row(model, par, kn), 0),
        (_row("attention_row", _tp_phase(kn.proj + kn.cast_proj, fwd_out, ACTIVATION, par),
              _tp_phase(kn.proj + kn.cast_proj, bwd_out, ACTIVATION_GRAD, par), _ns(kn.proj)), q * h // t),
    ]  # fmt: skip
    if model.experts:
        if par.kernels == "eager":
            raise InputError("eager kernels are modelled for dense models; use kernels: fused", field="kernels")
        rows += _moe_rows(model, par, kn, comms, h * model.experts + mlp_norm)
    else:
        rows += [
            (_row("mlp_column", _tp_phase(kn.norm + kn.eager_mlp + kn.up + kn.act + kn.cast_up, fwd_in, ACTIVATION,
                                          par),
                  _tp_phase(kn.up + 2 * (kn.act + kn.norm + kn.eager_mlp), bwd_in, ACTIVATION_GRAD, par), _ns(kn.up)),
             lp - la - f * h // t),
            (_row("mlp_row", _tp_phase(kn.down + kn.cast_down, fwd_out, ACTIVATION, par),
                  _tp_phase(kn.down + kn.cast_down, bwd_out, ACTIVATION_GRAD, par), _ns(kn.down)), f * h // t),
        ]  # fmt: skip
    if par.recompute == "selective-op":
        if model.experts:
            raise InputError("selective-op recompute is modelled for dense models; use none, selective or full",
                             field="recompute")  # fmt: skip
        return rows + [(Layer("op recompute", Phase(0), Phase(_ns(_op_recompute_s(model, kn))), Phase(0)), 0)]
    if par.recompute != "full":
        return rows
    # Backward visits rows last to first: these run the layer's forward again, in forward order.
    redo = [(Layer(f"{x.name} recompute", Phase(0), replace(x.fwd, traffic=ACTIVATION), Phase(0)), 0)
            for x, _p in reversed(rows)]  # fmt: skip
    return rows + redo


def _op_recompute_s(model: ModelConfig, kn: _Kernels) -> float:
    """Seconds torchtitan's op-level SAC recomputes in one layer: the GEMMs wk (its share of the
    fused QKV GEMM), wo, and w3 (half the fused gate/up GEMM) or w2 without a gated MLP, and every
    elementwise op's forward (its policy saves only matmuls, attention and collectives)."""
    k = model.hidden // model.heads
    q, kvd = k * model.heads, k * model.kv
    mlp = kn.up / 2 if model.gated_mlp else kn.down
    elementwise = 2 * kn.norm + kn.act + kn.eager_attn + kn.eager_mlp
    return kn.qkv * kvd / (q + 2 * kvd) + kn.proj + mlp + elementwise


def _moe_rows(model: ModelConfig, par: Parallelism, kn: _Kernels, comms, router_params: int) -> list:
    """An MoE layer as Megatron-Core's all-to-all token dispatcher runs it (token_dispatcher.py:
    A2A(EP), AG(expert TP), grouped expert GEMMs, RS(expert TP), A2A(EP); the same in reverse in
    backward). Tokens stay in the sequence-parallel layout: a rank routes its own mbs x seq /
    (cp tp) tokens and sends tokens x hidden x 2 B x top-k (x capacity factor) through each
    all-to-all, (ep-1)/ep of it to other ranks; the busiest rank's share grows with moe_imbalance.
    A shared expert gathers and scatters its input over the attention TP group itself."""
    fwd_in, fwd_out, bwd_out, bwd_in = comms
    h, etp = model.hidden, par.etp
    tokens = _moe_tokens(par)
    f = model.moe_ffn_hidden or model.ffn
    load = model.top_k * (model.capacity_factor or 1.0) * (1 + model.moe_imbalance)
    a2a = int(tokens * h * 2 * load)
    gpu, prec = kn.gpu, "fp8" if par.precision == "fp8" else "bf16"
    # After the expert-TP all-gather a rank holds its ETP group's routed tokens, for f / etp columns.
    up, act, down = _mlp_s(gpu, model, tokens * etp * load, f, etp, prec, count=model.experts // par.ep)
    router = gpu.gemm_s(tokens, model.experts, h, "bf16") + gpu.stream_s(tokens * model.experts * 4 * 3)
    shared = _shared_expert_row(model, par, kn, fwd_out, bwd_out)
    none = (None, 0)
    rows = [
        (_row("moe_router", _tp_phase(kn.norm + router, fwd_in if shared else none, ACTIVATION, par),
              _tp_phase(2 * kn.norm + router, bwd_in if shared else none, ACTIVATION_GRAD, par), _ns(router)),
         router_params),
        *([(shared, shared_expert_params(model, par.tp))] if shared else []),
    ]  # fmt: skip
    if par.ep > 1:
        rows.append((_row("moe_dispatch", Phase(1, ALLTOALL, EP, a2a, ACTIVATION),
                          Phase(1, ALLTOALL, EP, a2a, ACTIVATION_GRAD), 1), 0))  # fmt: skip
    else:
        rows.append((_row("moe_permute", Phase(1), Phase(1), 1), 0))
    etp_group = TP if etp == par.tp else ETP  # with etp = tp the expert-TP groups are the TP groups
    if etp > 1:
        rows.append((_row("moe_expert_tp_gather", Phase(1, ALLGATHER, etp_group, a2a * etp, ACTIVATION),
                          Phase(1, REDUCESCATTER, etp_group, a2a * etp, ACTIVATION_GRAD), 1), 0))  # fmt: skip
    rows.append((_row("moe_experts", Phase(_ns(up + act + down)), Phase(_ns(up + 2 * act + down)), _ns(up + down)), 0))
    if etp > 1:
        rows.append((_row("moe_expert_tp_scatter", Phase(1, REDUCESCATTER, etp_group, a2a * etp, ACTIVATION),
                          Phase(1, ALLGATHER, etp_group, a2a * etp, ACTIVATION_GRAD), 1), 0))  # fmt: skip
    if par.ep > 1:
        rows.append((_row("moe_combine", Phase(1, ALLTOALL, EP, a2a, ACTIVATION),
                          Phase(1, ALLTOALL, EP, a2a, ACTIVATION_GRAD), 1), 0))  # fmt: skip
    return rows


def _moe_tokens(par: Parallelism) -> int:
    """Tokens one rank routes: its sequence-parallel share of the micro-batch."""
    return par.mbs * par.seq // par.cp // (par.tp if par.sp else 1)


def _shared_expert_row(
    model: ModelConfig, par: Parallelism, kn: _Kernels, fwd_out: Comm, bwd_out: Comm
) -> Layer | None:
    """The shared expert: a dense MLP on every token of the TP group, computed in line with the
    routed path (Megatron-Core without --moe-shared-expert-overlap), TP-sharded, its input
    all-gathered (on the router row) and its output reduce-scattered like a dense MLP's."""
    if not model.shared_expert_ffn:
        return None
    tokens, prec = par.mbs * par.seq // par.cp, "fp8" if par.precision == "fp8" else "bf16"
    up, act, down = _mlp_s(kn.gpu, model, tokens, model.shared_expert_ffn, par.tp, prec)
    return _row("moe_shared_expert", _tp_phase(up + act + down, fwd_out, ACTIVATION, par),
                _tp_phase(up + 2 * act + down, bwd_out, ACTIVATION_GRAD, par), _ns(up + down))  # fmt: skip


def _micro_batch(model: ModelConfig, par: Parallelism, gpu: GpuCompute, shape: StageShape) -> list[tuple[Layer, int]]:
    """Rows of one micro-batch with the parameters whose gradients each row produces."""
    b, h, t = par.mbs, model.hidden, par.tp
    tokens = b * par.seq // par.cp
    v = padded_vocab(model.vocab, t)
    kn = _kernels(model, par, gpu)
    comms = _tp_comms(par, 2 * tokens * h)  # one bf16 activation, whole (SimAI's size convention for AG/RS too)
    fwd_in, fwd_out, _bwd_out, bwd_in = comms
    out: list[tuple[Layer, int]] = []
    if shape.first:
        mem = _ns(gpu.stream_s(tokens * h * 2 * 2))
        out.append((_row("embedding", Phase(mem, *_op(fwd_out), ACTIVATION), Phase(1, traffic=ACTIVATION_GRAD), mem),
                    _embedding_params(model, par)))  # fmt: skip
    for _ in range(shape.layers):
        out += _transformer_layer(model, par, kn, comms)
    if shape.last:
        logits = gpu.gemm_s(tokens, v / t, h, "bf16")
        elems = tokens * v / t
        norm = gpu.stream_s(tokens * h / (t if par.sp else 1) * 4)
        row = _row("output_layer", Phase(_ns(norm + logits + gpu.stream_s(elems * CE_FWD_BYTES)), *_op(fwd_in),
                                         ACTIVATION),
                   Phase(_ns(logits + gpu.stream_s(elems * CE_BWD_BYTES) + norm), *_op(bwd_in), ACTIVATION_GRAD),
                   _ns(logits))  # fmt: skip
        out.append((row, _output_params(model, par) + h * (1 if model.gated_mlp else 2)))
        if t > 1:  # vocab-parallel cross entropy: max, sum of exponentials, target logit (fp32)
            for i in range(1, 4):
                fwd = Phase(1, ALLREDUCE, TP, 4 * tokens, DEFAULT_CLASS)
                out.append((Layer(f"cross_entropy{i}", fwd, Phase(1, traffic=ACTIVATION_GRAD), Phase(1)), 0))
    return out


def _op(c: Comm) -> tuple:
    return (c[0], TP if c[0] else "NONE", c[1])


def _buckets(body: list[tuple[Layer, int]], par: Parallelism, expert_bytes: int = 0) -> dict[int, Collective]:
    """DP gradient buckets of max(40M, 1M x dp) parameters, filled in backward order; the remainder
    goes with the first layer. FSDP: one reduce-scatter per transformer layer (its wrapping unit)."""
    dp = par.dp * par.cp  # CP ranks hold the same parameters: Megatron reduces over DP x CP
    if dp <= 1:
        return {}
    bucket = max(40_000_000, 1_000_000 * dp)
    op = REDUCESCATTER if (par.distributed_optimizer or par.fsdp) else ALLREDUCE
    starts = _unit_starts(body) if par.fsdp else None
    sizes: dict[int, int] = {}
    pending = 0
    for i in range(len(body) - 1, -1, -1):
        pending += body[i][1]
        if (starts is None and pending >= bucket) or (starts is not None and i in starts and pending):
            sizes[i] = par.grad_bytes * pending
            pending = 0
    if pending:
        sizes[0] = sizes.get(0, 0) + par.grad_bytes * pending
    out = {i: Collective(op, DP, n, GRADIENT) for i, n in sizes.items()}
    if expert_bytes and par.edp > 1:
        # Experts' gradients reduce over the expert-data-parallel group (tp cp dp / (etp ep) ranks).
        for i, (x, _p) in enumerate(body):
            if x.name == "moe_experts":
                out[i] = Collective(op, DP_EP, par.grad_bytes * expert_bytes, GRADIENT)
    return out


def _unit_starts(body: list[tuple[Layer, int]]) -> set[int]:
    """Rows that open an FSDP unit: each transformer layer, the embedding and the output layer."""
    return {i for i, (x, _p) in enumerate(body) if x.name in ("embedding", "attention_column", "output_layer")}


def _gathers(body: list[tuple[Layer, int]]) -> dict[int, Collective]:
    """FSDP's bf16 parameter all-gather of each unit, due before its first row's forward."""
    starts = sorted(_unit_starts(body)) + [len(body)]
    out = {}
    for a, z in zip(starts, starts[1:]):
        params = sum(p for _x, p in body[a:z])
        if params:
            out[a] = Collective(ALLGATHER, DP, 2 * params, PARAMETER)
    return out


def _bucket_gathers(buckets: dict[int, Collective], par: Parallelism) -> dict[int, Collective]:
    """Megatron's overlapped parameter all-gather: each gradient bucket's bf16 parameters, due
    before the forward of the bucket's first row (a bucket at row i holds rows i up to the next)."""
    return {i: Collective(ALLGATHER, c.group, c.bytes // par.grad_bytes * 2, PARAMETER) for i, c in buckets.items()}


def _stage_program(model: ModelConfig, par: Parallelism, gpu: GpuCompute, shape: StageShape) -> StageProgram:
    body = _micro_batch(model, par, gpu, shape)
    total_params = stage_params(model, par, shape)
    dp = par.dp * par.cp
    sharded = par.distributed_optimizer or par.fsdp
    shard = total_params / dp if sharded else total_params
    gather, gathers = None, {}
    buckets = _buckets(body, par, expert_params(model, par))
    if dp > 1 and par.fsdp:
        gathers = _gathers(body)
    elif dp > 1 and par.distributed_optimizer and par.overlap_param_gather:
        gathers = _bucket_gathers(buckets, par)  # each bucket gathered before its first forward
    elif dp > 1 and par.distributed_optimizer:
        gather = Collective(ALLGATHER, DP, 2 * total_params, PARAMETER)
    pp_bytes = 2 * par.mbs * (par.seq // par.cp) * model.hidden // par.tp if par.pp > 1 else 0
    return StageProgram(
        layers=[x for x, _p in body],
        buckets=buckets,
        optimizer_ns=_ns(gpu.memory_s(shard * ADAM_BYTES_PER_PARAM)),
        param_allgather=gather,
        send_fwd=Send(pp_bytes, ACTIVATION),
        send_bwd=Send(pp_bytes, ACTIVATION_GRAD),
        params=total_params,
        gathers=gathers,
        regather=par.sharding == "fsdp",
    )


def _unroll(chunks: list[StageProgram], par: Parallelism, layers: int) -> LayerProgram:
    """A rank's chunks as SimAI's layer list: the parameter all-gather and the optimizer step (which
    waits for the gradients) first, then every micro-batch. SimAI-layout backward runs rows last ->
    first, so micro-batch 0's copy finishes last: its rows carry the DP gradient buckets."""
    out: list[Layer] = []
    for prog in chunks:
        if prog.param_allgather is not None:
            g = prog.param_allgather
            out.append(Layer("param_allgather", Phase(1), Phase(1), Phase(1, g.op, g.group, g.bytes, g.traffic)))
    out.append(Layer("optimizer_step", Phase(1), Phase(sum(p.optimizer_ns for p in chunks)), Phase(1), barrier=True))
    for prog in chunks:
        for i, x in enumerate(prog.layers):
            c = prog.buckets.get(i)
            out.append(
                x if c is None else replace(x, wg=replace(x.wg, op=c.op, group=c.group, bytes=c.bytes,
                                                          traffic=c.traffic))
            )  # fmt: skip
    body = [x for prog in chunks for x in prog.layers]
    for _ in range(par.microbatches - 1):
        out.extend(body)
    return LayerProgram(
        tp=par.tp, ep=par.ep, pp=par.pp, vpp=layers, ga=par.microbatches, all_gpus=par.world,
        layers=out, pp_bytes=chunks[0].send_fwd.bytes, source="megatron",
    )  # fmt: skip


__all__ = ["build_megatron", "stage_layers", "layer_params", "stage_params"]
