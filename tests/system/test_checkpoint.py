"""GEMINI: closed forms, background traffic on the fluid network, and checkpoints in a training run."""

import math
from pathlib import Path

import numpy as np
import pytest
import simpy

from netsim.network.background import BlockStream
from netsim.network.fluid import FluidNetwork
from netsim.simulate import RunSpec, run
from netsim.system.checkpoint import peer_servers
from netsim.system.failures import (
    SCHEMES,
    checkpoint_time_reduction,
    recovery_probability,
    recovery_probability_mc,
)

REPO = Path(__file__).resolve().parents[2]


def test_recovery_probability_closed_forms():
    # GEMINI section 3: N=16, m=2, k=2: group 1 - 8/C(16,2) = 93.3 %, ring 1 - 16/120 = 86.7 %.
    assert recovery_probability(16, 2, 2, "group") == pytest.approx(1 - 8 / 120)
    assert recovery_probability(16, 2, 2, "ring") == pytest.approx(1 - 16 / 120)
    assert recovery_probability(16, 2, 1, "ring") == 1.0
    for placement in ("group", "ring"):
        mc = recovery_probability_mc(16, 2, 2, placement, trials=20000, seed=1)
        assert mc == pytest.approx(recovery_probability(16, 2, 2, placement), abs=0.01)


def test_monte_carlo_is_exact_where_the_formula_is_a_bound():
    # 4 of 16 machines in 8 pairs fail: no pair lost in C(8,4) * 2^4 = 1120 of C(16,4) = 1820 ways.
    assert recovery_probability_mc(16, 2, 4, "group", trials=40000, seed=2) == pytest.approx(1120 / 1820, abs=0.01)
    assert recovery_probability(16, 2, 4, "group") < 1120 / 1820


def test_mixed_placement_when_m_does_not_divide_n():
    peers = peer_servers(7, 2, "group")
    assert all(len(p) == 1 for p in peers)
    assert peers[0] == [1] and peers[1] == [0]  # groups of 2 ...
    assert sorted(x for p in peers[4:] for x in p) == [4, 5, 6]  # ... and a ring over the last 3


def test_wasted_time_per_failure():
    # GEMINI's example: MT-NLG 530B checkpoints in 42 min at 20 Gbps, every 42 min at best, and
    # retrieves in 42 min: wasted = 42 + 42/2 + 42 minutes.
    from netsim.system.failures import wasted_time_per_failure

    assert wasted_time_per_failure(42.0, 1 / 42.0, 42.0) == pytest.approx(105.0)


def test_checkpoint_time_reduction_and_effective_ratio():
    assert [round(checkpoint_time_reduction(b, 16, 2)) for b in (100, 200, 400)] == [68, 136, 272]
    ratio = {s.name: s.effective_ratio(1000 * 0.015) for s in SCHEMES}
    assert ratio["GEMINI"] == pytest.approx(1 - 9 * 15 / 1440)  # 0.906
    assert ratio["HighFreq"] == pytest.approx(480 / 560 - 26 * 15 / 1440)  # 0.586
    assert ratio["Strawman"] == 0.0


def _link():
    env = simpy.Environment()
    fluid = FluidNetwork(env, np.array([100.0, np.inf]), np.array([0.0, 0.0]))
    return env, fluid


def test_strict_priority_never_slows_training():
    # A 100 B/s link: a training flow of 100 B alone takes 1 s; a background flow of 300 B started
    # at the same time waits, then takes the whole link: done at 1 + 3 = 4 s.
    env, fluid = _link()
    done = {}
    row = np.array([[0] + [fluid.L - 1] * (fluid.H - 1)])  # link 0, padded with the dummy link
    fluid.start_batch(row, np.array([300.0]), lambda: done.setdefault("bg", env.now), 0.0, priority=1)
    fluid.start([0], 100.0, lambda: done.setdefault("train", env.now))
    env.run()
    assert done["train"] == pytest.approx(1.0) and done["bg"] == pytest.approx(4.0)


def test_weighted_background_gets_its_share():
    # Weight 1/4: while both run the background gets 20 B/s (1/5), training 80 B/s: training's
    # 100 B end at 1.25 s, the background has 25 of 100 B and finishes at 1.25 + 0.75 = 2 s.
    env, fluid = _link()
    done = {}
    stream = BlockStream(fluid, [(0,)], block=100.0, buffers=1, copy_bandwidth=0.0, priority=0, weight=0.25)
    stream.send(1)
    fluid.start([0], 100.0, lambda: done.setdefault("train", env.now))
    env.run()
    assert done["train"] == pytest.approx(1.25) and stream.last_done == pytest.approx(2.0)


