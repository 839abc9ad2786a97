"""Quantities written by people ("400 Gbps", "50 GB/s", "500 ns", "16 MiB") to SI floats.

Internal units: bytes, bytes per second, seconds. Outputs are converted to microseconds at the
report layer. Decimal prefixes are powers of 1000, binary ones (Ki, Mi, Gi) powers of 1024, as
in IEC 80000-13; a lowercase 'b' is bits, an uppercase 'B' bytes.
"""

from __future__ import annotations

import math
import re

# Documented limits (README "Inputs"): past them a value is almost surely a typo, and an overflow
# to inf or a denormal would hang or break the simulation. Bandwidths 1 bps .. 1 Pbps (in bytes/s),
# times up to one week, sizes up to 1 PiB.
MIN_BANDWIDTH, MAX_BANDWIDTH = 1.0 / 8, 1e15 / 8
MAX_TIME = 7 * 86400.0
MAX_SIZE = 2**50

_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_QTY = re.compile(rf"^\s*{_NUMBER}\s*([A-Za-zµ/]*)\s*$")

_DEC = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_BIN = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50}

_TIME = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "ps": 1e-12, "sec": 1.0, "min": 60.0, "h": 3600.0}


def _split(text: str, kind: str) -> tuple[float, str]:
    if not isinstance(text, str):
        raise ValueError(f"expected a {kind} string with a unit, got {text!r}")
    m = _QTY.match(text)
    if not m:
        raise ValueError(f"expected a {kind} like {_EXAMPLES[kind]}, got {text!r}")
    value = float(m.group(1))
    if not math.isfinite(value):
        raise ValueError(f"expected a finite {kind}, got {text!r}")
    return value, m.group(2)


_EXAMPLES = {
    "bandwidth": "'400 Gbps' or '50 GB/s'",
    "time": "'500 ns' or '6 us'",
    "size": "'16 MiB' or '4096 B'",
}


def _prefix_scale(prefix: str) -> float | None:
    if prefix in _BIN:
        return _BIN[prefix]
    if prefix in _DEC:
        return _DEC[prefix]
    return None


def parse_bandwidth(text: str) -> float:
    """'400 Gbps' -> 5e10 bytes/s. Accepts bps/b/s (bits) and Bps/B/s (bytes) with SI or IEC prefixes."""
    value, unit = _split(text, "bandwidth")
    m = re.fullmatch(r"([kKMGTP]i?|)(bps|b/s|Bps|B/s)", unit)
    if not m:
        raise ValueError(f"expected a bandwidth like {_EXAMPLES['bandwidth']}, got {text!r}")
    scale = _prefix_scale(m.group(1))
    bits = m.group(2).startswith("b")
    out = value * scale / (8.0 if bits else 1.0)
    if out <= 0:
        raise ValueError(f"expected a positive bandwidth, got {text!r}")
    if not MIN_BANDWIDTH <= out <= MAX_BANDWIDTH:
        raise ValueError(f"expected a bandwidth between 1 bps and 1 Pbps, got {text!r}")
    return out


def parse_time(text: str) -> float:
    """'500 ns' -> 5e-7 seconds. Zero is allowed; negative is not."""
    value, unit = _split(text, "time")
    if unit not in _TIME:
        raise ValueError(f"expected a time like {_EXAMPLES['time']}, got {text!r}")
    if value < 0:
        raise ValueError(f"expected a non-negative time, got {text!r}")
    out = value * _TIME[unit]
    if out > MAX_TIME:
        raise ValueError(f"expected a time of at most a week, got {text!r}")
    return out


def parse_size(text: str | int) -> int:
    """'16 MiB' -> 16777216 bytes. A bare integer is a byte count."""
    if isinstance(text, bool):
        raise ValueError(f"expected a size like {_EXAMPLES['size']}, got {text!r}")
    if isinstance(text, int):
        if not 0 <= text <= MAX_SIZE:
            raise ValueError(f"expected a size between 0 B and 1 PiB, got {text!r}")
        return text
    value, unit = _split(text, "size")
    m = re.fullmatch(r"([kKMGTP]i?|)(B|bytes?)", unit) if unit else None
    if unit == "":
        scale = 1.0
    elif m:
        scale = _prefix_scale(m.group(1))
    else:
        raise ValueError(f"expected a size like {_EXAMPLES['size']}, got {text!r}")
    if value < 0:
        raise ValueError(f"expected a non-negative size, got {text!r}")
    n = value * scale
    if n > MAX_SIZE:
        raise ValueError(f"expected a size of at most 1 PiB, got {text!r}")
    if n != int(n):
        raise ValueError(f"expected a whole number of bytes, got {text!r}")
    return int(n)


def format_bandwidth(bytes_per_s: float) -> str:
    return f"{bytes_per_s * 8 / 1e9:g} Gbps"


def format_size(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{int(n)} B"
