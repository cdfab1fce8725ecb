"""Applying a suggestion: through the same rails as every write Rex makes.

1. The suggestion must be new and carry a change Rex can make (a winning segment, or a
   loser Meta's targeting cannot name alone, carries none: it can only be dismissed).
2. Its ad set must have no write whose outcome is still unknown (core/actions/settle.py),
   and Meta must still show what the suggestion was computed on: the targeting (or
   schedule, or budget) is read from Meta now, and if someone changed it since, the
   suggestion is expired with what changed — generating again proposes a change on the
   spec as it is now, never an old spec written over a newer one.
3. Where the settings ask for a second person (`REX_SUGGESTION_APPROVAL`: a kind, or
   all), the change goes to the approval queue (`pending_actions`, decided and sent
   there) and the suggestion is *queued*; otherwise the person applying is the decision:
4. an intent (`action_history`, status pending) with the idempotency key
   `suggestion:<id>:<attempt>` is committed before anything is sent, then sent by
   `execute_intents` (its outcome typed and recorded, an unknown one settled by reading
   Meta, never by sending again);
5. on success the suggestion is *applied*, linked to its action (rollback restores the
   previous spec from there), and a **baseline** of the ad set's numbers is kept
   (`rex_suggestion_performance`) for measuring the outcome; a refusal by Meta leaves it
   new, with Meta's words, so that it can be dismissed or tried again.

`settle_suggestions` moves queued and in-flight suggestions on once the approval queue
or the settling of an unknown outcome has decided them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.access.actor import Actor
from core.access.audit import record
from core.access.roles import Permission
from core.accounts import client_for
from core.actions.changes import StoredChangeError, read_change, stored
from core.actions.execute import execute_intents
from core.actions.settle import held_reason, unsettled_writes
from core.db import read_session, write_session
from core.db.models import (
    ActionHistory,
    ActionStatus,
    AdAccount,
    AdEntity,
    ApprovalStatus,
    PendingAction,
    RexSuggestion,
    TokenStatus,
)
from core.db.types import utcnow
from core.enums import Level, SuggestionStatus
from core.meta.objects import ADSET_DELIVERY_FIELDS, ENTITY_FIELDS, EntityInfo
from core.outcomes import record as outcomes
from core.settings import get_settings
from core.suggestions import records
from core.suggestions.records import SuggestionStateError

NEW, QUEUED, APPLIED = SuggestionStatus.NEW, SuggestionStatus.QUEUED, SuggestionStatus.APPLIED
RULES = "create_rules"  # a suggestion that makes Rex rules (an hours window), no Meta write


@dataclass(frozen=True)
class Applied:
    """What applying did: the suggestion's status now and, in words, what happened."""

    suggestion_id: int
    status: SuggestionStatus
    message: str
    action_id: int | None = None
    approval_id: int | None = None


@dataclass(frozen=True)
class _Step:
    """One write a suggestion makes: the entity, its change, the words for the record."""

    entity: AdEntity
    change: Any
    old: str | None
    new: str | None


def apply_suggestion(
    suggestion_id: int, *, by: Actor, engine: Engine | None = None, now: datetime | None = None
) -> Applied:
    """Apply a suggestion as `by` (who may apply suggestions on its account); the audit
    log records what it came to."""
    now = now or utcnow()
    applied = _apply(suggestion_id, by, engine=engine, now=now)
    with write_session(engine) as session:
        account_id = records.get_row(session, suggestion_id).account_id
        record(session, by, "suggestion.apply", "suggestion", suggestion_id,
               account_id=account_id, at=now,
               new={"status": applied.status.value, "action_id": applied.action_id,
                    "approval_id": applied.approval_id})  # fmt: skip
    return applied


