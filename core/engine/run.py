"""Running rules: claim → evaluate → plan → record → send → count, one tick for all due rules.

A tick takes the rules claimed together (the scheduler's due rules, or one rule run by
hand) and:

1. opens an execution per rule and reads every rule's numbers in one evaluation pass
   (`evaluate_many`: one frame per level shared by all rules);
2. reads what the rules did before once (`Ledger`: cooldowns, daily caps, proposals
   waiting, idempotency keys) and which entities have a write not settled yet;
3. plans rule by rule in rule-id order (`core.engine.planner`): each rule's steps are
   decided against one in-memory view of the entities that every live change updates
   (the first rule wins each kind of change to an entity; a second of the same kind is
   skipped naming it, one of another kind plans on the new state), and the tick's
   records (intents, "would" rows, proposals, notifications) are committed in
   one transaction before anything is sent;
4. sends the whole tick's intents together (`core.actions.execute`: per account, ≤ 50
   per batch request, across rules) and reads their outcomes back onto the steps;
5. records each execution's counts — taken (writes Meta confirmed, notifications sent),
   queued (proposals put to a person), would (a dry run's "would …" rows), skipped —
   with its status, error and trace, and releases the claims.

A rule that fails (a document that no longer parses, an internal error) fails alone: its
execution says why and the tick goes on. An execution's duration is its tick's.
Exactly-once holds as before: an intent and its idempotency key (rule, entity, action,
slot) are committed before the call, and recovery settles what a dead runner left.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update

from core.access.actor import Actor
from core.access.audit import record
from core.access.roles import Permission
from core.actions.execute import execute_intents
from core.actions.settle import unsettled_writes
from core.db import read_session, write_session
from core.db.models import (
    ActionHistory,
    AdAccount,
    AutomationRule,
    ExecutionStatus,
    RuleExecution,
)
from core.db.types import utcnow
from core.engine.claim import Claim, claim_due, claim_rule, release_all
from core.engine.guards import Ledger, stale_accounts
from core.engine.planner import EntityBook, Planner, commit_plans
from core.engine.steps import NOT_DONE, RunResult, StepOutcome, failure_summary
from core.errors import RexError
from core.rules.document import RuleDocument, parse_rule
from core.rules.evaluate import Evaluation, evaluate_many

log = logging.getLogger(__name__)

# A run's trace keeps every candidate of a rule with up to this many; a larger rule's
# keeps the ones it planned on, this many others and the count of those left out (a
# tick of 1,000 rules over 1,000 ad sets each would otherwise store a million
# judgements, most of them of entities nothing happened to).
TRACE_KEPT = 20


class RuleBusyError(RexError):
    """Another runner holds this rule right now."""


def run_mode(rule: RuleDocument) -> str:
    """`dry_run` (records "would …"), `approval` (queues proposals) or `live`."""
    if rule.safety.dry_run:
        return "dry_run"
    return "approval" if rule.safety.require_approval else "live"


def run_due_rules(
    now: datetime | None = None,
    *,
    runner: str | None = None,
    stale_after: timedelta | None = None,
    engine: Engine | None = None,
) -> list[RunResult]:
    """Claim every due rule and run them in one tick. With `stale_after`, accounts whose
    last sync is older are not evaluated (the scheduler passes it; a person running a
    rule by hand decides for themselves)."""
    now = now or utcnow()
    claims = claim_due(now, runner=runner, engine=engine)
    return run_tick(claims, now, stale_after=stale_after, engine=engine)


def run_rule_now(
    rule_id: int,
    now: datetime | None = None,
    *,
    by: Actor,
    runner: str | None = None,
    engine: Engine | None = None,
) -> RunResult:
    """Run one rule now, due or not, as `by` (who may run rules on all its accounts)."""
    from core.rules.store import get_rule, require_on_rule

    now = now or utcnow()
    with write_session(engine) as session:
        rule = get_rule(rule_id, actor=by, engine=engine)  # another team's: not found
        require_on_rule(session, by, rule.document, Permission.RUN_RULES)
        if by.user_id is not None:  # a person's decision (the scheduler's runs are its own)
            record(session, by, "rule.run_now", "rule", rule_id, at=now)
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
    """One claimed rule, run as a tick of its own."""
    (result,) = run_tick([claim], now, stale_after=stale_after, engine=engine)
    return result


# ------------------------------------------------------------------- preparing


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


def prepare_many(
    rules: list[RuleDocument],
    now: datetime,
    engine: Engine | None,
    stale_after: timedelta | None = None,
) -> list[Prepared]:
    """Every rule's evaluation (one pass for all) and accounts."""
    with read_session(engine) as session:
        evaluations = evaluate_many(session, rules, now)
        connected = list(
            session.scalars(
                select(AdAccount).where(AdAccount.platform == "meta", AdAccount.connected)
            )
        )
    stale_everywhere = stale_accounts(connected, now, stale_after)
    prepared = []
    for rule, evaluation in zip(rules, evaluations, strict=True):
        wanted = set(rule.scope.account_ids or ())
        accounts = {a.external_id: a for a in connected if not wanted or a.external_id in wanted}
        stale = {k: v for k, v in stale_everywhere.items() if k in accounts}
        if stale:
            evaluation.hold_back(stale)
        prepared.append(Prepared(evaluation, accounts, stale))
    return prepared


