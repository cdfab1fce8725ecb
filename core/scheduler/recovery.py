"""Recovery after a runner died: close its executions, settle its writes by reading Meta.

* An execution still `running` whose rule is no longer claimed (the claim expired or
  was released) is closed as failed — "scheduler stopped" — and its rule becomes due.
* A write intent (`pending`, or `unknown` because the answer was lost) older than a
  runner's lease has no runner any more. Rex reads the entity's current state from Meta:
  if it shows the value Rex meant to set, the action succeeded; otherwise it is recorded
  as not applied. It is never sent again blindly — the rule decides anew at its next
  run, with the daily cap and cooldown counting what did happen.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, select, update

from core.accounts import client_for
from core.db import read_session, write_session
from core.db.models import (
    ActionHistory,
    ActionStatus,
    AdAccount,
    AdEntity,
    AutomationRule,
    ExecutionStatus,
    RuleExecution,
)
from core.meta import GraphError
from core.meta.objects import ENTITY_FIELDS, EntityInfo

log = logging.getLogger(__name__)


def recover(now: datetime, lease: timedelta, *, engine: Engine | None = None) -> dict[str, int]:
    return {
        "executions_closed": close_orphaned_executions(now, engine=engine),
        "intents_settled": settle_orphaned_intents(now, lease, engine=engine),
    }


def close_orphaned_executions(now: datetime, *, engine: Engine | None = None) -> int:
    with write_session(engine) as session:
        rows = session.execute(
            select(RuleExecution, AutomationRule)
            .join(AutomationRule, AutomationRule.id == RuleExecution.rule_id)
            .where(
                RuleExecution.status == ExecutionStatus.RUNNING,
                or_(
                    AutomationRule.claim_expires_at.is_(None),
                    AutomationRule.claim_expires_at < now,
                ),
            )
        ).all()
        for execution, rule in rows:
            execution.status = ExecutionStatus.FAILED
            execution.error = "scheduler stopped before the run finished; the rule runs again"
            execution.finished_at = now
            if rule.status == "active" and (rule.claim_expires_at or now) <= now:
                rule.next_execution_at = now
        return len(rows)


def settle_orphaned_intents(
    now: datetime, lease: timedelta, *, engine: Engine | None = None
) -> int:
    with read_session(engine) as session:
        intents = session.scalars(
            select(ActionHistory).where(
                ActionHistory.status.in_((ActionStatus.PENDING, ActionStatus.UNKNOWN)),
                ActionHistory.created_at < now - lease,
            )
        ).all()
    settled = 0
    for intent in intents:
        outcome = _read_outcome(intent, engine)
        if outcome is None:
            continue  # Meta cannot be read now: try again at the next recovery
        status, message, copied_id = outcome
        with write_session(engine) as session:
            claimed = session.execute(
                update(ActionHistory)
                .where(ActionHistory.id == intent.id, ActionHistory.status == intent.status)
                .values(
                    status=status,
                    error_message=message,
                    finished_at=now,
                    can_rollback=status == ActionStatus.SUCCEEDED,
                    new_value=copied_id or intent.new_value,
                )
                .execution_options(synchronize_session=False)
            ).rowcount
        settled += claimed
    return settled


def _read_outcome(intent: ActionHistory, engine: Engine | None):  # type: ignore[no-untyped-def]
    details = intent.details or {}
    with read_session(engine) as session:
        account = session.get(AdAccount, intent.account_id)
        entity = session.get(AdEntity, intent.entity_id) if intent.entity_id else None
    if account is None or entity is None:
        return ActionStatus.FAILED, "the entity is gone; nothing to settle", None
    client = client_for(account)
    try:
        if intent.action_type == "duplicate":
            return _copy_outcome(client, account, entity, intent)
        answer = client.get_objects([entity.external_id], ENTITY_FIELDS[entity.level])[0]
    except GraphError as error:
        log.warning("recovery cannot read %s: %s", entity.external_id, error)
        return None
    if not isinstance(answer, dict):
        return ActionStatus.FAILED, f"not applied: Meta cannot read it ({answer})", None
    current = EntityInfo.from_graph(entity.level, answer)
    params = (details.get("request") or {}).get("params", {})
    if "status" in params:
        applied = current.status == params["status"]
    elif "daily_budget" in params or "lifetime_budget" in params:
        kind = "daily" if "daily_budget" in params else "lifetime"
        wanted = int(params[f"{kind}_budget"])
        have = current.daily_budget_minor if kind == "daily" else current.lifetime_budget_minor
        applied = have == wanted
    else:
        applied = False
    if applied:
        return ActionStatus.SUCCEEDED, None, None
    return (
        ActionStatus.FAILED,
        "not applied: Rex stopped before Meta answered and Meta shows the old value; "
        "not repeated (the rule decides again at its next run)",
        None,
    )


def _copy_outcome(client, account, entity, intent):  # type: ignore[no-untyped-def]
    params = (intent.details or {}).get("request", {}).get("params", {})
    suffix = (params.get("rename_options") or {}).get("rename_suffix", " - Copy")
    wanted = f"{entity.name}{suffix}"
    copies = [
        e
        for e in client.list_entities(account.external_id, entity.level)
        if e.name == wanted and (e.created_time is None or e.created_time >= intent.created_at)
    ]
    if copies:
        return ActionStatus.SUCCEEDED, None, copies[0].external_id
    return ActionStatus.FAILED, "not applied: no copy exists at Meta; not repeated", None
