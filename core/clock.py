"""Rex's clock: the wall clock — or, on an install that runs only on the sandbox, the
wall clock moved ahead with the sandbox's.

`now()` is every "now" in Rex (`core.db.types.utcnow` is it). On a real install it is
the wall clock, always. When the sandbox's clock is moved forward through Rex (`python
-m core sandbox advance`, the Accounts page), Rex moves its own by the same days, so
that a sync asks the sandbox for the days that passed, rules judge them and cooldowns
run out: the days are simulated end to end. The days ahead are kept in
`<data dir>/clock.json` (so the UI and the scheduler, separate processes, agree; each
reads it at most once a second). `core.accounts` refuses to move it while an account
that is not on a sandbox is connected, refuses to connect one while it is moved, and
puts it back when the sandbox is reset.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.errors import RexError

RECHECK_SECONDS = 1.0


@dataclass
class _Read:
    """What this process last read of the clock file, and when it looked."""

    path: Path | None = None
    checked: float = float("-inf")  # time.monotonic() of the last look
    mtime: float | None = None
    days: int = 0


_lock = threading.Lock()
_last = _Read()


class ClockFileError(RexError):
    """The clock file cannot be read or written."""


def _path() -> Path:
    from core.settings import get_settings  # settings import nothing of Rex's own

    return get_settings().data_dir / "clock.json"


def ahead_days() -> int:
    """How many days Rex's clock is ahead of the wall clock (0 on a real install)."""
    path = _path()
    with _lock:
        if _last.path == path and time.monotonic() - _last.checked < RECHECK_SECONDS:
            return _last.days
        try:
            mtime: float | None = path.stat().st_mtime
        except FileNotFoundError:
            mtime = None
        if _last.path != path or mtime != _last.mtime:
            _last.days = _read(path) if mtime is not None else 0
        _last.path, _last.checked, _last.mtime = path, time.monotonic(), mtime
        return _last.days


def _read(path: Path) -> int:
    try:
        days = json.loads(path.read_text(encoding="utf-8"))["ahead_days"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ClockFileError(
            f"Rex's clock file {path} cannot be read ({type(error).__name__}): delete it to "
            "put the clock back to the wall clock (then reset the sandbox)"
        ) from None
    if not isinstance(days, int) or days < 0:
        raise ClockFileError(f"Rex's clock file {path} says {days!r} days: delete it")
    return days


def set_ahead_days(days: int) -> None:
    """Put Rex's clock `days` ahead of the wall clock (0: the wall clock). Callers check
    that only sandbox accounts are connected (`core.accounts.advance_sandboxes`)."""
    path = _path()
    try:
        if days == 0:
            path.unlink(missing_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            temporary.write_text(json.dumps({"ahead_days": days}), encoding="utf-8")
            temporary.replace(path)
    except OSError as error:
        raise ClockFileError(
            f"Rex's clock file {path} cannot be written ({error.strerror or error})"
        ) from None
    with _lock:
        _last.path = None  # read the file again at the next call


def now() -> datetime:
    """The instant Rex acts at: UTC, tz-aware."""
    days = ahead_days()
    wall = datetime.now(UTC)
    return wall + timedelta(days=days) if days else wall
