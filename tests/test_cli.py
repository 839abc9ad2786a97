import json
from pathlib import Path

from click.testing import CliRunner

from netsim.cli import main
from netsim.workload.simai_file import read_simai_workload


def invoke(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r.output


def test_run_json_has_the_categories(repo):
    d = json.loads(invoke("run", repo / "topologies/fat_tree_512.yaml", "--model", "175B", "--json"))
    for k in (
        "total_us",
        "compute_us",
        "exposed_comm_us",
        "exposed_dp_us",
        "exposed_tp_us",
        "exposed_pp_us",
        "exposed_ep_us",
        "bubble_us",
    ):
        assert k in d
    assert d["config"]["parallelism"]["tp"] == 8 and d["config"]["topology"]["gpus"] == 512
    parts = d["compute_us"] + d["exposed_comm_us"] + d["bubble_us"]
    assert abs(parts - d["total_us"]) < 1e-6 * d["total_us"]


def test_bandwidth_override_scales_communication(repo):
    t = repo / "topologies/dcn_512.yaml"
    fast = json.loads(invoke("run", t, "--model", "7B", "--json"))
    slow = json.loads(invoke("run", t, "--model", "7B", "--json", "--bandwidth", "100 Gbps"))
    assert slow["config"]["topology"]["nic_bandwidth_gbps"] == 100
    assert slow["exposed_tp_us"] > 3.5 * fast["exposed_tp_us"]
    assert slow["compute_us"] == fast["compute_us"]


def test_out_dir_writes_simai_csv(repo, tmp_path):
    invoke("run", repo / "topologies/dcn_512.yaml", "--model", "7B", "--mode", "simai", "--out", tmp_path)
    text = (tmp_path / "EndToEnd.csv").read_text()
    assert text.startswith("File name, Expose DP comm") and "layer_name,Analytical_test" in text
    assert json.loads((tmp_path / "result.json").read_text())["total_us"] > 0


def test_export_then_run(repo, tmp_path):
    out = tmp_path / "w.txt"
    invoke("export", "simai", "--model", "7B", "--gpus", 512, "-o", out)
    w = read_simai_workload(out)
    assert (w.tp, w.all_gpus, len(w.rows)) == (4, 512, 80)
    d = json.loads(invoke("run", repo / "topologies/dcn_512.yaml", "--workload", out, "--mode", "simai", "--json"))
    assert d["total_us"] > d["compute_us"] > 0


def test_models_and_topology_commands(repo):
    assert "llama3-405b" in invoke("models")
    assert "leaf_oversubscription" in invoke("topology", repo / "topologies/dcn_512.yaml")


def test_bench_collective_speaks_nccl_tests():
    from click.testing import CliRunner

    from netsim.cli import _parse_sizes, main

    assert _parse_sizes("1M:16M", 4) == [2**20, 2**22, 2**24]  # nccl-tests' M is MiB; -f 4
    assert _parse_sizes("1M:3M", step="1M") == [2**20, 2**21, 3 * 2**20]  # -i
    repo = Path(__file__).resolve().parents[1]
    r = CliRunner().invoke(main, ["bench-collective", str(repo / "topologies/fat_tree_512.yaml"), "--op", "allgather",
                                  "--ranks", "0-7", "--sizes", "8M,64M"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "#wrong" in r.output and "in-place" in r.output and "(auto: ring" in r.output
    assert "# Avg bus bandwidth" in r.output.splitlines()[-1]


def test_run_with_the_window_transport(repo):
    # RDMA windows, packet headers and ACKs only ever take rate away from max-min's allocation,
    # and the compute is the same; the analytical backend has no transport to choose.
    t = repo / "topologies/fat_tree_512.yaml"
    plain = json.loads(invoke("run", t, "--model", "7B", "--gbs", "256", "--json"))
    window = json.loads(invoke("run", t, "--model", "7B", "--gbs", "256", "--json", "--transport", "window"))
    assert window["config"]["transport"] == "window" and "transport" not in plain["config"]
    assert window["compute_us"] == plain["compute_us"]
    assert window["exposed_dp_us"] > plain["exposed_dp_us"] and window["total_us"] > plain["total_us"]
    r = CliRunner().invoke(main, ["run", str(t), "--model", "7B", "--backend", "analytical", "--transport", "window"])
    assert r.exit_code == 2 and "--transport" in r.output


def test_dp_replicas_folds_what_the_executor_simulates(repo):
    # On HGX every DP replica's TP and pipeline traffic stays on its own NVSwitch and rails, so
    # simulating 2 of the 8 replicas is exact (tests/system/test_flow.py checks the executor);
    # here the option must reach it and the table must say that traffic was folded.
    t = repo / "topologies/hgx_h100_512.yaml"
    full = json.loads(invoke("run", t, "--model", "175B", "--json"))
    folded = json.loads(invoke("run", t, "--model", "175B", "--json", "--dp-replicas", 2))
    assert (full["simulated_dp_replicas"], folded["simulated_dp_replicas"]) == (8, 2)
    assert folded["total_us"] == full["total_us"]
    assert "TP/PP traffic of 2 of 8 DP replicas simulated" in invoke("run", t, "--model", "175B", "--dp-replicas", 2)


def test_dp_replicas_needs_the_flow_backend(repo):
    r = CliRunner().invoke(
        main, ["run", str(repo / "topologies/hgx_h100_512.yaml"), "--model", "7B", "--backend", "analytical",
               "--dp-replicas", "2"],
    )  # fmt: skip
    assert r.exit_code == 2 and "--dp-replicas" in r.output and "Traceback" not in r.output
