"""Outcomes as the CLI (and, next, the Impact page) shows them: each applied change with
its baseline, its checkpoints — effects with their intervals against the comparison
group, the plain before/after beside them, the verdict, the learning mark — newest
first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.access.actor import Actor
from core.access.roles import Permission
from core.db import read_session
from core.db.models import (
    ActionHistory,
    AdAccount,
    AdEntity,
    AutomationRule,
    RexOutcomeCheckpoint,
    RexSuggestion,
    RexSuggestionPerformance,
)
from core.money import format_money


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
    rule_id: int | None = None  # the rule whose action it was
    rule_name: str | None = None

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


def list_outcomes(
    *, actor: Actor, account: str | None = None, engine: Engine | None = None
) -> list[OutcomeView]:
    """Every outcome on the accounts `actor` may read, newest change first; `account`:
    act_… or Rex's id."""
    with read_session(engine) as session:
        query = (
            select(RexSuggestionPerformance, AdAccount, AdEntity, AutomationRule)
            .join(AdAccount, AdAccount.id == RexSuggestionPerformance.account_id)
            .outerjoin(AdEntity, AdEntity.id == RexSuggestionPerformance.entity_id)
            .outerjoin(ActionHistory, ActionHistory.id == RexSuggestionPerformance.action_id)
            .outerjoin(AutomationRule, AutomationRule.id == ActionHistory.rule_id)
            .order_by(RexSuggestionPerformance.changed_on.desc(),
                      RexSuggestionPerformance.id.desc())
        )  # fmt: skip
        readable = actor.account_ids(Permission.READ)
        if readable is not None:
            query = query.where(RexSuggestionPerformance.account_id.in_(readable))
        if account is not None:
            number = int(account) if account.isdigit() else None
            query = query.where((AdAccount.external_id == account) | (AdAccount.id == number))
        rows = session.execute(query).all()
        listed = [outcome.id for outcome, *_ in rows]
        checkpoints: dict[int, dict[int, CheckpointView]] = {}
        for c in session.scalars(
            select(RexOutcomeCheckpoint).where(RexOutcomeCheckpoint.performance_id.in_(listed))
        ):
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
            rule_id=rule.id if rule else None,
            rule_name=rule.name if rule else None,
        )  # fmt: skip
        for outcome, acc, entity, rule in rows
    ]


# ------------------------------------------------------------------------ the Impact page


@dataclass(frozen=True)
class KindImpact:
    """One kind of change (a suggestion kind, or a rule action's type) over its measured
    outcomes: how many, how many improved credibly, the summed weekly profit effect with
    its interval, and for suggestion kinds the confidence learned."""

    kind: str
    source: str  # "suggestion" or "rule"
    measured: int  # with a 7-day estimate
    improving: int
    not_improving: int
    unclear: int  # not enough evidence
    without_estimate: int  # measured, but too little data (or rolled back) for an estimate
    waiting: int  # applied, 7 days not settled yet
    currency: str
    profit: tuple[float, float, float] | None  # estimate, low, high (major units, 7 days)
    learned: tuple[float, float, float, int] | None  # rate, low, high, outcomes
    prior: float | None


@dataclass(frozen=True)
class RuleImpact:
    """One rule's measured actions: how many, how many improved credibly, the summed
    profit effect, and — with `MIN_RULE_OUTCOMES` or more — its learned rate of
    improvement (from an even prior: a rule states no confidence of its own)."""

    rule_id: int
    rule_name: str
    measured: int
    improving: int
    currency: str
    profit: tuple[float, float, float] | None
    learned: tuple[float, float, float, int] | None


MIN_RULE_OUTCOMES = 5


@dataclass(frozen=True)
class ImpactView:
    kinds: list[KindImpact]
    rules: list[RuleImpact]
    outcomes: list[OutcomeView]
    calibration: list[tuple[float, float, int]]  # (stated, observed, count) per bin
    calibration_error: float | None
    currencies: list[str]


def impact(*, actor: Actor, account: str | None = None, engine: Engine | None = None) -> ImpactView:
    """What the applied changes did, per kind — from the outcomes' 7-day checkpoints —
    with the confidence learned per suggestion kind and its calibration: the confidence
    the suggestions stated against the measured probability that they improved profit."""
    from core.outcomes.learn import calibration
    from core.outcomes.record import kind_confidence

    outcomes = list_outcomes(actor=actor, account=account, engine=engine)
    learned = kind_confidence(engine)
    with read_session(engine) as session:
        suggested = [o.suggestion_id for o in outcomes if o.suggestion_id]
        stated_of = {
            s.id: (s.detail or {}).get("confidence_prior", s.confidence)
            for s in session.scalars(select(RexSuggestion).where(RexSuggestion.id.in_(suggested)))
        }
    groups: dict[tuple[str, str, str], list[OutcomeView]] = {}
    for o in outcomes:
        source = "suggestion" if o.suggestion_id else "rule"
        groups.setdefault((source, o.kind or "—", o.currency), []).append(o)
    kinds = []
    for (source, kind, currency), items in sorted(groups.items()):
        weeks = [o.checkpoints.get(7) for o in items]
        measured = [w for w in weeks if w is not None and w.effects]
        profit = summed([w.effects["profit"] for w in measured if w.effects])
        learned_kind = learned.get(kind) if source == "suggestion" else None
        kinds.append(KindImpact(
            kind=kind, source=source, measured=len(measured),
            improving=sum(w.is_improving is True for w in measured),
            not_improving=sum(w.is_improving is False for w in measured),
            unclear=sum(w.is_improving is None for w in measured),
            without_estimate=sum(w is not None and not w.effects for w in weeks),
            waiting=sum(w is None for w in weeks), currency=currency, profit=profit,
            learned=(learned_kind.rate.estimate, learned_kind.rate.low, learned_kind.rate.high,
                     learned_kind.outcomes) if learned_kind else None,
            prior=learned_kind.prior if learned_kind else None,
        ))  # fmt: skip
    pairs: list[tuple[float, float]] = []
    for o in outcomes:
        stated = stated_of.get(o.suggestion_id) if o.suggestion_id else None
        week = o.checkpoints.get(7)
        measured = (week.effects or {}).get("profit", {}) if week else {}
        if stated is not None and "probability_above_zero" in measured:
            pairs.append((float(stated), float(measured["probability_above_zero"])))
    reliability = calibration([s for s, _ in pairs], [p for _, p in pairs]) if pairs else None
    return ImpactView(
        kinds=kinds,
        rules=_by_rule(outcomes),
        outcomes=outcomes,
        calibration=[(b.stated, b.observed, b.count) for b in reliability.bins]
        if reliability
        else [],
        calibration_error=reliability.error if reliability else None,
        currencies=sorted({o.currency for o in outcomes}),
    )


