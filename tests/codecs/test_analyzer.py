"""The codec analyzer: the NetZIP artifact's method, rebuilt independently here from its
description (reference/netzip.md section 2), must give the same compressed sizes; every lossless
variant must round-trip bit for bit."""

import zlib

import lz4.frame
import ml_dtypes
import numpy as np
import pytest
import snappy
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from netsim.codecs.analyzer import ARTIFACT_SITUATIONS, LOSSY, NETSIM_SITUATIONS, analyze_tensor
from netsim.codecs.transforms import f32_to_bf16


def artifact_sizes(x0: np.ndarray, x1: np.ndarray, raw: bytes) -> dict:
    """The artifact's recipe, written from its description: int16 views, the 1st percentile of the
    previous step as 'min', float deltas rounded to bf16, byte grouping as [low][high], bit planes
    LSB first packed little-endian, four codecs at level 1 (zstd with 8 threads)."""
    v0, v1 = x0.view(np.int16), x1.view(np.int16)

    def bf16(f32):
        return np.asarray(f32, dtype=np.float32).astype(ml_dtypes.bfloat16).view(np.int16)

    def byte_group(v):
        b = v.view(np.uint8)
        return b[0::2].tobytes() + b[1::2].tobytes()

    def bit_group(v):
        return b"".join(np.packbits((v >> k) & 1, bitorder="little").tobytes() for k in range(16))

    m = np.percentile(v0.astype(np.float32), 1)
    dmin = bf16(v1.astype(np.float32) - m)
    dint = (v1 - v0).astype(np.int16)
    dbf = bf16(v1.astype(np.float32) - v0.astype(np.float32))
    bufs = {
        "original": raw,
        "bit_grouped": bit_group(v1),
        "byte_grouped": byte_group(v1),
        "diff_min_encoded": dmin.tobytes(),
        "diff_min_bit_grouped": bit_group(dmin),
        "diff_min_byte_grouped": byte_group(dmin),
        "diff_int": dint.tobytes(),
        "diff_int_bit_grouped": bit_group(dint),
        "diff_int_byte_grouped": byte_group(dint),
        "diff_bfloat16": dbf.tobytes(),
        "diff_bfloat16_bit_grouped": bit_group(dbf),
        "diff_bfloat16_byte_grouped": byte_group(dbf),
    }
    codecs = {
        "lz4": lambda b: lz4.frame.compress(b, compression_level=1),
        "snappy": snappy.compress,
        "zlib": lambda b: zlib.compress(b, level=1),
        "zstd": lambda b: zstandard.ZstdCompressor(level=1, threads=8).compress(b),
    }
    return {(c, s): (len(b), len(f(b))) for s, b in bufs.items() for c, f in codecs.items()}


@pytest.mark.parametrize("seed", [0, 1])
def test_artifact_method_reproduced_byte_for_byte(seed):
    rng = np.random.default_rng(seed)
    f0 = rng.normal(0, 10 ** rng.uniform(-4, 0), 1 << 16).astype(np.float32)
    f1 = f0 + rng.normal(0, 1e-3 * np.abs(f0).mean(), f0.size).astype(np.float32)
    x0 = f0.astype(ml_dtypes.bfloat16).view(np.uint16)
    x1 = f1.astype(ml_dtypes.bfloat16).view(np.uint16)
    raw = b"PICKLE-HEADER" + x1.tobytes()
    want = artifact_sizes(x0, x1, raw)
    got = analyze_tensor(x1, x0, raw, ["lz4", "snappy", "zlib", "zstd"], list(ARTIFACT_SITUATIONS))
    assert len(got) == 48
    for r in got:
        assert (r.uncompressed_bytes, r.compressed_bytes) == want[(r.codec, r.situation)], (r.codec, r.situation)
        assert r.lossless == (r.situation not in LOSSY) or r.situation in LOSSY


