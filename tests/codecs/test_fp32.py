"""The fp32 transforms: lossless on any bit pattern, and their ratios where the answer is known."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsim.codecs import fp32
from netsim.codecs.transforms import bf16_to_f32, f32_to_bf16


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=3000), st.sampled_from(fp32.SITUATIONS))
def test_every_transform_decodes_back_bit_for_bit(patterns, situation):
    u = np.array(patterns, dtype="<u4")  # NaNs, infinities and denormals included
    assert np.array_equal(fp32.decode(fp32.encode(u, situation), u.size, situation), u)
    assert fp32.compressed_bytes(u, situation) > 0
    assert fp32.compressed_bytes(u, situation, packet_size=4096) <= u.size * 4  # raw fallback per packet


def test_bf16_valued_fp32_halves_under_byte_planes():
    # An fp32 gradient bucket holding bf16 values (one micro-batch) has two all-zero byte planes: LZ4
    # removes them, so the ratio is at most half plus what the two random planes keep; without
    # grouping LZ4 finds no long runs and keeps more.
    rng = np.random.default_rng(1)
    a = bf16_to_f32(f32_to_bf16(rng.standard_normal(1 << 18).astype(np.float32) * 1e-3))
    u = fp32.words(a)
    planes = fp32.compressed_bytes(u, "byte_grouped") / (u.size * 4)
    assert 0.25 < planes <= 0.5 + 0.01
    assert fp32.compressed_bytes(u, "original") / (u.size * 4) > planes


def test_random_words_do_not_compress():
    u = np.random.default_rng(2).integers(0, 2**32, 1 << 16, dtype=np.uint64).astype("<u4")
    for sit in fp32.SITUATIONS:
        assert fp32.compressed_bytes(u, sit, packet_size=4096) == pytest.approx(u.size * 4, rel=0.001)
