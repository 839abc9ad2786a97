"""Where shipped data lives: topologies/, workloads/, calibration/ beside the package source."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOPOLOGIES = ROOT / "topologies"
WORKLOADS = ROOT / "workloads"
CALIBRATION = ROOT / "calibration"
