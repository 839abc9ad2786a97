"""The topology tables against networkx: the graph they give, min-hop paths, link order."""

import subprocess
import sys

import networkx as nx
import pytest

from netsim.network.links import LinkTable
from netsim.network.routing import compile_network
from netsim.network.topology import load_topology, read_simai_topology


@pytest.mark.parametrize("name", ["fat_tree_512", "hgx_h100_512", "dcn_512", "libra_3d"])
def test_tables_give_networkx_graph_paths_and_link_order(repo, name):
    t = load_topology(repo / f"topologies/{name}.yaml")
    g = t.graph
    assert g.number_of_edges() == t.links.number_of_links()
    assert all(t.links.kind_of(n) == d.get("kind") for n, d in g.nodes(data=True))
    # Compiled link indices follow networkx's sorted edge view, both directions per edge.
    want = [e for u, v, _d in sorted(g.edges(data=True)) for e in ((u, v), (v, u))]
    net = compile_network(t)
    assert net.ends == want
    for i, (u, v) in enumerate(want):
        assert net.capacity[i] == g.edges[u, v]["bandwidth"] and net.latency[i] == g.edges[u, v]["latency"]
    for src in (0, t.num_gpus - 1):
        assert t.links.bfs_paths(src) == nx.single_source_shortest_path(g, src)


def test_simai_file_nodes_out_of_id_order(simai_dir):
    # The SimAI file lists switches in its own order: link ends are ordered by insertion, as
    # networkx's edge view orders them, not by id.
    t = read_simai_topology(simai_dir / "topologies/DCN+SingleToR_512g_1gps_400Gbps_H100")
    g = t.graph
    want = [e for u, v, _d in sorted(g.edges(data=True)) for e in ((u, v), (v, u))]
    assert compile_network(t).ends == want


def test_a_second_link_between_the_same_ends_replaces_the_first():
    t = LinkTable()
    for n in range(3):
        t.add_node(n, "gpu")
    t.add_link(2, 0, 1.0, 0.1, "nic")
    t.add_link(1, 0, 2.0, 0.2, "nic")
    t.add_link(0, 2, 3.0, 0.3, "fabric")  # same ends as the first, either way round
    g = nx.Graph()
    g.add_nodes_from(range(3))
    g.add_edge(2, 0, bandwidth=1.0)
    g.add_edge(1, 0, bandwidth=2.0)
    g.add_edge(0, 2, bandwidth=3.0)
    assert t.number_of_links() == 2 and t.bandwidth[t.link(2, 0)] == 3.0 and t.kind[t.link(0, 2)] == "fabric"
    assert t.neighbors(0) == list(g.neighbors(0)) == [2, 1]
    assert t.ends == [(0, 2), (0, 1)] == list(g.edges())
    assert t.reachable(1) == {0, 1, 2}


def test_a_run_does_not_import_networkx(repo):
    code = (
        "import sys\n"
        "from netsim.config.run import RunSpec\n"
        "from netsim.simulate import run\n"
        f"run(RunSpec(topology={str(repo / 'topologies/hgx_h100_512.yaml')!r}, model='7B'), detail=False)\n"
        "print('networkx' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
