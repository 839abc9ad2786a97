"""`netsim validate published`: predict the iteration time of published training runs and compare.

Manifest layout: ../shared/validation/published/README.md (`netsim-published/1`). Every case is
built from the manifest alone: its cluster becomes a topology (a 3-tier Clos, `clos_fabric`), its
model a ModelConfig, its training a ParallelismConfig; a `null` takes the documented default in
DEFAULTS and the row says which defaults it used. Nothing is set per case.
"""

from __future__ import annotations

import math
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from netsim.collectives.models import ClosedFormModel, FlowModel
from netsim.config.loader import read_yaml
from netsim.config.model import ModelConfig, ParallelismConfig
from netsim.config.topology import ClosSpec, NicSpec, NvlinkSpec, TopologyConfig
from netsim.errors import InputError
from netsim.network.topology import Topology, build_topology
from netsim.system.pipeline import PipelineExecutor
from netsim.system.result import Breakdown
from netsim.workload.compute import GpuCompute, gpu_compute
from netsim.workload.megatron import build_megatron, memory_estimate
from netsim.workload.parallel import Parallelism, resolve_parallelism
from netsim.workload.program import StagedProgram

SCHEMA = "netsim-published/1"

# What a `null` in a case means (README "validate published"); each is Megatron-LM's default or
# the common build of the named fabric, never a value chosen per case.
DEFAULTS = {
    "mbs": "1 with a pipeline; without one, the largest divisor of the replica's batch that fits in memory",
    "recompute": "none",  # Megatron's default (no --recompute-granularity)
    "schedule": "1f1b",  # interleaved only when the source says so (or gives vpp > 1)
    "sequence_parallel": "on when tp > 1",
    "grad_reduce": False,  # Megatron's --overlap-grad-reduce is off unless given
    "param_gather": False,
    "tp_comm": False,
    "grad_reduce_dtype": "fp32 for bf16/fp8, fp16 for fp16 (Megatron's main_grad rule)",
    "vpp": "2 layers per model chunk under the interleaved schedule (fewer chunks if they do not divide)",
    "rail_optimized": False,
    "oversubscription": 1.0,
    "tiers": 3,
    "gpus_per_tor": 32,  # NIC ports per leaf: a 64-port switch with half its ports down
    "gpus_per_pod": 512,  # NIC ports under one set of spines in a 3-tier build
}
# DP replicas whose TP, CP and pipeline traffic is put on the network (DP collectives always span
# every rank). Replicas are symmetric; on these 1:1 fabrics their TP/PP traffic shares few links, and
# one replica keeps the 3072-GPU cases at seconds instead of minutes (README "validate published").
REPLICAS = 1
GPU_FAMILIES = ("A100", "H100", "H200", "H800", "B200", "GB200")
# Of a GPU's memory, what weights, gradients, optimizer states and activations may take: the CUDA
# context, NCCL's buffers, GEMM workspaces and the caching allocator's fragmentation hold the rest.
USABLE_HBM = 0.9


@dataclass
class CaseResult:
    """One case: the published and predicted seconds, the error, the breakdown, the defaults used."""

    case: str
    gpus: int = 0
    parallelism: str = ""
    published_s: float = 0.0
    predicted_s: float | None = None
    rel_err: float | None = None
    breakdown: dict = field(default_factory=dict)
    defaults: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def rel_err(predicted: float, measured: dict) -> float:
    """Relative error against t_iter_s, or the distance to the nearest end of t_iter_s_range (0 inside)."""
    lo, hi = measured.get("t_iter_s_range") or [measured["t_iter_s"]] * 2
    ref = lo if predicted < lo else hi if predicted > hi else predicted
    return predicted / ref - 1


def geomean_abs(errors: list[float]) -> float:
    """exp(mean |ln(1 + e)|) - 1: the symmetric average error the acceptance check reports."""
    return math.exp(sum(abs(math.log(1 + e)) for e in errors) / len(errors)) - 1 if errors else float("nan")


def _val(d: dict, key: str, used: list[str], default=None):
    v = d.get(key)
    if v is None:
        used.append(f"{key}={DEFAULTS.get(key, default)}")
        return DEFAULTS.get(key, default) if default is None else default
    return v


