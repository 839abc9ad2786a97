"""GEMINI (SOSP'23; reference/peers.md section 3): checkpoints to peers' CPU memory every iteration,
sent in the network's idle time between training collectives.

- Size: each GPU saves its shard of the model states: fp32 master weights and Adam's two moments
  (12 B per parameter) plus the bf16 weights (2 B), sharded over the DP group as ZeRO / the
  distributed optimizer shard them: params_per_rank x 14 / dp bytes per GPU.
- Placement: m replicas (one local, m-1 on peers); the same local GPU of the peer machine(s):
  `group` (machines in groups of m), `ring` (the next m-1 machines), the mixed strategy when m does
  not divide N (groups, and a ring over the last m + N mod m machines).
- Modes: `blocking` (GEMINI's naive mode: every block after the iteration), `interleaved`
  (GEMINI: profile the iteration, take the idle gaps of the NIC, keep those longer than the
  threshold, fill each with whole blocks up to alpha of its capacity (GEMINI's code also caps a gap at
  16 blocks: optional here), send
  the rest after the last collective). Blocks ride below training traffic (strict priority) or, with
  `sharing: weighted`, share links max-min with a weight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from netsim.collectives.models import FlowModel
from netsim.network.background import BlockStream, LinkIdleness
from netsim.network.topology import Topology
from netsim.system.pipeline import PipelineExecutor
from netsim.system.result import Breakdown
from netsim.workload.parallel import Parallelism
from netsim.workload.program import StagedProgram

STATE_BYTES_PER_PARAM = 12 + 2  # fp32 master + Adam m, v; bf16 weights


@dataclass(frozen=True)
class CheckpointPlan:
    """GEMINI's knobs (defaults from its code: snapshot_policy.py, snapshot_strategy.py)."""

    mode: str = "none"  # none | blocking | interleaved
    every: int = 1  # iterations between checkpoints
    replicas: int = 2  # m
    placement: str = "group"  # group | ring
    storage_bandwidth: float = 20e9 / 8  # remote storage, aggregate bytes/s (GEMINI's FSx: 20 Gbps)
    block: float = 128 * 2**20  # bytes: 32M fp32 elements (snapshot_buffer_size)
    buffers: int = 2  # GPU receive buffers in the ring
    copy_bandwidth: float = 25e9  # device-to-host copy, bytes/s (PCIe Gen4 x16, practical)
    threshold: float = 0.010  # s: shortest usable gap (span_threshold default, 10 ms)
    alpha: float = 0.8  # share of a gap's capacity to fill (span_alpha)
    # GEMINI's code caps a gap at 16 blocks (max_blocks_in_span), sized for ZeRO-3's many short gaps
    # between per-layer collectives; None lets alpha x the gap's capacity decide alone.
    max_blocks_in_span: int | None = None
    sharing: str = "priority"  # priority (strict, below training) | weighted
    weight: float = 1.0


def checkpoint_bytes_per_gpu(staged: StagedProgram, par: Parallelism) -> float:
    """The largest shard any GPU saves (stages differ by their embedding and output layers)."""
    return max(s.params for s in staged.stages) * STATE_BYTES_PER_PARAM / par.dp


def peer_servers(n: int, m: int, placement: str) -> list[list[int]]:
    """For every machine, the m-1 machines that hold its replicas."""
    if m <= 1 or n < 2:
        return [[] for _ in range(n)]
    m = min(m, n)
    if placement == "ring":
        return [[(i + k) % n for k in range(1, m)] for i in range(n)]
    groups = [list(range(g, g + m)) for g in range(0, n - n % m, m)]
    if n % m:  # mixed: the last group and the remainder form a ring
        tail = groups.pop() + list(range(n - n % m, n)) if groups else list(range(n))
        ring = {x: [tail[(j + k) % len(tail)] for k in range(1, m)] for j, x in enumerate(tail)}
    else:
        ring = {}
    out = [[] for _ in range(n)]
    for grp in groups:
        for x in grp:
            out[x] = [y for y in grp if y != x]
    for x, peers in ring.items():
        out[x] = peers
    return out


def gpu_pairs(topo: Topology, m: int, placement: str) -> list[tuple[int, int]]:
    """(src, dst) GPU pairs: each GPU sends its shard to the same local GPU of each peer machine."""
    gps = topo.gpus_per_server
    n = topo.num_gpus // gps
    peers = peer_servers(n, m, placement)
    return [(i * gps + g, j * gps + g) for i in range(n) for j in peers[i] for g in range(gps)]


