"""Set-based evaluation: every candidate of every rule, every window, one SQL pass.

For a rule, the candidates are the entities at its level in its accounts that pass its
metadata filters (archived and deleted ones only when a filter asks for them). Their
metric sums over every window the rule uses come from one aggregate query (see
`core.rules.frame`), shared by all the rules evaluated together; each account's days
are its own (its time zone).

Judging happens in two steps with one meaning. All candidates are pre-judged at once
on float arrays, which settles every clear case; a comparison too close to call in
floating point is judged exactly, in Decimal, by the same code that writes the trace.

The result is the trace: every candidate with its values and, for each condition,
whether it held. A ratio with a zero denominator is undefined (None): its condition
does not hold and the trace says which metric was undefined.

An account Rex cannot judge — its stored time zone is no IANA zone, or its currency has
no known minor unit (an old install may hold such values) — is left out of every rule,
alone: the others are evaluated, and each rule's `skipped_accounts` (in the trace) says
why that one was not. So is an account that bills in another currency than the rule's
money values are in (`core.rules.document.currency_in_scope`).

The trace speaks the marketer's words: each condition has a `reason` ("ROAS over the
last 7 days is 0.45, not above 3") beside its raw fields, each candidate its values
as people read them (`shown`: "4.19", "250.00 USD", "1.47 %") beside the exact ones;
`core.rules.describe.describe_value_key` turns the value keys into headings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import METRIC_COLUMNS, AdAccount
from core.money import MICROS_PER_UNIT, MoneyError, check_currency, from_minor, offset
from core.rules.describe import (
    explain_condition,
    format_value,
    too_little_data,
    undefined_reference_text,
    undefined_text,
)
from core.rules.document import (
    All,
    Any_,
    Condition,
    Reference,
    RuleDocument,
    currency_in_scope,
)
from core.rules.frame import Frame, load_frame
from core.rules.metrics import METRICS, Kind
from core.rules.windows import Window, local_today


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
    reason: str = ""  # the verdict in words: "ROAS over the last 7 days is 0.45, not above 3"

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "metric": self.metric,
            "window": self.window,
            "op": self.op,
            "expected": trace_value(self.expected),
            "actual": trace_value(self.actual),
            "held": self.held,
            "reason": self.reason,
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

    @property
    def shown(self) -> dict[str, str]:
        """The values as people read them, by the same keys as `values`."""
        return {
            key: format_value(key.partition("@")[0], value, self.currency)
            for key, value in sorted(self.values.items())
        }

    @property
    def reasons(self) -> list[str]:
        """Why it did not match, in words (empty when it matched)."""
        if self.matched:
            return []
        return [c.reason for c in self.conditions if not c.held] + (
            [self.note] if self.note else []
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "entity_id": self.entity_id,
            "external_id": self.external_id,
            "name": self.name,
            "account": self.account,
            "currency": self.currency,
            "values": {k: trace_value(v) for k, v in sorted(self.values.items())},
            "shown": self.shown,
            "conditions": [c.to_json() for c in self.conditions],
            "matched": self.matched,
            **({"note": self.note} if self.note else {}),
        }


@dataclass(frozen=True)
class EntityRef:
    """A matched candidate, named but not judged yet."""

    position: int  # in the frame
    entity_id: int
    external_id: str
    name: str
    account: str  # the account's external id


class Evaluation:
    """One rule's result over its candidates, in the frame's order.

    Which candidates match is decided for all of them at once (see `_prejudge`); a
    candidate's trace — its values and each condition's outcome, exact — is built
    when it is asked for: `matched` builds the matched ones, `candidates` all of them.
    """

    def __init__(
        self,
        rule: RuleDocument,
        frame: Frame,
        positions: np.ndarray,
        evaluated_at: datetime,
        today: dict[str, str],
    ) -> None:
        self.rule, self.frame, self.positions = rule, frame, positions
        self.evaluated_at, self.today = evaluated_at, today
        # accounts in the rule's scope that could not be evaluated: external id → why
        self.skipped_accounts: dict[str, str] = {}
        # the currency of the rule's money values (stated, or its accounts' own); None
        # for a rule without money values, or whose accounts mix currencies
        self.currency: str | None = rule.currency
        self.matched_mask = np.zeros(len(positions), bool)
        self._built: dict[int, Candidate] = {}

    def __len__(self) -> int:
        return len(self.positions)

    def candidate(self, position: int) -> Candidate:
        """The candidate at a frame position, judged exactly (built once)."""
        if position not in self._built:
            entity = self.frame.entities[position]
            account = self.frame.accounts[entity.account_id]
            candidate = Candidate(
                entity_id=entity.id,
                external_id=entity.external_id,
                name=entity.name,
                account_id=entity.account_id,
                account=account.external_id,
                currency=account.currency,
                timezone_name=account.timezone_name,
                status=entity.status,
                effective_status=entity.effective_status,
                daily_budget_minor=entity.daily_budget_minor,
                lifetime_budget_minor=entity.lifetime_budget_minor,
                campaign_budget=bool(self.frame.campaign_budget[position]),
            )
            _judge(self.rule, candidate, self.frame.sums_at(position))
            self._built[position] = candidate
        return self._built[position]

    @cached_property
    def candidates(self) -> list[Candidate]:
        return [self.candidate(int(p)) for p in self.positions]

    @property
    def matched_count(self) -> int:
        if "candidates" in self.__dict__:
            return sum(1 for c in self.candidates if c.matched)
        return int(self.matched_mask.sum())

    def matched_refs(self) -> list[EntityRef]:
        """Who matched, without judging them exactly (cheap): in the order a run plans
        them (account, entity id)."""
        if "candidates" in self.__dict__:  # built: people may have changed a verdict
            positions = [int(p) for p, c in zip(self.positions, self.candidates, strict=True)
                         if c.matched]  # fmt: skip
        else:
            positions = [int(p) for p in self.positions[self.matched_mask]]
        refs = []
        for position in positions:
            entity = self.frame.entities[position]
            account = self.frame.accounts[entity.account_id].external_id
            refs.append(EntityRef(position, entity.id, entity.external_id, entity.name, account))
        return sorted(refs, key=lambda r: (r.account, r.external_id))

    @property
    def matched(self) -> list[Candidate]:
        if "candidates" in self.__dict__:  # built: people may have changed a verdict
            return [c for c in self.candidates if c.matched]
        return [self.candidate(int(p)) for p in self.positions[self.matched_mask]]

    def hold_back(self, accounts: dict[str, str]) -> None:
        """Candidates of these accounts (external id → why) do not match, whatever their
        numbers say (e.g. stale data); the reason becomes their note."""
        for index, position in enumerate(self.positions):
            entity = self.frame.entities[int(position)]
            account = self.frame.accounts[entity.account_id].external_id
            if account in accounts and self.matched_mask[index]:
                self.matched_mask[index] = False
                candidate = self.candidate(int(position))
                candidate.matched, candidate.note = False, accounts[account]

    def to_json(self, *, keep: int | None = None) -> dict[str, Any]:
        """The trace: every candidate's values and verdicts. With `keep`, a rule with
        more candidates than that keeps those judged already (the ones a run planned
        on) and the first `keep` others (in the frame's order), and says how many it
        left out (`not_kept`)."""
        if keep is None or len(self.positions) <= keep:
            kept = self.candidates
        else:  # those judged already (what a run planned on), then the first others
            chosen = set(self._built)
            for position in self.positions:
                if len(chosen) >= len(self._built) + keep:
                    break
                chosen.add(int(position))
            kept = [self.candidate(int(p)) for p in self.positions if int(p) in chosen]
        return {
            "evaluated_at": self.evaluated_at.isoformat(),
            "today": self.today,
            **({"currency": self.currency} if self.currency else {}),
            "candidates": [c.to_json() for c in kept],
            **({"not_kept": len(self.positions) - len(kept)} if len(kept) < len(self) else {}),
            **({"skipped_accounts": dict(self.skipped_accounts)} if self.skipped_accounts else {}),
        }


def evaluate(session: Session, rule: RuleDocument, now: datetime) -> Evaluation:
    return evaluate_many(session, [rule], now)[0]


def evaluate_many(
    session: Session, rules: Sequence[RuleDocument], now: datetime
) -> list[Evaluation]:
    """Every rule, sharing one frame (two queries) per level among them all."""
    query = (
        select(AdAccount)
        .where(AdAccount.platform == "meta", AdAccount.connected)
        .order_by(AdAccount.id)
    )
    stored = list(session.scalars(query))
    today: dict[int, date] = {}
    unusable: dict[str, str] = {}  # external id → why it cannot be evaluated
    for account in stored:
        local, problem = _local_today(account, now)
        if local is not None:
            today[account.id] = local
        else:
            unusable[account.external_id] = problem or "not evaluated"
    by_external_id = {a.external_id: a for a in stored}
    in_scope = [
        [by_external_id[i] for i in sorted(set(r.scope.account_ids)) if i in by_external_id]
        if r.scope.account_ids
        else stored
        for r in rules
    ]
    usable = [[a for a in members if a.id in today] for members in in_scope]
    # the rule's money values are in one currency: accounts billing in another are out
    currencies = [
        currency_in_scope(rule, {a.external_id: a.currency for a in members})
        for rule, members in zip(rules, usable, strict=True)
    ]
    scoped = [
        [a for a in members if a.external_id not in left_out]
        for members, (_, left_out) in zip(usable, currencies, strict=True)
    ]
    results: list[Evaluation | None] = [None] * len(rules)
    for level in sorted({r.scope.level for r in rules}):
        indexes = [i for i, r in enumerate(rules) if r.scope.level == level]
        in_level = {a.id: a for i in indexes for a in scoped[i]}
        needs: dict[Window, set[str]] = {}
        for i in indexes:
            for window, columns in _needs(rules[i]).items():
                needs.setdefault(window, set()).update(columns)
        frame = load_frame(session, level, list(in_level.values()), today, needs)
        vectors = _Vectors(frame)
        for i in indexes:
            evaluation = _evaluate_in(rules[i], frame, vectors, scoped[i], today, now)
            currency, left_out = currencies[i]
            evaluation.currency = currency
            evaluation.skipped_accounts = {
                a.external_id: left_out.get(a.external_id) or unusable[a.external_id]
                for a in in_scope[i]
                if a.external_id in left_out or (a.id not in today and a.external_id in unusable)
            }
            results[i] = evaluation
    return [r for r in results if r is not None]


def _local_today(account: AdAccount, now: datetime) -> tuple[date | None, str | None]:
    """The account's local date, or why the account cannot be evaluated at all."""
    fix = "sync or reconnect the account so that Rex reads it from Meta again"
    try:
        check_currency(account.currency)
    except MoneyError as error:
        return None, f"not evaluated: its currency cannot be used ({error}); {fix}"
    try:
        return local_today(account.timezone_name, now), None
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return None, (
            f"not evaluated: its time zone {account.timezone_name!r} is not an IANA time "
            f"zone, so its days are unknown; {fix}"
        )


def _evaluate_in(
    rule: RuleDocument,
    frame: Frame,
    vectors: _Vectors,
    accounts: list[AdAccount],
    today: dict[int, date],
    now: datetime,
) -> Evaluation:
    mask = frame.of_accounts([a.id for a in accounts])
    asks_hidden = any(
        f.field == "effective_status" and f.op in ("=", "in") for f in rule.scope.filters
    )
    if not asks_hidden:
        mask &= ~frame.hidden
    for item in rule.scope.filters:
        mask &= frame.filter_mask(item.field, item.op, item.value)
    positions = np.flatnonzero(mask)
    evaluation = Evaluation(
        rule, frame, positions, now, {a.external_id: today[a.id].isoformat() for a in accounts}
    )
    held, unsure = _prejudge(rule, vectors, positions)
    evaluation.matched_mask = held
    for index in np.flatnonzero(unsure):  # too close to call in floating point
        held[index] = evaluation.candidate(int(positions[index])).matched
    return evaluation


def _needs(rule: RuleDocument) -> dict[Window, set[str]]:
    """window → the stored columns the rule reads over it."""
    needs: dict[Window, set[str]] = {}
    for condition in rule.conditions_list():
        if condition.window:
            needs.setdefault(Window.parse(condition.window), set()).update(
                METRICS[condition.metric].columns
            )
        if isinstance(condition.value, Reference):
            needs.setdefault(Window.parse(condition.value.window), set()).update(
                METRICS[condition.value.metric].columns
            )
    guard = _guard_window(rule)
    if guard:
        needs.setdefault(Window.parse(guard), set()).update(("spend_micros", "impressions"))
    return needs


def _guard_window(rule: RuleDocument) -> str | None:
    """min_spend / min_impressions use the window of the first windowed condition."""
    if rule.safety.min_spend is None and rule.safety.min_impressions is None:
        return None
    return next((c.window for c in rule.conditions_list() if c.window), None)


# ----------------------------------------------------------- judging, all at once
#
# Metric values as float64 arrays decide the clear cases for every candidate at once.
# Floats are not exact (0.1 has no binary form, a ratio rounds), so each comparison is
# three-valued: held, not held, or too close to call (within a relative 1e-9 of the
# boundary — far wider than float error on sums below 2^53). The close calls, and only
# they, are judged exactly by `_judge` below, in Decimal; so the verdict is always the
# exact one, and the exact trace is what people see.

_REL, _ABS = 1e-9, 1e-12
Tri = tuple[np.ndarray, np.ndarray]  # (held for sure, too close to call)


class _Vectors:
    """Metric values over a frame: float64 per position, NaN where undefined."""

    def __init__(self, frame: Frame) -> None:
        self.frame = frame
        self._cache: dict[tuple[str, str | None], np.ndarray] = {}

    def value(self, metric: str, window: str | None) -> np.ndarray:
        key = (metric, window)
        if key not in self._cache:
            self._cache[key] = self._compute(METRICS[metric], window)
        return self._cache[key]

    def _compute(self, definition: Any, window: str | None) -> np.ndarray:
        frame = self.frame
        if definition.kind == Kind.CURRENT:
            minor = np.array(
                [getattr(e, definition.a) for e in frame.entities], dtype=float
            )  # None → NaN
            units = np.array(
                [offset(frame.accounts[e.account_id].currency) for e in frame.entities],
                dtype=float,
            )
            return minor / units if len(units) else minor
        assert window is not None
        a = self._column(window, definition.a)
        if definition.kind == Kind.SUM:
            return a
        b = self._column(window, definition.b)
        if definition.kind == Kind.DIFFERENCE:
            return a - b
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b == 0, np.nan, a / b * float(definition.scale))

    def _column(self, window: str, column: str) -> np.ndarray:
        raw = self.frame.sums[(Window.parse(window).name, column)].astype(float)
        return raw / MICROS_PER_UNIT if column.endswith("_micros") else raw