def clos_fabric(cluster: dict, used: list[str]) -> ClosSpec:
    """The case's fabric as netsim's 3-tier Clos: leaves of gpus_per_tor NIC ports, pods of
    gpus_per_pod, oversubscription at the leaf and at the pod tier."""
    fab = cluster.get("fabric") or {}
    kind = fab.get("kind")
    if kind not in ("fat-tree", "clos"):
        raise InputError(f"fabric kind {kind!r} is not one netsim builds (fat-tree, clos)", field="cluster.fabric.kind")
    g, n = cluster["gpus_per_server"], cluster["nics_per_server"]
    ports_per_gpu = n / g
    tiers = _val(fab, "tiers", used)
    per_leaf = max(1, round(_val(fab, "gpus_per_tor", used) * ports_per_gpu))
    pod_ports = cluster["gpus"] * ports_per_gpu if tiers == 2 else _val(fab, "gpus_per_pod", used) * ports_per_gpu
    leaves = max(1, math.ceil(pod_ports / per_leaf))
    rail = bool(_val(fab, "rail_optimized", used))
    if rail and leaves % n:
        leaves += n - leaves % n
    return ClosSpec(
        kind="clos", hosts_per_leaf=per_leaf, leaves_per_pod=leaves, rail_optimized=rail,
        oversubscription=float(_val(fab, "oversubscription", used)),
        pod_oversubscription=float(fab.get("pod_oversubscription") or 1.0),
    )  # fmt: skip


def case_topology(case: dict, used: list[str]) -> TopologyConfig:
    c = case["cluster"]
    return TopologyConfig(
        name=c.get("name") or case["id"], gpu=c["gpu"], servers=c["gpus"] // c["gpus_per_server"],
        gpus_per_server=c["gpus_per_server"], nvlink=NvlinkSpec(bandwidth=f"{c['nvlink_GBps_per_direction']} GB/s"),
        nic=NicSpec(count=c["nics_per_server"], bandwidth=f"{c['nic_gbps']} Gbps"), fabric=clos_fabric(c, used),
    )  # fmt: skip


def case_model(case: dict) -> ModelConfig:
    m = case["model"]
    return ModelConfig(
        name=case["id"], layers=m["layers"], hidden=m["hidden"], heads=m["heads"], kv_heads=m.get("kv_heads"),
        ffn_hidden=m.get("ffn_hidden"), vocab=m["vocab"], seq=m["seq"], gated_mlp=bool(m.get("gated_mlp")),
        position_embeddings=m.get("position_embeddings") == "learned",
    )  # fmt: skip


def _torchtitan(case: dict) -> bool:
    return "torchtitan" in f"{case.get('source', '')} {case.get('cluster', {}).get('name', '')}".lower()


def _recompute(case: dict, value: str, used: list[str]) -> str:
    """`selective` means what the framework that ran the case means by it: Megatron's attention-core
    recompute, or torchtitan's op-level SAC (every second matmul of a block) for a torchtitan run."""
    if value == "selective" and _torchtitan(case):
        used.append("recompute=selective-op (torchtitan's selective AC)")
        return "selective-op"
    return value


def _kernels(case: dict, used: list[str]) -> str:
    """Megatron and NeMo run fused kernels (Transformer Engine, Apex). torchtitan runs eager PyTorch
    unless torch.compile is on (`training.compile`, off by default); the schema has no field for it,
    so the case's own text decides where it names torch.compile, and Float8 runs count as compiled
    (torchtitan's Float8 recipe is benchmarked with torch.compile)."""
    if case["training"].get("kernels"):  # netsim's own field (not in netsim-published/1), for what-ifs
        return case["training"]["kernels"]
    if not _torchtitan(case):
        return "fused"
    text = f"{case['measured'].get('derivation', '')} {case.get('cluster', {}).get('note', '')}".lower()
    if re.search(r"\b(no|without) torch\.compile", text):
        return "eager"
    if "torch.compile" in text or case["training"].get("precision") == "fp8":
        return "fused"
    used.append("kernels=eager (torchtitan's training.compile default: off)")
    return "eager"


