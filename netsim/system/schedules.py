"""Pipeline schedules: the order in which a stage runs its micro-batches' forward and backward passes.

A schedule is one class with `order(stage, stages, microbatches, chunks)` returning (kind, chunk,
micro-batch) steps; the pipeline executor runs any of them, and the bubble comes out of the
simulation. A new schedule is one class plus one line in SCHEDULES.
"""

from __future__ import annotations

from typing import Protocol

Step = tuple[str, int, int]  # ("f" | "b", model chunk, micro-batch)


class Schedule(Protocol):
    def order(self, stage: int, stages: int, microbatches: int, chunks: int = 1) -> list[Step]: ...


class GPipe:
    """All forwards, then all backwards (Huang et al. 2019)."""

    def order(self, stage: int, stages: int, microbatches: int, chunks: int = 1) -> list[Step]:
        return [("f", 0, j) for j in range(microbatches)] + [("b", 0, j) for j in range(microbatches)]


class OneFOneB:
    """PipeDream-Flush / Megatron's 1F1B: p-i-1 warm-up forwards, then one forward and one backward
    in turn, then the cool-down backwards."""

    def order(self, stage: int, stages: int, microbatches: int, chunks: int = 1) -> list[Step]:
        warm = min(stages - stage - 1, microbatches)
        steps: list[Step] = [("f", 0, j) for j in range(warm)]
        for j in range(microbatches - warm):
            steps += [("f", 0, warm + j), ("b", 0, j)]
        return steps + [("b", 0, j) for j in range(microbatches - warm, microbatches)]


class Interleaved:
    """Megatron's interleaved 1F1B (Narayanan et al., SC'21 section 2.2): each rank holds `chunks`
    model chunks; micro-batches run in groups of `stages` per chunk, (p-i-1)*2 + (v-1)*p warm-up
    forwards, then 1F1B over virtual micro-batches; backward visits chunks in reverse. The bubble
    shrinks to (p-1)/(v m) of the ideal time."""

    def order(self, stage: int, stages: int, microbatches: int, chunks: int = 1) -> list[Step]:
        p, v, m = stages, chunks, microbatches
        total = m * v
        warm = total if m == p else min(total, (p - stage - 1) * 2 + (v - 1) * p)

        def step(kind: str, k: int) -> Step:
            in_group = k % (p * v)
            chunk = in_group // p
            if kind == "b":
                chunk = v - 1 - chunk
            return (kind, chunk, (k // (p * v)) * p + in_group % p)

        steps = [step("f", k) for k in range(warm)]
        for k in range(total - warm):
            steps += [step("f", warm + k), step("b", k)]
        return steps + [step("b", k) for k in range(total - warm, total)]


SCHEDULES: dict[str, type] = {"1f1b": OneFOneB, "gpipe": GPipe, "interleaved": Interleaved}
