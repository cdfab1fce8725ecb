"""The delivering half of the outbox: each queued message sent at most once.

A delivery goes `pending` → `sending` (claimed by one scheduler, committed) →
`in_flight_at` set (committed just before the message leaves, core/notify/channels.py)
→ `sent`, back to `pending` with a later `not_before` (retried: exponential backoff
with jitter, never before the receiver's Retry-After), `failed` (refused for good, or
the last attempt failed) or `unknown` (no answer after it left).

A scheduler that stops for good mid-send leaves its claim to expire
(REX_NOTIFY_CLAIM_SECONDS). Then `recover` decides: a claim that never reached
`in_flight_at` sent nothing and goes back to `pending` (never lost); one that did may
have arrived and becomes `unknown` — shown on Health and on the notification, never sent
again by itself (never twice). `python -m core notifications retry` sends failed or
unknown ones again when a person decides so.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update

from core.access.actor import Actor, load_actor
from core.access.audit import record
from core.access.roles import Permission
from core.crypto import SecretKeyError, secret_box
from core.db import read_session, rows_changed, write_session
from core.db.models import (
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    NotificationPreference,
    User,
)
from core.db.types import utcnow
from core.errors import NotFoundError
from core.notify.channels import CHANNELS, MaybeDelivered, TryAgain, Undeliverable
from core.notify.events import event_of
from core.notify.inbox import to_words
from core.notify.messages import Message
from core.notify.preferences import my_preferences, of_row
from core.settings import Settings, get_settings

log = logging.getLogger("rex.notify")

MAX_BACKOFF = timedelta(hours=1)
SLACK_PACE = 1.0  # seconds between two messages to one Slack webhook (its rate limit)
BATCH = 100  # deliveries attempted per call
STOPPED = (
    "Rex stopped while sending this, after it had left: it may or may not have arrived, "
    "so it is not sent again by itself (`python -m core notifications retry` sends it)"
)


@dataclass
class Delivered:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0  # the person no longer has access, or no longer wants it
    recovered: int = 0  # claims of a stopped scheduler given back or marked unknown
    errors: list[str] = field(default_factory=list)


def deliver_due(
    now: datetime | None = None,
    *,
    runner: str,
    engine: Engine | None = None,
    stop: object = None,
) -> Delivered:
    """Send what is due, oldest first; `stop` (a threading.Event) ends it between
    messages."""
    settings = get_settings()
    done = Delivered(recovered=recover(now or utcnow(), engine=engine))
    with read_session(engine) as session:
        due = session.scalars(
            select(NotificationDelivery.id)
            .where(
                NotificationDelivery.status == DeliveryStatus.PENDING,
                NotificationDelivery.not_before <= (now or utcnow()),
            )
            .order_by(NotificationDelivery.not_before, NotificationDelivery.id)
            .limit(BATCH)
        ).all()
    held: dict[tuple[str, str, int | None], datetime] = {}  # rate-limited until
    paced: dict[str, float] = {}  # Slack webhook → when the last message went
    for delivery_id in due:
        if stop is not None and stop.is_set():  # type: ignore[attr-defined]
            break
        _deliver_one(delivery_id, runner, settings, engine, done, held, paced)
    return done


def _deliver_one(
    delivery_id: int,
    runner: str,
    settings: Settings,
    engine: Engine | None,
    done: Delivered,
    held: dict[tuple[str, str, int | None], datetime],
    paced: dict[str, float],
) -> None:
    now = utcnow()
    claimed = _claim(delivery_id, runner, now, settings, engine)
    if claimed is None:
        return  # another scheduler took it
    row, note = claimed
    if (why := _not_wanted(engine, row, note)) is not None:
        _finish(engine, row.id, runner, status=DeliveryStatus.SKIPPED, error=why)
        done.skipped += 1
        return
    where = (row.channel, row.target, row.user_id)
    if where in held and held[where] > now:  # its receiver asked us to wait
        _finish(
            engine,
            row.id,
            runner,
            status=DeliveryStatus.PENDING,
            not_before=held[where],
            attempts=row.attempts - 1,
        )
        return
    left: list[bool] = []

    def leaving() -> None:
        _in_flight(engine, row.id, runner)
        left.append(True)

    try:
        message = Message.of(
            kind=note.kind,
            title=note.title,
            body=note.body,
            details=note.details,
            link=note.link,
            at=note.created_at,
            key=row.idempotency_key,
            base=settings.link_base,
        )
        address = _address(engine, row.channel, row.target, row.user_id, settings)
        if row.channel == "slack":
            _pace(paced, address)
        CHANNELS[row.channel].send(message, address, settings, leaving)
    except TryAgain as error:
        if row.attempts >= settings.notify_max_attempts:
            _finish(
                engine,
                row.id,
                runner,
                status=DeliveryStatus.FAILED,
                error=f"{error} (gave up after {row.attempts} attempts)",
            )
            done.failed += 1
            return
        later = utcnow() + backoff(row.attempts, settings.notify_backoff_seconds, error.retry_after)
        if error.retry_after is not None:
            held[where] = later
        _finish(
            engine,
            row.id,
            runner,
            status=DeliveryStatus.PENDING,
            not_before=later,
            error=f"{error} (attempt {row.attempts}; next at {later:%H:%M:%S} UTC)",
        )
        done.retrying += 1
    except Undeliverable as error:
        _finish(engine, row.id, runner, status=DeliveryStatus.FAILED, error=str(error))
        done.failed += 1
        done.errors.append(str(error))
    except MaybeDelivered as error:
        _finish(engine, row.id, runner, status=DeliveryStatus.UNKNOWN, error=str(error))
        done.unknown += 1
    except Exception as error:  # Rex's own fault: recorded, and the others still go
        log.exception("delivery %s failed in Rex", row.id)
        said = f"Rex could not send it ({type(error).__name__}: {error})"
        _finish(
            engine,
            row.id,
            runner,
            error=said,
            status=DeliveryStatus.UNKNOWN if left else DeliveryStatus.FAILED,
        )
        done.unknown += bool(left)
        done.failed += not left
    else:
        _finish(engine, row.id, runner, status=DeliveryStatus.SENT, sent_at=utcnow())
        done.sent += 1


def backoff(attempt: int, base: float, retry_after: float | None = None) -> timedelta:
    """Attempt n waits base · 2^(n-1), at most an hour, with jitter (half of it drawn at
    random, so retries from many deliveries spread out) — and never less than the
    receiver's Retry-After."""
    ceiling = min(base * 2 ** max(0, attempt - 1), MAX_BACKOFF.total_seconds())
    wait = ceiling / 2 + random.uniform(0, ceiling / 2)
    return timedelta(seconds=max(wait, retry_after or 0.0))


