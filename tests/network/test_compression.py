"""Compression stages against the DLRM formula and first-principles collective costs."""

from pathlib import Path

import pytest

from netsim.collectives.bench import bench_collective
from netsim.config.compression import list_profiles, load_profile
from netsim.errors import InputError
from netsim.network.compression import NicCodec as CompressionStage
from netsim.network.compression import load_codec as load_stage
from netsim.network.topology import load_topology

REPO = Path(__file__).resolve().parents[2]
S = 2**30


@pytest.fixture(scope="module")
def fat():
    return load_topology(REPO / "topologies/fat_tree_512.yaml")


def profile(tmp_path, **kw):
    base = {
        "name": "t",
        "placement": "gpu",
        "compress_throughput": "100 GB/s",
        "decompress_throughput": "250 GB/s",
        "latency": "0 us",
        "pipelined": False,
        "ratios": {"default": 0.5},
    }
    base.update(kw)
    p = tmp_path / "p.yaml"
    import yaml

    p.write_text(yaml.safe_dump(base))
    return str(p)


def test_software_codec_sendrecv_is_the_dlrm_formula(fat, tmp_path):
    stage = load_stage(profile(tmp_path))
    plain = bench_collective(fat, "sendrecv", [0, 200], S)["time_us"] * 1e-6
    comp = bench_collective(fat, "sendrecv", [0, 200], S, compression=stage)["time_us"] * 1e-6
    overhead = plain - S / 50e9  # alpha + path latency, paid by both
    assert comp == pytest.approx(S / 100e9 + 0.5 * S / 50e9 + S / 250e9 + overhead, rel=0.01)
    # DLRM: speed-up 1 / (r + B (1/Tc + 1/Td)) = 1 / (0.5 + 0.5 + 0.2)
    assert (plain - overhead) / (comp - overhead) == pytest.approx(1 / 1.2, rel=0.01)


def test_pipelined_in_nic_sendrecv(fat, tmp_path):
    stage = load_stage(
        profile(
            tmp_path,
            placement="in-nic",
            pipelined=True,
            latency="0.5 us",
            compress_throughput="1000 GB/s",
            decompress_throughput="1000 GB/s",
            ratios={"default": 0.3},
        )
    )
    plain = bench_collective(fat, "sendrecv", [0, 200], S)["time_us"] * 1e-6
    comp = bench_collective(fat, "sendrecv", [0, 200], S, compression=stage)["time_us"] * 1e-6
    overhead = plain - S / 50e9
    assert comp == pytest.approx(0.3 * S / 50e9 + 0.5e-6 + overhead, rel=0.01)


def test_engine_rate_caps_a_pipelined_stage(fat, tmp_path):
    stage = load_stage(
        profile(
            tmp_path,
            placement="in-nic",
            pipelined=True,
            compress_throughput="64 GB/s",
            decompress_throughput="64 GB/s",
            ratios={"default": 0.3},
        )
    )
    comp = bench_collective(fat, "sendrecv", [0, 200], S, compression=stage)["time_us"] * 1e-6
    assert comp == pytest.approx(S / 64e9, rel=0.01)  # the engine, not the wire, is the bottleneck


def _dp_allreduce(fat, name):
    ranks = list(range(0, 512, 8))  # a DP group of 64 ranks, one per host
    return bench_collective(fat, "allreduce", ranks, S, compression=load_stage(name))["time_us"] * 1e-6


def test_dp_allreduce_direction_and_size_at_400G(fat):
    n = 64
    none = _dp_allreduce(fat, "none")
    cpu = _dp_allreduce(fat, "lz4-cpu")
    nic = _dp_allreduce(fat, "netzip-in-nic")
    assert cpu > none > nic
    # First principles for the CPU stage: the same ring, plus every step's codec work on its chunk
    # (S/n): n-1 reduce steps compress and decompress, n-1 gather steps decompress.
    p = load_profile("lz4-cpu")
    st = CompressionStage(p)
    chunk = S / n
    codec = (n - 1) * (st.compress_s(chunk) + st.decompress_s(chunk)) + (n - 1) * st.decompress_s(chunk)
    assert cpu - none == pytest.approx(codec, rel=0.02)
    # In-NIC: the engine ingests at most 64 GB/s, so 2(n-1)/n S moves at min(B/r, 64 GB/s).
    r = p_nic_ratio = load_profile("netzip-in-nic").ratios.of("default")
    bw_term = 2 * (n - 1) / n * S
    assert none - nic == pytest.approx(
        bw_term / 50e9 - bw_term / min(50e9 / p_nic_ratio, 64e9) - 2 * (n - 1) * 0.21e-6, rel=0.05
    )
    assert r < 1


