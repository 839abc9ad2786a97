"""Backends that turn a workload and a topology into an iteration-time breakdown."""
