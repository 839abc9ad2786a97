"""Schemas of a model preset (dimensions) and of its parallelism."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Counts are strict integers (YAML's `true` is not 1) with documented upper bounds: past them a value
# is a typo and would only exhaust memory (README "Inputs: limits").
PositiveInt = Annotated[int, Field(strict=True, gt=0)]
MAX_LAYERS, MAX_HIDDEN, MAX_SEQ, MAX_VOCAB = 10_000, 1 << 20, 1 << 24, 1 << 24


RANK_DIMS = ("tp", "cp", "dp", "pp")


class ParallelismConfig(BaseModel):
    """How a model is laid out and trained (Megatron-Core's defaults; README "Training options" maps
    every field to its Megatron/NeMo/torchtitan flag). `dp` may be omitted: GPUs / (tp cp pp)."""

    model_config = ConfigDict(extra="forbid")

    tp: PositiveInt = 1
    pp: PositiveInt = 1
    dp: PositiveInt | None = None
    cp: PositiveInt = 1
    ep: PositiveInt = 1
    etp: PositiveInt | None = None  # expert TP; None: tp (Megatron-Core's --expert-tensor-parallel-size default)
    vpp: PositiveInt | None = None  # model chunks per pipeline rank; None: 1, or 2 layers per chunk if interleaved
    gbs: PositiveInt = 128
    mbs: PositiveInt = 1
    seq: PositiveInt | None = None
    sp: bool | None = None  # None: on when tp > 1 (Megatron-Core / NeMo recipes; TE's TP overlap needs it)
    distributed_optimizer: bool = True
    sharding: Literal["none", "distributed-optimizer", "zero-1", "fsdp", "fsdp-no-reshard-after-forward"] | None = None
    schedule: str = Field("1f1b", pattern="^(1f1b|gpipe|interleaved|interleaved-1f1b)$")
    recompute: Literal["none", "selective", "selective-op", "full"] = "none"
    precision: Literal["bf16", "fp16", "fp8"] = "bf16"
    kernels: Literal["fused", "eager"] = "fused"  # eager: PyTorch without torch.compile (torchtitan's default)
    grad_reduce_dtype: Literal["fp32", "bf16", "fp16"] | None = None  # None: Megatron's rule (see parallel.py)
    overlap_grad_reduce: bool = False
    overlap_param_gather: bool = False
    tp_comm_overlap: bool = False
    first_last_stage_one_layer_fewer: bool = False
    rank_order: list[Literal["tp", "cp", "dp", "pp"]] = list(RANK_DIMS)

    @model_validator(mode="after")
    def _check(self):
        if sorted(self.rank_order) != sorted(RANK_DIMS):
            raise ValueError(f"rank_order must name each of {', '.join(RANK_DIMS)} once, got {self.rank_order}")
        return self


class Preset(BaseModel):
    """What every model preset carries besides its dimensions: names and where they come from."""

    model_config = ConfigDict(extra="forbid")

    name: str
    aliases: list[str] = []
    description: str = ""
    source: str = ""


class ModelConfig(Preset):
    """A transformer's dimensions. `ffn_hidden` omitted means AICB's default (see aicb.py)."""

    layers: PositiveInt
    hidden: PositiveInt
    heads: PositiveInt
    kv_heads: PositiveInt | None = None
    ffn_hidden: PositiveInt | None = None
    vocab: PositiveInt
    gated_mlp: bool = False
    tied_embeddings: bool = False
    position_embeddings: bool = False
    seq: PositiveInt = 2048
    # Mixture of experts (Megatron-Core MoE): `experts` routed experts per MoE layer, top-k routing,
    # each expert an MLP of moe_ffn_hidden (default ffn_hidden); capacity_factor None = dropless;
    # moe_imbalance: the busiest expert rank gets (1 + x) times the mean of tokens (load skew).
    experts: int = Field(0, ge=0, le=4096, strict=True)
    top_k: PositiveInt = 2
    moe_ffn_hidden: PositiveInt | None = None
    capacity_factor: float | None = Field(None, gt=0, allow_inf_nan=False)
    moe_imbalance: float = Field(0.0, ge=0, le=100, allow_inf_nan=False)
    # Shared experts (DeepSeek, Qwen-MoE; Megatron-Core's --moe-shared-expert-intermediate-size): one
    # dense MLP of this intermediate size that every token passes through beside its routed experts.
    shared_expert_ffn: PositiveInt | None = None
    parallelism: ParallelismConfig = ParallelismConfig()

    @model_validator(mode="after")
    def _check(self):
        if self.kv_heads is not None and self.heads % self.kv_heads:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})")
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        if self.shared_expert_ffn and not self.experts:
            raise ValueError("shared_expert_ffn needs a mixture-of-experts model (experts > 0)")
        if self.experts and self.top_k > self.experts:
            raise ValueError(f"top_k ({self.top_k}) must be at most the number of experts ({self.experts})")
        for key, value, top in (("layers", self.layers, MAX_LAYERS), ("hidden", self.hidden, MAX_HIDDEN),
                                ("seq", self.seq, MAX_SEQ), ("vocab", self.vocab, MAX_VOCAB)):  # fmt: skip
            if value > top:
                raise ValueError(f"{key} = {value} is above netsim's limit of {top}")
        return self

    @property
    def ffn(self) -> int:
        """Explicit FFN size, else AICB's rule (aicb_workload_spec.md section 1.1 step 6)."""
        if self.ffn_hidden is not None:
            return self.ffn_hidden
        if self.gated_mlp:
            return int((4 * self.hidden * 2 / 3) / 64) * 64
        return 4 * self.hidden

    @property
    def kv(self) -> int:
        return self.kv_heads or self.heads
