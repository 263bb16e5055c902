"""Errors that reach users.

Every failure a user can cause (a bad repo id, a missing column, a class that
does not exist) is raised as :class:`UnlearnError` with a one-line message that
says what was wrong and what to do. The CLI prints it and exits with code 2;
the app shows it in the page. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UnlearnError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    def __init__(self, message: str) -> None:
        # One line, always: callers print it verbatim next to "error:".
        super().__init__(" ".join(str(message).split()))


class Cancelled(UnlearnError):
    """The user asked the running job to stop; nothing was written."""

    def __init__(self, message: str = "cancelled by the user; no output was written") -> None:
        super().__init__(message)
