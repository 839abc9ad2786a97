"""Backends: a network model plus the executor that fits it, behind one `simulate(job)`.

`simulate.run` and `validate simai` look a backend up in BACKENDS and call it once; a new backend
is one class here and one line in the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from netsim.collectives.models import ClosedFormModel, FlowModel
from netsim.system import timeline  # pipeline.py imports it anyway
from netsim.system.pipeline import PipelineExecutor
from netsim.system.result import Breakdown

if TYPE_CHECKING:  # a plain run imports only the executor it uses (issue #18: start-up)
    from netsim.network.compression import NicCodec
    from netsim.network.dcqcn import Dcqcn
    from netsim.network.topology import Topology
    from netsim.system.checkpoint import CheckpointPlan
    from netsim.system.simai_analytical import ClusterFlags
    from netsim.workload.parallel import Parallelism
    from netsim.workload.program import LayerProgram, StagedProgram


@dataclass
class Job:
    """What one simulation runs: a topology and either netsim's staged program (with its
    parallelism) or a SimAI workload's layer program."""

    topo: Topology
    staged: StagedProgram | None = None
    layers: LayerProgram | None = None
    par: Parallelism | None = None
    dp: int = 1
    ideal: bool = False
    fidelity: str = "macro"
    alltoall: str = "pxn"  # the flow model's all-to-all: "pxn" (NCCL's default) or "direct"
    transport: str = "maxmin"  # the flow model's rates: "maxmin" or "window" (network/transport.py)
    schedule: str = "1f1b"
    codec: NicCodec | None = None
    simai_flags: ClusterFlags | None = None
    send_lat: float = 0.0  # packet replay: SimAI's AS_SEND_LAT + issue overhead, seconds
    payload: int | None = None  # packet replay: SimAI.conf's PACKET_PAYLOAD_SIZE
    window: bool = False  # packet replay: SimAI.conf's HAS_WIN (the window transport)
    dcqcn: Dcqcn | None = None  # packet replay with a window: SimAI.conf's CC_MODE 1 (network/dcqcn.py)
    checkpoint: CheckpointPlan | None = None  # GEMINI checkpoint traffic (flow backend)
    progress: Callable[[int, int], None] | None = None  # hears (passes done, passes) as stages advance
    detail: bool = True  # record timeline spans and per-row tallies (a trace, figures, EndToEnd.csv)
    dp_replicas: int | None = None  # DP replicas whose TP/CP/PP traffic is simulated (None: the executor's rule)


class Backend(Protocol):
    def simulate(self, job: Job) -> Breakdown: ...


class FlowBackend:
    """The fluid max-min network: the pipeline executor for staged programs, SimAI's collective
    queue for workload files."""

    def simulate(self, job: Job) -> Breakdown:
        if job.checkpoint is not None and job.checkpoint.mode != "none":
            from netsim.system.checkpoint import CheckpointRun

            kw = {"ideal": job.ideal, "fidelity": job.fidelity, "codec": job.codec, "alltoall": job.alltoall,
                  "transport": job.transport}  # fmt: skip
            run = CheckpointRun(job.staged, job.par, job.topo, job.checkpoint, dp_replicas=job.dp_replicas, **kw)
            return run.run(job.schedule)
        model = FlowModel(job.topo, ideal=job.ideal, fidelity=job.fidelity, codec=job.codec, alltoall=job.alltoall,
                          transport=job.transport)  # fmt: skip
        if job.staged is not None:
            return PipelineExecutor(
                job.staged.stages, job.par, model, schedule=job.schedule, replicas=job.dp_replicas,
                progress=job.progress, detail=job.detail,
            ).run()  # fmt: skip
        from netsim.system.simai_queue import QueueExecutor

        return QueueExecutor(job.layers, model, job.topo.num_gpus).run()


class AnalyticalBackend:
    """Closed-form collectives on a replayed stage timeline, the pipeline in closed form."""

    def simulate(self, job: Job) -> Breakdown:
        model = ClosedFormModel(job.topo, codec=job.codec)
        if job.staged is not None and _needs_schedule(job.par, job.staged):
            # Chunks, CP, FSDP and overlaps need the schedule executor; closed-form collectives still.
            return PipelineExecutor(
                job.staged.stages, job.par, model, schedule=job.schedule, progress=job.progress, detail=job.detail
            ).run()
        if job.staged is not None:
            st = job.staged
            return timeline.simulate(st.unrolled, model, job.par.tp, job.par.dp, job.par.pp, rep=st.representative())
        w = job.layers
        return timeline.simulate([w] * w.pp, model, w.tp, job.dp, w.pp, rep=w.pp - 1)


def _needs_schedule(par: Parallelism, staged: StagedProgram) -> bool:
    """Whether a program uses what the closed-form stage replay (timeline.py) does not model."""
    return (staged.chunks > 1 or par.cp > 1 or par.fsdp or par.overlap_grad_reduce or par.overlap_param_gather
            or par.tp_comm_overlap or par.schedule != "1f1b" or par.ep > 1 or par.etp != par.tp)  # fmt: skip


class SimaiAnalyticalBackend:
    """SimAI-Analytical's numbers, quirks included (reference/simai_analytical_spec.md)."""

    def simulate(self, job: Job) -> Breakdown:
        from netsim.system import simai_analytical

        return simai_analytical.simulate(job.layers, job.simai_flags)


class PacketBackend:
    """SimAI's packet-level run replayed rank by rank on the packet-timing flow model."""

    def simulate(self, job: Job) -> Breakdown:
        from netsim.system.simai_replay import SimaiReplay

        return SimaiReplay(job.layers, job.topo, job.send_lat, job.payload, job.window, job.dcqcn).run()


BACKENDS: dict[str, type] = {
    "flow": FlowBackend,
    "analytical": AnalyticalBackend,
    "simai-analytical": SimaiAnalyticalBackend,
    "packet": PacketBackend,
}


def simulate(backend: str, job: Job) -> Breakdown:
    return BACKENDS[backend]().simulate(job)
