"""Every --json output validates against its published schema (docs/schemas/)."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from jsonschema import validate

from netsim.cli import main

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "docs" / "schemas"


def _json(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


@pytest.mark.parametrize(
    "args",
    [
        ["--model", "7B"],
        ["--model", "7B", "--backend", "analytical"],
        ["--model", "13B", "--mode", "simai"],
        ["--model", "7B", "--compression", "lz4-gpu"],
        ["--model", "7B", "--checkpoint", "interleaved"],
    ],
)
def test_run_json_matches_its_schema(args):
    d = _json("run", REPO / "topologies/hgx_h100_512.yaml", *args, "--json")
    validate(d, json.loads((SCHEMAS / "run.schema.json").read_text()))
    assert all(round(d[k], 3) == d[k] for k in d if k.endswith("_us") and isinstance(d[k], float))


def test_bench_json_matches_its_schema():
    d = _json("bench-collective", REPO / "topologies/fat_tree_512.yaml", "--op", "alltoall", "--ranks", "0-15",
              "--sizes", "1MiB:4MiB", "--json")  # fmt: skip
    validate(d, json.loads((SCHEMAS / "bench-collective.schema.json").read_text()))
    assert [r["bytes"] for r in d["rows"]] == [2**20, 2**21, 2**22]


def test_validate_json_matches_its_schema(simai_dir):
    d = _json("validate", "simai", simai_dir / "analytical/manifest.json", "--json")
    validate(d, json.loads((SCHEMAS / "validate.schema.json").read_text()))
