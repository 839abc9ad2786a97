"""Topologies, routing and the fluid network model. Knows nothing about LLMs."""
