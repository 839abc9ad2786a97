import json

import matplotlib.image as mpimg
import numpy as np
import pytest
from click.testing import CliRunner
from jsonschema import validate

from netsim.cli import main

# The Trace Event Format's JSON object form, for the event kinds netsim writes
# (Complete events "X" and metadata events "M").
TRACE_SCHEMA = {
    "type": "object",
    "required": ["traceEvents"],
    "properties": {
        "displayTimeUnit": {"enum": ["ms", "ns"]},
        "traceEvents": {
            "type": "array",
            "items": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["name", "ph", "ts", "dur", "pid", "tid"],
                        "properties": {
                            "ph": {"const": "X"},
                            "ts": {"type": "number", "minimum": 0},
                            "dur": {"type": "number", "minimum": 0},
                            "pid": {"type": "integer"},
                            "tid": {"type": "integer"},
                            "name": {"type": "string"},
                            "cat": {"type": "string"},
                        },
                    },
                    {
                        "type": "object",
                        "required": ["name", "ph", "pid", "args"],
                        "properties": {
                            "ph": {"const": "M"},
                            "name": {"enum": ["process_name", "thread_name"]},
                            "args": {"type": "object", "required": ["name"]},
                        },
                    },
                ]
            },
        },
    },
}


def _png_ok(path):
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 200
    assert np.unique(img.reshape(-1, img.shape[2]), axis=0).shape[0] > 5  # not blank


