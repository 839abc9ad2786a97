"""LIBRA: multi-dimensional topologies, hierarchical collectives, cost, and the bandwidth optimiser."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from netsim.cli import main
from netsim.collectives.models import FlowModel
from netsim.collectives.multidim import dim_traffic, group_dims, hierarchical_phases
from netsim.config.loader import parse_model
from netsim.config.topology import TopologyConfig
from netsim.network.cost import load_cost_table, network_cost
from netsim.network.topology import build_topology
from netsim.system.libra import LibraFlowLoop, loop_model
from netsim.workload.simai_file import read_simai_workload, to_program

LIBRA = Path(__file__).resolve().parents[3] / "shared" / "reference" / "libra"
KINDS = {"Ring": "ring", "FullyConnected": "fully_connected", "Switch": "switch"}


def libra_file(name: str) -> Path:
    """One of LIBRA's own inputs in ../shared; the test skips, as the other reference tests do, without it."""
    if not LIBRA.exists():
        pytest.skip("../shared/ is not beside the checkout")
    return LIBRA / name


def topo_of(dims, bw=100e9):
    data = {"name": "md", "servers": int(np.prod([d[1] for d in dims])), "gpus_per_server": 1,
            "fabric": {"kind": "multi_dim", "dims": [
                {"kind": k, "size": n, "bandwidth": f"{bw / 1e9} GB/s", "latency": "0 ns", "tier": t}
                for k, n, t in dims]}}  # fmt: skip
    return build_topology(parse_model(TopologyConfig, data, "test"))


def libra_topo(d: str):
    spec = json.loads(libra_file(f"{d}.json").read_text())
    dims = [(KINDS[k], n, t.lower()) for n, k, t in zip(spec["npus-count"], spec["topology"], spec["network-type"])]
    return topo_of(dims)


def libra_program(model: str):
    return to_program(read_simai_workload(libra_file(f"transformer_{model}.txt")))


@pytest.mark.parametrize("kind, n", [("ring", 8), ("fully_connected", 8), ("switch", 8), ("ring", 2)])
def test_each_dimension_kind_moves_libra_traffic_at_b(kind, n):
    # One dimension of n NPUs at b = 100 GB/s per NPU: an all-reduce of S moves 2 S (n-1)/n per NPU,
    # so it takes 2 S (n-1)/n / b on the flow model whatever joins the NPUs (ring links of b/2 each
    # way used both ways round, all-to-all links of b/(n-1) used directly, a switch port of b).
    topo = topo_of([(kind, n, "node")])
    S = 2**30
    loop = LibraFlowLoop.__new__(LibraFlowLoop)  # only the phase planner and the model
    loop.sizes, loop.kinds, loop.groups = [n], [kind], {"MP": [list(range(n))]}
    loop.model, loop._plans = FlowModel(topo), {}
    from netsim.workload.program import TP, Phase

    env = loop.model.env
    env.process(loop.comm(Phase(0, "allreduce", TP, S)))
    env.run()
    assert env.now == pytest.approx(2 * S * (n - 1) / n / 100e9, rel=1e-3)


def test_hierarchical_allreduce_traffic_and_phases():
    # 175B's MP group of 16 on [2, 8, 8, 8] takes dims 0 and 1; its DP group of 64 dims 2 and 3.
    assert group_dims([2, 8, 8, 8], 16) == [(0, 2), (1, 8)]
    assert group_dims([2, 8, 8, 8], 64, outermost=True) == [(2, 8), (3, 8)]
    assert group_dims([8, 8, 16], 16) == [(0, 8), (1, 2)]  # part of a dimension
    S = 2**20
    t = dim_traffic("allreduce", S, [(0, 2), (1, 8)], 4)
    assert t.tolist() == [2 * S * 1 / 2, 2 * (S / 2) * 7 / 8, 0, 0]  # the chunk shrinks by dim 0's size
    g = dim_traffic("allgather", S, [(0, 2), (1, 8)], 4)
    assert g.tolist() == [S * 8 * 1, S * 7, 0, 0]
    phases = hierarchical_phases("allreduce", S, list(range(16)), [2, 8, 8, 8])
    assert [(op, len(subs), size) for op, subs, size, _d in phases] == [
        ("reducescatter", 8, S), ("reducescatter", 2, S / 2), ("allgather", 2, S / 2), ("allgather", 8, S)]  # fmt: skip


