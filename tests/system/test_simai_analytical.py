"""SimAI-compatible analytical mode: hand calculations from the spec and the reference runs."""

import math

import pytest

from netsim.report.simai_csv import format_endtoend_csv
from netsim.system.simai_analytical import ClusterFlags, _Ctx, comm_time, lookup, ovl, simulate, tick
from netsim.validation.simai import passed, validate
from netsim.workload.rows import Row, Workload
from netsim.workload.simai_file import to_program

NZ = ClusterFlags(gpus=512, gpus_per_server=1, nics_per_server=1, nvlink_busbw=360, nic_busbw=48.5)


def ctx(flags=NZ, tp=4, dp=128):
    return _Ctx(flags=flags, tp=tp, ep=1, dp=dp)


def test_worked_example_section_7():
    # reference/simai_analytical_spec.md section 7, computed there by hand.
    assert comm_time(ctx(), "AG", "DP", 3244294144, 128) == 61811938
    assert comm_time(ctx(), "RS", "DP", 6488588288, 128) == 123623877
    assert comm_time(ctx(), "AR", "TP", 3244294144, 4) == 93447970
    assert comm_time(ctx(), "AR", "TP", 16777216, 4) == 483247
    # trunc(S / 2^30 / 48.5 * 1e9 * 2 * 3 / 4) by hand:
    assert comm_time(ctx(), "AR", "TP", 16777216, 4) == int(16777216 / 2**30 / 48.5 * 1e9 * 2 * 3 / 4)


def test_size_ratio_example():
    # 64 MiB intra-server TP8 all-gather reads nic_ratio column 1: f32(0.65/0.81) = 0.802469.
    assert lookup("nic", 1, 67108864) == pytest.approx(0.802469, abs=1e-6)
    flags = ClusterFlags(gpus=256, gpus_per_server=8, nics_per_server=8, nvlink_busbw=360, nic_busbw=24.25)
    assert comm_time(ctx(flags, tp=8, dp=8), "AG", "TP", 67108864, 8) == 189302
    assert comm_time(ctx(flags, tp=8, dp=8), "RS", "DP", 10159915008, 8) == 341418079


def test_small_message_table_and_quirks():
    assert comm_time(ctx(), "AR", "TP", 4096, 4) == 12000
    assert comm_time(ctx(), "AR", "DP", 524288, 256) == 0  # n not in the table: free
    assert comm_time(ctx(), "AR", "TP", 1048576, 4) > 0  # 1 MiB is priced by the formula
    # TP = 1 prices a TP collective at NaN -> 2^63 ns (section 8 item 10).
    assert comm_time(ctx(tp=1), "AR", "TP", 2**21, 1) == 2**63


def test_tick_conversion():
    assert tick(math.inf) == 0 and tick(math.nan) == 2**63 and tick(-3.7) == 2**64 - 3 and tick(5.9) == 5
    assert ovl(123623877, 0.0) == int(float(__import__("numpy").float32(123623877)))


def test_validate_reference_manifest(simai_dir):
    rows = validate(simai_dir / "analytical/manifest.json")
    totals = [r for r in rows if r.field == "total_us"]
    assert len(totals) == 10
    # The manifest rounds to whole µs; netsim keeps SimAI's unrounded doubles.
    assert all(abs(r.got_us - r.expected_us) <= 0.5 for r in rows if r.field != "csv")
    assert all(r.rel_err == 0 for r in rows if r.field == "csv")
    assert passed(rows, 0.005)


def test_truncated_report_beyond_16_gib():
    flags = ClusterFlags(gpus=16, gpus_per_server=8, nics_per_server=8, nvlink_busbw=360, nic_busbw=48.5)
    ok = Row("a", 1, "ALLGATHER", 2**24, 1, "NONE", 0, 1, "NONE", 0)
    big = Row("b", 1, "ALLGATHER", 2**35, 1, "NONE", 0, 1, "NONE", 0)
    w = Workload(tp=8, pp=1, ga=1, vpp=1, all_gpus=16, rows=[ok, big])
    res = simulate(to_program(w), flags)
    assert res.truncated_at == 1
    text = format_endtoend_csv(res, "x-")
    assert text.startswith("layer_name,") and len(text.splitlines()) == 2  # no summary prepended


def test_manifest_with_flags_only(simai_dir, tmp_path):
    """A case may give its cluster only as SimAI's command line: the flags are read instead."""
    import json
    import shutil

    m = json.loads((simai_dir / "analytical/manifest.json").read_text())
    case = next(c for c in m["cases"] if c["name"] == "gpt13B_64g_tp8")
    shutil.copytree(simai_dir / "analytical/gpt13B_64g_tp8", tmp_path / "gpt13B_64g_tp8")
    del case["cluster"]
    for run in case["runs"]:
        del run["nic_busbw"]
    (tmp_path / "manifest.json").write_text(json.dumps({**m, "cases": [case]}))
    rows = validate(tmp_path / "manifest.json")
    assert passed(rows, 0.005) and all(r.rel_err == 0 for r in rows if r.field == "csv")
