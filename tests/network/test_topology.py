import networkx as nx

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