def test_flow_model_matches_the_sequential_closed_form():
    # The 4D 175B iteration on the flow model equals LIBRA's per-dimension traffic summed over
    # dimensions (the flow model runs the phases in sequence).
    topo, prog = libra_topo("4d"), libra_program("175B")
    b = np.array([142.9, 125.0, 50.8, 6.3])
    seq = loop_model(prog, [2, 8, 8, 8], "fwd-in-bckwd", pipelined=False)
    flow = LibraFlowLoop(prog, topo.with_dim_bandwidths(b * 1e9), "fwd-in-bckwd").run()
    assert flow == pytest.approx(seq.time_ns(b), rel=1e-4)


def test_two_dimension_closed_form_ratio():
    # 2D 17B (MP 1): every collective is a DP all-reduce over [8, 128], taking max(A/b0, C/b1) per
    # byte with A = 2 (7/8) on dim 0 and C = 2 (1/8)(127/128) on dim 1 (the chunk shrank by 8); the
    # optimum balances the two: b0/b1 = A/C = 7.06.
    ratio = (2 * 7 / 8) / (2 * (127 / 128) / 8)
    assert ratio == pytest.approx(7.06, abs=0.005)
    from netsim.optimize.bandwidth import BandwidthProblem

    m = loop_model(libra_program("17B"), [8, 128], "fwd-in-bckwd")
    s = BandwidthProblem(m, 325.0, np.array([2.0, 57.4])).solve("perf")
    assert s.bandwidth_GBps[0] / s.bandwidth_GBps[1] == pytest.approx(ratio, rel=1e-3)


