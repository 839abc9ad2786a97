"""The `netsim` command: parse arguments, call the library, print or write results."""

from __future__ import annotations

import gc
import json
import os
import sys
from pathlib import Path

# netsim's models use no pydantic plugin, and looking for one reads every installed distribution's
# metadata (importlib.metadata, email, zipfile: ~40 ms of a one-second run; issue #18). A value the
# user set wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import click  # noqa: E402

from netsim.errors import InputError
from netsim.report import json_out


def _freeze_heap() -> None:
    """Leave the objects alive now (modules, pydantic schemas, tables: most of the process) out of
    every later garbage collection, once a command has imported what it runs: each full collection
    walked them all again (issue #18: ~10 % of a 512-GPU run). The command's own garbage is
    collected as before. Once per process (a test session calling commands in turn freezes only
    what the first found)."""
    if not gc.get_freeze_count():
        gc.freeze()


def _fail(err: InputError) -> None:
    click.echo(f"netsim: error: {err}", err=True)
    sys.exit(2)


class _Group(click.Group):
    """Turn every InputError into one line on stderr and exit code 2; a file the command cannot
    write likewise; anything else is a netsim bug: one line and exit code 1 (NETSIM_TRACEBACK=1
    shows the traceback)."""

    def main(self, *args, **kwargs):
        """click's usage errors keep their usage lines; the last line names the option and the
        expectation like every other error."""
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
        except click.UsageError as e:
            if e.ctx is not None:
                click.echo(e.ctx.get_usage(), err=True)
                click.echo(f"Try '{e.ctx.command_path} -h' for help.", err=True)
            param = getattr(e, "param", None)
            hint = "/".join(param.opts) if param is not None and getattr(param, "opts", None) else None
            plain = isinstance(e, click.BadParameter) and not isinstance(e, click.MissingParameter)
            msg = e.message if plain else e.format_message()
            click.echo(f"netsim: error: {hint + ': ' if hint else ''}{msg}", err=True)
            sys.exit(2)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InputError as e:
            _fail(e)
        except UnicodeDecodeError as e:
            _fail(InputError(f"expected UTF-8 text, found byte 0x{e.object[e.start]:02x} at offset {e.start}"))
        except OSError as e:  # an output path the user named: missing folder, no permission, disk full
            where = e.filename or "output"
            _fail(InputError(f"cannot write ({e.strerror or e})", where=str(where)))
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit, KeyboardInterrupt):
            raise
        except Exception as e:
            if os.environ.get("NETSIM_TRACEBACK"):
                raise
            click.echo(f"netsim: internal error: {type(e).__name__}: {e} (a bug: please report it with the "
                       "command; NETSIM_TRACEBACK=1 shows where)", err=True)  # fmt: skip
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="netsim")
def main() -> None:
    """netsim: how long does an LLM training iteration take on this network?"""


def _parallel_options(f):
    for opt in reversed(
        [
            click.option("--tp", type=click.IntRange(min=1), help="tensor-parallel size"),
            click.option("--pp", type=click.IntRange(min=1), help="pipeline-parallel size"),
            click.option("--dp", type=click.IntRange(min=1), help="data-parallel size (default: GPUs / (tp x pp))"),
            click.option("--gbs", type=click.IntRange(min=1), help="global batch size (sequences)"),
            click.option("--mbs", type=click.IntRange(min=1), help="micro-batch size"),
            click.option("--seq", type=click.IntRange(min=1), help="sequence length"),
            click.option("--sp/--no-sp", default=None, help="sequence parallelism"),
        ]
    ):
        f = opt(f)
    return f


def _training_options(f):
    """Megatron-Core / NeMo / torchtitan training options (README "Training options")."""
    for opt in reversed(
        [
            click.option("--cp", type=click.IntRange(min=1), help="context-parallel size (--context-parallel-size)"),
            click.option(
                "--ep", type=click.IntRange(min=1), help="expert-parallel size (--expert-model-parallel-size)"
            ),
            click.option(
                "--etp",
                type=click.IntRange(min=1),
                help="expert tensor-parallel size (--expert-tensor-parallel-size; default: --tp)",
            ),
            click.option("--vpp", type=click.IntRange(min=1), help="model chunks per pipeline rank (interleaved 1F1B)"),
            click.option(
                "--recompute",
                type=click.Choice(["none", "selective", "selective-op", "full"]),
                help="activation recompute (selective-op: torchtitan's op-level selective AC)",
            ),
            click.option("--precision", type=click.Choice(["bf16", "fp16", "fp8"]), help="GEMM precision"),
            click.option(
                "--kernels",
                type=click.Choice(["fused", "eager"]),
                help="elementwise kernels: fused (Megatron/TE, torch.compile) or eager PyTorch (torchtitan's default)",
            ),
            click.option(
                "--sharding",
                type=click.Choice(["none", "distributed-optimizer", "zero-1", "fsdp", "fsdp-no-reshard-after-forward"]),
            ),
            click.option("--overlap-grad-reduce/--no-overlap-grad-reduce", default=None),
            click.option("--overlap-param-gather/--no-overlap-param-gather", default=None),
            click.option("--tp-comm-overlap/--no-tp-comm-overlap", default=None),
            click.option("--calibration", type=click.Path(dir_okay=False), help="compute calibration YAML"),
        ]  # fmt: skip
    ):
        f = opt(f)
    return f


@main.command()
@click.argument("topology", type=click.Path(dir_okay=False))
@click.option("--model", help="model preset (7B, 13B, 22B, 70B, 175B, 405B, or a name) or a model YAML")
@click.option("--workload", type=click.Path(dir_okay=False), help="a SimAI/AICB workload file")
@click.option(
    "--backend",
    type=click.Choice(["flow", "analytical"]),
    default=None,
    help="flow (default): SimPy + fluid max-min network (contention, ECMP, overlap); analytical: closed "
    "forms (the default with --mode simai)",
)
@click.option(
    "--network",
    type=click.Choice(["real", "ideal"]),
    default="real",
    show_default=True,
    help="ideal: infinite bandwidth and zero latency, to isolate compute and the pipeline bubble",
)
@click.option(
    "--fidelity",
    type=click.Choice(["macro", "chunked"]),
    default="macro",
    show_default=True,
    help="flow backend: one flow per ring edge, or every ring step",
)
@click.option(
    "--schedule",
    type=click.Choice(["1f1b", "gpipe", "interleaved"]),
    default=None,
    help="pipeline schedule (interleaved: Megatron's interleaved 1F1B, with --vpp)",
)
@click.option(
    "--mode",
    type=click.Choice(["physical", "simai"]),
    default="physical",
    show_default=True,
    help="analytical backend: physically sound, or SimAI-Analytical compatible",
)
@click.option("--bandwidth", help='override the NIC line rate, e.g. "100 Gbps"')
@click.option(
    "--alltoall",
    type=click.Choice(["pxn", "direct"]),
    default="pxn",
    show_default=True,
    help="flow backend's all-to-all (MoE, DLRM): NCCL's PXN (NVLink to the destination's rail, then "
    "that rail) or one flow per pair",
)
@click.option(
    "--transport",
    type=click.Choice(["maxmin", "window"]),
    default="maxmin",
    show_default=True,
    help="flow backend's rates: max-min fair, or RDMA windows (BDP window, packet headers, ACKs, "
    "queueing on data and ACK paths; slower to simulate)",
)
@click.option(
    "--dp-replicas",
    type=click.IntRange(min=1),
    help="flow backend: DP replicas whose TP/CP/PP traffic is simulated (default: all up to 4,096 GPUs, "
    "else 8; DP collectives always span every rank)",
)
@click.option("--compression", help="compression profile (see calibration/compression/) or YAML file")
@click.option(
    "--checkpoint",
    type=click.Choice(["none", "blocking", "interleaved"]),
    default="none",
    show_default=True,
    help="GEMINI checkpoints to peers' CPU memory: after the iteration, or in the network's idle gaps",
)
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=1, show_default=True, help="iterations")
@click.option("--replicas", type=click.IntRange(min=1), default=2, show_default=True, help="checkpoint replicas m")
@click.option("--placement", type=click.Choice(["group", "ring"]), default="group", show_default=True)
@click.option("--storage-bandwidth", default="20 Gbps", show_default=True, help="remote storage, aggregate")
@_parallel_options
@_training_options
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="also write EndToEnd.csv, result.json, breakdown.png, timeline.png and utilisation.png here",
)
@click.option("--trace", type=click.Path(dir_okay=False), help="write a Chrome/Perfetto trace (JSON)")
@click.option("--force", is_flag=True, help="replace netsim's files in a non-empty --out folder")
def run(topology, model, workload, as_json, out, trace, force, **opts):
    """Simulate one training iteration on TOPOLOGY and print its time breakdown."""
    from netsim.simulate import RunSpec
    from netsim.simulate import run as run_sim

    if out and Path(out).exists() and any(Path(out).iterdir()) and not force:
        raise InputError("the output folder is not empty; use --force to replace netsim's files there", where=out,
                         field="--out")  # fmt: skip

    from netsim.report.progress import eta_printer

    # The bar shows only on a terminal, and only when the iteration takes more than a few seconds
    # to simulate: piped or captured output stays exactly the result.
    spec = RunSpec.parse({"topology": topology, "model": model, "workload": workload, **opts})
    bar = eta_printer("simulating", after_s=3.0) if sys.stderr.isatty() else None
    _freeze_heap()
    res = run_sim(spec, progress=bar, detail=bool(out or trace))
    payload = res.to_dict()
    if out:
        _write_run_outputs(res, payload, Path(out), model or workload)
    if trace:
        from netsim.report.trace import write_trace

        write_trace(res.breakdown, trace)
    if as_json:
        click.echo(json_out.dumps(payload, json_out.RUN_SCHEMA))
        return
    _print_run(res, payload, model or workload, opts["mode"])
    if out:
        click.echo(f"wrote EndToEnd.csv, result.json and figures to {out}")
    if trace:
        click.echo(f"wrote trace {trace} (open in ui.perfetto.dev)")


