"""Outcomes as the CLI (and, next, the Impact page) shows them: each applied change with
its baseline, its checkpoints — effects with their intervals against the comparison
group, the plain before/after beside them, the verdict, the learning mark — newest
first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, select

from core.db import read_session
from core.db.models import AdAccount, AdEntity, RexOutcomeCheckpoint, RexSuggestionPerformance


@dataclass(frozen=True)
class CheckpointView:
    days: int
    measured_at: datetime
    verdict: str
    is_improving: bool | None
    learning: bool
    effects: dict[str, Any] | None
    deltas: dict[str, Any] | None
    comparison: dict[str, Any] | None
    reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "measured_at": self.measured_at.isoformat(), "verdict": self.verdict,
            "is_improving": self.is_improving, "learning": self.learning,
            "effects": self.effects, "deltas": self.deltas, "comparison": self.comparison,
            "reason": self.reason,
        }  # fmt: skip


@dataclass(frozen=True)
class OutcomeView:
    id: int
    action_id: int | None
    suggestion_id: int | None
    kind: str | None
    account_id: str  # act_…
    currency: str
    entity_id: str | None  # Meta's id
    entity_name: str | None
    changed_on: date | None
    verdict: str | None  # the headline checkpoint's (7 days); None until it is measured
    is_improving: bool | None
    baseline: dict[str, Any]
    checkpoints: dict[int, CheckpointView]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "action_id": self.action_id, "suggestion_id": self.suggestion_id,
            "kind": self.kind, "account_id": self.account_id, "currency": self.currency,
            "entity_id": self.entity_id, "entity_name": self.entity_name,
            "changed_on": self.changed_on.isoformat() if self.changed_on else None,
            "verdict": self.verdict, "is_improving": self.is_improving,
            "baseline": self.baseline,
            "checkpoints": {str(d): c.to_json() for d, c in sorted(self.checkpoints.items())},
        }  # fmt: skip


def list_outcomes(*, account: str | None = None, engine: Engine | None = None) -> list[OutcomeView]:
    """Every outcome, newest change first; `account`: act_… or Rex's id."""
    with read_session(engine) as session:
        query = (
            select(RexSuggestionPerformance, AdAccount, AdEntity)
            .join(AdAccount, AdAccount.id == RexSuggestionPerformance.account_id)
            .outerjoin(AdEntity, AdEntity.id == RexSuggestionPerformance.entity_id)
            .order_by(RexSuggestionPerformance.changed_on.desc(),
                      RexSuggestionPerformance.id.desc())
        )  # fmt: skip
        if account is not None:
            number = int(account) if account.isdigit() else None
            query = query.where((AdAccount.external_id == account) | (AdAccount.id == number))
        rows = session.execute(query).all()
        checkpoints: dict[int, dict[int, CheckpointView]] = {}
        for c in session.scalars(select(RexOutcomeCheckpoint)):
            checkpoints.setdefault(c.performance_id, {})[c.days] = CheckpointView(
                c.days, c.measured_at, c.verdict, c.is_improving, c.learning, c.effects,
                c.deltas, c.comparison, c.reason,
            )  # fmt: skip
    return [
        OutcomeView(
            id=outcome.id,
            action_id=outcome.action_id,
            suggestion_id=outcome.suggestion_id,
            kind=outcome.kind,
            account_id=acc.external_id,
            currency=acc.currency,
            entity_id=entity.external_id if entity else None,
            entity_name=entity.name if entity else None,
            changed_on=outcome.changed_on,
            verdict=outcome.verdict,
            is_improving=outcome.is_improving,
            baseline=outcome.baseline_metrics,
            checkpoints=checkpoints.get(outcome.id, {}),
        )  # fmt: skip
        for outcome, acc, entity in rows
    ]
