"""`netsim validate simai`: rerun the cases of a netsim-reference/1 manifest and compare.

Manifest layout: ../shared/simai/README.md. SimAI-Analytical references run netsim's
SimAI-compatible analytical mode with the case's cluster flags; every `expected` field is
compared and the whole EndToEnd.csv is diffed byte for byte.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from netsim.config.simai_conf import SimaiConf
from netsim.errors import InputError, read_text
from netsim.report.simai_csv import format_endtoend_csv
from netsim.system import simai_analytical
from netsim.system.backends import Job, simulate
from netsim.workload.simai_file import read_simai_workload, to_program

if TYPE_CHECKING:
    from netsim.network.dcqcn import Dcqcn

SCHEMA = "netsim-reference/1"


GATED = ("total_us", "exposed_dp_us", "exposed_tp_us")
TRANSPORTS = ("maxmin", "window")


@dataclass
class Comparison:
    """One compared field of one run. `gated`: the field decides pass/fail (total, exposed DP and
    TP, and any other non-zero expected field above 1 ms); the others are reported."""

    case: str
    nominal_gbps: float | None
    field: str
    expected_us: float | None
    got_us: float | None
    rel_err: float
    gated: bool = False

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def compare(case: str, gbps, field: str, expected: float | None, got: float | None) -> Comparison:
    if expected is None or got is None:
        return Comparison(case, gbps, field, expected, got, 0.0)
    if expected == 0:  # met when netsim's value is below 1 ms too; a larger one fails
        return Comparison(case, gbps, field, 0.0, got, rel_err(got, 0.0), gated=abs(got) > 1000.0)
    gated = field in GATED or abs(expected) > 1000.0
    return Comparison(case, gbps, field, float(expected), got, rel_err(got, float(expected)), gated)


def rel_err(got: float, expected: float) -> float:
    """Relative error; against a zero expectation, relative to 1 µs."""
    return (got - expected) / max(abs(expected), 1.0)


def load_manifest(path: str | Path) -> dict:
    try:
        data = json.loads(read_text(path, "manifest"))
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON ({e.msg})", where=f"{path}:{e.lineno}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise InputError(f"expected schema {SCHEMA!r}", where=str(path), field="schema")
    if not isinstance(data.get("cases"), list):
        raise InputError("expected a list of cases", where=str(path), field="cases")
    return data


def _flag(flags: str, name: str) -> str | None:
    m = re.search(rf"(?:^|\s){re.escape(name)}\s+(\S+)", flags or "")
    return m.group(1) if m else None


def analytical_case(case: dict, base: Path, where: str) -> list[Comparison]:
    out: list[Comparison] = []
    try:
        w = read_simai_workload(base / case["workload"])
        cl = case.get("cluster", {})
        for run in case["runs"]:
            flags_text = run.get("simai_flags", "")

            # The manifest's cluster fields, else the SimAI command line they came from.
            def pick(key, flag, default=None, cast=float, src=cl, flags_text=flags_text):
                if key in src:
                    return cast(src[key])
                v = _flag(flags_text, flag)
                if v is None and default is None:
                    raise KeyError(key)
                return cast(v) if v is not None else default

            flags = simai_analytical.ClusterFlags(
                gpus=pick("gpus", "-g", cast=int),
                gpus_per_server=pick("gpus_per_server", "-g_p_s", cast=int),
                nics_per_server=pick("nics_per_server", "-n_p_s", cast=int),
                nvlink_busbw=pick("nvlink_busbw", "-nv", -1.0),
                nic_busbw=pick("nic_busbw", "-nic", -1.0, src=run),
                gpu_type=pick("gpu_type", "-g_type", "H100", cast=str),
                nic_type=_flag(flags_text, "-nic_t") or "cx7",
                dp_overlap=float(_flag(flags_text, "-dp_o") or 0),
                tp_overlap=float(_flag(flags_text, "-tp_o") or 0),
                ep_overlap=float(_flag(flags_text, "-ep_o") or 0),
                pp_overlap=float(_flag(flags_text, "-pp_o") or 1),
            )
            res = simulate("simai-analytical", Job(topo=None, layers=to_program(w), simai_flags=flags))
            summary = res.summary()
            gbps = run.get("nominal_gbps")
            for field, expected in run.get("expected", {}).items():
                got = summary.get(field)
                if got is None:
                    continue
                out.append(compare(case["name"], gbps, field, float(expected), got))
            if run.get("csv"):
                prefix = _flag(flags_text, "-r") or f"{case['name']}-"
                same = format_endtoend_csv(res, prefix) == (base / run["csv"]).read_text()
                out.append(Comparison(case["name"], gbps, "csv", None, None, 0.0 if same else 1.0))
    except KeyError as e:
        raise InputError(f"missing key {e.args[0]!r} in case {case.get('name', '?')!r}", where=where) from None
    return out


def _ns3_run(case: dict, base: Path, transport: str):
    """The packet replay of a SimAI-ns3 case, and the case's SimAI.conf (or None)."""
    from netsim.config.simai_conf import load_simai_conf
    from netsim.network.topology import read_simai_topology

    topo = read_simai_topology(base / case["topology"])
    w = read_simai_workload(base / case["workload"])
    conf = load_simai_conf(base / case["simai_conf"]) if case.get("simai_conf") else None
    # AS_SEND_LAT is in µs; SimAI's default when unset is 6000 µs per flow (semantics section 0).
    send_lat = float(case.get("env", {}).get("AS_SEND_LAT", 6000)) * 1e-6 + 10e-9
    window = transport in ("window", "dcqcn") and bool(conf and conf.values.get("HAS_WIN"))
    cc = dcqcn_of(conf) if window and transport == "dcqcn" else None
    job = Job(topo=topo, layers=to_program(w), send_lat=send_lat, payload=conf.payload if conf else None,
              window=window, dcqcn=cc)  # fmt: skip
    return simulate("packet", job), conf


