"""Schemas of a model preset (dimensions) and of its parallelism."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator


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
