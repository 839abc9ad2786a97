"""Compression ratios of fp32 tensors: the gradient buckets Megatron's distributed optimizer reduces.

With bf16 parameters Megatron accumulates each micro-batch's bf16 gradient into an fp32
`main_grad` buffer and reduce-scatters that buffer in fp32 (`--accumulate-allreduce-grads-in-fp32`,
on with the distributed optimizer), so DP traffic is 32-bit words, not the bf16 patterns
`analyzer.py` handles. These are the 32-bit counterparts of its lossless transforms: byte planes
(4 per element), bit planes (32), and a delta against the tensor's minimum (bit pattern minus the
minimum's pattern, modulo 2^32, the base carried in a 4-byte header as NetZIP carries D_min).
Every encoding is decoded back and checked bit for bit.
"""

from __future__ import annotations

import numpy as np

from netsim.codecs.codecs import codec, packet_codec

SITUATIONS = ("original", "byte_grouped", "bit_grouped", "delta_min_byte_grouped", "delta_min_bit_grouped")


def words(a: np.ndarray) -> np.ndarray:
    """fp32 values as little-endian 32-bit patterns."""
    return np.ascontiguousarray(a, dtype="<f4").view("<u4").ravel()


def byte_planes(u: np.ndarray) -> bytes:
    """Byte k of every element together, k = 0..3 (low byte first)."""
    return np.ascontiguousarray(u.astype("<u4").view(np.uint8).reshape(-1, 4).T).tobytes()


def unbyte_planes(data: bytes, n: int) -> np.ndarray:
    planes = np.frombuffer(data, dtype=np.uint8).reshape(4, n)
    return np.ascontiguousarray(planes.T).view("<u4").ravel()


def bit_planes(u: np.ndarray) -> bytes:
    """32 bit planes, bit 0 first, each packed little-endian."""
    bits = np.unpackbits(u.astype("<u4").view(np.uint8).reshape(-1, 4), axis=1, bitorder="little")
    return np.packbits(np.ascontiguousarray(bits.T), axis=1, bitorder="little").tobytes()


def unbit_planes(data: bytes, n: int) -> np.ndarray:
    per = (n + 7) // 8
    planes = np.unpackbits(np.frombuffer(data, dtype=np.uint8).reshape(32, per), axis=1, bitorder="little")[:, :n]
    return np.packbits(np.ascontiguousarray(planes.T), axis=1, bitorder="little").view("<u4").ravel()


def min_base(u: np.ndarray) -> int:
    """The bit pattern of the smallest finite value (0 when there is none)."""
    f = u.view("<f4")
    finite = f[np.isfinite(f)]
    return int(np.array([finite.min()], dtype="<f4").view("<u4")[0]) if finite.size else 0


def encode(u: np.ndarray, situation: str) -> bytes:
    if situation == "original":
        return u.astype("<u4").tobytes()
    head = b""
    if situation.startswith("delta_min"):
        base = min_base(u)
        head, u = np.array([base], dtype="<u4").tobytes(), u - np.uint32(base)  # uint32 arithmetic wraps
    return head + (bit_planes(u) if situation.endswith("bit_grouped") else byte_planes(u))


def decode(data: bytes, n: int, situation: str) -> np.ndarray:
    if situation == "original":
        return np.frombuffer(data, dtype="<u4").copy()
    base = 0
    if situation.startswith("delta_min"):
        base, data = int(np.frombuffer(data[:4], dtype="<u4")[0]), data[4:]
    body = unbit_planes(data, n) if situation.endswith("bit_grouped") else unbyte_planes(data, n)
    return body + np.uint32(base)


def compressed_bytes(u: np.ndarray, situation: str, name: str = "lz4", packet_size: int | None = None) -> int:
    """Bytes on the wire for `u` under a transform and codec, whole tensor or per packet of
    `packet_size` bytes (a packet that does not shrink goes raw, as the NIC sends it). Raises
    ValueError if an encoding does not decode back to `u` exactly."""
    if packet_size is None:
        comp, dec = codec(name)
        buf = encode(u, situation)
        out = comp(buf)
        if not np.array_equal(decode(dec(out), u.size, situation), u):
            raise ValueError(f"{situation} + {name} is not lossless")
        return len(out)
    comp, dec = packet_codec(name)
    per, total = max(1, packet_size // 4), 0
    for i in range(0, u.size, per):
        chunk = u[i : i + per]
        buf = encode(chunk, situation)
        out = comp(buf)
        if len(out) >= chunk.size * 4:
            total += chunk.size * 4
            continue
        if not np.array_equal(decode(dec(out, len(buf)), chunk.size, situation), chunk):
            raise ValueError(f"{situation} + {name} is not lossless")
        total += len(out)
    return total