def prepare(
    rule: RuleDocument,
    now: datetime,
    engine: Engine | None,
    stale_after: timedelta | None = None,
) -> Prepared:
    (prepared,) = prepare_many([rule], now, engine, stale_after)
    return prepared


# ------------------------------------------------------------------------ tick


@dataclass
class _Run:
    """One rule in a tick."""

    claim: Claim
    result: RunResult
    every_minutes: int
    document: dict[str, Any]
    rule: RuleDocument | None = None
    planner: Planner | None = None
    matched: bool = False
    intents: list[int] = field(default_factory=list)
    trace: dict[str, Any] = field(default_factory=dict)


def run_tick(
    claims: list[Claim],
    now: datetime,
    *,
    stale_after: timedelta | None = None,
    engine: Engine | None = None,
) -> list[RunResult]:
    """Run the claimed rules together (see the module docstring); results in rule-id
    order."""
    if not claims:
        return []
    started = time.monotonic()
    runs = _open(sorted(claims, key=lambda c: c.rule_id), now, engine)
    try:
        _plan_and_send(runs, now, stale_after, engine)
    except Exception as error:  # recorded on every execution; the scheduler keeps going
        log.exception("tick of %d rule(s) failed", len(runs))
        for run in runs:
            if run.result.status == ExecutionStatus.RUNNING:
                _failed(run, error)
    finally:
        duration_ms = int((time.monotonic() - started) * 1000)
        for run in runs:
            run.result.duration_ms = duration_ms
        _finish(runs, engine)
        release_all(
            [(r.claim, _next_due(r.claim.slot, r.every_minutes, now)) for r in runs],
            last_execution_at=now,
            engine=engine,
        )
    return [run.result for run in runs]


def _open(claims: list[Claim], now: datetime, engine: Engine | None) -> list[_Run]:
    """An execution per claimed rule (one transaction), its document parsed."""
    runs = []
    with write_session(engine) as session:
        rows = {
            r.id: r
            for r in session.scalars(
                select(AutomationRule).where(AutomationRule.id.in_([c.rule_id for c in claims]))
            )
        }
        executions = [
            RuleExecution(rule_id=c.rule_id, rule_version=rows[c.rule_id].version,
                          started_at=now, status=ExecutionStatus.RUNNING)
            for c in claims
        ]  # fmt: skip
        session.add_all(executions)
        session.flush()
        for claim, execution in zip(claims, executions, strict=True):
            row = rows[claim.rule_id]
            result = RunResult(execution_id=execution.id, rule_id=row.id,
                               status=ExecutionStatus.RUNNING)  # fmt: skip
            runs.append(_Run(claim, result, row.check_frequency_minutes, row.document))
    for run in runs:
        try:
            run.rule = parse_rule(run.document)
        except RexError as error:
            _failed(run, error)
    return runs


def _plan_and_send(
    runs: list[_Run], now: datetime, stale_after: timedelta | None, engine: Engine | None
) -> None:
    parsed = [r for r in runs if r.rule is not None]
    rules = [r.rule for r in parsed if r.rule is not None]
    prepared = prepare_many(rules, now, engine, stale_after)
    accounts = {a.id: a for p in prepared for a in p.accounts.values()}
    ledger = Ledger(
        {r.claim.rule_id: r.rule for r in parsed if r.rule is not None},
        accounts.values(),
        now,
        engine,
        since_slot=min(r.claim.slot for r in parsed) if parsed else None,
    )
    book = EntityBook()
    unsettled = unsettled_writes(engine=engine)
    for run, ready in zip(parsed, prepared, strict=True):
        try:
            _plan(run, ready, now, ledger, book, unsettled)
        except Exception as error:  # this rule fails alone
            log.exception("rule %s failed", run.claim.rule_id)
            _failed(run, error)
    planned = [r for r in parsed if r.planner is not None]
    commit_plans([r.planner for r in planned if r.planner is not None], engine)
    for run in planned:
        assert run.planner is not None
        run.intents = run.planner.intents()
    intents = [i for r in parsed for i in r.intents]
    if intents:
        execute_intents(intents, engine=engine, now=now)
        _read_outcomes(parsed, intents, engine)
    for run in parsed:
        if run.result.status == ExecutionStatus.RUNNING:
            _conclude(run)


