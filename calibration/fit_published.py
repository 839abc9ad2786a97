"""Fit the `training` block of calibration/compute.yaml on published iteration times.

    python calibration/fit_published.py ../shared/validation/published/cases.yaml

Per GPU family it fits three kernel efficiencies (BF16/FP16 GEMM, FP8 GEMM where the family has
FP8 cases, attention); the GEMM shape constant and the memory-bound efficiency stay at their
documented values. Every case of the family weighs the same; nothing is set per case.

The objective needs many evaluations, so it uses a linearisation checked afterwards: one
closed-form simulation per case at the starting calibration gives its exposed communication E0
and its compute + bubble time W0; the critical rank's compute C is exactly a sum of per-class
terms T_k / efficiency_k (its programs are rebuilt with one class on at a time), and the bubble
scales with it, so predicted(theta) = E0 + W0 * C(theta) / C(theta0). The script then runs the real
simulation with the fitted values and prints both errors.
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace

import numpy as np
from scipy.optimize import minimize

from netsim.validation.published import build_case, load_manifest, rel_err, simulate_case
from netsim.workload.megatron import build_megatron

OFF = 1e12  # an efficiency that makes a class's time vanish
CLASSES = ("gemm", "fp8", "attention")
DELTA = 0.05  # soft-L1 scale: log errors beyond ~5 % weigh linearly, not quadratically


def rank_compute_s(staged, par, rank: int) -> float:
    """Compute seconds of one pipeline rank's iteration (all chunks, all micro-batches)."""
    progs = [staged.stages[c * par.pp + rank] for c in range(staged.chunks)]
    per_mb = sum(x.fwd.compute_ns + x.ig.compute_ns + x.wg.compute_ns for p in progs for x in p.layers)
    return (per_mb * par.microbatches + sum(p.optimizer_ns for p in progs)) * 1e-9


def class_terms(b, rank: int) -> dict[str, float]:
    """T_k (seconds at efficiency 1) per fitted class, and the fixed rest (memory-bound, optimizer)."""
    f0 = b.gpu.fit

    def at(**eff) -> float:
        fit = replace(f0, gemm_efficiency=eff.get("gemm", OFF), fp8_gemm_efficiency=eff.get("fp8", OFF),
                      attention_efficiency=eff.get("attention", OFF),
                      memory_efficiency=f0.memory_efficiency if eff.get("rest") else OFF)  # fmt: skip
        gpu = b.gpu.with_fit(fit)
        if not eff.get("rest"):
            gpu = replace(gpu, memory_efficiency=OFF)
        return rank_compute_s(build_megatron(b.model, b.par, gpu), b.par, rank)

    none = at()
    terms = {k: at(**{k: 1.0}) - none for k in CLASSES}
    terms["rest"] = at(rest=True)  # memory-bound kernels and the optimizer, at their fixed efficiencies
    return terms


def compute_of(terms: dict[str, float], eff: dict[str, float]) -> float:
    return terms["rest"] + sum(terms[k] / eff[k] for k in CLASSES if terms[k] > 0)


def main(path: str) -> None:
    cases, gpus = load_manifest(path)
    rows = []
    for c in cases:
        b = build_case(c, gpus)
        bd, _st = simulate_case(b, "analytical")
        rank = bd.extra["critical_stage"]
        terms = class_terms(b, rank)
        f = b.gpu.fit
        eff0 = {"gemm": f.gemm_efficiency, "fp8": f.fp8_gemm_efficiency or f.gemm_efficiency,
                "attention": f.attention_efficiency}  # fmt: skip
        total, work = bd.total_us / 1e6, (bd.compute_us + bd.bubble_us) / 1e6
        rows.append({"case": c, "family": b.gpu.name, "terms": terms, "E0": total - work, "W0": work,
                     "C0": compute_of(terms, eff0)})  # fmt: skip
    fitted = {}
    for fam in sorted({r["family"] for r in rows}):
        mine = [r for r in rows if r["family"] == fam]
        keys = [k for k in CLASSES if any(r["terms"][k] > 0 for r in mine)]

        def loss(x, mine=mine, keys=keys):
            eff = dict(zip(keys, x))
            err = 0.0
            for r in mine:
                pred = r["E0"] + r["W0"] * compute_of(r["terms"], {**dict.fromkeys(CLASSES, 1.0), **eff}) / r["C0"]
                e = math.log(1 + rel_err(pred, r["case"]["measured"])) / DELTA
                err += 2 * (math.sqrt(1 + e * e) - 1)  # soft-L1: one outlying case cannot drag the family
            return err

        res = minimize(loss, np.full(len(keys), 0.5), bounds=[(0.05, 1.0)] * len(keys), method="L-BFGS-B")
        fitted[fam] = dict(zip(keys, (round(float(v), 3) for v in res.x)))
        print(f"{fam}: {fitted[fam]} over {len(mine)} cases (soft-L1 loss {res.fun:.2f})")
    print("\nlinearised fit vs full simulation (closed-form network) with the fitted values:")
    errs = []
    for r in rows:
        c = r["case"]
        eff = fitted[r["family"]]
        b = build_case(c, gpus)
        f = b.gpu.fit
        fit = replace(f, gemm_efficiency=eff.get("gemm", f.gemm_efficiency),
                      fp8_gemm_efficiency=eff.get("fp8", f.fp8_gemm_efficiency),
                      attention_efficiency=eff.get("attention", f.attention_efficiency))  # fmt: skip
        lin = r["E0"] + r["W0"] * compute_of(r["terms"], {**dict.fromkeys(CLASSES, 1.0), **eff}) / r["C0"]
        bd, _ = simulate_case(b, "analytical", gpu=b.gpu.with_fit(fit))
        e = rel_err(bd.total_us / 1e6, c["measured"])
        errs.append(e)
        print(f"  {c['id']:40s} linearised {rel_err(lin, c['measured']):+7.1%}  simulated {e:+7.1%}")
    g = math.exp(sum(abs(math.log(1 + e)) for e in errs) / len(errs)) - 1
    print(f"geomean |error| {g:.1%}, worst {max(errs, key=abs):+.1%}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/validation/published/cases.yaml")
