"""A compression stage on the NICs' path, and what it costs (DESIGN.md "NIC compression stages").

Per message of S bytes with ratio r (compressed/original), compress and decompress throughputs
Tc, Td, per-message latency l, and extra copies at bandwidth C:
- a software (not pipelined) codec compresses, then sends r*S, then decompresses:
  S/Tc + l + k*S/C  +  r*S/B  +  S/Td + l + k*S/C   (DLRM's 1/(r + B(1/Tc + 1/Td)) speed-up,
  reference/peers.md section 4);
- a pipelined engine (NetZIP's bump-in-the-wire, reference/netzip.md section 5) compresses while
  it transmits: the flow carries r*S wire bytes at most at the engine's rate, plus its fill latency.
In reduce collectives every step decompresses, reduces and recompresses its chunk; all-gather and
pipeline sends forward data compressed once. The flow backend applies this as a weight r on every
link of the flow (wire bytes), a rate cap (pipelined engine), and delays (software codec).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from netsim.config.compression import CompressionProfile, Ratios
from netsim.config.loader import load_model, read_yaml
from netsim.errors import InputError
from netsim.resources import CALIBRATION

PROFILE_DIR = CALIBRATION / "compression"
GROUP_OF_KIND = {"TP": "tp", "DP": "dp", "DP_EP": "dp", "EP": "ep", "PP": "pp"}


def list_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name_or_file: str) -> CompressionProfile:
    p = Path(name_or_file)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.exists():
            raise InputError("file not found", where=str(p))
        prof = load_model(CompressionProfile, p)
        base = p.parent
    else:
        f = PROFILE_DIR / f"{name_or_file}.yaml"
        if not f.exists():
            raise InputError(
                f"unknown compression profile {name_or_file!r}; expected one of "
                f"{', '.join(list_profiles())} or a YAML file",
                field="--compression",
            )
        prof = load_model(CompressionProfile, f)
        base = f.parent
    if isinstance(prof.ratios, str):
        prof = prof.model_copy(update={"ratios": _analyzer_ratios(base / prof.ratios)})
    return prof


def _analyzer_ratios(path: Path) -> Ratios:
    """A ratio profile written by `netsim analyze` ({traffic_class: ratio, ...} under `ratios`)."""
    data = read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("ratios"), dict):
        raise InputError("expected a ratio profile with a 'ratios' mapping", where=str(path), field="ratios")
    try:
        return Ratios.model_validate(data["ratios"])
    except Exception as e:
        raise InputError(f"bad ratios ({e})", where=str(path), field="ratios") from None


@dataclass
class Accounting:
    """Bytes and codec time per traffic class (for the result report)."""

    bytes_in: dict = field(default_factory=dict)
    bytes_wire: dict = field(default_factory=dict)
    codec_s: dict = field(default_factory=dict)

    def add(self, traffic: str, original: float, wire: float, codec: float) -> None:
        self.bytes_in[traffic] = self.bytes_in.get(traffic, 0.0) + original
        self.bytes_wire[traffic] = self.bytes_wire.get(traffic, 0.0) + wire
        self.codec_s[traffic] = self.codec_s.get(traffic, 0.0) + codec

    def report(self) -> dict:
        return {
            t: {
                "bytes": self.bytes_in[t],
                "wire_bytes": self.bytes_wire[t],
                "bytes_saved": self.bytes_in[t] - self.bytes_wire[t],
                "codec_time_us": self.codec_s[t] * 1e6,
            }
            for t in sorted(self.bytes_in)
        }


class CompressionStage:
    def __init__(self, profile: CompressionProfile):
        self.p = profile
        self.acct = Accounting()

    @property
    def active(self) -> bool:
        return self.p.placement != "none"

    @property
    def pipelined(self) -> bool:
        return self.p.pipelined or self.p.placement == "in-nic"

    def applies(self, traffic: str, kind: str) -> bool:
        return self.active and traffic in self.p.classes and GROUP_OF_KIND.get(kind, "dp") in self.p.groups

    def ratio(self, traffic: str) -> float:
        r = self.p.ratios.of(traffic)
        if self.p.lossy is not None:
            r *= self.p.lossy.ratio
        if self.p.raw_fallback:
            r = min(r, 1.0)  # a packet that does not shrink is sent raw
        return r

    def engine_rate(self) -> float:
        """Uncompressed bytes/s a pipelined engine sustains."""
        return min(self.p.compress_throughput, self.p.decompress_throughput)

    def _copies(self, size: float) -> float:
        return self.p.copies_per_side * size / self.p.copy_bandwidth if self.p.copies_per_side else 0.0

    def compress_s(self, size: float) -> float:
        t = size / self.p.compress_throughput + self.p.latency + self._copies(size)
        if self.p.lossy is not None and self.p.lossy.quantize_throughput:
            t += size / self.p.lossy.quantize_throughput
        return t

    def decompress_s(self, size: float) -> float:
        return size / self.p.decompress_throughput + self.p.latency + self._copies(size)

    def collective_codec_s(self, op: str, n: int, size: float) -> float:
        """Codec time on a ring's critical path (software codec): per step, the step's chunk."""
        if n <= 1 or self.pipelined:
            return 0.0
        chunk = size / n
        if op in ("allreduce", "reducescatter"):
            red = n - 1
            s = red * (self.compress_s(chunk) + self.decompress_s(chunk))
            if op == "allreduce":  # the all-gather half forwards compressed chunks
                s += (n - 1) * self.decompress_s(chunk)
            return s
        if op in ("allgather", "alltoall"):
            return self.compress_s(chunk) + (n - 1) * self.decompress_s(chunk)
        return self.compress_s(size) + self.decompress_s(size)

    def pipeline_latency_s(self, op: str, n: int) -> float:
        """A pipelined engine's fill latency, once per step."""
        if not self.pipelined:
            return 0.0
        from netsim.collectives.closed_form import steps

        return steps(op, n) * self.p.latency

    # ---- analytical backend ------------------------------------------------------------------
    def closed_form_s(self, op: str, n: int, size: float, bw: float, alpha: float, traffic: str, kind: str) -> float:
        from netsim.collectives.closed_form import bus_factor, collective_time, steps

        if not self.applies(traffic, kind) or size <= 0:
            return collective_time(op, n, size, bw, alpha)
        r = self.ratio(traffic)
        if self.pipelined:
            rate = min(bw / r, self.engine_rate())
            t = steps(op, n) * (alpha + self.p.latency) + bus_factor(op, n) * size / rate
            self.acct.add(traffic, bus_factor(op, n) * size, bus_factor(op, n) * size * r, 0.0)
            return t
        codec = self.collective_codec_s(op, n, size)
        t = collective_time(op, n, size * r, bw, alpha) + codec
        self.acct.add(traffic, bus_factor(op, n) * size, bus_factor(op, n) * size * r, codec)
        return t

    # ---- flow backend --------------------------------------------------------------------------
    def attach(self, coll) -> None:
        coll.compression = self


def load_stage(name_or_file: str | None) -> CompressionStage | None:
    if not name_or_file:
        return None
    stage = CompressionStage(load_profile(name_or_file))
    return stage if stage.active else None
