"""Typed configuration schemas and YAML loading. Nothing here knows about simulation."""
