"""Reading tensors for the analyzer: NetZIP's collector layout, .pt, .safetensors, .npy.

Every tensor comes back as its bf16 bit patterns (uint16). NetZIP's pickles and .pt files need
PyTorch (the `collect` extra); .safetensors and .npy do not.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from netsim.codecs.transforms import f32_to_bf16
from netsim.errors import InputError

CLASS_DIRS = {"forward_activations": "activation", "activation_gradients": "activation_grad", "param_grads": "gradient"}
SUFFIXES = (".pkl", ".pt", ".safetensors", ".npy")
STEP = re.compile(r"_step_(\d+)$")


@dataclass(frozen=True)
class TensorFile:
    path: Path
    traffic_class: str
    prev: Path | None  # the same file one step earlier (NetZIP layout), for deltas
    key: str  # path relative to its step directory


def discover(paths: list[str], default_class: str = "default") -> list[TensorFile]:
    files: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise InputError("not found", where=str(p))
        files += sorted(f for f in p.rglob("*") if f.suffix in SUFFIXES) if p.is_dir() else [p]
    out = []
    for f in files:
        cls = next((CLASS_DIRS[part] for part in f.parts if part in CLASS_DIRS), default_class)
        prev, key = None, f.name
        step_dir = next((a for a in f.parents if STEP.search(a.name)), None)
        if step_dir is not None:
            key = str(f.relative_to(step_dir))
            n = int(STEP.search(step_dir.name).group(1))
            cand = step_dir.parent / STEP.sub(f"_step_{n - 1}", step_dir.name) / key
            prev = cand if n > 0 and cand.exists() else None
        out.append(TensorFile(path=f, traffic_class=cls, prev=prev, key=key))
    return out


def _torch():
    try:
        import torch

        return torch
    except ImportError:
        raise InputError("reading .pkl/.pt tensors needs PyTorch: pip install -e '.[collect]'") from None


def _torch_bf16(obj) -> list[np.ndarray]:
    """All bf16 tensors in a (possibly nested) object, as uint16 (the artifact ignores other dtypes)."""
    torch = _torch()
    out = []
    if isinstance(obj, torch.Tensor):
        if obj.dtype == torch.bfloat16:
            out.append(obj.detach().contiguous().view(torch.int16).numpy().view(np.uint16).ravel())
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            out += _torch_bf16(x)
    elif isinstance(obj, dict):
        for x in obj.values():
            out += _torch_bf16(x)
    return out


def _safetensors(path: Path) -> list[np.ndarray]:
    """The safetensors layout: u64 header length, JSON header, raw little-endian data."""
    raw = path.read_bytes()
    try:
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8 : 8 + n])
    except Exception:
        raise InputError("not a safetensors file", where=str(path)) from None
    data = raw[8 + n :]
    out = []
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        buf = data[a:b]
        dt = meta["dtype"]
        if dt == "BF16":
            out.append(np.frombuffer(buf, dtype="<u2").copy())
        elif dt == "F32":
            out.append(f32_to_bf16(np.frombuffer(buf, dtype="<f4")))
    return out


def load(path: Path, dtype: str | None = None) -> tuple[np.ndarray, bytes]:
    """(bf16 bit patterns of every bf16 tensor in the file, concatenated; the file's raw bytes for
    the artifact's `original` row, or the elements' bytes for formats other than pickles)."""
    if path.suffix not in SUFFIXES:
        raise InputError(f"not a tensor file; expected one of {', '.join(SUFFIXES)}", where=str(path))
    try:
        return _load(path, dtype)
    except InputError:
        raise
    except Exception as e:  # numpy, pickle and torch raise many kinds on a file that is not theirs
        raise InputError(f"cannot read as {path.suffix} tensors ({type(e).__name__}: {e})", where=str(path)) from None


def _load(path: Path, dtype: str | None) -> tuple[np.ndarray, bytes]:
    suffix = path.suffix
    if suffix == ".npy":
        a = np.load(path, allow_pickle=False)
        if dtype == "bf16":
            if a.dtype != np.uint16:
                raise InputError(f"--dtype bf16 expects uint16 bit patterns, got {a.dtype}", where=str(path))
            u = a.astype("<u2").ravel()
        elif a.dtype in (np.float32, np.float64):
            u = f32_to_bf16(a.astype(np.float32).ravel())
        elif a.dtype == np.uint16:
            u = a.astype("<u2").ravel()
        else:
            raise InputError(
                f"unsupported array dtype {a.dtype}; expected float32 or uint16 bf16 patterns", where=str(path)
            )
        return u, u.tobytes()
    if suffix == ".safetensors":
        parts = _safetensors(path)
        u = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint16)
        return u, u.tobytes()
    torch = _torch()
    if suffix == ".pt":
        parts = _torch_bf16(torch.load(path, map_location="cpu", weights_only=False))
        u = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint16)
        return u, u.tobytes()
    import pickle

    raw = path.read_bytes()
    parts = _torch_bf16(pickle.loads(raw))
    u = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint16)
    return u, raw