FIGURE_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def _check_figure_file(path: str, field: str) -> None:
    """A figure path matplotlib can write, by its suffix (before any simulation runs)."""
    if Path(path).suffix.lower() not in FIGURE_FORMATS:
        raise InputError(f"expected an output file ending in {', '.join(FIGURE_FORMATS)}", where=path, field=field)


RUN_OUTPUTS = ("EndToEnd.csv", "result.json", "breakdown.png", "timeline.png", "utilisation.png")


def _write_run_outputs(res, payload: dict, d: Path, what: str) -> None:
    """Write into a fresh sibling folder, then move the files in: an interrupted run leaves the
    previous result whole, and no stale figure of an earlier run stays beside the new one."""
    import shutil
    import tempfile

    from netsim.report.plots import plot_breakdown, plot_timeline, plot_utilisation
    from netsim.report.simai_csv import format_endtoend_csv

    d.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{d.name}.", dir=d.parent))
    try:
        (tmp / "EndToEnd.csv").write_text(format_endtoend_csv(res.breakdown, res.csv_name))
        (tmp / "result.json").write_text(json_out.dumps(payload, json_out.RUN_SCHEMA, indent=1) + "\n")
        plot_breakdown(payload, f"{what} on {payload['config']['topology']['name']}", tmp / "breakdown.png")
        if res.breakdown.timeline:
            plot_timeline(res.breakdown, tmp / "timeline.png")
        if payload.get("link_utilization"):
            plot_utilisation(payload["link_utilization"], payload.get("busiest_links", []), tmp / "utilisation.png")
        for name in RUN_OUTPUTS:
            (d / name).unlink(missing_ok=True)
        for f in tmp.iterdir():
            os.replace(f, d / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _print_run(res, payload: dict, what: str, mode: str) -> None:
    from netsim.report.tables import breakdown_table, compression_table, print_table, utilisation_table

    par = payload["config"].get("parallelism", {})
    topo = payload["config"]["topology"]
    title = (
        f"{what} on {topo['name']} ({topo['gpus']} GPUs): "
        f"TP{par.get('tp')} PP{par.get('pp')} DP{par.get('dp')}, {par.get('microbatches')} micro-batches; "
        f"{payload['config']['backend']} backend, {mode} mode"
    )
    simulated = payload.get("simulated_dp_replicas")
    if simulated is not None and par.get("dp") and simulated < par["dp"]:
        title += f"; TP/PP traffic of {simulated} of {par['dp']} DP replicas simulated (--dp-replicas)"
    print_table(breakdown_table(res.breakdown, title))
    links = payload.get("link_utilization")
    if links:
        print_table(utilisation_table(links, payload.get("busiest_links", [])))
    if payload.get("compression"):
        print_table(compression_table(payload["compression"]))


@main.group()
def validate() -> None:
    """Compare netsim with reference simulators."""


def _print_collectives(manifest: str, transport: str, as_json: bool) -> None:
    from rich.table import Table

    from netsim.report.tables import print_table
    from netsim.validation.simai import collectives

    rows = collectives(manifest, transport=transport)
    if as_json:
        click.echo(json.dumps(rows))
        return
    t = Table(title=f"rank 0's collectives, netsim ({transport}) vs SimAI ({manifest})", title_justify="left")
    for col in ("case", "row", "layer", "col", "op", "MB", "SimAI (us)", "netsim (us)", "rel err"):
        t.add_column(col, justify="left" if col in ("case", "layer", "col", "op") else "right")
    for r in rows:
        err = "" if r["rel_err"] is None else f"{r['rel_err']:+.2%}"
        want = "-" if r["simai_us"] is None else f"{r['simai_us']:,.1f}"
        got = "-" if r["us"] is None else f"{r['us']:,.1f}"
        t.add_row(r["case"], str(r["row"]), r["layer"], r["column"], r["op"], f"{r['bytes'] / 1e6:,.1f}", want,
                  got, err)  # fmt: skip
    print_table(t)


@validate.command("simai")
@click.option("--transport", type=click.Choice(["maxmin", "window", "dcqcn"]), default="maxmin", show_default=True,
              help="SimAI-ns3 cases: max-min sharing, the RDMA window (SimAI.conf HAS_WIN) with queueing on "
              "data and ACK paths, or that window with DCQCN holding marking ports' queues (CC_MODE 1)")  # fmt: skip
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="print a JSON list of comparisons")
@click.option(
    "--tolerance",
    type=float,
    default=None,
    help="allowed |relative error| of total_us [0.005 for SimAI-Analytical, 0.05 for SimAI-ns3]",
)
@click.option(
    "--compare-flow",
    is_flag=True,
    help="SimAI-Analytical manifests: show netsim's flow backend beside SimAI, with the reason for "
    "every difference over 5%",
)
@click.option(
    "--collectives",
    is_flag=True,
    help="SimAI-ns3 manifests: rank 0's time for every collective (each workload row's fwd / ig / wg) "
    "beside SimAI's EndToEnd.csv",
)
def validate_simai(manifest, as_json, tolerance, compare_flow, transport, collectives):
    """Rerun every case of a netsim-reference/1 MANIFEST and compare with SimAI.

    SimAI-Analytical references run netsim's SimAI-compatible analytical mode; SimAI-ns3
    references replay SimAI's packet-level decomposition rank by rank on the flow backend."""
    from rich.table import Table

    from netsim.report.tables import print_table
    from netsim.validation.simai import compare_flow as run_compare
    from netsim.validation.simai import load_manifest, passed
    from netsim.validation.simai import validate as run_validation

    _freeze_heap()
    if collectives:
        _print_collectives(manifest, transport, as_json)
        return
    if compare_flow:
        rows = run_compare(manifest)
        if as_json:
            click.echo(json.dumps(rows))
            return
        t = Table(title=f"netsim flow backend beside SimAI-Analytical ({manifest})", title_justify="left")
        for col in ("case", "Gbps", "field", "SimAI-Analytical (us)", "netsim flow (us)", "diff", "why"):
            t.add_column(col, justify="left" if col in ("case", "field", "why") else "right")
        for r in rows:
            t.add_row(
                r["case"],
                str(r["nominal_gbps"]),
                r["field"],
                f"{r['simai_analytical_us']:,.0f}",
                f"{r['flow_us']:,.0f}",
                f"{r['rel_diff']:+.1%}",
                r["reason"],
            )
        print_table(t)
        return
    if tolerance is None:
        tolerance = 0.05 if load_manifest(manifest).get("reference") == "SimAI-ns3" else 0.005

    rows = run_validation(manifest, transport=transport)
    ok = passed(rows, tolerance)
    if as_json:
        click.echo(json_out.dumps([r.to_dict() for r in rows]))
    else:
        t = Table(title=f"netsim vs SimAI ({manifest})", title_justify="left")
        for col in ("case", "Gbps", "field", "expected (us)", "netsim (us)", "rel err", "gate"):
            t.add_column(col, justify="left" if col in ("case", "field", "gate") else "right")
        for r in rows:
            t.add_row(*_simai_row(r, tolerance))
        print_table(t)
        totals = [r for r in rows if r.field == "total_us"]
        same = sum(1 for r in rows if r.field == "csv" and r.rel_err == 0)
        worst = max((abs(r.rel_err) for r in totals), default=0.0)
        missed = sorted({f"{r.case} {r.field}" for r in rows if r.gated and abs(r.rel_err) > tolerance})
        click.echo(
            f"{'PASS' if ok else 'FAIL'}: {len(totals)} runs, worst |total error| {worst:.4%} "
            f"(tolerance {tolerance:.2%}, gated on total, exposed DP and TP and every field above 1 ms); "
            f"CSV identical {same}/{sum(1 for r in rows if r.field == 'csv')}"
            + (f"; missed: {', '.join(missed)}" if missed else "")
        )
    sys.exit(0 if ok else 1)


