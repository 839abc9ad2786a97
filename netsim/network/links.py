"""A cluster's nodes and full-duplex links as tables (what the topology builders write and
routing compiles), with a networkx graph only when a user asks for one.

A run never needs graph algorithms: routes are up/down and built from each switch's
neighbours (routing.py), so the tables save networkx's import (~0.15 s of a 1.5 s run) and its
per-node and per-edge dicts (most of the memory of a 100K-GPU topology; issue #18).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace


@dataclass
class LinkTable:
    """Nodes (id -> kind and attributes, in the order they were added: SimAI's id order for every
    builder) and links, each once, with its per-direction bandwidth (bytes/s), latency (s) and
    kind. A link's ends are ordered as networkx's edge view orders them (the end added first), so
    compiled link indices and neighbour orders are those the networkx graph gave."""

    kinds: dict[int, str] = field(default_factory=dict)
    attrs: dict[int, dict] = field(default_factory=dict)
    ends: list[tuple[int, int]] = field(default_factory=list)
    bandwidth: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    _index: dict[tuple[int, int], int] = field(default_factory=dict, repr=False)
    _adj: dict[int, list[int]] = field(default_factory=dict, repr=False)
    _order: dict[int, int] = field(default_factory=dict, repr=False)

    def add_node(self, n: int, kind: str | None, **attrs) -> int:
        if n not in self._order:
            self._order[n] = len(self._order)
            self._adj[n] = []
        if kind is not None:
            self.kinds[n] = kind
        self.attrs.setdefault(n, {}).update(attrs)
        return n

    def add_link(self, a: int, b: int, bandwidth: float, latency: float, kind: str) -> None:
        """A link between a and b; a second one between the same ends replaces its values (as
        networkx's add_edge does)."""
        order = self._order
        if a not in order:
            self.add_node(a, None)
        if b not in order:
            self.add_node(b, None)
        key = (a, b) if a < b else (b, a)
        i = self._index.get(key)
        if i is not None:
            self.bandwidth[i], self.latency[i], self.kind[i] = float(bandwidth), float(latency), kind
            return
        self._index[key] = len(self.ends)
        self.ends.append((a, b) if order[a] < order[b] else (b, a))
        self.bandwidth.append(float(bandwidth))
        self.latency.append(float(latency))
        self.kind.append(kind)
        self._adj[a].append(b)
        self._adj[b].append(a)

    def nodes(self) -> list[int]:
        """Every node in the order it was added."""
        return list(self._order)

    def kind_of(self, n: int) -> str | None:
        return self.kinds.get(n)

    def neighbors(self, n: int) -> list[int]:
        """n's neighbours in the order their links were added (networkx's adjacency order)."""
        return self._adj[n]

    def link(self, a: int, b: int) -> int:
        """The index of the link between a and b."""
        return self._index[(a, b) if a < b else (b, a)]

    def number_of_links(self) -> int:
        return len(self.ends)

    def with_bandwidth(self, kind: str, bandwidth: float) -> LinkTable:
        """A copy whose links of `kind` run at `bandwidth` (the rest is shared: tables are not
        changed once built)."""
        return replace(self, bandwidth=[bandwidth if k == kind else bw for bw, k in zip(self.bandwidth, self.kind)])

    def reachable(self, src: int) -> set[int]:
        """Every node connected to src."""
        seen, todo = {src}, deque([src])
        while todo:
            for v in self._adj[todo.popleft()]:
                if v not in seen:
                    seen.add(v)
                    todo.append(v)
        return seen

    def bfs_paths(self, src: int) -> dict[int, list[int]]:
        """A min-hop path from src to every reachable node: the first one a breadth-first search
        finds, neighbours in adjacency order (networkx's single_source_shortest_path)."""
        paths, frontier = {src: [src]}, [src]
        while frontier:
            nxt = []
            for u in frontier:
                for v in self._adj[u]:
                    if v not in paths:
                        paths[v] = paths[u] + [v]
                        nxt.append(v)
            frontier = nxt
        return paths

    def to_graph(self):
        """The same cluster as a networkx Graph (node attribute `kind` and the node's attributes;
        edge attributes bandwidth, latency, kind)."""
        import networkx as nx

        g = nx.Graph()
        for n in self._order:
            kind = self.kinds.get(n)
            g.add_node(n, **({"kind": kind} if kind is not None else {}), **self.attrs.get(n, {}))
        for (a, b), bw, lat, kind in zip(self.ends, self.bandwidth, self.latency, self.kind):
            g.add_edge(a, b, bandwidth=bw, latency=lat, kind=kind)  # in the order they were added
        return g
