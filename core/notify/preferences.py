"""What each person wants to hear, and where: events, channels, the daily digest and
quiet hours, in their own time zone.

A person without a row has the defaults: every event but the digest, by e-mail when
Rex can send mail. Their inbox in the app holds everything, whatever they choose here.
Their own Slack or webhook URL is stored encrypted (the access tokens' key) and never
shown back: the page says only that one is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.access.actor import Actor
from core.access.audit import record
from core.crypto import secret_box
from core.db import read_session, write_session
from core.db.models import NotificationPreference
from core.db.types import utcnow
from core.errors import InputError
from core.notify.channels import CHANNELS, check_webhook_url
from core.notify.events import EVENTS, Event, event_kinds

PERSONAL_CHANNELS = ("email", "slack", "webhook")  # slack / webhook: the person's own URL
KEEP = object()  # leave a stored URL as it is


@dataclass(frozen=True)
class Preferences:
    user_id: int | None
    muted: frozenset[Event] = frozenset()
    channels: frozenset[str] = frozenset({"email"})
    digest: bool = False
    digest_hour: int = 8
    time_zone: str = "UTC"
    quiet_start: time | None = None
    quiet_end: time | None = None
    has_slack_url: bool = False
    has_webhook_url: bool = False
    saved: bool = False  # False: the defaults, never saved

    def hears(self, event: Event) -> bool:
        """Told on their channels? (Their inbox has everything.)"""
        return self.digest if event == Event.DIGEST else event not in self.muted

    def quiet_until(self, at: datetime) -> datetime | None:
        """If `at` falls in their quiet hours, when those end (UTC); else None."""
        if self.quiet_start is None or self.quiet_end is None:
            return None
        zone = ZoneInfo(self.time_zone)
        local = at.astimezone(zone)
        start = datetime.combine(local.date(), self.quiet_start, zone)
        end = datetime.combine(local.date(), self.quiet_end, zone)
        if self.quiet_start <= self.quiet_end:  # 12:00–14:00
            inside = start <= local < end
        else:  # 22:00–07:00: over midnight
            inside = local >= start or local < end
            if local >= start:
                end += timedelta(days=1)
        return end.astimezone(at.tzinfo) if inside else None

    @property
    def quiet_words(self) -> str:
        if self.quiet_start is None or self.quiet_end is None:
            return "none"
        return f"{self.quiet_start:%H:%M}–{self.quiet_end:%H:%M} ({self.time_zone})"


def of_row(row: NotificationPreference | None, user_id: int | None = None) -> Preferences:
    if row is None:
        return Preferences(user_id=user_id)
    return Preferences(
        user_id=row.user_id,
        muted=frozenset(event_kinds(row.muted or [])),
        channels=frozenset(c for c in row.channels or () if c in PERSONAL_CHANNELS),
        digest=row.digest,
        digest_hour=row.digest_hour,
        time_zone=row.time_zone,
        quiet_start=_clock(row.quiet_start, "quiet_start") if row.quiet_start else None,
        quiet_end=_clock(row.quiet_end, "quiet_end") if row.quiet_end else None,
        has_slack_url=bool(row.slack_url),
        has_webhook_url=bool(row.webhook_url),
        saved=True,
    )


def preferences_of(session: Session, user_ids: list[int]) -> dict[int, Preferences]:
    """Each user's preferences (the defaults for those who never saved any)."""
    rows = {
        r.user_id: r
        for r in session.scalars(
            select(NotificationPreference).where(NotificationPreference.user_id.in_(user_ids))
        )
    }
    return {u: of_row(rows.get(u), u) for u in user_ids}


def my_preferences(*, actor: Actor, engine: Engine | None = None) -> Preferences:
    if actor.user_id is None:
        return Preferences(user_id=None)
    with read_session(engine) as session:
        return of_row(session.get(NotificationPreference, actor.user_id), actor.user_id)


