"""Saved rules: create, change (every change a new version), enable/disable, delete.

The stored document is the validated, normalised JSON of `RuleDocument`; the columns the
seed system's operators query (`name`, `status`, `check_frequency_minutes`,
`next_execution_at`) are kept in step with it.

Deleting keeps the record: the row stays with status `deleted` (never due, not listed,
not editable), so its versions, executions, actions and approvals still name it. The
database refuses to delete a rule that has a record (its foreign keys are RESTRICT).

Access: a rule belongs to the accounts in its scope (an all-accounts rule to every
connected account). Seeing it takes a role on each of them; saving, enabling,
disabling or deleting it takes `edit rules` on each — on the accounts it covered before
the change and after. Each saved version names who saved it (`saved_by_id`), the rule
who last changed it (`updated_by_id`, for four-eyes), and the audit log holds the old
and new document.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import object_session

from core.access.actor import Actor
from core.access.audit import record
from core.access.roles import Permission
from core.db import read_session, write_session
from core.db.models import (
    AdAccount,
    AutomationRule,
    AutomationRuleVersion,
    Level,
    RuleStatus,
    User,
)
from core.db.types import utcnow
from core.enums import DOCUMENT_STATUSES, spoken
from core.errors import InputError, NotFoundError
from core.rules.document import RuleDocument, check_rule_currency, parse_rule
from core.rules.evaluate import scope_currencies

SUPPORTED_PLATFORMS = ("meta",)


@dataclass(frozen=True)
class RuleView:
    id: int
    name: str
    level: Level
    status: RuleStatus
    version: int
    check_frequency_minutes: int
    next_execution_at: datetime | None
    last_execution_at: datetime | None
    document: dict[str, Any]
    deleted_at: datetime | None = None
    changed_by: str | None = None  # who saved the current version (None: Rex itself)

    @property
    def rule(self) -> RuleDocument:
        return parse_rule(self.document)

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


def save_rule(
    document: RuleDocument | dict[str, Any] | str,
    *,
    by: Actor,
    rule_id: int | None = None,
    engine: Engine | None = None,
    now: datetime | None = None,
) -> RuleView:
    """Validate and store a rule (new, or a new version of `rule_id`), as `by` — who
    must hold `edit rules` on every account the rule covers, before and after."""
    rule = document if isinstance(document, RuleDocument) else parse_rule(document)
    now = now or utcnow()
    with write_session(engine) as session:
        old: dict[str, Any] | None = None
        if rule_id is not None:
            row = _find(session, rule_id, actor=by)
            require_on_rule(session, by, row.document, Permission.EDIT_RULES)
            old = row.document
        _check_accounts(session, rule)
        # one currency for the rule's money: stated, or its accounts' own (else refused)
        rule = check_rule_currency(rule, scope_currencies(session, rule))
        body = rule.to_json()
        require_on_rule(session, by, body, Permission.EDIT_RULES)
        if rule_id is None:
            row = AutomationRule(version=1)
            session.add(row)
        elif row.document == body:
            return _view(row)  # nothing changed: no new version
        else:
            row.version += 1
        row.name = rule.name
        row.level = rule.scope.level
        row.document = body
        row.status = rule.status
        row.check_frequency_minutes = rule.schedule.every_minutes
        row.next_execution_at = now if rule.status == RuleStatus.ACTIVE else None
        row.updated_by_id = by.user_id
        session.flush()
        session.add(AutomationRuleVersion(rule_id=row.id, version=row.version, document=body,
                                          saved_by_id=by.user_id))  # fmt: skip
        record(session, by, _change_name(old, body), "rule", row.id, at=now,
               old=None if old is None else {"version": row.version - 1, "document": old},
               new={"version": row.version, "document": body})  # fmt: skip
        session.flush()
        return _view(row)


def set_status(
    rule_id: int, status: RuleStatus, *, by: Actor, engine: Engine | None = None,
    now: datetime | None = None,
) -> RuleView:  # fmt: skip
    """Enable (`active`), disable (`paused`) or park (`draft`) a rule: a new version."""
    if status not in DOCUMENT_STATUSES:
        raise InputError("status", f"{str(status)!r}: use {spoken(DOCUMENT_STATUSES)}")
    current = get_rule(rule_id, actor=by, engine=engine)
    document = dict(current.document, status=status)
    return save_rule(document, by=by, rule_id=rule_id, engine=engine, now=now)


def delete_rule(
    rule_id: int, *, by: Actor, engine: Engine | None = None, now: datetime | None = None
) -> RuleView:
    """Take a rule off the list: it never runs again and cannot be edited, and its
    versions, executions, actions and approvals stay on the record, naming it."""
    now = now or utcnow()
    with write_session(engine) as session:
        row = _find(session, rule_id, actor=by)
        require_on_rule(session, by, row.document, Permission.EDIT_RULES)
        record(session, by, "rule.delete", "rule", row.id, at=now,
               old={"version": row.version, "status": str(row.status)})  # fmt: skip
        row.status = RuleStatus.DELETED
        row.deleted_at = now
        row.next_execution_at = None
        row.updated_by_id = by.user_id
        session.flush()
        return _view(row)


def get_rule(
    rule_id: int, *, actor: Actor, include_deleted: bool = False, engine: Engine | None = None
) -> RuleView:
    """A rule by id, if `actor` may read it (else NotFoundError, as if there were none). A
    deleted one is NotFoundError (saying it was deleted) unless `include_deleted` — for
    showing the record, never for editing or running it."""
    with read_session(engine) as session:
        return _view(_find(session, rule_id, include_deleted=include_deleted, actor=actor))


def list_rules(
    *, actor: Actor, include_deleted: bool = False, engine: Engine | None = None
) -> list[RuleView]:
    """The rules `actor` may read, in id order; deleted ones only with `include_deleted`
    (to name the record)."""
    with read_session(engine) as session:
        query = select(AutomationRule).order_by(AutomationRule.id)
        if not include_deleted:
            query = query.where(AutomationRule.deleted_at.is_(None))
        rows = list(session.scalars(query))
        shown = readable_rules(session, actor, rows)
        return [_view(row) for row in rows if row.id in shown]


def require_on_rule(
    session: Any, actor: Actor, document: dict[str, Any], permission: Permission
) -> None:
    """AccessDenied unless `actor` may do `permission` on every account the rule covers
    (an all-accounts rule: every connected account)."""
    if actor.admin:
        return
    for account in _scope_accounts(session, document):
        actor.require(permission, account.id, account.name)


def _scope_accounts(session: Any, document: dict[str, Any]) -> list[AdAccount]:
    ids = list((document.get("scope") or {}).get("account_ids") or [])
    query = select(AdAccount).where(AdAccount.external_id.in_(ids)) if ids else (
        select(AdAccount).where(AdAccount.connected))  # fmt: skip
    return list(session.scalars(query))


def readable_rules(session: Any, actor: Actor, rows: list[AutomationRule]) -> set[int]:
    """The ids of the rules whose every account `actor` may read."""
    readable = actor.account_ids(Permission.READ)
    if readable is None:
        return {row.id for row in rows}
    accounts = {a.external_id: a.id for a in session.scalars(select(AdAccount))}
    connected = {a.id for a in session.scalars(select(AdAccount).where(AdAccount.connected))}
    shown = set()
    for row in rows:
        ids = list((row.document.get("scope") or {}).get("account_ids") or [])
        covered = {accounts.get(i) for i in ids} if ids else connected
        if covered and None not in covered and covered <= readable:
            shown.add(row.id)
    return shown


def _change_name(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    """The audit log's word for a save: created, a status change only, or an edit."""
    if old is None:
        return "rule.create"
    if dict(old, status=None) == dict(new, status=None):
        return f"rule.{new.get('status')}"
    return "rule.edit"


