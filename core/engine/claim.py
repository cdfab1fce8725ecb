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

from sqlalchemy import Engine, case, or_, select, update

from core.db import read_session, write_session
from core.db.models import AutomationRule


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


def _free(now: datetime):  # type: ignore[no-untyped-def]
    return or_(AutomationRule.claim_expires_at.is_(None), AutomationRule.claim_expires_at < now)


def claim_due(
    now: datetime,
    *,
    runner: str | None = None,
    lease: timedelta | None = None,
    limit: int = 100,
    engine: Engine | None = None,
) -> list[Claim]:
    """Claim active rules whose next execution is due, oldest due first."""
    runner = runner or runner_id()
    with read_session(engine) as session:
        due = session.execute(
            select(AutomationRule.id, AutomationRule.next_execution_at)
            .where(
                AutomationRule.status == "active",
                AutomationRule.next_execution_at <= now,
                _free(now),
            )
            .order_by(AutomationRule.next_execution_at, AutomationRule.id)
            .limit(limit)
        ).all()
    claims = []
    for rule_id, slot in due:
        if _take(rule_id, now, runner, lease, engine, due_only=True):
            claims.append(Claim(rule_id, slot, runner))
    return claims


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
        conditions += [
            AutomationRule.status == "active",
            AutomationRule.next_execution_at <= now,
        ]
    with write_session(engine) as session:
        result = session.execute(
            update(AutomationRule)
            .where(*conditions)
            .values(claimed_by=runner, claim_expires_at=now + lease)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


def release(claim: Claim, *, next_execution_at: datetime | None, last_execution_at: datetime,
            engine: Engine | None = None) -> None:  # fmt: skip
    with write_session(engine) as session:
        session.execute(
            update(AutomationRule)
            .where(AutomationRule.id == claim.rule_id, AutomationRule.claimed_by == claim.runner)
            .values(
                claimed_by=None,
                claim_expires_at=None,
                # a rule paused or edited to draft meanwhile is not scheduled again
                next_execution_at=case(
                    (AutomationRule.status == "active", next_execution_at), else_=None
                ),
                last_execution_at=last_execution_at,
            )
            .execution_options(synchronize_session=False)
        )