def _prejudge(rule: RuleDocument, vectors: _Vectors, positions: np.ndarray) -> Tri:
    def value(metric: str, window: str | None) -> np.ndarray:
        return vectors.value(metric, window)[positions]

    def walk(node: Any) -> Tri:
        if isinstance(node, All):
            return _and([walk(child) for child in node.all])
        if isinstance(node, Any_):
            return _or([walk(child) for child in node.any])
        expected: Any = node.value
        if isinstance(expected, Reference):
            expected = value(expected.metric, expected.window) * float(expected.times)
        elif isinstance(expected, list):
            expected = [float(expected[0]), float(expected[1])]
        else:
            expected = float(expected)
        return _tri_compare(value(node.metric, node.window), node.op, expected)

    verdict = walk(rule.conditions)
    guard = _guard_window(rule)
    if guard and rule.safety.min_spend is not None:
        spend = _tri_compare(value("spend", guard), ">=", float(rule.safety.min_spend))
        verdict = _and([verdict, spend])
    if guard and rule.safety.min_impressions is not None:
        least = float(rule.safety.min_impressions)
        verdict = _and([verdict, _tri_compare(value("impressions", guard), ">=", least)])
    return verdict


def _tri_compare(actual: np.ndarray, op: str, expected: Any) -> Tri:
    if op in ("between", "not_between"):
        low, high = expected
        inside = _and([_tri_compare(actual, ">=", low), _tri_compare(actual, "<=", high)])
        if op == "between":
            return inside
        held, unsure = inside
        return ~held & ~unsure & ~np.isnan(actual), unsure
    with np.errstate(invalid="ignore"):
        difference = actual - expected
        tolerance = _REL * (np.abs(actual) + np.abs(expected)) + _ABS
        unsure = np.abs(difference) <= tolerance  # NaN (undefined) compares False
        if op in (">", ">="):
            held = difference > tolerance
        elif op in ("<", "<="):
            held = difference < -tolerance
        elif op == "!=":
            held = np.abs(difference) > tolerance
        else:  # "=": only ever exactly, so never certain in floats
            held = np.zeros(len(actual), bool)
    return held, unsure


