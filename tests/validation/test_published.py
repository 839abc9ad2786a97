"""`netsim validate published`: cases built from the manifest alone, errors as rows, JSON shape."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from netsim.validation.published import geomean_abs, rel_err, run_case

SHARED = Path(__file__).resolve().parents[3] / "shared/validation/published/cases.yaml"
pytestmark = pytest.mark.skipif(not SHARED.exists(), reason="../shared/ is not beside the checkout")


@pytest.fixture(scope="module")
def manifest():
    return yaml.safe_load(SHARED.read_text())


def _small(manifest, tmp_path, extra=()):
    cases = [c for c in manifest["cases"] if c["id"] in ("sc21-t1-1.7B", "mcore-1.7B")] + list(extra)
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump({**manifest, "cases": cases}))
    return p


def test_rel_err_is_the_distance_to_the_published_range():
    m = {"t_iter_s": 11.85, "t_iter_s_range": [11.6, 12.1]}
    assert rel_err(11.8, m) == 0.0
    assert rel_err(12.1 * 1.1, m) == pytest.approx(0.1)
    assert rel_err(11.6 * 0.9, m) == pytest.approx(-0.1)
    assert rel_err(4.0, {"t_iter_s": 5.0}) == pytest.approx(-0.2)
    assert geomean_abs([0.1, -1 / 11]) == pytest.approx(0.1)  # +10 % and its mirror image weigh the same


def test_cli_json_rows_and_an_inexpressible_case_is_an_error_row(manifest, tmp_path):
    bad = copy.deepcopy(manifest["cases"][0])
    bad["id"], bad["cluster"]["fabric"]["kind"] = "torus-case", "torus"
    p = _small(manifest, tmp_path, [bad])
    r = subprocess.run([sys.executable, "-m", "netsim.cli", "validate", "published", str(p), "--json"],
                       capture_output=True, text=True)  # fmt: skip
    rows = json.loads(r.stdout)
    schema = Path(__file__).resolve().parents[2] / "docs/schemas/validate-published.schema.json"
    jsonschema.validate(rows, json.loads(schema.read_text()))
    assert r.returncode == 1  # a case that could not be predicted fails the run
    assert [x["case"] for x in rows] == ["sc21-t1-1.7B", "mcore-1.7B", "torus-case"]
    err = rows[2]
    assert err["predicted_s"] is None and "fabric kind 'torus'" in err["error"]
    for x in rows[:2]:
        assert x["predicted_s"] > 0 and x["rel_err"] == pytest.approx(x["predicted_s"] / x["published_s"] - 1)
        assert set(x["breakdown"]) >= {"compute_s", "recompute_s", "bubble_s", "exposed_tp_s", "exposed_cp_s",
                                       "exposed_dp_s", "exposed_pp_s"}  # fmt: skip
        assert any(d.startswith("mbs=") for d in x["defaults"])  # a null took a named default


def test_full_recompute_shows_as_recompute_time(manifest):
    case = next(c for c in manifest["cases"] if c["id"] == "sc21-t1-1.7B")
    with_rc = run_case(case, manifest["gpus"], "analytical")
    b = with_rc.breakdown
    # One extra forward per layer: forward is a third of forward + backward for the linear layers.
    assert 0.25 < b["recompute_s"] / b["compute_s"] < 0.40
    no_rc = copy.deepcopy(case)
    no_rc["training"]["recompute"] = "none"
    assert run_case(no_rc, manifest["gpus"], "analytical").breakdown["recompute_s"] == 0.0


def test_torchtitan_cases_run_eager_unless_the_case_names_torch_compile(manifest):
    from netsim.validation.published import case_training

    tt = next(c for c in manifest["cases"] if c["id"].startswith("torchtitan"))
    mega = next(c for c in manifest["cases"] if c["id"] == "mcore-1.7B")
    assert case_training(tt, [])["kernels"] == "eager"  # its derivation says "no torch.compile"
    assert case_training(mega, [])["kernels"] == "fused"
    compiled = copy.deepcopy(tt)
    compiled["measured"]["derivation"] = "local batch / tokens per second (FSDP + torch.compile)"
    assert case_training(compiled, [])["kernels"] == "fused"
    silent = copy.deepcopy(tt)
    silent["measured"]["derivation"] = ""
    used: list[str] = []
    assert case_training(silent, used)["kernels"] == "eager" and any("kernels=eager" in u for u in used)
    fp8 = copy.deepcopy(silent)
    fp8["training"]["precision"] = "fp8"
    assert case_training(fp8, [])["kernels"] == "fused"
    # Eager moves more bytes, so the same case is slower than with torch.compile's fused kernels.
    slower, faster = (run_case(c, manifest["gpus"], "analytical") for c in (tt, compiled))
    assert slower.breakdown["compute_s"] > faster.breakdown["compute_s"]


def test_without_a_pipeline_an_unstated_mbs_is_the_largest_that_fits(manifest):
    from netsim.validation.published import build_case

    case = copy.deepcopy(next(c for c in manifest["cases"] if c["id"] == "mcore-32B"))
    h, f, L, v, s, t, dp = 7168, 28672, 48, 131072, 4096, 8, 48
    # By hand: one TP rank's parameters (attention 4h^2/t, MLP 2hf/t, two LayerNorms, learned
    # positions, embedding and output layer) at bf16 weights + fp32 main_grad + Adam sharded over DP.
    params = L * (4 * h * h // t + 2 * h * f // t + 4 * h) + s * h + 2 * v * h // t + 2 * h
    state = params * (2 + 4 + 12 / dp)
    per_seq = 34 * s * h / t * L  # stored activations of one sequence (SP, no recompute)
    for gb in (80, 50, 40):
        gpus = {**manifest["gpus"], case["cluster"]["gpu"]: {**manifest["gpus"][case["cluster"]["gpu"]], "hbm_GB": gb}}
        b = build_case(case, gpus)
        want = max(m for m in (1, 2, 4) if m == 1 or state + m * per_seq <= 0.9 * gb * 1e9)
        assert b.par.mbs == want and b.par.microbatches == 4 // want
    piped = copy.deepcopy(next(c for c in manifest["cases"] if c["id"] == "mcore-177B"))
    assert build_case(piped, manifest["gpus"]).par.mbs == 1  # with a pipeline mbs stays 1 (bubble)


def test_blackwell_parts_have_a_calibration_family(manifest):
    # MLPerf submissions run on B200 and GB200 too: they take H100's kernel efficiencies at their
    # own datasheet peaks (the manifest's gpus table), so the same case is faster, never an error row.
    case = copy.deepcopy(next(c for c in manifest["cases"] if c["id"].startswith("mlperf-gpt3-v3.0")))
    h100 = run_case(case, manifest["gpus"], "analytical").predicted_s
    for name, bf16, fp8 in (("B200-SXM-180GB", 2250, 4500), ("GB200-NVL72-186GB", 2500, 5000)):
        gpus = {**manifest["gpus"], name: {"bf16_tflops": bf16, "fp8_tflops": fp8, "hbm_TBps": 8.0}}
        case["cluster"]["gpu"] = name
        r = run_case(case, gpus, "analytical")
        assert r.error is None and r.predicted_s < h100
