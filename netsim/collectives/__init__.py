"""Collective algorithms: (op, group, bytes) -> transfers, or a closed form."""
