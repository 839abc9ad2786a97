"""AICB's SimAI workload generator (Megatron, dense, AIOB path), reproduced.

Spec: reference/aicb_workload_spec.md; section numbers below refer to it. This is netsim's
compatibility mode: it counts parameters the way AICB does (embedding x4, no GQA, a
"layernorm" all-reduce of the whole shard, ...) so one exported file drives both simulators.
netsim's own workloads (megatron.py) count what Megatron really sends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from netsim.config.model import ModelConfig
from netsim.errors import InputError, read_text
from netsim.workload.compute import GpuCompute
from netsim.workload.parallel import Parallelism, padded_vocab
from netsim.workload.program import GRADIENT, PARAMETER
from netsim.workload.rows import Row, Workload


@dataclass(frozen=True)
class AiobTiming:
    """Per-layer times in ns as AICB reads them from an AIOB file (section 5.2)."""

    att: int
    mlp: int
    emb: int
    gf: int
    gb: int


def layers_per_stage(layers: int, pp: int) -> int:
    return layers // pp if pp > 1 else layers


def aicb_param_count(model: ModelConfig, par: Parallelism, add_bias: bool = False) -> int:
    """Section 2: AICB's parameters per TP shard per stage (embedding counted on every stage)."""
    t, h, s = par.tp, model.hidden, par.seq
    k = h // model.heads
    q = k * model.heads
    f = model.ffn
    v = padded_vocab(model.vocab, t)
    B = 1 if add_bias else 0
    for dim, label in ((3 * q, "3 x q"), (q, "q"), (f, "ffn")):
        if dim % t:
            raise InputError(f"{label} = {dim} is not divisible by tp = {t} (AICB asserts this)", field="tp")
    E = 4 * (v // t) * h + s * h
    A = 3 * q * h // t + q * h // t + B * (3 * q // t + h)
    M = 2 * h * f // t + B * (f // t + h)
    Ls = layers_per_stage(model.layers, par.pp)
    if not par.sp:
        return E + Ls * (A + M)
    return E + Ls * (A + M + 2 * h) + h * v // t + B * v // t


def aiob_sections(model: ModelConfig, par: Parallelism, gpu: GpuCompute) -> dict[str, float]:
    """What an AIOB timing file would hold (µs per kernel, forward, one micro-batch), from FLOPs.

    Kernels as AIOB times them with flash attention (section 5.1): matmuls at the GPU's matmul
    rate, normalisation/activation/embedding at its memory rate. Rounded to whole µs like the
    files AIOB writes.
    """
    b, s, h, t = par.mbs, par.seq, model.hidden, par.tp
    q = (h // model.heads) * model.heads
    f = model.ffn
    f1 = 2 * f if model.gated_mlp else f
    act = b * s * h * 2  # bytes of one bf16 activation
    us = lambda sec: round(sec * 1e6)
    p_shard = aicb_param_count(model, par)
    shard = p_shard / par.dp if par.distributed_optimizer else p_shard
    return {
        "Emb": us(gpu.memory_s(act)),
        "layernorm": us(gpu.memory_s(act)),
        "atten_qkv": us(gpu.matmul_s(2 * b * s * h * 3 * q / t)),
        "atten_flash": us(gpu.matmul_s(4 * b * s * s * q / t)),
        "atten_linear": us(gpu.matmul_s(2 * b * s * q * h / t)),
        "layernorm2": us(gpu.memory_s(act)),
        "mlp_linear_1": us(gpu.matmul_s(2 * b * s * h * f1 / t)),
        "mlp_gelu": us(gpu.memory_s(b * s * f / t * 2)),
        "mlp_linear_2": us(gpu.matmul_s(2 * b * s * f * h / t)),
        # Adam step on this rank's fp32 shard: read param, grad, m, v; write param, m, v; + bf16 copy.
        "param_time": us(gpu.memory_s(shard * 30)),
    }


def _timing(entries, recompute: bool) -> AiobTiming:
    """Section 5.2's reading rules over (section, avg µs or None, min µs or None) in file order."""
    att = mlp = gf = gb = 0.0
    other: dict[str, float] = {}
    for section, avg, mn in entries:
        if section == "param_time":  # the only section whose min is used
            if mn is not None:
                gf = mn * 1000
            if avg is not None:
                gb = avg * 1000
        elif avg is not None:
            v = avg * 1000
            if "atten" in section or section == "layernorm":
                att += 2 * v if (recompute and "flash" in section) else v
            elif "mlp" in section or section == "layernorm2":
                mlp += v
            else:
                other[section] = v
    emb = round(other["Emb"]) if "Emb" in other else 1
    return AiobTiming(att=round(att), mlp=round(mlp), emb=emb, gf=round(gf), gb=round(gb))


def timing_from_sections(sections: dict[str, float], recompute: bool = False) -> AiobTiming:
    """The same rules applied to {section: µs} (each value both the average and the minimum)."""
    return _timing(((name, v, v) for name, v in sections.items()), recompute)


_SECTION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):")
_NUM = r"([0-9]+(?:\.[0-9]*)?)"


def read_aiob_timing(path: str | Path, recompute: bool = False) -> AiobTiming:
    """Parse an AIOB timing file (section 5.2)."""
    lines = read_text(path, "AIOB timing file").splitlines()

    def entries():
        section = None
        for ln in lines:
            m = _SECTION.match(ln)
            if m:
                section = m.group(1)
            avg = re.search(r"time_gpu_avg:\s*" + _NUM, ln)
            mn = re.search(r"time_gpu_min:\s*" + _NUM, ln)
            if section and (avg or mn):
                yield section, float(avg.group(1)) if avg else None, float(mn.group(1)) if mn else None

    found = list(entries())
    if not found:
        raise InputError(
            "no AIOB timing entries found (expected 'section:' lines followed by 'time_gpu_avg: N' or "
            "'time_gpu_min: N'); without them every compute column would be 0",
            where=str(path),
        )
    return _timing(iter(found), recompute)


def _row(name, fc, fo, fb, ic, io, ib, wc, wo, wb, **meta) -> Row:
    return Row(
        name=name,
        fwd_compute=fc,
        fwd_comm=fo,
        fwd_bytes=fb,
        ig_compute=ic,
        ig_comm=io,
        ig_bytes=ib,
        wg_compute=wc,
        wg_comm=wo,
        wg_bytes=wb,
        **meta,
    )


def _aicb_microbatches(par: Parallelism, timing: AiobTiming, Ls: int, ga: int, T: int, recompute: bool) -> list[Row]:
    """Section 8: the embedding and layer rows of every micro-batch (AIOB compute per row)."""
    ATT, MLP, EMB, GB = timing.att, timing.mlp, timing.emb, timing.gb
    rows: list[Row] = []

    def tp_comm(op, size):
        return (op, size) if par.tp > 1 else ("NONE", 0)

    carry = GB
    for _ in range(ga):
        rows.append(_row("embedding_layer", EMB, *tp_comm("ALLREDUCE", T), 1, "NONE", 0, carry, "NONE", 0))
        if not par.sp:
            for _layer in range(Ls):
                for name, X in (("attention_layer", ATT), ("mlp_layer", MLP)):
                    rows.append(_row(name, X, *tp_comm("ALLREDUCE", T), X, "NONE", 0, X, "NONE", 0))
                    carry = X
        else:
            seq = [("attention_column", ATT), ("attention_row", ATT), ("mlp_column", MLP), ("mlp_row", MLP)] * Ls + [
                ("final_column", ATT)
            ]
            for name, X in seq:
                y = X // 2
                yf = (2 * ATT) // 2 if (recompute and name.startswith("attention")) else y
                if name.endswith("_column"):
                    rows.append(_row(name, yf, *tp_comm("ALLGATHER", T), y, *tp_comm("REDUCESCATTER", 0), y, "NONE", 0))
                else:
                    rows.append(_row(name, yf, *tp_comm("REDUCESCATTER", T), y, *tp_comm("ALLGATHER", T), y, "NONE", 0))
                carry = y
    return rows


def generate_aicb(
    model: ModelConfig,
    par: Parallelism,
    timing: AiobTiming,
    *,
    add_bias: bool = False,
    recompute: bool = False,
    include_tail: bool = False,
) -> Workload:
    """Section 8: the rows AICB writes for these arguments (AIOB path, dense Megatron)."""
    t, b, s, h = par.tp, par.mbs, par.seq, model.hidden
    W = par.world
    dp = par.dp
    Ls = layers_per_stage(model.layers, par.pp)
    ga = par.gbs // (b * dp)
    P = aicb_param_count(model, par, add_bias)
    T = 2 * b * s * h
    tpc = t > 1
    GF, GB = timing.gf, timing.gb
    rows = [
        _row("grad_gather", 1, "NONE", 0, 1, "NONE", 0, 1, "ALLGATHER", 2 * P, wg_class=PARAMETER),
        _row("grad_param_comm", 1, "NONE", 0, 1, "NONE", 0, 1, "REDUCESCATTER", 4 * P, wg_class=GRADIENT),
        _row("grad_param_compute", 1, "NONE", 0, GF + GB, "NONE", 0, 1, "NONE", 0),
    ]
    if not par.sp:
        rows.append(_row("layernorm", 1, "NONE", 0, 1, "ALLREDUCE", 2 * P, 1, "NONE", 0, ig_class=GRADIENT))
    rows.append(
        _row(
            "embedding_grads",
            1,
            "NONE",
            0,
            1,
            *(("ALLREDUCE", T) if tpc else ("NONE", 0)),
            1,
            "NONE",
            0,
            ig_class=GRADIENT,
        )
    )
    if par.ep != dp:
        rows.append(_row("moe_grad_norm1", 1, "NONE", 0, 1, "NONE", 0, 1, "ALLGATHER_DP_EP", 0))
        rows.append(_row("moe_grad_norm2", 1, "NONE", 0, 1, "NONE", 0, 1, "REDUCESCATTER_DP_EP", 0))
    rows += _aicb_microbatches(par, timing, Ls, ga, T, recompute)
    if include_tail:
        for i in range(1, 4):
            rows.append(_row(f"cross_entropy{i}", 0, "ALLREDUCE", 4 * s * b, 0, "NONE", 0, 0, "NONE", 0))
        for i in range(1, 5):
            rows.append(_row(f"optimizer{i}", 0, "ALLREDUCE", 4, 0, "NONE", 0, 0, "NONE", 0))
    if par.pp == 1:
        ppc = "0"
    elif par.sp:
        ppc = str((2 * b * s * h) / t)
    else:
        ppc = str(2 * b * s * h)
    return Workload(
        tp=t,
        ep=par.ep,
        pp=par.pp,
        vpp=Ls,
        ga=ga,
        all_gpus=W,
        pp_comm=ppc,
        rows=rows,
        source="aicb",
        meta={"generator": "aicb", "model": model.name, "params_per_shard": P},
    )
