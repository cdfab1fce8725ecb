"""The system's figures: is automation working, is the scheduler alive, what did it do.

* reliability (the seed system's figures): rule success rate, average execution time,
  action success rate, API error rate (failed Graph work — syncs and writes — over all);
* impact: budget under automation, spend saved by pauses (each paused entity's average
  daily spend in the 7 days before the pause × the days it has stayed paused, up to
  30), and revenue change after budget increases (revenue per day in the 7 days after
  against the 7 days before);
* at a glance: active rules, actions today, pending approvals, failures; scheduler
  heartbeats and the newest job errors or missed runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine, func, select

from core.db import read_session
from core.db.models import (
    ActionHistory,
    ActionStatus,
    AdAccount,
    AdEntity,
    AdMetric,
    ApprovalStatus,
    AutomationRule,
    ExecutionStatus,
    PendingAction,
    RuleExecution,
    SchedulerEvent,
    SchedulerHeartbeat,
    SyncRun,
)
from core.db.types import utcnow
from core.money import MICROS_PER_UNIT, from_minor

ALIVE_WITHIN = timedelta(minutes=2)


@dataclass(frozen=True)
class SchedulerState:
    host: str
    pid: int
    started_at: datetime
    last_tick_at: datetime | None
    alive: bool
    jobs: dict


@dataclass(frozen=True)
class Health:
    days: int
    rule_success_rate: float | None
    average_execution_ms: float | None
    action_success_rate: float | None
    api_error_rate: float | None
    active_rules: int
    actions_today: int
    pending_approvals: int
    failures_today: int
    schedulers: list[SchedulerState]
    events: list[tuple[datetime, str, str, str | None]]  # at, job, kind, message
    budget_under_automation: dict[str, Decimal] = field(default_factory=dict)  # currency →
    spend_saved: dict[str, Decimal] = field(default_factory=dict)
    revenue_change_after_scaling: dict[str, Decimal] = field(default_factory=dict)
    last_sync_at: datetime | None = None

    @property
    def scheduler_alive(self) -> bool:
        return any(s.alive for s in self.schedulers)


def system_health(
    *, days: int = 7, now: datetime | None = None, engine: Engine | None = None
) -> Health:
    now = now or utcnow()
    since = now - timedelta(days=days)
    day_ago = now - timedelta(hours=24)
    with read_session(engine) as session:
        runs = dict(
            session.execute(
                select(RuleExecution.status, func.count())
                .where(RuleExecution.started_at >= since)
                .group_by(RuleExecution.status)
            ).all()
        )
        average_ms = session.scalar(
            select(func.avg(RuleExecution.duration_ms)).where(
                RuleExecution.started_at >= since,
                RuleExecution.status != ExecutionStatus.SKIPPED,
            )
        )
        actions = dict(
            session.execute(
                select(ActionHistory.status, func.count())
                .where(ActionHistory.created_at >= since)
                .group_by(ActionHistory.status)
            ).all()
        )
        syncs = dict(
            session.execute(
                select(SyncRun.status, func.count())
                .where(SyncRun.started_at >= since)
                .group_by(SyncRun.status)
            ).all()
        )
        active_rules = session.scalar(
            select(func.count())
            .select_from(AutomationRule)
            .where(AutomationRule.status == "active")
        )
        actions_today = session.scalar(
            select(func.count())
            .select_from(ActionHistory)
            .where(
                ActionHistory.created_at >= day_ago,
                ActionHistory.status == ActionStatus.SUCCEEDED,
            )
        )
        failures_today = session.scalar(
            select(func.count())
            .select_from(ActionHistory)
            .where(
                ActionHistory.created_at >= day_ago,
                ActionHistory.status.in_((ActionStatus.FAILED, ActionStatus.UNKNOWN)),
            )
        )
        pending = session.scalar(
            select(func.count())
            .select_from(PendingAction)
            .where(PendingAction.status == ApprovalStatus.PENDING, PendingAction.expires_at > now)
        )
        beats = session.scalars(
            select(SchedulerHeartbeat).order_by(SchedulerHeartbeat.started_at.desc()).limit(10)
        ).all()
        events = session.execute(
            select(
                SchedulerEvent.at,
                SchedulerEvent.job_id,
                SchedulerEvent.kind,
                SchedulerEvent.message,
            )
            .order_by(SchedulerEvent.at.desc())
            .limit(20)
        ).all()
        last_sync = session.scalar(select(func.max(SyncRun.finished_at)))
        impact = _impact(session, now)

    judged = sum(v for k, v in runs.items() if k != ExecutionStatus.SKIPPED)
    sent = actions.get(ActionStatus.SUCCEEDED, 0) + actions.get(ActionStatus.FAILED, 0)
    failed_work = actions.get(ActionStatus.FAILED, 0) + syncs.get("failed", 0)
    all_work = sent + sum(syncs.values())
    return Health(
        days=days,
        rule_success_rate=_rate(runs.get(ExecutionStatus.SUCCEEDED, 0), judged),
        average_execution_ms=float(average_ms) if average_ms is not None else None,
        action_success_rate=_rate(actions.get(ActionStatus.SUCCEEDED, 0), sent),
        api_error_rate=_rate(failed_work, all_work),
        active_rules=active_rules or 0,
        actions_today=actions_today or 0,
        pending_approvals=pending or 0,
        failures_today=failures_today or 0,
        schedulers=[
            SchedulerState(
                b.host,
                b.pid,
                b.started_at,
                b.last_tick_at,
                b.stopped_at is None
                and b.last_tick_at is not None
                and b.last_tick_at > now - ALIVE_WITHIN,
                dict(b.jobs or {}),
            )
            for b in beats
        ],
        events=[tuple(e) for e in events],
        last_sync_at=last_sync,
        **impact,
    )


def _impact(session, now: datetime) -> dict[str, dict[str, Decimal]]:  # type: ignore[no-untyped-def]
    currency = dict(session.execute(select(AdAccount.id, AdAccount.currency)).all())
    budget: dict[str, Decimal] = {}
    for account_id, minor in session.execute(
        select(AdEntity.account_id, func.sum(AdEntity.daily_budget_minor))
        .where(AdEntity.daily_budget_minor.is_not(None), AdEntity.effective_status == "ACTIVE")
        .group_by(AdEntity.account_id)
    ):
        code = currency[account_id]
        budget[code] = budget.get(code, Decimal(0)) + from_minor(int(minor or 0), code)

    saved: dict[str, Decimal] = {}
    scaled: dict[str, Decimal] = {}
    done = session.scalars(
        select(ActionHistory).where(
            ActionHistory.status == ActionStatus.SUCCEEDED,
            ActionHistory.action_type.in_(("pause", "change_budget")),
            ActionHistory.rolled_back_by_id.is_(None),
        )
    ).all()
    for action in done:
        code = currency.get(action.account_id)
        if code is None or action.entity_id is None:
            continue
        when = action.created_at.date()
        before = _daily(
            session, action.entity_id, when - timedelta(days=7), when - timedelta(days=1)
        )
        if action.action_type == "pause":
            days_paused = min(30, max(0, (now - action.created_at).days))
            saved[code] = saved.get(code, Decimal(0)) + before[0] * days_paused
        elif _raised(action) and action.created_at <= now - timedelta(days=8):
            # counted once the 7 days after the change are over
            after = _daily(
                session, action.entity_id, when + timedelta(days=1), when + timedelta(days=7)
            )
            scaled[code] = scaled.get(code, Decimal(0)) + (after[1] - before[1]) * 7
    return {
        "budget_under_automation": budget,
        "spend_saved": saved,
        "revenue_change_after_scaling": scaled,
    }


def _raised(action: ActionHistory) -> bool:
    details = action.details or {}
    return details.get("new_minor", 0) > details.get("old_minor", 0)


def _daily(session, entity_id: int, first, last) -> tuple[Decimal, Decimal]:  # type: ignore[no-untyped-def]
    """Average daily spend and revenue (major units) of an entity over [first, last]."""
    spend, revenue = session.execute(
        select(
            func.coalesce(func.sum(AdMetric.spend_micros), 0),
            func.coalesce(func.sum(AdMetric.revenue_micros), 0),
        ).where(AdMetric.entity_id == entity_id, AdMetric.date.between(first, last))
    ).one()
    days = Decimal((last - first).days + 1)
    return (Decimal(spend) / MICROS_PER_UNIT / days, Decimal(revenue) / MICROS_PER_UNIT / days)


def _rate(part: int, whole: int) -> float | None:
    return None if not whole else part / whole