# ----------------------------------------------------------------------- record


def _claim(
    delivery_id: int, runner: str, now: datetime, settings: Settings, engine: Engine | None
) -> tuple[NotificationDelivery, Notification] | None:
    with write_session(engine) as session:
        taken = rows_changed(
            session,
            update(NotificationDelivery)
            .where(
                NotificationDelivery.id == delivery_id,
                NotificationDelivery.status == DeliveryStatus.PENDING,
            )
            .values(
                status=DeliveryStatus.SENDING,
                claimed_by=runner,
                in_flight_at=None,
                claim_expires_at=now + timedelta(seconds=settings.notify_claim_seconds),
                attempts=NotificationDelivery.attempts + 1,
            )
            .execution_options(synchronize_session=False),
        )
        if not taken:
            return None
        row = session.get_one(NotificationDelivery, delivery_id)
        session.refresh(row)
        return row, session.get_one(Notification, row.notification_id)


def _not_wanted(engine: Engine | None, row: NotificationDelivery, note: Notification) -> str | None:
    """Why a person's message is no longer sent (hours may pass in quiet hours or a
    backoff): they were disabled, lost access to the account, or turned the event or
    the channel off since. None: send it."""
    if row.user_id is None:
        return None  # a team channel
    with read_session(engine) as session:
        user = session.get(User, row.user_id)
        if user is None or user.disabled_at is not None:
            return "not sent: the user was disabled"
        actor = load_actor(session, row.user_id, via="scheduler")
        prefs = of_row(session.get(NotificationPreference, row.user_id), row.user_id)
    kind = event_of(note.kind)
    if note.user_id is None and not (
        actor.admin if note.account_id is None else actor.can(kind.hears, note.account_id)
    ):
        return "not sent: they no longer have access to the account"
    if not prefs.hears(kind.event) or row.channel not in prefs.channels:
        return f"not sent: they turned {kind.label.lower()} or {CHANNELS[row.channel].label} off"
    return None


