"""Errors that reach the user as one clear line (the CLI prints them and exits non-zero)."""

from __future__ import annotations

from pathlib import Path


class PrefstyleError(Exception):
    """A problem with the user's input: the message names the file and the problem."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(where + message)


class InputFormatError(PrefstyleError):
    """A file exists but its content is malformed."""