@validate.command("published")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="a list of {case, published_s, predicted_s, rel_err, breakdown}")
@click.option("--backend", type=click.Choice(["flow", "analytical"]), default="flow", show_default=True)
@click.option(
    "--calibration", type=click.Path(dir_okay=False), help="a compute calibration YAML (compute.yaml's schema)"
)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="cases run in parallel")
@click.option(
    "--replicas",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="DP replicas whose TP/CP/PP traffic is simulated (DP collectives always span every rank)",
)
@click.option("--tolerance", type=click.FloatRange(min=0), default=0.08, show_default=True,
              help="pass when the geomean |rel err| is within this")  # fmt: skip
def validate_published(manifest, as_json, backend, calibration, workers, replicas, tolerance):
    """Predict every case of a netsim-published/1 MANIFEST (real clusters' iteration times) and compare.

    Each case is built from the manifest alone; a null field takes a documented default, which the
    row names. rel err is the distance to t_iter_s_range where the case gives one."""
    from netsim.validation.published import geomean_abs
    from netsim.validation.published import validate as run_published

    if calibration:
        from netsim.config.loader import read_yaml

        read_yaml(Path(calibration))  # a bad file fails here, before any case runs
    _freeze_heap()
    rows = run_published(manifest, backend=backend, calibration=calibration, workers=workers, replicas=replicas)
    errs = [r.rel_err for r in rows if r.rel_err is not None]
    g = geomean_abs(errs)
    ok = bool(errs) and len(errs) == len(rows) and g <= tolerance
    if as_json:
        click.echo(json_out.dumps([r.to_dict() for r in rows]))
        sys.exit(0 if ok else 1)
    _published_table(rows, manifest)
    worst = max(rows, key=lambda r: abs(r.rel_err) if r.rel_err is not None else -1)
    click.echo(
        f"{'PASS' if ok else 'FAIL'}: {len(errs)}/{len(rows)} cases predicted, geomean |error| {g:.1%} "
        f"(tolerance {tolerance:.0%}), worst {worst.case} {worst.rel_err or 0:+.1%}"
    )
    for r in rows:
        if r.defaults:
            click.echo(f"  {r.case}: defaults for null fields: {', '.join(r.defaults)}")
    sys.exit(0 if ok else 1)


def _simai_row(r, tolerance: float) -> tuple[str, ...]:
    """One comparison as table cells: a zero expectation shows the absolute difference, info rows
    (the slowest rank, the mean, unknown SimAI.conf keys) show no error."""
    gbps = "-" if r.nominal_gbps is None else f"{r.nominal_gbps:g}"
    if r.field == "csv":
        return (r.case, gbps, "EndToEnd.csv", "", "", "identical" if r.rel_err == 0 else "DIFFERS", "")
    if r.expected_us is None:
        return (r.case, gbps, r.field, "-", "" if r.got_us is None else f"{r.got_us:,.1f}", "", "info")
    err = f"{r.got_us - r.expected_us:+,.1f} us" if r.expected_us == 0 else f"{r.rel_err:+.4%}"
    gate = ("MISS" if abs(r.rel_err) > tolerance else "ok") if r.gated else ""
    return (r.case, gbps, r.field, f"{r.expected_us:,.0f}", f"{r.got_us:,.1f}", err, gate)


def _published_table(rows, manifest) -> None:
    from rich.table import Table

    from netsim.report.tables import print_table

    t = Table(title=f"netsim vs published iteration times ({manifest})", title_justify="left")
    cols = ("case", "GPUs", "parallelism", "published s", "netsim s", "error", "compute", "recompute", "bubble",
            "TP", "CP", "DP", "PP")  # fmt: skip
    for col in cols:
        t.add_column(col, justify="left" if col in ("case", "parallelism") else "right")
    for r in rows:
        if r.error:
            t.add_row(r.case, "", "", f"{r.published_s:g}", "error", r.error)
            continue
        b = r.breakdown
        t.add_row(
            r.case, str(r.gpus), r.parallelism, f"{r.published_s:g}", f"{r.predicted_s:.3g}", f"{r.rel_err:+.1%}",
            *(f"{b[k]:.3g}" for k in ("compute_s", "recompute_s", "bubble_s", "exposed_tp_s", "exposed_cp_s",
                                      "exposed_dp_s", "exposed_pp_s")),
        )  # fmt: skip
    print_table(t)


@main.group()
def export() -> None:
    """Write workloads in other simulators' formats."""


@export.command("simai")
@click.option("--model", required=True, help="model preset or YAML")
@click.option("--gpus", type=click.IntRange(min=1), help="world size (or take it from --topology)")
@click.option("--topology", type=click.Path(dir_okay=False), help="topology whose GPU count is the world size")
@_parallel_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["aicb", "netsim"]),
    default="aicb",
    show_default=True,
    help="aicb: what AICB writes for these arguments; netsim: netsim's Megatron workload (slowest stage)",
)
@click.option("--aiob", type=click.Path(dir_okay=False), help="AIOB timing file for the compute columns (aicb format)")
@click.option("--gpu", default=None, help="GPU type for compute times (default: the topology's, else H100)")
@click.option("--tail", is_flag=True, help="keep AICB's cross_entropy/optimizer tail rows (SimAI's ns-3 hangs on them)")
@click.option("--ep", type=click.IntRange(min=1), help="expert-parallel size (MoE models; netsim format)")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="output workload file")
def export_simai(model, gpus, topology, tp, pp, dp, gbs, mbs, seq, sp, fmt, aiob, gpu, tail, ep, output):
    """Write a SimAI/AICB workload file (HYBRID_TRANSFORMER_FWD_IN_BCKWD)."""
    from netsim.network.topology import load_topology
    from netsim.simulate import resolve_training
    from netsim.workload.aicb import aiob_sections, generate_aicb, read_aiob_timing, timing_from_sections
    from netsim.workload.compute import gpu_compute
    from netsim.workload.megatron import build_megatron
    from netsim.workload.simai_file import from_program, write_simai_workload

    if (gpus is None) == (topology is None):
        raise InputError("give exactly one of --gpus N or --topology FILE", field="--gpus/--topology")
    gpu_type = gpu or "H100"
    if topology:
        topo = load_topology(topology)
        gpus, gpu_type = topo.num_gpus, gpu or topo.gpu
    knobs = {"tp": tp, "pp": pp, "dp": dp, "gbs": gbs, "mbs": mbs, "seq": seq, "sp": sp, "ep": ep}
    m, par = resolve_training(model, gpus, knobs)
    comp = gpu_compute(gpu_type)
    if fmt == "aicb" and m.experts:
        # reference/aicb_workload_spec.md specifies AICB's dense rows only; its MoE rows are not
        # written from a guess. netsim's format carries the EP groups (ALLTOALL_EP, *_DP_EP).
        raise InputError("AICB's MoE row layout is not specified here (dense only); use --format netsim, which "
                         "writes the all-to-alls as ALLTOALL_EP and expert gradients as *_DP_EP", field="--format")  # fmt: skip
    if fmt == "aicb":
        timing = read_aiob_timing(aiob) if aiob else timing_from_sections(aiob_sections(m, par, comp))
        w = generate_aicb(m, par, timing, include_tail=tail)
    else:
        sw = build_megatron(m, par, comp)
        w = from_program(sw.unrolled[sw.representative()])
    write_simai_workload(w, output)
    click.echo(
        f"wrote {output}: {len(w.rows)} rows, TP{par.tp} PP{par.pp} DP{par.dp}, "
        f"{par.microbatches} micro-batches ({fmt} format)"
    )


@main.command()
@click.argument("sweep_file", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), help="results directory (default: sweeps_out/<sweep name>)")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="parallel runs")
@click.option("--dask", "dask_address", help="'local' for a Dask LocalCluster, or a scheduler address tcp://host:8786")
@click.option("--resume", is_flag=True, help="run only the points missing from DIR/results.csv")
@click.option("--quiet", is_flag=True, help="no progress bar")
def sweep(sweep_file, out, workers, dask_address, resume, quiet):
    """Run every point of SWEEP_FILE; rows land in DIR/results.csv (and .parquet) as runs finish."""
    from netsim.config.loader import load_model
    from netsim.config.sweep import SweepConfig
    from netsim.report.progress import eta_printer
    from netsim.sweep.grid import expand
    from netsim.sweep.runner import execute

    cfg = load_model(SweepConfig, sweep_file)
    points = expand(cfg, base_dir=Path(sweep_file).parent)
    _freeze_heap()
    out_dir = Path(out or Path("sweeps_out") / cfg.name)
    df = execute(
        points,
        out_dir,
        workers=workers,
        dask=dask_address,
        resume=resume,
        progress=None if quiet else eta_printer("sweep"),
    )
    failed = int((df["status"] != "ok").sum())
    click.echo(f"{len(df)} runs in {out_dir / 'results.csv'} ({failed} failed)")


