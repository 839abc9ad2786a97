"""Model presets in workloads/*.yaml, found by name or alias ("175B" -> gpt3-175b)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from netsim.config.loader import load_model
from netsim.config.model import ModelConfig
from netsim.errors import InputError
from netsim.resources import WORKLOADS


@cache
def presets() -> dict[str, ModelConfig]:
    out = {}
    for f in sorted(WORKLOADS.glob("*.yaml")):
        m = load_model(ModelConfig, f)
        out[m.name] = m
    return out


def resolve_model(name: str) -> ModelConfig:
    """A preset name/alias (case-insensitive), or a path to a model YAML."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return load_model(ModelConfig, p)
    key = name.lower()
    for m in presets().values():
        if key == m.name.lower() or key in (a.lower() for a in m.aliases):
            return m
    known = ", ".join(f"{m.name} ({'/'.join(m.aliases[:1])})" for m in presets().values())
    raise InputError(f"unknown model {name!r}; expected one of: {known}, or a model YAML file", field="--model")
