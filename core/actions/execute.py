"""Writing to Meta: intents first, then the calls, then the outcomes.

Every write Rex makes goes through here. The caller has already stored an
`action_history` row with status `pending` (the intent, with a unique idempotency key).
`execute_intents` sends them, per account:

1. status and budget changes in batches of ≤ 50 per HTTP request, copies one by one;
2. just before each call, its intents are marked `sending` (with `sent_at`), committed
   — so that if Rex dies now, recovery knows the call may have gone out;
3. each outcome is recorded as soon as its call returns:
   * `succeeded` — Meta confirmed it (`{"success": true}`, a copy's id);
   * `failed` — Meta definitely refused it (validation, permission, policy, token, a
     rate limit it answered with, `{"success": false}`), with Meta's error in words;
   * `unknown` — it may have been applied but the answer says nothing certain (5xx,
     transient codes, a timeout or dropped connection after sending, an unreadable or
     missing answer or batch item, `"success": "true"`). It counts toward cooldowns and
     caps like a success, holds back other writes to the entity, and is settled by
     reading Meta (core/actions/settle.py) — never by sending it again;
   * `deferred` — never sent (the account is held or rate-limited, its token cannot be
     decrypted, a rate limit on record stopped the call before it went out);
4. the entities written are read back from Meta, and unknown outcomes are settled at once
   where Meta's change history already shows them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update

from core.accounts import client_for, hold_for_token
from core.actions.changes import StoredChangeError, Write, change_of
from core.actions.kinds import kind_of
from core.db import read_session, write_session
from core.db.models import ActionHistory as Action
from core.db.models import ActionStatus, AdAccount, AdEntity, TokenStatus
from core.db.types import utcnow
from core.enums import Level
from core.errors import RexError
from core.meta import GraphClient, GraphError, RateLimitedError, TokenInvalidError
from core.meta.client import BATCH_LIMIT, BatchRequest
from core.meta.objects import ENTITY_FIELDS, EntityInfo

log = logging.getLogger(__name__)

PENDING, SENDING = ActionStatus.PENDING, ActionStatus.SENDING
SUCCEEDED, FAILED = ActionStatus.SUCCEEDED, ActionStatus.FAILED
UNKNOWN, DEFERRED = ActionStatus.UNKNOWN, ActionStatus.DEFERRED


@dataclass(frozen=True)
class Outcome:
    """What became of one intent."""

    status: ActionStatus
    message: str | None = None
    code: int | None = None
    copied_id: str | None = None
    error: GraphError | None = None

    @classmethod
    def of_error(cls, error: GraphError) -> Outcome:
        """A write that failed with `error`: never sent, unknown, or refused."""
        if not error.sent:
            return cls(DEFERRED, f"not sent: {error.explain()}", error.code, error=error)
        if error.outcome_unknown:
            return cls(UNKNOWN, _unknown_message(error), error.code, error=error)
        return cls(FAILED, error.explain(), error.code, error=error)


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
        return _record(engine, {i.id: Outcome(DEFERRED, blocked) for i in intents})
    try:
        client = client_for(account)
    except RexError as error:  # e.g. the token cannot be decrypted: nothing is sent
        log.error("writes to %s not sent: %s", account.external_id, error)
        return _record(engine, {i.id: Outcome(DEFERRED, f"not sent: {error}") for i in intents})

    results: dict[int, str] = {}
    writes: dict[int, Write] = {}
    for intent in intents:
        try:
            writes[intent.id] = _write_of(intent)
        except RexError as error:  # a stored change this Rex cannot read: not sent
            results.update(_record(engine, {intent.id: Outcome(DEFERRED, f"not sent: {error}")}))
    batched = [i for i in intents if i.id in writes and writes[i.id].idempotent]
    singles = [i for i in intents if i.id in writes and not writes[i.id].idempotent]
    for start in range(0, len(batched), BATCH_LIMIT):
        chunk = batched[start : start + BATCH_LIMIT]
        results.update(_send_batch(client, account, chunk, writes, engine, now))
    for intent in singles:
        results.update(_send_single(client, account, intent, writes[intent.id], engine, now))

    apply_locally([i.id for i in intents if results.get(i.id) == SUCCEEDED], engine=engine)
    sent = [i for i in intents if results.get(i.id) in (SUCCEEDED, UNKNOWN)]
    if sent:
        _refresh_entities(client, account, sent, engine)
    if any(results.get(i.id) == UNKNOWN for i in intents):
        from core.actions.settle import settle_unknown  # settle imports this module

        results.update(settle_unknown([i.id for i in intents], engine=engine, client=client))
    return results


def _write_of(intent: Action) -> Write:
    """The Graph call an intent makes, from the change it stores."""
    change = change_of(intent)
    write = change.write if change is not None else None
    if write is None:
        raise StoredChangeError(f"action {intent.id} holds no write to send")
    return write


def _send_batch(
    client: GraphClient,
    account: AdAccount,
    intents: list[Action],
    writes: dict[int, Write],
    engine: Engine | None,
    now: datetime,
) -> dict[int, str]:
    sending = _mark_sending(engine, intents, now)
    if not sending:
        return {}
    calls = [writes[i.id] for i in sending]
    answers = client.batch([BatchRequest(w.method, w.path, w.params) for w in calls])
    outcomes = {
        intent.id: _batch_outcome(answer) for intent, answer in zip(sending, answers, strict=True)
    }
    _note_account_errors(account, outcomes.values(), engine)
    return _record(engine, outcomes)


def _batch_outcome(answer: dict[str, Any] | GraphError) -> Outcome:
    if isinstance(answer, GraphError):
        return Outcome.of_error(answer)
    success = answer.get("success")
    if success is True:
        return Outcome(SUCCEEDED)
    if success is False:
        return Outcome(FAILED, "Meta answered that the change was not made (success: false)")
    return Outcome(
        UNKNOWN,
        f"outcome unknown: Meta's answer does not say whether the change was made "
        f"({_shown(answer)}); Rex reads Meta to settle it and does not send it again",
    )


def _send_single(
    client: GraphClient,
    account: AdAccount,
    intent: Action,
    write: Write,
    engine: Engine | None,
    now: datetime,
) -> dict[int, str]:
    if not _mark_sending(engine, [intent], now):
        return {}
    try:
        body = client.post(write.path, write.params, idempotent=False)
    except GraphError as error:
        outcome = Outcome.of_error(error)
    else:
        copied = (
            next((str(v) for k, v in body.items() if k.startswith("copied_") and v), None)
            if isinstance(body, dict)
            else None
        )
        outcome = (
            Outcome(SUCCEEDED, copied_id=copied)
            if copied
            else Outcome(
                UNKNOWN,
                f"outcome unknown: Meta's answer has no copy id ({_shown(body)}); a copy may "
                "exist — Rex reads Meta to settle it and does not copy again",
            )
        )
    _note_account_errors(account, [outcome], engine)
    return _record(engine, {intent.id: outcome})


def _mark_sending(engine: Engine | None, intents: list[Action], now: datetime) -> list[Action]:
    """Mark the intents `sending` before their call goes out (committed first); returns
    those this process marked — an intent another runner took is not sent twice.

    `sent_at` is the wall clock — or the run's own clock when that is ahead of it (a
    run replayed "as of" a later instant, as the fault-run tests do): the window in which
    Meta's change history may show the write starts no later than the call."""
    ids = [i.id for i in intents]
    with write_session(engine) as session:
        session.execute(
            update(Action)
            .where(Action.id.in_(ids), Action.status == PENDING)
            .values(status=SENDING, sent_at=max(now, utcnow()))
            .execution_options(synchronize_session=False)
        )
        marked = set(
            session.scalars(select(Action.id).where(Action.id.in_(ids), Action.status == SENDING))
        )
    return [i for i in intents if i.id in marked]


