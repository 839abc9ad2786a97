"""SimAI-Analytical, reproduced number for number (quirks included).

Everything here follows reference/simai_analytical_spec.md; section numbers in comments refer
to it. The arithmetic mimics the C++ binary: float32 wherever SimAI holds a float, integer
nanosecond ticks with its conversion rules for odd values (section 3.6), and C printf output.
This mode exists for validation and for users who need SimAI's numbers; netsim's default
analytical mode (engine/analytical.py) fixes what section 8 lists as bugs.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from netsim.resources import CALIBRATION
from netsim.system.result import Breakdown, RowReport
from netsim.workload.program import ALLGATHER, ALLREDUCE, ALLTOALL, REDUCESCATTER, LayerProgram, Phase

f32 = np.float32
F64 = np.float64
TWO30 = float(2**30)
U64 = 2**64

AR, AG, RS, A2A, NONE_OP = "AR", "AG", "RS", "A2A", "NONE"
TP, EP, DP, DP_EP, NONE_G = "TP", "EP", "DP", "DP_EP", "NONE"

# Section 3.1: fixed cost of 1 B < S < 1 MiB by group size, ns.
SMALL = {2: 10000, 4: 12000, 8: 15000, 16: 66000, 32: 135000, 64: 200000, 128: 320000}
# Section 1.1: defaults when -nv / -nic are not positive (computed in double, stored as float).
DEFAULT_NVLINK = {"H100": 20.6 * 18, "H20": 20.6 * 18, "H800": 20.6 * 8, "A100": 20.0 * 12, "A800": 20.0 * 8}
DEFAULT_NIC = {"cx6": 23.5, "cx7": 48.5, "bf3": 48.5}


@dataclass(frozen=True)
class ClusterFlags:
    """SimAI-Analytical's command line (section 1.1)."""

    gpus: int
    gpus_per_server: int
    nics_per_server: int
    nvlink_busbw: float = -1.0  # -nv, "GB/s" that are GiB/s
    nic_busbw: float = -1.0  # -nic, GiB/s per NIC
    gpu_type: str = "H100"
    nic_type: str = "cx7"
    dp_overlap: float = 0.0
    tp_overlap: float = 0.0
    ep_overlap: float = 0.0
    pp_overlap: float = 1.0


class _Truncated(Exception):
    """Section 3.4: a ratio lookup beyond the 16 GiB row throws; SimAI swallows it."""


def tick(x: float) -> int:
    """Double -> Tick (uint64) exactly as the x86-64 build converts it (section 3.6)."""
    x = float(x)
    if math.isnan(x) or x == -math.inf or x <= -(2.0**63):
        return 2**63
    if x == math.inf or x >= 2.0**64:
        return 0
    if x < 0:
        return (U64 - int(-x)) % U64
    return int(x)


def load_round(v: int) -> int:
    """Section 1.2: every count is multiplied by a float32 1.0 at load, i.e. rounded to 24 bits."""
    return tick(float(f32(v)))


def ovl(t: int, o: float) -> int:
    """Section 4: exposed = trunc(f32(f32(tick) * f32(1 - o)))."""
    with np.errstate(all="ignore"):
        return tick(float(f32(f32(t) * f32(f32(1) - f32(o)))))


