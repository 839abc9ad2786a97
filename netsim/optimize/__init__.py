"""Optimisers that call the simulator (or its closed forms) as their objective."""
