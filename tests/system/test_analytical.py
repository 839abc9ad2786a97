"""netsim's physical analytical backend against closed forms worked out by hand."""

from dataclasses import replace

import pytest

from netsim.collectives.closed_form import collective_time
from netsim.collectives.models import ClosedFormModel
from netsim.collectives.placement import place_group
from netsim.network.topology import load_topology
from netsim.system import timeline
from netsim.workload.rows import Row, Workload
from netsim.workload.simai_file import to_program


def simulate(stages, topo, tp, dp, pp, compression=None):
    return timeline.simulate(stages, ClosedFormModel(topo, codec=compression), tp, dp, pp)


@pytest.fixture(scope="module")
def fat(repo_path=None):
    from pathlib import Path

    return load_topology(Path(__file__).resolve().parents[2] / "topologies/fat_tree_512.yaml")


def test_ring_allreduce_closed_form():
    # 1 GiB over 8 ranks at 50 GB/s, 10 us per step: 14 steps + 2*7/8*S/B.
    t = collective_time("allreduce", 8, 2**30, 50e9, 10e-6)
    assert t == pytest.approx(14 * 10e-6 + 2 * 7 / 8 * 2**30 / 50e9)
    assert collective_time("allgather", 8, 2**30, 50e9, 0) == pytest.approx(7 / 8 * 2**30 / 50e9)


def test_group_placement(fat):
    g = place_group(fat, list(range(0, 512, 4)))  # a DP group of the 7B layout
    assert g.n == 128 and g.servers == 128 and g.bandwidth == 50e9
    # Farthest member is cross-pod: 6 hops x 500 ns, plus alpha.
    assert g.step_latency == pytest.approx(fat.alpha + 6 * 500e-9)
    hgx = load_topology(__import__("pathlib").Path(__file__).resolve().parents[2] / "topologies/hgx_h100_512.yaml")
    g = place_group(hgx, list(range(8)))
    assert g.servers == 1 and g.bandwidth == 450e9


def _w(rows, tp=4, pp=1, ga=1):
    return to_program(Workload(tp=tp, pp=pp, ga=ga, vpp=1, all_gpus=512, rows=rows))


def test_blocking_tp_and_hidden_dp(fat):
    S = 2**28
    tpg = place_group(fat, [0, 1, 2, 3])
    dpg = place_group(fat, list(range(0, 512, 4)))
    t_tp = collective_time("allreduce", 4, S, tpg.bandwidth, tpg.step_latency) * 1e9
    t_dp = collective_time("reducescatter", 128, S, dpg.bandwidth, dpg.step_latency) * 1e9
    long_ig = int(10 * t_dp)
    rows = [
        Row("l0", 1000, "NONE", 0, long_ig, "NONE", 0, 1000, "NONE", 0),
        Row("l1", 1000, "ALLREDUCE", S, 1000, "NONE", 0, 1000, "REDUCESCATTER", S),
    ]
    bd = simulate([_w(rows)], fat, tp=4, dp=128, pp=1)
    assert bd.exposed_tp_us == pytest.approx(t_tp / 1e3, rel=1e-3)
    assert bd.exposed_dp_us == pytest.approx(0.0, abs=1e-3)  # the RS hides under l0's backward
    assert bd.total_us == pytest.approx((5000 + long_ig + t_tp) / 1e3, rel=1e-6)  # 5 phases of 1 us
    # Nothing left to hide it under: the RS is exposed whole.
    rows[0] = Row("l0", 1000, "NONE", 0, 1000, "NONE", 0, 1000, "NONE", 0)
    bd = simulate([_w(rows)], fat, tp=4, dp=128, pp=1)
    assert bd.exposed_dp_us == pytest.approx((t_dp - 2000) / 1e3, rel=1e-4)


def test_barrier_waits_for_dp(fat):
    S = 2**28
    rows = [
        Row("opt", 1, "NONE", 0, 5000, "NONE", 0, 1, "NONE", 0),
        Row("l1", 1000, "NONE", 0, 1000, "NONE", 0, 1000, "REDUCESCATTER", S),
    ]
    w = _w(rows)
    w.layers[0] = replace(w.layers[0], barrier=True)
    bd = simulate([w], fat, tp=4, dp=128, pp=1)
    dpg = place_group(fat, list(range(0, 512, 4)))
    t_dp = collective_time("reducescatter", 128, S, dpg.bandwidth, dpg.step_latency) * 1e9
    # forward 1 + 1000; l1 backward 2000; the optimizer waits for the RS, then 5000 + 1.
    assert bd.total_us == pytest.approx((1001 + 2000 + t_dp + 5001) / 1e3, rel=1e-6)


def test_pipeline_bubble_uniform_stages(fat):
    # p stages of one compute-only row, m micro-batches: bubble = (p-1) * (t_f + t_b).
    p, m = 4, 6
    rows = [Row("layer", 2000, "NONE", 0, 3000, "NONE", 0, 1000, "NONE", 0)] * m
    w = _w(rows, tp=1, pp=p, ga=m)
    bd = simulate([w] * p, fat, tp=1, dp=128, pp=p)
    assert bd.bubble_us == pytest.approx((p - 1) * 6000 / 1e3)
    assert bd.total_us == pytest.approx((m + p - 1) * 6000 / 1e3)
