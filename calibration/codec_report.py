"""Measure codec ratios on real training tensors and write calibration/codec_ratios.md.

Collects 3 steps of MiniLM fine-tuning and of a tiny GPT pre-training (`netsim collect`), runs the
analyzer per tensor and per 4 KB packet (`netsim analyze`), measures the fp32 gradient buckets of
the same runs in mixed precision (`netsim collect --main-grads`, `netsim/codecs/fp32.py`), and
writes the report plus calibration/codec_ratios.yaml, the measured ratio profile that
compression profiles can name (pre-training, per 4 KB packet: what an in-NIC engine sees).
Run: python calibration/codec_report.py [--workdir DIR]   (needs the collect extra; ~12 min)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from netsim.codecs import fp32
from netsim.codecs.analyzer import ALL_SITUATIONS
from netsim.codecs.collect import collect, collect_main_grads
from netsim.codecs.ratio_report import aggregate, ratio_profile, run
from netsim.codecs.tensors import discover

HERE = Path(__file__).resolve().parent
PACKET_SITUATIONS = [
    "original",
    "bit_grouped",
    "byte_grouped",
    "delta_min_bit_grouped",
    "delta_median_bit_grouped",
    "diff_int_bit_grouped",
    "diff_min_bit_grouped",
]
ABLATION = [
    "delta_min_bit_grouped",
    "delta_p1_prev_bit_grouped",
    "delta_mean_bit_grouped",
    "delta_median_bit_grouped",
    "diff_int_bit_grouped",
    "diff_min_bit_grouped",
]
CLASSES = ["gradient", "activation", "activation_grad"]
ACCUMULATE = 4  # micro-batches summed into each fp32 gradient bucket


def fp32_ratios(d: Path) -> pd.DataFrame:
    """Byte-weighted LZ4 ratios of every fp32 gradient file of at least 64 KiB, per transform,
    whole tensor and per 4 KB packet (raw fallback); zstd on the original bytes for comparison."""
    rows = []
    for f in sorted(d.rglob("main_grads/*.npy")):
        if f.stat().st_size < 64 * 1024:
            continue
        u = fp32.words(np.load(f))
        for sit in fp32.SITUATIONS:
            rows.append({"situation": sit, "bytes": u.size * 4, "tensor": fp32.compressed_bytes(u, sit),
                         "packet": fp32.compressed_bytes(u, sit, packet_size=4096),
                         "zstd": fp32.compressed_bytes(u, sit, "zstd")})  # fmt: skip
    g = pd.DataFrame(rows).groupby("situation", sort=False).sum()
    return pd.DataFrame({k: g[k] / g["bytes"] for k in ("tensor", "packet", "zstd")}).assign(files=len(rows) // 5)


def measured_profile(pretrain_packet: pd.DataFrame, grads: pd.DataFrame) -> dict:
    """netzip-measured's ratios: pre-training (what the NetZIP study simulates), per 4 KB packet (the
    engine's granularity); gradients as the fp32 buckets the distributed optimizer reduces."""
    prof = ratio_profile(pretrain_packet, "lz4")
    best = grads["packet"].drop("original").idxmin()
    prof["situations"]["gradient"] = f"fp32 {best}"
    prof["ratios"]["gradient"] = round(float(grads.loc[best, "packet"]), 4)
    prof["ratios"]["default"] = round(max(v for k, v in prof["ratios"].items() if k != "default"), 4)
    prof["source"] = (
        "netsim analyze on a byte-level GPT-2 pre-trained from scratch (calibration/codec_report.py): best "
        "lossless transform + LZ4 per 4 KB packet with raw fallback; activations and activation gradients "
        f"bf16, gradients the fp32 main_grad buckets after {ACCUMULATE} accumulated micro-batches"
    )
    return prof