def pack_gaps(gaps: list[tuple[float, float]], plan: CheckpointPlan, per_gpu_bw: float, block_wire: float, blocks: int):
    """GEMINI's greedy packing: [(gap start, blocks)] and the blocks left for after the iteration."""
    chosen, left = [], blocks
    for a, b in gaps:
        if left == 0:
            break
        if b - a < plan.threshold:
            continue
        fit = min(int((b - a) * per_gpu_bw * plan.alpha // block_wire), left)
        if plan.max_blocks_in_span is not None:
            fit = min(fit, plan.max_blocks_in_span)
        if fit > 0:
            chosen.append((a, fit))
            left -= fit
    return chosen, left


class CheckpointRun:
    """One iteration with GEMINI's checkpoint traffic on the flow model."""

    def __init__(
        self, staged: StagedProgram, par: Parallelism, topo: Topology, plan: CheckpointPlan,
        dp_replicas: int | None = None, **model_kw,
    ):  # fmt: skip
        self.staged, self.par, self.topo, self.plan, self.model_kw = staged, par, topo, plan, model_kw
        self.dp_replicas = dp_replicas
        self.pairs = gpu_pairs(topo, plan.replicas, plan.placement)
        self.per_gpu = checkpoint_bytes_per_gpu(staged, par)
        self.blocks = math.ceil(self.per_gpu / plan.block) if self.pairs else 0
        self.per_gpu_bw = topo.nic_bandwidth_per_gpu()

    def _iteration(self, schedule: str):
        model = FlowModel(self.topo, **self.model_kw)
        ex = PipelineExecutor(self.staged.stages, self.par, model, schedule=schedule, replicas=self.dp_replicas)
        routes = [model.net.data_route(a, b, 0) for a, b in self.pairs]
        server0 = set(range(self.topo.gpus_per_server))
        watched = [
            link
            for (a, _b), r in zip(self.pairs, routes)
            if a in server0
            for link in r
            if model.net.kind[link] == "nic"
        ]
        return model, ex, routes, LinkIdleness(model.fluid, watched)

    def run(self, schedule: str = "1f1b") -> Breakdown:
        plan = self.plan
        model, ex, _routes, idle = self._iteration(schedule)
        base = ex.run()
        t_train = base.total_us * 1e-6
        gaps = idle.gaps(t_train)
        usable = sum(b - a for a, b in gaps if b - a >= plan.threshold)
        block_wire = plan.block * max(1, plan.replicas - 1)
        if plan.mode == "interleaved":
            chosen, left = pack_gaps(gaps, plan, self.per_gpu_bw, block_wire, self.blocks)
        else:
            chosen, left = [], self.blocks
        bd, stream = self._with_traffic(schedule, chosen, left)
        return self._report(bd, stream, t_train, usable, left)

    def _with_traffic(self, schedule: str, chosen, left: int) -> tuple[Breakdown, BlockStream]:
        plan = self.plan
        model, ex, routes, _idle = self._iteration(schedule)
        priority = 1 if (plan.mode == "interleaved" and plan.sharing == "priority") else 0
        stream = BlockStream(
            model.fluid, routes, plan.block, plan.buffers, plan.copy_bandwidth, priority=priority,
            weight=plan.weight if plan.sharing == "weighted" else 1.0,
        )  # fmt: skip
        finished = ex.start()
        for t, n in chosen:
            model.env.timeout(t).callbacks.append(lambda _e, n=n: stream.send(n))
        if left:
            finished.callbacks.append(lambda _e: stream.send(left))
        model.env.run()
        return ex.result(), stream

    def _report(self, bd: Breakdown, stream: BlockStream, t_none: float, idle_s: float, left: int) -> Breakdown:
        t_train = bd.total_us * 1e-6
        end = max(t_train, stream.last_done)
        exposed = end - t_train
        bd.total_us = end * 1e6
        ckpt_s = stream.last_done - stream.first_start if stream.first_start is not None else 0.0
        total_bytes = self.per_gpu * len(self.pairs)
        remote_s = self.per_gpu * self.topo.num_gpus / self.plan.storage_bandwidth
        bd.extra.update({
            "checkpoint_mode": self.plan.mode, "checkpoint_bytes": total_bytes, "checkpoint_bytes_per_gpu": self.per_gpu,
            "checkpoint_us": ckpt_s * 1e6, "exposed_checkpoint_us": exposed * 1e6, "network_idle_us": idle_s * 1e6,
            "checkpoint_fits": left == 0,
            "blocks_after_iteration": left, "iteration_slowdown": end / t_none - 1,
            "amortised_slowdown": (end / t_none - 1) / self.plan.every,
            "remote_storage_checkpoint_us": remote_s * 1e6,
        })  # fmt: skip
        if self.plan.mode == "interleaved" and left:
            bd.extra["checkpoint_note"] = (
                f"idle time is shorter than the checkpoint: {left} of {self.blocks} blocks per GPU are sent "
                "after the iteration and extend it"
            )
        return bd
