"""Break-even answers: the DLRM formula, the flow model at the boundaries, the iteration per class."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from netsim.cli import main
from netsim.optimize.breakeven import Codec, bandwidth_breakeven, ratio_breakeven, throughput_breakeven

REPO = Path(__file__).resolve().parents[2]
CODEC = 'name: t\nplacement: gpu\ncompress_throughput: "100 GB/s"\ndecompress_throughput: "250 GB/s"\nlatency: "0 us"\npipelined: false\nratios: {default: 0.5}\n'


def test_closed_forms_are_the_dlrm_formula():
    # Pays iff r + B/Tc + B/Td < 1 (DLRM's speed-up 1 / (r + B(1/Tc + 1/Td)) > 1).
    c = Codec(tc=100e9, td=250e9, latency=0.0, pipelined=False)
    assert ratio_breakeven(c, 50e9) == pytest.approx(1 - 50 / 100 - 50 / 250)
    assert throughput_breakeven(c, 50e9, 0.5) == pytest.approx(50e9 * (1 / 100e9 + 1 / 250e9) * 100e9 / 0.5)
    assert bandwidth_breakeven(c, 0.5) == pytest.approx(0.5 / (1 / 100e9 + 1 / 250e9))
    engine = Codec(tc=64e9, td=64e9, latency=0.0, pipelined=True)
    assert ratio_breakeven(engine, 50e9) == 1.0 and ratio_breakeven(engine, 100e9) == 0.0


def test_study_agrees_with_the_formula_and_the_flow_model(tmp_path):
    (tmp_path / "c.yaml").write_text(CODEC)
    r = CliRunner().invoke(main, ["study", "breakeven", str(REPO / "topologies/fat_tree_512.yaml"), "--model", "7B",
                                  "--codec", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "o"), "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["ratio_breakeven"] == pytest.approx(0.3, rel=0.01)
    assert d["bandwidth_breakeven_Gbps"] == pytest.approx(0.5 / (1 / 100 + 1 / 250) * 8, rel=0.01)
    # Three boundary points per placement, each simulated just below and above: all flip.
    rows = d["confirm"]
    assert sorted({x["placement"] for x in rows}) == ["gpu", "host-cpu", "in-nic"] and len(rows) == 9
    assert all(x["confirmed"] for x in rows)
    # Gradients are reduce-scattered (break-even 1 - B/Tc - B/Td = 0.3 > ratio 0.5: not worth it);
    # parameters all-gathered (1 - B/(127 Tc)... worth it); compressing only them must agree.
    pc = d["per_class"]
    assert pc["gradient"]["ratio_breakeven"] == pytest.approx(0.3, rel=0.01) and not pc["gradient"]["worth_compressing"]
    assert pc["gradient"]["iteration_change_pct"] > 0
    assert pc["parameter"]["worth_compressing"] and pc["parameter"]["iteration_change_pct"] < 0
    assert (tmp_path / "o/breakeven.png").stat().st_size > 20_000
