"""Error-bounded quantisation before a lossless encoder: the wire ratio the bound gives.

The SC'24 DLRM paper's lossy stage (reference/peers.md section 4): a value x becomes the code
round(x / (2 e (max - min))), stored as int8 or int16, so |error| <= e (max - min). Its two levels:
- table-wise: tables tagged `tighten` or `loosen` get their own relative bound, the rest the base;
- iteration-wise (`stage_check`): the bounds are multiplied by C during the first `early`
  iterations: `step` falls from C to 1 in ten equal steps, `linear` straight, `constant` stays C.
The lossless encoder's ratio was measured at one bound (`reference_error_bound`). At another bound
the codes' entropy moves by log2 of the bound's ratio (a uniform quantiser's output entropy is
h(X) - log2(step) at fine steps: the high-resolution approximation, a derived model, not a
measurement), floored at the coder's minimum bits per value (Huffman codes spend at least 1 bit).
Knows nothing about networks: it turns a profile and an iteration into a ratio.
"""

from __future__ import annotations

import math

from netsim.config.compression import Lossy


def bound_multiplier(lossy: Lossy, iteration: int) -> float:
    """The iteration-wise multiplier of every bound (1.0 without a schedule or after the early stage)."""
    s = lossy.schedule
    if s is None or iteration >= s.early_iterations:
        return 1.0
    c = s.multiplier
    if s.kind == "constant":
        return c
    if s.kind == "linear":
        return c - (c - 1) * iteration / s.early_iterations
    return c * (1 - math.floor(10 * iteration / s.early_iterations) * (1 - 1 / c) / 10)  # "step"


def table_bounds(lossy: Lossy, iteration: int, tables: int) -> list[float]:
    """Relative error bound of each of `tables` tables at `iteration`."""
    m = bound_multiplier(lossy, iteration)
    t = lossy.tables
    out = []
    for i in range(tables):
        e = lossy.error_bound
        if t is not None and i in t.tighten_tables:
            e = t.tighten
        elif t is not None and i in t.loosen_tables:
            e = t.loosen
        out.append(e * m)
    return out


def code_bits(lossy: Lossy, bound: float) -> int:
    """Bits per code: int8 while the 1/(2e) + 1 levels fit in 256, else int16 (bits: auto)."""
    if lossy.bits != "auto":
        return lossy.bits
    return 8 if math.floor(1 / (2 * bound)) + 1 <= 256 else 16


def wire_ratio(lossy: Lossy, lossless: float, iteration: int | None = None) -> float:
    """Wire bytes / source bytes after quantisation and the lossless encoder at `iteration` (the
    profile's by default), averaged over the tables (equal slices of the all-to-all; one table
    without a table-wise level).

    `lossless` is the encoder's ratio (compressed / code bytes) measured at the reference bound."""
    it = lossy.iteration if iteration is None else iteration
    ref = lossy.reference_error_bound
    per = []
    for e in table_bounds(lossy, it, lossy.tables.count if lossy.tables else 1):
        bits = code_bits(lossy, e)
        if ref is None:
            coded = bits * lossless
        else:
            coded = min(bits, max(lossy.min_bits, code_bits(lossy, ref) * lossless - math.log2(e / ref)))
        per.append(coded / lossy.source_bits)
    return min(1.0, sum(per) / len(per))


def code_fraction(lossy: Lossy, iteration: int | None = None) -> float:
    """Code bytes / source bytes (what the lossless encoder reads and writes back), over the tables."""
    it = lossy.iteration if iteration is None else iteration
    bounds = table_bounds(lossy, it, lossy.tables.count if lossy.tables else 1)
    return sum(code_bits(lossy, e) for e in bounds) / len(bounds) / lossy.source_bits
