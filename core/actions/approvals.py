"""The approval queue: a person approves or rejects what a rule proposed.

Approving re-reads the entity from Meta first: if its status or budget is no longer
what the proposal was based on, the action is stale and is not executed. The decision
is a conditional update on the pending row (status `pending` and its `version`), so
approving twice, or two people approving at once, executes once. Expired proposals
cannot be approved. Approving many at once re-reads and writes in batches of ≤ 50 per
HTTP request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update

from core.accounts import client_for
from core.actions.execute import execute_intents
from core.actions.settle import held_reason, unsettled_writes
from core.activity import (
    account_label,
    action_words,
    ads_manager_url,
    is_sandbox,
    triggering_numbers,
)
from core.db import read_session, write_session
from core.db.models import (
    ActionHistory,
    ActionStatus,
    AdAccount,
    AdEntity,
    ApprovalStatus,
    PendingAction,
)
from core.db.types import utcnow
from core.errors import InputError, NotFoundError, RexError
from core.meta.objects import ENTITY_FIELDS, EntityInfo
from core.money import MoneyError, format_money, from_minor


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
    status: str | None = ApprovalStatus.PENDING, *, engine: Engine | None = None
) -> list[ApprovalView]:
    with read_session(engine) as session:
        query = (
            select(PendingAction, AdAccount)
            .outerjoin(AdAccount, AdAccount.id == PendingAction.account_id)
            .order_by(PendingAction.created_at, PendingAction.id)
        )
        if status:
            query = query.where(PendingAction.status == status)
        return [_view(row, account) for row, account in session.execute(query)]


def expire_approvals(now: datetime | None = None, *, engine: Engine | None = None) -> int:
    """Mark pending proposals past their expiry as expired; returns how many."""
    now = now or utcnow()
    with write_session(engine) as session:
        result = session.execute(
            update(PendingAction)
            .where(PendingAction.status == ApprovalStatus.PENDING, PendingAction.expires_at <= now)
            .values(
                status=ApprovalStatus.EXPIRED,
                decided_at=now,
                decided_by="rex",
                decision_reason="expired before anyone decided",
            )  # fmt: skip
            .execution_options(synchronize_session=False)
        )
        return result.rowcount


def reject(
    approval_id: int,
    *,
    by: str,
    reason: str | None = None,
    engine: Engine | None = None,
    now: datetime | None = None,
) -> ApprovalView:
    now = now or utcnow()
    _decide(approval_id, ApprovalStatus.REJECTED, by, reason, engine, now)
    return get_approval(approval_id, engine=engine)


def approve(
    approval_id: int,
    *,
    by: str,
    reason: str | None = None,
    engine: Engine | None = None,
    now: datetime | None = None,
) -> ApprovalView:
    """Execute a proposal once, if it is still pending, unexpired and not stale."""
    (decision,) = approve_many([approval_id], by=by, reason=reason, engine=engine, now=now)
    if decision.error is not None:
        raise decision.error
    assert decision.view is not None
    return decision.view


@dataclass(frozen=True)
class Decision:
    """One proposal's outcome in `approve_many`: its view, or why it was not executed."""

    approval_id: int
    view: ApprovalView | None
    error: RexError | None = None


def approve_many(
    approval_ids: list[int],
    *,
    by: str,
    reason: str | None = None,
    engine: Engine | None = None,
    now: datetime | None = None,
) -> list[Decision]:
    """Approve several proposals at once, each on its own terms (pending, unexpired,
    not stale), one outcome per id in the order given.

    Meta is asked as few times as possible: the re-reads go out ≤ 50 per HTTP request
    and so do the approved writes, whatever the number of proposals.
    """
    now = now or utcnow()
    if not (by or "").strip():
        raise InputError("by", "say who approves (a name or e-mail)")
    errors: dict[int, RexError] = {}
    decidable: list[int] = []
    for approval_id in dict.fromkeys(approval_ids):
        try:
            _check_decidable(get_approval(approval_id, engine=engine), now)
            decidable.append(approval_id)
        except RexError as error:
            errors[approval_id] = error

    drifts, unreadable = _drifts(decidable, engine)
    held = _held(decidable, engine)
    action_ids = []
    for approval_id in decidable:
        try:
            if approval_id in held:  # an earlier write to the entity is unsettled
                raise ApprovalError(
                    f"proposal {approval_id} was not executed now: {held[approval_id]}; "
                    "it stays pending — approve it again once that is settled"
                )
            if approval_id in unreadable:  # not judged: it stays pending
                raise ApprovalError(
                    f"proposal {approval_id} was not decided: Meta cannot read the entity "
                    f"now ({unreadable[approval_id]}); try again in a few minutes"
                )
            drift = drifts.get(approval_id)
            if drift:
                _decide(approval_id, ApprovalStatus.STALE, by, drift, engine, now)
                raise ApprovalError(
                    f"proposal {approval_id} is stale and was not executed: {drift}"
                )
            # Claim the decision: only one approver gets past this line.
            action_id = _decide(approval_id, ApprovalStatus.APPROVED, by, reason, engine, now,
                                create_intent=True)  # fmt: skip
            if action_id is not None:
                action_ids.append(action_id)
        except RexError as error:
            errors[approval_id] = error
    if action_ids:
        execute_intents(action_ids, engine=engine, now=now)
    return [
        Decision(approval_id, None, errors[approval_id])
        if approval_id in errors
        else Decision(approval_id, get_approval(approval_id, engine=engine))
        for approval_id in approval_ids
    ]


