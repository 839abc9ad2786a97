"""Flow backend against closed forms and invariants."""

import textwrap
from pathlib import Path

import pytest

from netsim.collectives.algorithms import ring_channels
from netsim.collectives.bench import bench_collective
from netsim.collectives.models import FlowModel
from netsim.network.topology import load_topology
from netsim.system.pipeline import PipelineExecutor
from netsim.workload.catalog import resolve_model
from netsim.workload.compute import gpu_compute
from netsim.workload.megatron import build_megatron
from netsim.workload.parallel import Parallelism, resolve_parallelism
from netsim.workload.program import TP, Collective, Layer, Phase, Send, StageProgram

REPO = Path(__file__).resolve().parents[2]


def simulate_pipeline(programs, topo, par, ideal=False, schedule="1f1b", replicas=None):
    model = FlowModel(topo, ideal=ideal)
    return PipelineExecutor(programs, par, model, schedule=schedule, replicas=replicas).run()


@pytest.fixture(scope="module")
def fat():
    return load_topology(REPO / "topologies/fat_tree_512.yaml")


def test_ring_allreduce_matches_closed_form(fat):
    # 64 ranks in one pod of the non-blocking fat-tree: 2(n-1)/n S/B + 2(n-1)(alpha + mean edge latency).
    n, S, B = 64, 2**30, 50e9
    mean_lat = (7 * 1e-6 + 1 * 2e-6) / 8  # 7 of 8 ring edges stay under an edge switch, 1 crosses an agg
    want = 2 * (n - 1) / n * S / B + 2 * (n - 1) * (fat.alpha + mean_lat)
    for fidelity in ("macro", "chunked"):
        got = bench_collective(fat, "allreduce", list(range(n)), S, fidelity=fidelity)["time_us"] * 1e-6
        assert got == pytest.approx(want, rel=0.01), fidelity


def test_macro_and_chunked_agree(fat):
    for op in ("allgather", "reducescatter", "allreduce"):
        a = bench_collective(fat, op, list(range(16)), 2**24, fidelity="macro")["time_us"]
        b = bench_collective(fat, op, list(range(16)), 2**24, fidelity="chunked")["time_us"]
        assert a == pytest.approx(b, rel=0.01), op


def test_512_rank_allreduce_busbw(fat):
    r = bench_collective(fat, "allreduce", list(range(512)), 2**30)
    # A network engineer's expectation for 400 Gbps NICs: ~85-100% of 50 GB/s.
    assert 40 <= r["busbw_GBps"] <= 50.5


def test_sendrecv_time(fat):
    r = bench_collective(fat, "sendrecv", [0, 200], 2**30)
    # alpha + S/B + 6 hops of 500 ns (cross-pod)
    assert r["time_us"] * 1e-6 == pytest.approx(fat.alpha + 2**30 / 50e9 + 6 * 500e-9, rel=1e-6)


def _leaf_spine(tmp_path, spines):
    p = tmp_path / f"ls{spines}.yaml"
    p.write_text(
        textwrap.dedent(f"""\
        name: ls
        servers: 64
        nic: {{count: 1, bandwidth: "400 Gbps"}}
        fabric: {{kind: leaf_spine, leaves: 8, hosts_per_leaf: 8, spines: {spines}, latency: "500 ns"}}
        """)
    )
    return load_topology(p)


def test_oversubscribed_alltoall(tmp_path):
    full = _leaf_spine(tmp_path, 8)  # 8 down, 8 up: non-blocking
    half = _leaf_spine(tmp_path, 4)  # 8 down, 4 up: 2:1
    assert half.leaf_oversubscription() == 2.0
    ranks = list(range(64))
    S = 2**26
    a = bench_collective(full, "alltoall", ranks, S, spray=True)["busbw_GBps"]
    b = bench_collective(half, "alltoall", ranks, S, spray=True)["busbw_GBps"]
    # Each rank sends 56/63 of its data off its leaf; 4 uplinks carry 8 hosts' cross traffic.
    assert b / a == pytest.approx(4 / (8 * 56 / 63), rel=0.03)


def test_ideal_network_1f1b_closed_form():
    # p uniform stages, m micro-batches, t_f and t_b per micro-batch: (m + p - 1)(t_f + t_b).
    topo = load_topology(REPO / "topologies/hgx_h100_512.yaml")
    p, m = 4, 6
    body = [Layer("layer", Phase(3000, "allreduce", TP, 2**20), Phase(5000, "allreduce", TP, 2**20), Phase(2000))]
    prog = StageProgram(
        layers=body,
        buckets={0: Collective("reducescatter", "DP", 2**24, "gradient")},
        optimizer_ns=0,
        param_allgather=Collective("allgather", "DP", 2**20, "parameter"),
        send_fwd=Send(2**20, "activation"),
        send_bwd=Send(2**20, "activation_grad"),
    )
    par = Parallelism(
        tp=8, pp=p, dp=16, ep=1, gbs=m * 16, mbs=1, seq=128, sp=False, distributed_optimizer=True, schedule="1f1b"
    )
    for sched in ("1f1b", "gpipe"):
        bd = simulate_pipeline([prog] * p, topo, par, ideal=True, schedule=sched)
        assert bd.total_us == pytest.approx((m + p - 1) * 10000 / 1e3), sched
        assert bd.bubble_us == pytest.approx((p - 1) * 10000 / 1e3), sched
        assert bd.compute_us == pytest.approx(m * 10000 / 1e3)


