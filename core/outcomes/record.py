"""Outcomes on the record: one per applied change — every succeeded rule action that
changes delivery and every applied suggestion's write — with its baseline, then its
checkpoints as their days settle (`update_outcomes`).

* **Started** (`start`): a suggestion's when it is applied (core/suggestions/apply.py),
  a rule action's by the next update (its baseline is read from the synced days before
  the change, so when it is taken does not matter). The baseline is the seed's: the
  entity's numbers over the 7 (and 28) whole days before the account-local day of the
  change.
* **Checkpoints** after 1, 3, 7 and 14 days (`REX_OUTCOME_CHECKPOINTS`; 7 is the headline, kept on
  the outcome's own row with the seed's names), each measured once, when its days are
  over and `SETTLE_DAYS` more have passed for late conversions to be attributed: what
  the entity did, what it would have done anyway (core/outcomes/estimate.py: against
  comparable entities of the account not changed over those days), the effects with
  their intervals, the seed's plain before/after deltas beside them, the verdict, and
  whether Meta's learning phase ran in those days (a significant edit: targeting,
  schedule, a budget change above 30 %; the first `LEARNING_DAYS` after it).
* **Idempotent and safe with replicas**: a checkpoint once written is final; the
  database refuses a second outcome for an action or a second checkpoint for a day
  count (unique constraints), and a replica that loses that race moves on.

"Days after" follow the account's own calendar and its synced data, so moving the
sandbox's clock on a week and syncing measures a week without waiting for one.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.actions.changes import restarts_learning
from core.actions.kinds import ActionType
from core.db import read_session, write_session
from core.db.models import (
    ActionHistory,
    ActionStatus,
    AdAccount,
    AdEntity,
    AdMetric,
    RexOutcomeCheckpoint,
    RexSuggestion,
    RexSuggestionPerformance,
)
from core.outcomes.estimate import BASE_METRICS, Estimate, NoEstimate, Numbers, estimate
from core.outcomes.learn import Learned, learned
from core.rules.windows import local_today
from core.settings import get_settings
from core.suggestions.confidence import LEARNING_DAYS
from core.suggestions.stats import LEVEL, Interval

CHECKPOINTS = (1, 3, 7, 14)  # the default of `REX_OUTCOME_CHECKPOINTS`
HEADLINE = 7
SETTLE_DAYS = 3  # after a checkpoint's last day, for late conversions to be attributed
BASELINE_WINDOWS = (7, 28)
MAX_LEFT_OUT = 14  # days of a rule's own window left out of the estimate's baseline
MEASURED = frozenset({ActionType.PAUSE, ActionType.RESUME, ActionType.CHANGE_BUDGET,
                      ActionType.DUPLICATE, ActionType.EDIT_TARGETING,
                      ActionType.SET_SCHEDULE})  # fmt: skip
MICROS = 1_000_000
ROLLED_BACK = "rolled back"  # a checkpoint's verdict when the change was undone in its days


@dataclass
class Updated:
    """What an update did: outcomes started, checkpoints measured, and how many still
    wait for their days (or their conversions) to come."""

    started: int = 0
    measured: list[tuple[int, int]] = field(default_factory=list)  # (outcome id, days)
    waiting: int = 0


def start(
    session: Session,
    *,
    action: ActionHistory | None,
    suggestion: RexSuggestion | None = None,
    changed_at: datetime,
    now: datetime,
) -> RexSuggestionPerformance | None:
    """The outcome of `action` (a suggestion's, or a rule's), made at `changed_at`, with
    its baseline; None when it has one already. A suggestion applied without a write of
    its own (rules made in Test first mode) gets one without an action: its rules'
    actions are measured."""
    if action is not None:
        known = session.scalar(select(RexSuggestionPerformance.id)
                               .where(RexSuggestionPerformance.action_id == action.id))  # fmt: skip
        if known is not None:
            return None
    account_id = action.account_id if action is not None else suggestion.account_id  # type: ignore[union-attr]
    entity_id = action.entity_id if action is not None else suggestion.entity_id  # type: ignore[union-attr]
    account = session.get_one(AdAccount, account_id)
    changed_on = local_today(account.timezone_name, changed_at)
    row = RexSuggestionPerformance(
        suggestion_id=suggestion.id if suggestion is not None else None,
        action_id=action.id if action is not None else None,
        account_id=account.id,
        entity_id=entity_id,
        kind=suggestion.kind if suggestion is not None else action.action_type,  # type: ignore[union-attr]
        changed_on=changed_on,
        baseline_metrics={
            "taken_at": now.isoformat(),
            "currency": account.currency,
            "entity_id": entity_id,
            "segment": ((suggestion.evidence or {}).get("segment") if suggestion else None),
            **_baseline(session, entity_id, changed_on),
        },
    )
    session.add(row)
    return row


def _baseline(session: Session, entity_id: int | None, changed_on: date) -> dict[str, Any]:
    windows = {}
    for days in BASELINE_WINDOWS:
        since, until = changed_on - timedelta(days=days), changed_on - timedelta(days=1)
        sums = session.execute(
            select(
                func.coalesce(func.sum(AdMetric.spend_micros), 0),
                func.coalesce(func.sum(AdMetric.revenue_micros), 0),
                func.coalesce(func.sum(AdMetric.conversions), 0),
                func.coalesce(func.sum(AdMetric.clicks), 0),
                func.coalesce(func.sum(AdMetric.impressions), 0),
            ).where(AdMetric.entity_id == entity_id, AdMetric.date.between(since, until))
        ).one()
        windows[f"last_{days}_days"] = {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "spend_micros": int(sums[0]),
            "revenue_micros": int(sums[1]),
            "purchases": int(sums[2]),
            "clicks": int(sums[3]),
            "impressions": int(sums[4]),
        }
    return windows


def kind_confidence(engine: Engine | None = None) -> dict[str, Learned]:
    """Per suggestion kind, the probability of improvement learned from its measured
    outcomes (core/outcomes/learn.py): each applied suggestion's 7-day profit effect,
    relative to its entity's weekly spend before, against the confidence the engine's
    prior stated for it."""
    rows: dict[str, list[tuple[float, Interval, float]]] = defaultdict(list)
    with read_session(engine) as session:
        for outcome, suggestion in session.execute(
            select(RexSuggestionPerformance, RexSuggestion)
            .join(RexSuggestion, RexSuggestion.id == RexSuggestionPerformance.suggestion_id)
            .where(RexSuggestionPerformance.effects.is_not(None))
        ):  # fmt: skip
            profit = (outcome.effects or {}).get("profit")
            week = (outcome.baseline_metrics or {}).get("last_7_days") or {}
            stated = (suggestion.detail or {}).get("confidence_prior", suggestion.confidence)
            if not profit or stated is None or profit.get("low") is None:
                continue
            effect = Interval(profit["estimate"], profit["low"], profit["high"],
                              profit.get("level", LEVEL))  # fmt: skip
            rows[suggestion.kind].append((float(stated), effect,
                                          week.get("spend_micros", 0) / MICROS))  # fmt: skip
    return {
        kind: learned([s for s, _, _ in items], [e for _, e, _ in items], [w for _, _, w in items])
        for kind, items in rows.items()
    }


# ------------------------------------------------------------------------ updating


def update_outcomes(*, now: datetime, engine: Engine | None = None) -> Updated:
    """Start the outcomes of rule actions that have none, then measure every checkpoint
    whose days (and conversions) have settled and that is not measured yet."""
    done = Updated()
    with write_session(engine) as session:
        for action in session.scalars(
            select(ActionHistory)
            .outerjoin(RexSuggestionPerformance,
                       RexSuggestionPerformance.action_id == ActionHistory.id)
            .where(RexSuggestionPerformance.id.is_(None),
                   ActionHistory.status == ActionStatus.SUCCEEDED,
                   ActionHistory.action_type.in_([str(t) for t in MEASURED]),
                   ActionHistory.rollback_of_id.is_(None),
                   ActionHistory.entity_id.is_not(None))
            .order_by(ActionHistory.id)
        ).all():  # fmt: skip
            with session.begin_nested() as nested:
                made = start(session, action=action, changed_at=action.finished_at or now, now=now)
                if made is not None:
                    try:
                        session.flush()
                        done.started += 1
                    except IntegrityError:  # a replica started it first
                        nested.rollback()
    checkpoints = get_settings().checkpoint_days
    with write_session(engine) as session:
        outcomes = session.scalars(
            select(RexSuggestionPerformance)
            .where(RexSuggestionPerformance.action_id.is_not(None),
                   RexSuggestionPerformance.changed_on.is_not(None))
            .order_by(RexSuggestionPerformance.id)
        ).all()  # fmt: skip
        measured: dict[int, set[int]] = defaultdict(set)  # outcome → the days measured
        for outcome_id, days in session.execute(
            select(RexOutcomeCheckpoint.performance_id, RexOutcomeCheckpoint.days)
        ):  # fmt: skip
            measured[outcome_id].add(days)
        zones = dict(session.execute(select(AdAccount.id, AdAccount.timezone_name)).all())
        for outcome in outcomes:
            assert outcome.changed_on is not None and outcome.account_id is not None
            today = local_today(zones[outcome.account_id], now)
            for days in checkpoints:
                if days in measured[outcome.id]:
                    continue
                if today <= outcome.changed_on + timedelta(days=days + SETTLE_DAYS):
                    done.waiting += 1
                    continue
                with session.begin_nested() as nested:
                    checkpoint = _measure(session, outcome, days, now=now)
                    session.add(checkpoint)
                    try:
                        session.flush()
                    except IntegrityError:  # a replica measured it first
                        nested.rollback()
                        continue
                done.measured.append((outcome.id, days))
                if days == HEADLINE:
                    _headline(outcome, checkpoint, now)
    return done


def _measure(
    session: Session, outcome: RexSuggestionPerformance, days: int, *, now: datetime
) -> RexOutcomeCheckpoint:
    action = session.get_one(ActionHistory, outcome.action_id)
    assert outcome.changed_on is not None
    changed_on = outcome.changed_on
    last = changed_on + timedelta(days=days)
    learning_days = min(days, LEARNING_DAYS) if restarts_learning(action.details) else 0
    checkpoint = RexOutcomeCheckpoint(
        performance_id=outcome.id, days=days, measured_at=now, learning=learning_days > 0
    )  # added by the caller once complete (a query here would flush it half-made)
    undone = action.rolled_back_by_id and session.get_one(ActionHistory, action.rolled_back_by_id)
    if undone and undone.finished_at is not None:
        account = session.get_one(AdAccount, outcome.account_id)
        if local_today(account.timezone_name, undone.finished_at) <= last:
            checkpoint.verdict = ROLLED_BACK
            checkpoint.reason = f"rolled back (action {undone.id}) within these {days} days"
            return checkpoint
    entity = session.get(AdEntity, outcome.entity_id) if outcome.entity_id else None
    if entity is None:
        checkpoint.verdict, checkpoint.reason = "no estimate", "the entity is no longer known"
        return checkpoint
    since = changed_on - timedelta(days=28)
    changed = _changed_entities(session, entity.account_id, since, last)
    peers = session.scalars(
        select(AdEntity.id).where(AdEntity.account_id == entity.account_id,
                                  AdEntity.level == entity.level, AdEntity.id != entity.id)
    ).all()  # fmt: skip
    comparison_ids = [i for i in peers if i not in changed]
    series = _series(session, [entity.id, *comparison_ids], since, last)
    comparison = [
        series[i] for i in comparison_ids if _delivered(series.get(i, {}), since, changed_on)
    ]
    found = estimate(
        series.get(entity.id, {}), comparison, changed_on=changed_on, days=days,
        leave_out=_rule_window(action, changed_on),
    )  # fmt: skip
    if isinstance(found, NoEstimate):
        checkpoint.verdict, checkpoint.reason = "no estimate", found.reason
        return checkpoint
    _fill(checkpoint, found, learning_days)
    return checkpoint


def _fill(checkpoint: RexOutcomeCheckpoint, found: Estimate, learning_days: int) -> None:
    checkpoint.current_metrics = _numbers(found.observed)
    checkpoint.expected_metrics = _numbers(found.expected)
    checkpoint.deltas = {k: _round(v) for k, v in found.before_after.items()}
    checkpoint.effects = {
        metric: {"estimate": _round(i.estimate), "low": _round(i.low), "high": _round(i.high),
                 "level": i.level}
        for metric, i in found.effects.items()
    }  # fmt: skip
    checkpoint.comparison = {
        "method": "difference in differences",
        "entities": found.comparison_entities,
        "baseline": [found.baseline[0].isoformat(), found.baseline[1].isoformat()],
        "baseline_days": found.baseline_days,
        "learning_days": learning_days,
    }
    checkpoint.effects["profit"]["probability_above_zero"] = round(found.probability_improving, 4)
    checkpoint.is_improving = found.is_improving
    checkpoint.verdict = found.verdict


def _headline(
    outcome: RexSuggestionPerformance, checkpoint: RexOutcomeCheckpoint, now: datetime
) -> None:
    """The headline checkpoint on the outcome's own row, in the seed's columns."""
    outcome.current_metrics = checkpoint.current_metrics
    outcome.deltas = checkpoint.deltas
    outcome.effects = checkpoint.effects
    outcome.is_improving = checkpoint.is_improving
    outcome.verdict = checkpoint.verdict
    outcome.learning = checkpoint.learning
    outcome.last_comparison_at = now


def _changed_entities(session: Session, account_id: int, since: date, until: date) -> set[int]:
    """Entities of the account with a change Rex made between the two days (by the UTC
    day of its end, a day's margin either side): not comparable."""
    start = datetime.combine(since - timedelta(days=1), time(), UTC)
    end = datetime.combine(until + timedelta(days=2), time(), UTC)
    return {
        i for i in session.scalars(
            select(ActionHistory.entity_id).where(
                ActionHistory.account_id == account_id,
                ActionHistory.status == ActionStatus.SUCCEEDED,
                ActionHistory.action_type != str(ActionType.NOTIFY),
                and_(ActionHistory.finished_at >= start, ActionHistory.finished_at < end),
            )
        ) if i is not None
    }  # fmt: skip


def _series(
    session: Session, entity_ids: list[int], since: date, until: date
) -> dict[int, dict[date, Numbers]]:
    found: dict[int, dict[date, Numbers]] = defaultdict(dict)
    for entity_id, day, spend, revenue, purchases, clicks, impressions in session.execute(
        select(AdMetric.entity_id, AdMetric.date, AdMetric.spend_micros, AdMetric.revenue_micros,
               AdMetric.conversions, AdMetric.clicks, AdMetric.impressions)
        .where(AdMetric.entity_id.in_(entity_ids), AdMetric.date.between(since, until))
    ):  # fmt: skip
        found[entity_id][day] = Numbers(
            spend / MICROS,
            (revenue or 0) / MICROS,
            float(purchases or 0),
            float(clicks),
            float(impressions),
        )
    return found


def _delivered(days: dict[date, Numbers], since: date, changed_on: date) -> bool:
    """Comparable: it delivered on at least half the baseline's days."""
    delivering = sum(1 for d, n in days.items() if since <= d < changed_on and n.spend > 0)
    return delivering >= (changed_on - since).days / 2


_WINDOW = re.compile(r"@(?:last_(\d+)d|(today|yesterday)|(this_month))")


def _rule_window(action: ActionHistory, changed_on: date) -> frozenset[date]:
    """The days a rule's conditions looked at before acting (its widest window, at most
    `MAX_LEFT_OUT` days): chosen for being extreme, so their noise would regress — left
    out of the baseline. An action without the values a rule judged (a suggestion's
    write) leaves nothing out."""
    values = (action.details or {}).get("values") or {}
    if not values:
        return frozenset()
    widest = 0
    for key in values:
        match = _WINDOW.search(str(key))
        if match:
            widest = max(widest, int(match.group(1)) if match.group(1) else
                         (1 if match.group(2) else 31))  # fmt: skip
    widest = min(widest or 7, MAX_LEFT_OUT)
    return frozenset(changed_on - timedelta(days=k) for k in range(1, widest + 1))


def _numbers(n: Numbers) -> dict[str, float | None]:
    return {m: _round(getattr(n, m)) for m in BASE_METRICS}


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)
