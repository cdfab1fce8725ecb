"""Rollback: undo an action Rex took — only while the entity still has the value Rex set.

Each action kind says how it is undone (core/actions/kinds.py): a budget back to its old
value, pause ↔ resume, a copy archived (it was made paused; Meta has no "uncopy"). Rex
reads the entity from Meta first; if someone (or something) changed it since, the kind
refuses with what changed, because restoring an old value over a newer decision is the
wrong undo.
The rollback is a new action (`rollback_of_id` → the original; the original's
`rolled_back_by_id` → it); its idempotency key makes a second rollback impossible.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from core.access.actor import Actor
from core.access.audit import record
from core.access.roles import Permission
from core.accounts import client_for
from core.actions.changes import StoredChangeError, change_of, stored
from core.actions.execute import execute_intents
from core.actions.kinds import RollbackRefused, is_rollback, kind_of, rollback_type
from core.actions.settle import held_reason, unsettled_writes
from core.db import read_session, write_session
from core.db.models import ActionHistory, ActionStatus, AdAccount, AdEntity
from core.db.types import utcnow
from core.errors import NotFoundError
from core.meta.objects import ENTITY_FIELDS, EntityInfo

__all__ = ["RollbackRefused", "rollback"]


def rollback(
    action_id: int, *, by: Actor, engine: Engine | None = None, now: datetime | None = None
) -> ActionHistory:
    """Undo a succeeded change, as `by` (who needs to be allowed to roll back on its
    account)."""
    now = now or utcnow()
    with read_session(engine) as session:
        original = session.get(ActionHistory, action_id)
        if original is None or not by.can(Permission.READ, original.account_id):
            raise NotFoundError(f"no action with id {action_id}")
        account = session.get_one(AdAccount, original.account_id)
        by.require(Permission.ROLL_BACK, account.id, account.external_id)
        entity = session.get(AdEntity, original.entity_id) if original.entity_id else None
    _check(original, entity)
    assert entity is not None
    unsettled = unsettled_writes([entity.id], engine=engine)
    if entity.id in unsettled:
        raise RollbackRefused(f"not rolled back now: {held_reason(unsettled[entity.id])}")
    kind = kind_of(original.action_type)
    try:
        change = change_of(original, entity)
    except StoredChangeError as error:
        raise RollbackRefused(f"not rolled back: {error}") from None
    if change is None:
        raise RollbackRefused(f"action {action_id} holds no change Rex can undo")
    target_id = kind.undo_target(change, (original.details or {}).get("copied_id"))

    fields = (*ENTITY_FIELDS[entity.level], *kind.reads)  # e.g. an ad set's targeting
    answer = client_for(account).get_objects([target_id], fields)[0]
    if not isinstance(answer, dict):
        raise RollbackRefused(f"Meta cannot read {target_id} now: {answer}")
    undo = kind.undo(change, EntityInfo.from_graph(entity.level, answer))

    try:
        with write_session(engine) as session:
            row = ActionHistory(
                rule_id=original.rule_id,
                account_id=original.account_id,
                entity_id=original.entity_id,
                entity_name=original.entity_name,
                action_type=rollback_type(kind.type),
                old_value=undo.old_text,
                new_value=undo.new_text,
                status=ActionStatus.PENDING,
                idempotency_key=f"rollback:{original.id}",
                details={
                    "change": stored(undo.change),
                    "rollback_of": original.id,
                    "by": by.label,
                    "by_user_id": by.user_id,
                },
                rollback_of_id=original.id,
                created_at=now,
            )
            session.add(row)
            session.flush()
            session.get_one(ActionHistory, original.id).rolled_back_by_id = row.id
            undo_id = row.id
            record(session, by, "action.rollback", "action", original.id,
                   account_id=original.account_id, old={"value": undo.old_text},
                   new={"value": undo.new_text, "rollback_action_id": row.id}, at=now)  # fmt: skip
    except IntegrityError:
        raise RollbackRefused(f"action {action_id} has already been rolled back") from None
    execute_intents([undo_id], engine=engine, now=now)
    with read_session(engine) as session:
        return session.get_one(ActionHistory, undo_id)


def _check(original: ActionHistory, entity: AdEntity | None) -> None:
    if is_rollback(original.action_type) or original.rollback_of_id is not None:
        raise RollbackRefused("this is itself a rollback; act on the entity instead")
    if original.rolled_back_by_id is not None:
        raise RollbackRefused(
            f"action {original.id} was already rolled back (action {original.rolled_back_by_id})"
        )
    if not kind_of(original.action_type).writes:
        raise RollbackRefused("a notification cannot be rolled back")
    if original.status != ActionStatus.SUCCEEDED:
        raise RollbackRefused(
            f"only succeeded changes can be rolled back; this one is {original.status}"
        )
    if entity is None:
        raise RollbackRefused("the entity no longer exists in Rex")