def _record(engine: Engine | None, outcomes: dict[int, Outcome]) -> dict[int, str]:
    finished = utcnow()
    with write_session(engine) as session:
        rows = {r.id: r for r in session.scalars(select(Action).where(Action.id.in_(outcomes)))}
        for action_id, outcome in outcomes.items():
            row = rows[action_id]
            row.status = outcome.status
            row.error_message = outcome.message
            row.error_code = outcome.code
            row.finished_at = finished
            if outcome.copied_id:
                row.details = {**(row.details or {}), "copied_id": outcome.copied_id}
                row.new_value = outcome.copied_id
            row.can_rollback = outcome.status == SUCCEEDED and kind_of(row.action_type).writes
    return {action_id: outcome.status for action_id, outcome in outcomes.items()}


def _unknown_message(error: GraphError) -> str:
    return (
        f"outcome unknown: {error.describe()} — the change may have been applied; Rex reads "
        "Meta's state and change history to settle it and does not send it again"
    )


def _shown(body: Any) -> str:
    text = repr(body)
    return text if len(text) <= 120 else text[:117] + "…"


def _note_account_errors(account: AdAccount, outcomes: Any, engine: Engine | None) -> None:
    for outcome in outcomes:
        error = outcome.error
        if isinstance(error, RateLimitedError) and error.object_level:
            continue  # one ad set's limit: the account is not held back
        if isinstance(error, (TokenInvalidError, RateLimitedError)):
            _account_error(account, error, engine)
            return