def test_analytical_backend_uses_the_same_cost_model(fat, tmp_path):
    stage = load_stage(profile(tmp_path))
    from netsim.collectives.models import ClosedFormModel
    from netsim.collectives.placement import GroupPlacement

    g = GroupPlacement(n=2, ranks_per_server=1, servers=2, bandwidth=50e9, step_latency=0.0)
    t = ClosedFormModel(fat, codec=stage).time_ns("sendrecv", g, S, "gradient", "DP") * 1e-9
    assert t == pytest.approx(S / 100e9 + 0.5 * S / 50e9 + S / 250e9)
    assert stage.acct.report()["gradient"]["bytes_saved"] == pytest.approx(S / 2)


def test_lossy_stage_multiplies_ratios():
    st = load_stage("ans-int8-gpu")
    assert st.ratio("gradient") == pytest.approx(0.43 * 8 / 32)


def test_shipped_profiles_load_and_carry_sources():
    names = list_profiles()
    for required in ("none", "lz4-cpu", "zstd-cpu", "lz4-gpu", "zstd-gpu", "netzip-in-nic"):
        assert required in names
    for n in names:
        p = load_profile(n)
        assert p.placement == "none" or len(p.source) > 40, n


def test_profile_errors(tmp_path):
    with pytest.raises(InputError, match="unknown compression profile"):
        load_profile("gzip-on-a-potato")
    with pytest.raises(InputError, match="compress_throughput"):
        load_profile(profile(tmp_path, compress_throughput=None))
    bad = profile(tmp_path, ratios="missing.yaml")
    with pytest.raises(InputError, match="file not found|cannot read"):
        load_profile(bad)


def test_run_reports_bytes_saved(repo):
    from netsim.simulate import RunSpec, run

    d = run(RunSpec(topology=str(repo / "topologies/dcn_512.yaml"), model="7B", compression="netzip-in-nic")).to_dict()
    g = d["compression"]["gradient"]
    assert g["bytes_saved"] == pytest.approx(g["bytes"] * (1 - 0.33), rel=1e-6)
    plain = run(RunSpec(topology=str(repo / "topologies/dcn_512.yaml"), model="7B")).to_dict()
    assert d["total_us"] < plain["total_us"]


def test_gpu_codec_takes_gpu_time_under_overlapped_dp(fat):
    from netsim.collectives.models import ClosedFormModel
    from netsim.system.timeline import simulate
    from netsim.workload.rows import Row, Workload
    from netsim.workload.simai_file import to_program

    S2 = 2**28
    rows = [
        Row("l0", 1000, "NONE", 0, 10**9, "NONE", 0, 1000, "NONE", 0),  # a long backward to hide DP under
        Row("l1", 1000, "NONE", 0, 1000, "NONE", 0, 1000, "REDUCESCATTER", S2),
    ]
    w = to_program(Workload(tp=4, pp=1, ga=1, vpp=1, all_gpus=512, rows=rows))
    plain = simulate([w], ClosedFormModel(fat), tp=4, dp=128, pp=1)
    st = load_stage("lz4-gpu")
    gpu = simulate([w], ClosedFormModel(fat, codec=st), tp=4, dp=128, pp=1)
    # The RS stays hidden, but its codec kernels delay the compute stream by exactly their time.
    assert gpu.total_us - plain.total_us == pytest.approx(
        st.collective_codec_s("reducescatter", 128, S2) * 1e6, rel=1e-6
    )