def _apply(suggestion_id: int, actor: Actor, *, engine: Engine | None, now: datetime) -> Applied:
    by = actor.label
    with read_session(engine) as session:
        row = records.get_row(session, suggestion_id, actor)  # another team's: not found
        account = session.get_one(AdAccount, row.account_id)
        actor.require(Permission.APPLY_SUGGESTIONS, account.id, account.external_id)
        _check(row, account)
        if (row.action or {}).get("type") == RULES:
            return _make_rules(row, by=actor, engine=engine, now=now)
        steps = _steps(session, row)
    unsettled = unsettled_writes([s.entity.id for s in steps], engine=engine)
    for step in steps:
        if step.entity.id in unsettled:
            raise SuggestionStateError(f"not applied now: {held_reason(unsettled[step.entity.id])}")
    for step in steps:
        drift = _drift(account, step.entity, step.change)
        if drift:
            with write_session(engine) as session:
                fresh = records.get_row(session, suggestion_id)
                records.move(
                    session,
                    fresh,
                    SuggestionStatus.EXPIRED,
                    by=by,
                    now=now,
                    reason=f"not applied: {drift}; generate suggestions again",
                )
            raise SuggestionStateError(
                f"not applied: {step.entity.name}: {drift}. The suggestion is expired; "
                "generating suggestions again proposes a change on the ad set as it is now"
            )
    proposals = [_proposal(row, account, step) for step in steps]
    if get_settings().suggestion_needs_approval(row.kind):
        return _queue(row, account, steps, proposals, by=by, engine=engine, now=now)
    action_ids: list[int] = []
    for number, (step, proposal) in enumerate(zip(steps, proposals, strict=True), start=1):
        intent_id = _intent(row, account, step, proposal, number, by=by, engine=engine, now=now)
        action_ids.append(intent_id)
        outcomes = execute_intents([intent_id], engine=engine, now=now)
        if outcomes.get(intent_id) != ActionStatus.SUCCEEDED:
            break  # a shift's second half is not sent when its first did not succeed
    settle_suggestions([suggestion_id], engine=engine, now=now)
    with read_session(engine) as session:
        after = records.get_row(session, suggestion_id)
        actions = [session.get_one(ActionHistory, i) for i in action_ids]
        words = "; ".join(_outcome_words(a) for a in actions)
        if len(actions) < len(steps):
            words += "; the rest was not sent"
        return Applied(suggestion_id, after.status, words, action_ids[0])


def _make_rules(row: RexSuggestion, *, by: Actor, engine: Engine | None, now: datetime) -> Applied:
    """A Rex-side hours window: its rules saved (in Test first mode, as proposed), the
    suggestion applied with their ids. Nothing is written to Meta until they go live."""
    from core.rules.store import save_rule

    documents = (row.action or {}).get("rules") or []
    made = [save_rule(document, by=by, engine=engine, now=now) for document in documents]
    ids = [view.id for view in made]
    listed = ", ".join(f"#{i}" for i in ids)
    with write_session(engine) as session:
        fresh = records.get_row(session, row.id)
        if fresh.status != NEW:
            raise SuggestionStateError(f"suggestion {row.id} is {fresh.status} now")
        fresh.detail = {**(fresh.detail or {}), "rule_ids": ids}
        _baseline(session, fresh, now)
        records.move(session, fresh, APPLIED, by=by.label, now=now,
                     reason=f"rules {listed} made in Test first mode: review and go live on "
                     "the Rules page")  # fmt: skip
    return Applied(row.id, APPLIED, f"made rules {listed} in Test first mode (dry run): "
                   "review their preview on the Rules page, then go live")  # fmt: skip


def _steps(session: Session, row: RexSuggestion) -> list[_Step]:
    """The writes the suggestion's action makes: one change, or a budget shift's two."""
    assert row.action is not None
    listed = row.action.get("steps") or [
        {
            "entity_id": row.entity_id,
            "change": row.action.get("change"),
            "old": row.action.get("old"),
            "new": row.action.get("new"),
        }
    ]
    steps = []
    for item in listed:
        entity = session.get(AdEntity, item["entity_id"]) if item.get("entity_id") else None
        if entity is None:
            raise SuggestionStateError("an ad set it changes no longer exists in Rex")
        try:
            change = read_change(item, level=entity.level, entity=entity.external_id)
        except StoredChangeError as error:
            raise SuggestionStateError(f"not applied: {error}") from None
        if change is None:
            raise SuggestionStateError(f"suggestion {row.id} holds no change")
        session.expunge(entity)
        steps.append(_Step(entity, change, item.get("old"), item.get("new")))
    return steps


def _proposal(row: RexSuggestion, account: AdAccount, step: _Step) -> dict[str, Any]:
    """What the record keeps of one write (the intent's details, an approval's proposal)."""
    return {
        "change": stored(step.change),
        "old": step.old,
        "new": step.new,
        "entity_name": step.entity.name,
        "level": step.entity.level,
        "entity": step.entity.external_id,
        "currency": account.currency,
        "suggestion_id": row.id,
        "summary": (row.action or {}).get("summary"),
    }


