"""What the automation did: executions, their traces and actions — the Executions page,
and the Overview's recent actions.

Everything is returned as plain dataclasses; ids, never row positions, identify things.
Every row names its account (name and act_ id): two accounts may hold entities of the
same name. Numbers are said in words — "ROAS (last 7 days) 4.20", money as its currency
formats it — never as stored keys or minor units.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Select, func, select
from sqlalchemy.orm import Session

from core.access.actor import Actor
from core.access.roles import Permission
from core.db import read_session
from core.db.models import (
    ActionHistory,
    ActionStatus,
    AdAccount,
    AdEntity,
    AutomationRule,
    ExecutionStatus,
    Level,
    RuleExecution,
    RuleStatus,
    TokenStatus,
)
from core.db.types import utcnow
from core.engine.steps import Step
from core.errors import NotFoundError
from core.labels import account_label, action_words, ads_manager_url, is_sandbox
from core.rules.describe import counts_text, describe_value_key
from core.rules.store import readable_rules
from core.views.outcomes import outcome_words

PER_PAGE = 50


@dataclass(frozen=True)
class ExecutionRow:
    id: int
    rule_id: int
    rule_name: str
    started_at: datetime
    duration_ms: int | None
    status: ExecutionStatus
    entities_checked: int
    entities_matched: int
    actions_taken: int
    actions_skipped: int
    error: str | None
    actions_queued: int = 0  # proposals put in the approval queue
    actions_would: int = 0  # "would …" rows of a dry run

    @property
    def outcome(self) -> str:
        """What the run did, in words (only the counts that are not zero)."""
        return counts_text(
            self.actions_taken, self.actions_queued, self.actions_would, self.actions_skipped
        )


@dataclass(frozen=True)
class ActionRow:
    id: int
    created_at: datetime
    rule_name: str | None
    entity_name: str | None
    action_type: str
    old_value: str | None
    new_value: str | None
    status: ActionStatus
    error_message: str | None
    can_rollback: bool
    rolled_back_by_id: int | None
    settled: str | None = None  # how an unknown outcome was settled (the evidence)
    needs_person: bool = False  # unknown, and only a person can tell
    rule_id: int | None = None
    execution_id: int | None = None
    account_external_id: str = ""  # act_…
    account_name: str = ""
    level: Level | None = None
    entity_external_id: str | None = None
    ads_manager_url: str | None = None  # None for sandbox accounts and unknown entities
    measured: str | None = None  # what it did, from its outcome (core/outcomes/)

    @property
    def account(self) -> str:
        """How every page names the account of a row: "Name (act_…)"."""
        return account_label(self.account_name, self.account_external_id)

    @property
    def action(self) -> str:
        return action_words(self.action_type)

    @property
    def outcome(self) -> str:
        """The status in words; an unknown outcome says so plainly, and who settles it."""
        if self.status == ActionStatus.UNKNOWN:
            return (
                "⚠ outcome unknown — check it in Ads Manager and say what you found"
                if self.needs_person
                else "⚠ outcome unknown — Rex is reading Meta's record to settle it"
            )
        if self.status == ActionStatus.SUCCEEDED and self.rolled_back_by_id:
            return f"applied, then undone (action #{self.rolled_back_by_id})"
        return _STATUS_WORDS.get(self.status, self.status)


_STATUS_WORDS = {
    ActionStatus.PENDING: "waiting to be sent",
    ActionStatus.SENDING: "being sent to Meta",
    ActionStatus.SUCCEEDED: "applied",
    ActionStatus.FAILED: "failed",
    ActionStatus.DEFERRED: "not sent (deferred)",
    ActionStatus.DRY_RUN: "would act (dry run)",
    ActionStatus.SKIPPED: "skipped",
}


@dataclass(frozen=True)
class SkipRow:
    """An action a run did not take, and why."""

    entity_name: str
    account_external_id: str
    account_name: str
    action_type: str
    reason: str

    @property
    def account(self) -> str:
        return account_label(self.account_name, self.account_external_id)

    @property
    def action(self) -> str:
        return action_words(self.action_type)


@dataclass(frozen=True)
class ExecutionDetail:
    execution: ExecutionRow
    candidates: list[dict[str, Any]]  # the trace: values, conditions, matched
    steps: list[Step]  # per entity and action: outcome or skip reason
    actions: list[ActionRow]
    stale: dict[str, str]
    skipped: list[SkipRow]  # the steps not taken, with their account
    not_kept: int = 0  # candidates of a large rule the trace did not keep


@dataclass(frozen=True)
class ActivityPage:
    """One page of the activity feed, newest first."""

    rows: list[ActionRow]
    total: int
    page: int  # 1-based, within 1 … pages
    pages: int
    per_page: int


# ---------------------------------------------------------------------- words


# ---------------------------------------------------------------------- reads


def list_executions(
    *,
    actor: Actor,
    rule_id: int | None = None,
    account: str | None = None,
    status: ExecutionStatus | None = None,
    since: datetime | None = None,
    limit: int = 200,
    engine: Engine | None = None,
) -> list[ExecutionRow]:
    """Runs of the rules `actor` may read, newest first; `account` (act_…) keeps the
    rules scoped to it or to all."""
    query = (
        select(RuleExecution, AutomationRule.name)
        .join(AutomationRule, AutomationRule.id == RuleExecution.rule_id)
        .order_by(RuleExecution.started_at.desc(), RuleExecution.id.desc())
        .limit(limit)
    )
    if rule_id is not None:
        query = query.where(RuleExecution.rule_id == rule_id)
    if status:
        query = query.where(RuleExecution.status == status)
    if since is not None:
        query = query.where(RuleExecution.started_at >= since)
    with read_session(engine) as session:
        rows = session.execute(query.add_columns(AutomationRule.document)).all()
        rules = {e.rule_id: session.get_one(AutomationRule, e.rule_id) for e, _, _ in rows}
        shown = readable_rules(session, actor, list(rules.values()))
    return [
        _execution_row(e, name)
        for e, name, document in rows
        if e.rule_id in shown
        and (account is None
        or not (document.get("scope") or {}).get("account_ids")
        or account in document["scope"]["account_ids"])
    ]  # fmt: skip


def execution_detail(
    execution_id: int, *, actor: Actor, engine: Engine | None = None
) -> ExecutionDetail:
    """One run of a rule `actor` may read: its trace, its actions, what it skipped."""
    with read_session(engine) as session:
        found = session.execute(
            select(RuleExecution, AutomationRule)
            .join(AutomationRule, AutomationRule.id == RuleExecution.rule_id)
            .where(RuleExecution.id == execution_id)
        ).first()
        if found is None or not readable_rules(session, actor, [found[1]]):
            raise NotFoundError(f"no execution with id {execution_id}")
        execution, name = found[0], found[1].name
        actions = _action_rows(
            session,
            _readable(_actions_query().where(ActionHistory.execution_id == execution_id), actor),
        )
        trace = execution.trace or {}
        steps = [Step.model_validate(s) for s in trace.get("actions", [])]
        names = dict(
            session.execute(
                select(AdAccount.external_id, AdAccount.name).where(
                    AdAccount.external_id.in_({s.account for s in steps})
                )
            ).all()
        )
    skipped = [
        SkipRow(
            entity_name=s.name or "—",
            account_external_id=s.account,
            account_name=names.get(s.account, ""),
            action_type=s.action,
            reason=s.reason,
        )
        for s in steps
        if s.reason
    ]
    return ExecutionDetail(
        execution=_execution_row(execution, name),
        candidates=list(trace.get("candidates", [])),
        steps=steps,
        actions=sorted(actions, key=lambda a: a.id),
        stale=dict(trace.get("stale", {})),
        skipped=skipped,
        not_kept=int(trace.get("not_kept") or 0),
    )


def trace_rows(candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trace as table rows: entity, its values as people read them ("ROAS, last 7
    days": "4.20"), and why it did not match, in words."""
    rows = []
    for candidate in candidates:
        failed = []
        for condition in candidate.get("conditions", []):
            if condition["held"]:
                continue
            why = (
                condition.get("reason")
                or condition.get("undefined")
                or (f"{condition['actual']} {condition['op']} {condition['expected']} is false")
            )  # traces stored before the words
            failed.append(why)
        if candidate.get("note"):
            failed.append(candidate["note"])
        shown = candidate.get("shown") or {
            k: "—" if v is None else v for k, v in candidate.get("values", {}).items()
        }
        rows.append(
            {
                "Entity": candidate["name"],
                "Account": candidate["account"],
                "Matched": candidate["matched"],
                **{describe_value_key(key): text for key, text in shown.items()},
                "Why not": "; ".join(failed),
            }
        )
    return rows


