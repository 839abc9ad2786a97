import networkx as nx
import pytest

from netsim.network.topology import load_topology, read_simai_topology


def test_fat_tree_512(repo):
    t = load_topology(repo / "topologies/fat_tree_512.yaml")
    # k=16, 8 pods: 64 edge + 64 aggregation + 64 core switches; 512 + 512 + 512 links.
    assert t.num_gpus == 512 and len(t.switch_tiers) == 192
    assert t.graph.number_of_edges() == 1536
    assert t.leaf_oversubscription() == 1.0
    # Cross-pod path: GPU - edge - agg - core - agg - edge - GPU = 6 hops.
    assert nx.shortest_path_length(t.graph, 0, 511) == 6
    assert t.nic_bandwidth == 50e9


def test_dcn_512_is_netzips_network(repo):
    t = load_topology(repo / "topologies/dcn_512.yaml")
    assert t.num_gpus == 512 and len(t.switch_tiers) == 32
    assert t.leaf_oversubscription() == 2.0  # 32 x 400G down vs 16 x 400G up
    assert nx.shortest_path_length(t.graph, 0, 31) == 2 and nx.shortest_path_length(t.graph, 0, 32) == 4


def test_dcn_512_matches_simai_file(repo, simai_dir):
    ours = load_topology(repo / "topologies/dcn_512.yaml")
    theirs = read_simai_topology(simai_dir / "topologies/DCN+SingleToR_512g_1gps_400Gbps_H100")
    assert theirs.num_gpus == 512 and theirs.leaf_oversubscription() == 2.0
    assert theirs.nic_bandwidth == ours.nic_bandwidth
    assert len(theirs.switch_tiers) == len(ours.switch_tiers)
    for a, b in ((0, 31), (0, 32), (100, 500)):
        assert nx.shortest_path_length(theirs.graph, a, b) == nx.shortest_path_length(ours.graph, a, b)


def test_hgx_rails(repo):
    t = load_topology(repo / "topologies/hgx_h100_512.yaml")
    assert t.num_gpus == 512 and t.gpus_per_server == 8 and t.nics_per_server == 8
    assert t.nic_bandwidth_per_gpu() == 50e9
    # GPU 0 and GPU 8 (NIC 0 of servers 0 and 1) share a rail leaf; GPU 1 is on rail 1.
    leaf = lambda g: next(n for n in t.graph.neighbors(g) if t.switch_tiers.get(n) == 0)
    assert leaf(0) == leaf(8) and leaf(0) != leaf(1)


def test_bandwidth_override(repo):
    t = load_topology(repo / "topologies/dcn_512.yaml").with_nic_bandwidth(12.5e9)
    assert t.nic_bandwidth == 12.5e9
    assert t.graph.edges[0, next(iter(t.graph.neighbors(0)))]["bandwidth"] == 12.5e9


def test_flows_per_pair_splits_every_ring_edge_into_separately_hashed_flows(tmp_path):
    # 2 servers x 1 GPU: a ring all-reduce has 2 edges; with 4 flows per pair it starts 8 flows of a
    # quarter each, and on a non-blocking path the time is the same.
    from netsim.collectives.bench import bench_collective
    from netsim.collectives.models import FlowModel

    def topo(q):
        p = tmp_path / f"t{q}.yaml"
        p.write_text(
            f"name: t\nservers: 2\ngpus_per_server: 1\nnic: {{count: 1, bandwidth: '400 Gbps'}}\nflows_per_pair: {q}\n"
            "fabric: {kind: leaf_spine, leaves: 1, hosts_per_leaf: 2, spines: 1}\n"
        )
        return load_topology(p)

    one, four = topo(1), topo(4)
    assert bench_collective(four, "allreduce", [0, 1], 2**26)["time_us"] == pytest.approx(
        bench_collective(one, "allreduce", [0, 1], 2**26)["time_us"], rel=1e-9
    )
    m = FlowModel(four)
    m.collective("allreduce", [[0, 1]], 2**26)
    m.env.run()
    assert m.fluid.flows_started == 8
