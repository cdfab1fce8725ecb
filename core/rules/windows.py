"""Windows: which ad-account-local days a condition looks at.

`today` · `yesterday` · `last_Nd` (N complete days ending yesterday, 2 ≤ N ≤ 90) ·
`last_Nd_with_today` (N days ending today) · `this_month` (the 1st through today) ·
`lifetime` (everything synced). Days are the account's own: "yesterday" in Tokyo starts
15 or 16 hours before "yesterday" in Los Angeles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from core.errors import RexError

MIN_DAYS, MAX_DAYS = 2, 90
_LAST_N = re.compile(r"^last_(\d{1,3})d(_with_today)?$")
WINDOW_HELP = (
    "use today, yesterday, last_Nd (2 ≤ N ≤ 90, complete days ending yesterday), "
    "last_Nd_with_today, this_month or lifetime"
)


class WindowError(RexError, ValueError):
    """Not a window Rex knows; the message says which ones it does. Also a ValueError, so
    that a pydantic validator raising it gives a validation error naming the field."""


@dataclass(frozen=True, order=True)
class Window:
    name: str

    @classmethod
    def parse(cls, text: str) -> Window:
        text = (text or "").strip()
        if text in ("today", "yesterday", "this_month", "lifetime"):
            return cls(text)
        match = _LAST_N.match(text)
        if match:
            days = int(match.group(1))
            if MIN_DAYS <= days <= MAX_DAYS:
                return cls(text)
            raise WindowError(f"{text!r} has {days} days; N must be from 2 to 90")
        raise WindowError(f"unknown window {text!r}; {WINDOW_HELP}")

    @property
    def words(self) -> str:
        """The window inside a sentence, after the metric: "ROAS over the last 7 days"."""
        match = _LAST_N.match(self.name)
        if match:
            days = f"over the last {int(match.group(1))} days"
            return f"{days} including today" if match.group(2) else days
        return {"lifetime": "over its lifetime"}.get(self.name, self.name.replace("_", " "))

    @property
    def short(self) -> str:
        """The window as a column heading's tail: "last 7 days", "yesterday"."""
        match = _LAST_N.match(self.name)
        if match:
            days = f"last {int(match.group(1))} days"
            return f"{days} incl. today" if match.group(2) else days
        return self.name.replace("_", " ")

    def days_range(self, today: date) -> tuple[date, date] | None:
        """(first, last) local dates, inclusive; None for lifetime (no bound)."""
        if self.name == "today":
            return today, today
        if self.name == "yesterday":
            day = today - timedelta(days=1)
            return day, day
        if self.name == "this_month":
            return today.replace(day=1), today
        if self.name == "lifetime":
            return None
        match = _LAST_N.match(self.name)
        assert match is not None
        days, with_today = int(match.group(1)), bool(match.group(2))
        last = today if with_today else today - timedelta(days=1)
        return last - timedelta(days=days - 1), last


def local_today(timezone_name: str, now: datetime) -> date:
    """The ad account's current local date at the UTC instant `now`."""
    return now.astimezone(ZoneInfo(timezone_name)).date()
