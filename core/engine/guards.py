"""The guards a planned action passes before anything is recorded, and what they read.

Per account: its token (rejected → held), Meta's rate limit on it, the rule's days and
hours in the account's time zone, and whether its numbers are fresh enough to act on.
Per rule and entity: the rule's cooldown and its daily cap (the account's local day),
counted from what the rule did before — read once per tick for all its rules
(`Ledger`) instead of two queries per candidate — plus what it does in this run.

What counts toward a live rule's cooldowns and daily caps: what happened, and what may
have happened (a write not settled yet counts like a success, so it is never repeated
meanwhile). Never a dry run's "would" rows: testing a rule must not hold it back; a dry
run simulates its own cap and cooldown, so its earlier "would" rows count for it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine, select

from core.db import read_session
from core.db.models import (
    ActionHistory,
    ActionStatus,
    AdAccount,
    ApprovalStatus,
    PendingAction,
    TokenStatus,
)
from core.rules.document import RuleDocument

LIVE_COUNTED = (
    ActionStatus.PENDING,
    ActionStatus.SENDING,
    ActionStatus.SUCCEEDED,
    ActionStatus.UNKNOWN,
)
DRY_RUN_COUNTED = (*LIVE_COUNTED, ActionStatus.DRY_RUN)
WAITING = (ApprovalStatus.PENDING, ApprovalStatus.APPROVED)  # proposals that count
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def counted_statuses(rule: RuleDocument) -> tuple[ActionStatus, ...]:
    """The actions of this rule that count toward its cap and cooldown in this run."""
    return DRY_RUN_COUNTED if rule.safety.dry_run else LIVE_COUNTED


def local_midnight(account: AdAccount, now: datetime) -> datetime:
    local = now.astimezone(ZoneInfo(account.timezone_name))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def account_hold(account: AdAccount, now: datetime) -> str | None:
    """Why nothing can be done on the account now (its token, Meta's rate limit)."""
    if account.token_status == TokenStatus.NEEDS_RECONNECT:
        return "the account needs reconnecting (its token was rejected)"
    if account.rate_limited_until and account.rate_limited_until > now:
        return f"Meta rate-limits the account until {account.rate_limited_until:%H:%M} UTC"
    return None


def outside_schedule(rule: RuleDocument, account: AdAccount, now: datetime) -> str | None:
    """Why the rule does not act now on the account's clock (its days, its hours)."""
    local = now.astimezone(ZoneInfo(account.timezone_name))
    schedule = rule.schedule
    if schedule.days and DAY_NAMES[local.weekday()] not in schedule.days:
        return f"not a scheduled day ({DAY_NAMES[local.weekday()]} in {account.timezone_name})"
    if schedule.hours and not schedule.hours[0] <= local.hour < schedule.hours[1]:
        return f"outside the rule's hours ({local:%H:%M} in {account.timezone_name})"
    return None


def stale_accounts(
    accounts: Iterable[AdAccount], now: datetime, stale_after: timedelta | None
) -> dict[str, str]:
    """Accounts whose numbers are too old to act on, with the reason."""
    if stale_after is None:
        return {}
    stale = {}
    for account in accounts:
        if account.last_sync_at is None or account.last_sync_at < now - stale_after:
            when = (
                f"last synced {account.last_sync_at:%Y-%m-%d %H:%M} UTC"
                if account.last_sync_at
                else "never synced"
            )
            minutes = int(stale_after.total_seconds() // 60)
            stale[account.external_id] = (
                f"stale data: {account.external_id} {when}, more than {minutes} min ago"
            )
    return stale


@dataclass(frozen=True)
class _Done:
    """An earlier action or proposal of a rule: what cooldowns and caps count."""

    id: int
    account_id: int
    entity_id: int | None
    status: ActionStatus | None  # an action row's; None for a proposal
    created_at: datetime
    proposal: bool  # a proposal (pending or approved), not an action row


class Ledger:
    """What a tick's rules did before it, read once (four queries for all of them):
    their actions and proposals since the earliest moment any cooldown or daily cap
    looks back to, the proposals still waiting, and the idempotency keys already used
    since the tick's earliest slot. A run's own records are not in it: the planner adds
    those itself."""

    def __init__(
        self,
        rules: dict[int, RuleDocument],
        accounts: Iterable[AdAccount],
        now: datetime,
        engine: Engine | None,
        *,
        since_slot: datetime | None = None,
    ) -> None:
        self.now = now
        accounts = list(accounts)
        self.midnight = {}
        for account in accounts:
            try:
                self.midnight[account.id] = local_midnight(account, now)
            except (ZoneInfoNotFoundError, ValueError):  # not evaluated: no day to count
                continue
        longest = max((r.safety.cooldown_minutes for r in rules.values()), default=0)
        since = min([now - timedelta(minutes=longest), *self.midnight.values()])
        self.done: dict[int, list[_Done]] = defaultdict(list)
        self.waiting: dict[tuple[int, int | None, str], int] = {}
        self.keys: set[str] = set()
        ids = list(rules)
        if not ids:
            return
        with read_session(engine) as session:
            actions = session.execute(
                select(ActionHistory.id, ActionHistory.rule_id, ActionHistory.account_id,
                       ActionHistory.entity_id, ActionHistory.status, ActionHistory.created_at)
                .where(ActionHistory.rule_id.in_(ids),
                       ActionHistory.status.in_(DRY_RUN_COUNTED),
                       ActionHistory.created_at >= since)
            ).all()  # fmt: skip
            for action_id, rule_id, account_id, entity_id, status, at in actions:
                self.done[rule_id or 0].append(
                    _Done(action_id, account_id, entity_id, status, at, proposal=False)
                )
            proposals = session.execute(
                select(PendingAction.id, PendingAction.rule_id, PendingAction.account_id,
                       PendingAction.entity_id, PendingAction.created_at)
                .where(PendingAction.rule_id.in_(ids), PendingAction.status.in_(WAITING),
                       PendingAction.created_at >= since)
            ).all()  # fmt: skip
            for pending_id, rule_id, account_id, entity_id, at in proposals:
                self.done[rule_id or 0].append(
                    _Done(pending_id, account_id, entity_id, None, at, proposal=True)
                )
            waiting = session.execute(
                select(PendingAction.id, PendingAction.rule_id, PendingAction.entity_id,
                       PendingAction.action_type)
                .where(PendingAction.rule_id.in_(ids),
                       PendingAction.status == ApprovalStatus.PENDING)
                .order_by(PendingAction.id)
            ).all()  # fmt: skip
            for pending_id, rule_id, entity_id, action_type in waiting:
                self.waiting.setdefault((rule_id or 0, entity_id, action_type), pending_id)
            if since_slot is not None:
                self.keys = set(
                    session.scalars(
                        select(ActionHistory.idempotency_key).where(
                            ActionHistory.rule_id.in_(ids),
                            ActionHistory.idempotency_key.is_not(None),
                            ActionHistory.created_at >= since_slot,
                        )
                    )
                )

    def counted_today(
        self, rule_id: int | None, account: AdAccount, counted: tuple[ActionStatus, ...]
    ) -> int:
        """The rule's actions and proposals on the account since its local midnight."""
        if rule_id is None:
            return 0
        midnight = self.midnight.get(account.id) or local_midnight(account, self.now)
        return sum(
            1
            for d in self.done[rule_id]
            if d.account_id == account.id
            and d.created_at >= midnight
            and (d.proposal or d.status in counted)
        )

    def last_acted(
        self,
        rule_id: int | None,
        entity_id: int,
        counted: tuple[ActionStatus, ...],
        since: datetime,
    ) -> datetime | None:
        """When the rule last acted on (or proposed for) the entity after `since`."""
        if rule_id is None:
            return None
        return max(
            (
                d.created_at
                for d in self.done[rule_id]
                if d.entity_id == entity_id
                and d.created_at > since
                and (d.proposal or d.status in counted)
            ),
            default=None,
        )

    def waiting_for(self, rule_id: int | None, entity_id: int, action_type: str) -> int | None:
        """The rule's proposal for this entity and action still waiting for a person."""
        return None if rule_id is None else self.waiting.get((rule_id, entity_id, action_type))
