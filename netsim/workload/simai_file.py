"""Read and write SimAI/AICB workload files (`HYBRID_TRANSFORMER_FWD_IN_BCKWD`).

Format: reference/simai.md section 2 and reference/aicb_workload_spec.md section 3. Header
tokens are parsed like SimAI does (the token after each key, leading integer, as stoi);
rows have 12 whitespace-separated fields; AICB writes them tab-separated, one per line.
"""

from __future__ import annotations

from pathlib import Path

from netsim.errors import InputError, read_text
from netsim.workload.program import (
    ALLGATHER,
    ALLREDUCE,
    ALLTOALL,
    DP,
    DP_EP,
    EP,
    NO_GROUP,
    REDUCESCATTER,
    TP,
    Layer,
    LayerProgram,
    Phase,
)
from netsim.workload.rows import Row, Workload, leading_int

POLICY = "HYBRID_TRANSFORMER_FWD_IN_BCKWD"
_KEYS = {
    "model_parallel_NPU_group:": "tp",
    "ep:": "ep",
    "pp:": "pp",
    "vpp:": "vpp",
    "ga:": "ga",
    "all_gpus:": "all_gpus",
    "checkpoints:": "checkpoints",
    "checkpoint_initiates:": "checkpoint_initiates",
    "pp_comm:": "pp_comm",
    "pp_comm": "pp_comm",
}
_COMM_PREFIXES = ("NONE", "ALLREDUCE", "ALLGATHER", "REDUCESCATTER", "ALLTOALL", "BROADCAST")


def parse_simai_workload(text: str, where: str = "<workload>") -> Workload:
    lines = text.split("\n")
    if not lines or not lines[0].strip():
        raise InputError(f"expected a header line starting with {POLICY}", where=f"{where}:1")
    head = lines[0].split()
    if head[0] != POLICY:
        raise InputError(f"expected a header line starting with {POLICY}, got {head[0]!r}", where=f"{where}:1")
    vals: dict[str, object] = {
        "tp": 1,
        "ep": 1,
        "pp": 1,
        "vpp": 1,
        "ga": 1,
        "all_gpus": 0,
        "checkpoints": 0,
        "checkpoint_initiates": 0,
        "pp_comm": "0",
    }
    for i, tok in enumerate(head[:-1]):
        key = _KEYS.get(tok)
        if key is None:
            continue
        nxt = head[i + 1]
        try:
            vals[key] = nxt if key == "pp_comm" else leading_int(nxt)
            if key == "pp_comm":
                leading_int(nxt)
        except ValueError:
            raise InputError(
                f"expected an integer after {tok!r}, got {nxt!r}", where=f"{where}:1", field=tok.rstrip(":")
            ) from None
    for key in ("tp", "pp", "ga", "vpp"):
        if int(vals[key]) < 1:
            raise InputError(f"expected a positive {key}, got {vals[key]}", where=f"{where}:1", field=key)
    if len(lines) < 2 or not lines[1].strip().isdigit():
        raise InputError("expected the row count on line 2", where=f"{where}:2")
    n = int(lines[1].strip())
    rows: list[Row] = []
    lineno = 2
    for ln in lines[2:]:
        lineno += 1
        if not ln.strip():
            continue
        if len(rows) == n:
            raise InputError(f"more rows than the {n} announced on line 2", where=f"{where}:{lineno}")
        rows.append(_parse_row(ln, f"{where}:{lineno}"))
    if len(rows) != n:
        raise InputError(f"line 2 announces {n} rows, the file has {len(rows)}", where=f"{where}:2")
    return Workload(
        tp=int(vals["tp"]),
        ep=int(vals["ep"]),
        pp=int(vals["pp"]),
        vpp=int(vals["vpp"]),
        ga=int(vals["ga"]),
        all_gpus=int(vals["all_gpus"]),
        checkpoints=int(vals["checkpoints"]),
        checkpoint_initiates=int(vals["checkpoint_initiates"]),
        pp_comm=str(vals["pp_comm"]),
        rows=rows,
        trailing_newline=text.endswith("\n"),
        source=where,
    )


def _parse_row(line: str, where: str) -> Row:
    tok = line.split()
    if len(tok) != 12:
        raise InputError(
            f"expected 12 fields (name dep fwd_ns fwd_type fwd_bytes ig_ns ig_type ig_bytes "
            f"wg_ns wg_type wg_bytes update_ns), got {len(tok)}",
            where=where,
        )
    ints = {}
    for idx, label in (
        (1, "dependency"),
        (2, "fwd compute"),
        (4, "fwd bytes"),
        (5, "ig compute"),
        (7, "ig bytes"),
        (8, "wg compute"),
        (10, "wg bytes"),
        (11, "update time"),
    ):
        try:
            ints[idx] = int(tok[idx])
        except ValueError:
            raise InputError(f"expected an integer {label} in field {idx + 1}, got {tok[idx]!r}", where=where) from None
        if idx not in (1,) and ints[idx] < 0:
            raise InputError(f"expected a non-negative {label} in field {idx + 1}, got {tok[idx]}", where=where)
    for idx in (3, 6, 9):
        if not tok[idx].startswith(_COMM_PREFIXES):
            raise InputError(
                f"expected a collective type (NONE, ALLREDUCE, ALLGATHER, REDUCESCATTER, "
                f"ALLTOALL...) in field {idx + 1}, got {tok[idx]!r}",
                where=where,
            )
    return Row(
        name=tok[0],
        dependency=ints[1],
        fwd_compute=ints[2],
        fwd_comm=tok[3],
        fwd_bytes=ints[4],
        ig_compute=ints[5],
        ig_comm=tok[6],
        ig_bytes=ints[7],
        wg_compute=ints[8],
        wg_comm=tok[9],
        wg_bytes=ints[10],
        update=ints[11],
    )


