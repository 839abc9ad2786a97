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

from netsim.config.compression import CompressionProfile, load_profile
from netsim.network.lossy import code_fraction, wire_ratio

GROUP_OF_KIND = {"TP": "tp", "ETP": "tp", "DP": "dp", "DP_EP": "dp", "EP": "ep", "PP": "pp"}


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


class NicCodec:
    """The cost model of one codec placement (a compression element on the NICs' path).

    Built with the network and handed to the network model that applies it (the flow model weights
    links and delays flows; the closed-form model prices collectives), never patched on later.
    Knows sizes, ratios and throughputs; nothing about collectives beyond their step counts."""

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
            r = wire_ratio(self.p.lossy, r)
        if self.p.raw_fallback:
            r = min(r, 1.0)  # a packet that does not shrink is sent raw
        return r

    def engine_rate(self) -> float:
        """Uncompressed bytes/s a pipelined engine sustains."""
        return min(self.p.compress_throughput, self.p.decompress_throughput)

    def _copies(self, size: float) -> float:
        return self.p.copies_per_side * size / self.p.copy_bandwidth if self.p.copies_per_side else 0.0

    def _encoded(self, size: float) -> float:
        """Bytes the lossless encoder handles: the codes after a lossy stage, else `size`."""
        return size * code_fraction(self.p.lossy) if self.p.lossy is not None else size

    def compress_s(self, size: float) -> float:
        t = self._encoded(size) / self.p.compress_throughput + self.p.latency + self._copies(size)
        if self.p.lossy is not None and self.p.lossy.quantize_throughput:
            t += size / self.p.lossy.quantize_throughput
        return t

    def decompress_s(self, size: float) -> float:
        t = self._encoded(size) / self.p.decompress_throughput + self.p.latency + self._copies(size)
        if self.p.lossy is not None and self.p.lossy.dequantize_throughput:
            t += size / self.p.lossy.dequantize_throughput
        return t

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

    def fill_latency_s(self, steps: int) -> float:
        """A pipelined engine's fill latency, once per step of a collective."""
        return steps * self.p.latency if self.pipelined else 0.0


def load_codec(name_or_file: str | None) -> NicCodec | None:
    """The NIC codec of a profile name or file; None for no compression."""
    if not name_or_file:
        return None
    codec = NicCodec(load_profile(name_or_file))
    return codec if codec.active else None
