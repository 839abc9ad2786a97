"""Parallelism resolved against a GPU count, and Megatron/SimAI rank mapping."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from netsim.config.model import ModelConfig, ParallelismConfig
from netsim.errors import InputError


@dataclass(frozen=True)
class Parallelism:
    """The resolved parallel layout of a run: TP x PP x DP (and EP), batch sizes, sequence length,
    sequence parallelism, distributed optimizer and schedule. Ranks map TP-fastest, then DP, then PP."""

    tp: int
    pp: int
    dp: int
    ep: int
    gbs: int
    mbs: int
    seq: int
    sp: bool
    distributed_optimizer: bool
    schedule: str

    @property
    def world(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def microbatches(self) -> int:
        """Gradient-accumulation steps per iteration (AICB's `ga`)."""
        return self.gbs // (self.mbs * self.dp)

    def to_dict(self) -> dict:
        return {**asdict(self), "microbatches": self.microbatches}


def resolve_parallelism(
    model: ModelConfig, gpus: int, overrides: dict | None = None, where: str = "parallelism"
) -> Parallelism:
    """Preset defaults, then explicit overrides; TP x PP x DP must equal the GPU count."""
    base = model.parallelism.model_dump()
    explicit_dp = base.get("dp") is not None
    for k, v in (overrides or {}).items():
        if v is not None:
            base[k] = v
            if k == "dp":
                explicit_dp = True
    cfg = ParallelismConfig.model_validate(base)
    tp, pp = cfg.tp, cfg.pp
    if pp > model.layers:
        raise InputError(f"pp={pp} is more pipeline stages than the model's {model.layers} layers", field=where)
    if explicit_dp:
        dp = cfg.dp
        if tp * pp * dp != gpus:
            raise InputError(
                f"tp x pp x dp = {tp} x {pp} x {dp} = {tp * pp * dp}, expected the topology's {gpus} GPUs", field=where
            )
    else:
        if gpus % (tp * pp):
            raise InputError(f"tp x pp = {tp * pp} does not divide the topology's {gpus} GPUs", field=where)
        dp = gpus // (tp * pp)
    if cfg.gbs % (cfg.mbs * dp):
        raise InputError(f"gbs {cfg.gbs} is not a multiple of mbs x dp = {cfg.mbs} x {dp}", field=where)
    if model.heads % tp:
        raise InputError(f"tp={tp} does not divide the model's {model.heads} attention heads", field=where)
    return Parallelism(
        tp=tp,
        pp=pp,
        dp=dp,
        ep=cfg.ep,
        gbs=cfg.gbs,
        mbs=cfg.mbs,
        seq=cfg.seq or model.seq,
        sp=cfg.sp and tp > 1,
        distributed_optimizer=cfg.distributed_optimizer,
        schedule=cfg.schedule,
    )


def rank_of(tp_idx: int, dp_idx: int, pp_idx: int, tp: int, dp: int) -> int:
    """Megatron's default order (and SimAI's): TP ranks consecutive, then DP, then PP."""
    return pp_idx * (tp * dp) + dp_idx * tp + tp_idx


def coords_of(rank: int, tp: int, dp: int) -> tuple[int, int, int]:
    """Inverse of rank_of: (tp_idx, dp_idx, pp_idx)."""
    pp_idx, rest = divmod(rank, tp * dp)
    dp_idx, tp_idx = divmod(rest, tp)
    return tp_idx, dp_idx, pp_idx


def tp_group(rank: int, tp: int, dp: int) -> list[int]:
    t, d, p = coords_of(rank, tp, dp)
    return [rank_of(i, d, p, tp, dp) for i in range(tp)]


def dp_group(rank: int, tp: int, dp: int) -> list[int]:
    t, d, p = coords_of(rank, tp, dp)
    return [rank_of(t, i, p, tp, dp) for i in range(dp)]


def pp_group(rank: int, tp: int, dp: int, pp: int) -> list[int]:
    t, d, p = coords_of(rank, tp, dp)
    return [rank_of(t, d, i, tp, dp) for i in range(pp)]
