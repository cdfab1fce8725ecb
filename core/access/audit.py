"""The audit log: who did what, when, from which session, with old and new values.

`record` adds the entry to the caller's session, so it commits (or rolls back) with
the change it records: there is never a change without its entry, nor an entry for a
change that did not happen. Values are JSON; secrets (passwords, tokens, hashes) are
never passed in.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.access.actor import Actor
from core.access.roles import Permission
from core.db import read_session
from core.db.models import AdAccount, AuditEntry
from core.db.types import utcnow


def record(
    session: Session,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: object = None,
    *,
    account_id: int | None = None,
    old: Mapping[str, Any] | None = None,
    new: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    session.add(AuditEntry(
        at=at or utcnow(), user_id=actor.user_id, actor=actor.label,
        session_id=actor.session_id, via=actor.via, action=action, target_type=target_type,
        target_id=None if target_id is None else str(target_id), account_id=account_id,
        old_value=dict(old) if old is not None else None,
        new_value=dict(new) if new is not None else None,
    ))  # fmt: skip


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    via: str
    session_id: int | None
    action: str
    target: str  # "rule 3"
    account: str | None  # act_…
    old: dict[str, Any] | None
    new: dict[str, Any] | None

    def as_row(self) -> dict[str, Any]:
        """As the audit page and its CSV show it."""
        return {
            "At": self.at.isoformat(timespec="seconds"), "Who": self.actor, "Via": self.via,
            "Session": self.session_id, "Action": self.action, "Target": self.target,
            "Account": self.account or "",
            "Before": json.dumps(self.old, ensure_ascii=False) if self.old is not None else "",
            "After": json.dumps(self.new, ensure_ascii=False) if self.new is not None else "",
        }  # fmt: skip


def as_csv(rows: list[AuditRow]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(r.as_row() for r in rows)
    return out.getvalue()


COLUMNS = ["At", "Who", "Via", "Session", "Action", "Target", "Account", "Before", "After"]
LIMIT = 1000


def audit_log(
    actor: Actor,
    *,
    user: str | None = None,
    action: str | None = None,
    account: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = LIMIT,
    engine: Engine | None = None,
) -> list[AuditRow]:
    """The newest entries first, filtered; admins only."""
    actor.require(Permission.READ_AUDIT)
    query = (
        select(AuditEntry, AdAccount.external_id)
        .outerjoin(AdAccount, AdAccount.id == AuditEntry.account_id)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(limit)
    )
    if user:
        query = query.where(AuditEntry.actor == user.strip().lower())
    if action:
        query = query.where(AuditEntry.action.startswith(action))
    if account:
        query = query.where(AdAccount.external_id == account)
    if since:
        query = query.where(AuditEntry.at >= since)
    if until:
        query = query.where(AuditEntry.at < until)
    with read_session(engine) as session:
        return [
            AuditRow(
                e.id,
                e.at,
                e.actor,
                e.via,
                e.session_id,
                e.action,
                f"{e.target_type} {e.target_id}" if e.target_id else e.target_type,
                external_id,
                e.old_value,
                e.new_value,
            )  # fmt: skip
            for e, external_id in session.execute(query)
        ]