def test_float_deltas_are_reported_lossy():
    rng = np.random.default_rng(2)
    x0 = f32_to_bf16(rng.normal(0, 1e-2, 1 << 14).astype(np.float32))
    x1 = f32_to_bf16(rng.normal(0, 1e-2, 1 << 14).astype(np.float32))
    res = {r.situation: r for r in analyze_tensor(x1, x0, x1.tobytes(), ["lz4"], list(ARTIFACT_SITUATIONS))}
    assert not res["diff_min_encoded"].lossless and not res["diff_bfloat16"].lossless
    assert res["diff_int"].lossless and res["bit_grouped"].lossless


def test_bf16_rounding_matches_ml_dtypes():
    rng = np.random.default_rng(3)
    f = np.concatenate([rng.normal(0, 1, 10000), rng.uniform(-1e38, 1e38, 1000), [0.0, -0.0, np.inf, -np.inf]])
    f = f.astype(np.float32)
    assert np.array_equal(f32_to_bf16(f), f.astype(ml_dtypes.bfloat16).view(np.uint16))


LOSSLESS = [s for s in ARTIFACT_SITUATIONS + NETSIM_SITUATIONS if s not in LOSSY and s != "original"]


@settings(max_examples=60, deadline=None)
@given(arrays(np.uint16, st.integers(1, 3000)), st.integers(0, 2**32 - 1), st.sampled_from(["tensor", "packet"]))
def test_every_lossless_variant_round_trips(u, seed, granularity):
    prev = np.random.default_rng(seed).integers(0, 2**16, u.size, dtype=np.uint16)
    res = analyze_tensor(u, prev, u.tobytes(), ["lz4", "zstd"], LOSSLESS, granularity=granularity, packet_size=512)
    assert res and all(r.lossless for r in res), [(r.codec, r.situation) for r in res if not r.lossless]


def test_packet_mode_never_expands():
    u = np.random.default_rng(4).integers(0, 2**16, 1 << 14, dtype=np.uint16)  # incompressible
    for r in analyze_tensor(u, None, u.tobytes(), ["lz4"], ["bit_grouped", "delta_min"], granularity="packet"):
        assert r.compressed_bytes <= r.uncompressed_bytes  # raw fallback per packet


def test_compression_profile_names_a_measured_profile(tmp_path):
    from click.testing import CliRunner

    from netsim.cli import main
    from netsim.config.compression import load_profile

    rng = np.random.default_rng(5)
    d = tmp_path / "grads"
    d.mkdir()
    for i in range(2):
        np.save(d / f"t{i}.npy", rng.normal(0, 1e-3, 1 << 15).astype(np.float32))
    out = tmp_path / "an"
    r = CliRunner().invoke(
        main,
        ["analyze", str(d), "--class", "gradient", "--codecs", "lz4", "--out", str(out), "--transforms", "artifact"],
    )
    assert r.exit_code == 0, r.output
    prof = tmp_path / "measured.yaml"
    prof.write_text(
        "name: measured\nplacement: in-nic\npipelined: true\ncompress_throughput: '64 GB/s'\n"
        f"decompress_throughput: '64 GB/s'\nratios: {out / 'ratio_profile.yaml'}\n"
    )
    p = load_profile(str(prof))
    import yaml

    measured = yaml.safe_load((out / "ratio_profile.yaml").read_text())["ratios"]["gradient"]
    assert p.ratios.of("gradient") == pytest.approx(measured) and measured < 1


def test_analyze_without_its_extra_names_the_package(monkeypatch, tmp_path):
    # lz4/snappy/zstd come with the [analyze] extra; without one, analyze stops before reading
    # anything, naming the package and the install command.
    from click.testing import CliRunner

    from netsim.cli import main
    from netsim.codecs import codecs as C

    def missing():
        raise ImportError("No module named 'zstandard'", name="zstandard")

    monkeypatch.setitem(C._FACTORIES, "zstd", missing)
    monkeypatch.setattr(C, "_CACHE", {})
    r = CliRunner().invoke(main, ["analyze", str(tmp_path), "--codecs", "zstd", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert r.output.strip().splitlines()[-1] == (
        "netsim: error: --codecs: codec zstd needs the Python package zstandard; "
        "install it with pip install -e '.[analyze]'"
    )
    assert not (tmp_path / "o").exists()
