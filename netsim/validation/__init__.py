"""Checks against reference simulators and published measurements."""
