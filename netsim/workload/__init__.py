"""Workloads: model catalog, rank mapping, schedule builders, SimAI/AICB workload files."""