@pytest.mark.parametrize("buffers, end", [(1, 3.0), (2, 2.5)])
def test_block_stream_pipelines_copies_through_its_buffers(buffers, end):
    # 3 blocks of 50 B on 100 B/s, copied out at 100 B/s. One buffer: (0.5 send + 0.5 copy) x 3.
    # Two: blocks 1 and 2 share the link (both arrive at 1.0), copies 1.0-1.5 and 1.5-2.0; block 3
    # goes when the first buffer frees (1.5), arrives at 2.0, is copied by 2.5.
    env, fluid = _link()
    stream = BlockStream(fluid, [(0,)], block=50.0, buffers=buffers, copy_bandwidth=100.0, priority=0)
    stream.send(3)
    env.run()
    assert stream.last_done == pytest.approx(end) and stream.sent == 3


GEMINI_TOPO = """name: gemini_p4d_16
description: 16 x 8 A100 (NVSwitch), 400 Gbps per server (4 x 100 Gbps EFA), one non-blocking leaf
gpu: A100
servers: 16
gpus_per_server: 8
nvlink: {bandwidth: "300 GB/s", latency: "25 ns"}
nic: {count: 4, bandwidth: "100 Gbps"}
fabric: {kind: leaf_spine, leaves: 2, hosts_per_leaf: 32, spines: 4, uplink_bandwidth: "400 Gbps", latency: "500 ns"}
"""
GEMINI_MODEL = """name: gpt-100b
description: a 100B GPT (GEMINI's model size)
source: "12 L h^2 = 100.7e9 parameters with L = 80, h = 10240"
layers: 80
hidden: 10240
heads: 80
ffn_hidden: 40960
vocab: 50257
position_embeddings: true
seq: 2048
parallelism: {tp: 8, pp: 1, gbs: 64, mbs: 1, sp: true, distributed_optimizer: true}
"""


@pytest.fixture(scope="module")
def gemini_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("gemini")
    (d / "topo.yaml").write_text(GEMINI_TOPO)
    (d / "model.yaml").write_text(GEMINI_MODEL)
    out = {}
    for mode in ("none", "interleaved", "blocking"):
        spec = RunSpec.parse({"topology": str(d / "topo.yaml"), "model": str(d / "model.yaml"), "checkpoint": mode})
        out[mode] = run(spec).to_dict()
    return out


def test_gemini_interleaved_hides_the_checkpoint_and_blocking_pays_it(gemini_runs):
    none, inter, block = gemini_runs["none"], gemini_runs["interleaved"], gemini_runs["blocking"]
    # Hand calculation: each GPU saves 14 B x its 1/dp share of its TP shard's parameters, in whole
    # 128 MiB blocks, over its eighth of the server's 400 Gbps.
    per_gpu = inter["checkpoint_bytes_per_gpu"]
    blocks = math.ceil(per_gpu / 2**27)
    assert per_gpu == pytest.approx(14 * 100.7e9 / 8 / 16, rel=0.02)
    wire_s = blocks * 2**27 / (400e9 / 8 / 8)
    assert inter["checkpoint_fits"] and inter["total_us"] / none["total_us"] - 1 < 0.02
    assert block["exposed_checkpoint_us"] * 1e-6 == pytest.approx(wire_s, rel=0.02)
    assert block["total_us"] == pytest.approx(none["total_us"] + block["exposed_checkpoint_us"], rel=1e-9)
    assert inter["checkpoint_bytes"] == pytest.approx(per_gpu * 128)  # m = 2: one peer copy per GPU


def test_says_when_idle_time_is_too_short(tmp_path):
    (tmp_path / "topo.yaml").write_text(GEMINI_TOPO)
    (tmp_path / "model.yaml").write_text(GEMINI_MODEL)
    spec = RunSpec.parse({"topology": str(tmp_path / "topo.yaml"), "model": str(tmp_path / "model.yaml"),
                          "checkpoint": "interleaved", "bandwidth": "5 Gbps", "gbs": 16})  # fmt: skip
    d = run(spec).to_dict()
    assert not d["checkpoint_fits"] and d["blocks_after_iteration"] > 0 and d["iteration_slowdown"] > 0
    assert "shorter than the checkpoint" in d["checkpoint_note"]


def test_study_checkpoint_command(tmp_path):
    import json

    from click.testing import CliRunner

    from netsim.cli import main

    r = CliRunner().invoke(main, ["study", "checkpoint", "--out", str(tmp_path), "--trials", "2000", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["recovery_n16_k2"]["group"] == pytest.approx(14 / 15)
    assert d["reduction_n16"] == {"100": pytest.approx(68), "200": pytest.approx(136), "400": pytest.approx(272)}
    assert d["effective_ratio"]["GEMINI"] == pytest.approx(0.90625)
    for f in ("recovery_probability.png", "checkpoint_time_reduction.png", "effective_training_time.png"):
        assert (tmp_path / f).stat().st_size > 10_000
