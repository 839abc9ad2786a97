"""Training options of netsim's Megatron workloads against hand calculations (issue #11's tests)."""

from dataclasses import replace
from pathlib import Path

import pytest

from netsim.collectives.models import ClosedFormModel
from netsim.config.model import ModelConfig, ParallelismConfig
from netsim.network.topology import load_topology
from netsim.system.pipeline import PipelineExecutor
from netsim.workload.compute import GpuCompute, TrainingFit, gpu_compute
from netsim.workload.megatron import build_megatron, layer_params, stage_layers
from netsim.workload.parallel import Parallelism, resolve_parallelism
from netsim.workload.program import ALLGATHER, CP, REDUCESCATTER, Layer, Phase, Send, StageProgram

REPO = Path(__file__).resolve().parents[2]
MODEL = ModelConfig(name="t", layers=8, hidden=1024, heads=16, kv_heads=4, ffn_hidden=4096, vocab=32000, seq=2048,
                    gated_mlp=True)  # fmt: skip


@pytest.fixture(scope="module")
def hgx():
    return load_topology(REPO / "topologies/hgx_h100_512.yaml")


def _par(gpus=512, **kw) -> Parallelism:
    m = MODEL.model_copy(update={"parallelism": ParallelismConfig(**kw)})
    return resolve_parallelism(m, gpus)


def _iteration(par: Parallelism, topo, gpu=None):
    staged = build_megatron(MODEL, par, gpu or gpu_compute("H100"))
    return PipelineExecutor(staged.stages, par, ClosedFormModel(topo), schedule=par.schedule).run(), staged


@pytest.mark.parametrize("p,v,m", [(4, 1, 8), (4, 2, 8), (4, 4, 8), (8, 3, 16)])
def test_interleaved_bubble_is_p_minus_1_over_v_m_with_free_communication(hgx, p, v, m):
    # Equal forward, input-gradient and weight-gradient time per chunk: the ideal iteration is
    # m v (f + b); the interleaved schedule adds (p-1) chunk-steps, (p-1)/(v m) of it.
    row = Layer("l", Phase(1000), Phase(1000), Phase(1000))
    prog = StageProgram(layers=[row], buckets={}, optimizer_ns=0, param_allgather=None, send_fwd=Send(0, "a"),
                        send_bwd=Send(0, "a"))  # fmt: skip
    par = Parallelism(tp=1, pp=p, dp=1, ep=1, gbs=m, mbs=1, seq=128, sp=False, distributed_optimizer=False,
                      schedule="interleaved" if v > 1 else "1f1b", vpp=v)  # fmt: skip
    bd = PipelineExecutor([prog] * (p * v), par, ClosedFormModel(hgx)).run()
    ideal = m * v * 3.0  # us
    assert bd.total_us == pytest.approx(ideal * (1 + (p - 1) / (v * m)))
    assert bd.bubble_us == pytest.approx(ideal * (p - 1) / (v * m))


def test_full_recompute_adds_exactly_one_forward_per_layer():
    gpu = gpu_compute("H100")
    base = build_megatron(MODEL, _par(tp=8), gpu).stages[0]
    full = build_megatron(MODEL, _par(tp=8, recompute="full"), gpu).stages[0]
    fwd = sum(x.fwd.compute_ns for x in base.layers if x.name not in ("embedding", "output_layer")
              and not x.name.startswith("cross_entropy"))  # fmt: skip
    extra = sum(x.ig.compute_ns for x in full.layers) - sum(x.ig.compute_ns for x in base.layers)
    assert extra == fwd
    # ...and its TP collectives too: one more forward's worth per layer, in backward.
    redo = [x for x in full.layers if x.name.endswith("recompute") and x.ig.op]
    assert len(redo) == MODEL.layers * sum(1 for x in base.layers[:5] if x.fwd.op)


def test_fp8_halves_gemm_time_at_equal_efficiency():
    fit = TrainingFit(gemm_efficiency=0.7, fp8_gemm_efficiency=0.7, gemm_half_dim=128, attention_efficiency=0.5,
                      memory_efficiency=0.7)  # fmt: skip
    gpu = GpuCompute("H100", 989e12, 3.35e12, 0.45, 0.45, peak_fp8_flops=1978e12, fit=fit)
    assert gpu.gemm_s(8192, 4096, 4096, "fp8") == pytest.approx(gpu.gemm_s(8192, 4096, 4096, "bf16") / 2)
    a100 = replace(gpu, peak_fp8_flops=None)
    with pytest.raises(Exception, match="no FP8"):
        a100.gemm_s(8192, 4096, 4096, "fp8")


