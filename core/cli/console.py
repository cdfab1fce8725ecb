"""What the commands write to the terminal: one-line errors, tables, progress, prompts.

Shared by the command modules and by core/launcher.py (`up` prints the first sync's
progress the way `sync` does). Nothing here knows a command; nothing here opens the
database.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import ValidationError

if TYPE_CHECKING:
    from core.sync.runner import Progress

USAGE, FAILED = 2, 1  # the exit codes: see core/cli/__init__.py


def fail(message: str, hint: str = "", *, code: int = FAILED) -> int:
    """Print `error: …` (and the hint under it) on stderr; return the exit code."""
    print(f"error: {message}" + (f"\n  → {hint}" if hint else ""), file=sys.stderr)
    return code


def one_line(text: str) -> str:
    return " ".join(text.split())[:300] or "no detail"


def settings_problem(error: ValidationError) -> str:
    """A settings error as one line naming the variable, e.g. `REX_UI_PORT: …`."""
    problems = []
    for item in error.errors(include_url=False):
        name = str(item["loc"][0]) if item["loc"] else "settings"
        variable = "DATABASE_URL" if name == "database_url" else f"REX_{name.upper()}"
        problems.append(f"{variable}: {item['msg']} (got {item.get('input')!r})")
    return "; ".join(problems) + "; fix it in the environment or .env"


def print_table(rows: Sequence[tuple[str, ...]], notes: Sequence[str] = ()) -> None:
    """Columns padded to their widest cell; the first row is the header. `notes[i]`, when
    given, is printed indented under the i-th row after the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if 0 < index <= len(notes):
            print(f"    {notes[index - 1]}")


def print_progress(event: Progress) -> None:
    """A sync's progress on stderr: a bar redrawn in place on a terminal, a line per step
    otherwise (a log, a pipe)."""
    width = 24
    filled = int(width * event.done / max(event.total, 1))
    bar = "█" * filled + "·" * (width - filled)
    detail = f" {event.detail}" if event.detail else ""
    line = f"\r{event.account} [{bar}] {event.done}/{event.total} {event.step}{detail}"
    stream = sys.stderr
    if stream.isatty():
        stream.write(line[:120].ljust(120))
        if event.done >= event.total:
            stream.write("\n")
    else:
        stream.write(line.lstrip("\r") + "\n")
    stream.flush()


def confirm(question: str) -> bool:
    """Ask on the terminal; only `y` or `yes` is a yes."""
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
