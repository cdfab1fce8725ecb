"""What the automation did: executions, their traces and actions — read models for the
Executions and Approvals pages (and anyone else who asks).

Everything is returned as plain dataclasses; ids, never row positions, identify things.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from core.db import read_session
from core.db.models import (
    ActionHistory,
    ActionStatus,
    AdAccount,
    AutomationRule,
    RuleExecution,
)
from core.db.types import utcnow
from core.errors import NotFoundError


@dataclass(frozen=True)
class ExecutionRow:
    id: int
    rule_id: int
    rule_name: str
    started_at: datetime
    duration_ms: int | None
    status: str
    entities_checked: int
    entities_matched: int
    actions_taken: int
    actions_skipped: int
    error: str | None


@dataclass(frozen=True)
class ActionRow:
    id: int
    created_at: datetime
    rule_name: str | None
    entity_name: str | None
    action_type: str
    old_value: str | None
    new_value: str | None
    status: str
    error_message: str | None
    can_rollback: bool
    rolled_back_by_id: int | None
    settled: str | None = None  # how an unknown outcome was settled (the evidence)
    needs_person: bool = False  # unknown, and only a person can tell


@dataclass(frozen=True)
class ExecutionDetail:
    execution: ExecutionRow
    candidates: list[dict[str, Any]]  # the trace: values, conditions, matched
    steps: list[dict[str, Any]]  # per entity and action: outcome or skip reason
    actions: list[ActionRow]
    stale: dict[str, str]


def list_executions(
    *,
    rule_id: int | None = None,
    account: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    limit: int = 200,
    engine: Engine | None = None,
) -> list[ExecutionRow]:
    """Runs, newest first; `account` (act_…) keeps the rules scoped to it or to all."""
    query = (
        select(RuleExecution, AutomationRule.name)
        .join(AutomationRule, AutomationRule.id == RuleExecution.rule_id)
        .order_by(RuleExecution.started_at.desc(), RuleExecution.id.desc())
        .limit(limit)
    )
    if rule_id is not None:
        query = query.where(RuleExecution.rule_id == rule_id)
    if status:
        query = query.where(RuleExecution.status == status)
    if since is not None:
        query = query.where(RuleExecution.started_at >= since)
    with read_session(engine) as session:
        rows = session.execute(query.add_columns(AutomationRule.document)).all()
    return [
        _execution_row(e, name)
        for e, name, document in rows
        if account is None
        or not (document.get("scope") or {}).get("account_ids")
        or account in document["scope"]["account_ids"]
    ]


def execution_detail(execution_id: int, *, engine: Engine | None = None) -> ExecutionDetail:
    with read_session(engine) as session:
        found = session.execute(
            select(RuleExecution, AutomationRule.name)
            .join(AutomationRule, AutomationRule.id == RuleExecution.rule_id)
            .where(RuleExecution.id == execution_id)
        ).first()
        if found is None:
            raise NotFoundError(f"no execution with id {execution_id}")
        execution, name = found
        actions = session.execute(
            select(ActionHistory, AutomationRule.name)
            .outerjoin(AutomationRule, AutomationRule.id == ActionHistory.rule_id)
            .where(ActionHistory.execution_id == execution_id)
            .order_by(ActionHistory.id)
        ).all()
    trace = execution.trace or {}
    return ExecutionDetail(
        execution=_execution_row(execution, name),
        candidates=list(trace.get("candidates", [])),
        steps=list(trace.get("actions", [])),
        actions=[_action_row(a, rule_name) for a, rule_name in actions],
        stale=dict(trace.get("stale", {})),
    )


def trace_rows(candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trace as table rows: entity, values, and why it did not match (in words)."""
    rows = []
    for candidate in candidates:
        failed = []
        for condition in candidate.get("conditions", []):
            if condition["held"]:
                continue
            why = condition.get("undefined") or (
                f"{condition['actual']} {condition['op']} {condition['expected']} is false"
            )
            failed.append(f"{condition['path']}: {why}")
        if candidate.get("note"):
            failed.append(candidate["note"])
        values = {k: "—" if v is None else v for k, v in candidate.get("values", {}).items()}
        rows.append(
            {
                "Entity": candidate["name"],
                "Account": candidate["account"],
                "Matched": candidate["matched"],
                **values,
                "Why not": "; ".join(failed),
            }
        )
    return rows


