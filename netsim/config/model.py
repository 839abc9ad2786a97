"""Schemas of a model preset (dimensions) and of its parallelism."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Counts are strict integers (YAML's `true` is not 1) with documented upper bounds: past them a value
# is a typo and would only exhaust memory (README "Inputs: limits").
PositiveInt = Annotated[int, Field(strict=True, gt=0)]
MAX_LAYERS, MAX_HIDDEN, MAX_SEQ, MAX_VOCAB = 10_000, 1 << 20, 1 << 24, 1 << 24


class ParallelismConfig(BaseModel):
    """How a model is laid out. `dp` may be omitted: it is then GPUs / (tp * pp)."""

    model_config = ConfigDict(extra="forbid")

    tp: PositiveInt = 1
    pp: PositiveInt = 1
    dp: PositiveInt | None = None
    ep: PositiveInt = 1
    gbs: PositiveInt = 128
    mbs: PositiveInt = 1
    seq: PositiveInt | None = None
    sp: bool = False
    distributed_optimizer: bool = True
    schedule: str = Field("1f1b", pattern="^(1f1b|gpipe)$")


class ModelConfig(BaseModel):
    """A transformer's dimensions. `ffn_hidden` omitted means AICB's default (see aicb.py)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    aliases: list[str] = []
    description: str = ""
    source: str = ""
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
    parallelism: ParallelismConfig = ParallelismConfig()

    @model_validator(mode="after")
    def _check(self):
        if self.kv_heads is not None and self.heads % self.kv_heads:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})")
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
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
