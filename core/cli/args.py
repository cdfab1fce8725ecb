"""The command line's grammar: the parser class, the value types, the usage error.

Everything here refuses with exit code 2 and one line naming the argument and what it
accepts: the command line itself is wrong, and fixing it is the user's next step.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from core.cli.console import USAGE
from core.errors import RexError

MAX_ID = 2**63 - 1  # ids are 64-bit signed integers on both databases

Register = Callable[["Parser"], None]


class UsageError(RexError):
    """A value argparse could not check by itself (a fault rate, a revision): exit 2."""


class Parser(argparse.ArgumentParser):
    """argparse with its errors as one line (the usage is one `--help` away), and a
    command whose arguments are registered only when the command is used.

    `register` adds the command's options and subcommands the first time the parser
    parses (when its name is on the command line): a command module, and the modules it
    imports, load only for their own command — `sandbox serve` and `--help` never load
    SQLAlchemy, Alembic or pandas (click's "lazy loading of subcommands", on argparse).
    """

    def __init__(self, *args: Any, register: Register | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._register = register

    def parse_known_args(  # type: ignore[override]  # typeshed's overloads: one serves
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._register is not None:
            register, self._register = self._register, None
            register(self)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"error: {self.prog}: {message} (see --help)\n")


def row_id(kind: str) -> Callable[[str], int]:
    """A database id: a whole number from 1 to 2^63 - 1."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if not 1 <= value <= MAX_ID:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a {kind} id: {kind} ids are whole numbers from 1 to {MAX_ID}"
            )
        return value

    parse.__name__ = f"{kind} id"
    return parse


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port: give a number from 1 to 65535, or 0 for any free one"
        )
    return value


def days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 90:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of days from 1 to 90")
    return value


def milliseconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 60_000:
        raise argparse.ArgumentTypeError(f"{text!r}: give milliseconds from 0 to 60000")
    return value


def token(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("the token is empty: give the whole token")
    return text.strip()


def rule_file(text: str) -> str:
    if text != "-" and not Path(text).is_file():
        raise argparse.ArgumentTypeError(
            f"{text} does not exist (give a JSON file, or - for stdin)"
        )
    return text
