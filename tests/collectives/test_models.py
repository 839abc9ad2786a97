"""Collectives on the fluid network and the network-model interface, tested alone."""

from pathlib import Path

import numpy as np
import pytest
import simpy

from netsim.collectives.closed_form import collective_time
from netsim.collectives.models import NETWORK_MODELS, ClosedFormModel, FlowModel
from netsim.network.fluid import FluidNetwork
from netsim.network.topology import load_topology

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fat():
    return load_topology(REPO / "topologies/fat_tree_512.yaml")


def test_fluid_two_flows_share_a_link_then_one_speeds_up():
    # Link 0 at 100 B/s carries flows of 100 and 300 B: both at 50 B/s until t=2, then the second
    # alone at 100 B/s for its remaining 200 B: done at t=4 (plus zero latency).
    env = simpy.Environment()
    fluid = FluidNetwork(env, np.array([100.0, np.inf]), np.array([0.0, 0.0]))
    done = {}
    fluid.start([0], 100.0, lambda: done.setdefault("a", env.now))
    fluid.start([0], 300.0, lambda: done.setdefault("b", env.now))
    env.run()
    assert done == {"a": pytest.approx(2.0), "b": pytest.approx(4.0)}


@pytest.mark.parametrize("reserve", [True, False])
def test_fluid_flow_alone_then_joined_midway(monkeypatch, reserve):
    # Link 0 at 100 B/s: a (100 B) starts alone at t=0 and runs as a reservation; b (100 B) joins at
    # t=0.5, when a has 50 B left: both at 50 B/s, a done at 1.5, b (50 B left) alone again, done at
    # 2.0. With reservations off the same times come from re-solving at every start and end.
    monkeypatch.setattr(FluidNetwork, "reserve", reserve)
    env = simpy.Environment()
    fluid = FluidNetwork(env, np.array([100.0, 100.0, np.inf]), np.array([0.0, 0.0, 0.0]))
    done, seen = {}, {}
    fluid.start([0], 100.0, lambda: done.setdefault("a", env.now))
    fluid.start([1], 40.0, lambda: done.setdefault("c", env.now))  # alone on link 1 throughout
    env.timeout(0.25).callbacks.append(lambda _e: seen.setdefault("u", fluid.utilisation(0.25)[:2]))
    env.timeout(0.5).callbacks.append(lambda _e: fluid.start([0], 100.0, lambda: done.setdefault("b", env.now)))
    env.run()
    assert done == {"c": pytest.approx(0.4), "a": pytest.approx(1.5), "b": pytest.approx(2.0)}
    assert seen["u"] == pytest.approx([1.0, 1.0])  # both links busy since 0
    assert fluid.utilisation(2.0)[:2] == pytest.approx([1.0, 0.2])
    assert (len(fluid.reserved), fluid.n_active, fluid.users[:2].tolist()) == (0, 0, [0, 0])


@pytest.mark.parametrize("reserve,segments", [(True, 64), (True, 1), (False, 64)])
@pytest.mark.parametrize("sizes", [(100.0, 100.0), (100.0, 300.0)])
def test_fluid_batch_whose_flows_share_a_link(monkeypatch, reserve, segments, sizes):
    # One batch of two flows on link 0 (100 B/s) and a third on link 1: 50 B/s each on link 0.
    # Equal sizes end together at 2 s; 100 and 300 B end at 2 s and 4 s (the first end re-rates the
    # other to 100 B/s for its last 200 B). Reserved, the batch drains alone in one or two
    # segments; past the segment limit it runs as active flows. It reports at its last flow.
    import netsim.network.fluid as fluid_mod

    monkeypatch.setattr(FluidNetwork, "reserve", reserve)
    monkeypatch.setattr(fluid_mod, "DRAIN_SEGMENTS", segments)
    env = simpy.Environment()
    fluid = FluidNetwork(env, np.array([100.0, 100.0, np.inf]), np.array([0.0, 0.0, 0.0]))
    done = {}
    paths = np.full((3, fluid.H), 2)  # padded with the dummy link
    paths[:, 0] = [0, 0, 1]
    fluid.start_batch(paths, np.array([*sizes, 50.0]), lambda: done.setdefault("batch", env.now), 0.0)
    env.run()
    assert done == {"batch": pytest.approx(2.0 if sizes[0] == sizes[1] else 4.0)}
    assert fluid.utilisation(done["batch"])[:2] == pytest.approx([1.0, 50.0 / 100.0 / done["batch"]])
    assert (fluid.users[:2].tolist(), len(fluid.reserved)) == ([0, 0], 0)


