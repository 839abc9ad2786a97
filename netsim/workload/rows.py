"""A SimAI/AICB workload file as records (simai_file.py reads and writes it; program.py is the
format the simulator runs).

It is SimAI's layer list (reference/simai.md section 2): one pipeline stage, gradient
accumulation unrolled, each row with three (compute, collective) phases: forward, input
gradient (ig) and weight gradient (wg). fwd/ig collectives block; wg collectives do not.
Times are integer nanoseconds, sizes integer bytes, as in the file format.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netsim.workload.program import ACTIVATION, ACTIVATION_GRAD, GRADIENT


@dataclass(frozen=True)
class Row:
    name: str
    fwd_compute: int
    fwd_comm: str
    fwd_bytes: int
    ig_compute: int
    ig_comm: str
    ig_bytes: int
    wg_compute: int
    wg_comm: str
    wg_bytes: int
    update: int = 100
    dependency: int = -1
    # netsim metadata (not in the file): traffic class of each phase's collective.
    fwd_class: str = ACTIVATION
    ig_class: str = ACTIVATION_GRAD
    wg_class: str = GRADIENT

    def phases(self):
        """(phase, compute_ns, comm_type, bytes, traffic_class) in file column order."""
        return (
            ("fwd", self.fwd_compute, self.fwd_comm, self.fwd_bytes, self.fwd_class),
            ("ig", self.ig_compute, self.ig_comm, self.ig_bytes, self.ig_class),
            ("wg", self.wg_compute, self.wg_comm, self.wg_bytes, self.wg_class),
        )


@dataclass
class Workload:
    """One pipeline stage's rows plus the header of a SimAI workload file."""

    tp: int
    pp: int
    ga: int
    vpp: int
    all_gpus: int
    rows: list[Row]
    ep: int = 1
    pp_comm: str = "0"  # kept as written: AICB prints a float ("8388608.0") under SP
    checkpoints: int = 0
    checkpoint_initiates: int = 0
    trailing_newline: bool = True
    source: str = ""
    # What the builder knew (absent for files read from disk).
    meta: dict = field(default_factory=dict)

    @property
    def pp_comm_bytes(self) -> int:
        return leading_int(self.pp_comm)

    def dp(self, gpus: int | None = None) -> int:
        return (gpus or self.all_gpus) // (self.tp * self.pp)


def leading_int(token: str) -> int:
    """C++ stoi: the leading integer of a token ('8388608.0' -> 8388608)."""
    s = token.strip()
    n = 0
    sign = 1
    i = 0
    if s[:1] in "+-":
        sign = -1 if s[0] == "-" else 1
        i = 1
    digits = ""
    while i < len(s) and s[i].isdigit():
        digits += s[i]
        i += 1
    if not digits:
        raise ValueError(f"expected an integer, got {token!r}")
    n = int(digits)
    return sign * n
