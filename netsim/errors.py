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


def read_text(path, what: str = "file") -> str:
    """A text file's contents, or an InputError naming it: missing, a directory, unreadable, or not
    UTF-8 (a binary file given where text was expected)."""
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        raise InputError(f"expected a {what}, got a directory", where=str(path))
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", where=str(path)) from None
    except UnicodeDecodeError as e:
        raise InputError(f"expected a UTF-8 text {what}, found byte 0x{e.object[e.start]:02x} at offset {e.start}",
                         where=str(path)) from None  # fmt: skip
    except OSError as e:
        raise InputError(f"cannot read ({e.strerror})", where=str(path)) from None
