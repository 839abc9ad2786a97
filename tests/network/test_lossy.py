"""The DLRM paper's lossy stage (reference/peers.md section 4) against hand calculations."""

import math
from pathlib import Path

import pytest

from netsim.config.compression import BoundSchedule, Lossy, TableBounds, load_profile
from netsim.network.compression import NicCodec
from netsim.network.lossy import bound_multiplier, code_bits, code_fraction, table_bounds, wire_ratio

TABLES = TableBounds(count=4, tighten=0.01, loosen=0.05, tighten_tables=[0], loosen_tables=[3])


@pytest.mark.parametrize(
    ("kind", "iteration", "want"),
    [
        # step: C (1 - floor(10 it / early) (1 - 1/C) / 10) with C = 2, early = 65,536
        ("step", 0, 2.0), ("step", 16_384, 1.8), ("step", 65_535, 1.1), ("step", 65_536, 1.0),
        ("linear", 32_768, 1.5), ("constant", 1000, 2.0), ("constant", 70_000, 1.0),
    ],
)  # fmt: skip
def test_iteration_wise_multiplier(kind, iteration, want):
    lossy = Lossy(schedule=BoundSchedule(kind=kind))
    assert bound_multiplier(lossy, iteration) == pytest.approx(want)


def test_table_wise_bounds_times_the_schedule():
    lossy = Lossy(error_bound=0.03, tables=TABLES, schedule=BoundSchedule())
    assert table_bounds(lossy, 0, 4) == pytest.approx([0.02, 0.06, 0.06, 0.10])
    assert table_bounds(lossy, 65_536, 4) == pytest.approx([0.01, 0.03, 0.03, 0.05])


def test_code_width_follows_the_number_of_levels():
    # round(x / (2 e range)) spans 1/(2e) + 1 codes: 51 at e = 0.01 (int8), 501 at e = 0.001 (int16).
    auto = Lossy(bits="auto")
    assert code_bits(auto, 0.01) == 8 and code_bits(auto, 0.001) == 16 and code_bits(Lossy(bits=16), 0.3) == 16


def test_wire_ratio_moves_by_log2_of_the_bound():
    # Measured 0.4 of int8 codes at e = 0.02 -> 3.2 bits per value; at 0.04 one bit fewer, at 0.01
    # one more (the high-resolution approximation), never below the coder's 1-bit floor.
    base = dict(bits="auto", source_bits=32, reference_error_bound=0.02)
    assert wire_ratio(Lossy(error_bound=0.02, **base), 0.4) == pytest.approx(3.2 / 32)
    assert wire_ratio(Lossy(error_bound=0.04, **base), 0.4) == pytest.approx(2.2 / 32)
    assert wire_ratio(Lossy(error_bound=0.01, **base), 0.4) == pytest.approx(4.2 / 32)
    assert wire_ratio(Lossy(error_bound=0.4, **base), 0.4) == pytest.approx(1.0 / 32)
    # Without a reference bound the ratios multiply (the stage as it was): 8/32 x 0.43.
    assert wire_ratio(Lossy(), 0.43) == pytest.approx(0.43 / 4)
    # Four tables at 0.01, 0.03, 0.03, 0.05 around a reference of 0.03: the mean of their bits.
    tables = Lossy(error_bound=0.03, tables=TABLES, **{**base, "reference_error_bound": 0.03})
    bits = [3.2 - math.log2(e / 0.03) for e in (0.01, 0.03, 0.03, 0.05)]
    assert wire_ratio(tables, 0.4) == pytest.approx(sum(bits) / 4 / 32)


def test_the_encoder_handles_codes_and_quantisation_is_charged_on_the_source():
    p = load_profile("dlrm-ans").model_copy(
        update={"lossy": Lossy(bits=8, quantize_throughput="2000 GB/s", dequantize_throughput="1000 GB/s")}
    )
    c, S = NicCodec(p), 2**30
    assert code_fraction(p.lossy) == 0.25
    assert c.compress_s(S) == pytest.approx(S / 4 / 130e9 + S / 2e12)
    assert c.decompress_s(S) == pytest.approx(S / 4 / 217e9 + S / 1e12)


def test_study_end_to_end_compresses_the_forward_embeddings_by_the_wire_ratio():
    from netsim.report.dlrm_study import end_to_end, lossy_profile
    from netsim.workload.compute import gpu_compute

    gpu = gpu_compute("H100")
    hgx = str(Path(__file__).resolve().parents[2] / "topologies/hgx_h100_512.yaml")
    rows = end_to_end(hgx, gpu, (12.5,), encoders=("dlrm-ans",))
    base, ans = rows
    p = lossy_profile("dlrm-ans", gpu, 65_536)
    assert ans.wire_ratio == pytest.approx(wire_ratio(p.lossy, 1 / 2.32), rel=1e-5)
    # Only the forward all-to-all is compressed (the paper's), so exposed EP falls by less than half.
    assert base.exposed_ep_us / 2 < ans.exposed_ep_us < base.exposed_ep_us and ans.speedup > 1