@pytest.mark.parametrize(
    "net, model, objective, budget, want",
    [
        ("4d", "175B", "perf", 325, [43.96, 38.47, 15.62, 1.95]),
        ("4d", "1T", "perf", 325, [44.28, 38.74, 4.84, 12.14]),
        ("4d", "17B", "perf", 325, [50.05, 43.77, 5.49, 0.71]),
        ("3d", "175B", "perf", 325, [81.92, 13.77, 4.30]),
        ("2d", "17B", "perf", 325, [87.58, 12.42]),
        ("2d", "17B", "perf-per-cost", 100, [98.46, 1.54]),
    ],
)
def test_optimiser_reproduces_libras_splits(tmp_path, net, model, objective, budget, want):
    spec = json.loads(libra_file(f"{net}.json").read_text())
    dims = "".join(f'\n    - {{kind: {KINDS[k]}, size: {n}, bandwidth: "10 GB/s", tier: {t.lower()}}}'
                   for n, k, t in zip(spec["npus-count"], spec["topology"], spec["network-type"]))  # fmt: skip
    (tmp_path / "t.yaml").write_text(f"name: l\nservers: 1024\nfabric:\n  kind: multi_dim\n  dims:{dims}\n")
    r = CliRunner().invoke(main, ["optimize", "bandwidth", str(tmp_path / "t.yaml"), "--workload",
                                  str(libra_file(f"transformer_{model}.txt")), "--budget", f"{budget} GB/s",
                                  "--objective", objective, "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert np.abs(np.array(d["split_pct"]) - want).max() <= 1.0
    assert sum(d["split_GBps"]) == pytest.approx(budget)
    assert d["solve_s"] < 5


def test_constraints_bind():
    from netsim.optimize.bandwidth import BandwidthProblem, parse_constraint

    m = loop_model(libra_program("175B"), [2, 8, 8, 8], "fwd-in-bckwd")
    names = ["tile", "package", "node", "pod"]
    cons = [parse_constraint("tile <= 100 GB/s", names), parse_constraint("pod >= node", names)]
    s = BandwidthProblem(m, 325.0, np.ones(4), cons).solve("perf")
    assert s.bandwidth_GBps[0] <= 100 + 1e-6 and s.bandwidth_GBps[3] >= s.bandwidth_GBps[2] - 1e-6
    assert s.bandwidth_GBps.sum() == pytest.approx(325)


def test_dgx_like_cost():
    # LIBRA's DGX-like point: Switch x Switch [8, 128], 300 GB/s NVLink (package) + 25 GB/s NIC (pod):
    # 300 x (4 + 13) + 25 x (7.8 + 18 + 31.6) = $6,535 per NPU.
    topo = topo_of([("switch", 8, "package"), ("switch", 128, "pod")])
    c = network_cost(topo, [300.0, 25.0], load_cost_table())
    assert c["per_npu_usd"] == pytest.approx(6535.0)
    assert c["total_usd"] == pytest.approx(6535.0 * 1024)


def test_cost_and_confirm_commands():
    repo = Path(__file__).resolve().parents[2]
    r = CliRunner().invoke(main, ["cost", str(repo / "topologies/libra_4d.yaml"), "--json"])
    assert r.exit_code == 0, r.output
    # Equal 81.25 GB/s per dim: 81.25 x (2/2 + 4/2 + 4/2 + 7.8 + 18 + 31.6) x 1024 NPUs.
    assert json.loads(r.output)["total_usd"] == pytest.approx(81.25 * (1 + 2 + 2 + 57.4) * 1024)
    r = CliRunner().invoke(main, ["optimize", "bandwidth", str(repo / "topologies/libra_4d.yaml"), "--workload",
                                  str(repo / "workloads/libra/transformer_175B.txt"), "--budget", "325 GB/s",
                                  "--confirm", "flow", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)["confirm"]
    assert len(rows) == 3 and rows[-1]["split"] == "equal"
    assert all(row["flow_us"] == pytest.approx(row["sequential_us"], rel=1e-3) for row in rows)


def test_cluster_study_knobs_and_cost(tmp_path):
    from netsim.network.topology import load_topology
    from netsim.report.cluster_study import write_topologies

    knobs = write_topologies(tmp_path)
    assert len(knobs) == 4 * 3 * 3
    row = knobs[(knobs.nics == 8) & (knobs.gbps == 400) & (knobs.oversubscription == 1)].iloc[0]
    # 64 servers x (400 GB/s of NICs x $57.4 + 400 GB/s of uplinks x $25.8), LIBRA's Pod row.
    assert row.network_cost_usd == pytest.approx(64 * (400 * 57.4 + 400 * 25.8))
    for over in (1, 2, 4):
        f = knobs[(knobs.nics == 4) & (knobs.gbps == 200) & (knobs.oversubscription == over)].topology.iloc[0]
        assert load_topology(f).leaf_oversubscription() == pytest.approx(over)


def test_run_prices_multidim_collectives(tmp_path):
    # One MP all-reduce of S over 16 NPUs on [2, 8, 8, 8] at 81.25 GB/s per dimension: LIBRA's
    # traffic is 2 S (1/2) on the 2-ring and 2 (S/2)(7/8) on the fully-connected dimension. The
    # analytical backend takes the slower (pipelined), the flow backend runs them in sequence.
    repo = Path(__file__).resolve().parents[2]
    S = 2**28
    (tmp_path / "w.txt").write_text(
        "HYBRID_TRANSFORMER_FWD_IN_BCKWD\tmodel_parallel_NPU_group: 16\n1\n"
        f"l\t-1\t1\tALLREDUCE\t{S}\t1\tNONE\t0\t1\tNONE\t0\t10\n"
    )
    bw = 81.25
    out = {}
    for backend in ("analytical", "flow"):
        r = CliRunner().invoke(main, ["run", str(repo / "topologies/libra_4d.yaml"), "--workload",
                                      str(tmp_path / "w.txt"), "--backend", backend, "--json"])  # fmt: skip
        assert r.exit_code == 0, r.output
        out[backend] = json.loads(r.output)["exposed_tp_us"]
    assert out["analytical"] == pytest.approx(max(S, 2 * (S / 2) * 7 / 8) / bw / 1e3, rel=1e-6)
    assert out["flow"] == pytest.approx((S + 2 * (S / 2) * 7 / 8) / bw / 1e3, rel=1e-3)
