"""One simulation run, as `netsim run` and `netsim sweep` describe it: resolve, build, simulate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from netsim.config.model import ModelConfig
from netsim.config.run import RunSpec
from netsim.errors import InputError
from netsim.network.topology import Topology, load_topology
from netsim.system.backends import Job, simulate
from netsim.system.result import SUMMARY_FIELDS, Breakdown
from netsim.workload.catalog import resolve_model
from netsim.workload.compute import gpu_compute
from netsim.workload.dlrm import build_dlrm, dlrm_parallelism, find_dlrm
from netsim.workload.megatron import build_megatron
from netsim.workload.parallel import Parallelism, resolve_parallelism
from netsim.workload.program import LayerProgram

if TYPE_CHECKING:  # SimAI modes, workload files and checkpoints import their modules when used
    from netsim.system.simai_analytical import ClusterFlags

__all__ = ["RunSpec", "RunResult", "run", "load_run_topology", "resolve_training", "simai_flags_for"]


@dataclass
class RunResult:
    breakdown: Breakdown
    config: dict = field(default_factory=dict)
    workload: LayerProgram | None = None
    csv_name: str = "netsim"
    memory: dict | None = None  # per-GPU estimate of a netsim workload (activations, model state)

    def to_dict(self) -> dict:
        d = {k: self.breakdown.summary()[k] for k in SUMMARY_FIELDS}
        d.update({k: v for k, v in self.breakdown.extra.items()})
        d = {k: (float(v) if hasattr(v, "dtype") else v) for k, v in d.items()}
        if self.memory:
            d["memory"] = self.memory
        d["config"] = self.config
        return d


def load_run_topology(spec: RunSpec) -> Topology:
    topo = load_topology(spec.topology)
    return topo.with_nic_bandwidth(spec.bandwidth) if spec.bandwidth else topo


def simai_flags_for(topo: Topology, gpus: int | None = None) -> ClusterFlags:
    """SimAI-Analytical's cluster flags for a topology: its -nic/-nv are GiB/s."""
    from netsim.system import simai_analytical

    nv = topo.nvlink_bandwidth / 2**30 if topo.nvlink_bandwidth else -1.0
    return simai_analytical.ClusterFlags(
        gpus=gpus or topo.num_gpus,
        gpus_per_server=topo.gpus_per_server,
        nics_per_server=topo.nics_per_server,
        nvlink_busbw=nv,
        nic_busbw=topo.nic_bandwidth / 2**30,
        gpu_type=topo.gpu,
    )


def _workload_job(spec: RunSpec, job: Job, config: dict) -> str:
    """A SimAI workload file: DP = GPUs / (tp x pp)."""
    from netsim.workload.simai_file import read_simai_workload, to_program

    w = read_simai_workload(spec.workload)
    topo = job.topo
    if topo.num_gpus % (w.tp * w.pp):
        raise InputError(
            f"the workload's tp x pp = {w.tp * w.pp} does not divide the topology's {topo.num_gpus} GPUs",
            where=spec.workload,
        )
    if w.all_gpus and w.all_gpus != topo.num_gpus:
        raise InputError(
            f"the workload was made for all_gpus: {w.all_gpus} (its DP byte counts assume that many GPUs), "
            f"the topology has {topo.num_gpus}; run it on a {w.all_gpus}-GPU topology or regenerate it",
            where=spec.workload,
        )
    job.dp = topo.num_gpus // (w.tp * w.pp)
    job.layers = to_program(w)
    config["workload"] = {"file": str(spec.workload), "rows": len(w.rows)}
    config["parallelism"] = {"tp": w.tp, "pp": w.pp, "dp": job.dp, "ep": w.ep, "microbatches": w.ga}
    return Path(spec.workload).stem


PARALLEL_FIELDS = (
    "tp",
    "pp",
    "dp",
    "gbs",
    "mbs",
    "seq",
    "sp",
    "schedule",
    "cp",
    "ep",
    "etp",
    "vpp",
    "recompute",
    "precision",
    "kernels",
    "sharding",
    "overlap_grad_reduce",
    "overlap_param_gather",
    "tp_comm_overlap",
)


def resolve_training(model_name: str, gpus: int, overrides: dict) -> tuple[ModelConfig, Parallelism]:
    """A model preset (or YAML) and its parallelism on `gpus` GPUs; `run` and `export` share it."""
    model = resolve_model(model_name)
    return model, resolve_parallelism(model, gpus, {k: overrides.get(k) for k in PARALLEL_FIELDS})


# Transformer options a DLRM iteration has no use for: refused, never silently dropped.
DLRM_IGNORES = (
    "tp", "pp", "dp", "cp", "ep", "etp", "vpp", "gbs", "mbs", "seq", "sp", "schedule", "recompute", "precision",
    "kernels", "sharding", "overlap_grad_reduce", "overlap_param_gather", "tp_comm_overlap",
)  # fmt: skip


