"""Errors that clbench reports to the user as a message, not a traceback.

Every error here is *bad input* (exit status 2 from the CLI): it names the problem and, in
``hint``, the fix. Errors raised by a strategy while it trains are not of this kind: the runner
records them in the run's result with status ``failed``.
"""

from __future__ import annotations


class ClbenchError(Exception):
    """Base class: a problem the user can fix; ``hint`` says how."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(ClbenchError):
    """An unknown name, an unknown parameter or a value of the wrong type."""


class UnsupportedError(ConfigError):
    """A strategy that is not defined for a scenario (its setting or backbone): a suite leaves
    the pair out with a note, a single run refuses it."""


class DataError(ClbenchError):
    """A dataset that is missing, incomplete or corrupt."""


class ResultsError(ClbenchError):
    """A results store that cannot be read or written."""
