"""Mixture of experts and all-to-all compression against hand calculations (issue #16)."""

from pathlib import Path

import pytest

from netsim.collectives.models import ClosedFormModel
from netsim.network.topology import load_topology
from netsim.system.pipeline import PipelineExecutor, _expert_groups
from netsim.workload.catalog import resolve_model
from netsim.workload.compute import gpu_compute
from netsim.workload.megatron import build_megatron, expert_params
from netsim.workload.parallel import resolve_parallelism
from netsim.workload.program import ALLGATHER, ALLTOALL, DP_EP, EP, ETP, REDUCESCATTER, TP

REPO = Path(__file__).resolve().parents[2]


def test_moe_all_to_all_bytes_per_layer_and_micro_batch_by_hand():
    m = resolve_model("mixtral-8x7b")
    par = resolve_parallelism(m, 512, {"ep": 8})
    assert par.tp == 2 and par.sp and par.etp == 2  # expert TP defaults to TP, as in Megatron-Core
    prog = build_megatron(m, par, gpu_compute("H100")).stages[1]
    # Megatron-Core's dispatcher keeps the sequence-parallel layout: a rank routes seq / tp tokens.
    tokens = par.mbs * par.seq // par.tp
    s = tokens * m.hidden * 2 * m.top_k  # bf16, top-2: every token copy leaves once and comes back once
    a2a = [p for x in prog.layers for p in (x.fwd, x.ig) if p.op == ALLTOALL]
    assert all(p.group == EP and p.bytes == s for p in a2a)
    layers = sum(1 for x in prog.layers if x.name == "attention_column")
    assert len(a2a) == 4 * layers  # dispatch and combine, forward and backward
    # Off-rank bytes per rank per layer and micro-batch: tokens x hidden x 2 B x top-k x (ep-1)/ep, x 4.
    assert sum(p.bytes for p in a2a) / layers * (par.ep - 1) / par.ep == pytest.approx(4 * s * 7 / 8)
    # Then the expert-TP all-gather (and its reduce-scatter back) of what the ETP group received.
    gather = [x for x in prog.layers if x.name == "moe_expert_tp_gather"]
    assert len(gather) == layers and all(x.fwd.op == ALLGATHER and x.fwd.group == TP for x in gather)
    assert all(x.fwd.bytes == par.etp * s and x.ig.op == REDUCESCATTER for x in gather)