def _account_error(account: AdAccount, error: GraphError, engine: Engine | None) -> None:
    """A rejected token holds the account (one notification); a rate limit records its
    regain time so no call is made before it."""
    with write_session(engine) as session:
        row = session.get_one(AdAccount, account.id)
        if isinstance(error, TokenInvalidError):
            hold_for_token(session, row, error.explain())
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


def apply_locally(action_ids: list[int], *, engine: Engine | None = None) -> None:
    """Put what Meta confirmed into Rex's copy of the entities at once, so that the next
    rule never computes from the value before it — even when reading the entities back
    from Meta fails (the read-back, or the next sync, then confirms it)."""
    if not action_ids:
        return
    with write_session(engine) as session:
        rows = list(session.scalars(select(Action).where(Action.id.in_(action_ids))))
        entities = {
            e.id: e
            for e in session.scalars(
                select(AdEntity).where(AdEntity.id.in_({r.entity_id for r in rows}))
            )
        }
        for row in rows:
            entity = entities.get(row.entity_id) if row.entity_id else None
            if entity is None or row.status != SUCCEEDED:
                continue
            change = change_of(row, entity)
            if change is not None and change.entity == entity.external_id:
                change.apply_to(entity)  # (a copy's undo writes the copy, not the entity)
                entity.updated_at = utcnow()


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
    by_level: dict[Level, list[str]] = defaultdict(list)
    for entity in entities.values():
        by_level[entity.level].append(entity.external_id)
    fresh: dict[str, EntityInfo] = {}
    try:
        for level, ids in by_level.items():
            for answer in client.get_objects(ids, ENTITY_FIELDS[level]):
                if isinstance(answer, dict):
                    info = EntityInfo.from_graph(level, answer)
                    if info.external_id in entities:
                        fresh[info.external_id] = info
    except GraphError as error:  # the writes are recorded; the next sync catches up
        log.warning("refreshing %s after writes failed: %s", account.external_id, error)
        return
    if not fresh:
        return
    refreshed = utcnow()
    with write_session(engine) as session:
        session.execute(
            update(AdEntity),
            [
                {
                    "id": entities[external_id].id,
                    "status": info.status,
                    "effective_status": info.effective_status,
                    "daily_budget_minor": info.daily_budget_minor,
                    "lifetime_budget_minor": info.lifetime_budget_minor,
                    "budget_remaining_minor": info.budget_remaining_minor,
                    "updated_time": info.updated_time,
                    "updated_at": refreshed,
                }
                for external_id, info in fresh.items()
            ],
        )
