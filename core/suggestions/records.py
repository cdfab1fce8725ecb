"""A suggestion's life on the record: found, refreshed, decided, expired, superseded.

    new ──apply──▶ applied            (the change written; or, where a person must approve,
     │  └─apply──▶ queued ──▶ applied  queued until the approval queue decides)
     ├─dismiss (with a reason)──▶ dismissed
     ├─the evidence no longer holds──▶ expired
     └─a newer suggestion proposes another change to the same segment──▶ superseded

Every change of status is an event (`rex_suggestion_events`): from what, to what, by
whom, why. A suggestion's *subject* is what it is about (account, ad set, kind,
dimension, segment, direction); its *fingerprint* is the subject and the change it
proposes. Generating again (`reconcile`):

* refreshes an open suggestion with the same fingerprint (its evidence, effect and
  confidence move with the data; it keeps its id and history);
* supersedes an open one with the same subject and another change (a budget shift of
  another amount, a schedule of other hours) by a new one;
* expires an open one that was not found again — the evidence no longer holds (or its
  ad set stopped delivering);
* leaves a dismissed one dismissed unless the evidence changed materially: the new
  estimate of the weekly profit falls outside the interval the dismissed one stated (the
  data now say something it did not), and then the new one is a new suggestion;
* never makes a second open suggestion for the same change — the database refuses it
  too (a partial unique index on the fingerprint of open suggestions).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.access.actor import Actor
from core.access.audit import record
from core.access.roles import Permission
from core.db import write_session
from core.db.models import AdAccount, RexSuggestion, RexSuggestionEvent
from core.enums import OPEN_SUGGESTIONS, SuggestionStatus
from core.errors import InputError, NotFoundError, RexError

NEW, QUEUED, APPLIED = SuggestionStatus.NEW, SuggestionStatus.QUEUED, SuggestionStatus.APPLIED
DISMISSED, EXPIRED = SuggestionStatus.DISMISSED, SuggestionStatus.EXPIRED
SUPERSEDED = SuggestionStatus.SUPERSEDED


class SuggestionStateError(RexError):
    """The suggestion is not in a state that allows this (applied already, dismissed …)."""


@dataclass(frozen=True)
class Found:
    """A suggestion as generation found it, before it meets the record (core/db/models.py
    `RexSuggestion` holds the same facts)."""

    subject: str
    fingerprint: str
    values: dict[str, Any]  # the RexSuggestion columns it sets (entity, kind, evidence …)

    @property
    def estimate_minor(self) -> int:
        return int(self.values["weekly_profit_minor"])


@dataclass
class Reconciled:
    """What one generation did to an account's suggestions."""

    new: list[int] = field(default_factory=list)
    refreshed: list[int] = field(default_factory=list)
    superseded: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)
    still_dismissed: list[int] = field(default_factory=list)  # found again, not material
    already_applied: list[int] = field(default_factory=list)  # found again, already done

    def add(self, other: Reconciled) -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))


def reconcile(
    account: AdAccount,
    found: Iterable[Found],
    *,
    now: datetime,
    by: str = "rex",
    engine: Engine | None = None,
) -> Reconciled:
    """Bring the account's suggestions in line with what was found now (see the module)."""
    done = Reconciled()
    found = list(found)
    with write_session(engine) as session:
        rows = session.scalars(
            select(RexSuggestion).where(
                RexSuggestion.account_id == account.id, RexSuggestion.fingerprint.is_not(None)
            )
        ).all()
        open_by_fingerprint = {r.fingerprint: r for r in rows if r.status in OPEN_SUGGESTIONS}
        open_by_subject = {_subject(r): r for r in rows if r.status == NEW}
        latest: dict[tuple[str, SuggestionStatus], RexSuggestion] = {}
        for row in sorted(rows, key=lambda r: r.id):
            latest[(row.fingerprint or "", row.status)] = row
        seen: set[int] = set()
        for item in found:
            same = open_by_fingerprint.get(item.fingerprint)
            if same is not None:
                seen.add(same.id)
                if same.status == NEW:
                    _refresh(same, item, now)
                    done.refreshed.append(same.id)
                continue
            applied = latest.get((item.fingerprint, APPLIED))
            if applied is not None:
                done.already_applied.append(applied.id)
                continue
            dismissed = latest.get((item.fingerprint, DISMISSED))
            if dismissed is not None and not _material(dismissed, item):
                done.still_dismissed.append(dismissed.id)
                continue
            row = _new_row(account, item, now)
            session.add(row)
            session.flush()
            _event(session, row, None, NEW, by, _found_reason(dismissed), now)
            done.new.append(row.id)
            seen.add(row.id)
            older = open_by_subject.get(item.subject)
            if older is not None and older.id not in seen:
                older.superseded_by_id = row.id
                reason = f"superseded by suggestion {row.id}: {row.title}"
                move(session, older, SUPERSEDED, by=by, reason=reason, now=now)
                done.superseded.append(older.id)
                seen.add(older.id)
        for row in rows:
            if row.status == NEW and row.id not in seen:
                move(session, row, EXPIRED, by=by, reason=EXPIRED_REASON, now=now)
                done.expired.append(row.id)
    return done


