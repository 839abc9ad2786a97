"""What every executor returns: SimAI's categories (microseconds) plus per-row detail."""

from __future__ import annotations

from dataclasses import dataclass, field

SUMMARY_FIELDS = (
    "exposed_dp_us",
    "exposed_dp_ep_us",
    "exposed_tp_us",
    "exposed_ep_us",
    "exposed_pp_us",
    "bubble_us",
    "compute_us",
    "exposed_comm_us",
    "total_us",
)


@dataclass
class RowReport:
    """One workload row: compute (ns), exposed and total comm (ns), (algbw, busbw) in GiB/s."""

    name: str
    fwd_compute: int
    wg_compute: int
    ig_compute: int
    fwd_exposed: int
    wg_exposed: int
    ig_exposed: int
    fwd_total: int
    wg_total: int
    ig_total: int
    fwd_bw: tuple[float, float]
    wg_bw: tuple[float, float]
    ig_bw: tuple[float, float]


@dataclass
class Breakdown:
    """One iteration in SimAI's categories (microseconds), with per-row reports (closed-form and
    SimAI-compatible executors), a timeline of spans per stage or rank, and model extras (flows,
    link utilisation, codec accounting). Every executor builds it with `from_parts`."""

    exposed_dp_us: float = 0.0
    exposed_dp_ep_us: float = 0.0
    exposed_tp_us: float = 0.0
    exposed_ep_us: float = 0.0
    exposed_pp_us: float = 0.0
    bubble_us: float = 0.0
    compute_us: float = 0.0
    exposed_comm_us: float = 0.0
    total_us: float = 0.0
    rows: list[RowReport] = field(default_factory=list)
    truncated_at: int | None = None  # SimAI-compatible mode: row where SimAI's report would stop
    extra: dict = field(default_factory=dict)
    # Spans per process label: [(thread, name, start_ns, duration_ns, category[, args])]; collective
    # spans carry args (bytes, group, op, achieved bandwidth) for the trace.
    timeline: dict[str, list[tuple[str, str, float, float, str]]] = field(default_factory=dict)

    @classmethod
    def from_parts(
        cls, *, compute: float, total: float, tp: float = 0.0, ep: float = 0.0, pp: float = 0.0,
        bubble: float = 0.0, dp: float | None = None, comm: float | None = None, **rest,
    ) -> Breakdown:  # fmt: skip
        """The breakdown of measured parts (us); exposed DP defaults to what the other parts leave of
        the total, exposed communication to the sum of the exposed parts."""
        if dp is None:
            dp = max(0.0, total - compute - tp - ep - pp - bubble)
        if comm is None:
            comm = tp + ep + pp + dp
        return cls(
            compute_us=compute, total_us=total, exposed_tp_us=tp, exposed_ep_us=ep, exposed_pp_us=pp,
            bubble_us=bubble, exposed_dp_us=dp, exposed_comm_us=comm, **rest,
        )  # fmt: skip

    @staticmethod
    def spans_ns(spans_s: list) -> list[tuple[str, str, float, float, str]]:
        """Spans recorded on a SimPy clock (seconds) in the timeline's unit (nanoseconds)."""
        return [(thread, name, start * 1e9, dur * 1e9, cat, *more) for thread, name, start, dur, cat, *more in spans_s]

    def summary(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in SUMMARY_FIELDS}