def test_run_out_figures_and_trace(repo, tmp_path):
    trace = tmp_path / "t.json"
    r = CliRunner().invoke(
        main,
        [
            "run",
            str(repo / "topologies/hgx_h100_512.yaml"),
            "--model",
            "70B",
            "--out",
            str(tmp_path),
            "--trace",
            str(trace),
        ],
    )
    assert r.exit_code == 0, r.output
    _png_ok(tmp_path / "breakdown.png")
    _png_ok(tmp_path / "timeline.png")
    data = json.loads(trace.read_text())
    validate(data, TRACE_SCHEMA)
    spans = [e for e in data["traceEvents"] if e["ph"] == "X"]
    names = {e["args"]["name"] for e in data["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"compute", "TP comm", "DP comm"} <= names
    # The compute stream's spans never overlap.
    compute_tid = {
        (e["pid"], e["tid"]) for e in data["traceEvents"] if e["ph"] == "M" and e["args"]["name"] == "compute"
    }
    for pid, tid in compute_tid:
        ev = sorted((e["ts"], e["dur"]) for e in spans if (e["pid"], e["tid"]) == (pid, tid))
        assert all(a[0] + a[1] <= b[0] + 1e-6 for a, b in zip(ev, ev[1:]))


def test_plot_command(repo, tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(
        f"base: {{topology: {repo / 'topologies/dcn_512.yaml'}, model: 7B}}\n"
        "grid:\n  bandwidth: ['100 Gbps', '200 Gbps', '400 Gbps']\n  tp: [2, 4]\n"
    )
    r = CliRunner().invoke(main, ["sweep", str(sweep), "--out", str(tmp_path / "r"), "--quiet"])
    assert r.exit_code == 0, r.output
    png = tmp_path / "p.png"
    r = CliRunner().invoke(
        main,
        ["plot", str(tmp_path / "r/results.csv"), "--x", "bandwidth", "--y", "total_us", "--hue", "tp", "-o", str(png)],
    )
    assert r.exit_code == 0, r.output
    _png_ok(png)
    r = CliRunner().invoke(
        main, ["plot", str(tmp_path / "r/results.parquet"), "--x", "bandwidth", "--y", "nope", "-o", str(png)]
    )
    assert r.exit_code == 2 and "no column 'nope'" in r.output


def test_netzip_study_quick(tmp_path):
    import pandas as pd

    out = tmp_path / "nz"
    r = CliRunner().invoke(main, ["study", "netzip", "--quick", "--out", str(out), "--workers", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out / "study.csv")
    assert len(df) == 16 and (df.status == "ok").all()
    # One column per quantity (no pandas "x.1" renames, no copy of a column under a second name),
    # and the swept rate as a number in its unit.
    header = (out / "study.csv").read_text().splitlines()[0].split(",")
    assert len(header) == len(set(header)) and not {"gbps", "topology_name"} & set(header)
    assert df.nic_bandwidth_gbps.dtype.kind == "f"
    assert sorted(df.nic_bandwidth_gbps.unique()) == [100.0, 400.0]
    _png_ok(out / "comm_share.png")
    _png_ok(out / "reduction.png")
    # NetZIP's engine shortens every case, with measured ratios less than with NetZIP's reported
    # ones; LZ4 on the CPU lengthens every case (NetZIP's claims). The headline comes first.
    measured = df[df.compression == "netzip-measured"].set_index(["model", "nic_bandwidth_gbps"]).reduction
    claimed = df[df.compression == "netzip-in-nic"].set_index(["model", "nic_bandwidth_gbps"]).reduction
    assert (measured > 0).all() and (claimed > measured).all()
    assert (df[df.compression == "lz4-cpu"].reduction < 0).all()
    assert r.output.index("measured") < r.output.index("NetZIP's reported ratios")


@pytest.mark.parametrize("backend", ["flow", "analytical"])
def test_trace_ends_at_the_iteration_total(repo, tmp_path, backend):
    # The trace's time axis is microseconds: its last span must end where the iteration does.
    trace = tmp_path / "t.json"
    r = CliRunner().invoke(
        main,
        ["run", str(repo / "topologies/hgx_h100_512.yaml"), "--model", "7B", "--backend", backend, "--json",
         "--trace", str(trace)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    total = json.loads(r.output.splitlines()[0])["total_us"]
    events = json.loads(trace.read_text())["traceEvents"]
    end = max(e["ts"] + e["dur"] for e in events if e["ph"] == "X")
    assert end == pytest.approx(total, rel=0.01)


def test_netzip_study_labels_what_each_result_rests_on():
    import pandas as pd

    from netsim.report.netzip_study import summary_table, tidy

    rows = []
    for comp, t in (("none", 100.0), ("netzip-measured", 80.0), ("netzip-in-nic", 60.0), ("lz4-cpu", 300.0)):
        rows.append({"status": "ok", "bandwidth": "100 Gbps", "nic_bandwidth_gbps": 100.0, "topology": "x/dcn_512.yaml",
                     "topology_name": "dcn_512", "model": "7B", "compression": comp, "total_us": t,
                     "exposed_comm_us": t / 2})  # fmt: skip
    df = tidy(pd.DataFrame(rows))
    table = summary_table(df)
    got = dict(zip(table.compression, table.ratios_from))
    assert got == {"netzip-measured": "measured ratios", "lz4-cpu": "measured ratios",
                   "netzip-in-nic": "NetZIP's reported ratios (scenario)"}  # fmt: skip
    assert list(table.ratios_from).index("NetZIP's reported ratios (scenario)") == len(table) - 1  # headline first
    assert dict(zip(table.compression, table.best_reduction))["netzip-measured"] == pytest.approx(0.2)


def test_trace_spans_carry_what_moved(repo, tmp_path):
    trace = tmp_path / "t.json"
    r = CliRunner().invoke(main, ["run", str(repo / "topologies/hgx_h100_512.yaml"), "--model", "175B", "--json",
                                  "--trace", str(trace)])  # fmt: skip
    assert r.exit_code == 0, r.output
    ev = json.loads(trace.read_text())["traceEvents"]
    threads = {e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"PP send", "TP comm", "DP comm"} <= threads
    coll = [e for e in ev if e["ph"] == "X" and e.get("cat") == "collective"]
    assert coll and all({"op", "group", "bytes", "algbw_GBps"} <= set(e["args"]) for e in coll)


def test_results_figure_reads_like_a_paper_figure():
    # Times in seconds with the unit in the label, hue values in numeric order (7B, 70B, 175B, not
    # text order), the swept x values as the ticks, integer values printed as integers.
    import matplotlib.pyplot as plt
    import pandas as pd

    from netsim.report.plots import results_figure

    rows = [{"model": m, "bandwidth": f"{g} Gbps", "total_us": t * 1e6, "status": "ok"}
            for m, scale in (("175B", 3.0), ("7B", 1.0), ("70B", 2.0))
            for g, t in ((100, 2.0 * scale), (400, 1.0 * scale), (200, 1.5 * scale))]  # fmt: skip
    fig = results_figure(pd.DataFrame(rows), "bandwidth", "total_us", hue="model", logx=True)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "iteration time (s)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["7B", "70B", "175B"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["100", "200", "400"]
    seven = ax.get_lines()[0]
    assert list(seven.get_xdata()) == [100, 200, 400] and list(seven.get_ydata()) == [2.0, 1.5, 1.0]
    assert ax.get_xscale() == "log" and ax.get_ylim()[0] == 0
    ms = results_figure(pd.DataFrame(rows), "bandwidth", "total_us", y_unit="ms")
    assert ms.axes[0].get_ylabel() == "iteration time (ms)"
    plt.close("all")


@pytest.mark.parametrize(
    "rows, args, needle",
    [
        ([{"status": "error", "x": 1, "total_us": None}], [], "no rows to plot"),
        ([{"status": "ok", "x": 1, "total_us": 0.0}], ["--logy"], "--logy: a log axis needs positive values"),
        ([{"status": "ok", "x": "a", "total_us": 1.0}], ["--logx"], "--logx: a log axis needs a numeric column"),
    ],
)
def test_plot_refuses_what_it_cannot_draw(tmp_path, rows, args, needle):
    # An empty figure or a log axis over non-positive values would be a wrong result with exit 0.
    import pandas as pd

    pd.DataFrame(rows).to_csv(tmp_path / "r.csv", index=False)
    png = tmp_path / "p.png"
    r = CliRunner().invoke(
        main, ["plot", str(tmp_path / "r.csv"), "--x", "x", "--y", "total_us", *args, "-o", str(png)]
    )
    assert r.exit_code == 2 and needle in r.output.splitlines()[-1] and not png.exists()


def test_engine_rate_caps_a_transfer_as_the_pipeline_says(repo, tmp_path):
    # A pipelined in-NIC engine moves a flow at min(line rate / ratio, engine rate) in uncompressed
    # bytes: at 400 Gbps (50 GB/s) and the measured gradient ratio r, a 16 GB/s engine sends 256 MiB
    # in S / 16 GB/s, a 200 GB/s one in r S / 50 GB/s (plus microseconds of latency).
    from netsim.collectives.bench import bench_collective
    from netsim.config.compression import load_profile
    from netsim.network.compression import NicCodec
    from netsim.network.topology import load_topology
    from netsim.report.engine_study import engine_profiles

    fat = load_topology(repo / "topologies/fat_tree_512.yaml")
    files = engine_profiles("netzip-measured", (16.0, 200.0), tmp_path)
    S = 2**28
    r = load_profile("netzip-measured").ratios.of("gradient")
    t = {e: bench_collective(fat, "sendrecv", [0, 200], S, compression=NicCodec(load_profile(str(f))),
                             traffic="gradient")["time_us"] * 1e-6 for e, f in files.items()}  # fmt: skip
    assert t[16.0] == pytest.approx(S / 16e9, rel=0.01)
    assert t[200.0] == pytest.approx(r * S / 50e9, rel=0.01)


def test_study_engine_runs_and_marks_the_hardware(tmp_path):
    import pandas as pd

    out = tmp_path / "e"
    r = CliRunner().invoke(main, ["study", "engine", "--model", "7B", "--bandwidth", "400 Gbps", "--rates", "16,64,200",
                                  "--out", str(out), "--workers", "1", "--quiet", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert len(rows) == 1 and rows[0]["line_rate_GBps"] == 50.0 and "time_vs_uncompressed_asic" in rows[0]
    df = pd.read_csv(out / "engine.csv").set_index("engine_GBps").time_vs_uncompressed
    # An engine slower than the 50 GB/s line rate throttles every transfer; faster ones approach the ratio's gain.
    assert df[16.0] > df[64.0] >= df[200.0] and df[16.0] > 1 > df[200.0]
    _png_ok(out / "engine.png")
    bad = CliRunner().invoke(main, ["study", "engine", "--profile", "lz4-gpu", "--out", str(tmp_path / "b")])
    assert bad.exit_code == 2 and "not an in-NIC profile" in bad.output


def test_study_dlrm_plot(tmp_path):
    png = tmp_path / "d.png"
    r = CliRunner().invoke(main, ["study", "dlrm", "--plot", str(png), "--json"])
    assert r.exit_code == 0, r.output
    _png_ok(png)
