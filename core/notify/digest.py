"""The daily digest: one message per person who turned it on, at their hour in their own
time zone — the actions Rex took and the daily budget they moved (per currency), the
approvals waiting for them, new suggestions and outcomes measured, over the 24 hours
before, on the accounts they have access to.

A digest is a notification for that person alone (`user_id`), made once per person and
local day (`event_key` "digest:<user>:<date>", unique): a scheduler that starts late in
the day still sends that day's, a second replica never a second one.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.access.actor import Actor, load_actor
from core.access.roles import Permission
from core.actions.changes import BudgetChange, StoredChangeError, change_of
from core.db import read_session, write_session
from core.db.models import (
    ActionHistory,
    ActionStatus,
    AdAccount,
    ApprovalStatus,
    Notification,
    NotificationPreference,
    PendingAction,
    RexOutcomeCheckpoint,
    RexSuggestion,
    RexSuggestionPerformance,
    User,
)
from core.labels import action_words
from core.money import format_money, from_minor
from core.notify.events import EVENTS, Event
from core.notify.preferences import of_row

WINDOW = timedelta(hours=24)


def make_digests(now: datetime, *, engine: Engine | None = None) -> int:
    """Make the digests due now (their hour has come, today's not made yet)."""
    with read_session(engine) as session:
        wanted = session.execute(
            select(NotificationPreference)
            .join(User, User.id == NotificationPreference.user_id)
            .where(NotificationPreference.digest, User.disabled_at.is_(None))
        ).scalars().all()  # fmt: skip
        made_keys = set()
        due = []
        for row in wanted:
            prefs = of_row(row)
            local = now.astimezone(ZoneInfo(prefs.time_zone))
            if local.hour < prefs.digest_hour:
                continue
            key = f"digest:{row.user_id}:{local.date().isoformat()}"
            due.append((row.user_id, key, local))
            made_keys.add(key)
        made = set(session.scalars(select(Notification.event_key)
                                   .where(Notification.event_key.in_(made_keys))))  # fmt: skip
    count = 0
    for user_id, key, local in due:
        if key in made:
            continue
        try:
            with write_session(engine) as session:
                actor = load_actor(session, user_id, via="scheduler")
                session.add(_digest(session, actor, key, local, now))
            count += 1
        except IntegrityError:
            pass  # another replica made it first
    return count


def _digest(
    session: Session, actor: Actor, key: str, local: datetime, now: datetime
) -> Notification:
    since = now - WINDOW
    reads = actor.account_ids()
    accounts = {
        a.id: a
        for a in session.scalars(select(AdAccount).where(AdAccount.connected))
        if reads is None or a.id in reads
    }
    ids = list(accounts)
    actions = session.scalars(
        select(ActionHistory).where(
            ActionHistory.account_id.in_(ids),
            ActionHistory.status == ActionStatus.SUCCEEDED,
            ActionHistory.finished_at >= since,
        )
    ).all()
    kinds = Counter(action_words(a.action_type) for a in actions)
    raised: dict[str, Decimal] = defaultdict(Decimal)
    cut: dict[str, Decimal] = defaultdict(Decimal)
    for action in actions:
        try:
            change = change_of(action.details or {})
        except StoredChangeError:
            continue
        if isinstance(change, BudgetChange) and change.budget == "daily":
            moved = from_minor(change.new_minor - change.old_minor, change.currency)
            (raised if moved > 0 else cut)[change.currency] += moved
    deciding = [a for a in ids if actor.can(Permission.DECIDE_APPROVALS, a)]
    waiting = session.scalars(
        select(PendingAction.id).where(
            PendingAction.account_id.in_(deciding),
            PendingAction.status == ApprovalStatus.PENDING,
            PendingAction.expires_at > now,
        )
    ).all()
    suggestions = session.scalars(
        select(RexSuggestion.id).where(
            RexSuggestion.account_id.in_(ids), RexSuggestion.created_at >= since
        )
    ).all()
    verdicts = Counter(
        session.scalars(
            select(RexOutcomeCheckpoint.verdict)
            .join(RexSuggestionPerformance,
                  RexSuggestionPerformance.id == RexOutcomeCheckpoint.performance_id)
            .where(RexSuggestionPerformance.account_id.in_(ids),
                   RexOutcomeCheckpoint.measured_at >= since)
        )
    )  # fmt: skip
    items = [
        "Actions taken: " + (", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none"),
        *(f"Daily budgets raised by {format_money(v, c)}" for c, v in sorted(raised.items())),
        *(f"Daily budgets cut by {format_money(-v, c)}" for c, v in sorted(cut.items())),
        f"Approvals waiting for you: {len(waiting)}",
        f"New suggestions: {len(suggestions)}",
        "Outcomes measured: "
        + (", ".join(f"{n} {v}" for v, n in sorted(verdicts.items())) or "none"),
    ]
    return Notification(
        user_id=actor.user_id,
        kind=Event.DIGEST,
        title=f"Rex digest for {local:%A %d %B %Y}",
        body=f"The 24 hours to {local:%H:%M} ({local.tzinfo}) on {len(ids)} account(s).",
        link=EVENTS[Event.APPROVALS_WAITING if waiting else Event.DIGEST].page,
        details={"items": items, "facts": {"Accounts": ", ".join(
            f"{a.name} ({a.external_id})" for a in accounts.values()) or "none"}},
        event_key=key,
        created_at=now,
    )  # fmt: skip
