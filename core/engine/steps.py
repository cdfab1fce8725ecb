"""What a run decided and what became of it: typed steps, run results, counts in words.

A step is one action of a rule on one matched entity. Its outcome is what the planner
decided (`skipped`, a dry run's `dry_run`, `queued` for a person, a live intent
`pending`, `notified`) and, for an intent, what Meta then answered (`succeeded`,
`failed`, `unknown`, `deferred` — the action row's status). The run's trace stores the
steps as their JSON (`Step.model_dump`); `Step.model_validate` reads a stored trace back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from core.db.models import ActionStatus
from core.rules.describe import counts_text


class StepOutcome(StrEnum):
    SKIPPED = "skipped"
    DRY_RUN = "dry_run"  # "would …": the rule is in dry run
    QUEUED = "queued"  # a proposal put to a person
    NOTIFIED = "notified"
    PENDING = "pending"  # an intent, sent after planning
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"
    DEFERRED = "deferred"

    @classmethod
    def of_action(cls, status: str) -> StepOutcome:
        """The outcome an action row's status gives its step."""
        if status == ActionStatus.SENDING:  # still out: as unknown until answered
            return cls.UNKNOWN
        return cls(status)


DONE = (StepOutcome.SUCCEEDED, StepOutcome.NOTIFIED)  # counted as taken
NOT_DONE = (StepOutcome.FAILED, StepOutcome.UNKNOWN, StepOutcome.DEFERRED)


class Step(BaseModel):
    """One action on one matched entity."""

    model_config = ConfigDict(extra="ignore")

    entity_id: int
    entity: str  # its external id
    name: str
    account: str  # the account's external id
    action: str  # the action type (core.actions.kinds.ActionType)
    outcome: StepOutcome = StepOutcome.SKIPPED
    old: str | None = None  # "200.00 USD", "ACTIVE"
    new: str | None = None  # "250.00 USD", "PAUSED", a notification's message
    note: str | None = None  # which bound stopped a change ("stopped at max")
    reason: str | None = None  # why it was skipped, in words
    error: str | None = None  # what Meta answered, when it did not succeed
    action_id: int | None = None  # the action row recorded for it
    pending_id: int | None = None  # the proposal queued for it

    def skip(self, reason: str) -> None:
        self.outcome, self.reason = StepOutcome.SKIPPED, reason

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


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
    steps: list[Step] = field(default_factory=list)
    actions_queued: int = 0  # proposals put to a person
    actions_would: int = 0  # dry run: "would …" rows
    mode: str = "live"  # live | dry_run | approval

    def count(self) -> None:
        """The counts from the steps' outcomes."""
        outcomes = [s.outcome for s in self.steps]
        self.actions_taken = sum(1 for o in outcomes if o in DONE)
        self.actions_queued = outcomes.count(StepOutcome.QUEUED)
        self.actions_would = outcomes.count(StepOutcome.DRY_RUN)
        self.actions_skipped = outcomes.count(StepOutcome.SKIPPED)

    @property
    def summary(self) -> str:
        """What happened, in the words every page uses: "1 acted, 2 skipped"."""
        return counts_text(self.actions_taken, self.actions_queued, self.actions_would,
                           self.actions_skipped, mode=self.mode)  # fmt: skip


def failure_summary(steps: list[Step]) -> str:
    """What went wrong, by kind: refused, unknown (being settled), not sent."""
    words = {
        StepOutcome.FAILED: "failed",
        StepOutcome.UNKNOWN: "with an unknown outcome (Rex reads Meta to settle it)",
        StepOutcome.DEFERRED: "not sent",
    }
    counts = [
        f"{n} {word}"
        for outcome, word in words.items()
        if (n := sum(1 for s in steps if s.outcome == outcome))
    ]
    first = next((s.error for s in steps if s.error), "")
    return f"{len(steps)} action(s) did not succeed: {', '.join(counts)}. {first}".strip()