def read_simai_workload(path: str | Path) -> Workload:
    text = read_text(path, "workload file")
    return parse_simai_workload(text, where=str(path))


def format_simai_workload(w: Workload) -> str:
    head = (
        f"{POLICY} model_parallel_NPU_group: {w.tp} ep: {w.ep} pp: {w.pp} vpp: {w.vpp} ga: {w.ga} "
        f"all_gpus: {w.all_gpus} checkpoints: {w.checkpoints} "
        f"checkpoint_initiates: {w.checkpoint_initiates} pp_comm: {w.pp_comm}"
    )
    out = [head, str(len(w.rows))]
    for r in w.rows:
        out.append(
            "\t".join(
                str(x)
                for x in (
                    r.name,
                    r.dependency,
                    r.fwd_compute,
                    r.fwd_comm,
                    r.fwd_bytes,
                    r.ig_compute,
                    r.ig_comm,
                    r.ig_bytes,
                    r.wg_compute,
                    r.wg_comm,
                    r.wg_bytes,
                    r.update,
                )
            )
        )
    text = "\n".join(out)
    return text + "\n" if w.trailing_newline else text


# reference/simai.md section 2: the type's prefix is the operation; the bare type is the column's
# default group (TP in fwd/ig, DP in wg), `_EP` and `_DP_EP` name the expert groups.
_OPS = (("ALLREDUCE", ALLREDUCE), ("ALLTOALL", ALLTOALL), ("ALLGATHER", ALLGATHER), ("REDUCESCATTER", REDUCESCATTER))
_SUFFIX = {"_EP": EP, "_DP_EP": DP_EP}


def parse_type(comm: str, column: str) -> tuple[str | None, str]:
    """(op, group) of a SimAI type string in column fwd, ig or wg; (None, NONE) for NONE and types
    SimAI does not simulate (BROADCAST)."""
    for prefix, op in _OPS:
        if comm.startswith(prefix):
            rest = comm[len(prefix) :]
            if rest == "":
                return op, (DP if column == "wg" else TP)
            return op, _SUFFIX.get(rest, NO_GROUP)
    return None, NO_GROUP


def format_type(op: str | None, group: str, column: str) -> str:
    """The SimAI type string of (op, group) in a column: parse_type's inverse."""
    if op is None:
        return "NONE"
    prefix = next(p for p, o in _OPS if o == op)
    if group == (DP if column == "wg" else TP):
        return prefix
    suffix = next((k for k, v in _SUFFIX.items() if v == group), None)
    if suffix is None:
        raise ValueError(f"group {group} has no SimAI type in the {column} column")
    return prefix + suffix


def _phase(compute: int, comm: str, size: int, column: str, traffic: str) -> Phase:
    op, group = parse_type(comm, column)
    return Phase(compute_ns=compute, op=op, group=group, bytes=size, traffic=traffic)


def to_program(w: Workload) -> LayerProgram:
    """The typed program of a SimAI workload (types parsed once, here)."""
    layers = [
        Layer(
            name=r.name,
            fwd=_phase(r.fwd_compute, r.fwd_comm, r.fwd_bytes, "fwd", r.fwd_class),
            ig=_phase(r.ig_compute, r.ig_comm, r.ig_bytes, "ig", r.ig_class),
            wg=_phase(r.wg_compute, r.wg_comm, r.wg_bytes, "wg", r.wg_class),
            update_ns=r.update,
            dependency=r.dependency,
        )
        for r in w.rows
    ]
    return LayerProgram(
        tp=w.tp, pp=w.pp, ga=w.ga, vpp=w.vpp, all_gpus=w.all_gpus, layers=layers, ep=w.ep,
        pp_bytes=w.pp_comm_bytes, source=w.source,
    )  # fmt: skip


def from_program(p: LayerProgram) -> Workload:
    """The SimAI workload file of a layer program (netsim's own workloads, for export)."""
    rows = []
    for x in p.layers:
        cols = []
        for column, ph in (("fwd", x.fwd), ("ig", x.ig), ("wg", x.wg)):
            cols += [ph.compute_ns, format_type(ph.op, ph.group, column), ph.bytes]
        rows.append(Row(x.name, *cols, update=x.update_ns, dependency=x.dependency))
    return Workload(
        tp=p.tp, pp=p.pp, ga=p.ga, vpp=p.vpp, all_gpus=p.all_gpus, rows=rows, ep=p.ep,
        pp_comm=str(p.pp_bytes), source=p.source,
    )  # fmt: skip


def write_simai_workload(w: Workload, path: str | Path) -> None:
    Path(path).write_text(format_simai_workload(w))