def _plan(
    run: _Run,
    prepared: Prepared,
    now: datetime,
    ledger: Ledger,
    book: EntityBook,
    unsettled: dict[int, int],
) -> None:
    rule, result = run.rule, run.result
    assert rule is not None
    evaluation, accounts = prepared.evaluation, prepared.accounts
    result.mode = run_mode(rule)
    run.trace["mode"] = result.mode
    if prepared.stale:
        run.trace["stale"] = prepared.stale
    unusable = prepared.unusable
    result.entities_checked = len(evaluation)
    if accounts and len(unusable) == len(accounts):
        result.status = ExecutionStatus.SKIPPED
        reasons = dict.fromkeys(r.removeprefix("not evaluated: ") for r in unusable.values())
        result.error = "not evaluated: " + "; ".join(reasons)
    else:
        result.entities_matched = evaluation.matched_count
        run.matched = bool(result.entities_matched)
        planner = Planner(rule, run.claim.rule_id, run.claim.slot, now, accounts,
                          ledger=ledger, book=book, unsettled=unsettled,
                          execution_id=result.execution_id)  # fmt: skip
        planner.plan_all(evaluation)
        run.planner = planner
        result.steps = planner.steps
    # the trace once planned: it keeps what the planner judged (see TRACE_KEPT)
    run.trace.update(evaluation.to_json(keep=TRACE_KEPT))


def _read_outcomes(runs: list[_Run], intents: list[int], engine: Engine | None) -> None:
    """What Meta answered for the intents, onto their steps."""
    with read_session(engine) as session:
        outcomes = {
            row.id: (row.status, row.error_message)
            for row in session.execute(
                select(ActionHistory.id, ActionHistory.status, ActionHistory.error_message)
                .where(ActionHistory.id.in_(intents))
            )
        }  # fmt: skip
    for run in runs:
        for step in run.result.steps:
            if step.action_id in outcomes and step.outcome == StepOutcome.PENDING:
                status, error = outcomes[step.action_id]
                step.outcome = StepOutcome.of_action(status)
                step.error = error or None


def _conclude(run: _Run) -> None:
    """The execution's counts and status from its steps."""
    result = run.result
    result.count()
    run.trace["actions"] = [s.to_json() for s in result.steps]
    failed = [s for s in result.steps if s.outcome in NOT_DONE]
    held = run.planner.held_accounts if run.planner else {}
    if failed:
        ok = len(failed) < len(result.steps)
        result.status = ExecutionStatus.PARTIAL if ok else ExecutionStatus.FAILED
        result.error = failure_summary(failed)
    elif held and not run.matched:
        result.status = ExecutionStatus.SKIPPED
        result.error = "; ".join(sorted(held.values()))
    else:
        result.status = ExecutionStatus.SUCCEEDED


def _failed(run: _Run, error: Exception) -> None:
    run.result.status = ExecutionStatus.FAILED
    run.result.error = str(error) if isinstance(error, RexError) else f"internal error: {error!r}"


def _finish(runs: list[_Run], engine: Engine | None) -> None:
    """Every execution's counts, status and trace (one batched update)."""
    with write_session(engine) as session:
        started = dict(
            session.execute(
                select(RuleExecution.id, RuleExecution.started_at).where(
                    RuleExecution.id.in_([r.result.execution_id for r in runs])
                )
            ).all()
        )
        session.execute(
            update(RuleExecution),
            [
                {
                    "id": r.result.execution_id,
                    "finished_at": started[r.result.execution_id]
                    + timedelta(milliseconds=r.result.duration_ms),
                    "duration_ms": r.result.duration_ms,
                    "entities_checked": r.result.entities_checked,
                    "entities_matched": r.result.entities_matched,
                    "actions_taken": r.result.actions_taken,
                    "actions_queued": r.result.actions_queued,
                    "actions_would": r.result.actions_would,
                    "actions_skipped": r.result.actions_skipped,
                    "status": r.result.status,
                    "error": r.result.error,
                    "trace": _jsonable(r.trace),
                }
                for r in runs
            ],
        )


def _next_due(slot: datetime, every_minutes: int, now: datetime) -> datetime:
    """The next slot after `now` on the rule's grid (missed slots are not replayed)."""
    step = timedelta(minutes=every_minutes)
    due = slot + step
    if due <= now:
        due += step * ((now - due) // step + 1)
    return due


def _jsonable(value: Any) -> Any:
    """The trace as JSON (anything else in it, as its text)."""
    return json.loads(json.dumps(value, default=str))
