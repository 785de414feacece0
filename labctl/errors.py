"""The one user-facing error type: what happened, and what to do next."""

from __future__ import annotations


class LabError(Exception):
    """An error a student can act on. Shown once at the CLI boundary, without a traceback."""

    def __init__(self, message: str, hint: str | None = None, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  → {self.hint}"