def test_zero3_traffic_per_layer_by_hand(hgx):
    par = _par(gpus=8, tp=1, dp=8, gbs=8, sharding="fsdp")
    prog = build_megatron(MODEL, par, gpu_compute("H100")).stages[0]
    lp = layer_params(MODEL, 1)
    starts = [i for i, x in enumerate(prog.layers) if x.name == "attention_column"]
    assert len(starts) == MODEL.layers
    for i in starts:  # bf16 parameters gathered (before forward, and again before backward)
        assert prog.gathers[i].op == ALLGATHER and prog.gathers[i].bytes == 2 * lp
        assert prog.buckets[i].op == REDUCESCATTER and prog.buckets[i].bytes == 4 * lp  # fp32 gradients
    assert prog.regather and prog.param_allgather is None
    # One iteration on the network: per layer, 2 gathers (forward, backward) and one reduce-scatter.
    bd, _ = _iteration(par, hgx)
    gathers = [s for s in bd.timeline["stage 0 (rank 0)"] if s[1].startswith("params@attention_column")]
    assert len(gathers) == 2 * MODEL.layers


def test_context_parallel_kv_traffic_by_hand():
    par = _par(gpus=16, tp=2, cp=4, dp=2, gbs=16)
    prog = build_megatron(MODEL, par, gpu_compute("H100")).stages[0]
    core = [x for x in prog.layers if x.name == "core_attention"]
    head = MODEL.hidden // MODEL.heads
    kv = 2 * 2 * 1 * 2048 * head * MODEL.kv // 2  # K and V, bf16, the whole sequence, this TP rank's heads
    assert len(core) == MODEL.layers
    assert all(x.fwd.group == CP and x.fwd.op == ALLGATHER and x.fwd.bytes == kv for x in core)
    assert all(x.ig.group == CP and x.ig.bytes == kv for x in core)
    # Each rank holds s/cp tokens: the TP activation collectives shrink by cp.
    tp_rows = [x for x in prog.layers if x.name == "attention_row"]
    assert tp_rows[0].fwd.bytes == 2 * 1 * (2048 // 4) * MODEL.hidden


@pytest.mark.parametrize("option", ["overlap_grad_reduce", "overlap_param_gather", "tp_comm_overlap"])
def test_each_overlap_option_never_slows_an_iteration(hgx, option):
    for layout in ({"tp": 8, "pp": 4, "gbs": 256}, {"tp": 8, "pp": 2, "vpp": 2, "gbs": 256}, {"tp": 4, "gbs": 128}):
        off, _ = _iteration(_par(**layout), hgx)
        on, _ = _iteration(_par(**layout, **{option: True}), hgx)
        assert on.total_us <= off.total_us * (1 + 1e-9), (option, layout)


def test_first_and_last_stage_one_layer_fewer():
    assert stage_layers(126, 16, first_last_fewer=True) == [7] + [8] * 14 + [7]
    assert stage_layers(128, 16) == [8] * 16


def test_rank_order_places_tp_then_cp_then_pp_then_dp():
    par = _par(gpus=64, tp=2, cp=2, pp=4, dp=4, gbs=16, rank_order=["tp", "cp", "pp", "dp"])
    assert par.rank(tp=1) == 1 and par.rank(cp=1) == 2 and par.rank(pp=1) == 4 and par.rank(dp=1) == 16
    assert _par(gpus=64, tp=2, cp=2, pp=4, dp=4, gbs=16).rank(dp=1) == 4  # Megatron's default tp, cp, dp, pp


def test_clos_pod_oversubscription_divides_the_pod_uplinks():
    from netsim.config.topology import ClosSpec, NicSpec, NvlinkSpec, TopologyConfig
    from netsim.network.topology import build_topology

    spec = ClosSpec(kind="clos", hosts_per_leaf=16, leaves_per_pod=4, spines_per_pod=2, cores=2,
                    pod_oversubscription=7.0)  # fmt: skip
    cfg = TopologyConfig(name="c", servers=16, gpus_per_server=8, nvlink=NvlinkSpec(bandwidth="450 GB/s"),
                         nic=NicSpec(count=8, bandwidth="400 Gbps"), fabric=spec)  # fmt: skip
    g = build_topology(cfg).graph
    tiers = {n: d.get("tier") for n, d in g.nodes(data=True) if d.get("kind") == "switch"}
    leaf_up = [d["bandwidth"] for a, b, d in g.edges(data=True) if {tiers.get(a), tiers.get(b)} == {0, 1}]
    core = [d["bandwidth"] for a, b, d in g.edges(data=True) if {tiers.get(a), tiers.get(b)} == {1, 2}]
    nic = 400e9 / 8
    assert leaf_up == pytest.approx([16 * nic / 2] * len(leaf_up))  # 1:1 at the leaf: 16 ports over 2 spines
    # 64 NIC ports per pod, 1:7 above the pod, over 2 spines x 2 cores.
    assert core == pytest.approx([64 * nic / 7 / 4] * len(core))
    assert len(core) == 2 * 2 * 2  # 2 pods


@pytest.mark.parametrize("gated", [True, False])
def test_selective_op_recomputes_every_second_matmul(gated):
    # torchtitan's op-level SAC recomputes the 2nd, 4th and 6th matmul of a block in forward order:
    # wq wk wv wo w1 w3 w2 -> wk, wo, w3 (SwiGLU); wq wk wv wo w1 w2 -> wk, wo, w2. With every GEMM
    # at the same efficiency (no shape term) that is 2 x tokens x (h*kv + h*h + h*f) FLOPs either way.
    model = MODEL.model_copy(update={"gated_mlp": gated})
    fit = TrainingFit(gemm_efficiency=0.7, gemm_half_dim=0, attention_efficiency=0.5, memory_efficiency=0.7)
    gpu = gpu_compute("H100").with_fit(fit)
    par = resolve_parallelism(model.model_copy(update={"parallelism": ParallelismConfig(recompute="selective-op")}), 8)
    layers = build_megatron(model, par, gpu).stages[0].layers
    redo = [x for x in layers if x.name == "op recompute"]
    assert len(redo) == model.layers
    h, kv, f = 1024, 4 * (1024 // 16), 4096
    tokens = par.mbs * par.seq
    gemm_ns = 2 * tokens / (0.7 * 989e12) * 1e9  # per (input x output) weight element
    # ... plus every elementwise op's forward: two fused norm + bias-dropout-add passes (2 + 2 + 7 B
    # per hidden element) and the activation (read 2 and write 1 elements of f, or 1 and 1 plain).
    stream_ns = tokens * (2 * 11 * h + f * 2 * (3 if gated else 2)) / (gpu.hbm_bandwidth * 0.7) * 1e9
    assert redo[0].ig.compute_ns == pytest.approx((h * kv + h * h + h * f) * gemm_ns + stream_ns, rel=1e-3)


def test_eager_kernels_add_the_unfused_elementwise_bytes():
    # Eager PyTorch (torchtitan, no torch.compile) against fused kernels, per token of one layer:
    # RMSNorm 36 B per hidden element instead of 4; RoPE 20 B per q and k element; repeat_kv writes K
    # and V at the query width (read 2 kv + write 2 h, twice); SwiGLU 10 B per f element instead of 6.
    fit = TrainingFit(gemm_efficiency=0.7, gemm_half_dim=0, attention_efficiency=0.5, memory_efficiency=0.7)
    gpu = gpu_compute("H100").with_fit(fit)

    def rows(model, kernels):
        par = resolve_parallelism(model.model_copy(update={"parallelism": ParallelismConfig(kernels=kernels)}), 8)
        layers = build_megatron(model, par, gpu).stages[0].layers
        return {x.name: x for x in layers}, par.mbs * par.seq

    (fused, tokens), (eager, _) = rows(MODEL, "fused"), rows(MODEL, "eager")
    h, kv, f = 1024, 4 * (1024 // 16), 4096
    ns = 1e9 / (gpu.hbm_bandwidth * 0.7)
    attn = tokens * (32 * h + 20 * (h + kv) + 2 * (2 * kv + 2 * h)) * ns
    mlp = tokens * (32 * h + 4 * f) * ns
    for name, extra in (("attention_column", attn), ("mlp_column", mlp)):
        assert eager[name].fwd.compute_ns - fused[name].fwd.compute_ns == pytest.approx(extra, abs=2)
        assert eager[name].ig.compute_ns - fused[name].ig.compute_ns == pytest.approx(2 * extra, abs=2)
    # A GPT-style model (LayerNorm, learned positions, no GQA, GELU) has nothing left to fuse.
    gpt = MODEL.model_copy(update={"gated_mlp": False, "position_embeddings": True, "kv_heads": 16})
    a, b = rows(gpt, "fused")[0], rows(gpt, "eager")[0]
    assert [x.fwd.compute_ns for x in a.values()] == [x.fwd.compute_ns for x in b.values()]


@pytest.mark.parametrize("sharding,per_param", [("none", 2 + 4 + 12), ("distributed-optimizer", 2 + 4 + 12 / 64),
                                                ("fsdp", (2 + 4 + 12) / 64)])  # fmt: skip
def test_model_state_bytes_shard_as_zero_says(sharding, per_param):
    # 512 GPUs at tp 8 pp 1: dp 64. bf16 weights, fp32 gradients, fp32 master + Adam m and v.
    from netsim.workload.megatron import memory_estimate

    par = _par(tp=8, sharding=sharding)
    h, f, kv, v = 1024, 4096, 4 * 64, 32768  # vocab padded to a multiple of 128 x tp (Megatron)
    params = 8 * ((h * (h + 2 * kv) + h * h + 3 * h * f) // 8 + 2 * h) + 2 * v * h // 8 + h
    assert memory_estimate(MODEL, par)["model_state_bytes_per_gpu"] == pytest.approx(params * per_param, rel=1e-9)
