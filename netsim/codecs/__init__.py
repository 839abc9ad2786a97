"""Compression: codec profiles (ratio, throughput, latency per placement) and their cost model."""