def test_expert_tensor_parallelism_folds_the_expert_mesh():
    m = resolve_model("mixtral-8x7b")
    par = resolve_parallelism(m, 512, {"ep": 8, "etp": 1})
    assert (par.tp, par.etp, par.ep, par.edp) == (2, 1, 8, 2 * 64 // 8)
    staged = build_megatron(m, par, gpu_compute("H100"))
    prog = staged.stages[1]
    assert not [x for x in prog.layers if x.name.startswith("moe_expert_tp")]  # no expert TP: no AG/RS
    assert expert_params(m, par) == 3 * m.hidden * m.ffn  # a whole expert per rank
    # Same expert GEMM work per rank as with etp = tp: routed tokens x etp, f / etp columns.
    par2 = resolve_parallelism(m, 512, {"ep": 8})
    t1, t2 = (next(x.fwd.compute_ns for x in build_megatron(m, p, gpu_compute("H100")).stages[1].layers
                   if x.name == "moe_experts") for p in (par, par2))  # fmt: skip
    assert t1 == pytest.approx(t2, rel=0.15)
    # The mesh (etp fastest, then ep, then edp) over stage 0's ranks 0..127 (TP fastest, then DP):
    # an EP group is 8 consecutive ranks, spanning 4 DP replicas x 2 TP ranks.
    ex = PipelineExecutor(staged.stages, par, ClosedFormModel(load_topology(REPO / "topologies/hgx_h100_512.yaml")))
    assert ex.replicas % 4 == 0
    etpg, epg, edpg = _expert_groups(par, 0, ex.replicas)
    assert epg[0] == list(range(8)) and epg[1] == list(range(8, 16))
    assert edpg[0] == list(range(0, 128, 8)) and len(edpg) == 8
    assert etpg[0] == [0]


def test_expert_tp_wider_than_tp_spans_dp_replicas():
    m = resolve_model("mixtral-8x7b")
    par = resolve_parallelism(m, 512, {"ep": 4, "etp": 4})
    etpg, epg, edpg = _expert_groups(par, 0, 8)
    assert etpg[0] == [0, 1, 2, 3]  # TP ranks 0-1 of DP replicas 0 and 1
    assert epg[0] == [0, 4, 8, 12] and epg[1] == [1, 5, 9, 13]
    assert len(edpg) == 16 and edpg[0] == list(range(0, 128, 16))
    ex = [x for x in build_megatron(m, par, gpu_compute("H100")).stages[0].layers if x.name == "moe_expert_tp_gather"]
    assert ex and ex[0].fwd.group == ETP


def test_expert_gradients_reduce_over_the_expert_data_parallel_group():
    m = resolve_model("mixtral-8x7b")
    par = resolve_parallelism(m, 512, {"ep": 8})
    prog = build_megatron(m, par, gpu_compute("H100")).stages[1]
    ex = [c for c in prog.buckets.values() if c.group == DP_EP]
    assert ex and all(c.bytes == 4 * expert_params(m, par) for c in ex)
    # 8 experts over ep 8: one expert per rank, SwiGLU's three matrices, TP-sharded.
    assert expert_params(m, par) == 3 * m.hidden * m.ffn // par.tp


def test_mixtral_iteration_reports_exposed_ep():
    topo = load_topology(REPO / "topologies/hgx_h100_512.yaml")
    m = resolve_model("mixtral-8x7b")
    par = resolve_parallelism(m, 512, {"ep": 8})
    staged = build_megatron(m, par, gpu_compute("H100"))
    bd = PipelineExecutor(staged.stages, par, ClosedFormModel(topo)).run()
    assert bd.exposed_ep_us > 0 and bd.total_us > bd.compute_us


def test_ep_needs_a_moe_model_it_divides():
    from netsim.errors import InputError

    with pytest.raises(InputError, match="mixture-of-experts"):
        resolve_parallelism(resolve_model("70B"), 512, {"ep": 8})
    with pytest.raises(InputError, match="mixture-of-experts"):
        resolve_parallelism(resolve_model("70B"), 512, {"etp": 1})
    with pytest.raises(InputError, match="etp x ep = 8 x 8 does not divide"):
        resolve_parallelism(resolve_model("mixtral-8x7b"), 64, {"ep": 8, "etp": 8, "tp": 2, "pp": 4})
    with pytest.raises(InputError, match="sequence parallelism"):
        resolve_parallelism(resolve_model("mixtral-8x7b"), 512, {"ep": 8, "sp": False})


def test_dlrm_all_to_all_speed_up_formula_with_a_gpu_codec(tmp_path):
    # SC'24 DLRM paper's formula (reference/peers.md section 4): speed-up = 1 / (r + B/Tc + B/Td) for
    # a GPU codec of compress / decompress throughputs Tc, Td on a link of B. Huffman: r = 0.4167,
    # Tc 200 GB/s, Td 58 GB/s at B = 12.5 GB/s (100 Gbps).
    from netsim.collectives.bench import bench_collective
    from netsim.network.compression import load_codec

    fat = load_topology(REPO / "topologies/fat_tree_512.yaml").with_nic_bandwidth(12.5e9)
    p = tmp_path / "huffman.yaml"
    p.write_text('name: huffman\nplacement: gpu\ncompress_throughput: "200 GB/s"\ndecompress_throughput: "58 GB/s"\n'
                 'latency: "0 us"\npipelined: false\nratios: {default: 0.416667}\n')  # fmt: skip
    S = 2**30
    plain = bench_collective(fat, "alltoall", list(range(8)), S, spray=True)["time_us"]
    comp = bench_collective(fat, "alltoall", list(range(8)), S, spray=True, compression=load_codec(str(p)))["time_us"]
    want = 1 / (0.416667 + 12.5 / 200 + 12.5 / 58)
    assert plain / comp == pytest.approx(want, rel=0.02)


def test_study_dlrm_reproduces_the_papers_speed_up_rows_from_simulated_all_to_alls():
    # reference/peers.md section 4: ANS 1.71x / 1.35x, Huffman 1.42x / 1.02x at 12.5 / 25 GB/s,
    # break-even about 46 and 26 GB/s (its formula on the table's median ratios and throughputs).
    from netsim.report.dlrm_study import study

    fat = load_topology(REPO / "topologies/fat_tree_512.yaml")
    rows = {(r.encoder, r.bandwidth_GBps): r for r in study(fat, ("dlrm-ans", "dlrm-huffman"), (12.5, 25.0))}
    want = {("dlrm-ans", 12.5): 1.71, ("dlrm-ans", 25.0): 1.35, ("dlrm-huffman", 12.5): 1.42,
            ("dlrm-huffman", 25.0): 1.02}  # fmt: skip
    for key, s in want.items():
        assert rows[key].speedup == pytest.approx(s, rel=0.02), key
    assert rows[("dlrm-ans", 12.5)].breakeven_GBps == pytest.approx(46, rel=0.02)
    assert rows[("dlrm-huffman", 12.5)].breakeven_GBps == pytest.approx(26, rel=0.02)


def test_dlrm_embedding_all_to_all_and_mlp_all_reduce_by_hand(tmp_path):
    from netsim.workload.dlrm import EMBEDDING, build_dlrm, dlrm_parallelism, find_dlrm

    cfg = find_dlrm("dlrm-criteo-tb")
    assert cfg is not None and cfg.tables == 26 and cfg.embedding_dim == 128
    par = dlrm_parallelism(cfg, 8)
    prog = build_dlrm(cfg, par, gpu_compute("H100")).stages[0]
    emb = prog.layers[0]
    # Table-wise over 8 GPUs: the busiest holds ceil(26/8) = 4 tables and sends their pooled fp32
    # vectors for the whole batch, split over the 8 owners of the samples; its gradient comes back.
    want = 4 * cfg.batch * 128 * 4
    assert (emb.fwd.op, emb.fwd.group, emb.fwd.bytes, emb.fwd.traffic) == (ALLTOALL, EP, want, EMBEDDING)
    assert (emb.ig.op, emb.ig.bytes) == (ALLTOALL, want)
    # The MLPs' fp32 gradients: 13-512-256-128 and 479-1024-1024-512-256-1 (weights and biases).
    dims_b, dims_t = [13, 512, 256, 128], [128 + 27 * 26 // 2, 1024, 1024, 512, 256, 1]
    params = sum(a * b + b for d in (dims_b, dims_t) for a, b in zip(d, d[1:]))
    (grads,) = prog.buckets.values()
    assert (grads.op, grads.bytes) == ("allreduce", 4 * params)
    row = build_dlrm(cfg.model_copy(update={"sharding": "row-wise"}), par, gpu_compute("H100")).stages[0].layers[0]
    assert (row.fwd.op, row.fwd.bytes, row.ig.op) == ("reducescatter", 26 * cfg.batch * 128 * 4, "allgather")


@pytest.mark.parametrize("flag", [["--tp", "8"], ["--pp", "2"], ["--gbs", "64"], ["--overlap-grad-reduce"]])
def test_dlrm_refuses_transformer_options_instead_of_dropping_them(flag):
    # DLRM shards embeddings over every GPU with data-parallel MLPs: a --tp that changed nothing
    # would be a wrong answer with exit 0.
    from click.testing import CliRunner

    from netsim.cli import main

    topo = str(REPO / "topologies/hgx_h100_512.yaml")
    r = CliRunner().invoke(main, ["run", topo, "--model", "dlrm", "--backend", "analytical", *flag])
    assert r.exit_code == 2
    assert r.output.strip().splitlines()[-1].startswith(f"netsim: error: {flag[0]}: does not apply to a DLRM preset")


@pytest.mark.parametrize("name", ["qwen2-57b-a14b", "deepseek-v3-like"])
def test_shared_expert_presets_count_their_shared_expert(name):
    # A shared expert is a dense SwiGLU MLP every token passes through: 3 x hidden x its size
    # parameters per layer (TP-sharded), reduced with the non-expert gradients over DP; the routed
    # experts keep their own expert-DP bytes.
    from netsim.workload.megatron import layer_params, shared_expert_params

    m = resolve_model(name)
    par = resolve_parallelism(m, 512)
    assert shared_expert_params(m, par.tp) == 3 * m.hidden * m.shared_expert_ffn // par.tp
    prog = build_megatron(m, par, gpu_compute("H100")).stages[1]
    shared = [x for x in prog.layers if x.name == "moe_shared_expert"]
    assert len(shared) == sum(1 for x in prog.layers if x.name == "attention_column") > 0
    assert shared[0].fwd.compute_ns > 0
    if par.tp > 1:  # Megatron-Core's SharedExpertMLP: its own SP all-gather (router row) and reduce-scatter
        router = next(x for x in prog.layers if x.name == "moe_router")
        assert router.fwd.collective.op == ALLGATHER and shared[0].fwd.collective.op == REDUCESCATTER
        assert shared[0].fwd.group == router.fwd.group == TP
    dense = sum(c.bytes for c in prog.buckets.values() if c.group != DP_EP)
    layers = len(shared)
    grad_bytes = 4  # fp32 reduce-scatter of bf16 training (Megatron's main_grad)
    assert dense >= layers * grad_bytes * layer_params(m, par.tp)
    assert layer_params(m, par.tp) > shared_expert_params(m, par.tp) + m.hidden * m.experts


def test_moe_export_writes_the_ep_groups_and_reads_back(tmp_path):
    from click.testing import CliRunner

    from netsim.cli import main
    from netsim.workload.simai_file import read_simai_workload, to_program

    out = tmp_path / "mixtral.txt"
    args = ["export", "simai", "--model", "mixtral-8x7b", "--gpus", "512", "--ep", "4", "--format", "netsim"]
    r = CliRunner().invoke(main, [*args, "-o", str(out)])
    assert r.exit_code == 0, r.output
    prog = to_program(read_simai_workload(out))
    m = resolve_model("mixtral-8x7b")
    tokens = 1 * m.seq // 2  # the preset's micro-batch of one sequence, sequence-parallel over tp 2
    a2a = [p for x in prog.layers for p in (x.fwd, x.ig) if p.op == ALLTOALL]
    assert prog.ep == 4 and a2a and all(p.group == EP and p.bytes == tokens * m.hidden * 2 * m.top_k for p in a2a)
    assert any(x.wg.group == DP_EP for x in prog.layers)  # expert gradients over the expert-DP group
    r = CliRunner().invoke(main, [*args[:-2], "-o", str(tmp_path / "aicb.txt")])
    assert r.exit_code == 2 and "--format" in r.output and not (tmp_path / "aicb.txt").exists()
