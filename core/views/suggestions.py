"""Suggestions as the page and the CLI show them: by expected weekly impact, with the
numbers for the segment and the rest, the change, the confidence and the why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from core.access.actor import Actor
from core.access.roles import Permission
from core.db import read_session
from core.db.models import AdAccount, RexSuggestion, RexSuggestionEvent
from core.enums import SuggestionStatus
from core.errors import InputError
from core.labels import account_label, segment_name
from core.money import format_minor, from_minor
from core.views.outcomes import outcome_words

KINDS = ("demographic", "placement", "geography", "dayparting", "budget")


@dataclass(frozen=True)
class SuggestionEventView:
    at: datetime
    previous: str | None
    status: str
    by: str
    reason: str | None


@dataclass(frozen=True)
class SuggestionView:
    id: int
    kind: str
    status: SuggestionStatus
    account_id: str  # act_…
    account_name: str
    currency: str
    entity_id: str | None  # the ad set's Meta id
    entity_name: str | None
    level: str | None
    dimension: str | None
    segment: tuple[str, ...]
    direction: str | None
    title: str
    why: str
    action: dict[str, Any] | None
    not_applicable: str | None
    weekly_profit_minor: tuple[int, int, int] | None  # estimate, low, high
    confidence: float | None
    evidence: dict[str, Any]
    reason: str | None
    created_at: datetime
    updated_at: datetime | None
    action_id: int | None
    approval_id: int | None
    events: tuple[SuggestionEventView, ...] = ()
    payback_days: float | None = None  # days the gain takes to pay the learning phase back
    learning_cost_minor: int | None = None  # revenue lost while Meta's learning restarts
    confidence_28_days: float | None = None  # the same chance over four weeks
    measured: str | None = None  # what its change did, once applied (core/outcomes/)

    @property
    def account(self) -> str:
        return account_label(self.account_name, self.account_id)

    @property
    def segment_words(self) -> str:
        return segment_name(self.dimension or "", self.segment) if self.dimension else ""

    @property
    def can_apply(self) -> bool:
        return self.status == SuggestionStatus.NEW and self.action is not None

    def money(self, minor: int | None) -> str:
        return "—" if minor is None else format_minor(minor, self.currency)

    @property
    def weekly_words(self) -> str:
        if self.weekly_profit_minor is None:
            return "—"
        estimate, low, high = (self.money(m) for m in self.weekly_profit_minor)
        return f"{estimate} a week (90 %: {low} to {high})"

    def to_json(self) -> dict[str, Any]:
        """The CLI's JSON: money in the account currency's major units, as strings."""

        def major(minor: int) -> str:
            return str(from_minor(minor, self.currency))

        profit = (
            dict(zip(("estimate", "low", "high"), map(major, self.weekly_profit_minor),
                     strict=True)) | {"currency": self.currency}
            if self.weekly_profit_minor else None
        )  # fmt: skip
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status.value,
            "account_id": self.account_id,
            "entity_id": self.entity_id,
            "entity_name": self.entity_name,
            "level": self.level,
            "dimension": self.dimension,
            "segment": list(self.segment),
            "direction": self.direction,
            "title": self.title,
            "why": self.why,
            "action": self.action,
            "not_applicable": self.not_applicable,
            "expected_weekly_profit": profit,
            "confidence": self.confidence,
            "confidence_28_days": self.confidence_28_days,
            "payback_days": self.payback_days,
            "evidence": self.evidence,
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
            "action_id": self.action_id,
            "approval_id": self.approval_id,
            "outcome": self.measured,
        }


def list_suggestions(
    *,
    actor: Actor,
    status: str | None = None,
    account: str | None = None,
    kind: str | None = None,
    engine: Engine | None = None,
) -> list[SuggestionView]:
    """Suggestions by expected weekly profit, highest first within each currency (amounts in
    two currencies are not compared: Rex keeps no exchange rates); `status` (default: the open
    ones, new and queued; "all" for every one), `account` (act_… or id), `kind` — on the
    accounts `actor` may read."""
    statuses = _statuses(status)
    if kind is not None and kind not in KINDS:
        raise InputError("kind", f"{kind!r} is not a kind; use one of {', '.join(KINDS)}")
    with read_session(engine) as session:
        query = (
            select(RexSuggestion, AdAccount)
            .join(AdAccount, AdAccount.id == RexSuggestion.account_id)
            .where(RexSuggestion.status.in_(statuses))
        )
        if kind is not None:
            query = query.where(RexSuggestion.kind == kind)
        readable = actor.account_ids(Permission.READ)
        if readable is not None:
            query = query.where(RexSuggestion.account_id.in_(readable))
        if account is not None:
            query = query.where(
                (AdAccount.external_id == account) | (AdAccount.id == _int(account))
            )
        rows = session.execute(query).all()
        measured = outcome_words(session, [r.action_id for r, _ in rows if r.action_id])
        views = [_view(row, acc, measured) for row, acc in rows]
    return sorted(views, key=lambda v: (v.currency, -(v.weekly_profit_minor or (0,))[0], v.id))


def get_suggestion(
    suggestion_id: int, *, actor: Actor, engine: Engine | None = None
) -> SuggestionView:
    """One suggestion with its history of states (NotFoundError on an account `actor`
    may not read)."""
    from core.suggestions.records import get_row

    with read_session(engine) as session:
        row = get_row(session, suggestion_id, actor)
        account = session.get_one(AdAccount, row.account_id)
        events = session.scalars(
            select(RexSuggestionEvent)
            .where(RexSuggestionEvent.suggestion_id == row.id)
            .order_by(RexSuggestionEvent.id)
        ).all()
        view = _view(row, account, outcome_words(session, [row.action_id] if row.action_id else []))
        history = tuple(
            SuggestionEventView(e.at, e.previous, e.status, e.by, e.reason) for e in events
        )
    return SuggestionView(**{**view.__dict__, "events": history})


def _statuses(status: str | None) -> tuple[SuggestionStatus, ...]:
    if status is None or status == "open":
        return (SuggestionStatus.NEW, SuggestionStatus.QUEUED)
    if status == "all":
        return tuple(SuggestionStatus)
    try:
        return (SuggestionStatus(status),)
    except ValueError:
        choices = ", ".join(["open", "all", *SuggestionStatus])
        raise InputError("status", f"{status!r} is not a status; use one of {choices}") from None


def _int(text: str) -> int:
    return int(text) if text.isdigit() else -1


def _view(
    row: RexSuggestion, account: AdAccount, measured: dict[int, str] | None = None
) -> SuggestionView:
    detail = row.detail or {}
    profit = (
        (row.weekly_profit_minor, row.weekly_profit_low_minor or 0,
         row.weekly_profit_high_minor or 0)
        if row.weekly_profit_minor is not None else None
    )  # fmt: skip
    return SuggestionView(
        id=row.id,
        kind=row.kind,
        status=row.status,
        account_id=account.external_id,
        account_name=account.name,
        currency=row.currency or account.currency,
        entity_id=detail.get("entity_external_id"),
        entity_name=detail.get("entity_name"),
        level=row.level,
        dimension=row.dimension,
        segment=tuple(row.segment or ()),
        direction=row.direction,
        title=row.title,
        why=str(detail.get("why") or ""),
        action=row.action,
        not_applicable=detail.get("not_applicable"),
        weekly_profit_minor=profit,
        confidence=row.confidence,
        evidence=row.evidence or {},
        reason=row.reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
        action_id=row.action_id,
        approval_id=row.approval_id,
        payback_days=detail.get("payback_days"),
        learning_cost_minor=detail.get("learning_cost_minor"),
        confidence_28_days=detail.get("confidence_28_days"),
        measured=(measured or {}).get(row.action_id) if row.action_id else None,
    )
