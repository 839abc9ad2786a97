"""Human-readable tables of results (rich), in SimAI's categories."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from netsim.system.result import Breakdown

CATEGORIES = (
    ("compute_us", "compute"),
    ("exposed_tp_us", "exposed TP comm"),
    ("exposed_dp_us", "exposed DP comm"),
    ("exposed_pp_us", "exposed PP comm"),
    ("exposed_ep_us", "exposed EP comm"),
    ("exposed_dp_ep_us", "exposed DP_EP comm"),
    ("bubble_us", "pipeline bubble"),
    ("exposed_comm_us", "exposed comm (all)"),
    ("total_us", "iteration total"),
)


def breakdown_table(bd: Breakdown, title: str) -> Table:
    t = Table(title=title, title_justify="left")
    t.add_column("category")
    t.add_column("time (us)", justify="right")
    t.add_column("time (ms)", justify="right")
    t.add_column("share", justify="right")
    total = bd.total_us or 1.0
    for key, label in CATEGORIES:
        v = getattr(bd, key)
        if v == 0 and key in ("exposed_ep_us", "exposed_dp_ep_us"):
            continue
        style = "bold" if key == "total_us" else None
        t.add_row(label, f"{v:,.0f}", f"{v / 1e3:,.3f}", f"{100 * v / total:.2f}%", style=style)
    return t


def print_table(table: Table) -> None:
    # Off a terminal (pipes, files, tests) rich would squeeze tables into 80 columns.
    width = None if sys.stdout.isatty() else 200
    Console(soft_wrap=True, width=width).print(table)


def utilisation_table(util: dict, busiest: list) -> Table:
    t = Table(title="link utilisation over the iteration", title_justify="left")
    t.add_column("tier")
    t.add_column("mean", justify="right")
    t.add_column("max", justify="right")
    for tier, v in util.items():
        t.add_row(tier, f"{100 * v['mean']:.1f}%", f"{100 * v['max']:.1f}%")
    if busiest:
        t.caption = "busiest: " + ", ".join(f"{b['link']} ({b['tier']}) {100 * b['utilization']:.0f}%" for b in busiest)
    return t


def compression_table(acct: dict) -> Table:
    t = Table(title="compression per traffic class (one rank)", title_justify="left")
    for col in ("class", "sent (GB)", "on the wire (GB)", "saved", "codec time (ms)"):
        t.add_column(col, justify="left" if col == "class" else "right")
    for cls, v in acct.items():
        saved = v["bytes_saved"] / v["bytes"] if v["bytes"] else 0.0
        t.add_row(
            cls,
            f"{v['bytes'] / 1e9:,.2f}",
            f"{v['wire_bytes'] / 1e9:,.2f}",
            f"{saved:.0%}",
            f"{v['codec_time_us'] / 1e3:,.2f}",
        )
    return t
