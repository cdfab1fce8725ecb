"""Recovery after a runner died: close what it left open, settle its writes by reading Meta.

* An execution still `running` whose rule is no longer claimed (the claim expired or
  was released) is closed as failed — "scheduler stopped" — and its rule becomes due.
* A sync run still `running` long after any sync could take, and a heartbeat whose
  process stopped beating without saying so, are closed (a killed process leaves them).
* A write intent still `pending` after a runner's lease was never sent: it is recorded
  as `deferred` (not sent), and the rule decides anew at its next run.
* A write still `sending` after the lease went out (or may have) and its runner died
  before the answer: it becomes `unknown`.
* `unknown` writes are settled from Meta's change history and state
  (core/actions/settle.py) — never by sending them again.

Each step is isolated: an account whose Meta or token cannot be used now is left for the
next pass, and the others are settled.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, select, update

from core.actions.settle import settle_unknown
from core.db import rows_changed, write_session
from core.db.models import (
    ActionHistory,
    ActionStatus,
    AutomationRule,
    ExecutionStatus,
    RuleExecution,
    RuleStatus,
    SchedulerHeartbeat,
    SyncRun,
    SyncStatus,
)
from core.process import gone_from_this_host
from core.settings import get_settings
from core.sync.runner import STEPS

log = logging.getLogger(__name__)

HEARTBEAT_SILENCE = timedelta(minutes=5)  # the heartbeat job beats every 15 s


def recover(now: datetime, lease: timedelta, *, engine: Engine | None = None) -> dict[str, int]:
    return {
        "executions_closed": close_orphaned_executions(now, engine=engine),
        "syncs_closed": close_orphaned_syncs(now, engine=engine),
        "heartbeats_closed": close_silent_heartbeats(now, engine=engine),
        "intents_not_sent": close_unsent_intents(now, lease, engine=engine),
        "intents_unknown": mark_orphaned_sends(now, lease, engine=engine),
        "intents_settled": _settle(engine, now),
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
            if rule.status == RuleStatus.ACTIVE and (rule.claim_expires_at or now) <= now:
                rule.next_execution_at = now
        return len(rows)


def close_orphaned_syncs(now: datetime, *, engine: Engine | None = None) -> int:
    """Sync runs still `running` whose process is gone: at once when it ran on this
    machine, else once the run is older than any sync can take (every step at its read
    deadline)."""
    longest = timedelta(seconds=get_settings().graph_read_deadline_seconds * STEPS)
    with write_session(engine) as session:
        rows = session.scalars(select(SyncRun).where(SyncRun.status == SyncStatus.RUNNING)).all()
        closed = 0
        for run in rows:
            if gone_from_this_host(run.owner) or run.started_at < now - longest:
                run.status = SyncStatus.FAILED
                run.finished_at = now
                run.error = "the process running this sync stopped before it finished"
                closed += 1
        return closed


def close_silent_heartbeats(now: datetime, *, engine: Engine | None = None) -> int:
    """A scheduler that stopped without recording its stop was killed: its process is
    gone from this machine, or it has not beaten for HEARTBEAT_SILENCE."""
    with write_session(engine) as session:
        rows = session.scalars(
            select(SchedulerHeartbeat).where(SchedulerHeartbeat.stopped_at.is_(None))
        ).all()
        closed = 0
        for row in rows:
            last = row.last_tick_at or row.started_at
            gone = gone_from_this_host(f"{row.host}:{row.pid}")
            if gone or last < now - HEARTBEAT_SILENCE:
                row.stopped_at = min(last, now)
                row.jobs = {**(row.jobs or {}), "stopped": "killed (stopped without a word)"}
                closed += 1
        return closed


def close_unsent_intents(now: datetime, lease: timedelta, *, engine: Engine | None = None) -> int:
    """Intents still `pending` a lease after they were made never went out."""
    with write_session(engine) as session:
        return rows_changed(
            session,
            update(ActionHistory)
            .where(
                ActionHistory.status == ActionStatus.PENDING,
                ActionHistory.created_at < now - lease,
            )
            .values(
                status=ActionStatus.DEFERRED,
                finished_at=now,
                error_message="not sent: the runner stopped before sending it; the rule "
                "decides again at its next run",
            )
            .execution_options(synchronize_session=False),
        )


def mark_orphaned_sends(now: datetime, lease: timedelta, *, engine: Engine | None = None) -> int:
    """Writes `sending` a lease after they went out lost their runner mid-call."""
    with write_session(engine) as session:
        return rows_changed(
            session,
            update(ActionHistory)
            .where(
                ActionHistory.status == ActionStatus.SENDING,
                ActionHistory.sent_at < now - lease,
            )
            .values(
                status=ActionStatus.UNKNOWN,
                error_message="outcome unknown: the runner stopped while the call to Meta was "
                "out; Rex reads Meta's change history to settle it and does not send it again",
            )
            .execution_options(synchronize_session=False),
        )


def _settle(engine: Engine | None, now: datetime) -> int:
    settled = settle_unknown(engine=engine, now=now)
    return sum(status != ActionStatus.UNKNOWN for status in settled.values())
