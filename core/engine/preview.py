"""What a rule would do now, entity by entity — without doing any of it.

`preview_outcomes(rule)` evaluates a rule (saved, by id, or a document not saved yet)
and asks the engine's own planner (`core.engine.planner.Planner`) what it would do with each
match: the same guards in the same order as a run — the account's token and rate
limit, the rule's days and hours, cooldown, the daily cap (this preview's own actions
counted as a run counts them), writes not settled yet, budget bounds and Meta's
minimum, budgets that live on the campaign, accounts in another currency than the
rule's — and the same budget arithmetic. Nothing is written: no action rows, no
proposals, no notifications, no claim on the rule, and no call to Meta.

A saved rule's preview is what a run of it at the same instant records (a dry run's
"would" rows, a live run's intents, an approval rule's proposals), step for step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from core.access.actor import Actor
from core.actions.kinds import kind_of
from core.actions.settle import unsettled_writes
from core.db.types import utcnow
from core.engine.guards import Ledger
from core.engine.planner import EntityBook, Planner
from core.engine.run import prepare, run_mode
from core.engine.steps import Step, StepOutcome
from core.rules.document import RuleDocument
from core.rules.evaluate import Evaluation

QUEUED = "would queue for approval"
SKIPPED = "skipped"


@dataclass(frozen=True)
class PreviewStep:
    """One action on one matched entity, as a run now would decide it."""

    entity_id: int
    external_id: str
    name: str
    account: str  # the account's external id
    action: str  # the action type: change_budget, pause, …
    outcome: str  # "would change" … "would queue for approval" | "skipped"
    old_text: str | None = None  # "200.00 USD", "ACTIVE"
    new_text: str | None = None  # "250.00 USD", "PAUSED", a notification's message
    reason: str | None = None  # why it is skipped, in words
    note: str | None = None  # which bound stopped a change ("stopped at max")

    @property
    def skipped(self) -> bool:
        return self.outcome == SKIPPED

    @classmethod
    def of(cls, step: Step) -> PreviewStep:
        """From a planner's step (as a run stores it in its trace)."""
        if step.outcome == StepOutcome.SKIPPED:
            shown = SKIPPED
        elif step.outcome == StepOutcome.QUEUED:
            shown = QUEUED
        else:  # a dry run's "would", a live intent, a notification
            shown = kind_of(step.action).would
        return cls(
            entity_id=step.entity_id,
            external_id=step.entity,
            name=step.name,
            account=step.account,
            action=step.action,
            outcome=shown,
            old_text=step.old,
            new_text=step.new,
            reason=step.reason,
            note=step.note,
        )


@dataclass(frozen=True)
class Preview:
    evaluation: Evaluation  # what `preview_rule` returns: candidates, values, verdicts
    steps: list[PreviewStep]
    mode: str = "live"  # live | dry_run | approval: what the rule does when it runs

    @property
    def skipped_accounts(self) -> dict[str, str]:
        """Accounts the rule leaves out, and why (another currency, bad time zone …)."""
        return dict(self.evaluation.skipped_accounts)

    @property
    def summary(self) -> str:
        """ "would act on 2, skipped 1" — in the words of a run's counts."""
        queued = sum(1 for s in self.steps if s.outcome == QUEUED)
        acting = sum(1 for s in self.steps if not s.skipped) - queued
        skipped = sum(1 for s in self.steps if s.skipped)
        parts = [f"would queue {queued} for approval"] if self.mode == "approval" else []
        if acting or not parts:
            parts.append(f"would act on {acting}")
        if skipped:
            parts.append(f"skipped {skipped}")
        return ", ".join(parts)


def preview_outcomes(
    rule: int | RuleDocument,
    now: datetime | None = None,
    *,
    actor: Actor,
    engine: Engine | None = None,
    rule_id: int | None = None,
) -> Preview:
    """What `rule` would do now, for each matched entity and action; writes nothing.

    `rule`: a saved rule's id, or a document (the builder's draft). `rule_id`: with a
    document, the saved rule it is an edit of — its history (cooldowns, today's actions,
    proposals waiting) then applies, as it will when the edit is saved."""
    from core.rules.store import get_rule

    now = now or utcnow()
    if isinstance(rule, int):
        rule_id, document = rule, get_rule(rule, actor=actor, engine=engine).rule
    else:
        document = rule
    prepared = prepare(document, now, engine)
    slot = now.replace(second=0, microsecond=0)  # the slot of a run started now
    ledger = Ledger({rule_id: document} if rule_id is not None else {},
                    prepared.accounts.values(), now, engine, since_slot=slot)  # fmt: skip
    planner = Planner(document, rule_id, slot, now, prepared.accounts, ledger=ledger,
                      book=EntityBook(), unsettled=unsettled_writes(engine=engine),
                      preview=True)  # fmt: skip
    steps = planner.plan_all(prepared.evaluation)
    return Preview(prepared.evaluation, [PreviewStep.of(s) for s in steps], run_mode(document))
