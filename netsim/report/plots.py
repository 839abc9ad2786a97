"""Figures: sweep results (x/y/hue/col), and an iteration's breakdown."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from netsim.errors import InputError  # noqa: E402
from netsim.units import parse_bandwidth, parse_size, parse_time  # noqa: E402


def read_results(path: str | Path) -> pd.DataFrame:
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", where=str(path))
    try:
        return pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
    except Exception as e:
        raise InputError(f"cannot read a results table ({e})", where=str(path)) from None


def _numeric(series: pd.Series) -> pd.Series | None:
    """Numbers, or quantities with units ("100 Gbps") as SI floats; None if neither."""
    num = pd.to_numeric(series, errors="coerce")
    if num.notna().all():
        return num
    for parse, scale in ((parse_bandwidth, 8e-9), (parse_time, 1e6), (parse_size, 1.0)):
        try:
            return series.map(lambda v, parse=parse, scale=scale: parse(str(v)) * scale)
        except ValueError:
            continue
    return None


TIME_UNITS = {"s": 1e6, "ms": 1e3, "us": 1.0}


def natural_key(v) -> tuple:
    """Order "7B" < "70B" < "175B" and 2 < 10: by the leading number, then by the text."""
    import re

    m = re.match(r"\s*([-+]?\d+(?:\.\d+)?)", str(v))
    return (0, float(m.group(1)), str(v)) if m else (1, 0.0, str(v))


def _y_axis(df: pd.DataFrame, y: str, unit: str) -> tuple[pd.Series, str]:
    """A `_us` column in seconds (or the unit asked for), labelled with its unit; others as they are."""
    if not y.endswith("_us"):
        return df[y], y.replace("_", " ")
    if unit == "auto":
        unit = "s" if df[y].abs().max() >= 1e6 else "ms" if df[y].abs().max() >= 1e3 else "us"
    name = _words(y.removesuffix("_us"))
    return df[y] / TIME_UNITS[unit], f"{name} ({'µs' if unit == 'us' else unit})"


def _words(column: str) -> str:
    """A column name as an axis label: words, parallel groups in capitals, `total` as what it is."""
    if column == "total":
        return "iteration time"
    groups = {"dp", "tp", "pp", "ep", "cp"}
    return " ".join(w.upper() if w in groups else w for w in column.replace("_", " ").split()).replace("DP EP", "DP_EP")


def _x_label(x: str, xnum) -> str:
    if xnum is not None and "bandwidth" in x:
        return _words(x.removesuffix("_gbps")) + " (Gbps)"
    return _words(x)


def plot_results(
    path, x: str, y: str, hue: str | None, col: str | None, output: str,
    y_unit: str = "auto", logx: bool = False, logy: bool = False,
) -> None:  # fmt: skip
    """Lines of y over x, one per hue value (in numeric order), one panel per col value; time
    columns (`*_us`) in seconds unless `y_unit` says otherwise; the swept x values as ticks."""
    df = read_results(path)
    if "status" in df:
        df = df[df["status"] == "ok"]
    fig = results_figure(df, x, y, hue, col, y_unit, logx, logy, where=str(path))
    fig.savefig(output, dpi=110)
    plt.close(fig)


def results_figure(
    df: pd.DataFrame, x: str, y: str, hue: str | None = None, col: str | None = None, y_unit: str = "auto",
    logx: bool = False, logy: bool = False, where: str = "results",
):  # fmt: skip
    for name, field in (("--x", x), ("--y", y), ("--hue", hue), ("--col", col)):
        if field and field not in df.columns:
            raise InputError(
                f"no column {field!r}; expected one of {', '.join(map(str, df.columns))}", where=where, field=name
            )
    if pd.to_numeric(df[y], errors="coerce").isna().any():
        raise InputError(f"column {y!r} is not numeric", where=where, field="--y")
    if df.empty:
        raise InputError("no rows to plot (no run with status ok)", where=where)
    ys, ylabel = _y_axis(df, y, y_unit)
    if logy and (ys <= 0).any():
        raise InputError(f"a log axis needs positive values; column {y!r} has some <= 0", where=where, field="--logy")
    panels = sorted(df[col].unique(), key=natural_key) if col else [None]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False, sharey=True)
    xnum = _numeric(df[x])
    if logx and (xnum is None or (xnum <= 0).any()):
        raise InputError(
            f"a log axis needs a numeric column with positive values; {x!r} is not", where=where, field="--logx"
        )
    for ax, panel in zip(axes[0], panels):
        sub = df if panel is None else df[df[col] == panel]
        keys = sorted(sub[hue].unique(), key=natural_key) if hue else [None]
        for key in keys:
            g = sub if key is None else sub[sub[hue] == key]
            label = str(key) if hue else None
            if xnum is not None:
                xs = xnum.loc[g.index]
                order = xs.argsort()
                ax.plot(xs.iloc[order], ys.loc[g.index].iloc[order], marker="o", label=label)
            else:
                ax.plot(g[x].astype(str), ys.loc[g.index], marker="o", label=label)
        _axes_style(ax, xnum, logx, logy)
        ax.set_xlabel(_x_label(x, xnum))
        ax.set_ylabel(ylabel)
        if panel is not None:
            ax.set_title(f"{col} = {panel}")
        if hue:
            ax.legend(title=_words(hue), fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _axes_style(ax, xnum, logx: bool, logy: bool) -> None:
    """Log scales on request; a numeric x swept over a few values gets exactly those as ticks
    (integers printed as integers), so the figure names the points that were run."""
    from matplotlib.ticker import NullFormatter, NullLocator

    if logx:
        ax.set_xscale("log", base=2)
    if logy:
        ax.set_yscale("log")
    else:
        top = max((max(line.get_ydata(), default=0) for line in ax.get_lines()), default=0)
        ax.set_ylim(0, top * 1.08 if top > 0 else None)
    if xnum is not None and xnum.nunique() <= 12:
        ticks = sorted(xnum.unique())
        ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())


BREAKDOWN_PARTS = (
    ("compute_us", "compute", "#4c72b0"),
    ("exposed_tp_us", "exposed TP", "#dd8452"),
    ("exposed_dp_us", "exposed DP", "#55a868"),
    ("exposed_pp_us", "exposed PP", "#c44e52"),
    ("exposed_ep_us", "exposed EP", "#8172b3"),
    ("exposed_dp_ep_us", "exposed DP_EP", "#937860"),
    ("bubble_us", "bubble", "#8c8c8c"),
)


def plot_breakdown(summary: dict, title: str, output: str | Path) -> None:
    """One stacked bar: compute / exposed DP / TP / PP / EP / bubble, in ms."""
    fig, ax = plt.subplots(figsize=(7, 2.6))
    left = 0.0
    for key, label, color in BREAKDOWN_PARTS:
        v = summary.get(key, 0.0) / 1e3
        if v <= 0:
            continue
        ax.barh([0], [v], left=left, color=color, label=f"{label} {v:,.1f} ms")
        left += v
    ax.set_yticks([])
    ax.set_xlabel("ms per iteration")
    ax.set_title(title, fontsize=9)
    ax.legend(ncol=3, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.35))
    fig.savefig(output, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_timeline(bd, output: str | Path, max_spans: int = 20000) -> None:
    """Per-stage streams over time (the same spans as the Perfetto trace)."""
    procs = list(bd.timeline.items())
    rows = [(proc, thread) for proc, spans in procs for thread in dict.fromkeys(s[0] for s in spans)]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(rows) + 1.2))
    colors = {"compute": "#4c72b0", "collective": "#dd8452", "stall": "#c44e52"}
    for y, (proc, thread) in enumerate(rows):
        spans = [s for s in dict(procs)[proc] if s[0] == thread][:max_spans]
        for cat in colors:
            bars = [(s[2] / 1e6, s[3] / 1e6) for s in spans if s[4] == cat]
            if bars:
                ax.broken_barh(bars, (y - 0.35, 0.7), color=colors[cat])
    ax.set_yticks(range(len(rows)), [f"{p}: {t}" for p, t in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("ms")
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=c, label=k) for k, c in colors.items()], fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    plt.close(fig)


def plot_utilisation(util: dict, busiest: list, output: str | Path) -> None:
    """Mean and max utilisation per link tier over the iteration (flow backend)."""
    tiers = list(util)
    fig, ax = plt.subplots(figsize=(6, 3))
    x = range(len(tiers))
    ax.bar([i - 0.2 for i in x], [100 * util[t]["mean"] for t in tiers], 0.4, label="mean")
    ax.bar([i + 0.2 for i in x], [100 * util[t]["max"] for t in tiers], 0.4, label="max")
    ax.set_xticks(list(x), tiers, fontsize=8)
    ax.set_ylabel("% of capacity over the iteration")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    if busiest:
        b = busiest[0]
        ax.set_title(f"busiest link {b['link']} ({b['tier']}) {100 * b['utilization']:.0f}%", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    plt.close(fig)