@cache
def _ratio_table(name: str) -> tuple[tuple[float, tuple[float, ...]], ...]:
    rows = []
    with open(CALIBRATION / "simai_ratio" / f"{name}_ratio.csv", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        for rec in reader:
            if not rec:
                continue
            if rec[-1] == "":
                rec = rec[:-1]
            vals = tuple(float(c) if c != "" else 1.0 for c in rec[1:10])
            rows.append((float(rec[0]), vals))
    return tuple(rows)


_COL = {1: 1, 2: 2, 4: 3, 8: 4, 16: 5, 32: 6, 64: 7, 128: 8, 9: 9}


def lookup(name: str, k: int, size: int) -> float:
    """Section 3.4 LOOKUP: linear interpolation in size, normalised by the 16 GiB row."""
    table = _ratio_table(name)
    col = _COL.get(k, 5) - 1
    if size == 0:
        return 1.0
    last = table[-1][1][col]
    if size < table[0][0]:
        return float(f32(table[0][1][col] / last))
    for (sa, va), (sb, vb) in zip(table, table[1:]):
        if sa <= size <= sb:
            v = va[col] + (vb[col] - va[col]) * (size - sa) / (sb - sa)
            return float(f32(v / last))
    raise _Truncated(size)


_OP = {ALLREDUCE: AR, ALLGATHER: AG, REDUCESCATTER: RS, ALLTOALL: A2A}


def classify(ph: Phase) -> tuple[str, str]:
    """Sections 1.3: (op, group) of a phase (types parsed by workload/simai_file.py)."""
    return _OP.get(ph.op, NONE_OP), ph.group


@dataclass
class _Ctx:
    flags: ClusterFlags
    tp: int
    ep: int
    dp: int

    @property
    def nv(self) -> float:
        v = float(f32(self.flags.nvlink_busbw))
        return v if v > 0 else float(f32(DEFAULT_NVLINK.get(self.flags.gpu_type, -1.0)))

    @property
    def nic(self) -> float:
        v = float(f32(self.flags.nic_busbw))
        return v if v > 0 else float(f32(DEFAULT_NIC.get(self.flags.nic_type, -1.0)))


def cal(ctx: _Ctx, op: str, nodes: int, gpn: int, nics: int) -> tuple[float, bool]:
    """Section 3.3: bus bandwidth of a ring (or A2A) in float32 "GB/s"."""
    if nodes < 1 or gpn * nodes == 1:
        return 0.0, False
    nvb, nicb = f32(ctx.nv), f32(ctx.nic)
    if nvb <= 0 or nicb <= 0 or gpn < 1 or int(nics) < 1 or nodes < 1:
        return -1.0, False
    with np.errstate(all="ignore"):
        agg = f32(nicb * f32(nics))
        cross = f32(f32(nics) * nicb) > nvb
        is_nv = False
        if nodes == 1:
            ring = nvb
        elif gpn == 1:
            ring = agg
        elif not cross:
            if nvb < agg:
                ring, is_nv = nvb, True
            else:
                ring = agg
        else:
            x = f32(f32(nvb * f32(gpn)) / f32(gpn - 1))
            if x < agg:
                ring, is_nv = x, True
            else:
                ring = agg
        if op == A2A:
            if nodes == 1:
                return float(nvb), True
            n_all = nodes * gpn
            v = f32(f32(f32(agg / f32(gpn)) * f32(n_all - 1)) / f32((nodes - 1) * gpn))
            return float(v), is_nv
    return float(ring), is_nv


def bus_bw(ctx: _Ctx, op: str, group: str, n: int) -> tuple[float, bool] | None:
    """Section 3.2; None means 'return 0 ns immediately'."""
    gps, nps, tp = ctx.flags.gpus_per_server, ctx.flags.nics_per_server, ctx.tp
    if group == TP:
        if tp <= gps:
            return cal(ctx, op, 1, tp, nps)
        return cal(ctx, op, tp // gps, gps, nps)
    if group == NONE_G or n <= 1:
        return None
    if group == EP:
        if tp * n <= gps:
            return cal(ctx, op, 1, gps // tp, nps)
        nics = nps // gps if tp > gps else nps // tp
        return cal(ctx, op, (tp * n) // gps, max(gps // tp, 1), nics)
    if group == DP:
        if tp <= gps:
            return cal(ctx, op, n, gps // tp, nps // tp)
        return cal(ctx, op, n, 1, nps // gps)
    if group == DP_EP:
        if tp * ctx.ep <= gps:
            return cal(ctx, op, n, gps // (tp * ctx.ep), nps // (tp * ctx.ep))
        return cal(ctx, op, n, 1, nps // gps)
    return None


def ratio(ctx: _Ctx, op: str, group: str, size: int, n: int, is_nv: bool) -> float:
    """Section 3.4: size-dependent efficiency (float32)."""
    gps, tp = ctx.flags.gpus_per_server, ctx.tp
    if op in (AG, RS) and group == TP:
        k = 1 if tp < gps else tp // gps
        return lookup("nvlink" if is_nv else "nic", k, size)
    if op == A2A and group == EP:
        k = 1 if tp * n <= gps else (9 if tp >= gps else (tp * n) // gps)
        return lookup("ata", k, size)
    if op == A2A and group == TP:
        return lookup("ata", 1 if tp <= gps else tp // gps, size)
    return 1.0


def comm_time(ctx: _Ctx, op: str, group: str, size: int, n: int) -> int:
    """Section 3 COMM_TIME: integer ns."""
    if op == NONE_OP:
        return 0
    if 1 < size < 1048576:
        return SMALL.get(n, 0)
    bw = bus_bw(ctx, op, group, n)
    if bw is None:
        return 0
    busbw, is_nv = bw
    r = ratio(ctx, op, group, size, n, is_nv)
    with np.errstate(all="ignore"):
        d = f32(f32(r) * f32(busbw))
        t = F64(size) / F64(TWO30) / F64(d) * F64(1e9)
        if op == AR:
            t = t * F64(2)
        t = t * F64(n - 1)
        t = t / F64(n)
    return tick(float(t))


def busbw_columns(op: str, n: int, size: int, tot: int) -> tuple[float, float]:
    """Section 6: algbw/busbw printed per collective (float32, GiB/s)."""
    with np.errstate(all="ignore"):
        algbw = f32(F64(size) / (F64(tot) / F64(1000.0)) * F64(1e6) / F64(TWO30))
        if op == AR:
            bus = f32(F64(f32(f32(algbw * f32(2)) * f32(n - 1))) / F64(n))
        elif op in (AG, RS, A2A):
            bus = f32(F64(f32(algbw * f32(n - 1))) / F64(n))
        else:
            bus = f32(0.0)
    return float(algbw), float(bus)


def simulate(w: LayerProgram, flags: ClusterFlags) -> Breakdown:
    """Sections 2, 4 and 5: one pass over the rows, in file order."""
    dp = flags.gpus // (w.tp * w.pp)
    ctx = _Ctx(flags=flags, tp=w.tp, ep=w.ep, dp=dp)
    res = Breakdown()
    pre_bubble = 0.0
    tp_c = ep_c = dp_c = dpep_c = 0.0
    t_comp = t_exp = 0.0
    for i, row in enumerate(w.layers):
        fc, ic, wc = load_round(row.fwd.compute_ns), load_round(row.ig.compute_ns), load_round(row.wg.compute_ns)
        fwd_op, fwd_g = classify(row.fwd)
        ig_op, ig_g = classify(row.ig)
        wg_op, wg_g = classify(row.wg)
        fwd_b, ig_b, wg_b = (load_round(row.fwd.bytes), load_round(row.ig.bytes), load_round(row.wg.bytes))
        if 0 < fwd_b < 4096:
            fwd_b = 4096  # section 1.5
        n_fwd = w.ep if fwd_g == EP else w.tp
        n_ig = w.ep if ig_g == EP else w.tp
        n_wg = dp // w.ep if wg_g == DP_EP else dp
        try:
            fwd_tot = comm_time(ctx, fwd_op, fwd_g, fwd_b, n_fwd)
            wg_tot = comm_time(ctx, wg_op, wg_g, wg_b, n_wg)
            ig_tot = comm_time(ctx, ig_op, ig_g, ig_b, n_ig)
        except _Truncated:
            res.truncated_at = i
            return res
        fwd_exp, wg_exp, ig_exp = fwd_tot, wg_tot, ig_tot
        if row.name != "embedding_layer":
            pre_bubble += float((fwd_exp + fc + wc + ic + ig_exp) % U64) / 1000.0
        wg_exp = ovl(wg_exp, flags.dp_overlap)
        if wg_g == DP_EP:
            dpep_c += wg_exp / 1000.0
        else:
            dp_c += wg_exp / 1000.0
        if fwd_g == EP:
            fwd_exp, ig_exp = ovl(fwd_exp, flags.ep_overlap), ovl(ig_exp, flags.ep_overlap)
            ep_c += float((fwd_exp + ig_exp) % U64) / 1000.0
        else:
            fwd_exp, ig_exp = ovl(fwd_exp, flags.tp_overlap), ovl(ig_exp, flags.tp_overlap)
            tp_c += float((fwd_exp + ig_exp) % U64) / 1000.0
        t_comp += fc / 1000.0
        t_comp += wc / 1000.0
        t_comp += ic / 1000.0
        t_exp += fwd_exp / 1000.0
        t_exp += wg_exp / 1000.0
        t_exp += ig_exp / 1000.0
        res.rows.append(
            RowReport(
                name=row.name,
                fwd_compute=fc,
                wg_compute=wc,
                ig_compute=ic,
                fwd_exposed=fwd_exp,
                wg_exposed=wg_exp,
                ig_exposed=ig_exp,
                fwd_total=fwd_tot,
                wg_total=wg_tot,
                ig_total=ig_tot,
                fwd_bw=busbw_columns(fwd_op, n_fwd, fwd_b, fwd_tot),
                wg_bw=busbw_columns(wg_op, n_wg, wg_b, wg_tot),
                ig_bw=busbw_columns(ig_op, n_ig, ig_b, ig_tot),
            )
        )
    with np.errstate(all="ignore"):
        bubble = float(F64(pre_bubble) * (F64(w.pp - 1) / F64(w.ga * w.vpp)))
        po = float(f32(flags.pp_overlap))
        x = F64(w.pp_bytes) / F64(TWO30) / F64(po) * F64(1e9)
        x = F64(2 * w.vpp * w.ga) * x / F64(1000.0)
    pp_us = ovl(tick(float(x)), flags.pp_overlap)
    res.exposed_dp_us, res.exposed_dp_ep_us = dp_c, dpep_c
    res.exposed_tp_us, res.exposed_ep_us = tp_c, ep_c
    res.exposed_pp_us, res.bubble_us = float(pp_us), bubble
    res.compute_us, res.exposed_comm_us = t_comp, t_exp
    res.total_us = ((t_comp + t_exp) + bubble) + float(pp_us)
    return res
