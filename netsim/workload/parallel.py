"""Parallelism resolved against a GPU count, and Megatron/SimAI rank mapping."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property

from netsim.config.model import RANK_DIMS, ModelConfig, ParallelismConfig
from netsim.errors import InputError

FSDP = ("fsdp", "fsdp-no-reshard-after-forward")


@dataclass(frozen=True)
class Parallelism:
    """The resolved layout and training options of a run: TP x CP x PP x DP (and EP), virtual
    pipeline chunks, batch sizes, sequence length, sequence parallelism, sharding, schedule,
    recompute, precision and overlaps. Ranks map in `rank_order`, the first dimension fastest
    (Megatron-Core's default: tp, cp, dp, pp).

    MoE layers use their own mesh over each pipeline stage's TP x CP x DP ranks (Megatron-Core's
    "MoE parallel folding", parallel_state's expert RankGenerator, order etp-ep-edp): expert TP
    fastest, then EP, then the expert-DP groups that hold the same experts (`expert_rank`)."""

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
    cp: int = 1
    vpp: int = 1
    sharding: str = "distributed-optimizer"
    recompute: str = "none"
    precision: str = "bf16"
    kernels: str = "fused"  # fused (Megatron / Transformer Engine, torch.compile) or eager PyTorch
    grad_reduce_dtype: str = "fp32"
    overlap_grad_reduce: bool = False
    overlap_param_gather: bool = False
    tp_comm_overlap: bool = False
    first_last_fewer: bool = False
    rank_order: tuple[str, ...] = RANK_DIMS
    etp: int = 0  # expert TP; 0: tp (Megatron-Core's default)

    def __post_init__(self) -> None:
        if not self.etp:
            object.__setattr__(self, "etp", self.tp)

    @property
    def world(self) -> int:
        return self.tp * self.cp * self.pp * self.dp

    @property
    def edp(self) -> int:
        """Expert-data-parallel size: the ranks of a stage holding the same experts' shards."""
        return self.tp * self.cp * self.dp // (self.etp * self.ep)

    def expert_rank(self, j: int, pp: int) -> int:
        """The global rank at flat index j of stage `pp`'s expert mesh. The mesh flattens the
        stage's ranks with TP fastest, then CP, then DP (so the first replicas are a prefix, as the
        folded executor needs); under the default rank order that is Megatron-Core's rank order."""
        tp, cp = self.tp, self.cp
        return self.rank(j % tp, (j // tp) % cp, j // (tp * cp), pp)

    @property
    def microbatches(self) -> int:
        """Gradient-accumulation steps per iteration (AICB's `ga`)."""
        return self.gbs // (self.mbs * self.dp)

    @property
    def fsdp(self) -> bool:
        return self.sharding in FSDP

    @property
    def grad_bytes(self) -> int:
        """Bytes per gradient element as the DP collective reduces it."""
        return 4 if self.grad_reduce_dtype == "fp32" else 2

    @cached_property
    def _strides(self) -> tuple[int, int, int, int]:
        """The rank distance of one step in tp, cp, dp and pp under `rank_order` (first fastest)."""
        sizes = {"tp": self.tp, "cp": self.cp, "dp": self.dp, "pp": self.pp}
        strides, stride = {}, 1
        for d in self.rank_order:
            strides[d] = stride
            stride *= sizes[d]
        return strides["tp"], strides["cp"], strides["dp"], strides["pp"]

    def rank(self, tp: int = 0, cp: int = 0, dp: int = 0, pp: int = 0) -> int:
        """The global rank of these coordinates under `rank_order` (first dimension fastest)."""
        a, b, c, d = self._strides
        return tp * a + cp * b + dp * c + pp * d

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rank_order"] = list(self.rank_order)
        return {**d, "microbatches": self.microbatches}


def _sharding(cfg: ParallelismConfig) -> str:
    if cfg.sharding is not None:
        return "distributed-optimizer" if cfg.sharding == "zero-1" else cfg.sharding
    return "distributed-optimizer" if cfg.distributed_optimizer else "none"


def _vpp(cfg: ParallelismConfig, model: ModelConfig, where: str) -> int:
    """Virtual stages per rank. Interleaved without a vpp: two layers per model chunk, or the nearest
    smaller count that splits the layers evenly (documented default; Megatron needs that)."""
    interleaved = cfg.schedule.startswith("interleaved")
    if cfg.vpp is not None:
        v = cfg.vpp
    elif interleaved and cfg.pp > 1:
        slots = model.layers + (2 if cfg.first_last_stage_one_layer_fewer else 0)
        v = max(1, slots // (cfg.pp * 2))
        while v > 1 and slots % (cfg.pp * v):
            v -= 1
    else:
        v = 1
    if v > 1 and cfg.pp == 1:
        raise InputError("vpp > 1 needs pp > 1 (virtual stages interleave a pipeline)", field=where)
    if v > 1 and cfg.schedule == "gpipe":
        raise InputError("vpp > 1 runs the interleaved 1F1B schedule, not gpipe", field=where)
    if cfg.pp * v > model.layers:
        raise InputError(f"pp x vpp = {cfg.pp * v} virtual stages is more than the model's {model.layers} layers",
                         field=where)  # fmt: skip
    return v


def resolve_parallelism(
    model: ModelConfig, gpus: int, overrides: dict | None = None, where: str = "parallelism"
) -> Parallelism:
    """Preset defaults, then explicit overrides; TP x CP x PP x DP must equal the GPU count."""
    base = model.parallelism.model_dump()
    explicit_dp = base.get("dp") is not None
    for k, v in (overrides or {}).items():
        if v is not None:
            base[k] = v
            if k == "dp":
                explicit_dp = True
    cfg = ParallelismConfig.model_validate(base)
    tp, pp, cp = cfg.tp, cfg.pp, cfg.cp
    if pp > model.layers:
        raise InputError(f"pp={pp} is more pipeline stages than the model's {model.layers} layers", field=where)
    if explicit_dp:
        dp = cfg.dp
        if tp * cp * pp * dp != gpus:
            raise InputError(
                f"tp x cp x pp x dp = {tp} x {cp} x {pp} x {dp} = {tp * cp * pp * dp}, expected the topology's "
                f"{gpus} GPUs", field=where,
            )  # fmt: skip
    else:
        if gpus % (tp * cp * pp):
            raise InputError(f"tp x cp x pp = {tp * cp * pp} does not divide the topology's {gpus} GPUs", field=where)
        dp = gpus // (tp * cp * pp)
    if cfg.gbs % (cfg.mbs * dp):
        raise InputError(f"gbs {cfg.gbs} is not a multiple of mbs x dp = {cfg.mbs} x {dp}", field=where)
    if model.heads % tp:
        raise InputError(f"tp={tp} does not divide the model's {model.heads} attention heads", field=where)
    etp = _expert_tp(cfg, model, tp * cp * dp, where)
    seq = cfg.seq or model.seq
    if seq % cp:
        raise InputError(f"cp={cp} does not divide the sequence length {seq}", field=where)
    vpp = _vpp(cfg, model, where)
    m = cfg.gbs // (cfg.mbs * dp)
    if vpp > 1 and m % pp:
        raise InputError(f"the interleaved schedule needs the micro-batches per iteration ({m}) to be a multiple "
                         f"of pp ({pp}), as Megatron requires", field=where)  # fmt: skip
    sp = cfg.tp > 1 if cfg.sp is None else cfg.sp  # Megatron-Core and NeMo recipes pair SP with TP
    # Megatron reduces gradients in fp32 for bf16/fp8 (main_grad); fp16 runs reduce in fp16.
    grad_dtype = cfg.grad_reduce_dtype or ("fp16" if cfg.precision == "fp16" else "fp32")
    sharding = _sharding(cfg)
    return Parallelism(
        tp=tp, pp=pp, dp=dp, ep=cfg.ep, gbs=cfg.gbs, mbs=cfg.mbs, seq=seq, sp=sp and tp > 1,
        distributed_optimizer=sharding == "distributed-optimizer", schedule="interleaved" if vpp > 1 else (
            "1f1b" if cfg.schedule.startswith("interleaved") else cfg.schedule),
        cp=cp, vpp=vpp, sharding=sharding, recompute=cfg.recompute, precision=cfg.precision, kernels=cfg.kernels,
        grad_reduce_dtype=grad_dtype, overlap_grad_reduce=cfg.overlap_grad_reduce,
        overlap_param_gather=cfg.overlap_param_gather, tp_comm_overlap=cfg.tp_comm_overlap and tp > 1,
        first_last_fewer=cfg.first_last_stage_one_layer_fewer, rank_order=tuple(cfg.rank_order), etp=etp,
    )  # fmt: skip


def _expert_tp(cfg: ParallelismConfig, model: ModelConfig, stage_ranks: int, where: str) -> int:
    """Expert TP (default tp), checked as Megatron-Core checks the expert mesh: etp x ep x edp must
    be a stage's tp x cp x dp ranks, and ep must divide the experts."""
    etp = cfg.etp or cfg.tp
    if cfg.ep > 1 and (not model.experts or model.experts % cfg.ep):
        raise InputError(f"ep={cfg.ep} needs a mixture-of-experts model whose experts ({model.experts}) it divides",
                         field=where)  # fmt: skip
    if etp != cfg.tp and not model.experts:
        raise InputError(f"etp={etp} applies to mixture-of-experts models only", field=where)
    if stage_ranks % (etp * cfg.ep):
        raise InputError(
            f"etp x ep = {etp} x {cfg.ep} does not divide tp x cp x dp = {stage_ranks} (the expert mesh is carved "
            f"out of each pipeline stage's TP, CP and DP ranks, as in Megatron-Core)", field=where,
        )  # fmt: skip
    if model.experts and cfg.tp > 1 and cfg.sp is False:
        raise InputError("a mixture-of-experts model with tp > 1 needs sequence parallelism (Megatron-Core's MoE "
                         "layer refuses to train without it)", field=where)  # fmt: skip
    return etp


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


def padded_vocab(vocab: int, tp: int) -> int:
    """The vocabulary Megatron (and AICB) shard over TP ranks: padded to a multiple of 128 x TP."""
    step = 128 * tp
    return -(-vocab // step) * step
