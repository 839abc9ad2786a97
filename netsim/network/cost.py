"""Network cost: $ per GB/s of per-NPU bandwidth by tier (LIBRA's cost model, reference/peers.md
section 1; table in calibration/network_cost/libra.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from netsim.errors import InputError, read_text
from netsim.network.topology import Topology
from netsim.resources import CALIBRATION

DEFAULT_COST = CALIBRATION / "network_cost" / "libra.json"


def load_cost_table(path: str | Path | None = None) -> dict[str, dict[str, float]]:
    p = Path(path) if path else DEFAULT_COST
    try:
        data = json.loads(read_text(p, "cost table"))
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON ({e.msg})", where=f"{p}:{e.lineno}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InputError("expected {tier: {Link: $, Switch: $, Nic: $}}", where=str(p))
    return {k.lower(): {kk.lower(): float(vv) for kk, vv in v.items()} for k, v in data.items()}


def dim_cost_per_GBps(topo: Topology, table: dict[str, dict[str, float]]) -> np.ndarray:
    """$ per NPU per GB/s of each dimension: Link/2 for rings and all-to-all links (LIBRA counts
    n and n(n-1)/2 links of b/2 and b/(n-1)), Link + Switch + Nic for a switch dimension."""
    if not topo.dims:
        raise InputError("network cost is defined for multi_dim topologies (fabric kind multi_dim)", field="fabric")
    out = []
    for kind, _n, _bw, _lat, tier in topo.dims:
        row = table.get(tier)
        if row is None:
            raise InputError(f"no cost row for tier {tier!r}; the table has {', '.join(table)}", field="tier")
        if kind == "switch":
            out.append(row.get("link", 0.0) + row.get("switch", 0.0) + row.get("nic", 0.0))
        else:
            out.append(row.get("link", 0.0) / 2)
    return np.array(out)


def network_cost(topo: Topology, bandwidth_GBps=None, table=None) -> dict:
    """Per-dimension and total $ per NPU, and for the whole network."""
    c = dim_cost_per_GBps(topo, table or load_cost_table())
    b = np.array([d[2] / 1e9 for d in topo.dims]) if bandwidth_GBps is None else np.asarray(bandwidth_GBps, float)
    per_dim = c * b
    return {"per_dim_usd": per_dim.tolist(), "per_npu_usd": float(per_dim.sum()),
            "total_usd": float(per_dim.sum() * topo.num_gpus)}  # fmt: skip
