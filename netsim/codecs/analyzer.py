"""The codec analyzer: compression ratios of real tensors under transforms and codecs.

Reproduces the NetZIP artifact's method (reference/netzip.md section 2) and fixes what it gets
wrong (section 8): every variant is decoded back and checked bit for bit (the artifact's float
deltas are reported lossy, never silently), lossless integer-domain deltas against several bases
are added, tensors can be compressed per 4 KB packet (as the NIC does, raw fallback), throughput
is measured, and ratios are aggregated byte-weighted per traffic class.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from netsim.codecs import transforms as T
from netsim.codecs.codecs import codec, packet_codec

ARTIFACT_SITUATIONS = (
    "original",
    "bit_grouped",
    "byte_grouped",
    "diff_min_encoded",
    "diff_min_bit_grouped",
    "diff_min_byte_grouped",
    "diff_int",
    "diff_int_bit_grouped",
    "diff_int_byte_grouped",
    "diff_bfloat16",
    "diff_bfloat16_bit_grouped",
    "diff_bfloat16_byte_grouped",
)
NETSIM_SITUATIONS = tuple(f"delta_{b}{g}" for b in T.BASES for g in ("", "_bit_grouped", "_byte_grouped"))
ALL_SITUATIONS = ARTIFACT_SITUATIONS + NETSIM_SITUATIONS
LOSSY = {
    "diff_min_encoded",
    "diff_min_bit_grouped",
    "diff_min_byte_grouped",
    "diff_bfloat16",
    "diff_bfloat16_bit_grouped",
    "diff_bfloat16_byte_grouped",
}


@dataclass
class Variant:
    situation: str
    encode: Callable[[np.ndarray, np.ndarray | None], bytes]  # (values, previous values) -> buffer
    decode: Callable[[bytes, int, np.ndarray | None], np.ndarray] | None  # buffer -> values


def _grouped(kind: str, inner_enc, inner_dec):
    if kind == "":
        return (lambda u, p: inner_enc(u, p).tobytes(), lambda b, n, p: inner_dec(np.frombuffer(b, dtype="<u2"), p))
    if kind == "_bit_grouped":
        return (lambda u, p: T.bit_group(inner_enc(u, p)), lambda b, n, p: inner_dec(T.bit_ungroup(b, n), p))
    return (lambda u, p: T.byte_group(inner_enc(u, p)), lambda b, n, p: inner_dec(T.byte_ungroup(b, n), p))


def _variants() -> dict[str, Variant]:
    v: dict[str, Variant] = {}
    ident = (lambda u, p: u, lambda d, p: d)
    for g, name in (("", None), ("_bit_grouped", "bit_grouped"), ("_byte_grouped", "byte_grouped")):
        if name:
            enc, dec = _grouped(g, *ident)
            v[name] = Variant(name, enc, dec)

    # The artifact's float deltas (lossy): against its "min" (1st percentile of the previous step's
    # int16 views), and against the previous step.
    def dmin_enc(u, p):
        return T.diff_min_float(u, T.artifact_min_base(p if p is not None else u))

    def dmin_dec(d, p, u_ref=None):
        m = T.artifact_min_base(p) if p is not None else 0.0
        return np.rint(T.bf16_to_f32(d) + np.float32(m)).astype(np.int64).astype(np.int16).view(np.uint16)

    for g, name in (
        ("", "diff_min_encoded"),
        ("_bit_grouped", "diff_min_bit_grouped"),
        ("_byte_grouped", "diff_min_byte_grouped"),
    ):
        enc, dec = _grouped(g, dmin_enc, dmin_dec)
        v[name] = Variant(name, enc, dec)
    for g, name in (
        ("", "diff_int"),
        ("_bit_grouped", "diff_int_bit_grouped"),
        ("_byte_grouped", "diff_int_byte_grouped"),
    ):
        enc, dec = _grouped(g, lambda u, p: T.diff_int(u, p), lambda d, p: T.undiff_int(d, p))
        v[name] = Variant(name, enc, dec)

    def dbf_dec(d, p):
        return (
            np.rint(T.bf16_to_f32(d) + p.view(np.int16).astype(np.float32))
            .astype(np.int64)
            .astype(np.int16)
            .view(np.uint16)
        )

    for g, name in (
        ("", "diff_bfloat16"),
        ("_bit_grouped", "diff_bfloat16_bit_grouped"),
        ("_byte_grouped", "diff_bfloat16_byte_grouped"),
    ):
        enc, dec = _grouped(g, lambda u, p: T.diff_bf16_float(u, p), dbf_dec)
        v[name] = Variant(name, enc, dec)
    # netsim's lossless scalar-base deltas. The base travels with the data (2 bytes, as NetZIP
    # appends D_min to each packet), so decoding re-derives it from the header.
    for base in T.BASES:
        for g in ("", "_bit_grouped", "_byte_grouped"):
            name = f"delta_{base}{g}"

            def enc(u, p, base=base, g=g):
                b = T.base_value(u, p, base)
                body = T.sub_base(u, b)
                payload = (
                    body.tobytes() if g == "" else (T.bit_group(body) if g == "_bit_grouped" else T.byte_group(body))
                )
                return np.array([b], dtype="<u2").tobytes() + payload

            def dec(buf, n, p, g=g):
                b = int(np.frombuffer(buf[:2], dtype="<u2")[0])
                rest = buf[2:]
                body = (
                    np.frombuffer(rest, dtype="<u2")
                    if g == ""
                    else T.bit_ungroup(rest, n)
                    if g == "_bit_grouped"
                    else T.byte_ungroup(rest, n)
                )
                return T.add_base(body, b)

            v[name] = Variant(name, enc, dec)
    return v


VARIANTS = _variants()


def needs_prev(situation: str) -> bool:
    return situation.startswith(("diff_int", "diff_bfloat16"))


@dataclass
class Result:
    codec: str
    situation: str
    uncompressed_bytes: int
    compressed_bytes: int
    lossless: bool
    compress_MBps: float
    decompress_MBps: float

    @property
    def ratio(self) -> float:
        return self.compressed_bytes / self.uncompressed_bytes if self.uncompressed_bytes else float("nan")


def analyze_tensor(
    u: np.ndarray,
    prev: np.ndarray | None,
    raw: bytes,
    codecs: list[str],
    situations: list[str],
    granularity: str = "tensor",
    packet_size: int = 4096,
    check: bool = True,
) -> list[Result]:
    """Every (codec, situation) for one tensor (u: bf16 patterns; prev: the same tensor a step earlier)."""
    out = []
    n = u.size
    if prev is not None and prev.size != n:
        prev = None
    for sit in situations:
        if needs_prev(sit) and prev is None:
            continue  # the artifact runs these only when both steps have the same number of elements
        for name in codecs:
            if granularity == "packet" and sit != "original":
                out.append(_packetised(u, prev, name, sit, packet_size, check))
                continue
            buf = raw if sit == "original" else VARIANTS[sit].encode(u, prev)
            comp_fn, dec_fn = codec(name)
            t0 = time.perf_counter()
            comp = comp_fn(buf)
            t1 = time.perf_counter()
            back = dec_fn(comp)
            t2 = time.perf_counter()
            lossless = back == buf
            if lossless and check and sit != "original":
                lossless = bool(np.array_equal(VARIANTS[sit].decode(back, n, prev), u))
            out.append(
                Result(name, sit, len(buf), len(comp), lossless, _mbps(len(buf), t1 - t0), _mbps(len(buf), t2 - t1))
            )
    return out


def _packetised(u, prev, name, sit, packet_size, check) -> Result:
    """The NIC's view: each packet of values transformed, grouped and compressed on its own; a
    packet that does not shrink is sent raw (reference/netzip.md section 5)."""
    per = max(1, packet_size // 2)
    comp_fn, dec_fn = packet_codec(name)
    v = VARIANTS[sit]
    total_in = total_out = 0
    lossless = True
    tc = td = 0.0
    for i in range(0, u.size, per):
        chunk = u[i : i + per]
        pchunk = prev[i : i + per] if prev is not None else None
        buf = v.encode(chunk, pchunk)
        t0 = time.perf_counter()
        comp = comp_fn(buf)
        t1 = time.perf_counter()
        raw_size = chunk.size * 2
        if len(comp) < raw_size:
            back = dec_fn(comp, len(buf))
            td += time.perf_counter() - t1
            if check and (back != buf or not np.array_equal(v.decode(back, chunk.size, pchunk), chunk)):
                lossless = False
            total_out += len(comp)
        else:
            total_out += raw_size  # raw fallback: the original packet goes out unchanged
        tc += t1 - t0
        total_in += raw_size
    return Result(name, sit, total_in, total_out, lossless, _mbps(total_in, tc), _mbps(total_in, td))


def _mbps(n: int, sec: float) -> float:
    return n / sec / 1e6 if sec > 0 else float("inf")