def test_fluid_batch_started_again_with_the_same_arrays():
    # A collective's plan starts the same read-only paths and sizes every micro-batch; the network
    # finds it by identity. Link 0 and 1 at 100 B/s, flows of 100 and 50 B: alone, 1 s each time
    # (t=0 and t=1). At t=2.5 a 100 B flow already holds link 0: the batch is not reserved but
    # shares link 0 (50 B/s each, both done at 4.5; its link-1 flow is done at 3.0).
    env = simpy.Environment()
    fluid = FluidNetwork(env, np.array([100.0, 100.0, np.inf]), np.array([0.0, 0.0, 0.0]))
    paths = np.full((2, fluid.H), 2)
    paths[:, 0] = [0, 1]
    sizes = np.array([100.0, 50.0])
    paths.flags.writeable = sizes.flags.writeable = False
    ends, seen = [], {}

    def batch():
        fluid.start_batch(paths, sizes, lambda: ends.append(env.now), 0.0)

    def busy():
        fluid.start([0], 100.0, lambda: ends.append(("flow", env.now)))
        batch()

    batch()
    env.timeout(1.0).callbacks.append(lambda _e: batch())
    env.timeout(2.5).callbacks.append(lambda _e: busy())
    env.timeout(3.5).callbacks.append(lambda _e: seen.setdefault("active", (fluid.n_active, len(fluid.reserved))))
    env.run()
    assert ends == [pytest.approx(1.0), pytest.approx(2.0), ("flow", pytest.approx(4.5)), pytest.approx(4.5)]
    assert seen["active"] == (2, 0)  # the flow and the batch's link-0 flow, nothing reserved
    assert fluid.utilisation(4.5)[:2] == pytest.approx([400.0 / 450.0, 150.0 / 450.0])  # 4 x 100 B, 3 x 50 B


def test_flow_model_ring_allreduce_matches_closed_form(fat):
    # 8 hosts under one edge switch (1 GPU each, 400 Gbps NICs): no shared uplink, so the macro-flow
    # ring takes 2(n-1)/n S/B plus 2(n-1) steps of alpha and the edge latency.
    model = FlowModel(fat)
    S, n = 2**28, 8
    ev = model.collective("allreduce", [list(range(n))], S)
    model.env.run()
    assert ev.processed
    want = 2 * (n - 1) / n * S / 50e9
    assert model.env.now == pytest.approx(want, rel=0.01)


def test_models_return_events_and_agree_without_contention(fat):
    S = 2**26
    flow = FlowModel(fat)
    ev = flow.send([(0, 200)], S)
    flow.env.run()
    closed = ClosedFormModel(fat)
    ev2 = closed.collective("sendrecv", [[0, 200]], S)
    closed.env.run()
    assert ev.processed and ev2.processed
    g = closed.placement([0, 200])
    assert closed.env.now == pytest.approx(collective_time("sendrecv", 2, S, g.bandwidth, g.step_latency))
    assert flow.env.now == pytest.approx(closed.env.now, rel=0.02)


def test_registry_builds_every_model(fat):
    for name, make in NETWORK_MODELS.items():
        model = make(fat)
        assert isinstance(model.env, simpy.Environment), name
        assert hasattr(model, "collective") and hasattr(model, "send") and hasattr(model, "report"), name


@pytest.mark.parametrize("op", ["broadcast", "reduce"])
def test_rooted_chain_moves_the_whole_buffer_once_per_edge(fat, op):
    # nccl-tests' broadcast/reduce: busbw = algbw, and a pipelined chain of n ranks takes S/B plus
    # n-1 hops of start overhead and edge latency. 8 hosts under one edge switch share no link, so
    # the flow model must agree with that closed form; the closed-form model states it directly.
    from netsim.collectives.bench import bench_collective

    S, n = 2**28, 8
    row = bench_collective(fat, op, list(range(n)), S)
    closed = ClosedFormModel(fat)
    g = closed.placement(list(range(n)))
    want = S / 50e9 + (n - 1) * g.step_latency
    assert collective_time(op, n, S, g.bandwidth, g.step_latency) == pytest.approx(want)
    assert row["time_us"] * 1e-6 == pytest.approx(want, rel=0.01)
    assert row["busbw_GBps"] == pytest.approx(row["algbw_GBps"])


def test_closed_form_alltoall_is_bound_by_the_nic_share_not_the_ring():
    # 16 ranks on two HGX servers (8 GPUs each, one 400 Gbps NIC per GPU): each rank sends 7/16 of
    # its buffer over NVLink and 8/16 through its NIC; the NIC share decides. A ring's bandwidth
    # (8 NICs per server crossing) would make it several times too fast; the flow model, which puts
    # every pair's flow on the fabric, must agree with the closed form.
    hgx = load_topology(REPO / "topologies/hgx_h100_512.yaml")
    ranks, S = list(range(16)), 2**30
    closed = ClosedFormModel(hgx)
    g = closed.placement(ranks)
    want = 15 * g.step_latency + max(7 / 16 * S / hgx.nvlink_bandwidth, 8 / 16 * S / 50e9)
    assert closed.time_ns("alltoall", g, S) * 1e-9 == pytest.approx(want, rel=1e-9)
    flow = FlowModel(hgx)
    flow.collective("alltoall", [ranks], S)
    flow.env.run()
    assert flow.env.now == pytest.approx(want, rel=0.05)