def _dlrm_job(spec: RunSpec, job: Job, config: dict, cfg) -> str:
    """A DLRM preset (workload/dlrm.py): embeddings sharded over every GPU, data-parallel MLPs."""
    if spec.mode == "simai":
        raise InputError("SimAI-compatible mode runs transformer workloads only; use --mode physical", field="--mode")
    for name in DLRM_IGNORES:
        if getattr(spec, name) is not None:
            raise InputError(
                f"does not apply to a DLRM preset (embeddings are sharded over every GPU, the MLPs are data-parallel, "
                f"one batch of {cfg.batch} samples)",
                field="--" + name.replace("_", "-"),
            )
    par = dlrm_parallelism(cfg, job.topo.num_gpus)
    job.par, job.dp, job.schedule = par, par.dp, par.schedule
    job.staged = build_dlrm(cfg, par, gpu_compute(job.topo.gpu, spec.calibration))
    config["model"] = cfg.model_dump(exclude={"aliases", "description", "source"})
    config["parallelism"] = par.to_dict()
    config["workload"] = {"generator": "netsim-dlrm", "rows": len(job.staged.stages[0].layers)}
    return cfg.name


def _model_job(spec: RunSpec, job: Job, config: dict) -> str:
    """A model preset: AICB's rows in SimAI mode, else netsim's Megatron programs (or DLRM's)."""
    dlrm = find_dlrm(spec.model)
    if dlrm is not None:
        return _dlrm_job(spec, job, config, dlrm)
    model, par = resolve_training(spec.model, job.topo.num_gpus, spec.model_dump())
    gpu = gpu_compute(job.topo.gpu, spec.calibration)
    config["model"] = model.model_dump(exclude={"parallelism", "aliases", "description", "source"})
    config["parallelism"] = par.to_dict()
    job.par, job.dp, job.schedule = par, par.dp, par.schedule
    if spec.mode == "simai":
        from netsim.workload.aicb import aiob_sections, generate_aicb, timing_from_sections
        from netsim.workload.simai_file import to_program

        w = generate_aicb(model, par, timing_from_sections(aiob_sections(model, par, gpu)))
        config["workload"] = {"generator": "aicb", "rows": len(w.rows)}
        job.layers = to_program(w)
    else:
        job.staged = build_megatron(model, par, gpu)
        rep = job.staged.representative()
        rows = len(job.staged.unrolled[rep].layers)
        config["workload"] = {"generator": "netsim-megatron", "rows": rows, "representative_stage": rep}
    return model.name


def run(spec: RunSpec, progress: Callable[[int, int], None] | None = None, detail: bool = True) -> RunResult:
    """Resolve the spec, build the job, and run it on its backend (looked up once). `progress`
    hears (done, total) as the schedule executor finishes micro-batch passes. `detail`: record
    the timeline and per-row tallies (a trace, figures and EndToEnd.csv need them; the totals
    are the same without)."""
    spec = spec.resolved()
    topo = load_run_topology(spec)
    codec = None
    if spec.compression:  # "none" and other profiles: the codec element decides
        from netsim.network.compression import load_codec

        codec = load_codec(spec.compression)
    if codec is not None and spec.mode == "simai":
        raise InputError("SimAI-Analytical has no compression; use --mode physical", field="--compression")
    config: dict = {
        "topology": topo.summary(), "backend": spec.backend, "mode": spec.mode, "network": spec.network,
        "compression": spec.compression or "none",
    }  # fmt: skip
    job = Job(topo=topo, ideal=spec.network == "ideal", fidelity=spec.fidelity, codec=codec, progress=progress,
              alltoall=spec.alltoall, detail=detail, transport=spec.transport, dp_replicas=spec.dp_replicas)  # fmt: skip
    if spec.alltoall != "pxn":
        config["alltoall"] = spec.alltoall
    if spec.transport != "maxmin":
        if spec.backend != "flow":
            raise InputError("the window transport is a flow-backend model; use --backend flow", field="--transport")
        config["transport"] = spec.transport
    if spec.checkpoint != "none":
        from netsim.system.checkpoint import CheckpointPlan

        job.checkpoint = CheckpointPlan(
            mode=spec.checkpoint, every=spec.checkpoint_every, replicas=spec.replicas, placement=spec.placement,
            storage_bandwidth=spec.storage_bandwidth,
        )  # fmt: skip
        config["checkpoint"] = asdict(job.checkpoint)
    name = _workload_job(spec, job, config) if spec.workload else _model_job(spec, job, config)
    backend = spec.backend
    if spec.mode == "simai":
        backend = "simai-analytical"
        job.simai_flags = simai_flags_for(topo)
        config["simai_flags"] = asdict(job.simai_flags)
    bd = simulate(backend, job)
    if bd.truncated_at is not None:
        raise InputError(
            f"SimAI-Analytical would stop its report at row {bd.truncated_at} "
            f"(a size-ratio lookup beyond 16 GiB); no totals",
            field="--mode simai",
        )
    memory = job.staged.memory if job.staged is not None else None
    return RunResult(breakdown=bd, config=config, workload=job.layers, csv_name=f"{name}-", memory=memory)
