"""Running a rule: claim → evaluate → guard → act / queue → record.

A run evaluates the rule on synced data (one aggregate query), then walks the matched
entities in a deterministic order (account, entity id) and, for each action:

* skips it, with the reason in the trace, when the account cannot be acted on (token
  rejected, rate limited), outside the rule's days / hours, in cooldown, past the daily
  cap (the account's local day, counted in the database across runs and processes),
  when the change rounds to nothing, or when an ad set's budget lives on its campaign;
* in dry run records a "would …" row (`dry_run`) and writes nothing to Meta;
* with approval required queues a pending action with the values that justified it;
* otherwise records an intent (`pending`, unique idempotency key per rule, entity,
  action and evaluation slot) and hands the intents to `core.actions.execute`.

The `rule_executions` row gets the counts — taken (what was done: writes Meta
confirmed, notifications sent), queued (proposals put to a person), would (a dry run's
"would …" rows), skipped — with the status, duration, error and the trace.

Cooldowns and the daily cap count what the live rule did or may have done; a dry run's
"would" rows count only toward later dry runs (a simulation of its own cap and
cooldown), so testing a rule never holds back the rule once it is live. An action
never cools down the entity for the rule's other actions in the same run.

`Planner` is the one place these decisions are made: a run records them, and a
preview (`core.engine.preview`) asks the same planner without writing anything.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from core.actions.budget import BudgetNotApplicable, new_budget
from core.actions.execute import Write, budget_write, copy_write, execute_intents, status_write
from core.actions.settle import held_reason, unsettled_writes
from core.db import read_session, write_session
from core.db.models import (
    ActionHistory,
    ActionStatus,
    AdAccount,
    ApprovalStatus,
    AutomationRule,
    ExecutionStatus,
    Notification,
    PendingAction,
    RuleExecution,
    TokenStatus,
)
from core.db.types import utcnow
from core.engine.claim import Claim, claim_due, claim_rule, release
from core.errors import RexError
from core.money import format_money, from_minor
from core.rules.describe import describe_values
from core.rules.document import (
    ChangeBudget,
    Duplicate,
    Notify,
    Pause,
    Resume,
    RuleDocument,
    parse_rule,
)
from core.rules.evaluate import Candidate, Evaluation, evaluate, trace_value
from core.settings import get_settings

log = logging.getLogger(__name__)

# What counts toward a live rule's cooldowns and daily caps: what happened, and what may
# have happened (a write not settled yet counts like a success, so it is never repeated
# meanwhile). Never a dry run's "would" rows: testing a rule must not hold it back.
LIVE_COUNTED = (
    ActionStatus.PENDING,
    ActionStatus.SENDING,
    ActionStatus.SUCCEEDED,
    ActionStatus.UNKNOWN,
)
# A dry run simulates its own cap and cooldown: its earlier "would" rows count too.
DRY_RUN_COUNTED = (*LIVE_COUNTED, ActionStatus.DRY_RUN)
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class RuleBusyError(RexError):
    """Another runner holds this rule right now."""


def counted_statuses(rule: RuleDocument) -> tuple[ActionStatus, ...]:
    """The actions of this rule that count toward its cap and cooldown in this run."""
    return DRY_RUN_COUNTED if rule.safety.dry_run else LIVE_COUNTED


def run_mode(rule: RuleDocument) -> str:
    """`dry_run` (records "would …"), `approval` (queues proposals) or `live`."""
    if rule.safety.dry_run:
        return "dry_run"
    return "approval" if rule.safety.require_approval else "live"


@dataclass
class RunResult:
    execution_id: int
    rule_id: int
    status: str
    entities_checked: int = 0
    entities_matched: int = 0
    actions_taken: int = 0  # done: writes Meta confirmed, notifications sent
    actions_skipped: int = 0
    duration_ms: int = 0
    error: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    actions_queued: int = 0  # proposals put to a person
    actions_would: int = 0  # dry run: "would …" rows
    mode: str = "live"  # live | dry_run | approval

    @property
    def summary(self) -> str:
        """What happened, in words: "acted 1, skipped 2", "queued 2 for approval"."""
        return counts_in_words(
            taken=self.actions_taken,
            queued=self.actions_queued,
            would=self.actions_would,
            skipped=self.actions_skipped,
            mode=self.mode,
        )


def counts_in_words(
    *, taken: int, queued: int, would: int, skipped: int, mode: str | None = None
) -> str:
    """A run's counts as people say them: "acted 1, skipped 2", "queued 2 for approval",
    "would act on 3 (dry run)". `mode` (a run's `mode`, or None for a stored execution
    whose counts alone tell) names the count a run of that kind is about even at 0."""
    parts = []
    if would or mode == "dry_run":
        parts.append(f"would act on {would} (dry run)")
    if queued or mode == "approval":
        parts.append(f"queued {queued} for approval")
    if taken or not parts:
        parts.append(f"acted {taken}")
    if skipped:
        parts.append(f"skipped {skipped}")
    return ", ".join(parts)


def run_due_rules(
    now: datetime | None = None,
    *,
    runner: str | None = None,
    stale_after: timedelta | None = None,
    engine: Engine | None = None,
) -> list[RunResult]:
    """Claim and run every due rule. With `stale_after`, accounts whose last sync is
    older are not evaluated (the scheduler passes it; a person running a rule by hand
    decides for themselves)."""
    now = now or utcnow()
    claims = claim_due(now, runner=runner, engine=engine)
    return [run_claimed(claim, now, stale_after=stale_after, engine=engine) for claim in claims]


def run_rule_now(
    rule_id: int,
    now: datetime | None = None,
    *,
    runner: str | None = None,
    engine: Engine | None = None,
) -> RunResult:
    now = now or utcnow()
    claim = claim_rule(rule_id, now, runner=runner, engine=engine)
    if claim is None:
        raise RuleBusyError(f"rule {rule_id} is running elsewhere right now; try again shortly")
    return run_claimed(claim, now, engine=engine)


def run_claimed(
    claim: Claim,
    now: datetime,
    *,
    stale_after: timedelta | None = None,
    engine: Engine | None = None,
) -> RunResult:
    started = time.monotonic()
    with write_session(engine) as session:
        rule_row = session.get_one(AutomationRule, claim.rule_id)
        execution = RuleExecution(
            rule_id=rule_row.id, rule_version=rule_row.version, started_at=now,
            status=ExecutionStatus.RUNNING,
        )  # fmt: skip
        session.add(execution)
        session.flush()
        result = RunResult(execution_id=execution.id, rule_id=rule_row.id, status="running")
        document, every = rule_row.document, rule_row.check_frequency_minutes
    trace: dict[str, Any] = {}
    try:
        rule = parse_rule(document)
        _run(rule, claim, now, result, trace, engine, stale_after)
    except Exception as error:  # recorded on the execution; the scheduler keeps going
        log.exception("rule %s failed", claim.rule_id)
        result.status = ExecutionStatus.FAILED
        result.error = str(error) if isinstance(error, RexError) else f"internal error: {error!r}"
    finally:
        result.duration_ms = int((time.monotonic() - started) * 1000)
        _finish(result, trace, engine)
        release(
            claim,
            next_execution_at=_next_due(claim.slot, every, now),
            last_execution_at=now,
            engine=engine,
        )
    return result


# ------------------------------------------------------------------------- run


@dataclass
class Prepared:
    """What a run (or a preview) plans on: the evaluation, the scoped accounts, and
    those whose numbers are too old to act on."""

    evaluation: Evaluation
    accounts: dict[str, AdAccount]
    stale: dict[str, str]

    @property
    def unusable(self) -> dict[str, str]:
        """Accounts not acted on at all: bad time zone or currency, another currency than
        the rule's, stale data."""
        return {**self.evaluation.skipped_accounts, **self.stale}


