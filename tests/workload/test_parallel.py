import pytest

from netsim.errors import InputError
from netsim.workload.catalog import resolve_model
from netsim.workload.parallel import coords_of, dp_group, pp_group, rank_of, resolve_parallelism, tp_group


def test_rank_mapping_tp_then_dp_then_pp():
    # TP consecutive, DP strided by TP, PP strided by TP x DP (Megatron, SimAI).
    assert tp_group(5, tp=4, dp=2) == [4, 5, 6, 7]
    assert dp_group(5, tp=4, dp=2) == [1, 5]
    assert pp_group(5, tp=4, dp=2, pp=3) == [5, 13, 21]
    for r in range(24):
        assert rank_of(*coords_of(r, 4, 2), tp=4, dp=2) == r


def test_defaults_and_overrides():
    m = resolve_model("175B")
    p = resolve_parallelism(m, 512)
    assert (p.tp, p.pp, p.dp, p.microbatches) == (8, 8, 8, 16)
    p = resolve_parallelism(m, 512, {"tp": 4, "pp": 16})
    assert p.dp == 8
    with pytest.raises(InputError, match="tp x cp x pp x dp"):
        resolve_parallelism(m, 512, {"dp": 4})


def test_aliases_resolve():
    assert resolve_model("405B").name == "llama3-405b"
    assert resolve_model("gpt-7b").layers == 36