def test_folding_replicas_is_exact_when_symmetric():
    # On HGX, TP stays on NVSwitch and pipeline sends ride their own rail: every DP replica's
    # TP/PP traffic is disjoint from the others', so simulating 2 of 8 gives the same result.
    topo = load_topology(REPO / "topologies/hgx_h100_512.yaml")
    m = resolve_model("175B")
    par = resolve_parallelism(m, 512)
    progs = build_megatron(m, par, gpu_compute("H100")).stages
    full = simulate_pipeline(progs, topo, par)
    folded = simulate_pipeline(progs, topo, par, replicas=2)
    assert folded.extra["simulated_dp_replicas"] == 2
    assert folded.total_us == pytest.approx(full.total_us, rel=1e-9)


def test_rail_aligned_rings():
    # 2 ranks per server (TP4 of 8 GPUs): inter-server hops join equal local indices.
    rings = ring_channels(list(range(0, 64, 4)), 8, "nccl")
    for ring in rings:
        for a, b in zip(ring, ring[1:] + ring[:1]):
            if a // 8 != b // 8:
                assert a % 8 == b % 8
    assert ring_channels(list(range(0, 64, 4)), 8, "simai")[0][:4] == [0, 4, 8, 12]


def test_flow_backend_is_deterministic(fat):
    m = resolve_model("7B")
    par = resolve_parallelism(m, 512)
    progs = build_megatron(m, par, gpu_compute("H100")).stages
    topo = load_topology(REPO / "topologies/dcn_512.yaml")
    a = simulate_pipeline(progs, topo, par).summary()
    b = simulate_pipeline(progs, load_topology(REPO / "topologies/dcn_512.yaml"), par).summary()
    assert a == b


def test_progress_counts_every_pass_of_every_virtual_stage():
    # 1F1B on pp stages with m micro-batches: every stage runs m forwards and m backwards, then its
    # end of iteration; the callback must hear 1..2*m*pp + pp in order, ending at the total.
    from netsim.simulate import RunSpec, run

    heard = []
    spec = RunSpec.parse({"topology": str(REPO / "topologies/hgx_h100_512.yaml"), "model": "7B",
                          "pp": 2, "tp": 8, "gbs": 128, "mbs": 1})  # 512 GPUs: DP 32, 4 micro-batches  # fmt: skip
    run(spec, progress=lambda done, total: heard.append((done, total)))
    total = 2 * 4 * 2 + 2
    assert heard == [(k, total) for k in range(1, total + 1)]


def test_flow_endtoend_rows_match_the_closed_form_replay():
    # EndToEnd.csv's per-layer section on the flow backend: per micro-batch, one row per workload
    # row. Compute is the same program on both backends, so it must agree exactly with the closed-form
    # replay's rows; TP all-reduces inside an HGX server are priced in closed form on both.
    from netsim.report.simai_csv import format_endtoend_csv
    from netsim.simulate import RunSpec, run

    def rows(backend):
        spec = RunSpec.parse(
            {"topology": str(REPO / "topologies/hgx_h100_512.yaml"), "model": "7B", "backend": backend}
        )
        lines = format_endtoend_csv(run(spec).breakdown, "x").splitlines()
        body = [ln.split(",") for ln in lines[3:]]
        return [r for r in body if r[0] not in ("param_allgather", "optimizer_step")]

    flow, closed = rows("flow"), rows("analytical")
    assert len(flow) == len(closed) > 100
    for f, c in zip(flow, closed):
        assert f[0] == c[0] and f[2:5] == c[2:5], (f, c)  # name, fwd/wg/ig compute (us)
        assert f[5] == c[5] and f[8] == c[8]  # fwd exposed and total TP comm


@pytest.mark.parametrize("transport", ["maxmin", "window"])
def test_reused_solutions_change_nothing(monkeypatch, transport):
    # The flow backend reuses a max-min (or window fixed-point) solution when the same flows are
    # active again; the iteration must come out bit-identical to solving every time, and many
    # solves of a 1F1B iteration repeat.
    import netsim.network.fluid as fluid_mod
    from netsim.simulate import RunSpec, run

    spec = RunSpec.parse({"topology": str(REPO / "topologies/fat_tree_512.yaml"), "model": "7B", "pp": 2,
                          "gbs": 256, "transport": transport})  # fmt: skip
    hits = []
    orig = fluid_mod.FluidNetwork._reuse  # the memo behind every re-solve and every batch solved alone

    def spy(self, ids, ids2, solve):
        out = orig(self, ids, ids2, solve)
        hits.append(self.memo_hits)
        return out

    monkeypatch.setattr(fluid_mod.FluidNetwork, "_reuse", spy)
    reused = run(spec).to_dict()
    # Batches that repeat alone are caught before the memo (a reservation's facts are kept by its
    # bytes); the memo still serves a third of what is left here.
    assert hits[-1] > len(hits) // 4
    monkeypatch.setattr(fluid_mod.FluidNetwork, "memoise", False)
    hits.clear()
    fresh = run(spec).to_dict()
    assert hits[-1] == 0 and fresh == reused