def _by_rule(outcomes: list[OutcomeView]) -> list[RuleImpact]:
    from core.outcomes.learn import learned
    from core.suggestions.stats import Interval

    groups: dict[tuple[int, str, str], list[CheckpointView]] = {}
    scales: dict[tuple[int, str, str], list[float]] = {}
    for o in outcomes:
        week = o.checkpoints.get(7)
        if o.rule_id is None or week is None or not week.effects:
            continue
        key = (o.rule_id, o.rule_name or f"rule {o.rule_id}", o.currency)
        groups.setdefault(key, []).append(week)
        spend = ((o.baseline or {}).get("last_7_days") or {}).get("spend_micros", 0)
        scales.setdefault(key, []).append(spend / 1_000_000)
    made = []
    for (rule_id, name, currency), weeks in sorted(groups.items()):
        profits = [w.effects["profit"] for w in weeks if w.effects]
        rate = None
        if len(weeks) >= MIN_RULE_OUTCOMES:
            effects = [Interval(p["estimate"], p["low"], p["high"]) for p in profits]
            found = learned([0.5] * len(effects), effects, scales[(rule_id, name, currency)])
            rate = (found.rate.estimate, found.rate.low, found.rate.high, found.outcomes)
        made.append(RuleImpact(
            rule_id, name, len(weeks), sum(w.is_improving is True for w in weeks), currency,
            summed(profits), rate,
        ))  # fmt: skip
    return made


def summed(effects: list[dict[str, Any]]) -> tuple[float, float, float] | None:
    """The sum of effects with 90 % intervals, as independent normals (one effect: its
    own interval)."""
    if not effects:
        return None
    if len(effects) == 1:
        return effects[0]["estimate"], effects[0]["low"], effects[0]["high"]
    total = sum(e["estimate"] for e in effects)
    spread = sum(((e["high"] - e["low"]) / (2 * 1.645)) ** 2 for e in effects) ** 0.5
    return total, total - 1.645 * spread, total + 1.645 * spread


def money(amount: float | None, currency: str) -> str:
    """An effect (major units, a float) as the currency formats it, with its currency."""
    if amount is None or amount != amount:  # None or NaN
        return "—"
    return format_money(Decimal(str(round(amount, 6))), currency)


def outcome_words(session: Session, action_ids: list[int]) -> dict[int, str]:
    """What each action did, in words, for the record's rows (Executions, Suggestions):
    its latest measured checkpoint's verdict and profit effect, or what it waits for."""
    if not action_ids:
        return {}
    outcomes = {
        o.id: o for o in session.scalars(
            select(RexSuggestionPerformance)
            .where(RexSuggestionPerformance.action_id.in_(action_ids))
        )
    }  # fmt: skip
    currencies = dict(session.execute(select(AdAccount.id, AdAccount.currency)).all())
    latest: dict[int, RexOutcomeCheckpoint] = {}
    for c in session.scalars(
        select(RexOutcomeCheckpoint).where(RexOutcomeCheckpoint.performance_id.in_(outcomes))
    ):
        if c.performance_id not in latest or c.days > latest[c.performance_id].days:
            latest[c.performance_id] = c
    words = {}
    for outcome in outcomes.values():
        assert outcome.action_id is not None
        checkpoint = latest.get(outcome.id)
        if checkpoint is None:
            words[outcome.action_id] = "being measured: its first checkpoint needs a settled day"
            continue
        profit = (checkpoint.effects or {}).get("profit")
        currency = currencies.get(outcome.account_id or 0, "")
        said = f"{checkpoint.days} days after: {checkpoint.verdict}"
        if profit:
            said += f" — profit {effect_words(profit, currency)}"
        elif checkpoint.reason:
            said += f" ({checkpoint.reason})"
        if checkpoint.learning:
            said += "; in Meta's learning phase"
        words[outcome.action_id] = said
    return words


def effect_words(effect: tuple[float, float, float] | dict[str, Any] | None, currency: str) -> str:
    """An effect with its interval as people read it: "-614.71 USD (-1,194.24 USD to
    -15.67 USD)"; "—" without one. `effect`: (estimate, low, high) or a stored effect."""
    if effect is None:
        return "—"
    if isinstance(effect, dict):
        effect = (effect["estimate"], effect["low"], effect["high"])
    estimate, low, high = (money(v, currency) for v in effect)
    return f"{estimate} ({low} to {high})"
