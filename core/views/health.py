"""The system's figures: is automation working, is the scheduler alive, what did it do.

* reliability (the seed system's figures): rule success rate, average execution time,
  action success rate, API error rate (failed Graph work — syncs and writes — over all);
* impact, per currency, each figure saying what it counts:
  - **daily budget under automation**: the daily budgets of the delivering entities
    (effective status ACTIVE) that some active rule can change — a rule that is not in
    dry run and pauses, resumes or changes budgets, and has the entity among its
    candidates (its accounts, level and filters, chosen by the rule engine's own
    scoping, `core.rules.evaluate`);
  - **spend saved by pauses**: for each pause Rex made in the last 30 days, the entity's
    average daily spend over the 7 account-local days before the pause (the days Rex
    synced) × the days it has stayed paused so far, counted to the minute (a pause six
    hours ago counts a quarter of a day), until now or until it was undone (rolled
    back, or resumed by a rule). A pause with no synced day before it counts as "not
    enough data yet";
  - **revenue change after budget raises**: for each raise of the last 30 days whose 7
    following days are over, revenue per day in the 7 days after against the 7 days
    before, × 7;
* at a glance: active rules, actions today, pending approvals, failures; scheduler
  heartbeats and the newest job errors or missed runs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.actions.changes import BudgetChange, StoredChangeError, change_of
from core.actions.kinds import ActionType, kind_of
from core.db import read_session
from core.db.models import (
    ActionHistory,
    ActionStatus,
    AdAccount,
    AdMetric,
    ApprovalStatus,
    AutomationRule,
    ExecutionStatus,
    PendingAction,
    RuleExecution,
    RuleStatus,
    SchedulerEvent,
    SchedulerHeartbeat,
    SyncRun,
    SyncStatus,
)
from core.db.types import utcnow
from core.errors import RexError
from core.money import MICROS_PER_UNIT, from_minor
from core.rules.document import parse_rule
from core.rules.windows import local_today

ALIVE_WITHIN = timedelta(minutes=2)
IMPACT_DAYS = 30  # the actions the impact figures count: those of the last 30 days
BEFORE_DAYS = 7  # the days before (and after) an action its effect is measured on
DailySums = dict[tuple[int, date], tuple[int, int]]  # (entity, day) → (spend, revenue) micros


@dataclass(frozen=True)
class JobRun:
    """A scheduler job's last run, as the heartbeat records it."""

    job: str
    last_run_at: str | None  # ISO time, as recorded
    outcome: str | None  # "ok", "error: …", "skipped (another replica)", …
    duration_ms: int | None

    @classmethod
    def of(cls, job: str, recorded: Any) -> JobRun:
        info = recorded if isinstance(recorded, dict) else {"outcome": str(recorded)}
        took = info.get("duration_ms")
        return cls(job, info.get("last_run_at"), info.get("outcome"),
                   took if isinstance(took, int) else None)  # fmt: skip


@dataclass(frozen=True)
class JobEvent:
    """A job error or missed run."""

    at: datetime
    job: str
    kind: str
    message: str | None


@dataclass(frozen=True)
class SchedulerState:
    host: str
    pid: int
    started_at: datetime
    last_tick_at: datetime | None
    alive: bool
    jobs: dict[str, Any]  # as recorded (also "stopped": how the scheduler ended)

    @property
    def job_runs(self) -> list[JobRun]:
        """The jobs' last runs, by name (what is not a job's record left out)."""
        return [JobRun.of(job, info) for job, info in sorted(self.jobs.items())
                if isinstance(info, dict)]  # fmt: skip


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
    events: list[JobEvent]
    # impact (see the module's docstring for what each counts), currency → amount
    budget_under_automation: dict[str, Decimal] = field(default_factory=dict)
    spend_saved: dict[str, Decimal] = field(default_factory=dict)
    revenue_change_after_scaling: dict[str, Decimal] = field(default_factory=dict)
    last_sync_at: datetime | None = None
    entities_under_automation: int = 0  # delivering entities whose budgets are counted
    pauses_counted: int = 0  # pauses in `spend_saved`
    pauses_without_data: int = 0  # pauses with no synced day before them
    raises_counted: int = 0  # budget raises in `revenue_change_after_scaling`
    raises_waiting: int = 0  # raises whose 7 following days are not over yet
    raises_without_data: int = 0  # raises with no synced day before or after them

    @property
    def scheduler_alive(self) -> bool:
        return any(s.alive for s in self.schedulers)


