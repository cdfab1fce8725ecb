"""A person's notifications in the app, read or not, whatever their channels — with
where each went and whether it arrived — and the outbox's state for Health.

Only what they were told, and only while they still have access to its account: a
person whose grant was taken away no longer reads about that account here either.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, or_, select, update

from core.access.actor import Actor
from core.access.roles import Permission
from core.db import read_session, rows_changed, write_session
from core.db.models import (
    AdAccount,
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    NotificationReceipt,
    User,
)
from core.db.types import utcnow
from core.labels import account_label
from core.notify.channels import CHANNELS
from core.notify.events import event_of
from core.settings import get_settings


@dataclass(frozen=True)
class DeliveryView:
    id: int
    channel: str  # "E-mail", "Slack", "Webhook"
    to: str  # "ana@example.com", "the team's channel", "your own"
    status: DeliveryStatus
    attempts: int
    at: datetime | None  # sent, or next try
    error: str | None

    @property
    def words(self) -> str:
        """ "sent", "failed: …", "retrying at 12:03:00 UTC: …", "may not have arrived: …"."""
        if self.status == DeliveryStatus.SENT:
            return "sent"
        if self.status == DeliveryStatus.PENDING:
            when = f" at {self.at:%Y-%m-%d %H:%M} UTC" if self.at else ""
            return f"waiting{when}" + (f" (last try: {self.error})" if self.error else "")
        if self.status == DeliveryStatus.SKIPPED:
            return self.error or "not sent"
        if self.status == DeliveryStatus.SENDING:
            return "sending"
        if self.status == DeliveryStatus.UNKNOWN:
            return f"may not have arrived: {self.error}"
        return f"failed: {self.error}"


@dataclass(frozen=True)
class InboxItem:
    receipt_id: int
    notification_id: int
    event: str  # the event's label
    title: str
    body: str
    items: tuple[str, ...]
    facts: tuple[tuple[str, str], ...]
    account: str | None
    link: str | None  # absolute
    page: str | None  # the Streamlit page it opens ("approvals")
    created_at: datetime
    read_at: datetime | None
    deliveries: tuple[DeliveryView, ...]

    @property
    def unread(self) -> bool:
        return self.read_at is None


@dataclass(frozen=True)
class Inbox:
    items: list[InboxItem]
    unread: int
    total: int


def inbox(
    *, actor: Actor, unread_only: bool = False, limit: int = 100, engine: Engine | None = None
) -> Inbox:
    if actor.user_id is None:
        return Inbox([], 0, 0)
    base = get_settings().link_base
    with read_session(engine) as session:
        query = (
            select(NotificationReceipt, Notification, AdAccount)
            .join(Notification, Notification.id == NotificationReceipt.notification_id)
            .outerjoin(AdAccount, AdAccount.id == Notification.account_id)
            .where(NotificationReceipt.user_id == actor.user_id, _readable(actor))
        )
        counted = query.with_only_columns(NotificationReceipt.read_at).subquery()
        counts = session.execute(
            select(func.count(), func.count().filter(counted.c.read_at.is_(None)))
        ).one()  # fmt: skip
        if unread_only:
            query = query.where(NotificationReceipt.read_at.is_(None))
        rows = session.execute(query.order_by(Notification.id.desc()).limit(limit)).all()
        deliveries = _deliveries(session, [n.id for _, n, _ in rows], actor.user_id)
    items = [
        InboxItem(
            receipt_id=receipt.id, notification_id=note.id, event=event_of(note.kind).label,
            title=note.title, body=note.body or "",
            items=tuple((note.details or {}).get("items") or ()),
            facts=tuple((note.details or {}).get("facts", {}).items()),
            account=account_label(account.name, account.external_id) if account else None,
            link=f"{base}/{note.link.lstrip('/')}" if note.link else None, page=note.link,
            created_at=note.created_at, read_at=receipt.read_at,
            deliveries=tuple(deliveries.get(note.id, ())),
        )
        for receipt, note, account in rows
    ]  # fmt: skip
    return Inbox(items, unread=counts[1], total=counts[0])


def unread_count(*, actor: Actor, engine: Engine | None = None) -> int:
    if actor.user_id is None:
        return 0
    with read_session(engine) as session:
        return session.scalar(
            select(func.count())
            .select_from(NotificationReceipt)
            .join(Notification, Notification.id == NotificationReceipt.notification_id)
            .where(NotificationReceipt.user_id == actor.user_id,
                   NotificationReceipt.read_at.is_(None), _readable(actor))
        ) or 0  # fmt: skip


def mark_read(
    receipt_ids: list[int] | None = None, *, actor: Actor, unread: bool = False,
    engine: Engine | None = None,
) -> int:  # fmt: skip
    """Mark their own notifications read (these, or all) — or unread again."""
    if actor.user_id is None:
        return 0
    with write_session(engine) as session:
        query = update(NotificationReceipt).where(NotificationReceipt.user_id == actor.user_id)
        if receipt_ids is not None:
            query = query.where(NotificationReceipt.id.in_(receipt_ids))
        return rows_changed(
            session, query.values(read_at=None if unread else utcnow())
            .execution_options(synchronize_session=False)
        )  # fmt: skip


def _readable(actor: Actor) -> Any:
    """Their own (a digest), or about an account they may still read."""
    accounts = actor.account_ids(Permission.READ)
    if accounts is None:
        return Notification.id.is_not(None)
    return or_(Notification.user_id == actor.user_id, Notification.account_id.in_(accounts))


def _deliveries(session: Any, ids: list[int], user_id: int | None) -> dict[int, list[DeliveryView]]:
    """Each notification's deliveries to this person and to the team's channels."""
    found: dict[int, list[DeliveryView]] = defaultdict(list)
    if not ids:
        return found
    rows = session.scalars(
        select(NotificationDelivery).where(
            NotificationDelivery.notification_id.in_(ids),
            or_(NotificationDelivery.user_id == user_id, NotificationDelivery.user_id.is_(None)),
        ).order_by(NotificationDelivery.id)
    )  # fmt: skip
    for row in rows:
        found[row.notification_id].append(_view(row))
    return found


def to_words(target: str, owner: str | None = None) -> str:
    """A delivery's target as people read it: the address, "the team's channel", "your
    own" (Health, with `owner`: "ana@example.com's own")."""
    own = f"{owner}'s own" if owner else "your own"
    return {"team": "the team's channel", "user": own}.get(target, target)