def prepare(
    rule: RuleDocument,
    now: datetime,
    engine: Engine | None,
    stale_after: timedelta | None = None,
) -> Prepared:
    with read_session(engine) as session:
        evaluation = evaluate(session, rule, now)
        scoped = select(AdAccount).where(AdAccount.platform == "meta", AdAccount.connected)
        if rule.scope.account_ids:
            scoped = scoped.where(AdAccount.external_id.in_(rule.scope.account_ids))
        accounts = {a.external_id: a for a in session.scalars(scoped)}
    stale = _stale_accounts(accounts.values(), now, stale_after)
    for candidate in evaluation.candidates if stale else []:
        if candidate.account in stale and candidate.matched:
            candidate.matched = False
            candidate.note = stale[candidate.account]
    return Prepared(evaluation, accounts, stale)


def _run(
    rule: RuleDocument,
    claim: Claim,
    now: datetime,
    result: RunResult,
    trace: dict[str, Any],
    engine: Engine | None,
    stale_after: timedelta | None = None,
) -> None:
    result.mode = run_mode(rule)
    prepared = prepare(rule, now, engine, stale_after)
    evaluation, accounts = prepared.evaluation, prepared.accounts
    trace["mode"] = result.mode
    trace.update(evaluation.to_json())
    if prepared.stale:
        trace["stale"] = prepared.stale
    unusable = prepared.unusable
    result.entities_checked = len(evaluation.candidates)
    if accounts and len(unusable) == len(accounts):
        result.status = ExecutionStatus.SKIPPED
        reasons = dict.fromkeys(r.removeprefix("not evaluated: ") for r in unusable.values())
        result.error = "not evaluated: " + "; ".join(reasons)
        return
    result.entities_matched = len(evaluation.matched)

    planner = Planner(rule, claim.rule_id, claim.slot, now, accounts, engine)
    planner.plan_all(evaluation.matched)
    if planner.intents:
        execute_intents(planner.intents, engine=engine, now=now)
        with read_session(engine) as session:
            recorded = {
                row.id: row
                for row in session.scalars(
                    select(ActionHistory).where(ActionHistory.id.in_(planner.intents))
                )
            }
        for step in planner.steps:
            row = recorded.get(step.get("action_id"))  # type: ignore[arg-type]
            if row is not None:
                step["outcome"] = row.status
                if row.error_message:
                    step["error"] = row.error_message
    result.steps = planner.steps
    outcomes = [s["outcome"] for s in planner.steps]
    result.actions_taken = sum(1 for o in outcomes if o in (ActionStatus.SUCCEEDED, "notified"))
    result.actions_queued = outcomes.count("queued")
    result.actions_would = outcomes.count(ActionStatus.DRY_RUN)
    result.actions_skipped = outcomes.count(ActionStatus.SKIPPED)
    trace["actions"] = planner.steps
    bad = (ActionStatus.FAILED, ActionStatus.UNKNOWN, ActionStatus.DEFERRED)
    failed = [s for s in planner.steps if s["outcome"] in bad]
    ok = [s for s in planner.steps if s["outcome"] not in bad]
    if failed:
        result.status = ExecutionStatus.PARTIAL if ok else ExecutionStatus.FAILED
        result.error = _failure_summary(failed)
    elif planner.held_accounts and not evaluation.matched:
        result.status = ExecutionStatus.SKIPPED
        result.error = "; ".join(sorted(planner.held_accounts.values()))
    else:
        result.status = ExecutionStatus.SUCCEEDED


