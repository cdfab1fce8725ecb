"""Claiming rules: two runners never take the same rule.

A claim is a lease: one conditional UPDATE sets `claimed_by` and `claim_expires_at` on a
rule only if nobody holds an unexpired claim on it. On PostgreSQL the UPDATE re-checks
its WHERE clause after taking the row lock, so of two runners racing for a rule exactly
one gets rowcount 1; on SQLite write transactions are serialised (`BEGIN IMMEDIATE`).
A runner that dies leaves a claim that expires; recovery then closes its execution.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Table, bindparam, case, or_, select, update

from core.db import read_session, rows_changed, write_session
from core.db.models import AutomationRule, RuleStatus
from core.db.types import UTCDateTime


def default_lease() -> timedelta:
    from core.settings import get_settings

    return timedelta(seconds=get_settings().engine_lease_seconds)


@dataclass(frozen=True)
class Claim:
    rule_id: int
    slot: datetime  # the due time being served: part of every idempotency key
    runner: str


def runner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _free(now: datetime) -> Any:
    return or_(AutomationRule.claim_expires_at.is_(None), AutomationRule.claim_expires_at < now)


def claim_due(
    now: datetime,
    *,
    runner: str | None = None,
    lease: timedelta | None = None,
    limit: int = 2_000,
    engine: Engine | None = None,
) -> list[Claim]:
    """Claim active rules whose next execution is due, oldest due first (up to `limit`,
    in one conditional UPDATE: a rule another runner took meanwhile is not claimed)."""
    runner = runner or runner_id()
    lease = lease or default_lease()
    with read_session(engine) as session:
        due = dict(
            session.execute(
                select(AutomationRule.id, AutomationRule.next_execution_at)
                .where(*_due(now))
                .order_by(AutomationRule.next_execution_at, AutomationRule.id)
                .limit(limit)
            ).all()
        )
    if not due:
        return []
    expires = now + lease
    with write_session(engine) as session:
        session.execute(
            update(AutomationRule)
            .where(AutomationRule.id.in_(due), *_due(now))
            .values(claimed_by=runner, claim_expires_at=expires)
            .execution_options(synchronize_session=False)
        )
        taken = session.scalars(
            select(AutomationRule.id).where(
                AutomationRule.id.in_(due),
                AutomationRule.claimed_by == runner,
                AutomationRule.claim_expires_at == expires,
            )
        ).all()
    slots = {rule_id: slot for rule_id, slot in due.items() if slot is not None}
    return [Claim(i, slots[i], runner) for i in sorted(taken, key=lambda i: (slots[i], i))]


def _due(now: datetime) -> list[Any]:
    return [
        AutomationRule.status == RuleStatus.ACTIVE,
        AutomationRule.next_execution_at <= now,
        AutomationRule.deleted_at.is_(None),
        _free(now),
    ]


def claim_rule(
    rule_id: int,
    now: datetime,
    *,
    runner: str | None = None,
    lease: timedelta | None = None,
    engine: Engine | None = None,
) -> Claim | None:
    """Claim one rule now, due or not ("run now"); None if another runner holds it."""
    runner = runner or runner_id()
    if not _take(rule_id, now, runner, lease, engine, due_only=False):
        return None
    return Claim(rule_id, now.replace(second=0, microsecond=0), runner)


def _take(
    rule_id: int,
    now: datetime,
    runner: str,
    lease: timedelta | None,
    engine: Engine | None,
    *,
    due_only: bool,
) -> bool:
    lease = lease or default_lease()
    conditions = [AutomationRule.id == rule_id, _free(now), AutomationRule.deleted_at.is_(None)]
    if due_only:
        conditions += _due(now)
    with write_session(engine) as session:
        changed = rows_changed(
            session,
            update(AutomationRule)
            .where(*conditions)
            .values(claimed_by=runner, claim_expires_at=now + lease)
            .execution_options(synchronize_session=False),
        )
        return changed == 1


def release(claim: Claim, *, next_execution_at: datetime | None, last_execution_at: datetime,
            engine: Engine | None = None) -> None:  # fmt: skip
    release_all([(claim, next_execution_at)], last_execution_at=last_execution_at, engine=engine)


def release_all(
    releases: list[tuple[Claim, datetime | None]],
    *,
    last_execution_at: datetime,
    engine: Engine | None = None,
) -> None:
    """Give the claims back (one statement, executed for each), each rule due next at
    its time — a rule paused or edited to draft meanwhile is not scheduled again."""
    if not releases:
        return
    table = cast(Table, AutomationRule.__table__)
    statement = (
        update(table)
        .where(table.c.id == bindparam("rule"), table.c.claimed_by == bindparam("runner"))
        .values(
            claimed_by=None,
            claim_expires_at=None,
            next_execution_at=case(
                (table.c.status == RuleStatus.ACTIVE, bindparam("next", type_=UTCDateTime())),
                else_=None,
            ),
            last_execution_at=last_execution_at,
        )
    )
    with write_session(engine) as session:
        session.execute(
            statement,
            [{"rule": c.rule_id, "runner": c.runner, "next": due} for c, due in releases],
        )