def dcqcn_of(conf: SimaiConf) -> Dcqcn | None:
    """SimAI.conf's DCQCN (CC_MODE 1 with ENABLE_QCN and the three ECN maps), or None: another
    CC_MODE is not modelled and runs with the window alone."""
    from netsim.network.dcqcn import Dcqcn, Marking
    from netsim.network.packet_timing import HEADERS

    if conf.values.get("CC_MODE") != 1 or not conf.values.get("ENABLE_QCN", 1) or conf.marking_rates() is None:
        return None
    ramps = {bps: Marking(*conf.marking(bps)) for bps in conf.marking_rates()}
    return Dcqcn.from_values(conf.values, conf.rates, conf.payload + HEADERS, ramps)


def ns3_case(case: dict, base: Path, where: str, transport: str = "maxmin") -> list[Comparison]:
    """A SimAI-ns3 case: the flow backend on the case's SimAI topology with SimAI's decomposition,
    its SimAI.conf's packet payload, reported as SimAI does (rank 0) with the slowest and mean rank."""
    try:
        res, conf = _ns3_run(case, base, transport)
        summary = res.summary()
        out = []
        for run in case["runs"]:
            gbps = run.get("nominal_gbps")
            for field, expected in run.get("expected", {}).items():
                got = summary.get(field)
                if got is not None:
                    out.append(compare(case["name"], gbps, field, float(expected), got))
            for field in ("total_max_us", "total_mean_us"):
                out.append(compare(case["name"], gbps, field, None, res.extra[field]))
        if conf is not None and conf.unknown:
            out.append(compare(case["name"], None, f"SimAI.conf keys netsim does not know: {', '.join(conf.unknown)}",
                               None, None))  # fmt: skip
        return out
    except KeyError as e:
        raise InputError(f"missing key {e.args[0]!r} in case {case.get('name', '?')!r}", where=where) from None


