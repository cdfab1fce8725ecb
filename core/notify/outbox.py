"""From what happened to what each person is sent: the publishing half of the outbox.

1. `announce` turns what the record already holds into notifications: actions that
   failed (one notification per rule run and account) and proposals waiting (one per
   account), marking each source row `announced_at` in the same transaction — so each
   is told once, whichever process or replica looks. A rule's notify action, an account
   held for its token and a write Rex cannot settle are notifications where they happen
   (the engine, core.accounts, core.actions.settle).
2. `fan_out` gives every new notification its recipients: the people with the event's
   permission on its account now (users disabled or without a grant hear nothing; a
   person's own digest reaches only them), one inbox receipt each, and one delivery per
   channel they chose — not before their quiet hours end — plus the team channels of
   the settings. Receipts, deliveries and `fanned_out_at` commit together; the
   deliveries' idempotency keys are unique, so no message is queued twice.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from core.access.actor import Actor, load_actor
from core.db import read_session, rows_changed, write_session
from core.db.models import (
    ActionHistory,
    ActionStatus,
    AdAccount,
    ApprovalStatus,
    AutomationRule,
    Notification,
    NotificationDelivery,
    NotificationReceipt,
    PendingAction,
    User,
)
from core.db.types import utcnow
from core.labels import account_label, action_words
from core.notify.channels import CHANNELS
from core.notify.events import EVENTS, Event, event_kinds, event_of
from core.notify.preferences import Preferences, preferences_of
from core.settings import Settings, get_settings

LOOK_BACK = timedelta(days=7)  # sources older than this are not announced any more
LISTED = 10  # at most this many lines listed in one message
BATCH = 200  # notifications fanned out per transaction


@dataclass(frozen=True)
class Published:
    announced: int  # notifications made from failures and proposals
    fanned_out: int  # notifications given their recipients
    deliveries: int  # messages queued


def publish(now: datetime | None = None, *, engine: Engine | None = None) -> Published:
    now = now or utcnow()
    announced = announce(now, engine=engine)
    fanned, queued = 0, 0
    while True:
        done, deliveries = fan_out(now, engine=engine)
        fanned, queued = fanned + done, queued + deliveries
        if done < BATCH:
            return Published(announced, fanned, queued)


# ---------------------------------------------------------------------- announce


def announce(now: datetime, *, engine: Engine | None = None) -> int:
    with read_session(engine) as session:
        failed = session.scalars(
            select(ActionHistory)
            .where(
                ActionHistory.status == ActionStatus.FAILED,
                ActionHistory.announced_at.is_(None),
                ActionHistory.created_at >= now - LOOK_BACK,
            )
            .order_by(ActionHistory.id)
        ).all()
        waiting = session.scalars(
            select(PendingAction)
            .where(
                PendingAction.status == ApprovalStatus.PENDING,
                PendingAction.announced_at.is_(None),
                PendingAction.expires_at > now,
            )
            .order_by(PendingAction.id)
        ).all()
    runs: dict[tuple[int, int | None], list[ActionHistory]] = defaultdict(list)
    for row in failed:
        runs[(row.account_id, row.execution_id)].append(row)
    accounts: dict[int, list[PendingAction]] = defaultdict(list)
    for proposal in waiting:
        accounts[proposal.account_id].append(proposal)
    made = sum(_told(ActionHistory, rows, _failed, now, engine) for rows in runs.values())
    return made + sum(
        _told(PendingAction, rows, _waiting, now, engine) for rows in accounts.values()
    )


class _ToldAlready(Exception):
    pass


def _told(
    table: type, rows: list, make: Callable[..., Notification], now: datetime, engine: Engine | None
) -> bool:
    """One notification for `rows`, and the rows marked told, in one transaction; False
    (nothing written) if another process told any of them first."""
    ids = [r.id for r in rows]
    try:
        with write_session(engine) as session:
            changed = rows_changed(
                session,
                update(table)
                .where(table.id.in_(ids), table.announced_at.is_(None))  # type: ignore[attr-defined]
                .values(announced_at=now)
                .execution_options(synchronize_session=False),
            )
            if changed != len(ids):
                raise _ToldAlready  # rolls the marks back
            account = session.get_one(AdAccount, rows[0].account_id)
            session.add(make(session, account, rows, now))
    except _ToldAlready:
        return False
    return True


def _failed(
    session: Session, account: AdAccount, rows: list[ActionHistory], now: datetime
) -> Notification:
    rule = session.get(AutomationRule, rows[0].rule_id) if rows[0].rule_id else None
    name = account_label(account.name, account.external_id)
    count = f"{len(rows)} actions" if len(rows) > 1 else "An action"
    return Notification(
        account_id=account.id,
        rule_id=rows[0].rule_id,
        kind=Event.ACTION_FAILED,
        title=f"{count} failed on {account.name}",
        body="Meta did not apply these changes; nothing else was changed. The reason is "
        "beside each; Executions shows the run.",
        link=EVENTS[Event.ACTION_FAILED].page,
        details={
            "items": [_failure(r) for r in rows[:LISTED]] + _more(rows),
            "facts": {
                "Account": name,
                **({"Rule": rule.name} if rule else {}),
                "Action ids": ", ".join(f"#{r.id}" for r in rows[:LISTED]),
            },
            "action_ids": [r.id for r in rows],
        },
        created_at=now,
    )


def _failure(row: ActionHistory) -> str:
    change = f"{row.old_value} → {row.new_value}" if row.new_value else ""
    what = f"{action_words(row.action_type)} {row.entity_name or 'an entity'} {change}".strip()
    return f"{what}: {row.error_message or 'failed'}"


def _waiting(
    session: Session, account: AdAccount, rows: list[PendingAction], now: datetime
) -> Notification:
    name = account_label(account.name, account.external_id)
    count = f"{len(rows)} proposals wait" if len(rows) > 1 else "A proposal waits"
    first = min(r.expires_at for r in rows)
    return Notification(
        account_id=account.id,
        kind=Event.APPROVALS_WAITING,
        title=f"{count} for approval on {account.name}",
        body=f"Approve or reject them on the Approvals page before {first:%Y-%m-%d %H:%M} "
        "UTC, when the first expires.",
        link=EVENTS[Event.APPROVALS_WAITING].page,
        details={
            "items": [_proposal(p) for p in rows[:LISTED]] + _more(rows),
            "facts": {"Account": name, "Waiting": str(len(rows))},
            "approval_ids": [p.id for p in rows],
        },
        created_at=now,
    )


def _proposal(row: PendingAction) -> str:
    p = row.proposal
    change = f" {p.get('old')} → {p.get('new')}" if p.get("new") else ""
    rule = f" ({p['rule_name']})" if p.get("rule_name") else ""
    return f"{action_words(row.action_type)} {p.get('entity_name') or 'an entity'}{change}{rule}"


def _more(rows: Sequence[object]) -> list[str]:
    return [f"… and {len(rows) - LISTED} more"] if len(rows) > LISTED else []


# ----------------------------------------------------------------------- fan out


def fan_out(now: datetime, *, engine: Engine | None = None) -> tuple[int, int]:
    """Recipients for up to BATCH new notifications: (notifications, deliveries)."""
    settings = get_settings()
    team = [c for c in ("slack", "webhook") if CHANNELS[c].configured(settings)]
    team_events = set(event_kinds(settings.team_events))
    with write_session(engine) as session:
        notes = session.scalars(
            select(Notification)
            .where(Notification.fanned_out_at.is_(None))
            .order_by(Notification.id)
            .limit(BATCH)
        ).all()
        if not notes:
            return 0, 0
        people = _people(session)
        preferences = preferences_of(session, [a.user_id for a in people if a.user_id])
        queued = 0
        for note in notes:
            taken = rows_changed(
                session,
                update(Notification)
                .where(Notification.id == note.id, Notification.fanned_out_at.is_(None))
                .values(fanned_out_at=now)
                .execution_options(synchronize_session=False),
            )
            if not taken:
                continue  # another process fanned it out
            kind = event_of(note.kind)
            for actor in _recipients(note, kind.hears, people):
                assert actor.user_id is not None
                session.add(
                    NotificationReceipt(
                        notification_id=note.id, user_id=actor.user_id, created_at=now
                    )
                )
                prefs = preferences[actor.user_id]
                for channel, target in _personal(prefs, kind.event, actor, settings):
                    session.add(
                        _delivery(
                            note, actor.user_id, channel, target, now, prefs.quiet_until(now) or now
                        )
                    )
                    queued += 1
            if note.user_id is None and kind.event in team_events:
                for channel in team:
                    session.add(_delivery(note, None, channel, "team", now, now))
                    queued += 1
        return len(notes), queued


def _people(session: Session) -> list[Actor]:
    ids = session.scalars(select(User.id).where(User.disabled_at.is_(None)).order_by(User.id))
    return [load_actor(session, user_id, via="scheduler") for user_id in ids]


def _recipients(note: Notification, hears: object, people: list[Actor]) -> list[Actor]:
    if note.user_id is not None:  # one person's own (a digest)
        return [a for a in people if a.user_id == note.user_id]
    if note.account_id is None:  # about Rex as a whole: its admins
        return [a for a in people if a.admin]
    return [a for a in people if a.can(hears, note.account_id)]  # type: ignore[arg-type]


def _personal(
    prefs: Preferences, event: Event, actor: Actor, settings: Settings
) -> list[tuple[str, str]]:
    if not prefs.hears(event):
        return []
    out = []
    if "email" in prefs.channels and CHANNELS["email"].configured(settings):
        out.append(("email", actor.email))
    for channel, own in (("slack", prefs.has_slack_url), ("webhook", prefs.has_webhook_url)):
        if channel in prefs.channels and own:
            out.append((channel, "user"))
    return out


def _delivery(
    note: Notification,
    user_id: int | None,
    channel: str,
    target: str,
    now: datetime,
    not_before: datetime,
) -> NotificationDelivery:
    key = hashlib.sha256(f"{note.id}:{user_id or 'team'}:{channel}:{target}".encode()).hexdigest()
    return NotificationDelivery(
        notification_id=note.id,
        user_id=user_id,
        channel=channel,
        target=target,
        idempotency_key=key,
        status="pending",
        attempts=0,
        not_before=not_before,
        created_at=now,
    )