def recent_actions(
    *,
    hours: int = 24,
    status: str | None = None,
    now: datetime | None = None,
    engine: Engine | None = None,
) -> list[ActionRow]:
    """The seed's monitoring views: actions of the last `hours` (failures: `status`)."""
    since = (now or utcnow()) - timedelta(hours=hours)
    query = (
        select(ActionHistory, AutomationRule.name)
        .outerjoin(AutomationRule, AutomationRule.id == ActionHistory.rule_id)
        .where(ActionHistory.created_at > since)
        .order_by(ActionHistory.created_at.desc(), ActionHistory.id.desc())
    )
    if status:
        query = query.where(ActionHistory.status == status)
    with read_session(engine) as session:
        return [_action_row(a, name) for a, name in session.execute(query)]


def why_not(
    rule_id: int, *, now: datetime | None = None, engine: Engine | None = None
) -> list[str]:
    """Plain answers to "why didn't my rule run (or act)?"."""
    from core.settings import get_settings

    now = now or utcnow()
    reasons: list[str] = []
    with read_session(engine) as session:
        rule = session.get(AutomationRule, rule_id)
        if rule is None:
            raise NotFoundError(f"no rule with id {rule_id}")
        scope = (rule.document.get("scope") or {}).get("account_ids") or []
        accounts = session.scalars(
            select(AdAccount).where(AdAccount.external_id.in_(scope))
            if scope
            else select(AdAccount)
        ).all()
        last = session.scalars(
            select(RuleExecution)
            .where(RuleExecution.rule_id == rule_id)
            .order_by(RuleExecution.started_at.desc())
            .limit(1)
        ).first()
        acted_today = session.scalar(
            select(func.count(ActionHistory.id)).where(
                ActionHistory.rule_id == rule_id,
                ActionHistory.status.in_((ActionStatus.SUCCEEDED, ActionStatus.PENDING)),
                ActionHistory.created_at > now - timedelta(hours=24),
            )
        )
    if rule.status != "active":
        reasons.append(f"The rule is {rule.status}: only active rules are scheduled.")
    elif rule.next_execution_at and rule.next_execution_at > now:
        reasons.append(f"Its next run is due at {rule.next_execution_at:%Y-%m-%d %H:%M} UTC.")
    if not accounts:
        reasons.append("None of its accounts is connected.")
    stale_minutes = get_settings().stale_after_minutes
    for account in accounts:
        if account.token_status != "ok":
            reasons.append(f"{account.external_id} needs reconnecting: its token was rejected.")
        if account.last_sync_at is None or account.last_sync_at < now - timedelta(
            minutes=stale_minutes
        ):
            reasons.append(
                f"{account.external_id}'s numbers are stale (older than {stale_minutes} min): "
                "rules are not evaluated on them."
            )
        if account.rate_limited_until and account.rate_limited_until > now:
            reasons.append(
                f"Meta rate-limits {account.external_id} until "
                f"{account.rate_limited_until:%H:%M} UTC."
            )
    cap = (rule.document.get("safety") or {}).get("max_daily_actions", 10)
    if acted_today >= cap:
        reasons.append(f"It reached its daily cap ({cap} actions).")
    if last is not None:
        reasons.append(
            f"Last run {last.started_at:%Y-%m-%d %H:%M} UTC: {last.status}, "
            f"{last.entities_matched} of {last.entities_checked} matched, "
            f"{last.actions_taken} acted" + (f" — {last.error}" if last.error else "")
        )
    else:
        reasons.append("It has not run yet.")
    return reasons


def _execution_row(e: RuleExecution, name: str) -> ExecutionRow:
    return ExecutionRow(
        id=e.id,
        rule_id=e.rule_id,
        rule_name=name,
        started_at=e.started_at,
        duration_ms=e.duration_ms,
        status=e.status,
        entities_checked=e.entities_checked,
        entities_matched=e.entities_matched,
        actions_taken=e.actions_taken,
        actions_skipped=e.actions_skipped,
        error=e.error,
    )


def _action_row(a: ActionHistory, rule_name: str | None) -> ActionRow:
    settle = (a.details or {}).get("settle") or {}
    return ActionRow(
        id=a.id,
        created_at=a.created_at,
        rule_name=rule_name,
        entity_name=a.entity_name,
        action_type=a.action_type,
        old_value=a.old_value,
        new_value=a.new_value,
        status=a.status,
        error_message=a.error_message,
        can_rollback=a.can_rollback and a.rolled_back_by_id is None,
        rolled_back_by_id=a.rolled_back_by_id,
        settled=settle.get("message") if a.status != "unknown" else None,
        needs_person=a.status == "unknown" and bool(settle.get("needs_person")),
    )
