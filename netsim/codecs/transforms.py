"""Transforms applied to bf16 tensors before a codec (reference/netzip.md sections 2 and 5).

All operate on the tensor's 16-bit patterns (uint16, little-endian). `decode_*` inverts the
lossless ones bit-exactly. The artifact's float deltas (diff_min, diff_bfloat16) subtract in
float32 and round to bf16, which is not injective: they are reproduced for comparison and
flagged lossy. netsim's lossless deltas subtract bit patterns modulo 2^16 (against a scalar base
or the previous iteration's tensor).
"""

from __future__ import annotations

import numpy as np


def as_u16(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x).view(np.uint16).ravel()


def bf16_to_f32(u: np.ndarray) -> np.ndarray:
    return (u.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16(f: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even float32 -> bf16 bit patterns (torch's conversion; NaN kept quiet)."""
    b = np.ascontiguousarray(f, dtype=np.float32).view(np.uint32)
    rounded = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    nan = np.isnan(f)
    out = rounded.astype(np.uint16)
    out[nan] = ((b[nan] >> 16) | 0x40).astype(np.uint16)
    return out


# ---- grouping ------------------------------------------------------------------------------


def byte_group(u: np.ndarray) -> bytes:
    """[all low bytes][all high bytes] of the little-endian elements (the artifact's byte_group)."""
    b = u.astype("<u2").view(np.uint8).reshape(-1, 2)
    return b[:, 0].tobytes() + b[:, 1].tobytes()


def byte_ungroup(data: bytes, n: int) -> np.ndarray:
    a = np.frombuffer(data, dtype=np.uint8)
    out = np.empty((n, 2), dtype=np.uint8)
    out[:, 0], out[:, 1] = a[:n], a[n:]
    return out.view("<u2").ravel()


def bit_group(u: np.ndarray) -> bytes:
    """16 bit planes, LSB first, each packed little-endian (the artifact's bit_group)."""
    return b"".join(np.packbits(((u >> k) & 1).astype(np.uint8), bitorder="little").tobytes() for k in range(16))


def bit_ungroup(data: bytes, n: int) -> np.ndarray:
    a = np.frombuffer(data, dtype=np.uint8)
    plane = (n + 7) // 8
    out = np.zeros(n, dtype=np.uint16)
    for k in range(16):
        bits = np.unpackbits(a[k * plane : (k + 1) * plane], bitorder="little")[:n]
        out |= bits.astype(np.uint16) << k
    return out


# ---- deltas --------------------------------------------------------------------------------


def diff_int(cur: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """Previous-iteration delta on bit patterns, wrapping (the artifact's diff_int; lossless)."""
    return (cur.astype(np.int32) - prev.astype(np.int32)).astype(np.uint16)


def undiff_int(d: np.ndarray, prev: np.ndarray) -> np.ndarray:
    return (d.astype(np.int32) + prev.astype(np.int32)).astype(np.uint16)


def sub_base(u: np.ndarray, base_bits: int) -> np.ndarray:
    """Lossless scalar-base delta: bit pattern minus the base's bf16 pattern, modulo 2^16."""
    return (u.astype(np.int32) - int(base_bits)).astype(np.uint16)


def add_base(d: np.ndarray, base_bits: int) -> np.ndarray:
    return (d.astype(np.int32) + int(base_bits)).astype(np.uint16)


def artifact_min_base(prev: np.ndarray) -> float:
    """The artifact's "min": the 1st percentile of the *previous* step's values (float32)."""
    return float(np.percentile(prev.view(np.int16).astype(np.float32), 1))


def diff_min_float(cur: np.ndarray, m: float) -> np.ndarray:
    """The artifact's diff_min: bf16(float32(x) - m) with x the int16 view cast to float (lossy)."""
    return f32_to_bf16(cur.view(np.int16).astype(np.float32) - np.float32(m))


def diff_bf16_float(cur: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """The artifact's diff_bfloat16 on the int16 views (lossy)."""
    return f32_to_bf16(cur.view(np.int16).astype(np.float32) - prev.view(np.int16).astype(np.float32))


BASES = ("min", "p1_prev", "mean", "median")


def base_value(u: np.ndarray, prev: np.ndarray | None, kind: str) -> int:
    """A scalar delta base as a bf16 bit pattern: the tensor's min / mean / median value, or the
    artifact's 1st percentile of the previous step."""
    f = bf16_to_f32(u)
    finite = f[np.isfinite(f)]
    if finite.size == 0:
        return 0
    if kind == "min":
        v = finite.min()
    elif kind == "mean":
        v = finite.mean(dtype=np.float64)
    elif kind == "median":
        v = np.median(finite)
    elif kind == "p1_prev":
        src = bf16_to_f32(prev) if prev is not None else f
        src = src[np.isfinite(src)]
        v = np.percentile(src, 1) if src.size else 0.0
    else:
        raise ValueError(kind)
    return int(f32_to_bf16(np.array([v], dtype=np.float32))[0])
