"""Settling writes whose outcome Rex does not know — by reading Meta, never by sending again.

A write is `unknown` when it went out (it was marked `sending` before the call) and the
answer said nothing certain: a 5xx, a lost connection, an unreadable body. Its truth is
at Meta, and Rex reads it from evidence that another change cannot be mistaken for:

1. **Meta's change history** (`GET /act_…/activities`): an entry for the same object, of
   the event type the write produces (`update_ad_set_budget` …), made through Rex's own
   app, with the value the write set where Meta says, inside the write's time window
   (from when the intent was made to when the call could last have been answered, each
   end widened by the clock allowance). Each entry proves one write only: entries that
   Rex's confirmed writes explain are set aside first. → **applied**.
2. No such entry once the window has closed and REX_SETTLE_DELAY_SECONDS more have
   passed, and nothing about the object contradicts it → **not applied**.
3. The history cannot be read: the object's `updated_time` before the window opened (it
   has not changed at all since before the call) → **not applied**; a copy found by
   its name and creation time → **applied**.

Anything else — the history says nothing but the object changed after the call and now
shows the value the write set, say — is ambiguous: the action stays `unknown`, flagged
for a person (`details.settle.needs_person`), who settles it with
`python -m core actions settle ID --applied|--not-applied`. An unknown action keeps
counting toward cooldowns and caps and holds back other writes to its entity, so the
ambiguity can cost a missed action, never a repeated one.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update

from core.access.actor import Actor
from core.access.audit import record
from core.access.roles import Permission
from core.accounts import client_for
from core.actions.changes import Change, CopyChange, StoredChangeError, change_of
from core.actions.execute import apply_locally
from core.actions.kinds import ActionType
from core.db import read_session, rows_changed, write_session
from core.db.models import UNSETTLED, ActionHistory, ActionStatus, AdAccount, AdEntity, Notification
from core.db.types import utcnow
from core.enums import Level
from core.errors import InputError, NotFoundError, RexError
from core.meta import GraphClient, GraphError, InvalidParameterError, PermissionDeniedError
from core.meta.activities import Activity
from core.meta.objects import ADSET_DELIVERY_FIELDS, ENTITY_FIELDS, EntityInfo
from core.notify.events import EVENTS, Event
from core.settings import get_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    status: ActionStatus  # SUCCEEDED, FAILED, or UNKNOWN (not settled yet / for a person)
    message: str
    evidence: str  # "change history", "object state", "copy by name", "none yet", …
    copied_id: str | None = None
    needs_person: bool = False


def settle_unknown(
    action_ids: list[int] | None = None,
    *,
    engine: Engine | None = None,
    client: GraphClient | None = None,
    now: datetime | None = None,
) -> dict[int, str]:
    """Settle the `unknown` actions among `action_ids` (all of them when None) that are
    not waiting for a person; returns id → status after. Accounts whose Meta cannot be
    read now are left for the next pass."""
    now = now or utcnow()
    with read_session(engine) as session:
        query = select(ActionHistory).where(ActionHistory.status == ActionStatus.UNKNOWN)
        if action_ids is not None:
            query = query.where(ActionHistory.id.in_(action_ids))
        rows = [r for r in session.scalars(query.order_by(ActionHistory.id)) if not _for_person(r)]
        by_account: dict[int, list[ActionHistory]] = defaultdict(list)
        for row in rows:
            by_account[row.account_id].append(row)
        accounts = {
            a.id: a for a in session.scalars(select(AdAccount).where(AdAccount.id.in_(by_account)))
        }
    settled: dict[int, str] = {}
    for account_id, intents in by_account.items():
        account = accounts[account_id]
        try:
            verdicts = _Judge(account, intents, client or client_for(account), now, engine).run()
        except RexError as error:  # Meta or the key cannot be used now: the next pass tries
            log.warning("cannot settle writes of %s now: %s", account.external_id, error)
            continue
        settled.update(_record(engine, intents, verdicts, now))
    apply_locally([i for i, status in settled.items() if status == ActionStatus.SUCCEEDED],
                  engine=engine)  # fmt: skip
    return settled


def unsettled_writes(
    entity_ids: list[int] | None = None, *, engine: Engine | None = None
) -> dict[int, int]:
    """entity id → the id of its oldest write whose outcome is not known yet (pending,
    sending or unknown): no other write to that entity goes out until it is settled."""
    with read_session(engine) as session:
        query = select(ActionHistory.entity_id, ActionHistory.id).where(
            ActionHistory.status.in_(UNSETTLED),
            ActionHistory.entity_id.is_not(None),
            ActionHistory.action_type != ActionType.NOTIFY,
        )
        if entity_ids is not None:
            query = query.where(ActionHistory.entity_id.in_(entity_ids))
        found: dict[int, int] = {}
        for entity_id, action_id in session.execute(query.order_by(ActionHistory.id)):
            if entity_id is not None:
                found.setdefault(entity_id, action_id)
        return found


@dataclass(frozen=True)
class UnknownView:
    id: int
    created_at: datetime
    action_type: str
    entity_name: str | None
    message: str | None
    needs_person: bool


def list_unknown(*, engine: Engine | None = None) -> list[UnknownView]:
    """Writes whose outcome is not known yet, oldest first (for the CLI and Health)."""
    with read_session(engine) as session:
        rows = session.scalars(
            select(ActionHistory)
            .where(ActionHistory.status.in_((ActionStatus.UNKNOWN, ActionStatus.SENDING)))
            .order_by(ActionHistory.id)
        ).all()
        return [
            UnknownView(r.id, r.created_at, r.action_type, r.entity_name, r.error_message,
                        _for_person(r))
            for r in rows
        ]  # fmt: skip


def held_reason(action_id: int) -> str:
    return (
        f"an earlier change to it (action #{action_id}) has not been settled yet — Rex holds "
        "further changes until Meta shows whether it was applied"
    )


def settle_by_person(
    action_id: int,
    *,
    applied: bool,
    by: Actor,
    note: str | None = None,
    engine: Engine | None = None,
    now: datetime | None = None,
) -> ActionHistory:
    """A person who checked the entity in Ads Manager says whether an unknown write was
    applied (one who may roll back on its account). Only `unknown` actions can be
    settled so."""
    now = now or utcnow()
    with write_session(engine) as session:
        row = session.get(ActionHistory, action_id)
        if row is None or not by.can(Permission.READ, row.account_id):
            raise NotFoundError(f"no action with id {action_id}")
        by.require(Permission.ROLL_BACK, row.account_id)
        if row.status != ActionStatus.UNKNOWN:
            raise InputError(
                "action", f"action {action_id} is {row.status}, not unknown: nothing to settle"
            )
        word = "applied" if applied else "not applied"
        row.status = ActionStatus.SUCCEEDED if applied else ActionStatus.FAILED
        row.error_message = None if applied else f"not applied (settled by {by.label})"
        row.can_rollback = applied
        row.finished_at = row.finished_at or now
        row.details = {
            **(row.details or {}),
            "settle": {"by": by.label, "verdict": word, "note": note, "at": now.isoformat()},
        }
        record(session, by, "action.settle", "action", row.id, account_id=row.account_id,
               old={"status": ActionStatus.UNKNOWN.value},
               new={"status": row.status.value, "note": note}, at=now)  # fmt: skip
        session.flush()
        session.expunge(row)
    if applied:
        apply_locally([action_id], engine=engine)
    return row


# ------------------------------------------------------------------------ judging


class _Judge:
    """Weighs the evidence for one account's unknown writes (one history read)."""

    def __init__(
        self,
        account: AdAccount,
        intents: list[ActionHistory],
        client: GraphClient,
        now: datetime,
        engine: Engine | None,
    ) -> None:
        settings = get_settings()
        self.account, self.intents, self.client, self.now = account, intents, client, now
        self.engine = engine
        self.skew = timedelta(seconds=settings.settle_clock_skew_seconds)
        self.delay = timedelta(seconds=settings.settle_delay_seconds)
        self.call_time = timedelta(seconds=settings.graph_timeout_seconds)

    def window(self, intent: ActionHistory) -> tuple[datetime, datetime]:
        """From when the intent was made (the run's clock) to when its call could last
        have been answered (the real clock), each end widened by the clock allowance."""
        starts = [t for t in (intent.created_at, intent.sent_at) if t]
        ends = [t for t in (intent.sent_at, intent.finished_at) if t] or starts
        return min(starts) - self.skew, max(ends) + self.call_time + self.skew

    def run(self) -> dict[int, Verdict]:
        with read_session(self.engine) as session:
            entity_ids = [i.entity_id for i in self.intents if i.entity_id]
            self.entities = {
                e.id: e
                for e in session.scalars(select(AdEntity).where(AdEntity.id.in_(entity_ids)))
            }
        windows = {i.id: self.window(i) for i in self.intents}
        since = min(lo for lo, _ in windows.values())
        history, history_error = self._history(since)
        if history is None and history_error is None:
            return {}  # Meta cannot be read now (a transient error): the next pass tries
        states = self._states()
        verdicts: dict[int, Verdict] = {}
        used: set[int] = set()
        if history is not None:
            used |= self._explained_by_known_writes(history, since)
        for intent in sorted(self.intents, key=lambda i: (i.sent_at or i.created_at, i.id)):
            entity = self.entities.get(intent.entity_id or 0)
            if entity is None:
                verdicts[intent.id] = _for_a_person(intent.id, "the entity is no longer in Rex")
                continue
            verdicts[intent.id] = self._judge(
                intent, entity, windows[intent.id], history, history_error, states, used
            )
        return verdicts

    def _judge(
        self,
        intent: ActionHistory,
        entity: AdEntity,
        window: tuple[datetime, datetime],
        history: list[Activity] | None,
        history_error: str | None,
        states: dict[str, EntityInfo],
        used: set[int],
    ) -> Verdict:
        lo, hi = window
        closed = self.now >= hi + self.delay
        try:
            change = change_of(intent, entity)
        except StoredChangeError as error:
            return _for_a_person(intent.id, str(error))
        if change is None or change.write is None:
            return _for_a_person(intent.id, "the action holds no write Rex can look for")
        creates = isinstance(change, CopyChange)
        state = states.get(change.entity)
        if history is not None:
            index = self._match(history, change, lo, hi, used)
            if index is not None:
                used.add(index)
                event = history[index]
                return Verdict(
                    ActionStatus.SUCCEEDED,
                    f"applied: Meta's change history shows {event.event_type} at "
                    f"{event.event_time:%Y-%m-%d %H:%M:%S} UTC"
                    + (f" through {event.application_name}" if event.application_name else ""),
                    "change history",
                    copied_id=event.object_id if creates else None,
                )
            if not closed:
                return _waiting()
            if not creates and state is not None and change.shown_by(state, lo):
                return _for_a_person(
                    intent.id,
                    "Meta's change history shows no such change, but the object changed after "
                    "the call and now has the value Rex meant to set",
                )
            minutes = max(1, round((self.now - lo).total_seconds() / 60))
            return Verdict(
                ActionStatus.FAILED,
                f"not applied: Meta's change history shows no such change in the {minutes} "
                "min after it was sent; not sent again (the rule decides again at its next run)",
                "change history",
            )
        if not closed:
            return _waiting()
        if isinstance(change, CopyChange):
            return self._copy_by_name(intent.id, change, lo, hi, history_error)
        if state is None:
            return _waiting()  # the object cannot be read now either
        if state.updated_time is not None and state.updated_time < lo:
            return Verdict(
                ActionStatus.FAILED,
                "not applied: Meta shows the object unchanged since before the call "
                f"(updated {state.updated_time:%Y-%m-%d %H:%M:%S} UTC); not sent again",
                "object state",
            )
        return _for_a_person(
            intent.id,
            f"Meta's change history cannot be read ({history_error}) and the object changed "
            "after the call",
        )

    def _match(
        self, history: list[Activity], change: Change, lo: datetime, hi: datetime, used: set[int]
    ) -> int | None:
        app = self.client.app_id()
        for index, event in enumerate(history):
            if index in used or not lo <= event.event_time <= hi:
                continue
            if app and event.application_id and event.application_id != app:
                continue  # someone else's change (a person in Ads Manager, another tool)
            if change.matches(event):
                return index
        return None

    def _explained_by_known_writes(self, history: list[Activity], since: datetime) -> set[int]:
        """Entries that Rex's confirmed writes in the same period account for: they are
        no evidence for an unknown one."""
        object_ids = {e.external_id: e for e in self.entities.values()}
        with read_session(self.engine) as session:
            known = session.scalars(
                select(ActionHistory).where(
                    ActionHistory.account_id == self.account.id,
                    ActionHistory.status == ActionStatus.SUCCEEDED,
                    ActionHistory.entity_id.in_([e.id for e in object_ids.values()]),
                    ActionHistory.created_at >= since - self.call_time,
                )
            ).all()
        used: set[int] = set()
        for row in known:
            entity = self.entities.get(row.entity_id or 0)
            try:
                change = change_of(row, entity) if entity is not None else None
            except StoredChangeError:
                continue
            if change is None or change.write is None:
                continue
            if isinstance(change, CopyChange) and not (row.details or {}).get("copied_id"):
                continue
            lo, hi = self.window(row)
            index = self._match(history, change, lo, hi, used)
            if index is not None:
                used.add(index)
        return used

    def _history(self, since: datetime) -> tuple[list[Activity] | None, str | None]:
        """(the change history, None); (None, why) when Meta will not give it to this
        token at all (a permission it lacks …); (None, None) when it cannot be read now."""
        try:
            return self.client.activities(self.account.external_id, since), None
        except GraphError as error:
            log.info("change history of %s unreadable: %s", self.account.external_id, error)
            if isinstance(error, (PermissionDeniedError, InvalidParameterError)):
                return None, error.describe()
            return None, None

    def _states(self) -> dict[str, EntityInfo]:
        by_level: dict[Level, list[str]] = defaultdict(list)
        for entity in self.entities.values():
            by_level[entity.level].append(entity.external_id)
        states: dict[str, EntityInfo] = {}
        for level, ids in by_level.items():
            # an ad set's targeting and schedule too: what a targeting or schedule write
            # shows by (read only here, when an outcome is unknown: rare)
            extra = ADSET_DELIVERY_FIELDS if level == Level.ADSET else ()
            for answer in self.client.get_objects(ids, (*ENTITY_FIELDS[level], *extra)):
                if isinstance(answer, dict):
                    try:
                        info = EntityInfo.from_graph(level, answer)
                    except GraphError:
                        continue
                    states[info.external_id] = info
        return states

    def _copy_by_name(
        self,
        action_id: int,
        change: CopyChange,
        lo: datetime,
        hi: datetime,
        history_error: str | None,
    ) -> Verdict:
        level = change.level
        try:
            listed = self.client.list_entities(self.account.external_id, level)
        except GraphError as error:
            log.info("cannot list %ss of %s now: %s", level, self.account.external_id, error)
            return _waiting()
        copies = [
            e
            for e in listed
            if e.name == change.name and e.created_time is not None and lo <= e.created_time <= hi
        ]
        if len(copies) == 1:
            return Verdict(
                ActionStatus.SUCCEEDED,
                f"applied: the copy {copies[0].external_id} exists (found by its name and time)",
                "copy by name",
                copied_id=copies[0].external_id,
            )
        if not copies:
            return Verdict(
                ActionStatus.FAILED,
                "not applied: no copy of that name was made in the minutes after the call; "
                "not copied again",
                "copy by name",
            )
        return _for_a_person(
            action_id,
            f"{len(copies)} copies named {change.name!r} were made then; the change history "
            f"cannot be read ({history_error})",
        )


