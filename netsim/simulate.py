"""One simulation run, as `netsim run` and `netsim sweep` describe it: resolve, build, simulate."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from netsim.engine import analytical, simai_analytical
from netsim.engine.result import SUMMARY_FIELDS, Breakdown
from netsim.errors import InputError
from netsim.network.topology import Topology, load_topology
from netsim.units import parse_bandwidth
from netsim.workload.aicb import aiob_sections, generate_aicb, timing_from_sections
from netsim.workload.catalog import resolve_model
from netsim.workload.compute import gpu_compute
from netsim.workload.megatron import build_megatron
from netsim.workload.parallel import resolve_parallelism
from netsim.workload.rows import Workload
from netsim.workload.simai_file import read_simai_workload

BACKENDS = ("flow", "analytical")
MODES = ("physical", "simai")


@dataclass
class RunSpec:
    """Everything `netsim run` takes. Parallelism fields left None keep the preset's values."""

    topology: str
    model: str | None = None
    workload: str | None = None
    backend: str | None = None  # default: flow, or analytical when mode is "simai"
    mode: str = "physical"
    network: str = "real"  # "ideal": infinite bandwidth, zero latency (flow backend)
    fidelity: str = "macro"
    bandwidth: str | None = None
    tp: int | None = None
    pp: int | None = None
    dp: int | None = None
    gbs: int | None = None
    mbs: int | None = None
    seq: int | None = None
    sp: bool | None = None
    schedule: str | None = None
    compression: str | None = None  # profile name or YAML file


@dataclass
class RunResult:
    breakdown: Breakdown
    config: dict = field(default_factory=dict)
    workload: Workload | None = None
    csv_name: str = "netsim"

    def to_dict(self) -> dict:
        d = {k: self.breakdown.summary()[k] for k in SUMMARY_FIELDS}
        d.update({k: v for k, v in self.breakdown.extra.items()})
        d = {k: (float(v) if hasattr(v, "dtype") else v) for k, v in d.items()}
        d["config"] = self.config
        return d


def load_run_topology(spec: RunSpec) -> Topology:
    topo = load_topology(spec.topology)
    if spec.bandwidth:
        try:
            bw = parse_bandwidth(spec.bandwidth)
        except ValueError as e:
            raise InputError(str(e), field="--bandwidth") from None
        topo = topo.with_nic_bandwidth(bw)
    return topo


def simai_flags_for(topo: Topology, gpus: int | None = None) -> simai_analytical.ClusterFlags:
    """SimAI-Analytical's cluster flags for a topology: its -nic/-nv are GiB/s."""
    nv = topo.nvlink_bandwidth / 2**30 if topo.nvlink_bandwidth else -1.0
    return simai_analytical.ClusterFlags(
        gpus=gpus or topo.num_gpus,
        gpus_per_server=topo.gpus_per_server,
        nics_per_server=topo.nics_per_server,
        nvlink_busbw=nv,
        nic_busbw=topo.nic_bandwidth / 2**30,
        gpu_type=topo.gpu,
    )


def run(spec: RunSpec) -> RunResult:
    if spec.backend is None:
        spec = replace(spec, backend="analytical" if spec.mode == "simai" else "flow")
    if spec.backend not in BACKENDS:
        raise InputError(f"unknown backend {spec.backend!r}; expected one of {', '.join(BACKENDS)}", field="--backend")
    if spec.network not in ("real", "ideal"):
        raise InputError(f"unknown network {spec.network!r}; expected real or ideal", field="--network")
    if spec.backend == "flow" and spec.mode == "simai":
        raise InputError("--mode simai is a mode of the analytical backend; add --backend analytical", field="--mode")
    if spec.mode not in MODES:
        raise InputError(f"unknown mode {spec.mode!r}; expected one of {', '.join(MODES)}", field="--mode")
    if (spec.model is None) == (spec.workload is None):
        raise InputError("give exactly one of --model NAME or --workload FILE", field="--model/--workload")
    topo = load_run_topology(spec)
    from netsim.codecs.stage import load_stage

    stage = load_stage(spec.compression)
    if stage is not None and spec.mode == "simai":
        raise InputError("SimAI-Analytical has no compression; use --mode physical", field="--compression")
    config: dict = {
        "topology": topo.summary(),
        "backend": spec.backend,
        "mode": spec.mode,
        "network": spec.network,
        "compression": spec.compression or "none",
    }
    if spec.workload:
        w = read_simai_workload(spec.workload)
        if topo.num_gpus % (w.tp * w.pp):
            raise InputError(
                f"the workload's tp x pp = {w.tp * w.pp} does not divide the topology's {topo.num_gpus} GPUs",
                where=spec.workload,
            )
        dp = topo.num_gpus // (w.tp * w.pp)
        config["workload"] = {"file": str(spec.workload), "rows": len(w.rows)}
        config["parallelism"] = {"tp": w.tp, "pp": w.pp, "dp": dp, "ep": w.ep, "microbatches": w.ga}
        stages, rep = [w] * w.pp, w.pp - 1
        name = Path(spec.workload).stem
        par = None
    else:
        model = resolve_model(spec.model)
        par = resolve_parallelism(
            model,
            topo.num_gpus,
            {
                "tp": spec.tp,
                "pp": spec.pp,
                "dp": spec.dp,
                "gbs": spec.gbs,
                "mbs": spec.mbs,
                "seq": spec.seq,
                "sp": spec.sp,
                "schedule": spec.schedule,
            },
        )
        gpu = gpu_compute(topo.gpu)
        config["model"] = model.model_dump(exclude={"parallelism", "aliases", "description", "source"})
        config["parallelism"] = par.to_dict()
        dp = par.dp
        name = model.name
        if spec.mode == "simai":
            w = generate_aicb(model, par, timing_from_sections(aiob_sections(model, par, gpu)))
            config["workload"] = {"generator": "aicb", "rows": len(w.rows)}
            stages, rep = [w] * par.pp, par.pp - 1
        else:
            sw = build_megatron(model, par, gpu)
            rep = sw.representative()
            w = sw.stages[rep]
            stages = sw.stages
            config["workload"] = {"generator": "netsim-megatron", "rows": len(w.rows), "representative_stage": rep}
    if spec.backend == "flow":
        from netsim.engine import flow

        ideal = spec.network == "ideal"
        if spec.workload:
            bd = flow.simulate_rows(w, topo, ideal=ideal, fidelity=spec.fidelity, compression=stage)
        else:
            bd = flow.simulate_pipeline(
                [s.meta["program"] for s in stages],
                topo,
                par,
                ideal=ideal,
                fidelity=spec.fidelity,
                schedule=par.schedule,
                compression=stage,
            )
    elif spec.mode == "simai":
        flags = simai_flags_for(topo)
        config["simai_flags"] = asdict(flags)
        bd = simai_analytical.simulate(w, flags)
        if bd.truncated_at is not None:
            raise InputError(
                f"SimAI-Analytical would stop its report at row {bd.truncated_at} "
                f"(a size-ratio lookup beyond 16 GiB); no totals",
                field="--mode simai",
            )
    else:
        bd = analytical.simulate(stages, topo, w.tp, dp, w.pp, rep=rep, compression=stage)
    return RunResult(breakdown=bd, config=config, workload=w, csv_name=f"{name}-")