def rule_versions(
    rule_id: int, *, actor: Actor, engine: Engine | None = None
) -> list[tuple[int, dict]]:
    """Every saved document of a rule, oldest first (a deleted rule's too: the record)."""
    with read_session(engine) as session:
        _find(session, rule_id, include_deleted=True, actor=actor)
        rows = session.execute(
            select(AutomationRuleVersion.version, AutomationRuleVersion.document)
            .where(AutomationRuleVersion.rule_id == rule_id)
            .order_by(AutomationRuleVersion.version)
        ).all()
        return [(version, document) for version, document in rows]


def _check_accounts(session: Any, rule: RuleDocument) -> None:
    """Scoped accounts must be connected, on a platform Rex can act on."""
    for index, external_id in enumerate(rule.scope.account_ids):
        row = session.scalar(select(AdAccount).where(AdAccount.external_id == external_id))
        field = f"scope.account_ids[{index}]"
        if row is None or not row.connected:
            gone = " (it was removed)" if row is not None else ""
            raise InputError(
                field, f"{external_id} is not connected{gone}: connect it first, or remove it"
            )
        if row.platform not in SUPPORTED_PLATFORMS:
            raise InputError(
                field, f"{external_id} is a {row.platform} account; Rex acts on Meta accounts only"
            )


def _find(
    session: Any, rule_id: int, *, actor: Actor, include_deleted: bool = False
) -> AutomationRule:
    row = session.get(AutomationRule, rule_id)
    if row is not None and not readable_rules(session, actor, [row]):
        row = None  # another team's rule: not found, as far as they can tell
    if row is not None and row.deleted_at is not None and not include_deleted:
        raise NotFoundError(
            f"rule {rule_id} “{row.name}” was deleted on {row.deleted_at:%Y-%m-%d %H:%M} UTC; "
            "its executions and actions stay on the record (Executions page)"
        )
    if row is None:
        rows = session.scalars(select(AutomationRule).where(AutomationRule.deleted_at.is_(None)))
        count = len(readable_rules(session, actor, list(rows)))
        raise NotFoundError(
            f"no rule with id {rule_id} ({count} rules you can see: `python -m core rules list`)"
        )
    return row


def _view(row: AutomationRule) -> RuleView:
    return RuleView(
        id=row.id,
        name=row.name,
        level=row.level,
        status=row.status,
        version=row.version,
        check_frequency_minutes=row.check_frequency_minutes,
        next_execution_at=row.next_execution_at,
        last_execution_at=row.last_execution_at,
        document=row.document,
        deleted_at=row.deleted_at,
        changed_by=_email(row.updated_by_id, object_session(row)),
    )


def _email(user_id: int | None, session: Any) -> str | None:
    """Who a saved version names, by e-mail (None: Rex itself, or before users)."""
    user = session.get(User, user_id) if user_id is not None and session is not None else None
    return user.email if user is not None else None
