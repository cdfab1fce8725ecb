"""Rollback: undo an action Rex took — only while the entity still has the value Rex set.

Budget back to its old value, pause ↔ resume, a copy archived (it was made paused; Meta
has no "uncopy"). Rex reads the entity from
Meta first; if someone (or something) changed it since, the rollback is refused with
what changed, because restoring an old value over a newer decision is the wrong undo.
The rollback is a new action (`rollback_of_id` → the original; the original's
`rolled_back_by_id` → it); its idempotency key makes a second rollback impossible.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from core.accounts import client_for
from core.actions.execute import budget_write, execute_intents, status_write
from core.actions.settle import held_reason, unsettled_writes
from core.db import read_session, write_session
from core.db.models import ActionHistory, ActionStatus, AdAccount, AdEntity
from core.db.types import utcnow
from core.errors import NotFoundError, RexError
from core.meta.objects import ENTITY_FIELDS, EntityInfo
from core.money import MoneyError, format_money, from_minor


class RollbackRefused(RexError):
    """The action cannot be rolled back; the message says why."""


def rollback(
    action_id: int, *, by: str = "rex", engine: Engine | None = None, now: datetime | None = None
) -> ActionHistory:
    now = now or utcnow()
    with read_session(engine) as session:
        original = session.get(ActionHistory, action_id)
        if original is None:
            raise NotFoundError(f"no action with id {action_id}")
        account = session.get_one(AdAccount, original.account_id)
        entity = session.get(AdEntity, original.entity_id) if original.entity_id else None
    _check(original, entity)
    assert entity is not None
    unsettled = unsettled_writes([entity.id], engine=engine)
    if entity.id in unsettled:
        raise RollbackRefused(f"not rolled back now: {held_reason(unsettled[entity.id])}")
    details = dict(original.details or {})
    target_id, level = entity.external_id, entity.level
    if original.action_type == "duplicate":
        target_id = details.get("copied_id") or ""
        if not target_id:
            raise RollbackRefused("the copy's id was never confirmed by Meta: nothing to pause")

    answer = client_for(account).get_objects([target_id], ENTITY_FIELDS[level])[0]
    if not isinstance(answer, dict):
        raise RollbackRefused(f"Meta cannot read {target_id} now: {answer}")
    current = EntityInfo.from_graph(level, answer)
    currency = details.get("currency") or account.currency
    write, old_text, new_text = _undo(original, current, details, currency)

    try:
        with write_session(engine) as session:
            undo = ActionHistory(
                rule_id=original.rule_id,
                account_id=original.account_id,
                entity_id=original.entity_id,
                entity_name=original.entity_name,
                action_type=f"rollback_{original.action_type}",
                old_value=old_text,
                new_value=new_text,
                status=ActionStatus.PENDING,
                idempotency_key=f"rollback:{original.id}",
                details={"request": write.to_json(), "rollback_of": original.id, "by": by,
                         **{k: v for k, v in details.items() if k in ("budget", "currency")}},
                rollback_of_id=original.id,
                created_at=now,
            )  # fmt: skip
            session.add(undo)
            session.flush()
            session.get_one(ActionHistory, original.id).rolled_back_by_id = undo.id
            undo_id = undo.id
    except IntegrityError:
        raise RollbackRefused(f"action {action_id} has already been rolled back") from None
    execute_intents([undo_id], engine=engine, now=now)
    with read_session(engine) as session:
        return session.get_one(ActionHistory, undo_id)


def _check(original: ActionHistory, entity: AdEntity | None) -> None:
    if original.rollback_of_id is not None:
        raise RollbackRefused("this is itself a rollback; act on the entity instead")
    if original.rolled_back_by_id is not None:
        raise RollbackRefused(
            f"action {original.id} was already rolled back (action {original.rolled_back_by_id})"
        )
    if original.status != ActionStatus.SUCCEEDED or original.action_type == "notify":
        raise RollbackRefused(
            f"only succeeded changes can be rolled back; this one is {original.status}"
            if original.action_type != "notify"
            else "a notification cannot be rolled back"
        )
    if entity is None:
        raise RollbackRefused("the entity no longer exists in Rex")


def _undo(original: ActionHistory, current: EntityInfo, details: dict, currency: str):  # type: ignore[no-untyped-def]
    kind = original.action_type
    if kind == "change_budget":
        budget = details.get("budget", "daily")
        now_minor = (
            current.daily_budget_minor if budget == "daily" else current.lifetime_budget_minor
        )
        if now_minor != details.get("new_minor"):
            rex_set = _money(details.get("new_minor"), currency, "amount")
            now = (
                f"the {budget} budget is now {_money(now_minor, currency, '')}"
                if now_minor is not None
                else f"it has no {budget} budget now"
            )
            raise RollbackRefused(
                f"{now}, not the {rex_set} Rex set: someone changed it since; not rolled back"
            )
        write = budget_write(current.external_id, budget, int(details["old_minor"]))
        return write, original.new_value, original.old_value
    if kind in ("pause", "resume"):
        set_to = "PAUSED" if kind == "pause" else "ACTIVE"
        if current.status != set_to:
            raise RollbackRefused(
                f"its status is now {current.status}, not the {set_to} Rex set: "
                "someone changed it since; not rolled back"
            )
        back = "ACTIVE" if kind == "pause" else "PAUSED"
        return status_write(current.external_id, back), set_to, back
    if kind == "duplicate":
        # Rex made the copy PAUSED; undoing it archives the copy (Meta has no "uncopy"),
        # unless someone has since put it to work.
        if current.status != "PAUSED":
            raise RollbackRefused(
                f"the copy {current.external_id} is now {current.status}, not the PAUSED Rex "
                "left it: someone changed it since; not rolled back"
            )
        return status_write(current.external_id, "ARCHIVED"), "PAUSED", "ARCHIVED"
    raise RollbackRefused(f"{kind} actions cannot be rolled back")


def _money(minor: object, currency: str, missing: str) -> str:
    """Minor units as people read them ("62.50 USD"); `missing` when there is none."""
    if not isinstance(minor, int) or isinstance(minor, bool):
        return missing
    try:
        return format_money(from_minor(minor, currency), currency)
    except MoneyError:
        return f"{minor} (in {currency}'s smallest unit)"