def table(df: pd.DataFrame, index: str, columns: str, value: str = "ratio") -> str:
    p = df.pivot_table(index=index, columns=columns, values=value, aggfunc="first")
    cols = [c for c in CLASSES if c in p.columns] + [c for c in p.columns if c not in CLASSES]
    p = p[cols]
    head = f"| {index} | " + " | ".join(map(str, cols)) + " |\n|---|" + "---|" * len(cols) + "\n"
    return head + "".join(
        f"| {i} | " + " | ".join(f"{v:.3f}" if pd.notna(v) else "" for v in row) + " |\n"
        for i, row in zip(p.index, p.values)
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="netsim-codec-"))
    results, grads = {}, {}
    for mode, model in (("finetune", "minilm"), ("pretrain", "gpt-tiny")):
        d = work / mode
        if not (d / "collect.txt").exists():
            d = collect(model, args.steps, mode, d, seq=128, batch=2, seed=0)
        files = [f for f in discover([str(d)]) if f.path.stat().st_size >= 64 * 1024]
        t = aggregate(run(files, ["lz4", "snappy", "zlib", "zstd"], list(ALL_SITUATIONS), workers=args.workers))
        p = aggregate(run(files, ["lz4"], PACKET_SITUATIONS, granularity="packet", workers=args.workers))
        t["regime"], p["regime"] = mode, mode
        results[mode] = (t, p, len(files))
        g = work / f"{mode}-main-grads"
        if not (g / "collect.txt").exists():
            collect_main_grads(model, args.steps, mode, g, ACCUMULATE, seq=128, batch=2, seed=0)
        grads[mode] = fp32_ratios(g)
        print(mode, "done", flush=True)
    md = [
        "# Codec ratios measured by netsim's analyzer",
        "",
        "These ratios are what netsim measured on real training tensors (lossless transforms + LZ4 unless",
        "marked); the pre-training ones, per 4 KB packet, with the fp32 gradient buckets the distributed",
        "optimizer reduces, drive the `netzip-measured` profile and the NetZIP study's headline (last",
        "sections). NetZIP's reported ratios (0.30-0.33) are only a labelled scenario (`netzip-in-nic`).",
        "",
        "Generated by `python calibration/codec_report.py` (netsim collect + netsim analyze). Ratio =",
        "compressed / original bytes, byte-weighted over every tensor of a class (files of at least 64 KiB)",
        f"over {args.steps} training steps; deltas that need a previous step use steps 1..{args.steps - 1}.",
        "Fine-tuning: MiniLM-L6 (22.7M parameters, shipped weights) as a masked LM; pre-training: a 4-layer",
        "byte-level GPT-2 (3.4M parameters) from random initialisation; both in bf16 on Python's",
        "documentation text, sequence 128, batch 2. Lossy variants (the artifact's float deltas) are marked.",
        "",
    ]
    for mode, (t, p, n) in results.items():
        md += [
            f"## {mode} ({n} tensor files)",
            "",
            "### Whole tensor, by codec (original bytes vs best lossless transform)",
            "",
        ]
        best = []
        for (cls, codec), g in t[t.lossless].groupby(["traffic_class", "codec"]):
            orig = g[g.situation == "original"].ratio
            b = g.loc[g.ratio.idxmin()]
            best.append(
                {
                    "codec": codec,
                    "traffic_class": cls,
                    "ratio": f"{float(orig.iloc[0]):.3f} -> {b.ratio:.3f} ({b.situation})" if len(orig) else "",
                }
            )
        bdf = pd.DataFrame(best)
        md += [
            "| codec | " + " | ".join(c for c in CLASSES if c in set(bdf.traffic_class)) + " |",
            "|---|" + "---|" * len([c for c in CLASSES if c in set(bdf.traffic_class)]),
        ]
        for codec, g in bdf.groupby("codec"):
            cells = {r.traffic_class: r.ratio for r in g.itertuples()}
            md.append(
                f"| {codec} | " + " | ".join(cells.get(c, "") for c in CLASSES if c in set(bdf.traffic_class)) + " |"
            )
        md += ["", "### LZ4, whole tensor vs 4 KB packets (raw fallback)", ""]
        both = pd.concat(
            [
                t[(t.codec == "lz4") & t.situation.isin(PACKET_SITUATIONS)].assign(granularity="tensor"),
                p.assign(granularity="packet"),
            ]
        )
        both["row"] = both["situation"] + " / " + both["granularity"]
        md += [
            table(both.sort_values("row"), "row", "traffic_class"),
            "",
            "### Delta base ablation (LZ4, bit grouping, whole tensor)",
            "",
        ]
        abl = t[(t.codec == "lz4") & t.situation.isin(ABLATION)].copy()
        abl["row"] = abl["situation"] + abl["lossless"].map(lambda v: "" if v else " (lossy)")
        md += [table(abl, "row", "traffic_class"), ""]
    md += [
        "## fp32 gradient buckets (what the distributed optimizer reduces)",
        "",
        "Megatron accumulates bf16 gradients into fp32 `main_grad` buffers and reduce-scatters those in",
        f"fp32. Measured on the same runs in mixed precision: fp32 weights, bf16 autocast, {ACCUMULATE}",
        "micro-batches summed per step (`netsim collect --main-grads`); 32-bit byte planes, bit planes and",
        "a delta against the tensor's minimum (`netsim/codecs/fp32.py`, every encoding decoded back).",
        "",
        "| regime | transform | LZ4 whole tensor | LZ4 per 4 KB packet | zstd whole tensor |",
        "|---|---|---|---|---|",
    ]
    for mode, g in grads.items():
        for sit, r in g.iterrows():
            md.append(f"| {mode} ({int(r.files)} files) | {sit} | {r.tensor:.3f} | {r.packet:.3f} | {r.zstd:.3f} |")
    md.append("")
    prof = measured_profile(results["pretrain"][1], grads["pretrain"])
    (HERE / "codec_ratios.yaml").write_text(yaml.safe_dump(prof, sort_keys=False))
    md += [
        "## What netzip-measured uses",
        "",
        "Pre-training (the regime the NetZIP study simulates), per 4 KB packet with raw fallback (the",
        "in-NIC engine's granularity), the best lossless transform per class with LZ4:",
        "",
        "| class | ratio | transform |",
        "|---|---|---|",
        *[f"| {c} | {v:.3f} | {prof['situations'].get(c, 'the largest of the others')} |"
          for c, v in prof["ratios"].items()],
        "",
    ]  # fmt: skip
    # NetZIP's comparison: percentage points between a heavy standard codec on the original bytes and
    # NetZIP-style transforms + LZ4.
    md += [
        "## Against NetZIP's claims",
        "",
        "NetZIP reports its algorithm compresses gradients 40-63 and activations 43-75 percentage points more",
        "than heavy standard lossless codecs (reference/netzip.md section 3). The same difference here:",
        "",
        "| regime | class | zstd on original | best NetZIP-style + LZ4 (lossless) | points | best with the artifact's lossy deltas |",
        "|---|---|---|---|---|---|",
    ]
    for mode, (t, _p, _n) in results.items():
        for cls in CLASSES:
            g = t[t.traffic_class == cls]
            if g.empty:
                continue
            z = float(g[(g.codec == "zstd") & (g.situation == "original")].ratio.iloc[0])
            lz = g[(g.codec == "lz4") & (g.situation != "original")]
            ll = lz[lz.lossless].loc[lz[lz.lossless].ratio.idxmin()]
            ly = lz.loc[lz.ratio.idxmin()]
            md.append(
                f"| {mode} | {cls} | {z:.3f} | {ll.ratio:.3f} ({ll.situation}) | {100 * (z - ll.ratio):+.0f} | "
                f"{ly.ratio:.3f} ({ly.situation}{'' if ly.lossless else ', lossy'}) |"
            )
    md += [
        "",
        "## Where this differs from NetZIP, and why",
        "",
        "- Plain LZ4 and Snappy leave bf16 gradients and activations at 0.99-1.00 of their size, as NetZIP",
        "  reports: the low byte (one exponent bit and seven mantissa bits) is close to random.",
        "- NetZIP-style transforms (delta against a per-tensor base, bit grouping) with LZ4 reach 0.71-0.74",
        "  losslessly: 26-29 points better than plain LZ4 but only a few points better than Zstd or zlib on",
        "  the raw bytes, far from NetZIP's 40-75 points over 'heavy' codecs. The gap to plain LZ4 is the",
        "  comparable figure; NetZIP's 67%/70% volume reduction against LZ4 corresponds to ratios of",
        "  0.33/0.30, which no lossless variant reaches here.",
        "- Part of the gap is the artifact's float delta, which is lossy: subtracting in float32 and rounding",
        "  to bf16 maps many inputs to one output. Its figures (diff_min*, marked lossy) are 5-9 points",
        "  better than any lossless variant here; they cannot be decoded back. Subtracting bit patterns",
        "  (lossless) captures less of the exponent redundancy than subtracting values.",
        "- 4 KB packets (the NIC's granularity) cost 1-6 points for the delta + bit grouping variants and",
        "  much more for byte grouping (0.80 -> 0.94 on fine-tuning gradients): each packet restarts LZ4's",
        "  window and carries too few values per bit plane for long runs.",
        "- Delta base: the tensor's minimum is best or tied for every class (within 1 point of the mean and",
        "  of the artifact's previous-step 1st percentile); the median is worse for gradients; the delta",
        "  against the previous iteration (diff_int) is the worst lossless choice, because one AdamW step",
        "  changes nearly every bf16 value's low bits.",
        "- Fine-tuning vs pre-training: gradients and activations compress alike (0.71 vs 0.72 with LZ4);",
        "  activation gradients differ (0.43 vs 0.72) because the masked-LM loss of fine-tuning touches only",
        "  15% of positions, leaving runs of zeros. These are small models (22.7M and 3.4M parameters,",
        "  sequence 128); NetZIP measured Llama-3.2-1B at sequence 4096, whose larger activations may be",
        "  more regular. The simulator's netzip-in-nic profile keeps NetZIP's reported ratios;",
        "  netzip-measured uses the pre-training ones (calibration/codec_ratios.yaml), since the study",
        "  simulates pre-training, and per 4 KB packet, since the engine compresses packets.",
        "- fp32 gradient buckets compress better than bf16 gradients (0.59 vs 0.74 per packet with LZ4):",
        "  summing a few bf16 micro-batch gradients in fp32 leaves the low mantissa bytes far from random",
        "  (with one micro-batch they are all zero and the ratio falls below 0.5). The measured value",
        f"  depends on how many micro-batches are accumulated ({ACCUMULATE} here); Megatron runs often use",
        "  more, which fills more low bits. NetZIP's open question, whether its bf16-derived ratio applied",
        "  to the fp32 reduce-scatter, is answered here by measuring the fp32 buckets themselves.",
        "- These fp32 ratios are of single-rank gradients; a ring reduce-scatter sends partial sums of",
        "  several ranks, whose low bits are fuller still.",
    ]
    (HERE / "codec_ratios.md").write_text("\n".join(md) + "\n")
    print("wrote", HERE / "codec_ratios.md", HERE / "codec_ratios.yaml")


if __name__ == "__main__":
    main()  # the analyzer's spawned workers re-import this module; main() runs only here
