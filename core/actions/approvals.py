"""The approval queue: a person approves or rejects what a rule proposed.

Approving re-reads the entity from Meta first: if its status or budget is no longer
what the proposal was based on, the action is stale and is not executed. The decision
is a conditional update on the pending row (status `pending` and its `version`), so
approving twice, or two people approving at once, executes once. Expired proposals
cannot be approved. Approving many at once re-reads and writes in batches of ≤ 50 per
HTTP request.

Every decision — one proposal or many, from the Approvals page or the CLI — goes through
`approve_many` / `reject_many`, which return a `DecisionResult`: per id, the outcome
(approved, rejected, stale, already decided, expired, not found, Meta unreachable, held)
and a message in words. The callers only format it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from core.access.actor import Actor
from core.access.audit import record
from core.access.roles import Permission
from core.accounts import client_for
from core.actions.changes import BudgetChange, StoredChangeError, TargetingChange, read_change
from core.actions.execute import execute_intents
from core.actions.kinds import kind_of
from core.actions.settle import held_reason, unsettled_writes
from core.actions.targeting import spec_words
from core.db import read_session, rows_changed, write_session
from core.db.models import (
    ActionHistory,
    ActionStatus,
    AdAccount,
    AdEntity,
    ApprovalStatus,
    AutomationRule,
    PendingAction,
)
from core.db.types import utcnow
from core.enums import Level
from core.errors import NotFoundError, RexError
from core.labels import (
    account_label,
    action_words,
    ads_manager_url,
    is_sandbox,
    triggering_numbers,
)
from core.meta.objects import ENTITY_FIELDS, EntityInfo


class ApprovalError(RexError):
    """The proposal cannot be decided (already decided, expired, stale)."""


@dataclass(frozen=True)
class ApprovalView:
    id: int
    rule_id: int | None
    rule_name: str | None
    account_id: int
    entity_id: int | None
    entity_name: str | None
    action_type: str
    old: str | None
    new: str | None
    status: str
    created_at: datetime
    expires_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    action_id: int | None
    justification: dict[str, Any] | None
    account_external_id: str = ""  # act_…: entities of two accounts may share a name
    account_name: str = ""
    currency: str | None = None
    level: str | None = None  # campaign | adset | ad
    entity_external_id: str | None = None
    why: tuple[str, ...] = ()  # the triggering numbers, in words
    ads_manager_url: str | None = None  # None for sandbox accounts

    @property
    def account(self) -> str:
        """How pages name the account: "Name (act_…)"."""
        return account_label(self.account_name, self.account_external_id)

    @property
    def action(self) -> str:
        """The action in words: "change budget", "pause"."""
        return action_words(self.action_type)


def list_approvals(
    status: str | None = ApprovalStatus.PENDING, *, actor: Actor, engine: Engine | None = None
) -> list[ApprovalView]:
    """The proposals (of `status`; None: all) on the accounts `actor` may read."""
    with read_session(engine) as session:
        query = (
            select(PendingAction, AdAccount)
            .outerjoin(AdAccount, AdAccount.id == PendingAction.account_id)
            .order_by(PendingAction.created_at, PendingAction.id)
        )
        if status:
            query = query.where(PendingAction.status == status)
        readable = actor.account_ids(Permission.READ)
        if readable is not None:
            query = query.where(PendingAction.account_id.in_(readable))
        return [_view(row, account) for row, account in session.execute(query)]


def expire_approvals(now: datetime | None = None, *, engine: Engine | None = None) -> int:
    """Mark pending proposals past their expiry as expired; returns how many."""
    now = now or utcnow()
    with write_session(engine) as session:
        return rows_changed(
            session,
            update(PendingAction)
            .where(PendingAction.status == ApprovalStatus.PENDING, PendingAction.expires_at <= now)
            .values(
                status=ApprovalStatus.EXPIRED,
                decided_at=now,
                decided_by="rex",
                decision_reason="expired before anyone decided",
            )  # fmt: skip
            .execution_options(synchronize_session=False),
        )


class DecisionOutcome(StrEnum):
    """What asking to decide one proposal came to."""

    APPROVED = "approved"  # and its write sent to Meta (`action_status` says how it ended)
    REJECTED = "rejected"
    STALE = "stale"  # the entity changed at Meta since the proposal: recorded, not executed
    ALREADY_DECIDED = "already decided"
    EXPIRED = "expired"
    NOT_FOUND = "not found"
    UNREACHABLE = "unreachable"  # Meta could not be read: it stays pending, try again
    HELD = "held"  # an earlier write to the entity is unsettled: it stays pending
    NOT_ALLOWED = "not allowed"  # the decider holds no approver role on the account


_VERBS = {ApprovalStatus.APPROVED: "approve", ApprovalStatus.REJECTED: "reject",
          ApprovalStatus.STALE: "stale"}  # the audit log's words  # fmt: skip


@dataclass(frozen=True)
class Decision:
    """One proposal's outcome: what happened, in words (`message`, money as its currency
    writes it), and the proposal as it now is (`view`; None when no proposal has the id)."""

    approval_id: int
    outcome: DecisionOutcome
    message: str
    view: ApprovalView | None = None
    current: str | None = None  # STALE: the entity's value at Meta now ("350.00 USD", "PAUSED")
    action_id: int | None = None  # APPROVED: the write it executed
    action_status: str | None = None  # APPROVED: how that write ended (succeeded, failed, …)

    @property
    def decided(self) -> bool:
        """Approved or rejected as asked; every other outcome is a refusal."""
        return self.outcome in (DecisionOutcome.APPROVED, DecisionOutcome.REJECTED)


@dataclass(frozen=True)
class DecisionResult:
    """The outcomes of one decision on several proposals: one per id, in the order given."""

    decisions: tuple[Decision, ...]

    def __iter__(self) -> Iterator[Decision]:
        return iter(self.decisions)

    def __len__(self) -> int:
        return len(self.decisions)

    @property
    def all_decided(self) -> bool:
        return all(d.decided for d in self.decisions)

    def of(self, approval_id: int) -> Decision:
        return next(d for d in self.decisions if d.approval_id == approval_id)


def reject(
    approval_id: int,
    *,
    by: Actor,
    reason: str | None = None,
    engine: Engine | None = None,
    now: datetime | None = None,
) -> ApprovalView:
    """Reject one proposal, or raise why it cannot be (`reject_many` for several)."""
    return _only(reject_many([approval_id], by=by, reason=reason, engine=engine, now=now))


def approve(
    approval_id: int,
    *,
    by: Actor,
    reason: str | None = None,
    engine: Engine | None = None,
    now: datetime | None = None,
) -> ApprovalView:
    """Execute a proposal once, if it is still pending, unexpired and not stale; or raise
    why not (`approve_many` for several)."""
    return _only(approve_many([approval_id], by=by, reason=reason, engine=engine, now=now))


def reject_many(
    approval_ids: list[int],
    *,
    by: Actor,
    reason: str | None = None,
    engine: Engine | None = None,
    now: datetime | None = None,
) -> DecisionResult:
    """Reject several proposals, each if it is still pending and unexpired, one outcome
    per id in the order given: one read and one transaction, nothing asked of Meta."""
    now = now or utcnow()
    open_ids, refused = _open(approval_ids, by, now, engine, approving=False)
    wanted = {i: (ApprovalStatus.REJECTED, reason) for i in open_ids}
    claimed, raced = _claim(wanted, by, engine, now)
    refused |= raced
    said = f"rejected by {by.label}" + (f": {reason}" if reason else "")
    done = {i: Decision(i, DecisionOutcome.REJECTED, said) for i in claimed}
    return _result(approval_ids, done, refused, engine)


def approve_many(
    approval_ids: list[int],
    *,
    by: Actor,
    reason: str | None = None,
    engine: Engine | None = None,
    now: datetime | None = None,
) -> DecisionResult:
    """Approve several proposals at once, each on its own terms (pending, unexpired,
    nothing unsettled on its entity, not stale), one outcome per id in the order given.

    Meta is asked as few times as possible: the re-reads go out ≤ 50 per HTTP request
    and so do the approved writes, whatever the number of proposals. The decisions are
    one transaction, committed before any write goes out.
    """
    now = now or utcnow()
    open_ids, refused = _open(approval_ids, by, now, engine, approving=True)
    for approval_id, why in _held(open_ids, engine).items():
        refused[approval_id] = Decision(approval_id, DecisionOutcome.HELD,
            f"proposal {approval_id} was not executed now: {why}; it stays pending — "
            "approve it again once that is settled")  # fmt: skip
    drifts, unreadable = _drifts([i for i in open_ids if i not in refused], engine)
    for approval_id, why in unreadable.items():  # not judged: it stays pending
        refused[approval_id] = Decision(approval_id, DecisionOutcome.UNREACHABLE,
            f"proposal {approval_id} was not decided: Meta cannot read the entity now "
            f"({why}); try again in a few minutes")  # fmt: skip
    wanted = {i: (ApprovalStatus.APPROVED, reason) for i in open_ids if i not in refused}
    wanted |= {i: (ApprovalStatus.STALE, drift.text) for i, drift in drifts.items()}
    claimed, raced = _claim(wanted, by, engine, now)  # only one approver gets past this
    refused |= raced
    for approval_id in claimed.keys() & drifts.keys():
        drift = drifts[approval_id]
        refused[approval_id] = Decision(approval_id, DecisionOutcome.STALE,
            f"proposal {approval_id} is stale and was not executed: {drift.text}",
            current=drift.current)  # fmt: skip
    intents = {i: a for i, a in claimed.items() if a is not None}
    statuses = execute_intents(list(intents.values()), engine=engine, now=now) if intents else {}
    done = {}
    for approval_id, action_id in intents.items():
        status = statuses.get(action_id, ActionStatus.PENDING)
        done[approval_id] = Decision(approval_id, DecisionOutcome.APPROVED,
            f"approved by {by.label} and sent to Meta as action {action_id} ({status})",
            action_id=action_id, action_status=status)  # fmt: skip
    return _result(approval_ids, done, refused, engine)


# ------------------------------------------------------------------------ internals


def _refusal(approval_id: int, row: PendingAction | None, now: datetime) -> Decision | None:
    """Why this proposal cannot be decided now (gone, decided, expired), or None."""
    if row is None:
        return Decision(approval_id, DecisionOutcome.NOT_FOUND,
                        f"no pending action with id {approval_id}")  # fmt: skip
    if row.status != ApprovalStatus.PENDING:
        outcome = (DecisionOutcome.EXPIRED if row.status == ApprovalStatus.EXPIRED
                   else DecisionOutcome.ALREADY_DECIDED)  # fmt: skip
        by = f" by {row.decided_by}" if row.decided_by else ""
        return Decision(approval_id, outcome, f"proposal {row.id} is already {row.status}{by}")
    if row.expires_at <= now:
        return Decision(approval_id, DecisionOutcome.EXPIRED,
            f"proposal {row.id} expired at {row.expires_at:%Y-%m-%d %H:%M} UTC; "
            "the rule proposes again at its next run if the conditions still hold")  # fmt: skip
    return None


def _open(
    approval_ids: list[int], by: Actor, now: datetime, engine: Engine | None, *, approving: bool
) -> tuple[list[int], dict[int, Decision]]:
    """(the distinct ids still open to a decision by `by`, the refusals of the others),
    from one read. A proposal on an account `by` may not decide is refused as if it did
    not exist when they cannot even read the account. On a four-eyes account, whoever
    last changed the rule may reject its proposals but not approve them."""
    ids = list(dict.fromkeys(approval_ids))
    with read_session(engine) as session:
        rows = {
            r.id: r for r in session.scalars(select(PendingAction).where(PendingAction.id.in_(ids)))
        }
        own = _own_rules(session, by, rows.values()) if approving else {}
    refused: dict[int, Decision] = {}
    for i in ids:
        row = rows.get(i)
        if row is not None and not by.can(Permission.READ, row.account_id):
            row = None  # another team's proposal: not found, as far as they can tell
        if row is not None and not by.can(Permission.DECIDE_APPROVALS, row.account_id):
            refused[i] = Decision(i, DecisionOutcome.NOT_ALLOWED,
                                  f"{by.label} may not decide approvals on this account; an "
                                  "approver of it can")  # fmt: skip
        elif row is not None and row.status == ApprovalStatus.PENDING and i in own:
            refused[i] = Decision(i, DecisionOutcome.NOT_ALLOWED,
                                  f"four eyes: {by.label} last changed rule “{own[i]}”, so "
                                  "another approver of the account approves its proposals "
                                  "(rejecting stays open to you)")  # fmt: skip
        elif refusal := _refusal(i, row, now):
            refused[i] = refusal
    return [i for i in ids if i not in refused], refused


def _own_rules(session: Session, by: Actor, rows: Iterable[PendingAction]) -> dict[int, str]:
    """The proposals (id → rule name) whose rule `by` last changed, on four-eyes accounts."""
    if by.user_id is None:
        return {}
    rule_ids = {r.rule_id for r in rows if r.rule_id is not None}
    if not rule_ids:
        return {}
    found = session.execute(
        select(AutomationRule.id, AutomationRule.name)
        .where(AutomationRule.id.in_(rule_ids), AutomationRule.updated_by_id == by.user_id)
    )  # fmt: skip
    names: dict[int, str] = {rule_id: name for rule_id, name in found}
    guarded = set(session.scalars(select(AdAccount.id).where(AdAccount.four_eyes)))
    return {r.id: names[r.rule_id] for r in rows
            if r.rule_id in names and r.account_id in guarded}  # fmt: skip


def _claim(
    wanted: dict[int, tuple[ApprovalStatus, str | None]],
    by: Actor,
    engine: Engine | None,
    now: datetime,
) -> tuple[dict[int, int | None], dict[int, Decision]]:
    """Record each decision (approval id → its status and reason) in one transaction, each
    a conditional update on the row still pending at the version read, so two deciders
    decide it once; an approval also writes its intent. Returns (approval id → the intent's
    action id, or None, for the decisions recorded; the refusals of those decided
    meanwhile)."""
    claimed: dict[int, int | None] = {}
    refused: dict[int, Decision] = {}
    if not wanted:
        return claimed, refused
    with write_session(engine) as session:
        rows = {
            r.id: r
            for r in session.scalars(select(PendingAction).where(PendingAction.id.in_(wanted)))
        }
        for approval_id in sorted(wanted):  # one lock order for every decider: no deadlock
            status, reason = wanted[approval_id]
            row = rows.get(approval_id)
            if refusal := _refusal(approval_id, row, now):
                refused[approval_id] = refusal
                continue
            assert row is not None
            recorded = rows_changed(
                session,
                update(PendingAction)
                .where(
                    PendingAction.id == approval_id,
                    PendingAction.status == ApprovalStatus.PENDING,
                    PendingAction.version == row.version,
                )
                .values(
                    status=status,
                    decided_by=by.label,
                    decided_at=now,
                    decision_reason=reason,
                    version=row.version + 1,
                )
                .execution_options(synchronize_session=False),
            )
            if recorded != 1:
                refused[approval_id] = Decision(approval_id, DecisionOutcome.ALREADY_DECIDED,
                    f"proposal {approval_id} was decided by someone else just now")  # fmt: skip
                continue
            claimed[approval_id] = (
                _intent(session, row, by, now) if status == ApprovalStatus.APPROVED else None
            )
            record(session, by, f"approval.{_VERBS[status]}", "approval", approval_id,
                   account_id=row.account_id, old={"status": ApprovalStatus.PENDING.value},
                   new={"status": status.value, "reason": reason, "action_id":
                        claimed[approval_id]}, at=now)  # fmt: skip
    return claimed, refused


def _intent(session: Session, row: PendingAction, by: Actor, now: datetime) -> int:
    """The approved proposal's write, as an intent row `execute_intents` sends; its id."""
    proposal = row.proposal
    intent = ActionHistory(
        rule_id=row.rule_id,
        execution_id=row.execution_id,
        account_id=row.account_id,
        entity_id=row.entity_id,
        entity_name=proposal.get("entity_name"),
        action_type=row.action_type,
        old_value=proposal.get("old"),
        new_value=proposal.get("new"),
        status=ActionStatus.PENDING,
        idempotency_key=f"approval:{row.id}",
        details={
            **proposal,
            "approved_by": by.label,
            "approved_by_user_id": by.user_id,
            "approval_id": row.id,
        },
        created_at=now,
    )
    session.add(intent)
    session.flush()
    session.execute(
        update(PendingAction)
        .where(PendingAction.id == row.id)
        .values(action_id=intent.id)
        .execution_options(synchronize_session=False)
    )
    return intent.id


