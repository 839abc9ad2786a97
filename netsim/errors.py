"""The one error type users see: a bad input, reported as one line with exit code 2."""

from __future__ import annotations


class InputError(Exception):
    """Bad user input: a config file, a workload file, a flag.

    `where` names the file (and line) and `field` the key that is wrong; the message says what
    was expected. The CLI prints `str(err)` as one line and exits with code 2.
    """

    def __init__(self, message: str, where: str | None = None, field: str | None = None):
        self.message = message
        self.where = where
        self.field = field
        super().__init__(self.format())

    def format(self) -> str:
        parts = []
        if self.where:
            parts.append(str(self.where))
        if self.field:
            parts.append(self.field)
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message
