"""The root of Rex's own exceptions.

Each package has one base under `RexError` (`GraphError` for Meta, `SyncError`, …);
callers decide on the class, never on message text. Every message says what to do;
`hint` may add the next step in words for the person (the CLI prints it under the
message, the Accounts page above Meta's answer).
"""

from __future__ import annotations


class RexError(Exception):
    """Base of every error Rex raises on purpose.

    `hint` is a class attribute that a subclass (or one raised error, for its context)
    may set; it is empty when the message already says everything."""

    hint: str = ""


class InputError(RexError, ValueError):
    """Bad input from a person or a file: names the field and the fix."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class NotFoundError(RexError, LookupError):
    """A record asked for by id or name does not exist."""
