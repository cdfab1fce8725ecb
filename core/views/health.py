"""The system's figures: is automation working, is the scheduler alive, what did it do.

* reliability (the seed system's figures): rule success rate, average execution time,
  action success rate, API error rate (failed Graph work — syncs and writes — over all);
* impact, per currency, each figure saying what it counts:
  - **daily budget under automation**: the daily budgets of the delivering entities
    (effective status ACTIVE) that some active rule can change — a rule that is not in
    dry run and pauses, resumes or changes budgets, and has the entity among its
    candidates (its accounts, level and filters, chosen by the rule engine's own
    scoping, `core.rules.evaluate`);
  - **spend saved by pauses** and **revenue change after budget raises**: for each pause
    (each raise) Rex made in the last 30 days, the estimated effect of the change on the
    entity's spend (revenue) over the 7 days after it — against what it would have done
    anyway, from the account's entities Rex did not change (its outcome's headline
    checkpoint, core/outcomes) — summed, with a 90 % interval, and the effect on profit
    beside it (a pause saves spend and loses the revenue it bought). A change whose 7
    days (and 3 more for late conversions) have not passed yet is *waiting*; one whose
    data were too thin for an estimate is counted as *without an estimate*, never as
    zero;
* at a glance: active rules, actions today, pending approvals, failures; scheduler
  heartbeats and the newest job errors or missed runs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.access.actor import Actor
from core.access.roles import Permission
from core.actions.changes import BudgetChange, StoredChangeError, change_of
from core.actions.kinds import ActionType, kind_of
from core.db import read_session
from core.db.models import (
    ActionHistory,
    ActionStatus,
    AdAccount,
    ApprovalStatus,
    AutomationRule,
    ExecutionStatus,
    PendingAction,
    RexOutcomeCheckpoint,
    RexSuggestionPerformance,
    RuleExecution,
    RuleStatus,
    SchedulerEvent,
    SchedulerHeartbeat,
    SyncRun,
    SyncStatus,
)
from core.db.types import utcnow
from core.errors import RexError
from core.money import format_money, from_minor
from core.outcomes.record import HEADLINE, ROLLED_BACK, SETTLE_DAYS
from core.rules.document import parse_rule
from core.rules.store import readable_rules
from core.suggestions.stats import Interval
from core.views.outcomes import effect_words, money, summed

ALIVE_WITHIN = timedelta(minutes=2)
IMPACT_DAYS = 30  # the actions the impact figures count: those of the last 30 days


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
class Counted:
    """The changes an impact figure is about: measured (in the figure), waiting for
    their days to pass, measured without an estimate (too little data)."""

    measured: int = 0
    waiting: int = 0
    without_estimate: int = 0
    rolled_back: int = 0  # undone within the days measured: no effect of its own

    def words(self, what: str) -> str:
        """ "2 pauses measured; 1 waiting for its 7 days to settle"."""
        said = [f"{self.measured} {what} measured"]
        if self.waiting:
            said.append(f"{self.waiting} waiting for {HEADLINE} days after (+{SETTLE_DAYS} "
                        "for late conversions)")  # fmt: skip
        if self.without_estimate:
            said.append(f"{self.without_estimate} with too little data for an estimate")
        if self.rolled_back:
            said.append(f"{self.rolled_back} rolled back within {HEADLINE} days")
        return "; ".join(said)

    def empty_words(self, nothing: str) -> str:
        """What a figure with no measured change says instead of an amount."""
        if self.waiting:
            return "being measured"
        if self.without_estimate:
            return "not enough data"
        return "rolled back" if self.rolled_back else nothing


def amounts(figures: dict[str, Decimal]) -> str:
    """One amount per currency, each as its currency formats it: "650.00 USD · 12,000 JPY"."""
    return " · ".join(format_money(v, c) for c, v in sorted(figures.items()))


def effects(figures: dict[str, Interval], *, interval: bool = False) -> str:
    """A summed effect per currency, as its currency formats it: "-120.00 USD"; with
    `interval`, each with its 90 % interval."""
    if interval:
        return " · ".join(effect_words((i.estimate, i.low, i.high), c)
                          for c, i in sorted(figures.items()))  # fmt: skip
    return " · ".join(money(i.estimate, c) for c, i in sorted(figures.items()))


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
    spend_saved: dict[str, Interval] = field(default_factory=dict)
    profit_after_pauses: dict[str, Interval] = field(default_factory=dict)
    pauses: Counted = field(default_factory=lambda: Counted())
    revenue_change_after_scaling: dict[str, Interval] = field(default_factory=dict)
    profit_after_scaling: dict[str, Interval] = field(default_factory=dict)
    raises: Counted = field(default_factory=lambda: Counted())
    last_sync_at: datetime | None = None
    entities_under_automation: int = 0  # delivering entities whose budgets are counted

    @property
    def scheduler_alive(self) -> bool:
        return any(s.alive for s in self.schedulers)


def system_health(
    *,
    actor: Actor,
    days: int = 7,
    now: datetime | None = None,
    engine: Engine | None = None,
    impact: bool = True,
) -> Health:
    """The figures of the last `days` days at `now`, over the accounts `actor` may read
    (the rules whose every account they may read, the actions, proposals and syncs of
    their accounts); the impact figures (which evaluate the active rules' scopes) only
    with `impact`. The scheduler's processes are everyone's to see; its job log (whose
    messages may name any account) is an admin's."""
    now = now or utcnow()
    since = now - timedelta(days=days)
    day_ago = now - timedelta(hours=24)
    readable = actor.account_ids(Permission.READ)

    def mine(query: Any, column: Any) -> Any:  # only the reader's accounts' rows
        return query if readable is None else query.where(column.in_(readable))

    with read_session(engine) as session:
        rule_ids = _readable_rule_ids(session, actor)
        ran = select(RuleExecution.status, func.count()).where(RuleExecution.started_at >= since)
        if rule_ids is not None:
            ran = ran.where(RuleExecution.rule_id.in_(rule_ids))
        runs = dict(session.execute(ran.group_by(RuleExecution.status)).all())
        timed = select(func.avg(RuleExecution.duration_ms)).where(
            RuleExecution.started_at >= since, RuleExecution.status != ExecutionStatus.SKIPPED
        )
        if rule_ids is not None:
            timed = timed.where(RuleExecution.rule_id.in_(rule_ids))
        average_ms = session.scalar(timed)
        acted = select(ActionHistory.status, func.count()).where(ActionHistory.created_at >= since)
        grouped = mine(acted, ActionHistory.account_id).group_by(ActionHistory.status)
        actions = dict(session.execute(grouped).all())
        synced = select(SyncRun.status, func.count()).where(SyncRun.started_at >= since)
        syncs = dict(
            session.execute(mine(synced, SyncRun.account_id).group_by(SyncRun.status)).all()
        )
        active = select(AutomationRule.id).where(AutomationRule.status == RuleStatus.ACTIVE)
        active_ids = set(session.scalars(active))
        active_rules = len(active_ids if rule_ids is None else active_ids & rule_ids)
        counted = select(func.count()).select_from(ActionHistory)
        actions_today = session.scalar(
            mine(counted, ActionHistory.account_id).where(
                ActionHistory.created_at >= day_ago,
                ActionHistory.status == ActionStatus.SUCCEEDED,
            )
        )
        failures_today = session.scalar(
            mine(counted, ActionHistory.account_id).where(
                ActionHistory.created_at >= day_ago,
                ActionHistory.status.in_((ActionStatus.FAILED, ActionStatus.UNKNOWN)),
            )
        )
        waiting = select(func.count()).select_from(PendingAction)
        pending = session.scalar(
            mine(waiting, PendingAction.account_id).where(
                PendingAction.status == ApprovalStatus.PENDING, PendingAction.expires_at > now
            )
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
            .limit(20 if actor.admin else 0)
        ).all()
        last_sync = session.scalar(mine(select(func.max(SyncRun.finished_at)), SyncRun.account_id))
        figures = _impact(session, now, readable) if impact else {}

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


def _readable_rule_ids(session: Session, actor: Actor) -> set[int] | None:
    """The rules `actor` may read (None: every rule, an admin)."""
    if actor.admin:
        return None
    return readable_rules(session, actor, list(session.scalars(select(AutomationRule))))


def _impact(session: Session, now: datetime, readable: frozenset[int] | None) -> dict[str, Any]:
    budget, counted = _budget_under_automation(session, now, readable)
    since = now - timedelta(days=IMPACT_DAYS)
    query = select(ActionHistory).where(
        ActionHistory.status == ActionStatus.SUCCEEDED,
        ActionHistory.action_type.in_((ActionType.PAUSE, ActionType.CHANGE_BUDGET)),
        ActionHistory.created_at >= since,
        ActionHistory.entity_id.is_not(None),
    )
    if readable is not None:
        query = query.where(ActionHistory.account_id.in_(readable))
    done = session.scalars(query).all()
    pauses = [a for a in done if a.action_type == ActionType.PAUSE]
    raises = [a for a in done if a.action_type == ActionType.CHANGE_BUDGET and _raised(a)]
    headlines = _headlines(session, [a.id for a in pauses + raises])
    saved, pause_profit, paused = _measured(pauses, headlines, "spend", negate=True)
    scaled, raise_profit, raised = _measured(raises, headlines, "revenue")
    return {
        "budget_under_automation": budget,
        "entities_under_automation": counted,
        "spend_saved": saved,
        "profit_after_pauses": pause_profit,
        "pauses": paused,
        "revenue_change_after_scaling": scaled,
        "profit_after_scaling": raise_profit,
        "raises": raised,
    }


def _headlines(
    session: Session, action_ids: list[int]
) -> dict[int, tuple[str, RexOutcomeCheckpoint | None]]:
    """action → (its account's currency, its outcome's headline checkpoint or None)."""
    if not action_ids:
        return {}
    rows = session.execute(
        select(RexSuggestionPerformance.action_id, AdAccount.currency, RexOutcomeCheckpoint)
        .join(AdAccount, AdAccount.id == RexSuggestionPerformance.account_id)
        .outerjoin(
            RexOutcomeCheckpoint,
            (RexOutcomeCheckpoint.performance_id == RexSuggestionPerformance.id)
            & (RexOutcomeCheckpoint.days == HEADLINE),
        )
        .where(RexSuggestionPerformance.action_id.in_(action_ids))
    )
    return {
        action_id: (currency, checkpoint)
        for action_id, currency, checkpoint in rows
        if action_id is not None
    }


def _measured(
    actions: list[ActionHistory],
    headlines: dict[int, tuple[str, RexOutcomeCheckpoint | None]],
    metric: str,
    *,
    negate: bool = False,
) -> tuple[dict[str, Interval], dict[str, Interval], Counted]:
    """The summed effect on `metric` (negated: what was saved) and on profit, per
    currency, over the actions whose headline checkpoint has an estimate; and the
    count of each."""
    effects: dict[str, list[dict[str, Any]]] = defaultdict(list)
    profits: dict[str, list[dict[str, Any]]] = defaultdict(list)
    without = waiting = undone = 0
    for action in actions:
        currency, checkpoint = headlines.get(action.id, ("", None))
        if checkpoint is None:
            waiting += 1
        elif checkpoint.verdict == ROLLED_BACK:
            undone += 1
        elif not checkpoint.effects or metric not in checkpoint.effects:
            without += 1
        else:
            effect = checkpoint.effects[metric]
            if negate:
                effect = {"estimate": -effect["estimate"], "low": -effect["high"],
                          "high": -effect["low"]}  # fmt: skip
            effects[currency].append(effect)
            profits[currency].append(checkpoint.effects["profit"])
    measured = sum(len(v) for v in effects.values())
    return (
        {c: Interval(*summed(v)) for c, v in effects.items()},  # type: ignore[misc]
        {c: Interval(*summed(v)) for c, v in profits.items()},  # type: ignore[misc]
        Counted(measured, waiting, without, undone),
    )


def _budget_under_automation(
    session: Session, now: datetime, readable: frozenset[int] | None
) -> tuple[dict[str, Decimal], int]:
    """Daily budgets (per currency) of the delivering entities (of the `readable`
    accounts; None: all) some active rule that is not in dry run can change, and how
    many entities that is. The candidates are the
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
            if readable is not None and entity.account_id not in readable:
                continue
            if entity.daily_budget_minor:
                seen.add(entity.id)
                code = frame.accounts[entity.account_id].currency
                amount = from_minor(int(entity.daily_budget_minor), code)
                budget[code] = budget.get(code, Decimal(0)) + amount
    return budget, len(seen)


def _raised(action: ActionHistory) -> bool:
    try:
        change = change_of(action)
    except StoredChangeError:
        return False
    return isinstance(change, BudgetChange) and change.delta_minor > 0


def _rate(part: int, whole: int) -> float | None:
    return None if not whole else part / whole