EXPIRED_REASON = (
    "the evidence no longer holds: on the latest data the segment no longer differs "
    "credibly from the rest of its ad set, or the ad set is not delivering"
)


def dismiss(
    suggestion_id: int,
    reason: str,
    *,
    by: Actor,
    now: datetime,
    engine: Engine | None = None,
) -> RexSuggestion:
    """Dismiss a new suggestion with a reason (kept on the record), as `by` (who may
    apply suggestions on its account)."""
    reason = (reason or "").strip()
    if not reason:
        raise InputError("reason", "say why it is dismissed (e.g. 'we sell to 55+ in store')")
    with write_session(engine) as session:
        row = get_row(session, suggestion_id, by)
        by.require(Permission.APPLY_SUGGESTIONS, row.account_id)
        if row.status != NEW:
            raise SuggestionStateError(
                f"suggestion {suggestion_id} is {row.status}: only a new suggestion can be "
                "dismissed" + (" (reject it in Approvals instead)" if row.status == QUEUED else "")
            )
        row.decided_by = by.label
        move(session, row, DISMISSED, by=by.label, reason=reason, now=now)
        record(session, by, "suggestion.dismiss", "suggestion", row.id,
               account_id=row.account_id, new={"reason": reason}, at=now)  # fmt: skip
        session.flush()
        session.expunge(row)
        return row


def get_row(session: Session, suggestion_id: int, actor: Actor | None = None) -> RexSuggestion:
    """The suggestion; NotFoundError when there is none — or, with `actor`, when it is on
    an account they may not read."""
    row = session.get(RexSuggestion, suggestion_id)
    if row is None or (actor is not None and not actor.can(Permission.READ, row.account_id)):
        raise NotFoundError(f"no suggestion with id {suggestion_id}")
    return row


def move(
    session: Session,
    row: RexSuggestion,
    status: SuggestionStatus,
    *,
    by: str,
    reason: str | None,
    now: datetime,
) -> None:
    """Change a suggestion's status, with its event."""
    previous = row.status
    row.status = status
    row.reason = reason
    row.updated_at = now
    if status == APPLIED:
        row.applied_at = now
    _event(session, row, previous, status, by, reason, now)


def _event(
    session: Session,
    row: RexSuggestion,
    previous: SuggestionStatus | None,
    status: SuggestionStatus,
    by: str,
    reason: str | None,
    now: datetime,
) -> None:
    session.add(
        RexSuggestionEvent(
            suggestion_id=row.id, at=now, previous=previous, status=status, by=by, reason=reason
        )
    )


def _new_row(account: AdAccount, item: Found, now: datetime) -> RexSuggestion:
    return RexSuggestion(
        account_id=account.id,
        status=NEW,
        created_at=now,
        updated_at=now,
        fingerprint=item.fingerprint,
        **item.values,
    )


def _refresh(row: RexSuggestion, item: Found, now: datetime) -> None:
    """The new evidence into an open suggestion; what applying keeps in its detail (the
    attempt, the actions and approvals in flight, the rules made) stays."""
    for name, value in item.values.items():
        if name == "detail":
            value = {**(row.detail or {}), **value}
        setattr(row, name, value)
    row.updated_at = now


def _material(dismissed: RexSuggestion, item: Found) -> bool:
    """Whether the evidence changed materially since the dismissal: the new estimate is
    outside the interval the dismissed suggestion stated."""
    low, high = dismissed.weekly_profit_low_minor, dismissed.weekly_profit_high_minor
    if low is None or high is None:
        return True
    return not low <= item.estimate_minor <= high


def _found_reason(dismissed: RexSuggestion | None) -> str | None:
    if dismissed is None:
        return None
    return (
        f"found again with evidence that changed materially since suggestion {dismissed.id} "
        "was dismissed (the weekly effect is now outside the interval it stated)"
    )


def _subject(row: RexSuggestion) -> str:
    return (row.detail or {}).get("subject", "")
