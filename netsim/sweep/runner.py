"""Run sweep points on a local process pool or a Dask cluster, writing each row as it finishes.

`DIR/results.csv` grows one row per finished run (flushed, so a killed sweep loses nothing);
`--resume` skips points whose run_id is already there. At the end the table is rewritten in
point order and saved as Parquet too, so results do not depend on worker count or timing.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pandas as pd

from netsim.errors import InputError, read_text
from netsim.sweep.grid import Point
from netsim.system.result import SUMMARY_FIELDS

FIXED = ("index", "run_id", "status", "error")
METRICS = SUMMARY_FIELDS + (
    "tp",
    "pp",
    "dp",
    "microbatches",
    "gpus",
    "nic_bandwidth_gbps",
    "topology_name",
    "leaf_oversubscription",
)


def run_point(index: int, params: dict) -> dict:
    """Run one point; never raises (a failed run becomes a row with its error)."""
    from netsim.simulate import RunSpec, run

    row = {"index": index, "status": "ok", "error": ""}
    try:
        res = run(RunSpec.parse(params, where=f"sweep point {index}"), detail=False).to_dict()
        for k in SUMMARY_FIELDS:
            row[k] = res[k]
        par = res["config"].get("parallelism", {})
        for k in ("tp", "pp", "dp", "microbatches"):
            row[k] = par.get(k)
        row["gpus"] = res["config"]["topology"]["gpus"]
        row["nic_bandwidth_gbps"] = res["config"]["topology"]["nic_bandwidth_gbps"]
        row["topology_name"] = res["config"]["topology"]["name"]
        row["leaf_oversubscription"] = res["config"]["topology"]["leaf_oversubscription"]
    except InputError as e:
        row.update(status="error", error=str(e))
    except Exception as e:  # a sweep must survive any one run
        row.update(status="error", error=f"{type(e).__name__}: {e}")
    return row


def param_column(key: str) -> str:
    """A swept parameter's column: its name, or `param.<name>` where a result has that name (a swept
    `tp` and the resolved `tp` are different columns; pandas and Parquet need unique names)."""
    return f"param.{key}" if key in METRICS or key in FIXED else key


def columns(param_keys: Iterable[str]) -> list[str]:
    return list(FIXED) + [param_column(k) for k in sorted(param_keys)] + list(METRICS)


def read_done(path: Path, cols: list[str]) -> dict[str, dict]:
    """Rows already written, by run_id; a half-written last line (killed mid-write) is dropped."""
    if not path.exists():
        return {}
    done = {}
    reader = csv.reader(io.StringIO(read_text(path, "results table"), newline=""))
    header = next(reader, None)
    if header is None:
        return {}
    if header != cols:
        raise InputError("results.csv was written by a different sweep (its columns differ)", where=str(path))
    for rec in reader:
        if len(rec) != len(cols):
            continue
        row = dict(zip(cols, rec))
        done[row["run_id"]] = row
    return done


def execute(
    points: list[Point],
    out: Path,
    workers: int = 1,
    dask: str | None = None,
    resume: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "results.csv"
    param_keys = sorted({k for p in points for k in p.params})
    cols = columns(param_keys)
    if csv_path.exists() and not resume:
        raise InputError(
            "results already exist; use --resume to finish them or choose another --out", where=str(csv_path)
        )
    identity = out / "sweep_points.json"
    ids = [p.run_id for p in points]
    if resume and identity.exists():
        try:
            previous = json.loads(read_text(identity, "sweep identity"))
        except json.JSONDecodeError:
            previous = None
        if previous != ids:
            raise InputError(
                "these results belong to a different sweep (its points differ); choose another --out",
                where=str(out),
            )
    done = read_done(csv_path, cols) if resume else {}
    if resume and done:
        _rewrite(csv_path, cols, list(done.values()))  # drop any torn line before appending
    todo = [p for p in points if p.run_id not in done]
    by_index = {p.index: p for p in points}
    new_file = not csv_path.exists()
    identity.write_text(json.dumps(ids))
    with open(csv_path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        if new_file:
            writer.writeheader()
            f.flush()
        finished = 0
        for row in _results(todo, workers, dask):
            p = by_index[row["index"]]
            row["run_id"] = p.run_id
            row.update({param_column(k): _cell(p.params.get(k)) for k in param_keys})
            writer.writerow(row)
            f.flush()
            os.fsync(f.fileno())
            finished += 1
            if progress:
                progress(finished, len(todo))
    df = _finalise(csv_path, cols)
    return df


def _cell(v):
    return "" if v is None else v


def _results(todo: list[Point], workers: int, dask: str | None):
    if not todo:
        return
    if dask:
        yield from _dask_results(todo, workers, dask)
    elif workers <= 1:
        for p in todo:
            yield run_point(p.index, p.params)
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=_exit_with_parent, initargs=(os.getpid(),)) as pool:
            futs = [pool.submit(run_point, p.index, p.params) for p in todo]
            for fut in as_completed(futs):
                yield fut.result()


def _exit_with_parent(parent: int) -> None:
    """Pool worker start-up: a thread that ends the worker once its parent is gone (a killed sweep
    must not leave simulations running)."""
    import threading
    import time

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()


def _dask_results(todo: list[Point], workers: int, address: str):
    try:
        from distributed import Client, LocalCluster
        from distributed import as_completed as dask_completed
    except ImportError:
        raise InputError("--dask needs dask.distributed: pip install -e '.[dask]'", field="--dask") from None
    cluster = None
    if address == "local":
        cluster = LocalCluster(
            n_workers=max(1, workers), threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
        )
        client = Client(cluster)
    else:
        try:
            client = Client(address, timeout="10s")
        except OSError as e:
            raise InputError(f"cannot reach the Dask scheduler ({e})", field="--dask") from None
    try:
        futs = [client.submit(run_point, p.index, p.params, pure=False) for p in todo]
        for fut in dask_completed(futs):
            yield fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _rewrite(path: Path, cols: list[str], rows: list[dict]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def _finalise(csv_path: Path, cols: list[str]) -> pd.DataFrame:
    df = pd.read_csv(csv_path, keep_default_na=False, na_values=[""])
    df = df.drop_duplicates(subset="run_id", keep="first").sort_values("index").reset_index(drop=True)
    tmp = csv_path.with_suffix(".csv.tmp")
    df.to_csv(tmp, index=False, columns=cols)
    os.replace(tmp, csv_path)
    try:
        df.to_parquet(csv_path.with_suffix(".parquet"), index=False)
    except ImportError:
        pass  # pyarrow is a dependency; this only guards exotic installs
    return df