def _waiting() -> Verdict:
    return Verdict(
        ActionStatus.UNKNOWN,
        "outcome unknown: Meta's answer was lost; Rex is reading Meta's change history to "
        "settle it and does not send it again",
        "none yet",
    )


def _for_a_person(action_id: int, why: str) -> Verdict:
    return Verdict(
        ActionStatus.UNKNOWN,
        f"outcome unknown, needs a person: {why}. Check the entity in Ads Manager, then "
        f"`python -m core actions settle {action_id} --applied` (or `--not-applied`)",
        "ambiguous",
        needs_person=True,
    )


def _for_person(row: ActionHistory) -> bool:
    return bool(((row.details or {}).get("settle") or {}).get("needs_person"))


def _record(
    engine: Engine | None, intents: list[ActionHistory], verdicts: dict[int, Verdict], now: datetime
) -> dict[int, str]:
    statuses: dict[int, str] = {}
    with write_session(engine) as session:
        for intent in intents:
            verdict = verdicts.get(intent.id)
            if verdict is None or verdict.evidence == "none yet":  # nothing learnt yet
                statuses[intent.id] = ActionStatus.UNKNOWN
                continue
            settle: dict[str, Any] = {
                "evidence": verdict.evidence,
                "message": verdict.message,
                "checked_at": now.isoformat(),
            }
            if verdict.needs_person:
                settle["needs_person"] = True
            applied = verdict.status == ActionStatus.SUCCEEDED
            values: dict[str, Any] = {
                "status": verdict.status,
                "error_message": None if applied else verdict.message,
                "details": {**(intent.details or {}), "settle": settle,
                            **({"copied_id": verdict.copied_id} if verdict.copied_id else {})},
                "can_rollback": applied,
            }  # fmt: skip
            if verdict.copied_id:
                values["new_value"] = verdict.copied_id
            changed = rows_changed(
                session,
                update(ActionHistory)
                .where(ActionHistory.id == intent.id, ActionHistory.status == ActionStatus.UNKNOWN)
                .values(**values)
                .execution_options(synchronize_session=False),
            )
            if changed:
                statuses[intent.id] = verdict.status
                if verdict.needs_person:
                    session.add(
                        Notification(
                            account_id=intent.account_id,
                            rule_id=intent.rule_id,
                            kind=Event.OUTCOME_UNKNOWN,
                            link=EVENTS[Event.OUTCOME_UNKNOWN].page,
                            title=f"Check action #{intent.id} ({intent.action_type} on "
                            f"{intent.entity_name}): Rex cannot tell whether Meta applied it",
                            body=verdict.message,
                            created_at=now,
                        )
                    )
    return statuses
