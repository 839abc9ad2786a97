"""SimAI.conf, the ns-3 backend's transport configuration (reference/simai_ns3_semantics.md section 4).

Each line is `KEY value...`; the `*_MAP` keys hold `n rate value rate value ...` tables keyed by
link rate (bits/s). Every key SimAI's ReadConf knows is typed here; a key it does not know is
reported (`unknown`), never guessed. Monitor and output file names are kept as text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from netsim.errors import InputError, read_text
from netsim.units import parse_bandwidth

NUMERIC = {
    "ENABLE_QCN", "USE_DYNAMIC_PFC_THRESHOLD", "PACKET_PAYLOAD_SIZE", "SIMULATOR_STOP_TIME", "CC_MODE",
    "ALPHA_RESUME_INTERVAL", "RATE_DECREASE_INTERVAL", "CLAMP_TARGET_RATE", "RP_TIMER", "EWMA_GAIN",
    "FAST_RECOVERY_TIMES", "ERROR_RATE_PER_LINK", "L2_CHUNK_SIZE", "L2_ACK_INTERVAL", "L2_BACK_TO_ZERO",
    "HAS_WIN", "GLOBAL_T", "VAR_WIN", "FAST_REACT", "U_TARGET", "MI_THRESH", "INT_MULTI", "MULTI_RATE",
    "SAMPLE_FEEDBACK", "PINT_LOG_BASE", "PINT_PROB", "RATE_BOUND", "ACK_HIGH_PRIO", "ENABLE_TRACE", "BUFFER_SIZE",
    "MON_START", "MON_END", "QP_MON_INTERVAL", "QLEN_MON_INTERVAL", "BW_MON_INTERVAL", "NVLS_ENABLE",
}  # fmt: skip
RATES = {"RATE_AI", "RATE_HAI", "MIN_RATE", "DCTCP_RATE_AI"}
MAPS = {"KMAX_MAP", "KMIN_MAP", "PMAX_MAP"}
TEXT = {
    "FLOW_FILE", "TRACE_FILE", "TRACE_OUTPUT_FILE", "FCT_OUTPUT_FILE", "PFC_OUTPUT_FILE", "QLEN_MON_FILE",
    "BW_MON_FILE", "RATE_MON_FILE", "CNP_MON_FILE", "LINK_DOWN",
}  # fmt: skip


@dataclass
class SimaiConf:
    """What a SimAI.conf sets: numbers, rates (bytes/s), per-link-rate marking tables, file names,
    and the keys netsim does not know."""

    values: dict[str, float] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    maps: dict[str, dict[float, float]] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    source: str = ""

    @property
    def payload(self) -> int:
        """Packet payload in bytes (SimAI's default 1000 when the file does not say)."""
        return int(self.values.get("PACKET_PAYLOAD_SIZE", 1000))

    def marking(self, link_bps: float) -> tuple[float, float, float] | None:
        """(KMIN bytes, KMAX bytes, PMAX) of a port at `link_bps` (SimAI's tables are in KB)."""
        if not all(k in self.maps for k in MAPS) or link_bps not in self.maps["KMIN_MAP"]:
            return None
        return (self.maps["KMIN_MAP"][link_bps] * 1000, self.maps["KMAX_MAP"][link_bps] * 1000,
                self.maps["PMAX_MAP"][link_bps])  # fmt: skip

    def marking_rates(self) -> list[float] | None:
        """The link rates (bits/s) the ECN maps cover, or None when a map is missing."""
        if not all(k in self.maps for k in MAPS):
            return None
        return sorted(set(self.maps["KMIN_MAP"]) & set(self.maps["KMAX_MAP"]) & set(self.maps["PMAX_MAP"]))

    def summary(self) -> dict:
        return {"payload_bytes": self.payload, "cc_mode": self.values.get("CC_MODE"), "has_win": self.values.get("HAS_WIN"),
                "buffer_MB": self.values.get("BUFFER_SIZE"), "unknown_keys": self.unknown}  # fmt: skip


def _map(key: str, parts: list[str], where: str) -> dict[float, float]:
    try:
        n = int(parts[0])
        vals = [float(x) for x in parts[1 : 1 + 2 * n]]
    except (ValueError, IndexError):
        raise InputError("expected 'n rate value ...' with n pairs", where=where, field=key) from None
    if len(vals) != 2 * n:
        raise InputError(f"expected {n} (rate, value) pairs, got {len(vals) // 2}", where=where, field=key)
    return dict(zip(vals[0::2], vals[1::2]))


def parse_simai_conf(text: str, where: str = "SimAI.conf") -> SimaiConf:
    conf = SimaiConf(source=where)
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        key, rest, at = parts[0], parts[1:], f"{where}:{lineno}"
        if key in MAPS:
            conf.maps[key] = _map(key, rest, at)
        elif key in RATES:
            conf.rates[key] = parse_bandwidth(_rate_text(rest, key, at))
        elif key in NUMERIC:
            try:
                conf.values[key] = float(rest[0])
            except (ValueError, IndexError):
                raise InputError(f"expected a number, got {' '.join(rest)!r}", where=at, field=key) from None
        elif key in TEXT:
            conf.text[key] = " ".join(rest)
        else:
            conf.unknown.append(key)
    return conf


def _rate_text(rest: list[str], key: str, where: str) -> str:
    """SimAI writes rates as `50Mb/s`; netsim's parser wants `50 Mbps`."""
    if not rest:
        raise InputError("expected a rate like 50Mb/s", where=where, field=key)
    v = rest[0]
    for unit, ours in (("Gb/s", " Gbps"), ("Mb/s", " Mbps"), ("Kb/s", " Kbps"), ("b/s", " bps")):
        if v.endswith(unit):
            return v[: -len(unit)] + ours
    raise InputError(f"expected a rate like 50Mb/s, got {v!r}", where=where, field=key)


def load_simai_conf(path: str | Path) -> SimaiConf:
    return parse_simai_conf(read_text(path, "SimAI.conf"), str(path))