def _result(
    approval_ids: list[int],
    done: dict[int, Decision],
    refused: dict[int, Decision],
    engine: Engine | None,
) -> DecisionResult:
    """Every id's decision with its proposal as it now is (one read)."""
    with read_session(engine) as session:
        views = {
            row.id: _view(row, account)
            for row, account in session.execute(
                select(PendingAction, AdAccount)
                .outerjoin(AdAccount, AdAccount.id == PendingAction.account_id)
                .where(PendingAction.id.in_(set(approval_ids)))
            )
        }
    return DecisionResult(
        tuple(replace(refused.get(i) or done[i], view=views.get(i)) for i in approval_ids)
    )


def _only(result: DecisionResult) -> ApprovalView:
    """The one decision's proposal, or its refusal raised."""
    (decision,) = result.decisions
    if decision.outcome == DecisionOutcome.NOT_FOUND:
        raise NotFoundError(decision.message)
    if not decision.decided:
        raise ApprovalError(decision.message)
    assert decision.view is not None
    return decision.view


def _held(approval_ids: list[int], engine: Engine | None) -> dict[int, str]:
    """approval id → why its entity cannot be written now (an unsettled earlier write)."""
    with read_session(engine) as session:
        entities = dict(
            session.execute(
                select(PendingAction.id, PendingAction.entity_id).where(
                    PendingAction.id.in_(approval_ids), PendingAction.entity_id.is_not(None)
                )
            ).all()
        )
    unsettled = unsettled_writes([e for e in entities.values() if e is not None], engine=engine)
    return {
        approval_id: held_reason(unsettled[entity_id])
        for approval_id, entity_id in entities.items()
        if entity_id in unsettled
    }


