"""Writing to Meta: intents first, then the calls, then the outcomes.

Every write Rex makes goes through here. The caller has already stored an
`action_history` row with status `pending` (the intent, with a unique idempotency key);
`execute_intents` sends the writes — status and budget changes batched (≤ 50 per HTTP
request), copies one by one because a copy must never be sent twice — and records each
outcome: `succeeded` with the values Meta now reports, `failed` with the typed error in
words, or `unknown` when the answer was lost (a copy that may or may not exist; recovery
reads Meta's state instead of repeating it). Then the local entities are refreshed from
what Meta reports.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from core.accounts import client_for
from core.db import read_session, write_session
from core.db.models import ActionHistory as Action
from core.db.models import ActionStatus, AdAccount, AdEntity, Notification, TokenStatus
from core.db.types import utcnow
from core.meta import (
    ConnectionFailedError,
    GraphClient,
    GraphError,
    RateLimitedError,
    TokenInvalidError,
)
from core.meta.client import BatchRequest
from core.meta.objects import ENTITY_FIELDS, EntityInfo

log = logging.getLogger(__name__)

PENDING, SUCCEEDED, FAILED = ActionStatus.PENDING, ActionStatus.SUCCEEDED, ActionStatus.FAILED
UNKNOWN, DEFERRED = ActionStatus.UNKNOWN, ActionStatus.DEFERRED


@dataclass(frozen=True)
class Write:
    """One call to Meta, as stored in the intent's details (`request`)."""

    method: str
    path: str
    params: dict[str, Any]
    idempotent: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "params": self.params,
            "idempotent": self.idempotent,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Write:
        return cls(data["method"], data["path"], dict(data["params"]), data["idempotent"])


def status_write(external_id: str, status: str) -> Write:
    return Write("POST", external_id, {"status": status})


def budget_write(external_id: str, kind: str, amount_minor: int) -> Write:
    return Write("POST", external_id, {f"{kind}_budget": amount_minor})


def copy_write(external_id: str, level: str, suffix: str) -> Write:
    params: dict[str, Any] = {
        "status_option": "PAUSED",
        "rename_options": {"rename_strategy": "ONLY_TOP_LEVEL_RENAME", "rename_suffix": suffix},
    }
    if level in ("campaign", "adset"):
        params["deep_copy"] = False
    return Write("POST", f"{external_id}/copies", params, idempotent=False)


def execute_intents(
    action_ids: list[int], *, engine: Engine | None = None, now: datetime | None = None
) -> dict[int, str]:
    """Send the pending intents, record every outcome; returns id → final status."""
    now = now or utcnow()
    with read_session(engine) as session:
        rows = session.scalars(
            select(Action).where(Action.id.in_(action_ids), Action.status == PENDING)
        ).all()
        by_account: dict[int, list[Action]] = defaultdict(list)
        for row in sorted(rows, key=lambda r: r.id):
            by_account[row.account_id].append(row)
        accounts = {
            a.id: a for a in session.scalars(select(AdAccount).where(AdAccount.id.in_(by_account)))
        }
    outcomes: dict[int, str] = {}
    for account_id, intents in by_account.items():
        outcomes.update(_execute_account(accounts[account_id], intents, engine, now))
    return outcomes


def _execute_account(
    account: AdAccount, intents: list[Action], engine: Engine | None, now: datetime
) -> dict[int, str]:
    blocked = _blocked_reason(account, now)
    if blocked:
        _record(engine, {i.id: (DEFERRED, blocked, None, None) for i in intents})
        return {i.id: DEFERRED for i in intents}

    client = client_for(account)
    results: dict[int, tuple[str, str | None, int | None, dict | None]] = {}
    batched = [i for i in intents if Write.from_json(i.details["request"]).idempotent]
    singles = [i for i in intents if i not in batched]
    try:
        results.update(_send_batched(client, batched))
        for intent in singles:
            results[intent.id] = _send_single(client, intent)
    except GraphError as error:  # the batch call itself failed: nothing in it ran
        status = UNKNOWN if isinstance(error, ConnectionFailedError) else FAILED
        for intent in intents:
            results.setdefault(intent.id, (status, error.explain(), error.code, None))
        _account_error(account, error, engine)

    _record(engine, results)
    _note_account_errors(account, results, engine)
    succeeded = [i for i in intents if results[i.id][0] == SUCCEEDED]
    if succeeded:
        _refresh_entities(client, account, succeeded, engine)
    return {action_id: outcome[0] for action_id, outcome in results.items()}