def _view(row: NotificationDelivery, owner: str | None = None) -> DeliveryView:
    to = to_words(row.target, owner)
    at = row.sent_at if row.status == DeliveryStatus.SENT else row.not_before
    return DeliveryView(row.id, CHANNELS[row.channel].label, to, row.status, row.attempts, at,
                        row.last_error)  # fmt: skip


# ------------------------------------------------------------------------ Health


@dataclass(frozen=True)
class OutboxHealth:
    channels: dict[str, bool]  # label → set up
    counts: dict[str, int]  # status → deliveries of the last `days`
    troubled: list[tuple[str, DeliveryView]]  # (the notification's title, its delivery)


def outbox_health(*, actor: Actor, days: int = 7, engine: Engine | None = None) -> OutboxHealth:
    """For admins (Health): the channels, and the deliveries that failed or may not have
    arrived, newest first."""
    actor.require(Permission.MANAGE_ACCOUNTS)
    settings = get_settings()
    since = utcnow() - timedelta(days=days)
    with read_session(engine) as session:
        counts = Counter(dict(session.execute(
            select(NotificationDelivery.status, func.count())
            .where(NotificationDelivery.created_at >= since)
            .group_by(NotificationDelivery.status)).all()))  # fmt: skip
        troubled = session.execute(
            select(Notification.title, NotificationDelivery, User.email)
            .join(Notification, Notification.id == NotificationDelivery.notification_id)
            .outerjoin(User, User.id == NotificationDelivery.user_id)
            .where(NotificationDelivery.status.in_([DeliveryStatus.FAILED, DeliveryStatus.UNKNOWN]),
                   NotificationDelivery.created_at >= since)
            .order_by(NotificationDelivery.id.desc()).limit(50)
        ).all()  # fmt: skip
    return OutboxHealth(
        channels={c.label: c.configured(settings) for c in CHANNELS.values()},
        counts={s.value: counts.get(s, 0) for s in DeliveryStatus},
        troubled=[(title, _view(row, email)) for title, row, email in troubled],
    )