@dataclass(frozen=True)
class _Drift:
    """What changed at Meta since the proposal: the value now, and the sentence saying so."""

    current: str | None
    text: str


def _drifts(
    approval_ids: list[int], engine: Engine | None
) -> tuple[dict[int, _Drift], dict[int, str]]:
    """(approval id → what changed at Meta since the proposal, approval id → why Meta
    could not be read). One batched read per account and level."""
    if not approval_ids:
        return {}, {}
    with read_session(engine) as session:
        rows = list(
            session.scalars(select(PendingAction).where(PendingAction.id.in_(approval_ids)))
        )
        entity_ids = [r.entity_id for r in rows if r.entity_id]
        entities = {
            e.id: e for e in session.scalars(select(AdEntity).where(AdEntity.id.in_(entity_ids)))
        }
        accounts = {
            a.id: a
            for a in session.scalars(
                select(AdAccount).where(AdAccount.id.in_({r.account_id for r in rows}))
            )
        }
    drifts: dict[int, _Drift] = {}
    unreadable: dict[int, str] = {}
    groups: dict[tuple[int, Level], list[tuple[PendingAction, AdEntity]]] = {}
    for row in rows:
        entity = entities.get(row.entity_id) if row.entity_id else None
        if entity is None:
            drifts[row.id] = _Drift(None, "the entity no longer exists in Rex")
        else:
            groups.setdefault((row.account_id, entity.level), []).append((row, entity))
    for (account_id, level), members in groups.items():
        answers: list[dict[str, Any] | RexError]
        try:
            answers = list(
                client_for(accounts[account_id]).get_objects(
                    [entity.external_id for _, entity in members], _fields(level, members)
                )
            )
        except RexError as error:  # the whole read failed: nothing can be checked
            answers = [error] * len(members)
        for (row, entity), answer in zip(members, answers, strict=True):
            if not isinstance(answer, dict):
                unreadable[row.id] = str(answer)
            elif drift := _drift(row, entity, answer):
                drifts[row.id] = drift
    return drifts, unreadable