def case_training(case: dict, used: list[str]) -> dict:
    """The case's training section as ParallelismConfig fields, nulls replaced by DEFAULTS."""
    t, ov = case["training"], case["training"].get("overlap") or {}
    vpp = t.get("vpp")
    sched = t.get("schedule") or ("interleaved" if (vpp or 1) > 1 else None)
    if sched is None:
        used.append(f"schedule={DEFAULTS['schedule']}")
        sched = DEFAULTS["schedule"]
    if sched.startswith("interleaved") and vpp is None:
        used.append(f"vpp={DEFAULTS['vpp']}")
    out = {
        "tp": t["tp"], "pp": t["pp"], "dp": t["dp"], "cp": t.get("cp") or 1, "gbs": t["gbs"],
        "mbs": t.get("mbs") or 1, "vpp": vpp, "schedule": sched, "precision": t["precision"],
        "recompute": _recompute(case, _val(t, "recompute", used), used), "sp": t.get("sequence_parallel"),
        "kernels": _kernels(case, used),
        "sharding": t.get("sharding") or "none", "overlap_grad_reduce": bool(_val(ov, "grad_reduce", used)),
        "overlap_param_gather": bool(_val(ov, "param_gather", used)), "tp_comm_overlap": bool(_val(ov, "tp_comm", used)),
        "grad_reduce_dtype": t.get("grad_reduce_dtype"),
        "first_last_stage_one_layer_fewer": bool(t.get("first_last_stage_one_layer_fewer")),
    }  # fmt: skip
    if t.get("mbs") is None and t["pp"] > 1:
        used.append("mbs=1")  # without a pipeline build_case takes the largest that fits (_fitting_mbs)
    if t.get("sequence_parallel") is None:
        used.append(f"sequence_parallel={DEFAULTS['sequence_parallel']}")
    if t.get("grad_reduce_dtype") is None:
        used.append(f"grad_reduce_dtype={DEFAULTS['grad_reduce_dtype']}")
    if t.get("rank_order"):
        out["rank_order"] = list(t["rank_order"])
    return out


def case_gpu(case: dict, gpus: dict, calibration: str | None) -> GpuCompute:
    """The calibration of the case GPU's family, at the datasheet peaks the manifest gives."""
    name = case["cluster"]["gpu"]
    family = next((f for f in GPU_FAMILIES if name.upper().startswith(f)), None)
    if family is None or name not in gpus:
        raise InputError(f"GPU {name!r} has no entry in the manifest's gpus table or no calibration family",
                         field="cluster.gpu")  # fmt: skip
    g = gpus[name]
    base = gpu_compute(family, calibration)
    return base.with_peaks(float(g["bf16_tflops"]), g.get("fp8_tflops"), float(g["hbm_TBps"]) * 1e12)


@dataclass
class BuiltCase:
    """A case turned into netsim's inputs: topology, model, parallelism, GPU calibration, and the
    defaults its null fields took."""

    id: str
    topo: Topology
    model: ModelConfig
    par: Parallelism
    gpu: GpuCompute
    used: list[str]


def build_case(case: dict, gpus: dict, calibration: str | None = None) -> BuiltCase:
    used: list[str] = []
    cid = case.get("id", "?")
    topo = build_topology(case_topology(case, used), where=cid)
    training = case_training(case, used)
    model = case_model(case).model_copy(update={"parallelism": ParallelismConfig.model_validate(training)})
    par = resolve_parallelism(model, topo.num_gpus, where=f"{cid}: training")
    if case["training"].get("mbs") is None and par.pp == 1:
        par = _fitting_mbs(model, par, _hbm_bytes(case, gpus), used)
    return BuiltCase(cid, topo, model, par, case_gpu(case, gpus, calibration), used)


def _hbm_bytes(case: dict, gpus: dict) -> float:
    """The GPU's memory: the gpus table's `hbm_GB`, else the size its name gives (A100-SXM4-80GB)."""
    name = case["cluster"]["gpu"]
    gb = (gpus.get(name) or {}).get("hbm_GB")
    if gb is None:
        m = re.search(r"(\d+)\s*GB", name, re.IGNORECASE)
        if m is None:
            raise InputError(f"GPU {name!r}: no hbm_GB in the gpus table and no memory size in its name",
                             field="cluster.gpu")  # fmt: skip
        gb = m.group(1)
    return float(gb) * 1e9