def system_health(
    *,
    days: int = 7,
    now: datetime | None = None,
    engine: Engine | None = None,
    impact: bool = True,
) -> Health:
    """The figures of the last `days` days at `now`; the impact figures (which evaluate
    the active rules' scopes) only with `impact`."""
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
            .where(AutomationRule.status == RuleStatus.ACTIVE)
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
        figures = _impact(session, now) if impact else {}

    judged = sum(v for k, v in runs.items() if k != ExecutionStatus.SKIPPED)
    sent = actions.get(ActionStatus.SUCCEEDED, 0) + actions.get(ActionStatus.FAILED, 0)
    failed_work = actions.get(ActionStatus.FAILED, 0) + syncs.get(SyncStatus.FAILED, 0)
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
        events=[JobEvent(at, job, kind, message) for at, job, kind, message in events],
        last_sync_at=last_sync,
        **figures,
    )


def _impact(session: Session, now: datetime) -> dict[str, Any]:
    accounts = {a.id: a for a in session.scalars(select(AdAccount))}
    budget, counted = _budget_under_automation(session, now)
    since = now - timedelta(days=IMPACT_DAYS)
    done = session.scalars(
        select(ActionHistory)
        .where(
            ActionHistory.status == ActionStatus.SUCCEEDED,
            ActionHistory.action_type.in_((ActionType.PAUSE, ActionType.CHANGE_BUDGET)),
            ActionHistory.created_at >= since,
            ActionHistory.entity_id.is_not(None),
        )
        .order_by(ActionHistory.created_at, ActionHistory.id)
    ).all()
    done = [a for a in done if a.account_id in accounts]
    pauses = [a for a in done if a.action_type == ActionType.PAUSE]
    raises = [a for a in done if a.action_type == ActionType.CHANGE_BUDGET and _raised(a)]

    def local_day(action: ActionHistory) -> date:
        try:
            return local_today(accounts[action.account_id].timezone_name, _effective(action))
        except (ValueError, LookupError):  # a stored zone that is no zone: UTC's day
            return _effective(action).date()

    days = {a.id: local_day(a) for a in pauses + raises}
    daily = _daily_sums(session, pauses + raises, days)
    starts = _data_starts(session, {a.account_id for a in pauses + raises})
    ends = _pause_ends(session, pauses)

    saved: dict[str, Decimal] = {}
    without_data = 0
    for pause in pauses:
        code = accounts[pause.account_id].currency
        day = days[pause.id]
        average = _average(daily, pause.entity_id, day - timedelta(days=BEFORE_DAYS),
                           day - timedelta(days=1), starts.get(pause.account_id))  # fmt: skip
        if average is None:
            without_data += 1
            continue
        end = min(now, ends.get(pause.id, now))
        paused = Decimal(max(0.0, (end - _effective(pause)).total_seconds())) / 86_400
        saved[code] = saved.get(code, Decimal(0)) + average[0] * paused

    scaled: dict[str, Decimal] = {}
    raises_counted = waiting = without_data_raises = 0
    for change in raises:
        day = days[change.id]
        if now < _effective(change) + timedelta(days=BEFORE_DAYS + 1):
            waiting += 1  # counted once the 7 days after the change are over
            continue
        start = starts.get(change.account_id)
        before = _average(daily, change.entity_id, day - timedelta(days=BEFORE_DAYS),
                          day - timedelta(days=1), start)  # fmt: skip
        after = _average(daily, change.entity_id, day + timedelta(days=1),
                         day + timedelta(days=BEFORE_DAYS), start)  # fmt: skip
        if before is None or after is None:
            without_data_raises += 1
            continue
        code = accounts[change.account_id].currency
        scaled[code] = scaled.get(code, Decimal(0)) + (after[1] - before[1]) * BEFORE_DAYS
        raises_counted += 1
    return {
        "budget_under_automation": budget,
        "entities_under_automation": counted,
        "spend_saved": saved,
        "pauses_counted": len(pauses) - without_data,
        "pauses_without_data": without_data,
        "revenue_change_after_scaling": scaled,
        "raises_counted": raises_counted,
        "raises_waiting": waiting,
        "raises_without_data": without_data_raises,
    }


def _budget_under_automation(session: Session, now: datetime) -> tuple[dict[str, Decimal], int]:
    """Daily budgets (per currency) of the delivering entities some active rule that is
    not in dry run can change, and how many entities that is. The candidates are the
    rule engine's own: `evaluate_many` picks them as a run would (accounts, level,
    filters, archived ones left out, accounts in another currency left out)."""
    from core.rules.evaluate import evaluate_many  # the engine, loaded only for this

    rules = []
    for document in session.scalars(
        select(AutomationRule.document).where(AutomationRule.status == RuleStatus.ACTIVE)
    ):
        try:
            rule = parse_rule(document)
        except RexError:  # a document this version cannot read is not run either
            continue
        if not rule.safety.dry_run and any(kind_of(a.type).changes_spend for a in rule.actions):
            rules.append(rule)
    if not rules:
        return {}, 0
    seen: set[int] = set()
    budget: dict[str, Decimal] = {}
    for evaluation in evaluate_many(session, rules, now):
        frame = evaluation.frame
        for position in evaluation.positions.tolist():  # the rule's candidates
            entity = frame.entities[position]
            if entity.id in seen or entity.effective_status != "ACTIVE":
                continue
            if entity.daily_budget_minor:
                seen.add(entity.id)
                code = frame.accounts[entity.account_id].currency
                amount = from_minor(int(entity.daily_budget_minor), code)
                budget[code] = budget.get(code, Decimal(0)) + amount
    return budget, len(seen)


