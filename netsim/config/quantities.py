"""Pydantic field types for quantities with units, so schemas read like the YAML people write."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

from netsim import units


def _wrap(parse):
    def validate(v):
        try:
            return parse(v)
        except ValueError as e:  # pydantic turns ValueError into a located validation error
            raise ValueError(str(e)) from None

    return validate


# Stored as SI floats; serialised back as human strings so resolved configs stay readable.
Bandwidth = Annotated[
    float, BeforeValidator(_wrap(units.parse_bandwidth)), PlainSerializer(units.format_bandwidth, return_type=str)
]
Time = Annotated[
    float, BeforeValidator(_wrap(units.parse_time)), PlainSerializer(lambda s: f"{s * 1e9:g} ns", return_type=str)
]
Size = Annotated[int, BeforeValidator(_wrap(units.parse_size))]