# SimAI's EndToEnd.csv: per workload row, each column's collective time at rank 0 (issue to end).
_TOTAL_COMM = {"fwd": "fwd total comm", "ig": "ig total comm", "wg": "wg total comm"}


def reference_rows(csv_path: Path) -> list[dict[str, float]]:
    """The per-row total comm columns (us) of a SimAI EndToEnd.csv, in workload order."""
    lines = read_text(csv_path, "SimAI EndToEnd.csv").splitlines()
    head = next((i for i, line in enumerate(lines) if line.startswith("layer_name,")), None)
    cols = lines[head].split(",") if head is not None else []
    if not all(name in cols for name in _TOTAL_COMM.values()):
        raise InputError(f"expected a layer_name header with {', '.join(_TOTAL_COMM.values())}", where=str(csv_path))
    at = {k: cols.index(name) for k, name in _TOTAL_COMM.items()}
    out = []
    for line in lines[head + 1 :]:
        cells = line.split(",")
        if not cells or cells[0] in ("SUM", "total exposed comm") or len(cells) < len(cols):
            break
        try:
            out.append({k: float(cells[i]) for k, i in at.items()})
        except ValueError:
            raise InputError(f"row {cells[0]!r}: a total comm column is not a number", where=str(csv_path)) from None
    return out


def collectives(path: str | Path, transport: str = "maxmin") -> list[dict]:
    """SimAI-ns3 manifests: rank 0's time for every collective of every case, netsim's packet
    replay beside SimAI's EndToEnd.csv (the issue #12 evidence: which collective misses)."""
    manifest = load_manifest(path)
    if manifest.get("reference") != "SimAI-ns3":
        raise InputError("per-collective times are compared for SimAI-ns3 manifests only", where=str(path),
                         field="reference")  # fmt: skip
    base = Path(path).parent
    out = []
    for case in manifest["cases"]:
        try:
            res, _conf = _ns3_run(case, base, transport)
            ref = reference_rows(base / case["runs"][0]["csv"])
        except KeyError as e:
            raise InputError(f"missing key {e.args[0]!r} in case {case.get('name', '?')!r}", where=str(path)) from None
        for c in res.extra["rank0_collectives"]:
            want = ref[c["row"]][c["column"]] if c["row"] < len(ref) else None
            got = c.get("us")
            err = rel_err(got, want) if want and got is not None else None
            out.append({"case": case["name"], **c, "us": got, "simai_us": want, "rel_err": err})
    return out


def validate(path: str | Path, transport: str = "maxmin") -> list[Comparison]:
    """Every case of a manifest. `transport` (SimAI-ns3 only): max-min sharing, or the RDMA window
    on top of it where the case's SimAI.conf sets HAS_WIN (network/transport.py)."""
    manifest = load_manifest(path)
    base = Path(path).parent
    ref = manifest.get("reference", "")
    rows: list[Comparison] = []
    for case in manifest["cases"]:
        if ref == "SimAI-Analytical":
            rows += analytical_case(case, base, str(path))
        elif ref == "SimAI-ns3":
            rows += ns3_case(case, base, str(path), transport)
        else:
            raise InputError(
                f"unknown reference {ref!r}; expected 'SimAI-Analytical' or 'SimAI-ns3'",
                where=str(path),
                field="reference",
            )
    return rows


def passed(rows: list[Comparison], tolerance: float) -> bool:
    """Every gated field of every run within the tolerance (not only the totals: a DP error must
    not hide inside deterministic compute and TP)."""
    totals = [r for r in rows if r.field == "total_us"]
    return bool(totals) and all(abs(r.rel_err) <= tolerance for r in rows if r.gated)


# ---- flow backend beside SimAI-Analytical -------------------------------------------------

