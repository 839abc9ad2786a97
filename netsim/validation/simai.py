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

from netsim.engine import simai_analytical
from netsim.errors import InputError
from netsim.report.simai_csv import format_endtoend_csv
from netsim.workload.simai_file import read_simai_workload

SCHEMA = "netsim-reference/1"


@dataclass
class Comparison:
    case: str
    nominal_gbps: float | None
    field: str
    expected_us: float | None
    got_us: float | None
    rel_err: float

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def rel_err(got: float, expected: float) -> float:
    """Relative error; against a zero expectation, relative to 1 µs."""
    return (got - expected) / max(abs(expected), 1.0)


def load_manifest(path: str | Path) -> dict:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as e:
        raise InputError(f"cannot read ({e.strerror})", where=str(path)) from None
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
        cl = case["cluster"]
        for run in case["runs"]:
            flags_text = run.get("simai_flags", "")
            flags = simai_analytical.ClusterFlags(
                gpus=int(cl["gpus"]), gpus_per_server=int(cl["gpus_per_server"]),
                nics_per_server=int(cl["nics_per_server"]), nvlink_busbw=float(cl.get("nvlink_busbw", -1)),
                nic_busbw=float(run["nic_busbw"]), gpu_type=cl.get("gpu_type", "H100"),
                dp_overlap=float(_flag(flags_text, "-dp_o") or 0), tp_overlap=float(_flag(flags_text, "-tp_o") or 0),
                ep_overlap=float(_flag(flags_text, "-ep_o") or 0), pp_overlap=float(_flag(flags_text, "-pp_o") or 1))
            res = simai_analytical.simulate(w, flags)
            summary = res.summary()
            gbps = run.get("nominal_gbps")
            for field, expected in run.get("expected", {}).items():
                got = summary.get(field)
                if got is None:
                    continue
                out.append(Comparison(case["name"], gbps, field, float(expected), got, rel_err(got, float(expected))))
            if run.get("csv"):
                prefix = _flag(flags_text, "-r") or f"{case['name']}-"
                same = format_endtoend_csv(res, prefix) == (base / run["csv"]).read_text()
                out.append(Comparison(case["name"], gbps, "csv", None, None, 0.0 if same else 1.0))
    except KeyError as e:
        raise InputError(f"missing key {e.args[0]!r} in case {case.get('name', '?')!r}", where=where) from None
    return out


def ns3_case(case: dict, base: Path, where: str) -> list[Comparison]:
    """A SimAI-ns3 case: the flow backend on the case's SimAI topology with SimAI's decomposition."""
    from netsim.engine.simai_replay import SimaiReplay
    from netsim.network.topology import read_simai_topology

    try:
        topo = read_simai_topology(base / case["topology"])
        w = read_simai_workload(base / case["workload"])
        # AS_SEND_LAT is in µs; SimAI's default when unset is 6000 µs per flow (semantics section 0).
        send_lat = float(case.get("env", {}).get("AS_SEND_LAT", 6000)) * 1e-6 + 10e-9
        res = SimaiReplay(w, topo, send_lat).run()
        summary = res.summary()
        out = []
        for run in case["runs"]:
            for field, expected in run.get("expected", {}).items():
                got = summary.get(field)
                if got is not None:
                    out.append(Comparison(case["name"], run.get("nominal_gbps"), field, float(expected), got,
                                          rel_err(got, float(expected))))
        return out
    except KeyError as e:
        raise InputError(f"missing key {e.args[0]!r} in case {case.get('name', '?')!r}", where=where) from None


def validate(path: str | Path) -> list[Comparison]:
    manifest = load_manifest(path)
    base = Path(path).parent
    ref = manifest.get("reference", "")
    rows: list[Comparison] = []
    for case in manifest["cases"]:
        if ref == "SimAI-Analytical":
            rows += analytical_case(case, base, str(path))
        elif ref == "SimAI-ns3":
            rows += ns3_case(case, base, str(path))
        else:
            raise InputError(f"unknown reference {ref!r}; expected 'SimAI-Analytical' or 'SimAI-ns3'",
                             where=str(path), field="reference")
    return rows


def passed(rows: list[Comparison], tolerance: float) -> bool:
    totals = [r for r in rows if r.field == "total_us"]
    return bool(totals) and all(abs(r.rel_err) <= tolerance for r in totals)
