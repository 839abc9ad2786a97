"""All-to-all algorithms on the flow model against hand calculations (issue #16): direct and
NCCL's PXN on an oversubscribed rail-optimized fabric, and a hot receiver (non-uniform sizes)."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from netsim.cli import main
from netsim.collectives.bench import bench_collective, hot_shares
from netsim.network.topology import load_topology

REPO = Path(__file__).resolve().parents[2]
# 8 servers x 8 GPUs, rail leaves of 4 servers, 2 spines of 400 Gbps per leaf: 2:1 above the leaves.
RAIL_2TO1 = """name: rail_2to1
gpu: H100
servers: 8
gpus_per_server: 8
nvlink: {bandwidth: "450 GB/s", latency: "25 ns"}
nic: {count: 8, bandwidth: "400 Gbps"}
fabric: {kind: rail_optimized, servers_per_leaf: 4, spines: 2, uplink_bandwidth: "400 Gbps", latency: "500 ns"}
"""
S = 2**26


@pytest.fixture(scope="module")
def rail(tmp_path_factory):
    p = tmp_path_factory.mktemp("topo") / "rail_2to1.yaml"
    p.write_text(RAIL_2TO1)
    return load_topology(p)


@pytest.mark.parametrize(
    ("algo", "leaf_bytes"),
    [
        # Direct: rank (a, i) sends S/64 to each of the 56 GPUs on other servers; all but the 3
        # same-rail peers under its own leaf cross the leaf's uplinks: 4 ranks x 53 x S/64.
        ("direct", 4 * 53 * S / 64),
        # PXN: only rail flows leave a server, (a, j) -> (b, j) with 8 ranks' chunks (8 S/64); the 4
        # servers of the other leaf group are reached over the uplinks: 4 ranks x 4 x 8 S/64.
        ("hierarchical", 4 * 4 * 8 * S / 64),
    ],
)
def test_alltoall_is_bound_by_the_leaf_uplinks_as_counted_by_hand(rail, algo, leaf_bytes):
    # Spraying spreads every flow evenly over both spines, so the leaf's 2 x 50 GB/s uplinks are
    # the bottleneck (NIC: 56 S/64 at 50 GB/s takes less); the NVLink hop of PXN is shorter still.
    row = bench_collective(rail, "alltoall", list(range(64)), S, algo=algo, spray=True)
    assert row["time_us"] * 1e-6 == pytest.approx(leaf_bytes / 100e9, rel=0.01)


def test_pxn_beats_direct_under_ecmp_on_an_oversubscribed_rail_fabric(rail):
    direct = bench_collective(rail, "alltoall", list(range(64)), S, algo="direct")
    pxn = bench_collective(rail, "alltoall", list(range(64)), S, algo="hierarchical")
    assert pxn["time_us"] < direct["time_us"] and pxn["flows"] < direct["flows"]


def test_a_hot_receiver_slows_the_alltoall_by_its_extra_share():
    # 8 hosts under one edge switch of the non-blocking fat-tree: the hot rank's downlink receives
    # 7 x (1 + x) S/8 instead of 7 S/8, so the exchange takes (1 + x) times as long.
    fat = load_topology(REPO / "topologies/fat_tree_512.yaml")
    even = bench_collective(fat, "alltoall", list(range(8)), S)
    hot = bench_collective(fat, "alltoall", list(range(8)), S, skew=1.0)
    assert hot["time_us"] / even["time_us"] == pytest.approx(2.0, rel=0.01)
    assert sum(hot_shares(8, 1.0)) == pytest.approx(1.0)


def test_skew_is_checked_on_the_command_line():
    topo = str(REPO / "topologies/fat_tree_512.yaml")
    r = CliRunner().invoke(main, ["bench-collective", topo, "--op", "allreduce", "--ranks", "8", "--skew", "1"])
    assert r.exit_code == 2 and "--skew" in r.output
    r = CliRunner().invoke(main, ["bench-collective", topo, "--op", "alltoall", "--ranks", "8", "--skew", "8"])
    assert r.exit_code == 2 and "at most 7" in r.output
    r = CliRunner().invoke(main, ["bench-collective", topo, "--op", "alltoall", "--ranks", "8", "--algo", "tree"])
    assert r.exit_code == 2 and "--algo" in r.output


def test_run_names_a_non_default_alltoall_in_its_config(rail, tmp_path):
    p = tmp_path / "rail.yaml"
    p.write_text(RAIL_2TO1)
    out = {}
    for how in ("pxn", "direct"):
        args = ["run", str(p), "--model", "mixtral-8x7b", "--tp", "2", "--pp", "4", "--ep", "8", "--gbs", "64"]
        r = CliRunner().invoke(main, [*args, "--alltoall", how, "--json"])
        assert r.exit_code == 0, r.output
        out[how] = json.loads(r.output)
    assert "alltoall" not in out["pxn"]["config"] and out["direct"]["config"]["alltoall"] == "direct"
    assert out["pxn"]["exposed_ep_us"] < out["direct"]["exposed_ep_us"]
