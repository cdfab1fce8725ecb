"""The Rules list: every rule with what it did — its last run, its actions and the budget
money it moved in 7 days, its errors — searched by name, filtered by status, sorted and
one page at a time, with the cells' words.

The rules themselves, bulk enable / disable, "Go live" and the builder are
`core.rules.builder` and `core.rules.store`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import aliased

from core.access.actor import Actor
from core.access.roles import Permission
from core.actions.changes import BudgetChange, change_of
from core.actions.kinds import ActionType
from core.db import read_session
from core.db.models import (
    ActionHistory,
    ActionStatus,
    ExecutionStatus,
    RuleExecution,
    RuleStatus,
)
from core.db.types import utcnow
from core.errors import InputError, RexError
from core.money import format_money, from_minor
from core.rules.builder import account_choices, offers_go_live, rule_currency
from core.rules.describe import counts_text
from core.rules.store import RuleView, list_rules


@dataclass(frozen=True)
class LastRun:
    at: datetime
    status: ExecutionStatus
    acted: int
    queued: int
    would: int
    skipped: int
    error: str | None


@dataclass(frozen=True)
class RuleListRow:
    rule: RuleView
    actions_7d: int
    last_run: LastRun | None = None
    money_moved: dict[str, Decimal] = field(default_factory=dict)  # currency → net change
    errors_7d: int = 0
    currency: str | None = None  # the currency its money values are in, when one

    @property
    def can_go_live(self) -> bool:
        return offers_go_live(self.rule)


def rules_with_activity(
    *, actor: Actor, now: datetime | None = None, engine: Engine | None = None
) -> list[RuleListRow]:
    """Every rule `actor` may read with what it did: its last run, its succeeded actions
    and the budget money it moved (net, per currency, rolled-back changes left out) over
    7 days, and its failed or partial runs in 7 days. A few grouped queries, whatever the
    number of rules."""
    since = (now or utcnow()) - timedelta(days=7)
    undo = aliased(ActionHistory)
    with read_session(engine) as session:
        counts = dict(
            session.execute(
                select(ActionHistory.rule_id, func.count())
                .where(
                    ActionHistory.created_at >= since,
                    ActionHistory.status == ActionStatus.SUCCEEDED,
                    ActionHistory.rollback_of_id.is_(None),
                )
                .group_by(ActionHistory.rule_id)
            ).all()
        )
        errors = dict(
            session.execute(
                select(RuleExecution.rule_id, func.count())
                .where(
                    RuleExecution.started_at >= since,
                    RuleExecution.status.in_((ExecutionStatus.FAILED, ExecutionStatus.PARTIAL)),
                )
                .group_by(RuleExecution.rule_id)
            ).all()
        )
        latest = select(func.max(RuleExecution.id)).group_by(RuleExecution.rule_id)
        last_runs = {
            e.rule_id: LastRun(
                at=e.started_at,
                status=e.status,
                acted=e.actions_taken,
                queued=e.actions_queued,
                would=e.actions_would,
                skipped=e.actions_skipped,
                error=e.error,
            )
            for e in session.scalars(select(RuleExecution).where(RuleExecution.id.in_(latest)))
        }
        moved: dict[int, dict[str, Decimal]] = {}
        budget_changes = session.execute(
            select(ActionHistory)
            .outerjoin(undo, undo.id == ActionHistory.rolled_back_by_id)
            .where(
                ActionHistory.created_at >= since,
                ActionHistory.action_type == ActionType.CHANGE_BUDGET,
                ActionHistory.status == ActionStatus.SUCCEEDED,
                ActionHistory.rule_id.is_not(None),
                (undo.id.is_(None)) | (undo.status != ActionStatus.SUCCEEDED),
            )
        )
        for (action,) in budget_changes:
            try:
                change = change_of(action)
                if not isinstance(change, BudgetChange):
                    continue
                currency = change.currency
                delta = from_minor(change.delta_minor, currency)
            except (RexError, ValueError):
                continue  # a record without the amounts: nothing to add
            per_rule = moved.setdefault(action.rule_id or 0, {})
            per_rule[currency] = per_rule.get(currency, Decimal(0)) + delta
    accounts = account_choices(actor=actor, permission=Permission.READ, engine=engine)
    return [
        RuleListRow(
            rule,
            counts.get(rule.id, 0),
            last_runs.get(rule.id),
            moved.get(rule.id, {}),
            errors.get(rule.id, 0),
            rule_currency(rule.document, accounts),
        )
        for rule in list_rules(actor=actor, engine=engine)
    ]


RULES_PER_PAGE = 20
SORTS: dict[str, str] = {
    "created": "Oldest first",
    "name": "Name (A → Z)",
    "last_run": "Last run (latest first)",
    "actions": "Actions in 7 days (most first)",
    "money": "Money moved (most first)",
    "errors": "Errors in 7 days (most first)",
}


def _sort_key(sort: str) -> Callable[[RuleListRow], Any]:
    far_past = datetime.min.replace(tzinfo=utcnow().tzinfo)
    keys: dict[str, Callable[[RuleListRow], Any]] = {
        "created": lambda r: r.rule.id,
        "name": lambda r: (r.rule.name.lower(), r.rule.id),
        "last_run": lambda r: (-(r.last_run.at if r.last_run else far_past).timestamp(), r.rule.id),
        "actions": lambda r: (-r.actions_7d, r.rule.id),
        # magnitudes of different currencies are compared as numbers: an order, not a sum
        "money": lambda r: (-sum(abs(v) for v in r.money_moved.values()), r.rule.id),
        "errors": lambda r: (-r.errors_7d, r.rule.id),
    }
    if sort not in keys:
        raise InputError("sort", f"{sort!r}: use one of {', '.join(keys)}")
    return keys[sort]


def page_of_rules(
    rows: list[RuleListRow],
    *,
    text: str = "",
    statuses: list[RuleStatus] | None = None,
    page: int = 1,
    sort: str = "created",
) -> tuple[list[RuleListRow], int, int]:
    """The rules whose name contains `text` (any case) and whose status is in `statuses`
    (all when empty), sorted, one page of them: (rows on the page, rules found, pages)."""
    needle = text.strip().lower()
    found = [
        r for r in rows
        if needle in r.rule.name.lower() and (not statuses or r.rule.status in statuses)
    ]  # fmt: skip
    found.sort(key=_sort_key(sort))
    pages = max(1, -(-len(found) // RULES_PER_PAGE))
    page = min(max(page, 1), pages)
    return found[(page - 1) * RULES_PER_PAGE : page * RULES_PER_PAGE], len(found), pages


def money_moved_text(moved: dict[str, Decimal]) -> str:
    """ "+125.00 USD · −3,000 JPY", or "—" when nothing moved."""
    parts = [
        ("+" if amount > 0 else "−" if amount < 0 else "") + format_money(abs(amount), currency)
        for currency, amount in sorted(moved.items())
    ]
    return " · ".join(parts) or "—"


def last_run_text(last: LastRun | None) -> str:
    if last is None:
        return "never run"
    return f"{last.at:%Y-%m-%d %H:%M} UTC · {last.status}: " + counts_text(
        last.acted, last.queued, last.would, last.skipped
    )