def save_preferences(
    *,
    by: Actor,
    muted: list[str],
    channels: list[str],
    digest: bool,
    digest_hour: int,
    time_zone: str,
    quiet_start: str | None,
    quiet_end: str | None,
    slack_url: Any = KEEP,  # a URL, "" to remove it, or KEEP
    webhook_url: Any = KEEP,
    engine: Engine | None = None,
) -> Preferences:
    """Save `by`'s own preferences (everything checked first: a bad field stores
    nothing). Each person sets their own; the audit log records the change (never a URL)."""
    if by.user_id is None:
        raise InputError("user", "Rex itself has no preferences: sign in as a person")
    events = event_kinds(muted, field="muted")
    unknown = sorted(set(channels) - set(PERSONAL_CHANNELS))
    if unknown:
        raise InputError(
            "channels", f"unknown channel {', '.join(unknown)}: use {', '.join(PERSONAL_CHANNELS)}"
        )
    if not 0 <= digest_hour <= 23:
        raise InputError("digest_hour", f"{digest_hour} is not an hour: 0 to 23")
    zone = check_time_zone(time_zone)
    quiet = [
        _clock(v, name) if v else None
        for v, name in ((quiet_start, "quiet_start"), (quiet_end, "quiet_end"))
    ]
    if (quiet[0] is None) != (quiet[1] is None):
        raise InputError(
            "quiet_end" if quiet[0] else "quiet_start",
            "give both ends of the quiet hours, or neither",
        )
    if quiet[0] is not None and quiet[0] == quiet[1]:
        raise InputError("quiet_end", "the quiet hours end when they start: change one end")
    urls = {}
    for name, value in (("slack", slack_url), ("webhook", webhook_url)):
        if value is not KEEP and value:
            urls[name] = check_webhook_url(str(value), f"{name}_url")
    with write_session(engine) as session:
        row = session.get(NotificationPreference, by.user_id)
        old = of_row(row, by.user_id)
        if row is None:
            row = NotificationPreference(user_id=by.user_id, muted=[], channels=[])
            session.add(row)
        for name, value in (("slack", slack_url), ("webhook", webhook_url)):
            if value is KEEP:
                continue
            stored = secret_box(create=True, engine=engine).encrypt(urls[name]) if value else None
            setattr(row, f"{name}_url", stored)
        for name in ("slack", "webhook"):
            if name in channels and not getattr(row, f"{name}_url"):
                raise InputError(
                    f"{name}_url",
                    f"set your {CHANNELS[name].label} URL to "
                    f"hear on {CHANNELS[name].label}, or turn it off",
                )
        row.muted = [e.value for e in events]
        row.channels = sorted(set(channels))
        row.digest, row.digest_hour, row.time_zone = digest, digest_hour, zone
        row.quiet_start = f"{quiet[0]:%H:%M}" if quiet[0] else None
        row.quiet_end = f"{quiet[1]:%H:%M}" if quiet[1] else None
        row.updated_at = utcnow()
        session.flush()
        new = of_row(row)
        record(
            session,
            by,
            "notifications.preferences",
            "user",
            by.user_id,
            old=_said(old),
            new=_said(new),
        )
    return new


def _said(p: Preferences) -> dict[str, Any]:
    """What the audit log keeps of them: everything but the URLs (only whether set)."""
    return {
        "muted": sorted(e.value for e in p.muted),
        "channels": sorted(p.channels),
        "digest": p.digest,
        "digest_hour": p.digest_hour,
        "time_zone": p.time_zone,
        "quiet": p.quiet_words,
        "slack_url": p.has_slack_url,
        "webhook_url": p.has_webhook_url,
    }


def check_time_zone(name: str) -> str:
    try:
        ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            "time_zone",
            f"{name!r} is not a time zone: use an IANA name such "
            "as Europe/Berlin or America/New_York",
        ) from None
    return name.strip()


def time_zones() -> list[str]:
    return sorted(available_timezones())


def _clock(value: str, name: str) -> time:
    try:
        return time.fromisoformat(value.strip())
    except ValueError:
        raise InputError(name, f"{value!r} is not a time of day: write it as 22:00") from None


EVENT_CHOICES = [k for k in EVENTS.values() if k.event != Event.DIGEST]
