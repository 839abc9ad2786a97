"""SimAI's EndToEnd.csv, byte for byte (reference/simai_analytical_spec.md section 6).

Both netsim backends write it; in SimAI-compatible mode it is identical to SimAI-Analytical's.
"""

from __future__ import annotations

import math
from pathlib import Path

from netsim.system.result import Breakdown


def cfmt(x: float, prec: int) -> str:
    """C printf('%.Nf') including its nan/-nan/inf spellings."""
    if math.isnan(x):
        return "-nan" if math.copysign(1.0, x) < 0 else "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{prec}f}"


SUMMARY_HEADER = (
    "File name, Expose DP comm, Expose DP_EP comm, Expose TP comm, Expose_EP_comm, "
    "Expose_PP_comm, bubble time, total comp, total exposed comm, Total time"
)
ROW_HEADER = (
    "layer_name,{run},fwd compute,wg compute,ig compute,fwd exposed comm,wg exposed comm,"
    "ig exposed comm,fwd total comm,algbw,busbw,wg total comm,algbw,busbw,ig total comm,algbw,busbw"
)


def format_endtoend_csv(res: Breakdown, file_name: str, run_name: str = "Analytical_test") -> str:
    """Section 6: results/<prefix>EndToEnd.csv, byte for byte."""
    lines: list[str] = []
    if res.rows or res.truncated_at is None:
        lines.append(ROW_HEADER.format(run=run_name))
    if res.truncated_at == 0:
        lines = []
    us = lambda ns: cfmt(ns / 1000.0, 0)
    for r in res.rows:
        lines.append(
            ",".join(
                [
                    r.name,
                    run_name,
                    us(r.fwd_compute),
                    us(r.wg_compute),
                    us(r.ig_compute),
                    us(r.fwd_exposed),
                    us(r.wg_exposed),
                    us(r.ig_exposed),
                    us(r.fwd_total),
                    cfmt(r.fwd_bw[0], 2),
                    cfmt(r.fwd_bw[1], 2),
                    us(r.wg_total),
                    cfmt(r.wg_bw[0], 2),
                    cfmt(r.wg_bw[1], 2),
                    us(r.ig_total),
                    cfmt(r.ig_bw[0], 2),
                    cfmt(r.ig_bw[1], 2),
                ]
            )
        )
    if res.truncated_at is None:
        total = res.total_us
        cells = [file_name.rsplit("/", 1)[-1]]
        for v in (
            res.exposed_dp_us,
            res.exposed_dp_ep_us,
            res.exposed_tp_us,
            res.exposed_ep_us,
            res.exposed_pp_us,
            res.bubble_us,
            res.compute_us,
            res.exposed_comm_us,
        ):
            cells.append(f"{_summary_value(v)} ({cfmt(v / total * 100 if total else math.nan, 2)}%)")
        cells.append(_summary_value(total))
        lines = [SUMMARY_HEADER, ", ".join(cells)] + lines
    return "".join(line + "\n" for line in lines)


def _summary_value(v: float) -> str:
    return "NaN or Inf" if not math.isfinite(v) else cfmt(v, 0)


def write_endtoend_csv(res: Breakdown, path: str | Path, file_name: str) -> None:
    Path(path).write_text(format_endtoend_csv(res, file_name))