def _fields(level: Level, members: list[tuple[PendingAction, AdEntity]]) -> tuple[str, ...]:
    """The fields to read for the proposals' drift: the level's, and what their kinds read
    beyond them (an ad set's targeting for a targeting edit)."""
    extra = dict.fromkeys(f for row, _ in members for f in kind_of(row.action_type).reads)
    return (*ENTITY_FIELDS[level], *extra)


def _drift(row: PendingAction, entity: AdEntity, answer: dict[str, Any]) -> _Drift | None:
    """What Meta's answer says changed since the proposal, or None."""
    info = EntityInfo.from_graph(entity.level, answer)
    proposal = row.proposal
    try:
        change = read_change(proposal, level=entity.level, entity=entity.external_id,
                             entity_name=str(proposal.get("entity_name") or ""))  # fmt: skip
    except StoredChangeError as error:
        return _Drift(None, str(error))
    text = change.drift(info) if change is not None else None
    if text is None:
        return None
    if isinstance(change, BudgetChange):
        current = change.money(change.current(info))
    elif isinstance(change, TargetingChange):
        current = spec_words(info.targeting)
    else:
        current = info.status
    return _Drift(current, text)


def _view(row: PendingAction, account: AdAccount | None) -> ApprovalView:
    proposal = row.proposal
    external_id = account.external_id if account else ""
    level, entity = proposal.get("level"), proposal.get("entity")
    sandbox = account is None or is_sandbox(account.graph_url)
    return ApprovalView(
        id=row.id,
        rule_id=row.rule_id,
        rule_name=row.proposal.get("rule_name"),
        account_id=row.account_id,
        entity_id=row.entity_id,
        entity_name=row.proposal.get("entity_name"),
        action_type=row.action_type,
        old=row.proposal.get("old"),
        new=row.proposal.get("new"),
        status=row.status,
        created_at=row.created_at,
        expires_at=row.expires_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision_reason=row.decision_reason,
        action_id=row.action_id,
        justification=row.justification,
        account_external_id=external_id,
        account_name=account.name if account else "",
        currency=account.currency if account else proposal.get("currency"),
        level=level,
        entity_external_id=entity,
        why=tuple(
            triggering_numbers(
                row.justification, account.currency if account else proposal.get("currency")
            )
        ),
        ads_manager_url=None if sandbox else (ads_manager_url(level, external_id, entity) or None),
    )