def _and(parts: list[Tri]) -> Tri:
    held = np.logical_and.reduce([h for h, _ in parts])
    possible = np.logical_and.reduce([h | u for h, u in parts])
    return held, possible & ~held


def _or(parts: list[Tri]) -> Tri:
    held = np.logical_or.reduce([h for h, _ in parts])
    unsure = np.logical_or.reduce([u for _, u in parts])
    return held, unsure & ~held


# ------------------------------------------------------------ judging, one exactly


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
            reference = expected
            base = value_of(reference.metric, reference.window)
            expected = None if base is None else base * reference.times
            if base is None:
                undefined = undefined_reference_text(reference)
        if actual is None:
            undefined = undefined_text(condition.metric, condition.window)
        held = undefined is None and actual is not None and _compare(actual, condition.op, expected)
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
                reason=explain_condition(
                    condition,
                    actual=actual,
                    expected=expected,
                    held=held,
                    undefined=undefined,
                    currency=candidate.currency,
                ),
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
            candidate.note = too_little_data(
                "spend", guard, spend, rule.safety.min_spend, candidate.currency
            )
        elif rule.safety.min_impressions is not None and (impressions or 0) < Decimal(
            rule.safety.min_impressions
        ):
            candidate.matched = False
            candidate.note = too_little_data(
                "impressions", guard, impressions, rule.safety.min_impressions, None
            )


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


def scope_currencies(session: Session, rule: RuleDocument) -> dict[str, str]:
    """External id → currency of the connected Meta accounts in the rule's scope (its
    `account_ids`, or every account): what `check_rule_currency` needs at save."""
    query = select(AdAccount.external_id, AdAccount.currency).where(
        AdAccount.platform == "meta", AdAccount.connected
    )
    if rule.scope.account_ids:
        query = query.where(AdAccount.external_id.in_(rule.scope.account_ids))
    return {external_id: currency for external_id, currency in session.execute(query)}