def _intent(
    row: RexSuggestion,
    account: AdAccount,
    step: _Step,
    proposal: dict[str, Any],
    number: int,
    *,
    by: str,
    engine: Engine | None,
    now: datetime,
) -> int:
    """The intent of one write, committed before anything is sent; its id. The key
    `suggestion:<id>:<attempt>.<write>` makes each attempt's writes unique."""
    with write_session(engine) as session:
        fresh = records.get_row(session, row.id)
        if fresh.status != NEW:  # decided by someone else meanwhile
            raise SuggestionStateError(f"suggestion {row.id} is {fresh.status} now")
        if number == 1:
            earlier = session.scalar(
                select(func.count(ActionHistory.id)).where(
                    ActionHistory.idempotency_key.like(f"suggestion:{row.id}:%.1")
                )
            )
            fresh.detail = {
                **(fresh.detail or {}),
                "attempt": int(earlier or 0) + 1,
                "action_ids": [],
            }
        attempt = (fresh.detail or {}).get("attempt", 1)
        intent = ActionHistory(
            account_id=account.id,
            entity_id=step.entity.id,
            entity_name=step.entity.name,
            action_type=str((row.action or {})["type"]),
            old_value=step.old,
            new_value=step.new,
            status=ActionStatus.PENDING,
            idempotency_key=f"suggestion:{row.id}:{attempt}.{number}",
            details={**proposal, "by": by},
            created_at=now,
        )
        session.add(intent)
        session.flush()
        if number == 1:
            fresh.action_id = intent.id
        fresh.detail = {
            **(fresh.detail or {}),
            "action_ids": [*(fresh.detail or {}).get("action_ids", []), intent.id],
        }
        fresh.updated_at = now
        return intent.id


def settle_suggestions(
    suggestion_ids: list[int] | None = None,
    *,
    engine: Engine | None = None,
    now: datetime | None = None,
) -> int:
    """Move queued and in-flight suggestions on: applied once their write succeeded (with
    the baseline taken), new again when Meta refused it or the approval expired, dismissed
    when a person rejected it in the approval queue. Returns how many moved."""
    now = now or utcnow()
    moved = 0
    with write_session(engine) as session:
        query = select(RexSuggestion).where(
            RexSuggestion.status.in_((NEW, QUEUED)),
            (RexSuggestion.action_id.is_not(None)) | (RexSuggestion.approval_id.is_not(None)),
        )
        if suggestion_ids is not None:
            query = query.where(RexSuggestion.id.in_(suggestion_ids))
        for row in session.scalars(query):
            moved += _settle_one(session, row, now)
    return moved


def _settle_one(session: Session, row: RexSuggestion, now: datetime) -> int:
    detail = row.detail or {}
    approval_ids = list(
        detail.get("approval_ids") or ([row.approval_id] if row.approval_id else [])
    )
    if row.status == QUEUED:
        approvals = [session.get_one(PendingAction, i) for i in approval_ids]
        if any(a.status == ApprovalStatus.PENDING for a in approvals):
            return 0
        rejected = [a for a in approvals if a.status == ApprovalStatus.REJECTED]
        if rejected:
            row.approval_id = None
            reason = rejected[0].decision_reason or "no reason given"
            records.move(
                session,
                row,
                SuggestionStatus.DISMISSED,
                now=now,
                by=rejected[0].decided_by or "",
                reason=f"rejected in Approvals: {reason}",
            )
            return 1
        if any(a.action_id is None for a in approvals):  # expired or stale
            row.approval_id = None
            states = ", ".join(sorted({str(a.status) for a in approvals}))
            records.move(
                session,
                row,
                NEW,
                by="rex",
                now=now,
                reason=f"its approval was {states}: it can be applied again",
            )
            return 1
        row.action_id = approvals[0].action_id
        row.detail = {**detail, "action_ids": [a.action_id for a in approvals]}
        detail = row.detail
    action_ids = list(detail.get("action_ids") or ([row.action_id] if row.action_id else []))
    if not action_ids:
        return 0
    actions = [session.get_one(ActionHistory, i) for i in action_ids]
    expected = len((row.action or {}).get("steps") or [None])
    if len(actions) == expected and all(a.status == ActionStatus.SUCCEEDED for a in actions):
        _baseline(session, row, now)
        by = str((actions[0].details or {}).get("by") or "rex")
        records.move(session, row, APPLIED, by=by, reason=None, now=now)
        return 1
    failed = [a for a in actions if a.status in (ActionStatus.FAILED, ActionStatus.DEFERRED)]
    if failed:
        done = [a.id for a in actions if a.status == ActionStatus.SUCCEEDED]
        reason = f"not applied: {failed[0].error_message}" + (
            f" (action {', '.join(map(str, done))} did succeed: roll it back on the record if "
            "the rest should not stand alone)"
            if done
            else ""
        )
        row.action_id = None
        row.approval_id = None
        row.detail = {**detail, "action_ids": [], "approval_ids": []}
        if row.status != NEW:
            records.move(session, row, NEW, by="rex", now=now, reason=reason)
        else:
            row.reason = reason
            row.updated_at = now
        return 1
    return 0  # pending, sending or unknown: settled by reading Meta, then here