def _effective(action: ActionHistory) -> datetime:
    """When the change took effect: when its run recorded it (the call follows within
    seconds; `finished_at` is the wall clock, which a run replayed "as of" an instant
    does not share)."""
    return action.created_at


def _raised(action: ActionHistory) -> bool:
    try:
        change = change_of(action)
    except StoredChangeError:
        return False
    return isinstance(change, BudgetChange) and change.delta_minor > 0


def _pause_ends(session: Session, pauses: list[ActionHistory]) -> dict[int, datetime]:
    """When each pause was undone: its rollback, or a later resume of the same entity."""
    if not pauses:
        return {}
    rollbacks = {
        a.id: _effective(a)
        for a in session.scalars(
            select(ActionHistory).where(
                ActionHistory.id.in_([p.rolled_back_by_id for p in pauses if p.rolled_back_by_id])
            )
        )
    }
    resumes: dict[int | None, list[datetime]] = defaultdict(list)
    for entity_id, at in session.execute(
        select(ActionHistory.entity_id, ActionHistory.created_at).where(
            ActionHistory.action_type == ActionType.RESUME,
            ActionHistory.status == ActionStatus.SUCCEEDED,
            ActionHistory.entity_id.in_({p.entity_id for p in pauses}),
        )
    ):
        resumes[entity_id].append(at)
    ends = {}
    for pause in pauses:
        later = [t for t in resumes.get(pause.entity_id, []) if t > _effective(pause)]
        if pause.rolled_back_by_id in rollbacks:
            later.append(rollbacks[pause.rolled_back_by_id])
        if later:
            ends[pause.id] = min(later)
    return ends


def _data_starts(session: Session, account_ids: set[int]) -> dict[int, date]:
    """The first day of each account's synced numbers (a successful sync's first day, or
    the oldest stored row if older): days before it are unknown, not zero."""
    if not account_ids:
        return {}
    starts: dict[int, date] = {}
    for query in (
        select(SyncRun.account_id, func.min(SyncRun.since))
        .where(SyncRun.account_id.in_(account_ids), SyncRun.status == SyncStatus.SUCCEEDED)
        .group_by(SyncRun.account_id),
        select(AdMetric.account_id, func.min(AdMetric.date))
        .where(AdMetric.account_id.in_(account_ids))
        .group_by(AdMetric.account_id),
    ):
        for account_id, first in session.execute(query):
            if first is not None:
                starts[account_id] = min(first, starts.get(account_id, first))
    return starts


def _daily_sums(session: Session, actions: list[ActionHistory], days: dict[int, date]) -> DailySums:
    """(entity, day) → (spend, revenue) in micros, around every action, in one query."""
    if not actions:
        return {}
    first = min(days.values()) - timedelta(days=BEFORE_DAYS)
    last = max(days.values()) + timedelta(days=BEFORE_DAYS)
    rows = session.execute(
        select(
            AdMetric.entity_id, AdMetric.date, AdMetric.spend_micros, AdMetric.revenue_micros
        ).where(
            AdMetric.entity_id.in_({a.entity_id for a in actions}),
            AdMetric.date.between(first, last),
        )
    )
    return {(e, d): (int(s or 0), int(r or 0)) for e, d, s, r in rows}


def _average(
    daily: DailySums, entity_id: int | None, first: date, last: date, data_starts: date | None
) -> tuple[Decimal, Decimal] | None:
    """Average daily spend and revenue (major units) of an entity over the synced days of
    [first, last]; None when Rex synced none of them (or the action names no entity)."""
    if entity_id is None or data_starts is None or data_starts > last:
        return None
    first = max(first, data_starts)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    spend = sum(daily.get((entity_id, d), (0, 0))[0] for d in days)
    revenue = sum(daily.get((entity_id, d), (0, 0))[1] for d in days)
    count = Decimal(len(days)) * MICROS_PER_UNIT
    return Decimal(spend) / count, Decimal(revenue) / count


def _rate(part: int, whole: int) -> float | None:
    return None if not whole else part / whole
