import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from netsim.config.loader import parse_model
from netsim.config.sweep import SweepConfig
from netsim.errors import InputError
from netsim.sweep.grid import expand
from netsim.sweep.runner import execute


def cfg(repo, **kw):
    data = {"name": "t", "base": {"topology": str(repo / "topologies/dcn_512.yaml"), "model": "7B"}} | kw
    return parse_model(SweepConfig, data, "sweep.yaml")


def test_grid_and_zip_expansion(repo):
    c = cfg(
        repo, grid={"bandwidth": ["100 Gbps", "400 Gbps"], "tp": [2, 4]}, zip={"gbs": [128, 256, 512], "mbs": [1, 1, 2]}
    )
    pts = expand(c)
    assert len(pts) == 2 * 2 * 3
    assert pts[0].params["bandwidth"] == "100 Gbps" and pts[-1].params["mbs"] == 2
    assert len({p.run_id for p in pts}) == len(pts)


@pytest.mark.parametrize(
    "bad,needle",
    [
        ({"grid": {"colour": [1]}}, "unknown run field"),
        ({"zip": {"tp": [1, 2], "pp": [1]}}, "equal lengths"),
        ({"base": {"model": "7B"}}, "topology"),
    ],
)
def test_bad_sweep(bad, needle):
    with pytest.raises(InputError, match=needle):
        parse_model(SweepConfig, bad, "sweep.yaml")


def test_results_independent_of_workers_and_failures_recorded(repo, tmp_path):
    pts = expand(cfg(repo, grid={"bandwidth": ["100 Gbps", "400 Gbps"], "tp": [3, 4, 8]}))
    a = execute(pts, tmp_path / "a", workers=1)
    b = execute(pts, tmp_path / "b", workers=2)
    pd.testing.assert_frame_equal(a, b)
    assert (tmp_path / "b/results.parquet").exists()
    bad = a[a.status == "error"]  # tp=3 does not divide 512 GPUs
    assert len(bad) == 2 and bad.error.str.contains("tp x cp x pp").all()
    assert (a.status == "ok").sum() == 4
    assert (tmp_path / "a/results.csv").read_text() == (tmp_path / "b/results.csv").read_text()


def test_dask_local_cluster(repo, tmp_path):
    pytest.importorskip("distributed")
    pts = expand(cfg(repo, grid={"bandwidth": ["100 Gbps", "200 Gbps", "400 Gbps"]}))
    a = execute(pts, tmp_path / "local", workers=1)
    b = execute(pts, tmp_path / "dask", workers=2, dask="local")
    pd.testing.assert_frame_equal(a, b)


def test_kill_and_resume_gives_the_uninterrupted_table(repo, tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text(
        f"name: k\nbase: {{topology: {repo / 'topologies/hgx_h100_512.yaml'}, model: 405B, backend: analytical}}\n"
        f"grid:\n  bandwidth: ['100 Gbps', '200 Gbps', '400 Gbps', '800 Gbps']\n  gbs: [128, 256, 512]\n"
    )
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "netsim.cli", "sweep", str(sweep), "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    csv = out / "results.csv"
    deadline = time.time() + 60
    while time.time() < deadline:
        if csv.exists() and len(csv.read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(csv.read_text().splitlines()) - 1
    assert 3 <= partial < 12, "the sweep should have been killed half way"
    with open(csv, "a") as f:
        f.write("5,deadbeef,ok")  # a torn line, as a kill during a write leaves
    subprocess.run(cmd + ["--resume"], check=True)
    full = tmp_path / "full"
    subprocess.run([sys.executable, "-m", "netsim.cli", "sweep", str(sweep), "--out", str(full), "--quiet"], check=True)
    assert csv.read_text() == (full / "results.csv").read_text()
    df = pd.read_csv(csv)
    assert len(df) == 12 and df.run_id.is_unique


def test_refuses_to_overwrite(repo, tmp_path):
    pts = expand(cfg(repo))
    execute(pts, tmp_path)
    with pytest.raises(InputError, match="--resume"):
        execute(pts, tmp_path)


def test_resume_refuses_another_sweeps_results(repo, tmp_path):
    execute(expand(cfg(repo, base={"topology": str(repo / "topologies/dcn_512.yaml"), "model": "7B",
                                   "backend": "analytical"})), tmp_path)  # fmt: skip
    other = expand(cfg(repo, base={"topology": str(repo / "topologies/dcn_512.yaml"), "model": "13B",
                                   "backend": "analytical"}))  # fmt: skip
    with pytest.raises(InputError, match="different sweep"):
        execute(other, tmp_path, resume=True)


def test_pool_workers_exit_with_their_parent():
    # A worker whose parent has gone ends itself: here a child process plays the worker for a
    # parent pid that is not its own, and must exit within a second or two.
    code = "from netsim.sweep.runner import _exit_with_parent; import time; _exit_with_parent(1); time.sleep(30)"
    t0 = time.time()
    p = subprocess.run([sys.executable, "-c", code], timeout=20)
    assert p.returncode == 1 and time.time() - t0 < 10


def test_result_columns_are_unique(repo, tmp_path):
    # Sweeping tp: the parameter is param.tp, the resolved value tp; pandas and Parquet keep both.
    df = execute(expand(cfg(repo, base={"topology": str(repo / "topologies/dcn_512.yaml"), "model": "7B",
                                        "backend": "analytical"}, grid={"tp": [4, 8]})), tmp_path)  # fmt: skip
    assert df.columns.is_unique and {"param.tp", "tp"} <= set(df.columns)
    assert (df["param.tp"].astype(int) == df["tp"].astype(int)).all()
    assert pd.read_parquet(tmp_path / "results.parquet").columns.is_unique