def _send_batched(client: GraphClient, intents: list[Action]) -> dict[int, tuple]:
    if not intents:
        return {}
    writes = [Write.from_json(i.details["request"]) for i in intents]
    answers = client.batch([BatchRequest(w.method, w.path, w.params) for w in writes])
    results: dict[int, tuple] = {}
    for intent, answer in zip(intents, answers, strict=True):
        if isinstance(answer, GraphError):
            status = UNKNOWN if isinstance(answer, ConnectionFailedError) else FAILED
            results[intent.id] = (status, answer.explain(), answer.code, {"error": answer})
        elif answer.get("success") is True:
            results[intent.id] = (SUCCEEDED, None, None, None)
        else:
            results[intent.id] = (FAILED, "Meta did not confirm the change", None, None)
    return results


def _send_single(client: GraphClient, intent: Action) -> tuple:
    write = Write.from_json(intent.details["request"])
    try:
        body = client.post(write.path, write.params, idempotent=False)
    except ConnectionFailedError as error:
        return (UNKNOWN, error.explain(), error.code, {"error": error})
    except GraphError as error:
        return (FAILED, error.explain(), error.code, {"error": error})
    copied = next((str(v) for k, v in body.items() if k.startswith("copied_")), None)
    if not copied:
        return (FAILED, "Meta did not return the copy's id", None, None)
    return (SUCCEEDED, None, None, {"copied_id": copied})


def _record(engine: Engine | None, results: dict[int, tuple]) -> None:
    finished = utcnow()
    with write_session(engine) as session:
        for action_id, (status, message, code, extra) in results.items():
            row = session.get_one(Action, action_id)
            row.status = status
            row.error_message = message
            row.error_code = code
            row.finished_at = finished
            details = dict(row.details or {})
            if extra and extra.get("copied_id"):
                details["copied_id"] = extra["copied_id"]
                row.new_value = extra["copied_id"]
            row.details = details
            row.can_rollback = status == SUCCEEDED and row.action_type != "notify"


def _note_account_errors(account: AdAccount, results: dict[int, tuple], engine: Engine | None):  # type: ignore[no-untyped-def]
    for _status, _message, _code, extra in results.values():
        error = (extra or {}).get("error")
        if isinstance(error, (TokenInvalidError, RateLimitedError)):
            _account_error(account, error, engine)
            return


def _account_error(account: AdAccount, error: GraphError, engine: Engine | None) -> None:
    """A rejected token holds the account (one notification); a rate limit records its
    regain time so no call is made before it."""
    with write_session(engine) as session:
        row = session.get_one(AdAccount, account.id)
        if isinstance(error, TokenInvalidError) and row.token_status != TokenStatus.NEEDS_RECONNECT:
            row.token_status = TokenStatus.NEEDS_RECONNECT
            row.token_error = error.explain()
            session.add(
                Notification(
                    account_id=row.id,
                    kind="token_invalid",
                    title=f"Reconnect {row.name} ({row.external_id})",
                    body=error.explain(),
                )
            )
        elif isinstance(error, RateLimitedError):
            row.rate_limited_until = max(row.rate_limited_until or error.regain_at, error.regain_at)


def _blocked_reason(account: AdAccount, now: datetime) -> str | None:
    if account.token_status == TokenStatus.NEEDS_RECONNECT:
        return "the account needs reconnecting (its token was rejected); not sent"
    if account.rate_limited_until and account.rate_limited_until > now:
        return (
            f"Meta rate-limited this account until {account.rate_limited_until:%Y-%m-%d %H:%M} "
            "UTC; not sent"
        )
    return None


def _refresh_entities(
    client: GraphClient, account: AdAccount, intents: list[Action], engine: Engine | None
) -> None:
    """Read back what Meta now reports for the entities just changed."""
    with read_session(engine) as session:
        entities = {
            e.external_id: e
            for e in session.scalars(
                select(AdEntity).where(AdEntity.id.in_([i.entity_id for i in intents]))
            )
        }
    by_level: dict[str, list[str]] = defaultdict(list)
    for entity in entities.values():
        by_level[entity.level].append(entity.external_id)
    fresh: dict[str, EntityInfo] = {}
    try:
        for level, ids in by_level.items():
            for answer in client.get_objects(ids, ENTITY_FIELDS[level]):
                if isinstance(answer, dict):
                    info = EntityInfo.from_graph(level, answer)
                    fresh[info.external_id] = info
    except GraphError as error:  # the writes are recorded; the next sync catches up
        log.warning("refreshing %s after writes failed: %s", account.external_id, error)
        return
    with write_session(engine) as session:
        for external_id, info in fresh.items():
            row = session.get_one(AdEntity, entities[external_id].id)
            row.status = info.status
            row.effective_status = info.effective_status
            row.daily_budget_minor = info.daily_budget_minor
            row.lifetime_budget_minor = info.lifetime_budget_minor
            row.budget_remaining_minor = info.budget_remaining_minor
            row.updated_at = utcnow()