def _count_calls(monkeypatch, cls, name: str) -> list:
    """A list that gets one item per call of cls.name (which still runs)."""
    calls, orig = [], getattr(cls, name)

    def spy(self, *args):
        calls.append(1)
        return orig(self, *args)

    monkeypatch.setattr(cls, name, spy)
    return calls


@pytest.mark.parametrize(
    "topology,opts",
    [
        ("fat_tree_512", {"model": "7B", "pp": 4, "gbs": 256}),  # TP rings and pipeline sends on the fabric
        ("hgx_h100_512", {"model": "mixtral-8x7b", "gbs": 64}),  # all-to-alls joined by other flows
        ("dcn_512", {"model": "7B", "compression": "lz4-gpu", "gbs": 256}),  # codec caps and weights
    ],
)
def test_reservations_change_no_time(monkeypatch, topology, opts):
    # A batch that starts alone runs outside the active flows until another start touches its links
    # (fluid.Reservation); every time must come out as from re-solving at every start and end, up
    # to the last bits (a reservation's bytes left are one product, not a sum over every event).
    import netsim.network.fluid as fluid_mod
    from netsim.simulate import RunSpec, run

    made = _count_calls(monkeypatch, fluid_mod.FluidNetwork, "_reserve")
    spec = RunSpec.parse({"topology": str(REPO / f"topologies/{topology}.yaml"), **opts})
    reserved = run(spec).to_dict()
    assert sum(made) > 10
    monkeypatch.setattr(fluid_mod.FluidNetwork, "reserve", False)
    made.clear()
    plain = run(spec).to_dict()
    assert not made
    times = [k for k in plain if k.endswith("_us")]
    assert [reserved[k] for k in times] == pytest.approx([plain[k] for k in times], rel=1e-12, abs=1e-9)


@pytest.mark.parametrize(
    "opts",
    [
        {"model": "7B", "pp": 2, "gbs": 256},  # TP in closed form (NVSwitch), DP on the fabric
        {"model": "70B", "recompute": "full", "overlap_grad_reduce": True, "tp_comm_overlap": True, "gbs": 64},
        {"model": "7B", "compression": "zstd-gpu", "gbs": 256},  # a GPU codec's kernels on the compute stream
        {"model": "mixtral-8x7b", "gbs": 64},  # all-to-alls on the network between closed runs
    ],
)
def test_planned_closed_runs_give_the_per_phase_totals(opts):
    # Without a timeline to record, a pass runs its closed-form phases as planned runs of additions
    # (system/closed_runs.py); the totals must be bit-identical to running every phase.
    from netsim.simulate import RunSpec, run

    spec = RunSpec.parse({"topology": str(REPO / "topologies/hgx_h100_512.yaml"), **opts})
    per_phase, planned = run(spec, detail=True).to_dict(), run(spec, detail=False).to_dict()
    assert {k: v for k, v in per_phase.items() if k.endswith("_us")} == {
        k: v for k, v in planned.items() if k.endswith("_us")
    }


@pytest.mark.parametrize(
    "topology,opts",
    [
        ("fat_tree_512", {"model": "175B"}),  # TP8 rings on the fabric every layer, pipeline sends into them
        ("fat_tree_512", {"model": "7B", "pp": 4, "gbs": 256, "schedule": "interleaved", "vpp": 2}),
        ("dcn_512", {"model": "70B", "gbs": 64}),  # an oversubscribed fabric, DP rings across it
    ],
)
def test_sequences_run_ahead_change_nothing(monkeypatch, topology, opts):
    # A pass's TP collectives go to the network as one chain (network/chain.py) that runs ahead
    # while its links carry nothing else; every figure must be the per-collective run's.
    import netsim.network.fluid as fluid_mod
    from netsim.simulate import RunSpec, run

    held = _count_calls(monkeypatch, fluid_mod.FluidNetwork, "hold")
    spec = RunSpec.parse({"topology": str(REPO / f"topologies/{topology}.yaml"), **opts})
    ahead = run(spec, detail=False).to_dict()  # a detailed run issues phase by phase, to record each
    assert sum(held) > 10
    monkeypatch.setattr(fluid_mod.FluidNetwork, "run_ahead", False)
    held.clear()
    assert run(spec, detail=False).to_dict() == ahead and not held
    assert run(spec).to_dict()["total_us"] == ahead["total_us"]