@main.command()
@click.argument("results", type=click.Path(dir_okay=False))
@click.option("--x", "x", required=True, help="column on the x axis")
@click.option("--y", "y", required=True, help="column on the y axis")
@click.option("--hue", help="one line per value of this column")
@click.option("--col", help="one panel per value of this column")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="PNG file")
@click.option("--y-unit", type=click.Choice(["auto", "s", "ms", "us"]), default="auto", show_default=True,
              help="unit of a time column (*_us) on the y axis; auto: s from 1 s up, else ms or us")  # fmt: skip
@click.option("--logx", is_flag=True, help="log-scale x axis (base 2 for positive numbers)")
@click.option("--logy", is_flag=True, help="log-scale y axis")
def plot(results, x, y, hue, col, output, y_unit, logx, logy):
    """Plot a results table (CSV or Parquet from a sweep)."""
    from netsim.report.plots import plot_results

    _check_figure_file(output, "-o")
    plot_results(results, x, y, hue, col, output, y_unit=y_unit, logx=logx, logy=logy)
    click.echo(f"wrote {output}")


def _parse_ranks(spec: str, gpus: int) -> list[int]:
    spec = spec.strip()
    try:
        if spec == "all":
            return list(range(gpus))
        if "," in spec:
            ranks = [int(x) for x in spec.split(",")]
        elif "-" in spec:
            a, b = (int(x) for x in spec.split("-"))
            ranks = list(range(a, b + 1)) if b < gpus else [b]  # [b]: out of range below, without building it
        else:
            ranks = list(range(min(int(spec), gpus + 1)))  # a count above the GPUs is refused below
    except ValueError:
        raise InputError(
            f"expected all, a count, a range 0-63 or a list 0,8,16; got {spec!r}", field="--ranks"
        ) from None
    if not ranks or min(ranks) < 0 or max(ranks) >= gpus or len(set(ranks)) != len(ranks):
        raise InputError(f"ranks must be distinct and within 0..{gpus - 1}; got {spec!r}", field="--ranks")
    return ranks


def _size(text: str) -> int:
    """A size as netsim writes it ("16 MiB") or as nccl-tests does ("16M" = 16 MiB)."""
    import re

    from netsim.units import parse_size

    m = re.fullmatch(r"\s*(\d+)\s*([KMG])\s*", text)
    return parse_size(f"{m.group(1)} {m.group(2)}iB" if m else text)


MAX_BENCH_SIZES = 1000  # one simulation each; nccl-tests sweeps a few dozen


def _parse_sizes(spec: str, factor: int = 2, step: str | None = None) -> list[int]:
    try:
        if ":" in spec:
            lo, hi = (_size(x) for x in spec.split(":"))
            inc = _size(step) if step else 0
            if not 0 < lo <= hi:
                raise ValueError(f"expected LO:HI with 0 < LO <= HI (stepping up from LO), got {spec!r}")
            if step is not None and inc <= 0:
                raise ValueError(f"expected a positive step, got {step!r}")
            count = (hi - lo) // inc + 1 if inc else 0  # doubling from LO to at most 1 PiB: a few dozen
            if count > MAX_BENCH_SIZES:
                raise ValueError(f"{spec!r} stepped by {step} gives {count:,} sizes; at most {MAX_BENCH_SIZES:,}")
            out, s = [], lo
            while s <= hi:
                out.append(s)
                s = s + inc if inc else s * factor
            return out
        sizes = [_size(x) for x in spec.split(",")]
        if any(x <= 0 for x in sizes):
            raise ValueError(f"expected positive sizes, got {spec!r}")
        return sizes
    except ValueError as e:
        raise InputError(str(e), field="--sizes") from None


@main.command("bench-collective")
@click.argument("topology", type=click.Path(dir_okay=False))
@click.option(
    "--op",
    type=click.Choice(["allreduce", "allgather", "reducescatter", "alltoall", "broadcast", "reduce", "sendrecv"]),
    default="allreduce",
    show_default=True,
    help="broadcast and reduce are rooted at the first of --ranks",
)
@click.option("--ranks", default="all", show_default=True, help="all, a count (first N), a range 0-63, or a list 0,200")
@click.option(
    "--sizes", default="1MiB:1GiB", show_default=True,
    help="LO:HI (stepped by -f or -i) or a list 1MiB,1GiB; nccl-tests' suffixes K/M/G (binary) work too",
)  # fmt: skip
@click.option("-f", "--stepfactor", type=click.IntRange(min=2), default=2, show_default=True,
              help="multiply the size by this from LO to HI (nccl-tests -f)")  # fmt: skip
@click.option("-i", "--stepbytes", help="add this size from LO to HI instead (nccl-tests -i)")
@click.option(
    "--algo", type=click.Choice(["ring", "tree", "hierarchical", "direct", "auto"]), default="auto", show_default=True,
    help="alltoall: auto/hierarchical = PXN (NCCL's default), direct = one flow per pair",
)  # fmt: skip
@click.option("--fidelity", type=click.Choice(["macro", "chunked"]), default="macro", show_default=True)
@click.option("--spray", is_flag=True, help="packet spraying over all equal-cost paths instead of per-flow ECMP")
@click.option("--bandwidth", help='override the NIC line rate, e.g. "100 Gbps"')
@click.option("--compression", help="compression profile name or YAML file")
@click.option(
    "--traffic",
    type=click.Choice(
        ["default", "gradient", "activation", "activation_grad", "parameter", "optimizer_state", "embedding"]
    ),
    default="default",
    show_default=True,
    help="traffic class whose compression ratio applies",
)
@click.option(
    "--skew", type=click.FloatRange(min=0), default=0.0, show_default=True,
    help="alltoall: the first rank receives (1 + SKEW) x the mean share (a hot expert rank)",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="print a JSON list of rows")
def bench_collective_cmd(
    topology, op, ranks, sizes, stepfactor, stepbytes, algo, fidelity, spray, bandwidth, compression, traffic,
    skew, as_json,
):  # fmt: skip
    """Simulated nccl-tests: time, algbw and busbw of one collective per size on TOPOLOGY."""

    from netsim.collectives.bench import bench_collective
    from netsim.simulate import RunSpec, load_run_topology

    topo = load_run_topology(RunSpec.parse({"topology": topology, "bandwidth": bandwidth}, where="bench-collective"))
    _freeze_heap()
    rank_list = _parse_ranks(ranks, topo.num_gpus)
    if len(rank_list) < 2:
        raise InputError(f"a collective needs at least 2 ranks; got {len(rank_list)}", field="--ranks")
    if op == "sendrecv" and len(rank_list) != 2:
        raise InputError("sendrecv takes exactly two ranks (src,dst)", field="--ranks")
    if skew and op != "alltoall":
        raise InputError(f"--skew applies to alltoall only, not {op}", field="--skew")
    if skew > len(rank_list) - 1:
        raise InputError(f"expected at most {len(rank_list) - 1} (n - 1) for {len(rank_list)} ranks, got {skew:g}",
                         field="--skew")  # fmt: skip
    if (algo in ("ring", "tree") and op == "alltoall") or (algo == "direct" and op != "alltoall"):
        raise InputError("alltoall runs PXN (--algo auto/hierarchical) or direct (--algo direct); the other "
                         "collectives ring, tree, hierarchical or auto", field="--algo")  # fmt: skip
    stage = None
    if compression:
        from netsim.network.compression import load_codec

        stage = load_codec(compression)
    rows = [
        bench_collective(
            topo,
            op,
            rank_list,
            s,
            algo=algo,
            fidelity=fidelity,
            spray=spray,
            compression=stage,
            traffic=traffic,
            skew=skew,
        )  # fmt: skip
        for s in _parse_sizes(sizes, stepfactor, stepbytes)
    ]
    if as_json:
        keep = ("op", "ranks", "bytes", "time_us", "algbw_GBps", "busbw_GBps")
        out = {
            "topology": topo.name,
            "algorithm": algo,
            "fidelity": fidelity,
            "rows": [{k: r[k] for k in keep} for r in rows],
        }
        click.echo(json_out.dumps(out, json_out.BENCH_SCHEMA))
        return
    used = "ring" if algo == "auto" else algo  # auto picks the ring (NCCL's choice at these sizes)
    if op == "alltoall":
        used = "direct" if algo == "direct" else "pxn"
    _print_nccl_table(rows, op, f"{op} over {len(rank_list)} ranks on {topo.name} ({algo}: {used}, {fidelity})")


