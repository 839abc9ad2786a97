"""Lossless codecs at the NetZIP artifact's settings (reference/netzip.md section 2).

lz4 = LZ4 frame, level 1; snappy = raw (unframed) Snappy; zlib = Deflate with a zlib wrapper,
level 1 (the paper's "Deflate"); zstd = Zstandard level 1 with 8 threads (the artifact's
default). Per-packet mode uses LZ4 *block* format without a size header, as a NIC would.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

NAMES = ("lz4", "snappy", "zlib", "zstd")


def _lz4():
    import lz4.frame

    return (lambda b: lz4.frame.compress(b, compression_level=1), lz4.frame.decompress)


def _snappy():
    import snappy

    return (snappy.compress, snappy.decompress)


def _zlib():
    return (lambda b: zlib.compress(b, 1), zlib.decompress)


def _zstd():
    import zstandard

    c = zstandard.ZstdCompressor(level=1, threads=8)
    d = zstandard.ZstdDecompressor()
    return (c.compress, lambda b: d.decompress(b))


_FACTORIES = {"lz4": _lz4, "snappy": _snappy, "zlib": _zlib, "zstd": _zstd}
_CACHE: dict[str, tuple[Callable, Callable]] = {}


def codec(name: str) -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    if name not in _CACHE:
        _CACHE[name] = _guarded(name, _FACTORIES[name])
    return _CACHE[name]


def _guarded(name: str, factory):
    """The codec library, or an InputError saying which extra installs it (lz4, snappy and zstd
    are only needed by the analyzer: `pip install -e '.[analyze]'`)."""
    try:
        return factory()
    except ImportError as e:
        from netsim.errors import InputError

        raise InputError(
            f"codec {name} needs the Python package {e.name or name}; install it with pip install -e '.[analyze]'",
            field="--codecs",
        ) from None


def packet_codec(name: str) -> tuple[Callable[[bytes], bytes], Callable[[bytes, int], bytes]]:
    """Per-packet (stateless) compress / decompress(data, original_size)."""
    if name == "lz4":
        block = _guarded(name, lambda: __import__("lz4.block").block)
        return (
            lambda b: block.compress(b, mode="fast", store_size=False),
            lambda b, n: block.decompress(b, uncompressed_size=n),
        )
    c, d = codec(name)
    return c, (lambda b, n: d(b))
