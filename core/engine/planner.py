"""The planner: per matched entity and action, what happens — the one place it is decided.

For each action of a rule on each matched entity, in a fixed order (account, entity id),
the planner:

* skips it, with the reason on the step, when the account cannot be acted on (token
  rejected, rate limited), outside the rule's days / hours, in cooldown, past the daily
  cap (the account's local day, counted across runs and processes), when an earlier
  write to the entity is not settled yet, or when its kind says it does nothing (already
  paused, a change that rounds to nothing, a budget that lives on the campaign …);
* in dry run records a "would …" row (`dry_run`) and writes nothing to Meta;
* with approval required queues a proposal with the values that justified it;
* otherwise records an intent (`pending`, unique idempotency key per rule, entity,
  action and evaluation slot) for the tick to send.

A tick plans its rules one after another against one `EntityBook`: a live intent
updates the entity there (its new budget or status), and the first rule wins each kind
of change — a later rule's second budget (status, copy) change to the entity in the
same tick is skipped with a reason naming the rule that made the first, while a change
of another kind plans on what the entity will be. So no entity gets two writes of one
kind in a tick, and no write depends on another's outcome. Dry runs and proposals do
not change the book (a dry run never changes what a live run does; a proposal changes
nothing until a person approves it).

Everything a rule's plan records is written in one transaction (`commit`); with
`preview=True` nothing is, and the steps say what a run at that instant would record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient

from core.actions.changes import EntityView, stored
from core.actions.kinds import ActionKind, ActionType, PlanContext, Planned, PlanSkip, kind_of
from core.actions.settle import held_reason
from core.db import write_session
from core.db.models import (
    ActionHistory,
    ActionStatus,
    AdAccount,
    ApprovalStatus,
    Notification,
    PendingAction,
    TokenStatus,
)
from core.engine.guards import (
    Ledger,
    account_hold,
    counted_statuses,
    outside_schedule,
)
from core.engine.steps import Step, StepOutcome
from core.enums import Level
from core.labels import account_label
from core.notify.events import EVENTS, Event
from core.rules.describe import LEVEL_NOUNS, describe_values
from core.rules.document import RuleDocument
from core.rules.evaluate import Candidate, EntityRef, Evaluation, trace_value
from core.settings import get_settings

# What a change of each shape did, for the reason a second one in the tick is skipped.
_CHANGED = {"status": "its status was changed", "budget": "its budget was changed",
            "create": "it was copied"}  # fmt: skip


@dataclass
class _Booked:
    view: EntityView
    by: str | None = None  # the rule that last changed it in this tick, in words
    # shape → the change made to it in this tick, in words ("rule #1 'X' (200.00 USD →
    # 250.00 USD)"): one change of each shape per entity and tick
    changes: dict[str, str] = field(default_factory=dict)


class EntityBook:
    """The entities as a tick plans on them: what Rex knew, then each live change."""

    def __init__(self) -> None:
        self.entities: dict[int, _Booked] = {}

    def view(self, candidate: Candidate, level: Level) -> _Booked:
        booked = self.entities.get(candidate.entity_id)
        if booked is None:
            booked = _Booked(
                EntityView(
                    entity_id=candidate.entity_id,
                    external_id=candidate.external_id,
                    name=candidate.name,
                    level=level,
                    status=candidate.status,
                    daily_budget_minor=candidate.daily_budget_minor,
                    lifetime_budget_minor=candidate.lifetime_budget_minor,
                    campaign_budget=candidate.campaign_budget,
                    currency=candidate.currency,
                )
            )
            self.entities[candidate.entity_id] = booked
        return booked

    def changed(self, entity_id: int, view: EntityView, by: str, shape: str, words: str) -> None:
        booked = self.entities[entity_id]
        booked.view, booked.by = view, by
        booked.changes[shape] = words


@dataclass
class _Record:
    """What a step will record when the plan is committed."""

    step: Step
    row: ActionHistory | PendingAction
    notification: Notification | None = None


class Planner:
    """Plans one rule's actions (see the module docstring). `rule_id` is None for a
    document not saved yet (it has no history)."""

    def __init__(
        self,
        rule: RuleDocument,
        rule_id: int | None,
        slot: datetime,
        now: datetime,
        accounts: dict[str, AdAccount],
        *,
        ledger: Ledger,
        book: EntityBook,
        unsettled: dict[int, int],
        execution_id: int | None = None,
        preview: bool = False,
    ) -> None:
        self.rule, self.rule_id, self.slot, self.now = rule, rule_id, slot, now
        self.accounts, self.ledger, self.book = accounts, ledger, book
        self.unsettled = unsettled  # entity id → its earlier write not settled yet
        self.execution_id, self.preview = execution_id, preview
        self.counted = counted_statuses(rule)
        self.label = f"rule #{rule_id} {rule.name!r}" if rule_id else f"rule {rule.name!r}"
        self.steps: list[Step] = []
        self.records: list[_Record] = []
        self.held_accounts: dict[str, str] = {}
        self.today: dict[int, int] = {}  # account id → counted actions today, this run's too
        self.queued_here: set[tuple[int, str]] = set()

    def plan_all(self, evaluation: Evaluation) -> list[Step]:
        """Every action for every matched entity, in a fixed order (account, entity). An
        entity is judged exactly (its values, for the record) only once the guards let
        an action through: a rule past its cap costs a step per entity, no more."""
        for ref in evaluation.matched_refs():
            for index, action in enumerate(self.rule.actions):
                self.plan(evaluation, ref, index, action)
        return self.steps

    def plan(self, evaluation: Evaluation, ref: EntityRef, index: int, action: Any) -> None:
        kind = kind_of(action.type)
        step = Step(entity_id=ref.entity_id, entity=ref.external_id, name=ref.name,
                    account=ref.account, action=kind.type)  # fmt: skip
        self.steps.append(step)
        account = self.accounts[ref.account]
        reason = self.guard(ref.entity_id, account)
        if reason is None and kind.writes and ref.entity_id in self.unsettled:
            reason = held_reason(self.unsettled[ref.entity_id])
        if reason:
            step.skip(reason)
            return
        candidate = evaluation.candidate(ref.position)
        booked = self.book.view(candidate, self.rule.scope.level)
        context = PlanContext(self.rule.name, account.min_daily_budget_minor)
        try:
            planned = kind.plan(action, booked.view, context)
        except PlanSkip as skip:
            changed = f" ({booked.by} changed it earlier in this tick)" if booked.by else ""
            step.skip(f"{skip}{changed}")
            return
        earlier = booked.changes.get(planned.change.shape)
        if earlier is not None:  # first rule wins: never two writes of one kind in a tick
            step.skip(
                f"{_CHANGED[planned.change.shape]} earlier in this tick by {earlier}; this "
                "rule judges it again at its next run"
            )
            return
        step.old, step.new, step.note = planned.old_text, planned.new_text, planned.note
        if kind.type == ActionType.NOTIFY:
            self.notify(candidate, account, action, planned, step)
        elif self.rule.safety.dry_run:
            self.would(candidate, account, kind, planned, step)
        elif self.rule.safety.require_approval:
            self.queue(candidate, account, kind, planned, step)
        else:
            self.intend(candidate, account, kind, planned, index, step, booked)

    # --------------------------------------------------------------- guards

    def guard(self, entity_id: int, account: AdAccount) -> str | None:
        if account.token_status == TokenStatus.NEEDS_RECONNECT:
            self.held_accounts[account.external_id] = f"{account.external_id} needs reconnect"
        reason = account_hold(account, self.now) or outside_schedule(self.rule, account, self.now)
        if reason:
            return reason
        cooldown = self.cooldown_until(entity_id)
        if cooldown:
            return f"in cooldown until {cooldown:%Y-%m-%d %H:%M} UTC"
        if self.count_today(account) >= self.rule.safety.max_daily_actions:
            return f"daily cap reached ({self.rule.safety.max_daily_actions} actions today)"
        return None

    def cooldown_until(self, entity_id: int) -> datetime | None:
        """The end of the entity's cooldown from this rule's earlier runs, if any (never
        from this run: an action does not cool down the rule's other actions)."""
        minutes = self.rule.safety.cooldown_minutes
        if not minutes:
            return None
        since = self.now - timedelta(minutes=minutes)
        last = self.ledger.last_acted(self.rule_id, entity_id, self.counted, since)
        return None if last is None else last + timedelta(minutes=minutes)

    def count_today(self, account: AdAccount) -> int:
        """Actions of this rule on this account since the account's local midnight:
        counted across runs and processes, plus this run's own."""
        if account.id not in self.today:
            self.today[account.id] = self.ledger.counted_today(self.rule_id, account,
                                                               self.counted)  # fmt: skip
        return self.today[account.id]

    def _counts(self, account: AdAccount) -> None:
        self.today[account.id] = self.count_today(account) + 1

    # ------------------------------------------------------------- outcomes

    def would(
        self, candidate: Candidate, account: AdAccount, kind: ActionKind, planned: Planned,
        step: Step,
    ) -> None:  # fmt: skip
        """Dry run: a "would …" row, nothing sent."""
        step.outcome = StepOutcome.DRY_RUN
        self._record(candidate, account, kind, planned, ActionStatus.DRY_RUN, step)
        self._counts(account)

    def intend(
        self, candidate: Candidate, account: AdAccount, kind: ActionKind, planned: Planned,
        index: int, step: Step, booked: _Booked,
    ) -> None:  # fmt: skip
        """Live: an intent with its idempotency key, sent once the tick is planned."""
        key = (
            f"r{self.rule_id}:e{candidate.entity_id}:a{index}:{kind.type}:{self.slot:%Y%m%dT%H%M}Z"
        )
        if self.rule_id is not None and key in self.ledger.keys:
            step.skip("already done in this slot")
            return
        step.outcome = StepOutcome.PENDING
        self._record(candidate, account, kind, planned, ActionStatus.PENDING, step, key)
        self._counts(account)
        words = self.label + (f" ({planned.old_text} → {planned.new_text})"
                              if planned.old_text and planned.new_text else "")  # fmt: skip
        self.book.changed(candidate.entity_id, planned.change.after(booked.view), self.label,
                          planned.change.shape, words)  # fmt: skip

    def queue(
        self, candidate: Candidate, account: AdAccount, kind: ActionKind, planned: Planned,
        step: Step,
    ) -> None:  # fmt: skip
        """Approval required: a proposal for a person (24 h), one per entity and action
        type at a time."""
        if (candidate.entity_id, kind.type) in self.queued_here:
            step.skip("awaiting approval (queued just now)")
            return
        waiting = self.ledger.waiting_for(self.rule_id, candidate.entity_id, kind.type)
        if waiting:
            step.skip(f"awaiting approval #{waiting}")
            return
        self.queued_here.add((candidate.entity_id, kind.type))
        step.outcome = StepOutcome.QUEUED
        self._counts(account)
        if self.preview:
            return
        pending = PendingAction(
            rule_id=self.rule_id,
            execution_id=self.execution_id,
            account_id=account.id,
            entity_id=candidate.entity_id,
            action_type=kind.type,
            proposal={
                "change": stored(planned.change),
                "old": planned.old_text,
                "new": planned.new_text,
                "note": planned.note,
                "level": self.rule.scope.level,
                "entity": candidate.external_id,
                "entity_name": candidate.name,
                "account": candidate.account,
                "rule_name": self.rule.name,
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
        self.records.append(_Record(step, pending))

    def notify(
        self, candidate: Candidate, account: AdAccount, action: Any, planned: Planned,
        step: Step,
    ) -> None:  # fmt: skip
        kind = kind_of(ActionType.NOTIFY)
        if self.rule.safety.dry_run:
            self.would(candidate, account, kind, planned, step)
            return
        step.outcome = StepOutcome.NOTIFIED
        self._counts(account)
        if self.preview:
            return
        shown = describe_values(dict(sorted(candidate.values.items())), candidate.currency)
        values = ", ".join(f"{heading} {text}" for heading, text in shown.items())
        message = action.message or "The rule's conditions held."
        entity = account_label(candidate.name, candidate.external_id)
        notification = Notification(
            account_id=account.id,
            rule_id=self.rule_id,
            kind=Event.RULE_NOTIFY,
            title=f"{self.rule.name}: {candidate.name}",
            body=f"{message} ({values})",
            link=EVENTS[Event.RULE_NOTIFY].page,
            details={
                "facts": {
                    "Account": account_label(account.name, account.external_id),
                    "Rule": self.rule.name,
                    LEVEL_NOUNS[self.rule.scope.level].capitalize(): entity,
                    **shown,
                },
                "message": message,
                "line": f"{entity}: {values}",
                "level": self.rule.scope.level,
            },
            created_at=self.now,
        )
        row = self._row(candidate, account, kind, planned, ActionStatus.SUCCEEDED)
        self.records.append(_Record(step, row, notification))

    # --------------------------------------------------------------- record

    def _row(
        self, candidate: Candidate, account: AdAccount, kind: ActionKind, planned: Planned,
        status: ActionStatus, key: str | None = None,
    ) -> ActionHistory:  # fmt: skip
        return ActionHistory(
            rule_id=self.rule_id,
            execution_id=self.execution_id,
            account_id=account.id,
            entity_id=candidate.entity_id,
            entity_name=candidate.name,
            action_type=kind.type,
            old_value=planned.old_text,
            new_value=planned.new_text,
            status=status,
            idempotency_key=key,
            details={
                "change": stored(planned.change),
                "values": {k: trace_value(v) for k, v in candidate.values.items()},
            },
            created_at=self.now,
        )

    def _record(
        self, candidate: Candidate, account: AdAccount, kind: ActionKind, planned: Planned,
        status: ActionStatus, step: Step, key: str | None = None,
    ) -> None:  # fmt: skip
        if not self.preview:
            self.records.append(_Record(step, self._row(candidate, account, kind, planned,
                                                        status, key)))  # fmt: skip

    def commit(self, engine: Engine | None) -> list[int]:
        """Write everything the plan records; the intents' action ids (to send)."""
        return commit_plans([self], engine)

    def intents(self) -> list[int]:
        return [
            r.row.id
            for r in self.records
            if isinstance(r.row, ActionHistory)
            and r.row.status == ActionStatus.PENDING
            and r.step.outcome == StepOutcome.PENDING
        ]


def commit_plans(planners: list[Planner], engine: Engine | None) -> list[int]:
    """Write what the plans record in one transaction (one batched insert per table);
    returns the intents' action ids, in plan order. Should a key have been used
    meanwhile (another runner, which a claim rules out), the records go in one by one
    and that intent is skipped: never recorded twice."""
    records = [r for p in planners for r in p.records]
    assert not any(p.preview for p in planners), "a preview writes nothing"
    if records:
        try:
            with write_session(engine) as session:
                _add(session, records)
        except IntegrityError:
            for record in records:
                for row in (record.row, record.notification):
                    if row is not None:  # rolled back: insert it afresh
                        make_transient(row)
                        row.id = None  # type: ignore[assignment]  # assigned on insert
                try:
                    with write_session(engine) as session:
                        _add(session, [record])
                except IntegrityError:
                    record.step.skip("already done in this slot")
    return [i for p in planners for i in p.intents()]


def _add(session: Any, records: list[_Record]) -> None:
    session.add_all([r.row for r in records])
    session.add_all(_one_per_run([r.notification for r in records if r.notification]))
    session.flush()
    for record in records:
        if isinstance(record.row, PendingAction):
            record.step.pending_id = record.row.id
        else:
            record.step.action_id = record.row.id


def _one_per_run(notifications: list[Notification]) -> list[Notification]:
    """A rule's notify action tells people once per run and account: the entities that
    matched are the message's lines (one entity: its own message, as made)."""
    groups: dict[tuple[Any, ...], list[Notification]] = {}
    for note in notifications:
        details = note.details or {}
        groups.setdefault((note.rule_id, note.account_id, details.get("message")), []).append(note)
    merged = []
    for notes in groups.values():
        if len(notes) == 1:
            merged.append(notes[0])
            continue
        first = notes[0].details or {}
        facts = first.get("facts", {})
        noun = LEVEL_NOUNS[Level(first["level"])]
        merged.append(
            Notification(
                account_id=notes[0].account_id,
                rule_id=notes[0].rule_id,
                kind=notes[0].kind,
                title=f"{facts.get('Rule')}: {len(notes)} {noun}s matched",
                body=first.get("message"),
                link=notes[0].link,
                details={
                    "facts": {"Account": facts.get("Account"), "Rule": facts.get("Rule")},
                    "items": [(n.details or {}).get("line") for n in notes],
                    "message": first.get("message"),
                },
                created_at=notes[0].created_at,
            )
        )
    return merged