def _print_nccl_table(rows: list[dict], op: str, title: str) -> None:
    """nccl-tests' layout: out-of-place and in-place columns (equal here: a simulation moves the
    same bytes either way), float elements, sum reduction, #wrong 0, and the average bus bandwidth."""
    from rich.table import Table

    from netsim.report.tables import print_table

    redop = "sum" if op in ("allreduce", "reducescatter", "reduce") else "none"
    root = "0" if op in ("broadcast", "reduce") else "-1"  # nccl-tests' root index within the group
    t = Table(title=title, title_justify="left")
    cols = ["size (B)", "count", "type", "redop", "root"]
    for place in ("out-of-place", "in-place"):
        cols += [f"{place} time (us)", "algbw (GB/s)", "busbw (GB/s)", "#wrong"]
    for col in cols:
        t.add_column(col, justify="right")
    for r in rows:
        perf = [f"{r['time_us']:,.1f}", f"{r['algbw_GBps']:.2f}", f"{r['busbw_GBps']:.2f}", "0"]
        t.add_row(f"{r['bytes']:,}", f"{r['bytes'] // 4:,}", "float", redop, root, *perf, *perf)
    print_table(t)
    click.echo(
        f"# Out of bounds values : 0 OK\n# Avg bus bandwidth    : {sum(r['busbw_GBps'] for r in rows) / len(rows):.3f}"
    )


@main.group()
def study() -> None:
    """Canned studies: a sweep plus its table and figures."""


@study.command("checkpoint")
@click.option("--out", type=click.Path(file_okay=False), default="sweeps_out/checkpoint", show_default=True)
@click.option("--failure-rate", type=click.FloatRange(min=0, min_open=True), default=0.015, show_default=True,
              help="failures per machine per day")  # fmt: skip
@click.option("--instances", type=click.IntRange(min=2), default=1000, show_default=True)
@click.option("--replicas", type=click.IntRange(min=2), default=2, show_default=True, help="m")
@click.option("--trials", type=click.IntRange(min=0), default=20000, show_default=True, help="Monte Carlo samples")
@click.option("--json", "as_json", is_flag=True, help="print the headline figures as one JSON object")
def study_checkpoint(out, failure_rate, instances, replicas, trials, as_json):
    """GEMINI: recovery probability (group/ring, closed form and Monte Carlo), checkpoint-time
    reduction vs remote storage, and effective training-time ratio; writes CSVs and three figures."""
    from netsim.report import gemini_study as g
    from netsim.system.failures import SCHEMES, recovery_probability, recovery_probability_mc

    out_dir = Path(out)
    rec = g.recovery_table(m=replicas)
    red = g.reduction_table(m=replicas)
    ratio = g.ratio_table(failure_rate)
    figures = g.write_figures(rec, red, ratio, failure_rate, out_dir)
    for name, df in (("recovery.csv", rec), ("reduction.csv", red), ("effective_ratio.csv", ratio)):
        df.to_csv(out_dir / name, index=False)
    head = {
        "recovery_n16_k2": {p: recovery_probability(16, replicas, 2, p) for p in ("group", "ring")},
        "recovery_n16_k2_monte_carlo": {p: recovery_probability_mc(16, replicas, 2, p, trials) for p in ("group", "ring")}
        if trials else {},
        "reduction_n16": {str(b): float(red[(red.instances == 16) & (red.instance_gbps == b)].reduction.iloc[0])
                          for b in (100, 200, 400)},
        "effective_ratio": {s.name: s.effective_ratio(instances * failure_rate) for s in SCHEMES},
        "instances": instances, "failure_rate": failure_rate,
    }  # fmt: skip
    if as_json:
        click.echo(json.dumps(head))
        return
    rp, mc = head["recovery_n16_k2"], head["recovery_n16_k2_monte_carlo"]
    click.echo(
        f"recovery probability, N=16, m={replicas}, 2 machines failed: group {rp['group']:.1%}, "
        f"ring {rp['ring']:.1%}" + (f" (Monte Carlo {mc['group']:.1%}, {mc['ring']:.1%})" if mc else "")
    )
    click.echo(
        "checkpoint time vs 20 Gbps remote storage, N=16: "
        + ", ".join(f"{k} Gbps {v:.0f}x" for k, v in head["reduction_n16"].items())
    )
    click.echo(
        f"effective training-time ratio, {instances} instances at {failure_rate:.1%}/day: "
        + ", ".join(f"{k} {v:.3f}" for k, v in head["effective_ratio"].items())
    )
    click.echo(f"wrote recovery.csv, reduction.csv, effective_ratio.csv, {', '.join(figures)} to {out_dir}")


@study.command("libra")
@click.option("--out", type=click.Path(file_okay=False), default="sweeps_out/libra", show_default=True)
@click.option("--loop", type=click.Choice(["no-overlap", "overlap", "fwd-in-bckwd"]), default="fwd-in-bckwd",
              show_default=True)  # fmt: skip
