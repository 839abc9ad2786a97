"""Run the analyzer over files and write its tables: per-tensor rows, the artifact's per-file
CSVs, byte-weighted aggregates per traffic class, and a ratio profile for compression stages."""

from __future__ import annotations

import csv
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import yaml

from netsim.codecs.analyzer import LOSSY, analyze_tensor
from netsim.codecs.tensors import TensorFile, load

ROW_FIELDS = (
    "file",
    "traffic_class",
    "codec",
    "situation",
    "uncompressed_bytes",
    "compressed_bytes",
    "ratio",
    "lossless",
    "compress_MBps",
    "decompress_MBps",
)


def analyze_file(tf: TensorFile, codecs, situations, granularity, packet_size, dtype, min_size) -> list[dict]:
    if tf.path.stat().st_size < min_size:
        return []
    u, raw = load(tf.path, dtype)
    if u.size == 0:
        return []
    prev = load(tf.prev, dtype)[0] if tf.prev is not None else None
    rows = []
    for r in analyze_tensor(u, prev, raw, codecs, situations, granularity, packet_size):
        rows.append(
            {
                "file": str(tf.path),
                "traffic_class": tf.traffic_class,
                "codec": r.codec,
                "situation": r.situation,
                "uncompressed_bytes": r.uncompressed_bytes,
                "compressed_bytes": r.compressed_bytes,
                "ratio": r.ratio,
                "lossless": r.lossless,
                "compress_MBps": r.compress_MBps,
                "decompress_MBps": r.decompress_MBps,
            }
        )
    return rows


def run(
    files: list[TensorFile],
    codecs,
    situations,
    granularity="tensor",
    packet_size=4096,
    dtype=None,
    min_size=0,
    workers=1,
    progress=None,
) -> pd.DataFrame:
    args = (codecs, situations, granularity, packet_size, dtype, min_size)
    rows: list[dict] = []
    if workers <= 1:
        for i, tf in enumerate(files):
            rows += analyze_file(tf, *args)
            if progress:
                progress(i + 1, len(files))
    else:
        # spawn, not fork: a process that has used PyTorch (collect, or unpickling tensors) cannot
        # safely fork workers that use it again (its thread pools deadlock in the child).
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for i, part in enumerate(pool.map(analyze_file, files, *[[a] * len(files) for a in args])):
                rows += part
                if progress:
                    progress(i + 1, len(files))
    return pd.DataFrame(rows, columns=list(ROW_FIELDS))


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """Byte-weighted ratio per traffic class, codec and situation: Σ compressed / Σ uncompressed."""
    g = df.groupby(["traffic_class", "codec", "situation"], as_index=False).agg(
        uncompressed_bytes=("uncompressed_bytes", "sum"),
        compressed_bytes=("compressed_bytes", "sum"),
        lossless=("lossless", "all"),
        tensors=("file", "count"),
    )
    g["ratio"] = g["compressed_bytes"] / g["uncompressed_bytes"]
    return g


def ratio_profile(agg: pd.DataFrame, codec: str, situation: str | None = None) -> dict:
    """Ratios per traffic class for `codec`: the given situation, or the best lossless one per class."""
    sub = agg[(agg["codec"] == codec) & agg["lossless"] & ~agg["situation"].isin(LOSSY)]
    ratios, chosen = {}, {}
    for cls, g in sub.groupby("traffic_class"):
        if situation is not None:
            g = g[g["situation"] == situation]
            if g.empty:
                continue
        best = g.loc[g["ratio"].idxmin()]
        ratios[cls] = round(float(best["ratio"]), 4)
        chosen[cls] = str(best["situation"])
    if ratios:
        ratios.setdefault("default", round(max(ratios.values()), 4))
    return {"codec": codec, "situations": chosen, "ratios": ratios}


def write_outputs(df: pd.DataFrame, out: Path, codec: str, situation: str | None, artifact_csv: bool) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "tensors.csv", index=False)
    agg = aggregate(df)
    agg.to_csv(out / "aggregate.csv", index=False)
    prof = ratio_profile(agg, codec, situation)
    prof["source"] = "netsim analyze (byte-weighted over the analysed tensors)"
    (out / "ratio_profile.yaml").write_text(yaml.safe_dump(prof, sort_keys=False))
    if artifact_csv:
        per = out / "per_file"
        per.mkdir(exist_ok=True)
        for f, g in df.groupby("file"):
            with open(per / f"{Path(f).name}.csv", "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["algorithm", "situation", "uncompressed_size", "compressed_size", "compression_ratio"])
                for r in g.itertuples():
                    w.writerow(
                        [
                            r.codec,
                            r.situation,
                            r.uncompressed_bytes,
                            r.compressed_bytes,
                            r.ratio if r.uncompressed_bytes else "",
                        ]
                    )
    return prof
