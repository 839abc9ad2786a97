"""A campaign of bad inputs (hand-written cases and hypothesis-generated topologies): each must end
with exit 2, one line naming the file or field and what was expected, no traceback, no hang, and
nothing written."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
T = REPO / "topologies"
GOOD_TOPO = {"name": "t", "servers": 16, "gpus_per_server": 1, "nic": {"count": 1, "bandwidth": "100 Gbps"},
             "fabric": {"kind": "fat_tree", "k": 4}}  # fmt: skip
MODEL = "name: x\nlayers: 3\nhidden: 1024\nheads: 8\nffn_hidden: 4096\nvocab: 50000\nseq: 512\nparallelism: {tp: 1, pp: 1, gbs: 16, mbs: 1}\n"


def netsim(*args, cwd=None, timeout=30):
    p = subprocess.run([sys.executable, "-m", "netsim.cli", *map(str, args)], capture_output=True, text=True,
                       cwd=cwd, timeout=timeout)  # fmt: skip
    return p.returncode, p.stderr.strip(), p.stdout


def _files(d: Path) -> set:
    return {p for p in d.rglob("*")}


def _cases(tmp: Path):
    (tmp / "bin.yaml").write_bytes(b"\xff\xfe\x00bad")
    (tmp / "dup.yaml").write_text(
        "name: a\nname: b\nservers: 16\nnic: {bandwidth: 1 Gbps}\nfabric: {kind: fat_tree, k: 4}\n"
    )
    (tmp / "m1.yaml").write_text(MODEL.replace("hidden: 1024\nheads: 8", "hidden: 1000\nheads: 7"))
    (tmp / "m2.yaml").write_text(MODEL)
    big = dict(GOOD_TOPO, servers=1000)
    (tmp / "ft_big.yaml").write_text(yaml.safe_dump(big))
    (tmp / "ft_bool.yaml").write_text(yaml.safe_dump(dict(GOOD_TOPO, servers=True)))
    (tmp / "ft_inf.yaml").write_text(yaml.safe_dump(GOOD_TOPO).replace("k: 4", "k: 4\n  oversubscription: .inf"))
    (tmp / "ft_huge.yaml").write_text(yaml.safe_dump(dict(GOOD_TOPO, servers=100_000_000)))
    (tmp / "sw.yaml").write_text(f"name: ../../x\nbase: {{topology: {T}/dcn_512.yaml, model: 7B}}\ngrid: {{tp: [1]}}\n")
    (tmp / "aiob.txt").write_text("hello\n")
    fat = T / "fat_tree_512.yaml"
    return [
        (["run", "bin.yaml", "--model", "7B"], "bin.yaml"),
        (["run", "dup.yaml", "--model", "7B"], "duplicate key"),
        (["run", fat, "--model", "m1.yaml"], "heads"),
        (["run", fat, "--model", "m2.yaml", "--pp", "4"], "pp"),
        (["topology", "ft_big.yaml"], "fat-tree"),
        (["topology", "ft_bool.yaml"], "servers"),
        (["topology", "ft_inf.yaml"], "oversubscription"),
        (["topology", "ft_huge.yaml"], "limits"),
        (["run", fat, "--model", "7B", "--bandwidth", "1e400 Gbps"], "bandwidth"),
        (["run", fat, "--model", "7B", "--bandwidth", "1e-300 bps"], "bandwidth"),
        (["run", fat, "--model", "7B", "--trace", "nodir/t.json"], "nodir/t.json"),
        (["bench-collective", fat, "--op", "allreduce", "--ranks", "0-7", "--sizes", "0:1MiB"], "--sizes"),
        (["bench-collective", fat, "--op", "allreduce", "--ranks", "0-7", "--sizes", "1GiB:1MiB"], "--sizes"),
        (["bench-collective", fat, "--op", "allreduce", "--ranks", "1", "--sizes", "1MiB", "--json"], "--ranks"),
        (["bench-collective", fat, "--op", "allreduce", "--ranks", "0-7", "--sizes", "0B", "--json"], "--sizes"),
        (["bench-collective", fat, "--op", "allreduce", "--ranks", "0-7", "--sizes", "1.5B"], "whole number"),
        (["bench-collective", fat, "--ranks", "0-7", "--sizes", "1MiB:1TiB", "-i", "1"], "at most 1,000"),
        (["bench-collective", fat, "--ranks", "100000000", "--sizes", "1MiB"], "within 0..511"),
        (["bench-collective", fat, "--op", "broadcast", "--ranks", "0-999999999", "--sizes", "1MiB"], "within 0..511"),
        (["run", fat, "--model", "dlrm", "--tp", "8"], "does not apply to a DLRM preset"),
        (["export", "simai", "--model", "7B", "--gpus", "64", "-o", "nodir/x.txt"], "nodir/x.txt"),
        (["export", "simai", "--model", "7B", "--gpus", "64", "--aiob", "aiob.txt", "-o", "x.txt"], "aiob.txt"),
        (["analyze", "m2.yaml"], "m2.yaml"),
        (["sweep", "sw.yaml"], "name"),
        (["plot", "nofile.csv", "--x", "a", "--y", "b", "-o", "p.xyz"], "-o"),
        (
            [
                "run",
                T / "hgx_h100_512.yaml",
                "--workload",
                REPO.parent / "shared/simai/analytical/gpt13B_64g_tp8/workload.txt",
            ],
            "all_gpus",
        ),  # fmt: skip
    ]


def test_hand_written_bad_inputs(tmp_path):
    cases = _cases(tmp_path)
    before = _files(tmp_path)
    for args, needle in cases:
        if any(isinstance(a, Path) and "shared" in a.parts and not a.exists() for a in args):
            continue
        code, err, _out = netsim(*args, cwd=tmp_path)
        assert code == 2, (args, err)
        assert "Traceback" not in err and len(err.splitlines()) == 1, (args, err)
        assert err.startswith("netsim: error: ") and needle in err, (args, err)
    assert _files(tmp_path) == before  # nothing written by any of them


def _mutations():
    value = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**9), st.floats(allow_nan=True, allow_infinity=True),
                      st.text(max_size=8), st.just("1e400 Gbps"), st.just("-3 ns"), st.lists(st.integers(), max_size=2))  # fmt: skip
    keys = st.sampled_from(["servers", "gpus_per_server", "name", "alpha", "nic.count", "nic.bandwidth",
                            "fabric.k", "fabric.pods", "fabric.oversubscription", "fabric.kind", "fabric.latency"])  # fmt: skip
    return st.lists(st.tuples(keys, value), min_size=1, max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(muts=_mutations())
def test_generated_topologies_fail_cleanly(tmp_path_factory, muts):
    # Any mutation of a valid topology either loads, or is an InputError naming the file: never an
    # unexpected exception (checked in-process, which is what the CLI turns into exit 2).
    from netsim.errors import InputError
    from netsim.network.topology import load_topology

    data = yaml.safe_load(yaml.safe_dump(GOOD_TOPO))
    for key, v in muts:
        *path, last = key.split(".")
        node = data
        for k in path:
            node = node[k]
        node[last] = v
    f = tmp_path_factory.mktemp("h") / "t.yaml"
    f.write_text(yaml.safe_dump(data))
    try:
        load_topology(f)
    except InputError as e:
        assert str(f) in str(e)


@pytest.mark.parametrize(
    "field, value, needle",
    [(3, "-0.0005ms", "non-negative delay"), (2, "0Gbps", "positive"), (2, "fastGbps", "rate like"),
     (2, "2.8.8Gbps", "numbers"), (0, "99999", "out of range")],
)  # fmt: skip
def test_simai_topology_file_checks(tmp_path, field, value, needle):
    from netsim.errors import InputError
    from netsim.network.topology import read_simai_topology

    src = REPO.parent / "shared/simai/ns3/ns3_ar16_dcn_1to1/topology.txt"
    if not src.exists():
        pytest.skip("needs ../shared")
    lines = src.read_text().splitlines()
    tok = lines[2].split()
    tok[field] = value
    lines[2] = " ".join(tok)
    (tmp_path / "t.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=needle):
        read_simai_topology(tmp_path / "t.txt")