@click.option("--budgets", default="100:1000:100", show_default=True, help="GB/s per NPU, LO:HI:STEP")
def study_libra(out, loop, budgets):
    """LIBRA's Fig 12-14: 2D/3D/4D x 17B/175B/1T x {EqualBW, PerfOpt, PerfPerCostOpt} over budgets;
    writes libra.csv and three figures."""
    from netsim.network.topology import load_topology
    from netsim.report import libra_study
    from netsim.resources import TOPOLOGIES, WORKLOADS
    from netsim.workload.simai_file import read_simai_workload, to_program

    try:
        lo, hi, step = (float(x) for x in budgets.split(":"))
        if not (0 < lo <= hi and step > 0):
            raise ValueError
    except ValueError:
        raise InputError(
            f"expected LO:HI:STEP in GB/s with 0 < LO <= HI, STEP > 0; got {budgets!r}", field="--budgets"
        ) from None
    grid = [lo + i * step for i in range(int((hi - lo) // step) + 1)]
    nets = {f"{d}D": load_topology(TOPOLOGIES / f"libra_{d}d.yaml") for d in (2, 3, 4)}
    progs = {w: to_program(read_simai_workload(WORKLOADS / "libra" / f"transformer_{w}.txt"))
             for w in ("17B", "175B", "1T")}  # fmt: skip
    df = libra_study.study_rows(nets, progs, grid, loop)
    out_dir = Path(out)
    figures = libra_study.write_figures(df, out_dir)
    df.to_csv(out_dir / "libra.csv", index=False)
    at = 325.0 if 325.0 in grid else grid[len(grid) // 2]
    click.echo(f"Perf-optimal splits at {at:g} GB/s per NPU ({loop} loop):")
    for r in libra_study.headline(df, at).itertuples():
        click.echo(f"  {r.network} {r.workload:>4s}: {r.split_pct:<28s} comm {r.comm_speedup_vs_equal:.2f}x the "
                   f"equal split, network ${r.cost_usd / 1e6:.2f}M")  # fmt: skip
    click.echo(f"wrote libra.csv, {', '.join(figures)} to {out_dir}")


@study.command("cluster")
@click.option("--model", default="70B", show_default=True, help="model preset or YAML")
@click.option("--out", type=click.Path(file_okay=False), default="sweeps_out/cluster", show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--server-cost", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="$ per 8-GPU server to add to the network's cost (0: the network alone, as LIBRA)")  # fmt: skip
@click.option("--resume", is_flag=True)
def study_cluster(model, out, workers, server_cost, resume):
    """Beyond LIBRA: NICs per server x NIC speed x leaf oversubscription on an HGX-like 512-GPU
    fabric (36 flow runs), iteration time and perf per dollar; writes cluster.csv and a figure."""
    from netsim.report import cluster_study
    from netsim.sweep.grid import Point
    from netsim.sweep.runner import execute

    out_dir = Path(out)
    knobs = cluster_study.write_topologies(out_dir)
    points = [Point(index=i, params={"topology": t, "model": model}) for i, t in enumerate(knobs.topology)]
    results = execute(points, out_dir / "runs", workers=workers, resume=resume)
    df = cluster_study.finish(knobs, results, server_cost)
    df.to_csv(out_dir / "cluster.csv", index=False)
    fig = cluster_study.write_figure(df, model, out_dir, "cluster $" if server_cost else "network $")
    ok = df[df.status == "ok"]
    fast, cheap = ok.loc[ok.total_us.idxmin()], ok.loc[ok.perf_per_musd.idxmax()]
    for label, r in (("fastest", fast), ("best perf per $", cheap)):
        click.echo(f"{label}: {r.nics} x {r.gbps} Gbps NICs, {r.oversubscription}:1 leaves: {r.total_us / 1e6:.3f} s, "
                   f"network ${r.network_cost_usd / 1e6:.2f}M, perf/$ {r.perf_per_cost_vs_hgx:.2f}x the 8 x 400 Gbps 1:1 point")  # fmt: skip
    click.echo(f"wrote cluster.csv and {fig} to {out_dir}")


@study.command("breakeven")
@click.argument("topology", type=click.Path(dir_okay=False))
@click.option("--model", required=True, help="model preset or YAML")
@click.option("--codec", "codec", default="lz4-gpu", show_default=True, help="compression profile name or YAML")
@click.option(
    "--ratio", type=click.FloatRange(min=0, max=1, min_open=True), help="ratio for (b) and (c) (default: the codec's)"
)
@click.option("--out", type=click.Path(file_okay=False), default="sweeps_out/breakeven", show_default=True)
@click.option("--no-confirm", is_flag=True, help="skip the flow-model checks at the boundaries")
@click.option("--json", "as_json", is_flag=True)
@_parallel_options
def study_breakeven(topology, model, codec, ratio, out, no_confirm, as_json, **par_opts):
    """When does compressing pay? Break-even ratio, codec throughput and link bandwidth for a workload
    and network, per traffic class; boundaries confirmed on the flow model; heat maps per placement."""
    from netsim.config.compression import load_profile
    from netsim.optimize.breakeven import study
    from netsim.report.breakeven_plot import plot_heat_maps
    from netsim.simulate import RunSpec, load_run_topology, resolve_training
    from netsim.workload.compute import gpu_compute
    from netsim.workload.megatron import build_megatron

    topo = load_run_topology(RunSpec.parse({"topology": topology}, where="study breakeven"))
    m, par = resolve_training(model, topo.num_gpus, par_opts)
    prof = load_profile(codec)
    if prof.placement == "none":
        raise InputError("the codec has placement none: nothing to break even", field="--codec")
    r = study(topo, build_megatron(m, par, gpu_compute(topo.gpu)), par, prof, ratio, confirm=not no_confirm)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_heat_maps(r["heat_maps"], r["link_GBps"], prof.decompress_throughput / prof.compress_throughput,
                   f"{m.name} on {topo.name}: iteration time vs codec ratio and throughput", out_dir / "breakeven.png")  # fmt: skip
    (out_dir / "breakeven.json").write_text(json_out.dumps(r, indent=1))
    if as_json:
        click.echo(json_out.dumps({k: v for k, v in r.items() if k != "heat_maps"}))
        return
    click.echo(f"{prof.name} ({prof.placement}) on {topo.name}, {r['link_GBps']:g} GB/s per GPU; {m.name} iteration "
               f"{r['baseline_us'] / 1e3:,.1f} ms, with the codec {r['with_codec_us'] / 1e3:,.1f} ms")  # fmt: skip
    click.echo(f"(a) pays below ratio {r['ratio_breakeven']:.3f};  (b) at ratio {r['ratio']:.3f} it needs "
               f"{r['throughput_breakeven_GBps']:.1f} GB/s;  (c) stops paying above {r['bandwidth_breakeven_Gbps']:.0f} Gbps")  # fmt: skip
    for cls, c in r["per_class"].items():
        click.echo(f"(d) {cls:<16s} {c['bytes_per_iteration'] / 1e9:9.2f} GB  break-even {c['ratio_breakeven']:.3f} "
                   f"(its {c['largest_collective']}), codec ratio {c['codec_ratio']:.3f}: "
                   f"{'worth it' if c['worth_compressing'] else 'not worth it'}, iteration {c['iteration_change_pct']:+.2f} %")  # fmt: skip
    ok = sum(row["confirmed"] for row in r.get("confirm", []))
    if "confirm" in r:
        click.echo(f"flow model at the boundaries: {ok}/{len(r['confirm'])} confirmed")
    click.echo(f"wrote breakeven.json and breakeven.png to {out_dir}")


@study.command("dlrm")
@click.option("--topology", type=click.Path(dir_okay=False), default=None,
              help="where the 8-GPU all-to-all runs (default: topologies/fat_tree_512.yaml)")  # fmt: skip
@click.option("--bandwidth", "bandwidths", multiple=True, type=click.FloatRange(min=0.01, max=10_000),
              help="link bandwidths in GB/s (repeatable; default 0.5, 12.5, 25)")  # fmt: skip
@click.option("--json", "as_json", is_flag=True)
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False),
              help="also draw speed-up over bandwidth (simulated and the formula) to this PNG")  # fmt: skip
@click.option("--cluster", type=click.Path(dir_okay=False), default=None,
              help="where the end-to-end DLRM iteration runs (default: topologies/hgx_h100_512.yaml)")  # fmt: skip
@click.option("--iteration", type=click.IntRange(min=0), default=65_536, show_default=True,
              help="training iteration for the lossy stage's bound schedule in the end-to-end runs")  # fmt: skip
@click.option("--end-to-end/--no-end-to-end", "e2e", default=True, show_default=True,
              help="also run the DLRM iteration on --cluster with each encoder behind the lossy stage")  # fmt: skip
def study_dlrm(topology, bandwidths, as_json, plot_file, cluster, iteration, e2e):
    """The SC'24 DLRM paper's speed-up table (ANS, Huffman, LZ4, GPULZ on the embedding all-to-all)
    from simulated all-to-alls, beside the paper's formula, and each encoder's break-even bandwidth;
    then the lossy stage's bound schedule and the end-to-end DLRM iteration with each encoder."""
    from dataclasses import asdict

    from netsim.network.topology import load_topology
    from netsim.report import dlrm_study as ds
    from netsim.resources import TOPOLOGIES
    from netsim.workload.compute import gpu_compute

    if plot_file:
        _check_figure_file(plot_file, "--plot")
    topo = load_topology(topology or TOPOLOGIES / "fat_tree_512.yaml")
    cluster_file = str(cluster or TOPOLOGIES / "hgx_h100_512.yaml")
    gpu = gpu_compute(load_topology(cluster_file).gpu)
    bws = tuple(bandwidths) or ds.BANDWIDTHS_GBPS
    rows = ds.study(topo, bandwidths=bws)
    schedule = ds.schedule_rows(gpu)
    e2e_rows = ds.end_to_end(cluster_file, gpu, bws, iteration=iteration) if e2e else []
    if plot_file:
        ds.plot_speedups(topo, plot_file)
    if as_json:
        out = {"speedups": ds.to_dicts(rows), "lossy_schedule": [asdict(r) for r in schedule],
               "end_to_end": [asdict(r) for r in e2e_rows]}  # fmt: skip
        click.echo(json_out.dumps(out))
        return
    _print_dlrm_tables(topo.name, rows, schedule, e2e_rows, cluster_file, iteration)


def _print_dlrm_tables(topo_name, rows, schedule, e2e_rows, cluster: str, iteration: int) -> None:
    from rich.table import Table

    from netsim.report.tables import print_table

    t = Table(title=f"DLRM embedding all-to-all, 8 GPUs x 1 GiB on {topo_name} (encoder figures: the paper's)",
              title_justify="left")  # fmt: skip
    for col in ("encoder", "ratio", "Tc GB/s", "Td GB/s", "B GB/s", "speed-up", "formula", "break-even GB/s",
                "formula"):  # fmt: skip
        t.add_column(col, justify="left" if col == "encoder" else "right")
    for r in rows:
        t.add_row(r.encoder, f"{r.ratio:.3f}", f"{r.compress_GBps:g}", f"{r.decompress_GBps:g}", f"{r.bandwidth_GBps:g}",
                  f"{r.speedup:.2f}x", f"{r.speedup_formula:.2f}x", f"{r.breakeven_GBps:.1f}",
                  f"{r.breakeven_formula_GBps:.1f}")  # fmt: skip
    print_table(t)
    t = Table(title="lossy stage: the paper's table-wise bounds under its step schedule (wire bytes / fp32 bytes)",
              title_justify="left")  # fmt: skip
    iters = sorted({r.iteration for r in schedule})
    for col in ("encoder", *(f"it {i:,}" for i in iters)):
        t.add_column(col, justify="left" if col == "encoder" else "right")
    for enc in dict.fromkeys(r.encoder for r in schedule):
        by = {r.iteration: r for r in schedule if r.encoder == enc}
        t.add_row(enc, *(f"{by[i].wire_ratio:.4f} (e {by[i].mean_bound:.3f})" for i in iters))
    print_table(t)
    if not e2e_rows:
        return
    t = Table(title=f"end-to-end DLRM iteration on {Path(cluster).stem} (flow backend, lossy stage at iteration "
              f"{iteration:,})", title_justify="left")  # fmt: skip
    for col in ("encoder", "B GB/s", "wire ratio", "iteration ms", "exposed EP ms", "speed-up"):
        t.add_column(col, justify="left" if col == "encoder" else "right")
    for r in e2e_rows:
        t.add_row(r.encoder, f"{r.bandwidth_GBps:g}", f"{r.wire_ratio:.4f}", f"{r.total_us / 1e3:.3f}",
                  f"{r.exposed_ep_us / 1e3:.3f}", f"{r.speedup:.2f}x")  # fmt: skip
    print_table(t)


@study.command("engine")
@click.option("--topology", "topology", type=click.Path(dir_okay=False), help="default: topologies/dcn_512.yaml")
@click.option("--model", "models", multiple=True, help="repeatable; default 7B and 70B")
@click.option("--bandwidth", "bandwidths", multiple=True, help='NIC rate, repeatable; default "100 Gbps", "400 Gbps"')
@click.option("--rates", default=",".join(f"{r:g}" for r in (8, 16, 19.2, 32, 50, 64, 100, 200)), show_default=True,
              help="engine ingest rates to run, GB/s per direction")  # fmt: skip
@click.option("--profile", default="netzip-measured", show_default=True, help="the in-NIC profile whose rate is swept")
@click.option("--out", type=click.Path(file_okay=False), default="sweeps_out/engine", show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--quiet", is_flag=True, help="no progress bar")
@click.option("--json", "as_json", is_flag=True, help="print the per-case summary as JSON")
def study_engine(topology, models, bandwidths, rates, profile, out, workers, quiet, as_json):
    """NetZIP's engine rate: iteration time over the in-NIC engine's ingest rate (measured ratios),
    with NetZIP's FPGA (19.2 GB/s) and ASIC (64 GB/s) rates marked; writes results, engine.csv, engine.png."""
    from netsim.config.compression import load_profile
    from netsim.report import engine_study as E
    from netsim.report.progress import eta_printer
    from netsim.resources import ROOT
    from netsim.sweep.runner import execute

    try:
        rate_list = tuple(float(r) for r in rates.split(","))
    except ValueError:
        raise InputError(f"expected a comma list of GB/s, got {rates!r}", field="--rates") from None
    if not rate_list or any(not 0.01 <= r <= 10_000 for r in rate_list):
        raise InputError(f"rates must be 0.01 to 10000 GB/s, got {rates!r}", field="--rates")
    if load_profile(profile).placement != "in-nic":
        raise InputError(
            f"{profile} is not an in-NIC profile; its engine rate is not what limits it", field="--profile"
        )
    out_dir = Path(out)
    profiles = E.engine_profiles(profile, rate_list, out_dir / "profiles")
    topo = topology or str(ROOT / "topologies" / "dcn_512.yaml")
    points = E.engine_points(
        topo, list(models or ("7B", "70B")), list(bandwidths or ("100 Gbps", "400 Gbps")), profiles
    )
    df = E.tidy(execute(points, out_dir, workers=workers, progress=None if quiet else eta_printer("study engine")),
                profiles)  # fmt: skip
    if df.empty:
        raise InputError("no run succeeded; see the error column of results.csv", where=str(out_dir))
    df.to_csv(out_dir / "engine.csv", index=False)
    E.plot_engine(df, out_dir / "engine.png")
    summary = E.knee(df)
    if as_json:
        click.echo(summary.to_json(orient="records"))
        return
    click.echo(f"engine rate study ({profile}; iteration time / uncompressed at the fastest engine; the slowest "
               "engine rate within 1 % of it)")  # fmt: skip
    click.echo(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    click.echo(f"wrote {out_dir / 'engine.csv'} and {out_dir / 'engine.png'}")


@study.command("netzip")
@click.option("--out", type=click.Path(file_okay=False), default="sweeps_out/netzip", show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--dask", "dask_address", help="'local' or a scheduler address")
@click.option("--resume", is_flag=True, help="run only the points missing from DIR/results.csv")
@click.option("--quick", is_flag=True, help="a 16-run slice (7B and 175B on dcn_512 at 100 and 400 Gbps)")
@click.option("--quiet", is_flag=True, help="no progress bar")
def study_netzip(out, workers, dask_address, resume, quick, quiet):
    """NetZIP: 7B/70B/175B/405B x 100/200/400 Gbps x {none, LZ4/Zstd on CPU, GPU codecs, NetZIP in-NIC}
    on dcn_512 and fat_tree_512; writes results, study.csv, comm_share.png and reduction.png."""
    from netsim.config.loader import load_model
    from netsim.config.sweep import SweepConfig
    from netsim.report.netzip_study import plot_comm_share, plot_reduction, summary_table, tidy
    from netsim.report.progress import eta_printer
    from netsim.resources import ROOT
    from netsim.sweep.grid import expand
    from netsim.sweep.runner import execute

    f = ROOT / "sweeps" / ("netzip-quick.yaml" if quick else "netzip.yaml")
    points = expand(load_model(SweepConfig, f), base_dir=f.parent)
    out_dir = Path(out)
    df = tidy(
        execute(
            points,
            out_dir,
            workers=workers,
            dask=dask_address,
            resume=resume,
            progress=None if quiet else eta_printer("study netzip"),
        )
    )
    df.to_csv(out_dir / "study.csv", index=False)
    plot_comm_share(df, out_dir / "comm_share.png")
    plot_reduction(df, out_dir / "reduction.png")
    table = summary_table(df)
    for col in ("worst_reduction", "best_reduction"):
        table[col] = table[col].map(lambda v: f"{v:+.1%}")
    table["best_nic_bandwidth_gbps"] = table["best_nic_bandwidth_gbps"].map(lambda v: f"{v:g}")
    for scenario, part in table.groupby("ratios_from", sort=False):
        head = "Headline, with the ratios netsim measured" if scenario == "measured ratios" else (
            "Scenario: if NetZIP's reported ratios (0.30-0.33) held")  # fmt: skip
        click.echo(f"{head}: training-time reduction per stage")
        click.echo(part.drop(columns="ratios_from").to_string(index=False))
    click.echo(f"wrote {out_dir / 'study.csv'}, {out_dir / 'comm_share.png'}, {out_dir / 'reduction.png'}")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--codecs", default="lz4,snappy,zlib,zstd", show_default=True, help="comma list of lz4, snappy, zlib, zstd"
)
@click.option(
    "--transforms",
    default="all",
    show_default=True,
    help="'artifact' (NetZIP's 12 situations), 'netsim' (lossless deltas), 'all', or a comma list",
)
@click.option("--granularity", type=click.Choice(["tensor", "packet"]), default="tensor", show_default=True)
@click.option("--packet-size", default="4KiB", show_default=True, help="packet size for --granularity packet")
@click.option("--dtype", type=click.Choice(["bf16"]), help="for .npy: the uint16 array holds bf16 bit patterns")
@click.option(
    "--class",
    "default_class",
    default="default",
    show_default=True,
    help="traffic class of files outside NetZIP's layout",
)
@click.option("--min-size", default="0", show_default=True, help="skip files smaller than this (the artifact: 2MiB)")
@click.option("--profile-codec", default="lz4", show_default=True, help="codec of the ratio profile YAML")
@click.option("--profile-situation", help="situation of the ratio profile (default: best lossless per class)")
@click.option("--artifact-csv", is_flag=True, help="also write the artifact's per-file CSVs")
@click.option("--out", type=click.Path(file_okay=False), default="analysis", show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the aggregate table as JSON")
def analyze(
    paths,
    codecs,
    transforms,
    granularity,
    packet_size,
    dtype,
    default_class,
    min_size,
    profile_codec,
    profile_situation,
    artifact_csv,
    out,
    workers,
    as_json,
):
    """Compression ratios of tensors (NetZIP collector layout, .pt, .safetensors, .npy)."""
    from netsim.codecs.analyzer import ALL_SITUATIONS, ARTIFACT_SITUATIONS, NETSIM_SITUATIONS
    from netsim.codecs.codecs import NAMES, codec
    from netsim.codecs.ratio_report import aggregate, write_outputs
    from netsim.codecs.ratio_report import run as run_analysis
    from netsim.codecs.tensors import discover
    from netsim.report.progress import eta_printer
    from netsim.units import parse_size

    cl = [c.strip() for c in codecs.split(",") if c.strip()]
    for c in cl:
        if c not in NAMES:
            raise InputError(f"unknown codec {c!r}; expected some of {', '.join(NAMES)}", field="--codecs")
        codec(c)  # its library is installed (the [analyze] extra), before any worker starts
    sits = {
        "artifact": list(ARTIFACT_SITUATIONS),
        "netsim": ["original"] + list(NETSIM_SITUATIONS),
        "all": list(ALL_SITUATIONS),
    }.get(transforms)
    if sits is None:
        sits = [t.strip() for t in transforms.split(",")]
        bad = [t for t in sits if t not in ALL_SITUATIONS]
        if bad:
            raise InputError(
                f"unknown transform(s) {', '.join(bad)}; expected artifact, netsim, all or some of "
                f"{', '.join(ALL_SITUATIONS)}",
                field="--transforms",
            )
    try:
        psize, msize = parse_size(packet_size), parse_size(min_size)
    except ValueError as e:
        raise InputError(str(e), field="--packet-size/--min-size") from None
    files = discover(list(paths), default_class)
    if not files:
        raise InputError("no tensor files (.pkl, .pt, .safetensors, .npy) found", field="PATHS")
    df = run_analysis(
        files,
        cl,
        sits,
        granularity,
        psize,
        dtype,
        msize,
        workers,
        progress=None if as_json or len(files) < 4 else eta_printer("analyze"),
    )
    if df.empty:
        raise InputError("no tensors left to analyse (all files too small or without bf16 tensors)", field="PATHS")
    prof = write_outputs(df, Path(out), profile_codec, profile_situation, artifact_csv)
    agg = aggregate(df)
    if as_json:
        click.echo(agg.to_json(orient="records"))
        return
    best = agg.sort_values("ratio").groupby(["traffic_class", "codec"]).head(3)
    click.echo(
        best.to_string(index=False, columns=["traffic_class", "codec", "situation", "ratio", "lossless", "tensors"])
    )
    click.echo(f"ratio profile ({prof['codec']}): {prof['ratios']}")
    click.echo(f"wrote {out}/tensors.csv, aggregate.csv, ratio_profile.yaml")


@main.command()
@click.option("--model", default=None, help="minilm (fine-tune, shipped weights) or gpt-tiny (pre-train from scratch)")
@click.option("--steps", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--mode", type=click.Choice(["finetune", "pretrain"]), default="finetune", show_default=True)
@click.option("--seq", type=click.IntRange(min=8), default=128, show_default=True)
@click.option("--batch", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), required=True)
@click.option("--main-grads", is_flag=True,
              help="instead: fp32 weights under bf16 autocast, the fp32 gradient buckets after --accumulate micro-batches")  # fmt: skip
@click.option("--accumulate", type=click.IntRange(min=1, max=1024), default=4, show_default=True,
              help="micro-batches summed into each fp32 gradient (with --main-grads)")  # fmt: skip
def collect(model, steps, mode, seq, batch, seed, out, main_grads, accumulate):
    """Train a small model a few steps and dump its tensors in NetZIP's layout (needs the collect extra)."""
    from netsim.codecs.collect import collect as run_collect
    from netsim.codecs.collect import collect_main_grads

    model = model or ("minilm" if mode == "finetune" else "gpt-tiny")
    if main_grads:
        d = collect_main_grads(model, steps, mode, out, accumulate, seq=seq, batch=batch, seed=seed)
        n = sum(1 for _ in Path(d).rglob("*.npy"))
        click.echo(f"wrote {n} fp32 gradient files to {d} ({model}, {mode}, {steps} steps of {accumulate})")
        return
    d = run_collect(model, steps, mode, out, seq=seq, batch=batch, seed=seed)
    n = sum(1 for _ in Path(d).rglob("*.pkl"))
    click.echo(f"wrote {n} tensor files to {d} ({model}, {mode}, {steps} steps)")


@main.command("cost")
@click.argument("topology", type=click.Path(dir_okay=False))
@click.option(
    "--cost", "cost_file", type=click.Path(dir_okay=False), help="$ per GB/s table (LIBRA's cost.json format)"
)
@click.option("--json", "as_json", is_flag=True)
def cost_cmd(topology, cost_file, as_json):
    """Network cost of a multi-dimensional TOPOLOGY: $ per NPU per dimension, per NPU and in total."""
    from netsim.network.cost import load_cost_table, network_cost
    from netsim.network.topology import load_topology
    from netsim.optimize.libra import dim_names

    topo = load_topology(topology)
    c = network_cost(topo, table=load_cost_table(cost_file))
    if as_json:
        click.echo(json.dumps({"dims": dim_names(topo), **c}))
        return
    for name, d, usd in zip(dim_names(topo), topo.dims, c["per_dim_usd"]):
        click.echo(f"{name:>8s}  {d[0]:<15s} {d[1]:>4d} NPUs  {d[2] / 1e9:8.2f} GB/s  ${usd:>10,.2f} per NPU")
    click.echo(f"{topo.num_gpus} NPUs: ${c['per_npu_usd']:,.2f} per NPU, ${c['total_usd']:,.0f} in total")


@main.group()
def optimize() -> None:
    """Optimise a network's design on the simulator's closed forms (and confirm on the flow model)."""


@optimize.command("bandwidth")
@click.argument("topology", type=click.Path(dir_okay=False))
@click.option("--model", help="model preset or YAML (pp 1)")
@click.option("--workload", type=click.Path(dir_okay=False), help="ASTRA-sim 1.0 / SimAI workload file")
@click.option("--budget", required=True, help='bandwidth per NPU to split, e.g. "325 GB/s"')
@click.option("--objective", type=click.Choice(["perf", "perf-per-cost"]), default="perf", show_default=True)
@click.option("--loop", type=click.Choice(["no-overlap", "overlap", "fwd-in-bckwd"]), default="fwd-in-bckwd",
              show_default=True, help="LIBRA's training loop")  # fmt: skip
@click.option("--constraint", "constraints", multiple=True, help='e.g. "pod <= 100 GB/s" or "package >= node"')
@click.option("--sequential", is_flag=True, help="dimensions run one after another (sum), not pipelined (max)")
@click.option("--confirm", type=click.Choice(["flow"]), help="re-run the best splits on the flow model")
@click.option("--cost", "cost_file", type=click.Path(dir_okay=False), help="$ per GB/s table")
@click.option("--json", "as_json", is_flag=True)
def optimize_bandwidth(topology, model, workload, budget, objective, loop, constraints, sequential, confirm, cost_file,
                       as_json):  # fmt: skip
    """LIBRA: the per-dimension split of a bandwidth budget that trains fastest (or per dollar)."""
    from netsim.optimize.libra import Request
    from netsim.optimize.libra import optimize as run_opt
    from netsim.units import parse_bandwidth

    try:
        b = parse_bandwidth(budget) / 1e9
    except ValueError as e:
        raise InputError(str(e), field="--budget") from None
    req = Request(topology=topology, budget_GBps=b, workload=workload, model=model, objective=objective, loop=loop,
                  constraints=list(constraints), confirm=confirm, cost_file=cost_file, pipelined=not sequential)  # fmt: skip
    r = run_opt(req)
    if as_json:
        click.echo(json.dumps(r))
        return
    click.echo(f"{objective} split of {b:g} GB/s per NPU ({loop} loop, solved in {r['solve_s']:.2f} s):")
    for name, gb, pct, eq in zip(r["dims"], r["split_GBps"], r["split_pct"], r["equal"]["split_GBps"]):
        click.echo(f"  {name:>8s} {gb:9.2f} GB/s {pct:6.2f} %   (equal: {eq:.2f})")
    click.echo(f"iteration {r['time_us'] / 1e3:,.3f} ms, communication {r['comm_us'] / 1e3:,.3f} ms, "
               f"network ${r['cost_usd']:,.0f} (${r['cost_per_npu_usd']:,.2f} per NPU); "
               f"{r['speedup_vs_equal']:.3f}x the equal split")  # fmt: skip
    for row in r.get("confirm", []):
        click.echo(
            f"  flow: {row['split']:<26s} {row['flow_us'] / 1e3:10.3f} ms  (closed form "
            f"{row['closed_form_us'] / 1e3:.3f} pipelined, {row['sequential_us'] / 1e3:.3f} sequential)"
        )


@main.command("models")
def models_cmd():
    """List the model presets."""
    from rich.table import Table

    from netsim.report.tables import print_table
    from netsim.workload.catalog import presets

    t = Table(title="model presets (workloads/)", title_justify="left")
    for col in ("name", "aliases", "layers", "hidden", "heads/kv", "ffn", "vocab", "seq", "default TPxPP"):
        t.add_column(col)
    for m in presets().values():
        p = m.parallelism
        t.add_row(
            m.name,
            ", ".join(m.aliases),
            str(m.layers),
            str(m.hidden),
            f"{m.heads}/{m.kv}",
            str(m.ffn),
            str(m.vocab),
            str(m.seq),
            f"{p.tp}x{p.pp}",
        )
    print_table(t)
    from netsim.workload.dlrm import dlrm_presets

    d = Table(title="DLRM presets (workloads/dlrm/)", title_justify="left")
    for col in ("name", "aliases", "tables", "embedding dim", "bottom MLP", "top MLP", "batch", "sharding"):
        d.add_column(col)
    for c in dlrm_presets().values():
        d.add_row(c.name, ", ".join(c.aliases), str(c.tables), str(c.embedding_dim),
                  "-".join(map(str, [c.dense_features, *c.bottom_mlp])), "-".join(map(str, c.top_mlp)), str(c.batch),
                  c.sharding)  # fmt: skip
    print_table(d)


@main.command("topology")
@click.argument("topology", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
def topology_cmd(topology, as_json):
    """Build TOPOLOGY and print what it contains."""
    from netsim.network.topology import load_topology

    s = load_topology(topology).summary()
    if as_json:
        click.echo(json.dumps(s))
    else:
        for k, v in s.items():
            click.echo(f"{k:>24}: {v}")


if __name__ == "__main__":
    main()
