"""The typed program format: what a rank (or a folded pipeline stage) computes and sends.

Every builder emits it (megatron.py per stage; aicb.py and SimAI files through simai_file.py, the
only converter of SimAI type strings) and every system executor consumes it, so no backend parses
text. Two shapes:

- `LayerProgram`: SimAI's layer list (reference/simai.md section 2) with types parsed: one stage,
  gradient accumulation unrolled, each `Layer` with forward, input-gradient (ig) and weight-gradient
  (wg) phases; fwd/ig collectives block, wg collectives do not. The closed-form and SimAI-queue
  executors walk it.
- `StageProgram`: one micro-batch of a pipeline stage plus what runs once per iteration (gradient
  buckets, optimizer, parameter all-gather); the pipeline executor schedules it (1F1B, GPipe).

Times are integer nanoseconds and sizes integer bytes, as in SimAI files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

# Operation names, re-exported for the builders.
from netsim.ops import ALLGATHER as ALLGATHER
from netsim.ops import ALLREDUCE as ALLREDUCE
from netsim.ops import ALLTOALL as ALLTOALL
from netsim.ops import REDUCESCATTER as REDUCESCATTER
from netsim.ops import SENDRECV as SENDRECV

# Communication groups.
TP, DP, EP, DP_EP, PP, CP, NO_GROUP = "TP", "DP", "EP", "DP_EP", "PP", "CP", "NONE"
ETP = "ETP"  # expert tensor parallelism, where it differs from TP (Megatron-Core MoE parallel folding)

# Traffic classes (what a compression stage keys its ratio on).
GRADIENT = "gradient"
ACTIVATION = "activation"
ACTIVATION_GRAD = "activation_grad"
PARAMETER = "parameter"
OPTIMIZER_STATE = "optimizer_state"
DEFAULT_CLASS = "default"


@dataclass(frozen=True)
class Collective:
    """`op` over every group of kind `group` (TP, DP, EP, ETP, DP_EP, PP) of `bytes` (SimAI's size
    convention: the whole buffer), carrying traffic class `traffic`."""

    op: str
    group: str
    bytes: int
    traffic: str = DEFAULT_CLASS


@dataclass(frozen=True)
class Phase:
    """Compute, then (optionally) one collective. `op` is None for a phase without communication;
    `bytes` is kept even then, as SimAI's report prints it. `overlap_chunks` > 0: the collective is
    pipelined with the compute in that many chunks (Transformer Engine's TP overlap, ring attention),
    so it starts after the first chunk and the phase ends when both are done."""

    compute_ns: int
    op: str | None = None
    group: str = NO_GROUP
    bytes: int = 0
    traffic: str = DEFAULT_CLASS
    overlap_chunks: int = 0

    @cached_property  # asked once per phase per micro-batch: a frozen value, built once
    def collective(self) -> Collective | None:
        """The collective a network model runs, or None (no op, an unknown group, or no bytes)."""
        if self.op is None or self.group == NO_GROUP or self.bytes <= 0:
            return None
        return Collective(self.op, self.group, self.bytes, self.traffic)


@dataclass(frozen=True)
class Layer:
    """One row: forward, input-gradient and weight-gradient phases. `barrier`: wait for every
    outstanding wg collective before this layer's backward (the optimizer step waits for the
    gradient reduce-scatter)."""

    name: str
    fwd: Phase
    ig: Phase
    wg: Phase
    update_ns: int = 100
    dependency: int = -1
    barrier: bool = False


@dataclass
class LayerProgram:
    """One pipeline stage's layers with micro-batches unrolled, and the stage's header facts."""

    tp: int
    pp: int
    ga: int
    vpp: int
    all_gpus: int
    layers: list[Layer]
    ep: int = 1
    pp_bytes: int = 0
    source: str = ""


@dataclass(frozen=True)
class Send:
    """A pipeline send of `bytes` to the next (+1) or previous (-1) stage."""

    bytes: int
    traffic: str


@dataclass(frozen=True)
class StageProgram:
    """One pipeline stage (or model chunk, under the interleaved schedule) as the schedule executor
    runs it: a micro-batch's layers, the DP gradient buckets issued after given layers' last
    backward, then the optimizer step and the distributed optimizer's parameter all-gather.
    `gathers`: FSDP's parameter all-gather due before a row's forward (and, when `regather`, again
    before its backward in every micro-batch)."""

    layers: list[Layer]
    buckets: dict[int, Collective]
    optimizer_ns: int
    param_allgather: Collective | None
    send_fwd: Send | None
    send_bwd: Send | None
    params: int = 0  # parameters one rank of this stage holds (its TP/PP shard)
    gathers: dict[int, Collective] = field(default_factory=dict)
    regather: bool = False


@dataclass
class StagedProgram:
    """One program per pipeline stage (equal stages share one object) and their unrolled layer
    lists (for the closed-form executor and SimAI export)."""

    stages: list[StageProgram]
    unrolled: list[LayerProgram]
    model_name: str = ""
    chunks: int = 1  # model chunks per pipeline rank: stages[c * pp + i] is rank i's chunk c
    memory: dict = field(default_factory=dict)  # per-GPU memory estimates (bytes), for the report

    def representative(self) -> int:
        """Index of the stage with the most compute (ties: the last)."""
        work = [sum(x.fwd.compute_ns + x.ig.compute_ns + x.wg.compute_ns for x in w.layers) for w in self.unrolled]
        best = max(work)
        return max(i for i, v in enumerate(work) if v == best)