def _failure_summary(steps: list[dict[str, Any]]) -> str:
    """What went wrong, by kind: refused, unknown (being settled), not sent."""
    words = {
        ActionStatus.FAILED: "failed",
        ActionStatus.UNKNOWN: "with an unknown outcome (Rex reads Meta to settle it)",
        ActionStatus.DEFERRED: "not sent",
    }
    counts = [
        f"{n} {word}"
        for status, word in words.items()
        if (n := sum(1 for s in steps if s["outcome"] == status))
    ]
    first = next((s.get("error") for s in steps if s.get("error")), "")
    return f"{len(steps)} action(s) did not succeed: {', '.join(counts)}. {first}".strip()


def _stale_accounts(accounts: Any, now: datetime, stale_after: timedelta | None) -> dict[str, str]:
    """Accounts whose numbers are too old to act on, with the reason."""
    if stale_after is None:
        return {}
    stale = {}
    for account in accounts:
        if account.last_sync_at is None or account.last_sync_at < now - stale_after:
            when = (
                f"last synced {account.last_sync_at:%Y-%m-%d %H:%M} UTC"
                if account.last_sync_at
                else "never synced"
            )
            minutes = int(stale_after.total_seconds() // 60)
            stale[account.external_id] = (
                f"stale data: {account.external_id} {when}, more than {minutes} min ago"
            )
    return stale


class Planner:
    """Decides, per matched entity and action, what happens, and records it.

    The same guards, in the same order, for a run and for a preview: with
    `preview=True` nothing is written (no action rows, proposals or notifications) and
    what a run would have recorded is kept in memory instead — so the daily cap and
    the rule's own queue are simulated exactly as a run applies them. `rule_id` is None
    for a document not saved yet (it has no history)."""

    def __init__(
        self,
        rule: RuleDocument,
        rule_id: int | None,
        slot: datetime,
        now: datetime,
        accounts: dict[str, AdAccount],
        engine: Engine | None,
        *,
        preview: bool = False,
    ) -> None:
        self.rule, self.rule_id, self.slot, self.now = rule, rule_id, slot, now
        self.engine, self.preview = engine, preview
        self.accounts = accounts
        self.counted = counted_statuses(rule)
        self.steps: list[dict[str, Any]] = []
        self.intents: list[int] = []
        self.held_accounts: dict[str, str] = {}
        # account id → this rule's counted actions today: the database's count when the
        # account is first met, then this run's own (one runner holds the rule)
        self.today: dict[int, int] = {}
        # what this run recorded: never a cooldown for the rule's other actions in it
        self.recorded: list[int] = []
        self.proposed: list[int] = []
        self.queued_here: set[tuple[int, str]] = set()
        # entities with an earlier write not settled yet: no other write until it is
        self.unsettled = unsettled_writes(engine=engine)

    def plan_all(self, matched: list[Candidate]) -> list[dict[str, Any]]:
        """Every action for every matched entity, in a fixed order (account, entity)."""
        for candidate in sorted(matched, key=lambda c: (c.account, c.external_id)):
            for index, action in enumerate(self.rule.actions):
                self.plan(candidate, index, action)
        return self.steps

    def plan(self, candidate: Candidate, index: int, action: Any) -> None:
        step: dict[str, Any] = {
            "entity_id": candidate.entity_id,
            "entity": candidate.external_id,
            "name": candidate.name,
            "account": candidate.account,
            "action": action.type,
        }
        self.steps.append(step)
        account = self.accounts[candidate.account]
        reason = self.guard(candidate, account)
        if reason is None and not isinstance(action, Notify):
            earlier = self.unsettled.get(candidate.entity_id)
            if earlier is not None:
                reason = held_reason(earlier)
        if reason:
            step.update(outcome=ActionStatus.SKIPPED, reason=reason)
            return
        try:
            change = self.change(candidate, account, action)
        except _Skip as skip:
            step.update(outcome=ActionStatus.SKIPPED, reason=str(skip))
            return
        step.update(old=change.old_text, new=change.new_text, note=change.note)

        if isinstance(action, Notify):
            self.notify(candidate, account, action, change, step)
        elif self.rule.safety.dry_run:
            self.would(candidate, account, change, step)
        elif self.rule.safety.require_approval:
            self.queue(candidate, account, change, step)
        else:
            self.intend(candidate, account, change, index, step)

    # --------------------------------------------------------------- guards

    def guard(self, candidate: Candidate, account: AdAccount) -> str | None:
        if account.token_status == TokenStatus.NEEDS_RECONNECT:
            self.held_accounts[account.external_id] = f"{account.external_id} needs reconnect"
            return "the account needs reconnecting (its token was rejected)"
        if account.rate_limited_until and account.rate_limited_until > self.now:
            return f"Meta rate-limits the account until {account.rate_limited_until:%H:%M} UTC"
        local = self.now.astimezone(ZoneInfo(account.timezone_name))
        schedule = self.rule.schedule
        if schedule.days and DAY_NAMES[local.weekday()] not in schedule.days:
            return f"not a scheduled day ({DAY_NAMES[local.weekday()]} in {account.timezone_name})"
        if schedule.hours and not schedule.hours[0] <= local.hour < schedule.hours[1]:
            return f"outside the rule's hours ({local:%H:%M} in {account.timezone_name})"
        cooldown = self.cooldown_until(candidate)
        if cooldown:
            return f"in cooldown until {cooldown:%Y-%m-%d %H:%M} UTC"
        if self.count_today(account) >= self.rule.safety.max_daily_actions:
            return f"daily cap reached ({self.rule.safety.max_daily_actions} actions today)"
        return None

    def cooldown_until(self, candidate: Candidate) -> datetime | None:
        """The end of the entity's cooldown from this rule's earlier runs, if any."""
        minutes = self.rule.safety.cooldown_minutes
        if not minutes or self.rule_id is None:
            return None
        since = self.now - timedelta(minutes=minutes)
        with read_session(self.engine) as session:
            acted = session.scalar(
                select(func.max(ActionHistory.created_at)).where(
                    ActionHistory.rule_id == self.rule_id,
                    ActionHistory.entity_id == candidate.entity_id,
                    ActionHistory.status.in_(self.counted),
                    ActionHistory.created_at > since,
                    ActionHistory.id.not_in(self.recorded),
                )
            )
            queued = session.scalar(
                select(func.max(PendingAction.created_at)).where(
                    PendingAction.rule_id == self.rule_id,
                    PendingAction.entity_id == candidate.entity_id,
                    PendingAction.status.in_((ApprovalStatus.PENDING, ApprovalStatus.APPROVED)),
                    PendingAction.created_at > since,
                    PendingAction.id.not_in(self.proposed),
                )
            )
        last = max((t for t in (acted, queued) if t is not None), default=None)
        return None if last is None else last + timedelta(minutes=minutes)

    def count_today(self, account: AdAccount) -> int:
        """Actions of this rule on this account since the account's local midnight:
        counted in the database (across runs and processes), plus this run's own."""
        if account.id not in self.today:
            self.today[account.id] = self._counted_in_database(account)
        return self.today[account.id]

    def _counted_in_database(self, account: AdAccount) -> int:
        if self.rule_id is None:
            return 0
        zone = ZoneInfo(account.timezone_name)
        local = self.now.astimezone(zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        with read_session(self.engine) as session:
            taken = session.scalar(
                select(func.count(ActionHistory.id)).where(
                    ActionHistory.rule_id == self.rule_id,
                    ActionHistory.account_id == account.id,
                    ActionHistory.status.in_(self.counted),
                    ActionHistory.created_at >= midnight,
                )
            )
            queued = session.scalar(
                select(func.count(PendingAction.id)).where(
                    PendingAction.rule_id == self.rule_id,
                    PendingAction.account_id == account.id,
                    PendingAction.status.in_((ApprovalStatus.PENDING, ApprovalStatus.APPROVED)),
                    PendingAction.created_at >= midnight,
                )
            )
        return int(taken or 0) + int(queued or 0)

    def _counts(self, account: AdAccount) -> None:
        """One more action of this rule on the account today (recorded or, in a
        preview, that would be)."""
        self.today[account.id] = self.count_today(account) + 1

    # -------------------------------------------------------------- changes

    def change(self, candidate: Candidate, account: AdAccount, action: Any) -> _Change:
        if isinstance(action, Pause):
            if candidate.status == "PAUSED":
                raise _Skip("already paused")
            write = status_write(candidate.external_id, "PAUSED")
            return _Change(action.type, write, candidate.status, "PAUSED")
        if isinstance(action, Resume):
            if candidate.status == "ACTIVE":
                raise _Skip("already active")
            write = status_write(candidate.external_id, "ACTIVE")
            return _Change(action.type, write, candidate.status, "ACTIVE")
        if isinstance(action, ChangeBudget):
            if candidate.campaign_budget:
                raise _Skip(
                    "its budget lives on its campaign (campaign budget optimisation): "
                    "use a campaign-level rule"
                )
            try:
                budget = new_budget(
                    action,
                    currency=candidate.currency,
                    daily_minor=candidate.daily_budget_minor,
                    lifetime_minor=candidate.lifetime_budget_minor,
                    meta_minimum_minor=account.min_daily_budget_minor,
                )
            except BudgetNotApplicable as error:
                raise _Skip(f"no budget to change: {error}") from None
            if not budget.changes:  # the note names the cause: a bound, Meta, rounding
                raise _Skip(budget.note or "the change rounds to nothing")

            def money(minor: int) -> str:
                return format_money(from_minor(minor, candidate.currency), candidate.currency)

            return _Change(
                action.type,
                budget_write(candidate.external_id, budget.kind, budget.new_minor),
                money(budget.old_minor),
                money(budget.new_minor),
                note=budget.note,
                details={
                    "budget": budget.kind,
                    "currency": candidate.currency,
                    "old_minor": budget.old_minor,
                    "new_minor": budget.new_minor,
                },
            )
        if isinstance(action, Duplicate):
            level = self.rule.scope.level
            return _Change(action.type, copy_write(candidate.external_id, level,
                                                   action.name_suffix), None, None)  # fmt: skip
        if isinstance(action, Notify):
            return _Change(action.type, None, None, action.message or self.rule.name)
        raise _Skip(f"unknown action {action!r}")

    # ------------------------------------------------------------- outcomes

    def would(
        self, candidate: Candidate, account: AdAccount, change: _Change, step: dict[str, Any]
    ) -> None:
        """Dry run: a "would …" row, nothing sent."""
        if not self.preview:
            step["action_id"] = self.record(candidate, account, change, ActionStatus.DRY_RUN)
        step["outcome"] = ActionStatus.DRY_RUN
        self._counts(account)

    def intend(
        self,
        candidate: Candidate,
        account: AdAccount,
        change: _Change,
        index: int,
        step: dict[str, Any],
    ) -> None:
        """Live: an intent with its idempotency key, sent after planning."""
        key = (
            f"r{self.rule_id}:e{candidate.entity_id}:a{index}:{change.action_type}:"
            f"{self.slot:%Y%m%dT%H%M}Z"
        )
        action_id = None if self._done(key) else 0
        if action_id is not None and not self.preview:
            action_id = self.record(candidate, account, change, ActionStatus.PENDING, key)
        if action_id is None:
            step.update(outcome=ActionStatus.SKIPPED, reason="already done in this slot")
            return
        step["outcome"] = ActionStatus.PENDING
        self._counts(account)
        if not self.preview:
            step["action_id"] = action_id
            self.intents.append(action_id)

    def _done(self, key: str) -> bool:
        if self.rule_id is None:
            return False
        with read_session(self.engine) as session:
            found = session.scalar(
                select(ActionHistory.id).where(ActionHistory.idempotency_key == key)
            )
        return found is not None

    def record(
        self,
        candidate: Candidate,
        account: AdAccount,
        change: _Change,
        status: ActionStatus,
        key: str | None = None,
    ) -> int | None:
        assert not self.preview, "a preview writes nothing"
        details = dict(change.details)
        if change.write is not None:
            details["request"] = change.write.to_json()
        details["level"] = self.rule.scope.level
        details["values"] = {k: trace_value(v) for k, v in candidate.values.items()}
        try:
            with write_session(self.engine) as session:
                row = ActionHistory(
                    rule_id=self.rule_id,
                    execution_id=None,
                    account_id=account.id,
                    entity_id=candidate.entity_id,
                    entity_name=candidate.name,
                    action_type=change.action_type,
                    old_value=change.old_text,
                    new_value=change.new_text,
                    status=status,
                    idempotency_key=key,
                    details=details,
                    created_at=self.now,
                )
                session.add(row)
                session.flush()
                self.recorded.append(row.id)
                return row.id
        except IntegrityError:
            return None  # this slot already recorded it: never twice

    def queue(
        self, candidate: Candidate, account: AdAccount, change: _Change, step: dict[str, Any]
    ) -> None:
        """Approval required: a proposal for a person (24 h), one per entity and action
        type at a time."""
        if (candidate.entity_id, change.action_type) in self.queued_here:
            step.update(outcome=ActionStatus.SKIPPED, reason="awaiting approval (queued just now)")
            return
        waiting_query = select(PendingAction.id).where(
            PendingAction.rule_id == self.rule_id,
            PendingAction.entity_id == candidate.entity_id,
            PendingAction.action_type == change.action_type,
            PendingAction.status == ApprovalStatus.PENDING,
        )
        if self.preview:
            waiting = None
            if self.rule_id is not None:
                with read_session(self.engine) as session:
                    waiting = session.scalar(waiting_query)
            if waiting:
                step.update(outcome=ActionStatus.SKIPPED, reason=f"awaiting approval #{waiting}")
                return
            self.queued_here.add((candidate.entity_id, change.action_type))
            step["outcome"] = "queued"
            self._counts(account)
            return
        with write_session(self.engine) as session:
            waiting = session.scalar(waiting_query)
            if waiting:
                step.update(outcome=ActionStatus.SKIPPED, reason=f"awaiting approval #{waiting}")
                return
            pending = PendingAction(
                rule_id=self.rule_id,
                account_id=account.id,
                entity_id=candidate.entity_id,
                action_type=change.action_type,
                proposal={
                    "old": change.old_text,
                    "new": change.new_text,
                    "note": change.note,
                    "request": change.write.to_json() if change.write else None,
                    "level": self.rule.scope.level,
                    "entity": candidate.external_id,
                    "entity_name": candidate.name,
                    "account": candidate.account,
                    "rule_name": self.rule.name,
                    **change.details,
                },
                justification={
                    "values": {k: trace_value(v) for k, v in candidate.values.items()},
                    "shown": candidate.shown,
                    "currency": candidate.currency,
                    "conditions": [c.to_json() for c in candidate.conditions],
                },
                status=ApprovalStatus.PENDING,
                expires_at=self.now + timedelta(hours=get_settings().approval_ttl_hours),
                created_at=self.now,
            )
            session.add(pending)
            session.flush()
            self.proposed.append(pending.id)
            self.queued_here.add((candidate.entity_id, change.action_type))
            step.update(outcome="queued", pending_id=pending.id)
        self._counts(account)

    def notify(
        self,
        candidate: Candidate,
        account: AdAccount,
        action: Notify,
        change: _Change,
        step: dict[str, Any],
    ) -> None:
        if self.rule.safety.dry_run:
            self.would(candidate, account, change, step)
            return
        step["outcome"] = "notified"
        self._counts(account)
        if self.preview:
            return
        shown = describe_values(dict(sorted(candidate.values.items())), candidate.currency)
        values = ", ".join(f"{heading} {text}" for heading, text in shown.items())
        with write_session(self.engine) as session:
            session.add(
                Notification(
                    account_id=account.id,
                    rule_id=self.rule_id,
                    kind="rule_notify",
                    title=f"{self.rule.name}: {candidate.name}",
                    body=(action.message or "The rule's conditions held.") + f" ({values})",
                    created_at=self.now,
                )
            )
        step["action_id"] = self.record(candidate, account, change, ActionStatus.SUCCEEDED)


@dataclass
class _Change:
    action_type: str
    write: Write | None
    old_text: str | None
    new_text: str | None
    note: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class _Skip(Exception):
    pass


# ---------------------------------------------------------------------- finish


def _finish(result: RunResult, trace: dict[str, Any], engine: Engine | None) -> None:
    with write_session(engine) as session:
        execution = session.get_one(RuleExecution, result.execution_id)
        execution.finished_at = execution.started_at + timedelta(milliseconds=result.duration_ms)
        execution.duration_ms = result.duration_ms
        execution.entities_checked = result.entities_checked
        execution.entities_matched = result.entities_matched
        execution.actions_taken = result.actions_taken
        execution.actions_queued = result.actions_queued
        execution.actions_would = result.actions_would
        execution.actions_skipped = result.actions_skipped
        execution.status = result.status
        execution.error = result.error
        for step in result.steps:
            if step.get("action_id"):
                row = session.get(ActionHistory, step["action_id"])
                if row is not None and row.execution_id is None:
                    row.execution_id = execution.id
            if step.get("pending_id"):
                pending = session.get(PendingAction, step["pending_id"])
                if pending is not None:
                    pending.execution_id = execution.id
        execution.trace = _jsonable(trace)


def _next_due(slot: datetime, every_minutes: int, now: datetime) -> datetime:
    """The next slot after `now` on the rule's grid (missed slots are not replayed)."""
    step = timedelta(minutes=every_minutes)
    due = slot + step
    if due <= now:
        due += step * ((now - due) // step + 1)
    return due


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def preview_rule(
    rule: int | RuleDocument, now: datetime | None = None, *, engine: Engine | None = None
):  # type: ignore[no-untyped-def]
    """What a rule (saved, by id, or an unsaved document) matches now; changes nothing."""
    from core.rules.store import get_rule

    document = get_rule(rule, engine=engine).rule if isinstance(rule, int) else rule
    with read_session(engine) as session:
        return evaluate(session, document, now or utcnow())


def preview_rules(now: datetime | None = None, *, engine: Engine | None = None):  # type: ignore[no-untyped-def]
    """What every active rule matches now, all evaluated in one pass; changes nothing.
    Returns (rule view, evaluation) pairs in rule id order."""
    from core.rules.evaluate import evaluate_many
    from core.rules.store import list_rules

    views = [v for v in list_rules(engine=engine) if v.status == "active"]
    with read_session(engine) as session:
        evaluations = evaluate_many(session, [v.rule for v in views], now or utcnow())
    return list(zip(views, evaluations, strict=True))
