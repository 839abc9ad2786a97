"""Pipeline schedules: the order in which a stage runs its micro-batches' forward and backward passes.

A schedule is one class with `order(stage, stages, microbatches)`; the pipeline executor runs any
of them, and the bubble comes out of the simulation. A new schedule is one class plus one line in
SCHEDULES.
"""

from __future__ import annotations

from typing import Protocol

Step = tuple[str, int]  # ("f" | "b", micro-batch)


class Schedule(Protocol):
    def order(self, stage: int, stages: int, microbatches: int) -> list[Step]: ...


class GPipe:
    """All forwards, then all backwards (Huang et al. 2019)."""

    def order(self, stage: int, stages: int, microbatches: int) -> list[Step]:
        return [("f", j) for j in range(microbatches)] + [("b", j) for j in range(microbatches)]


class OneFOneB:
    """PipeDream-Flush / Megatron's 1F1B: p-i-1 warm-up forwards, then one forward and one backward
    in turn, then the cool-down backwards."""

    def order(self, stage: int, stages: int, microbatches: int) -> list[Step]:
        warm = min(stages - stage - 1, microbatches)
        steps: list[Step] = [("f", j) for j in range(warm)]
        for j in range(microbatches - warm):
            steps += [("f", warm + j), ("b", j)]
        return steps + [("b", j) for j in range(microbatches - warm, microbatches)]


SCHEDULES: dict[str, type] = {"1f1b": OneFOneB, "gpipe": GPipe}