def get_approval(approval_id: int, *, engine: Engine | None = None) -> ApprovalView:
    with read_session(engine) as session:
        row = session.get(PendingAction, approval_id)
        if row is None:
            raise NotFoundError(f"no pending action with id {approval_id}")
        return _view(row, session.get(AdAccount, row.account_id))


# ------------------------------------------------------------------------ internals


def _check_decidable(proposal: ApprovalView, now: datetime) -> None:
    if proposal.status != ApprovalStatus.PENDING:
        raise ApprovalError(
            f"proposal {proposal.id} is already {proposal.status}"
            + (f" by {proposal.decided_by}" if proposal.decided_by else "")
        )
    if proposal.expires_at <= now:
        raise ApprovalError(
            f"proposal {proposal.id} expired at {proposal.expires_at:%Y-%m-%d %H:%M} UTC; "
            "the rule proposes again at its next run if the conditions still hold"
        )


def _decide(
    approval_id: int,
    status: str,
    by: str,
    reason: str | None,
    engine: Engine | None,
    now: datetime,
    *,
    create_intent: bool = False,
) -> int | None:
    with write_session(engine) as session:
        row = session.get(PendingAction, approval_id)
        if row is None:
            raise NotFoundError(f"no pending action with id {approval_id}")
        if status != ApprovalStatus.STALE:
            _check_decidable(_view(row, None), now)
        claimed = session.execute(
            update(PendingAction)
            .where(
                PendingAction.id == approval_id,
                PendingAction.status == ApprovalStatus.PENDING,
                PendingAction.version == row.version,
            )
            .values(
                status=status,
                decided_by=by,
                decided_at=now,
                decision_reason=reason,
                version=row.version + 1,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            raise ApprovalError(f"proposal {approval_id} was decided by someone else just now")
        if not create_intent:
            return None
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
            idempotency_key=f"approval:{approval_id}",
            details={**proposal, "approved_by": by, "approval_id": approval_id},
            created_at=now,
        )
        session.add(intent)
        session.flush()
        session.execute(
            update(PendingAction)
            .where(PendingAction.id == approval_id)
            .values(action_id=intent.id)
            .execution_options(synchronize_session=False)
        )
        return intent.id


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
    unsettled = unsettled_writes(list(entities.values()), engine=engine)
    return {
        approval_id: held_reason(unsettled[entity_id])
        for approval_id, entity_id in entities.items()
        if entity_id in unsettled
    }


def _drifts(
    approval_ids: list[int], engine: Engine | None
) -> tuple[dict[int, str], dict[int, str]]:
    """(approval id → what changed at Meta since the proposal, approval id → why Meta
    could not be read). One batched read per account and level."""
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
    drifts: dict[int, str] = {}
    unreadable: dict[int, str] = {}
    groups: dict[tuple[int, str], list[tuple[PendingAction, AdEntity]]] = {}
    for row in rows:
        entity = entities.get(row.entity_id) if row.entity_id else None
        if entity is None:
            drifts[row.id] = "the entity no longer exists in Rex"
        else:
            groups.setdefault((row.account_id, entity.level), []).append((row, entity))
    for (account_id, level), members in groups.items():
        try:
            answers = client_for(accounts[account_id]).get_objects(
                [entity.external_id for _, entity in members], ENTITY_FIELDS[level]
            )
        except RexError as error:  # the whole read failed: nothing can be checked
            answers = [error] * len(members)
        for (row, entity), answer in zip(members, answers, strict=True):
            if not isinstance(answer, dict):
                unreadable[row.id] = str(answer)
            elif drift := _drift(row, entity.level, answer):
                drifts[row.id] = drift
    return drifts, unreadable


def _drift(row: PendingAction, level: str, answer: dict[str, Any]) -> str | None:
    """What Meta's answer says changed since the proposal, or None."""
    info = EntityInfo.from_graph(level, answer)
    proposal = row.proposal
    if "old_minor" in proposal:
        kind = proposal.get("budget", "daily")
        current = info.daily_budget_minor if kind == "daily" else info.lifetime_budget_minor
        if current != proposal["old_minor"]:
            currency = proposal.get("currency") or ""
            return (
                f"its {kind} budget is now {_money(current, currency)}, not the "
                f"{_money(proposal['old_minor'], currency)} it had when the rule proposed this"
            )
    elif row.action_type in ("pause", "resume") and info.status != proposal.get("old"):
        return f"its status changed since the proposal ({proposal.get('old')} → {info.status})"
    return None


def _money(minor: int | None, currency: str) -> str:
    """Minor units as the currency formats them ("93.75 USD"); None → "none"."""
    if minor is None:
        return "none"
    try:
        return format_money(from_minor(minor, currency), currency)
    except MoneyError:  # a proposal that did not keep its currency
        return f"{minor} (in the account's minor units)"


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