def _fitting_mbs(model: ModelConfig, par: Parallelism, hbm: float, used: list[str]) -> Parallelism:
    """Without a pipeline, micro-batches exist only to bound activation memory (gradient
    accumulation), so an unstated mbs is the largest divisor of the replica's batch whose weights,
    gradients, optimizer states and activations fit in USABLE_HBM of the GPU's memory (1 if none does)."""
    local = par.gbs // par.dp
    for mbs in (d for d in range(local, 0, -1) if local % d == 0):
        cand = replace(par, mbs=mbs)
        mem = memory_estimate(model, cand)
        if mem["model_state_bytes_per_gpu"] + mem["activation_bytes_per_gpu"] <= USABLE_HBM * hbm or mbs == 1:
            break
    used.append(f"mbs={mbs} (no pipeline: the largest that fits {USABLE_HBM:.0%} of {hbm / 1e9:.0f} GB)")
    return cand


def simulate_case(
    b: BuiltCase, backend: str = "flow", gpu: GpuCompute | None = None, replicas: int = REPLICAS
) -> tuple[Breakdown, StagedProgram]:
    """One iteration of a built case (with another GPU calibration when given)."""
    staged = build_megatron(b.model, b.par, gpu or b.gpu)
    net = FlowModel(b.topo) if backend == "flow" else ClosedFormModel(b.topo)
    ex = PipelineExecutor(staged.stages, b.par, net, schedule=b.par.schedule, replicas=replicas, detail=False)
    return ex.run(), staged


def run_case(
    case: dict, gpus: dict, backend: str = "flow", calibration: str | None = None, replicas: int = REPLICAS
) -> CaseResult:
    """Build one case from the manifest and simulate one iteration; an inexpressible case is an
    error row naming what is missing."""
    res = CaseResult(case=case.get("id", "?"), published_s=float((case.get("measured") or {}).get("t_iter_s", 0)))
    try:
        b = build_case(case, gpus, calibration)
        bd, staged = simulate_case(b, backend, replicas=replicas)
    except (InputError, ValueError, KeyError, TypeError) as e:
        res.error = str(e) if not isinstance(e, KeyError) else f"missing field {e}"
        return res
    par = b.par
    res.gpus, res.defaults = b.topo.num_gpus, b.used
    res.parallelism = f"tp{par.tp} cp{par.cp} pp{par.pp}x{par.vpp} dp{par.dp} mbs{par.mbs} m{par.microbatches}"
    res.predicted_s = bd.total_us / 1e6
    res.rel_err = rel_err(res.predicted_s, case["measured"])
    res.breakdown = breakdown_s(bd, staged)
    return res


def breakdown_s(bd: Breakdown, staged: StagedProgram) -> dict:
    """The critical stage's parts in seconds (compute without recompute, recompute, bubble, exposed
    TP / CP / DP / PP) and the first rank's activation memory."""
    x = bd.extra
    return {
        "compute_s": (bd.compute_us - x.get("recompute_us", 0.0)) / 1e6, "recompute_s": x.get("recompute_us", 0.0) / 1e6,
        "bubble_s": bd.bubble_us / 1e6, "exposed_tp_s": bd.exposed_tp_us / 1e6,
        "exposed_cp_s": x.get("exposed_cp_us", 0.0) / 1e6, "exposed_dp_s": bd.exposed_dp_us / 1e6,
        "exposed_pp_s": bd.exposed_pp_us / 1e6, "activation_GiB": staged.memory["activation_bytes_per_gpu"] / 2**30,
    }  # fmt: skip


def load_manifest(path: str | Path) -> tuple[list[dict], dict]:
    data = read_yaml(Path(path))
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise InputError(f"expected schema: {SCHEMA}", where=str(path), field="schema")
    cases = data.get("cases")
    if not isinstance(cases, list) or not cases:
        raise InputError("expected a non-empty list of cases", where=str(path), field="cases")
    return cases, data.get("gpus") or {}


def _one(args) -> CaseResult:
    return run_case(*args)


def validate(
    path: str | Path, backend: str = "flow", calibration: str | None = None, workers: int = 1, replicas: int = REPLICAS
) -> list[CaseResult]:
    """Every case of a manifest, in manifest order (deterministic with any number of workers)."""
    cases, gpus = load_manifest(path)
    jobs = [(c, gpus, backend, calibration, replicas) for c in cases]
    if workers <= 1:
        return [_one(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_one, jobs))
