"""Bad input: one line naming file, field and expectation; exit code 2; no traceback."""

import textwrap

import pytest
from click.testing import CliRunner

from netsim.cli import main

GOOD = """\
name: t
servers: 32
gpus_per_server: 1
nic: {count: 1, bandwidth: "400 Gbps"}
fabric: {kind: leaf_spine, leaves: 4, hosts_per_leaf: 8, spines: 4, latency: "500 ns"}
"""


def run(*args):
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.output.strip()


def topo(tmp_path, text, name="t.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


def check(code, out, *needles):
    assert code == 2, out
    assert len(out.splitlines()) == 1, out
    assert "Traceback" not in out
    for n in needles:
        assert n in out, out


def test_good_topology_runs(tmp_path):
    code, out = run("run", topo(tmp_path, GOOD), "--model", "7B", "--json")
    assert code == 0, out


def test_unknown_key(tmp_path):
    p = topo(tmp_path, GOOD + "colour: blue\n")
    check(*run("run", p, "--model", "7B"), p, "colour", "unknown key")


def test_wrong_unit(tmp_path):
    p = topo(tmp_path, GOOD.replace('"400 Gbps"', '"400 parsecs"'))
    check(*run("run", p, "--model", "7B"), p, "nic.bandwidth", "expected a bandwidth")


def test_negative_bandwidth(tmp_path):
    p = topo(tmp_path, GOOD.replace('"400 Gbps"', '"-400 Gbps"'))
    check(*run("run", p, "--model", "7B"), p, "nic.bandwidth", "positive")


def test_disconnected_topology(tmp_path):
    p = topo(tmp_path, GOOD.replace("leaves: 4", "leaves: 3"))
    check(*run("run", p, "--model", "7B"), p, "fabric", "not every GPU is connected")


def test_parallelism_mismatch(tmp_path):
    p = topo(tmp_path, GOOD)
    check(*run("run", p, "--model", "7B", "--tp", "4", "--pp", "2", "--dp", "8"), "tp x cp x pp x dp", "32 GPUs")


def test_bad_yaml(tmp_path):
    p = topo(tmp_path, "name: [unclosed\n")
    check(*run("run", p, "--model", "7B"), p, "invalid YAML")


def test_unknown_model(tmp_path):
    check(*run("run", topo(tmp_path, GOOD), "--model", "9000B"), "--model", "unknown model")


@pytest.mark.parametrize(
    "body,needle",
    [
        ("NOT_A_WORKLOAD\n1\n", ":1"),
        (
            "HYBRID_TRANSFORMER_FWD_IN_BCKWD model_parallel_NPU_group: 4 ep: 1 pp: 1 vpp: 1 ga: 1 all_gpus: 32\n2\n"
            "a\t-1\t1\tNONE\t0\t1\tNONE\t0\t1\tNONE\t0\t100\n",
            "announces 2 rows",
        ),
        (
            "HYBRID_TRANSFORMER_FWD_IN_BCKWD model_parallel_NPU_group: 4 ep: 1 pp: 1 vpp: 1 ga: 1 all_gpus: 32\n1\n"
            "a\t-1\tx\tNONE\t0\t1\tNONE\t0\t1\tNONE\t0\t100\n",
            ":3",
        ),
        (
            "HYBRID_TRANSFORMER_FWD_IN_BCKWD model_parallel_NPU_group: 4 ep: 1 pp: 1 vpp: 1 ga: 1 all_gpus: 32\n1\n"
            "a\t-1\t1\tSENDMAIL\t0\t1\tNONE\t0\t1\tNONE\t0\t100\n",
            "collective type",
        ),
    ],
)
def test_malformed_simai_workload(tmp_path, body, needle):
    w = tmp_path / "w.txt"
    w.write_text(body)
    check(*run("run", topo(tmp_path, GOOD), "--workload", str(w)), str(w), needle)


def test_bad_simai_topology(tmp_path):
    p = tmp_path / "topo.txt"
    p.write_text("3 1 0 1 2 H100\n2\n0 2 400Gbps 0.0005ms 0\n1 2 fast 0.0005ms 0\n")
    check(*run("run", str(p), "--model", "7B"), f"{p}:4", "expected a rate")


@pytest.mark.parametrize(
    "args, needles",
    [
        (("--ep", "2"), ("ep=2", "mixture-of-experts")),
        (("--vpp", "2"), ("vpp > 1 needs pp > 1",)),
        (("--cp", "3"), ("tp x cp x pp",)),
        (("--pp", "2", "--vpp", "2", "--gbs", "12"), ("multiple of pp",)),
        (("--calibration", "/nonexistent/compute.yaml"), ("/nonexistent/compute.yaml", "not found")),
    ],
)
def test_training_option_errors(tmp_path, args, needles):
    # 32 GPUs, 7B (32 layers, 32 heads): each option combination is refused with one clear line.
    check(*run("run", topo(tmp_path, GOOD), "--model", "7B", *args), *needles)


@pytest.mark.parametrize("args", [("--sharding", "zero-9"), ("--precision", "fp4"), ("--recompute", "some")])
def test_training_option_choices(tmp_path, args):
    code, out = run("run", topo(tmp_path, GOOD), "--model", "7B", *args)
    assert code == 2 and "Traceback" not in out
    assert out.splitlines()[-1].startswith(f"netsim: error: {args[0]}: '{args[1]}' is not one of")


def test_fp8_on_a100_is_refused(tmp_path):
    check(*run("run", topo(tmp_path, GOOD.replace("name: t", "name: t\ngpu: A100")), "--model", "7B",
               "--precision", "fp8"), "no FP8", "precision")  # fmt: skip


def test_bad_published_manifest_and_simai_conf(tmp_path):
    m = tmp_path / "m.yaml"
    m.write_text("schema: something-else/1\ncases: []\n")
    check(*run("validate", "published", str(m)), str(m), "schema", "netsim-published/1")
    from netsim.config.simai_conf import parse_simai_conf
    from netsim.errors import InputError

    with pytest.raises(InputError, match="KMIN_MAP"):
        parse_simai_conf("KMIN_MAP 2 100000000000 400\n", "c.conf")
    with pytest.raises(InputError, match="RATE_AI"):
        parse_simai_conf("RATE_AI fast\n", "c.conf")