def _queue(
    row: RexSuggestion,
    account: AdAccount,
    steps: list[_Step],
    proposals: list[dict[str, Any]],
    *,
    by: str,
    engine: Engine | None,
    now: datetime,
) -> Applied:
    ttl = timedelta(hours=get_settings().approval_ttl_hours)
    with write_session(engine) as session:
        fresh = records.get_row(session, row.id)
        if fresh.status != NEW:
            raise SuggestionStateError(f"suggestion {row.id} is {fresh.status} now")
        pending = [
            PendingAction(
                account_id=account.id,
                entity_id=step.entity.id,
                action_type=str((row.action or {})["type"]),
                proposal={**proposal, "suggested_by": by},
                justification={"suggestion": row.id, "why": (row.detail or {}).get("why")},
                status=ApprovalStatus.PENDING,
                expires_at=now + ttl,
                created_at=now,
            )
            for step, proposal in zip(steps, proposals, strict=True)
        ]
        session.add_all(pending)
        session.flush()
        ids = [p.id for p in pending]
        fresh.approval_id = ids[0]
        fresh.detail = {**(fresh.detail or {}), "approval_ids": ids, "action_ids": []}
        listed = ", ".join(map(str, ids))
        records.move(
            session,
            fresh,
            QUEUED,
            by=by,
            now=now,
            reason=f"waiting for a second person in Approvals (proposal {listed})",
        )
    return Applied(row.id, QUEUED, f"queued for approval (proposal {listed})", approval_id=ids[0])


def _check(row: RexSuggestion, account: AdAccount) -> None:
    if row.status != NEW:
        raise SuggestionStateError(
            f"suggestion {row.id} is {row.status}: only a new suggestion can be applied"
        )
    if row.action is None:
        why = (row.detail or {}).get("not_applicable") or "it proposes no change Rex can make"
        raise SuggestionStateError(f"suggestion {row.id} cannot be applied from Rex: {why}")
    if not account.connected:
        raise SuggestionStateError(f"the account {account.external_id} was removed from Rex")
    if account.token_status != TokenStatus.OK:
        raise SuggestionStateError(
            f"the account {account.external_id} needs its token reconnected (Accounts page)"
        )


def _drift(account: AdAccount, entity: AdEntity, change: Any) -> str | None:
    """What changed at Meta since the suggestion was made (None: nothing). An ad set Meta
    cannot read now says nothing about a change: that refuses this attempt (raises) and
    leaves the suggestion as it is."""
    fields = (*ENTITY_FIELDS[entity.level], *ADSET_DELIVERY_FIELDS)
    answer = client_for(account).get_objects([entity.external_id], fields)[0]
    if not isinstance(answer, dict):
        raise SuggestionStateError(
            f"not applied now: Meta cannot read {entity.name} ({answer}), so Rex cannot tell "
            "whether it changed since the suggestion; nothing was sent — try again later"
        )
    state = EntityInfo.from_graph(Level(entity.level), answer)
    if state.effective_status != "ACTIVE":
        return f"the ad set is {state.effective_status} now, not delivering"
    drift: str | None = change.drift(state)
    return drift


def _baseline(session: Session, row: RexSuggestion, now: datetime) -> None:
    """The outcome of each write the suggestion made, with its baseline (the entity's
    last 7 and 28 whole days before the change: core/outcomes/record.py); one without a
    write when it made rules instead (their actions are measured as they act)."""
    detail = row.detail or {}
    ids = list(detail.get("action_ids") or ([row.action_id] if row.action_id else []))
    if not ids:
        outcomes.start(session, action=None, suggestion=row, changed_at=now, now=now)
    for action_id in ids:
        outcomes.start(session, action=session.get_one(ActionHistory, action_id),
                       suggestion=row, changed_at=now, now=now)  # fmt: skip


def _outcome_words(action: ActionHistory) -> str:
    if action.status == ActionStatus.SUCCEEDED:
        return f"applied: {action.new_value or 'done'} (action {action.id}; it can be rolled back)"
    if action.status == ActionStatus.UNKNOWN:
        return (
            f"sent, but Meta's answer was lost (action {action.id}): Rex settles it by reading "
            "Meta, never by sending it again"
        )
    return f"not applied: {action.error_message}"
