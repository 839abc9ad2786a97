"""What every backend returns: SimAI's categories (microseconds) plus per-row detail."""

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
    # Spans per process label: [(thread, name, start_ns, duration_ns, category)].
    timeline: dict[str, list[tuple[str, str, float, float, str]]] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in SUMMARY_FIELDS}
