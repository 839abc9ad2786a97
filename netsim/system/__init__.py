"""System layer: schedule executors and their results (ASTRA-sim's system, between workload and network)."""