def recent_actions(
    *,
    actor: Actor,
    hours: int = 24,
    status: ActionStatus | None = None,
    now: datetime | None = None,
    engine: Engine | None = None,
) -> list[ActionRow]:
    """The seed's monitoring views: actions of the last `hours` (failures: `status`), on
    the accounts `actor` may read."""
    since = (now or utcnow()) - timedelta(hours=hours)
    query = _readable(_actions_query(), actor).where(ActionHistory.created_at > since)
    if status:
        query = query.where(ActionHistory.status == status)
    with read_session(engine) as session:
        return _action_rows(session, query)


def activity_feed(
    *,
    actor: Actor,
    account: str | None = None,
    rule_id: int | None = None,
    since: datetime | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
    engine: Engine | None = None,
) -> ActivityPage:
    """Every action across rules (rollbacks and dry runs too), newest first, one page of
    `per_page`, on the accounts `actor` may read; `account` (act_…), `rule_id` and `since`
    narrow it. A page past the end is the last page."""
    query = _readable(_actions_query(), actor)
    if since is not None:
        query = query.where(ActionHistory.created_at > since)
    if account:
        query = query.where(AdAccount.external_id == account)
    if rule_id is not None:
        query = query.where(ActionHistory.rule_id == rule_id)
    with read_session(engine) as session:
        total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        pages = max(1, -(-(total or 0) // per_page))
        page = min(max(1, page), pages)
        rows = _action_rows(session, query.limit(per_page).offset((page - 1) * per_page))
    return ActivityPage(rows=rows, total=total or 0, page=page, pages=pages, per_page=per_page)


def why_not(
    rule_id: int, *, actor: Actor, now: datetime | None = None, engine: Engine | None = None
) -> list[str]:
    """Plain answers to "why didn't my rule run (or act)?"."""
    from core.settings import get_settings

    now = now or utcnow()
    reasons: list[str] = []
    with read_session(engine) as session:
        rule = session.get(AutomationRule, rule_id)
        if rule is None or not readable_rules(session, actor, [rule]):
            raise NotFoundError(f"no rule with id {rule_id}")
        scope = (rule.document.get("scope") or {}).get("account_ids") or []
        connected = select(AdAccount).where(AdAccount.connected)
        accounts = session.scalars(
            connected.where(AdAccount.external_id.in_(scope)) if scope else connected
        ).all()
        last = session.scalars(
            select(RuleExecution)
            .where(RuleExecution.rule_id == rule_id)
            .order_by(RuleExecution.started_at.desc())
            .limit(1)
        ).first()
        acted_today = session.scalar(
            select(func.count(ActionHistory.id)).where(
                ActionHistory.rule_id == rule_id,
                ActionHistory.status.in_((ActionStatus.SUCCEEDED, ActionStatus.PENDING)),
                ActionHistory.created_at > now - timedelta(hours=24),
            )
        )
    if rule.status != RuleStatus.ACTIVE:
        reasons.append(f"The rule is {rule.status}: only active rules are scheduled.")
    elif rule.next_execution_at and rule.next_execution_at > now:
        reasons.append(f"Its next run is due at {rule.next_execution_at:%Y-%m-%d %H:%M} UTC.")
    if not accounts:
        reasons.append("None of its accounts is connected.")
    stale_minutes = get_settings().stale_after_minutes
    for account in accounts:
        if account.token_status != TokenStatus.OK:
            reasons.append(f"{account.external_id} needs reconnecting: its token was rejected.")
        if account.last_sync_at is None or account.last_sync_at < now - timedelta(
            minutes=stale_minutes
        ):
            reasons.append(
                f"{account.external_id}'s numbers are stale (older than {stale_minutes} min): "
                "rules are not evaluated on them."
            )
        if account.rate_limited_until and account.rate_limited_until > now:
            reasons.append(
                f"Meta rate-limits {account.external_id} until "
                f"{account.rate_limited_until:%H:%M} UTC."
            )
    cap = (rule.document.get("safety") or {}).get("max_daily_actions", 10)
    if acted_today >= cap:
        reasons.append(f"It reached its daily cap ({cap} actions).")
    if last is not None:
        reasons.append(
            f"Last run {last.started_at:%Y-%m-%d %H:%M} UTC: {last.status}, "
            f"{last.entities_matched} of {last.entities_checked} matched, "
            f"{last.actions_taken} acted" + (f" — {last.error}" if last.error else "")
        )
    else:
        reasons.append("It has not run yet.")
    return reasons


def _execution_row(e: RuleExecution, name: str) -> ExecutionRow:
    return ExecutionRow(
        id=e.id,
        rule_id=e.rule_id,
        rule_name=name,
        started_at=e.started_at,
        duration_ms=e.duration_ms,
        status=e.status,
        entities_checked=e.entities_checked,
        entities_matched=e.entities_matched,
        actions_taken=e.actions_taken,
        actions_skipped=e.actions_skipped,
        error=e.error,
        actions_queued=e.actions_queued or 0,
        actions_would=e.actions_would or 0,
    )


# An action, its rule's name, its account's act_ id, name and Graph URL, its entity's level
# and id: the outer-joined columns are None where nothing joins (no rule, entity gone).
ActionsQuery = Select[ActionHistory, str, str, str, str | None, Level, str]


def _readable(query: ActionsQuery, actor: Actor) -> ActionsQuery:
    """Only the actions on accounts `actor` may read."""
    readable = actor.account_ids(Permission.READ)
    return query if readable is None else query.where(ActionHistory.account_id.in_(readable))


def _actions_query() -> ActionsQuery:
    """Actions with their rule's name, their account and their entity, newest first."""
    return (
        select(
            ActionHistory,
            AutomationRule.name,
            AdAccount.external_id,
            AdAccount.name,
            AdAccount.graph_url,
            AdEntity.level,
            AdEntity.external_id,
        )
        .outerjoin(AutomationRule, AutomationRule.id == ActionHistory.rule_id)
        .outerjoin(AdAccount, AdAccount.id == ActionHistory.account_id)
        .outerjoin(AdEntity, AdEntity.id == ActionHistory.entity_id)
        .order_by(ActionHistory.created_at.desc(), ActionHistory.id.desc())
    )


def _action_rows(session: Session, query: ActionsQuery) -> list[ActionRow]:
    sandboxes: dict[str | None, bool] = {}
    rows = []
    for action, rule_name, account_id, account_name, graph_url, level, entity_id in session.execute(
        query
    ).all():
        if graph_url not in sandboxes:
            sandboxes[graph_url] = is_sandbox(graph_url)
        if level is None and (action.details or {}).get("level"):
            level = Level(action.details["level"])  # the entity is gone: the action names it
        url = None
        if account_id and not sandboxes[graph_url]:
            url = ads_manager_url(level, account_id, entity_id) or None
        rows.append(
            _action_row(
                action, rule_name, account_id or "", account_name or "", level, entity_id, url
            )  # fmt: skip
        )
    measured = outcome_words(session, [r.id for r in rows])
    return [replace(r, measured=measured[r.id]) if r.id in measured else r for r in rows]


def _action_row(
    a: ActionHistory,
    rule_name: str | None,
    account_external_id: str,
    account_name: str,
    level: Level | None,
    entity_external_id: str | None,
    url: str | None,
) -> ActionRow:
    settle = (a.details or {}).get("settle") or {}
    return ActionRow(
        id=a.id,
        created_at=a.created_at,
        rule_name=rule_name,
        entity_name=a.entity_name,
        action_type=a.action_type,
        old_value=a.old_value,
        new_value=a.new_value,
        status=a.status,
        error_message=a.error_message,
        can_rollback=a.can_rollback and a.rolled_back_by_id is None,
        rolled_back_by_id=a.rolled_back_by_id,
        settled=settle.get("message") if a.status != ActionStatus.UNKNOWN else None,
        needs_person=a.status == ActionStatus.UNKNOWN and bool(settle.get("needs_person")),
        rule_id=a.rule_id,
        execution_id=a.execution_id,
        account_external_id=account_external_id,
        account_name=account_name,
        level=level,
        entity_external_id=entity_external_id,
        ads_manager_url=url,
    )
