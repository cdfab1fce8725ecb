"""Set-based evaluation: every candidate of a rule, every window, one SQL pass.

For a rule, the candidates are the entities at its level in its accounts that pass its
metadata filters (archived and deleted ones only when a filter asks for them). Their
metric sums over every window the rule uses are computed in one aggregate query —
`SUM(CASE WHEN <account's local days> THEN column END)` per window and column — on
SQLite and PostgreSQL alike. Each account has its own "today" (its time zone), so the
day bounds are per account.

The result is the trace: every candidate with its values and, for each condition,
whether it held. A ratio with a zero denominator is undefined (None): its condition
does not hold and the trace says which metric was undefined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from core.db.models import METRIC_COLUMNS, AdAccount, AdEntity, AdMetric
from core.money import from_minor
from core.rules.document import All, Any_, Condition, Filter, Reference, RuleDocument
from core.rules.metrics import METRICS, Kind
from core.rules.windows import Window, local_today

HIDDEN_STATUSES = ("ARCHIVED", "DELETED")


@dataclass(frozen=True)
class ConditionResult:
    path: str
    metric: str
    window: str | None
    op: str
    expected: Any  # the number, [lo, hi], or the reference's value
    actual: Decimal | None
    held: bool
    undefined: str | None = None  # why it could not be judged

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "metric": self.metric,
            "window": self.window,
            "op": self.op,
            "expected": trace_value(self.expected),
            "actual": trace_value(self.actual),
            "held": self.held,
            **({"undefined": self.undefined} if self.undefined else {}),
        }


@dataclass
class Candidate:
    entity_id: int
    external_id: str
    name: str
    account_id: int
    account: str
    currency: str
    timezone_name: str
    status: str
    effective_status: str
    daily_budget_minor: int | None
    lifetime_budget_minor: int | None
    campaign_budget: bool  # an ad set whose budget lives on its campaign
    values: dict[str, Decimal | None] = field(default_factory=dict)
    conditions: list[ConditionResult] = field(default_factory=list)
    matched: bool = False
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "entity_id": self.entity_id,
            "external_id": self.external_id,
            "name": self.name,
            "account": self.account,
            "values": {k: trace_value(v) for k, v in sorted(self.values.items())},
            "conditions": [c.to_json() for c in self.conditions],
            "matched": self.matched,
            **({"note": self.note} if self.note else {}),
        }


@dataclass
class Evaluation:
    evaluated_at: datetime
    candidates: list[Candidate]
    today: dict[str, str]  # account → its local date at evaluation time

    @property
    def matched(self) -> list[Candidate]:
        return [c for c in self.candidates if c.matched]

    def to_json(self) -> dict[str, Any]:
        return {
            "evaluated_at": self.evaluated_at.isoformat(),
            "today": self.today,
            "candidates": [c.to_json() for c in self.candidates],
        }


def evaluate(session: Session, rule: RuleDocument, now: datetime) -> Evaluation:
    accounts = _accounts(session, rule)
    today = {a.id: local_today(a.timezone_name, now) for a in accounts}
    candidates = _candidates(session, rule, accounts)
    windows = sorted({Window.parse(w) for w in _windows(rule)})
    sums = _window_sums(session, rule.scope.level, candidates, windows, today)
    for candidate in candidates:
        _judge(rule, candidate, sums.get(candidate.entity_id, {}))
    return Evaluation(
        evaluated_at=now,
        candidates=candidates,
        today={a.external_id: today[a.id].isoformat() for a in accounts},
    )


# ------------------------------------------------------------------- candidates


def _accounts(session: Session, rule: RuleDocument) -> list[AdAccount]:
    query = select(AdAccount).where(AdAccount.platform == "meta").order_by(AdAccount.id)
    if rule.scope.account_ids:
        query = query.where(AdAccount.external_id.in_(rule.scope.account_ids))
    return list(session.scalars(query))


def _candidates(session: Session, rule: RuleDocument, accounts: list[AdAccount]) -> list[Candidate]:
    if not accounts:
        return []
    by_id = {a.id: a for a in accounts}
    query = (
        select(AdEntity)
        .where(AdEntity.account_id.in_(by_id), AdEntity.level == rule.scope.level)
        .order_by(AdEntity.account_id, AdEntity.external_id)
    )
    asks_hidden = any(
        f.field == "effective_status" and f.op in ("=", "in") for f in rule.scope.filters
    )
    if not asks_hidden:
        query = query.where(AdEntity.effective_status.not_in(HIDDEN_STATUSES))
    for item in rule.scope.filters:
        query = query.where(_filter_clause(item))
    entities = list(session.scalars(query))

    cbo_campaigns: set[str] = set()
    if rule.scope.level == "adset":
        campaign_ids = {e.meta_campaign_id for e in entities if e.meta_campaign_id}
        if campaign_ids:
            cbo_campaigns = set(
                session.scalars(
                    select(AdEntity.external_id).where(
                        AdEntity.account_id.in_(by_id),
                        AdEntity.external_id.in_(campaign_ids),
                        or_(
                            AdEntity.daily_budget_minor.is_not(None),
                            AdEntity.lifetime_budget_minor.is_not(None),
                        ),
                    )
                )
            )
    return [
        Candidate(
            entity_id=e.id,
            external_id=e.external_id,
            name=e.name,
            account_id=e.account_id,
            account=by_id[e.account_id].external_id,
            currency=by_id[e.account_id].currency,
            timezone_name=by_id[e.account_id].timezone_name,
            status=e.status,
            effective_status=e.effective_status,
            daily_budget_minor=e.daily_budget_minor,
            lifetime_budget_minor=e.lifetime_budget_minor,
            campaign_budget=e.meta_campaign_id in cbo_campaigns,
        )
        for e in entities
    ]


_FILTER_COLUMNS = {
    "id": AdEntity.external_id,
    "name": AdEntity.name,
    "effective_status": AdEntity.effective_status,
    "campaign_id": AdEntity.meta_campaign_id,
    "adset_id": AdEntity.meta_adset_id,
}


def _filter_clause(item: Filter) -> Any:
    column = _FILTER_COLUMNS[item.field]
    value = item.value
    if item.op == "=":
        return column == value
    if item.op == "!=":
        return or_(column.is_(None), column != value)
    if item.op == "in":
        return column.in_(value)
    if item.op == "not_in":
        return or_(column.is_(None), column.not_in(value))
    pattern = (
        "%" + str(value).lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    )
    matches = func.lower(column).like(pattern, escape="\\")
    return matches if item.op == "contains" else or_(column.is_(None), ~matches)


# ---------------------------------------------------------------------- windows


def _windows(rule: RuleDocument) -> set[str]:
    windows: set[str] = set()
    for condition in rule.conditions_list():
        if condition.window:
            windows.add(condition.window)
        if isinstance(condition.value, Reference):
            windows.add(condition.value.window)
    if _guard_window(rule):
        windows.add(_guard_window(rule))  # type: ignore[arg-type]
    return windows


def _guard_window(rule: RuleDocument) -> str | None:
    """min_spend / min_impressions use the window of the first windowed condition."""
    if rule.safety.min_spend is None and rule.safety.min_impressions is None:
        return None
    return next((c.window for c in rule.conditions_list() if c.window), None)


def _window_sums(
    session: Session,
    level: str,
    candidates: list[Candidate],
    windows: list[Window],
    today: dict[int, date],
) -> dict[int, dict[str, dict[str, int]]]:
    """entity id → window name → column → sum, from one aggregate query."""
    if not candidates or not windows:
        return {}
    columns = []
    labels: list[tuple[str, str]] = []
    for window in windows:
        in_window = _window_clause(window, today)
        for column in METRIC_COLUMNS:
            value = getattr(AdMetric, column)
            summed = func.coalesce(func.sum(case((in_window, value), else_=0)), 0)
            columns.append(summed.label(f"w{len(labels)}"))
            labels.append((window.name, column))
    query = (
        select(AdMetric.entity_id, *columns)
        .where(AdMetric.entity_id.in_([c.entity_id for c in candidates]))
        .group_by(AdMetric.entity_id)
    )
    result: dict[int, dict[str, dict[str, int]]] = {}
    for row in session.execute(query):
        per_window: dict[str, dict[str, int]] = {}
        for index, (window_name, column) in enumerate(labels):
            per_window.setdefault(window_name, {})[column] = int(row[index + 1])
        result[row[0]] = per_window
    return result


def _window_clause(window: Window, today: dict[int, date]) -> Any:
    per_account = []
    for account_id, local in today.items():
        days = window.days_range(local)
        if days is None:
            per_account.append(AdMetric.account_id == account_id)
        else:
            per_account.append(
                and_(AdMetric.account_id == account_id, AdMetric.date.between(*days))
            )
    return or_(*per_account)


# ---------------------------------------------------------------------- judging


_EMPTY = dict.fromkeys(METRIC_COLUMNS, 0)


def _metric_value(
    candidate: Candidate, sums: dict[str, dict[str, int]], metric: str, window: str | None
) -> Decimal | None:
    definition = METRICS[metric]
    if definition.kind == Kind.CURRENT:
        minor = getattr(candidate, definition.a)
        return None if minor is None else from_minor(minor, candidate.currency)
    assert window is not None
    return definition.value(sums.get(window, _EMPTY))


def _judge(rule: RuleDocument, candidate: Candidate, sums: dict[str, dict[str, int]]) -> None:
    def value_of(metric: str, window: str | None) -> Decimal | None:
        key = metric if window is None else f"{metric}@{window}"
        if key not in candidate.values:
            candidate.values[key] = _metric_value(candidate, sums, metric, window)
        return candidate.values[key]

    def walk(node: Any, path: str) -> bool:
        if isinstance(node, All):
            results = [walk(child, f"{path}.all[{i}]") for i, child in enumerate(node.all)]
            return all(results)
        if isinstance(node, Any_):
            results = [walk(child, f"{path}.any[{i}]") for i, child in enumerate(node.any)]
            return any(results)
        return judge_condition(node, path)

    def judge_condition(condition: Condition, path: str) -> bool:
        actual = value_of(condition.metric, condition.window)
        expected: Any = condition.value
        undefined = None
        if isinstance(expected, Reference):
            base = value_of(expected.metric, expected.window)
            expected = None if base is None else base * expected.times
            if base is None:
                undefined = f"{expected_label(condition.value)} is undefined"
        if actual is None:
            undefined = f"{condition.metric} over {condition.window or 'now'} is undefined"
        held = undefined is None and _compare(actual, condition.op, expected)  # type: ignore[arg-type]
        candidate.conditions.append(
            ConditionResult(
                path=path[1:] if path.startswith(".") else path,
                metric=condition.metric,
                window=condition.window,
                op=condition.op,
                expected=expected,
                actual=actual,
                held=held,
                undefined=undefined,
            )
        )
        return held

    candidate.matched = walk(rule.conditions, "conditions")
    guard = _guard_window(rule)
    if candidate.matched and guard:
        spend = value_of("spend", guard)
        impressions = value_of("impressions", guard)
        if rule.safety.min_spend is not None and (spend or 0) < rule.safety.min_spend:
            candidate.matched = False
            candidate.note = f"spend {spend} over {guard} is below min_spend"
        elif rule.safety.min_impressions is not None and (impressions or 0) < Decimal(
            rule.safety.min_impressions
        ):
            candidate.matched = False
            candidate.note = f"impressions {impressions} over {guard} below min_impressions"


def expected_label(reference: Any) -> str:
    return f"{reference.times} × {reference.metric} over {reference.window}"


def _compare(actual: Decimal, op: str, expected: Any) -> bool:
    if op == "between":
        return expected[0] <= actual <= expected[1]
    if op == "not_between":
        return not expected[0] <= actual <= expected[1]
    return {
        ">": actual > expected,
        ">=": actual >= expected,
        "<": actual < expected,
        "<=": actual <= expected,
        "=": actual == expected,
        "!=": actual != expected,
    }[op]


def trace_value(value: Any) -> Any:
    if isinstance(value, Decimal):  # as text, exact, at most 4 decimals
        return format(value.quantize(Decimal("0.0001")).normalize(), "f")
    if isinstance(value, list):
        return [trace_value(v) for v in value]
    return value