def _address(
    engine: Engine | None, channel: str, target: str, user_id: int | None, settings: Settings
) -> str:
    """Where a message goes: the e-mail address (`target`), the team channel's URL
    ("team") or the person's own ("user"); Undeliverable when it is no longer set."""
    label = CHANNELS[channel].label
    if channel == "email":
        return target
    if target == "team":
        secret = settings.slack_webhook_url if channel == "slack" else settings.webhook_url
        if secret is None:
            name = "REX_SLACK_WEBHOOK_URL" if channel == "slack" else "REX_WEBHOOK_URL"
            raise Undeliverable(f"the team's {label} is no longer set up: set {name}")
        return secret.get_secret_value()
    with read_session(engine) as session:
        prefs = session.get(NotificationPreference, user_id) if user_id else None
        stored = getattr(prefs, f"{channel}_url", None) if prefs else None
    if not stored:
        raise Undeliverable(f"no {label} URL is set any more (Notifications → Preferences)")
    try:
        return secret_box().decrypt(stored)
    except SecretKeyError:
        raise Undeliverable(
            f"the stored {label} URL cannot be decrypted with the current key: set it again"
        ) from None


def _pace(paced: dict[str, float], address: str) -> None:
    """Slack takes about one message a second per webhook: keep to it."""
    wait = paced.get(address, 0.0) + SLACK_PACE - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    paced[address] = time.monotonic()


def _in_flight(engine: Engine | None, delivery_id: int, runner: str) -> None:
    with write_session(engine) as session:
        rows_changed(
            session,
            update(NotificationDelivery)
            .where(
                NotificationDelivery.id == delivery_id, NotificationDelivery.claimed_by == runner
            )
            .values(in_flight_at=utcnow())
            .execution_options(synchronize_session=False),
        )


def _finish(
    engine: Engine | None,
    delivery_id: int,
    runner: str,
    *,
    status: DeliveryStatus,
    error: str | None = None,
    not_before: datetime | None = None,
    sent_at: datetime | None = None,
    attempts: int | None = None,
) -> None:
    values: dict[str, object] = {"status": status, "claimed_by": None, "claim_expires_at": None}
    if status != DeliveryStatus.SENT:
        values["last_error"] = error
    if status == DeliveryStatus.PENDING:
        values["in_flight_at"] = None
    for name, value in (("not_before", not_before), ("sent_at", sent_at), ("attempts", attempts)):
        if value is not None:
            values[name] = value
    with write_session(engine) as session:
        changed = rows_changed(
            session,
            update(NotificationDelivery)
            .where(
                NotificationDelivery.id == delivery_id, NotificationDelivery.claimed_by == runner
            )
            .values(**values)
            .execution_options(synchronize_session=False),
        )
    if not changed:
        log.warning("delivery %s: the claim had passed to another scheduler", delivery_id)