REASONS = {
    ("exposed_dp_us", +1): "ECMP hash collisions and oversubscription slow the DP rings (SimAI-Analytical assumes "
    "every ring edge runs at the NIC's bus bandwidth)",
    ("exposed_dp_us", -1): "DP collectives overlap with the backward pass still running",
    ("exposed_tp_us", +1): "per-step start overhead and latency (2(n-1) x alpha per ring), and contention with "
    "other traffic on shared NICs",
    ("exposed_tp_us", -1): "SimAI-Analytical's size-efficiency ratios and small-message table overprice TP "
    "collectives that the network delivers at line rate",
    ("bubble_us", +1): "SimAI-Analytical divides the bubble by VPP (layers per stage); netsim uses (p-1)/m of a "
    "stage's busy time",
    ("bubble_us", -1): "SimAI-Analytical's bubble includes the gradient/optimizer rows",
}


def case_topology(cl: dict, nic_busbw: float):
    """A network for an analytical case: SimAI's own numbers for link rates (its -nic/-nv are GiB/s).
    One GPU per server: NetZIP's DCN+ leaf-spine (32 GPUs per leaf, 400 Gbps uplinks, as SimAI's
    generator keeps them when -bw changes); otherwise rail-optimized and non-blocking."""
    import math

    from netsim.config.topology import TopologyConfig
    from netsim.network.topology import build_topology

    gpus, gps, nps = int(cl["gpus"]), int(cl["gpus_per_server"]), int(cl["nics_per_server"])
    nic = f"{nic_busbw * 2**30} B/s"
    data = {
        "name": "case",
        "gpu": cl.get("gpu_type", "H100"),
        "servers": gpus // gps,
        "gpus_per_server": gps,
        "nic": {"count": nps, "bandwidth": nic},
    }
    if gps > 1:
        data["nvlink"] = {"bandwidth": f"{float(cl.get('nvlink_busbw', 360)) * 2**30} B/s", "latency": "25 ns"}
        data["fabric"] = {"kind": "rail_optimized", "servers_per_leaf": 32, "spines": 32}
    else:
        leaves = math.ceil(gpus / 32)
        data["fabric"] = {
            "kind": "leaf_spine",
            "leaves": leaves,
            "hosts_per_leaf": 32,
            "spines": 16,
            "uplink_bandwidth": "400 Gbps",
        }
    return build_topology(TopologyConfig.model_validate(data), where="case")


def compare_flow(path: str | Path, threshold: float = 0.05) -> list[dict]:
    """Each SimAI-Analytical run beside netsim's flow backend on the same workload file."""
    manifest = load_manifest(path)
    if manifest.get("reference") != "SimAI-Analytical":
        raise InputError("the flow comparison takes a SimAI-Analytical manifest", where=str(path), field="reference")
    base = Path(path).parent
    out = []
    for case in manifest["cases"]:
        w = read_simai_workload(base / case["workload"])
        for run in case["runs"]:
            topo = case_topology(case["cluster"], float(run["nic_busbw"]))
            got = simulate("flow", Job(topo=topo, layers=to_program(w))).summary()
            exp = {f: float(run["expected"].get(f, 0.0)) for f in got}
            parts = ("exposed_dp_us", "exposed_tp_us", "bubble_us")
            for field in parts + ("compute_us", "total_us"):
                diff = rel_err(got[field], exp[field])
                reason = ""
                if abs(diff) > threshold and field in parts:
                    reason = REASONS.get((field, 1 if diff > 0 else -1), "")
                elif abs(diff) > threshold and field == "total_us":
                    # Name the category that moved the total most.
                    main = max(parts, key=lambda f: abs(got[f] - exp[f]))
                    share = (got[main] - exp[main]) / (got["total_us"] - exp["total_us"])
                    reason = f"{share:.0%} of it is {main}: " + REASONS.get(
                        (main, 1 if got[main] > exp[main] else -1), ""
                    )
                out.append(
                    {
                        "case": case["name"],
                        "nominal_gbps": run.get("nominal_gbps"),
                        "field": field,
                        "simai_analytical_us": exp[field],
                        "flow_us": got[field],
                        "rel_diff": diff,
                        "reason": reason,
                    }
                )
    return out