def recover(now: datetime, *, engine: Engine | None = None) -> int:
    """Expired claims: never left → pending again; left → unknown."""
    expired = (
        NotificationDelivery.status == DeliveryStatus.SENDING,
        NotificationDelivery.claim_expires_at < now,
    )
    with write_session(engine) as session:
        again = rows_changed(
            session,
            update(NotificationDelivery)
            .where(*expired, NotificationDelivery.in_flight_at.is_(None))
            .values(
                status=DeliveryStatus.PENDING,
                claimed_by=None,
                claim_expires_at=None,
                not_before=now,
            )
            .execution_options(synchronize_session=False),
        )
        lost = rows_changed(
            session,
            update(NotificationDelivery)
            .where(*expired, NotificationDelivery.in_flight_at.is_not(None))
            .values(
                status=DeliveryStatus.UNKNOWN,
                claimed_by=None,
                claim_expires_at=None,
                last_error=STOPPED,
            )
            .execution_options(synchronize_session=False),
        )
    return again + lost


def retry(
    delivery_ids: Iterable[int] | None = None, *, by: Actor, engine: Engine | None = None
) -> int:
    """Send failed or unknown deliveries again (all of them, or these): a person's
    decision, in the audit log. An unknown one may then arrive twice."""
    by.require(Permission.MANAGE_ACCOUNTS)
    with write_session(engine) as session:
        query = select(NotificationDelivery.id).where(
            NotificationDelivery.status.in_([DeliveryStatus.FAILED, DeliveryStatus.UNKNOWN])
        )
        if delivery_ids is not None:
            wanted = list(delivery_ids)
            query = query.where(NotificationDelivery.id.in_(wanted))
        ids = list(session.scalars(query))
        if delivery_ids is not None and (missing := sorted(set(wanted) - set(ids))):
            raise NotFoundError(f"no failed or unknown delivery {', '.join(map(str, missing))}")
        if ids:
            session.execute(
                update(NotificationDelivery)
                .where(NotificationDelivery.id.in_(ids))
                .values(
                    status=DeliveryStatus.PENDING,
                    attempts=0,
                    not_before=utcnow(),
                    in_flight_at=None,
                )
                .execution_options(synchronize_session=False)
            )
            record(session, by, "notifications.retry", "delivery", None, new={"ids": ids})
    return len(ids)


@dataclass(frozen=True)
class TestResult:
    channel: str  # its label
    to: str
    words: str  # "sent", or what went wrong and what to do


def send_test(*, by: Actor) -> list[TestResult]:
    """A test message on each of `by`'s channels now — and, for an admin, on the team's —
    outside the outbox (nothing is recorded): to check the settings."""
    settings = get_settings()
    message = Message.of(kind="rule_notify", title="Rex test message",
                         body=f"{by.label} asked Rex to test its notification settings.",
                         details={"facts": {"Sent by": by.label}}, link="notifications",
                         at=utcnow(), key=secrets.token_hex(32),
                         base=settings.link_base)  # fmt: skip
    prefs = my_preferences(actor=by)
    targets = []  # (channel, target) as the outbox would queue them
    if by.user_id is not None and CHANNELS["email"].configured(settings):
        targets.append(("email", by.email))
    targets += [(c, "user") for c, own in (("slack", prefs.has_slack_url),
                                           ("webhook", prefs.has_webhook_url)) if own]  # fmt: skip
    if by.can(Permission.MANAGE_ACCOUNTS):
        targets += [(c, "team") for c in ("slack", "webhook") if CHANNELS[c].configured(settings)]
    results = []
    for channel, target in targets:
        try:
            address = _address(None, channel, target, by.user_id, settings)
            CHANNELS[channel].send(message, address, settings, lambda: None)
            words = "sent"
        except (TryAgain, Undeliverable, MaybeDelivered) as error:
            words = f"{type(error).__name__}: {error}"
        results.append(TestResult(CHANNELS[channel].label, to_words(target), words))
    return results
