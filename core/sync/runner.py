"""Sync: make Rex's copy of each ad account match what Meta reports.

Per account, in order: account fields → campaigns, ad sets, ads (paused and archived
included; entities Meta stopped listing are read by id) → daily metrics at campaign,
ad set and ad level → the four breakdown tables. Metric days are the account's local
days; every sync re-reads its whole window (default 30 days, ≥ Meta's 28-day
attribution look-back) because Meta keeps revising recent numbers, and `reconcile`
writes only what changed, so running it twice changes nothing.

An account's insights reads (three levels of daily metrics, six breakdown calls) are
started together once its entities are stored; async reports are waited for on up to
REX_SYNC_ASYNC_CONCURRENCY threads (`core.sync.reads`), and their results are taken in
the order above, on the calling thread, which alone writes and reports progress — so a
sync stores, counts and reports what it would one report at a time, in the same order.
A failed read fails the account where the sequential sync would have (earlier parts
stored), and the reads still running are abandoned.

One account's failure does not stop the others: a rejected token marks the account
"needs reconnect", a rate limit records when calls may resume, a key that cannot decrypt
the token fails that account's run (recorded) and the next account is tried.

Meta's answers are validated at the boundary (`core.meta.objects`). The account's own
answer must be usable whole — its id the one asked for, a currency and time zone Rex
knows — or the account's sync fails and nothing of it is stored. Of the many objects and
rows a sync lists, only the bad ones are refused: they are counted under "rejected" in
the run's counts, the first few reasons become a warning line in the run's error and the
account's last_sync_error, and the sync succeeds with the valid rest. A slice with
refused rows keeps its stored rows that Meta did not report again (see `reconcile`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from core.accounts import client_for, get_account, hold_for_token
from core.db import read_session, write_session
from core.db.errors import database_error
from core.db.models import AdAccount, AdEntity, AdMetric, Level, SyncRun, SyncStatus, TokenStatus
from core.db.types import utcnow
from core.errors import RexError
from core.ids import account_digits
from core.meta import GraphClient, GraphError, ObjectGoneError, RateLimitedError, TokenInvalidError
from core.meta.objects import (
    INSIGHT_FIELDS,
    AccountInfo,
    EntityInfo,
    InsightRow,
    InvalidAnswerError,
)
from core.money import MoneyError, check_currency
from core.process import process_name
from core.settings import get_settings
from core.sync.breakdowns import BREAKDOWN_CALLS, BREAKDOWN_TABLES, BreakdownTable
from core.sync.reads import Reads
from core.sync.reconcile import ReconcileCounts, reconcile

log = logging.getLogger(__name__)

_ENTITY_FIELDS = (
    "name",
    "status",
    "effective_status",
    "meta_campaign_id",
    "meta_adset_id",
    "daily_budget_minor",
    "lifetime_budget_minor",
    "budget_remaining_minor",
    "bid_amount_minor",
    "objective",
    "created_time",
    "updated_time",
)
# account, the three entity levels, daily metrics, then each breakdown call
STEPS = 1 + len(Level) + 1 + BREAKDOWN_CALLS
REASONS_KEPT = 5  # refusal reasons kept in a run's counts (the rest are counted)

# What one insights read gives back: its rows, and the answers refused as invalid, in
# Meta's order (the caller records the refusals in that order, as it reads the rows).
Answers = list[InsightRow | InvalidAnswerError]


@dataclass(frozen=True)
class Progress:
    """One step of a sync, for a progress bar: `done` of `total` steps of this account."""

    account: str
    step: str
    done: int
    total: int
    detail: str = ""


ProgressCallback = Callable[[Progress], None]


@dataclass
class SyncResult:
    account: str
    status: SyncStatus
    since: date | None = None
    until: date | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == SyncStatus.SUCCEEDED


@dataclass
class SyncOptions:
    days: int | None = None
    breakdowns: bool = True
    now: datetime | None = None  # the instant "today" is taken from (tests, replays)
    client_options: dict[str, Any] = field(default_factory=dict)
    async_concurrency: int | None = None  # default: REX_SYNC_ASYNC_CONCURRENCY


def sync_accounts(
    accounts: Sequence[str] | None = None,
    *,
    options: SyncOptions | None = None,
    progress: ProgressCallback | None = None,
    engine: Engine | None = None,
) -> list[SyncResult]:
    """Sync the given accounts (external ids like act_…), or every connected one."""
    options = options or SyncOptions()
    if accounts:
        ids = [get_account(account, engine=engine).id for account in accounts]
    else:
        with read_session(engine) as session:
            ids = list(
                session.scalars(
                    select(AdAccount.id).where(AdAccount.connected).order_by(AdAccount.id)
                )
            )
    return [
        sync_account(account_id, options=options, progress=progress, engine=engine)
        for account_id in ids
    ]


def sync_account(
    account_id: int,
    *,
    options: SyncOptions | None = None,
    progress: ProgressCallback | None = None,
    engine: Engine | None = None,
) -> SyncResult:
    options = options or SyncOptions()
    started = time.monotonic()
    with read_session(engine) as session:
        account = session.get_one(AdAccount, account_id)
    result = SyncResult(account=account.external_id, status=SyncStatus.RUNNING)

    if account.token_status == TokenStatus.NEEDS_RECONNECT:
        result.status = SyncStatus.FAILED
        result.error = "the access token was rejected earlier: reconnect the account first"
        _notify(progress, Progress(account.external_id, "skipped", 1, 1, result.error))
        return result

    with write_session(engine) as session:
        run = SyncRun(account_id=account.id, status=SyncStatus.RUNNING, owner=process_name())
        session.add(run)
        session.flush()
        run_id = run.id

    job = _AccountSync(account, options, progress, engine)
    try:  # everything that may fail is inside: the run row is always closed
        job.run()
    except (GraphError, RexError) as error:
        result.status, result.error = SyncStatus.FAILED, _describe(error)
        _record_failure(account.id, error, engine)
        log.warning("sync %s failed: %s", account.external_id, result.error)
    except Exception as error:
        trouble = database_error(error)
        if trouble is not None:  # the database itself: nothing can be recorded; say so
            raise trouble from None
        # a bug: record it, keep the other accounts going
        result.status, result.error = SyncStatus.FAILED, f"internal error: {type(error).__name__}"
        log.exception("sync %s crashed", account.external_id)
    else:
        result.status = SyncStatus.SUCCEEDED
        result.error = job.rejected.warning()
    if job.rejected.total:
        job.counts["rejected"] = job.rejected.as_dict()
    result.since, result.until, result.counts = job.since, job.until, job.counts
    result.seconds = time.monotonic() - started
    _finish(account.id, run_id, result, engine)
    return result


class _AccountSync:
    def __init__(
        self,
        account: AdAccount,
        options: SyncOptions,
        progress: ProgressCallback | None,
        engine: Engine | None,
    ) -> None:
        settings = get_settings()
        self.account = account
        self.options = options
        self.progress = progress
        self.engine = engine
        self.days = options.days or settings.sync_days
        self.use_async = self.days >= settings.sync_async_min_days
        # Synchronous reads answer at once: only async reports are waited for in parallel.
        self.concurrency = (
            (options.async_concurrency or settings.sync_async_concurrency) if self.use_async else 1
        )
        self.reads: Reads[Answers] | None = None  # the account's insights reads, in run()
        self.breakdown_level = settings.breakdown_level
        self.client: GraphClient | None = None  # made in run(): decrypting may fail
        self.counts: dict[str, Any] = {}
        self.rejected = Rejections()
        self.since: date | None = None
        self.until: date | None = None
        self.total = STEPS if options.breakdowns else STEPS - BREAKDOWN_CALLS
        self.done = 0
        self.entity_ids: dict[str, int] = {}

    def step(self, name: str, detail: str = "") -> None:
        self.done += 1
        _notify(
            self.progress, Progress(self.account.external_id, name, self.done, self.total, detail)
        )

    def run(self) -> None:
        self.client = client_for(self.account, **self.options.client_options)
        info = self.client.get_account(self.account.external_id)
        self.save_account(info)
        today = (self.options.now or utcnow()).astimezone(ZoneInfo(info.timezone_name)).date()
        self.until = today
        self.since = today - timedelta(days=self.days - 1)
        self.step("account", f"{info.name} · {info.currency} · {info.timezone_name}")

        self.sync_entities()
        with Reads[Answers](self.concurrency) as self.reads:
            for level, breakdowns in self.insight_calls():
                self.reads.submit((level, breakdowns), self.read_insights(level, breakdowns))
            self.sync_metrics()
            if self.options.breakdowns:
                for table in BREAKDOWN_TABLES:
                    self.sync_breakdown(table)

    def insight_calls(self) -> list[tuple[Level, tuple[str, ...]]]:
        """The account's insights reads, (level, breakdowns), in the order they are used."""
        calls: list[tuple[Level, tuple[str, ...]]] = [(level, ()) for level in Level]
        if self.options.breakdowns:
            calls += [
                (self.breakdown_level, call) for table in BREAKDOWN_TABLES for call in table.calls
            ]
        return calls

    # ------------------------------------------------------------------ account

    def save_account(self, info: AccountInfo) -> None:
        """Store the account's fields — only when the answer is this account's and keeps
        its money meaning (Meta never changes an ad account's currency: a different one
        would re-read every stored budget in another unit)."""
        what = f"the ad account answer for {self.account.external_id}"
        if info.external_id != self.account.external_id:
            raise InvalidAnswerError(what, "id", info.external_id, self.account.external_id)
        if info.currency != self.account.currency and _known_currency(self.account.currency):
            raise InvalidAnswerError(
                what,
                "currency",
                info.currency,
                f"{self.account.currency}, the currency it was connected with (Meta does "
                "not change an account's currency; reconnect it if this is really so)",
            )
        with write_session(self.engine) as session:
            row = session.get_one(AdAccount, self.account.id)
            row.name = info.name
            row.currency = info.currency
            row.timezone_name = info.timezone_name
            row.account_status = info.account_status
            row.min_daily_budget_minor = info.min_daily_budget_minor
            row.token_checked_at = utcnow()

    # ----------------------------------------------------------------- entities

    def sync_entities(self) -> None:
        listed: dict[str, EntityInfo] = {}
        for level in Level:
            entities = self.list_entities(level)
            listed.update((entity.external_id, entity) for entity in entities)
            self.step(f"{level}s", f"{len(entities)} {level}s")

        with read_session(self.engine) as session:
            known: dict[str, Level] = {
                external_id: level
                for external_id, level in session.execute(
                    select(AdEntity.external_id, AdEntity.level).where(
                        AdEntity.account_id == self.account.id
                    )
                )
            }
        unlisted = {
            external_id: level for external_id, level in known.items() if external_id not in listed
        }
        gone = self.read_unlisted(unlisted, listed)

        counts = {"inserted": 0, "updated": 0, "unchanged": 0, "gone": len(gone)}
        with write_session(self.engine) as session:
            rows = {
                row.external_id: row
                for row in session.scalars(
                    select(AdEntity).where(AdEntity.account_id == self.account.id)
                )
            }
            now = utcnow()
            for level in Level:  # parents before children
                for entity in (e for e in listed.values() if e.level == level):
                    self.upsert_entity(session, rows, entity, now, counts)
            for external_id in gone:
                row = rows[external_id]
                if row.status != "DELETED" or row.effective_status != "DELETED":
                    row.status = row.effective_status = "DELETED"
                    row.updated_at = now
                    counts["updated"] += 1
            session.flush()
            self.entity_ids = {external_id: row.id for external_id, row in rows.items()}
        self.counts["entities"] = counts

    def read_unlisted(self, unlisted: dict[str, Level], listed: dict[str, EntityInfo]) -> list[str]:
        """Entities Rex knows that Meta's edges no longer list: deleted ones are still
        readable by id. Returns the ids Meta no longer knows at all."""
        if not unlisted:
            return []
        ids = sorted(unlisted)
        fields = (
            "id",
            "name",
            "status",
            "effective_status",
            "campaign_id",
            "adset_id",
            "daily_budget",
            "lifetime_budget",
        )
        gone = []
        assert self.client is not None
        for external_id, answer in zip(ids, self.client.get_objects(ids, fields), strict=True):
            if isinstance(answer, ObjectGoneError):
                gone.append(external_id)
            elif isinstance(answer, GraphError):
                raise answer
            else:
                level = unlisted[external_id]
                try:
                    entity = EntityInfo.from_graph(level, answer)
                except InvalidAnswerError as error:
                    self.rejected.add(level, error)  # the stored row stays as it was
                    continue
                if entity.external_id != external_id:
                    self.rejected.add(
                        level, InvalidAnswerError(level, "id", entity.external_id, external_id)
                    )
                    continue
                listed[external_id] = entity
        return gone

    def list_entities(self, level: Level) -> list[EntityInfo]:
        """The level's edge, every item validated; bad ones are refused, one by one."""
        assert self.client is not None
        return self.client.list_entities(
            self.account.external_id, level, on_invalid=lambda e: self.rejected.add(level, e)
        )

    def upsert_entity(
        self,
        session: Any,
        rows: dict[str, AdEntity],
        entity: EntityInfo,
        now: datetime,
        counts: dict[str, int],
    ) -> None:
        parent = rows.get(entity.parent_external_id or "")
        values = {
            "name": entity.name,
            "status": entity.status,
            "effective_status": entity.effective_status,
            "meta_campaign_id": entity.campaign_id,
            "meta_adset_id": entity.adset_id,
            "daily_budget_minor": entity.daily_budget_minor,
            "lifetime_budget_minor": entity.lifetime_budget_minor,
            "budget_remaining_minor": entity.budget_remaining_minor,
            "bid_amount_minor": entity.bid_amount_minor,
            "objective": entity.objective,
            "created_time": entity.created_time,
            "updated_time": entity.updated_time,
        }
        row = rows.get(entity.external_id)
        if row is None:
            row = AdEntity(
                account_id=self.account.id,
                level=entity.level,
                external_id=entity.external_id,
                parent_id=parent.id if parent else None,
                first_seen_at=now,
                updated_at=now,
                **values,
            )
            session.add(row)
            session.flush()  # children need the id
            rows[entity.external_id] = row
            counts["inserted"] += 1
            return
        parent_id = parent.id if parent else row.parent_id
        changed = row.parent_id != parent_id or any(
            getattr(row, name) != values[name] for name in _ENTITY_FIELDS
        )
        if changed:
            for name, value in values.items():
                setattr(row, name, value)
            row.parent_id = parent_id
            row.updated_at = now
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1

    # ------------------------------------------------------------------ metrics

    def sync_metrics(self) -> None:
        rows: list[dict[str, Any]] = []
        unmatched = 0
        refused_before = self.rejected.total
        for level in Level:
            for insight in self.insights(level, (), "metrics"):
                row = self.metric_row(level, insight)
                if row is None:
                    unmatched += 1
                else:
                    rows.append(row)
        with write_session(self.engine) as session:
            counts = reconcile(
                session,
                AdMetric,
                scope=[
                    AdMetric.account_id == self.account.id,
                    AdMetric.date >= self.since,
                    AdMetric.date <= self.until,
                ],
                key=("entity_id", "date"),
                rows=rows,
                delete_missing=self.rejected.total == refused_before,
            )
        self.counts["metrics"] = {**counts.as_dict(), "rows": len(rows), "unmatched": unmatched}
        self.step("daily metrics", f"{len(rows)} rows for {self.since} … {self.until}")

    def sync_breakdown(self, table: BreakdownTable) -> None:
        rows: list[dict[str, Any]] = []
        refused_before = self.rejected.total
        for call in table.calls:
            for insight in self.insights(self.breakdown_level, call, table.name):
                row = self.metric_row(self.breakdown_level, insight)
                if row is None:
                    continue
                try:
                    key = table.row_key(call, insight.segment, _describe_row(insight))
                except InvalidAnswerError as error:
                    self.rejected.add(table.name, error)
                    continue
                rows.append({**row, **key})
            self.step(f"{table.name} ({','.join(call)})")
        model = table.model
        with write_session(self.engine) as session:
            counts: ReconcileCounts = reconcile(
                session,
                model,
                scope=[
                    model.account_id == self.account.id,
                    model.date >= self.since,
                    model.date <= self.until,
                ],
                key=("entity_id", "date", *table.key),
                rows=rows,
                delete_missing=self.rejected.total == refused_before,
            )
        self.counts[table.name] = {**counts.as_dict(), "rows": len(rows)}

    def read_insights(
        self, level: Level, breakdowns: tuple[str, ...]
    ) -> Callable[[threading.Event], Answers]:
        """One insights read of the sync's range, to run on a worker thread: Graph calls
        only, touching nothing of the sync's state (the client is safe to share)."""
        client, since, until = self.client, self.since, self.until
        assert client is not None and since is not None and until is not None
        account, use_async = self.account.external_id, self.use_async  # no ORM in threads

        def read(stop: threading.Event) -> Answers:
            answers: Answers = []
            for row in client.insights(
                account,
                level=level,
                since=since,
                until=until,
                fields=INSIGHT_FIELDS,
                breakdowns=breakdowns,
                use_async=use_async,
                on_invalid=answers.append,
                stop=stop,
            ):
                answers.append(row)
            return answers

        return read

    def insights(self, level: Level, breakdowns: Sequence[str], kind: str) -> list[InsightRow]:
        """Daily rows of the sync's range (the read's result, waited for here); a row that
        is not valid, is dated outside the range or belongs to another account is refused
        (counted under `kind`)."""
        assert self.reads is not None
        own = account_digits(self.account.external_id)
        rows = []
        for row in self.reads.result((level, tuple(breakdowns))):
            if isinstance(row, InvalidAnswerError):
                self.rejected.add(kind, row)
                continue
            if row.ids.get("account_id", own) != own:
                error = InvalidAnswerError(
                    _describe_row(row), "account_id", row.ids["account_id"], own
                )
                self.rejected.add(kind, error)
                continue
            rows.append(row)
        return rows

    def metric_row(self, level: Level, insight: InsightRow) -> dict[str, Any] | None:
        entity_id = self.entity_ids.get(insight.ids.get(f"{level}_id", ""))
        if entity_id is None:
            return None
        return {
            "account_id": self.account.id,
            "entity_id": entity_id,
            "date": insight.date_start,
            **insight.metrics(),
        }


class Rejections:
    """What a sync refused of Meta's answers: counts by kind, the first few reasons."""

    def __init__(self) -> None:
        self.by_kind: dict[str, int] = {}
        self.reasons: list[str] = []

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())

    def add(self, kind: str, error: InvalidAnswerError) -> None:
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        if len(self.reasons) < REASONS_KEPT:  # a flood of garbage is counted, not logged
            self.reasons.append(error.describe())
            log.warning("sync refused %s: %s", kind, error.describe())

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, **self.by_kind, "reasons": list(self.reasons)}

    def warning(self) -> str | None:
        """One line for the run and the account, or None when nothing was refused."""
        if not self.total:
            return None
        kinds = ", ".join(f"{n} {kind}" for kind, n in self.by_kind.items())
        return (
            f"warning: refused {self.total} of Meta's objects or rows as invalid ({kinds}); "
            f"the rest synced. First: {'; '.join(self.reasons[:2])}"
        )


def _describe_row(row: InsightRow) -> str:
    ids = "".join(f" {key[:-3]} {value}" for key, value in row.ids.items())
    return f"insights row{ids} of {row.date_start}"


def _known_currency(code: str) -> bool:
    try:
        check_currency(code)
    except MoneyError:
        return False
    return True


# ---------------------------------------------------------------------- recording


def _record_failure(account_id: int, error: Exception, engine: Engine | None) -> None:
    with write_session(engine) as session:
        row = session.get_one(AdAccount, account_id)
        if isinstance(error, TokenInvalidError):
            hold_for_token(session, row, _describe(error))
        if isinstance(error, RateLimitedError):
            row.rate_limited_until = error.regain_at


def _finish(account_id: int, run_id: int, result: SyncResult, engine: Engine | None) -> None:
    now = utcnow()
    with write_session(engine) as session:
        run = session.get_one(SyncRun, run_id)
        run.finished_at = now
        run.status = result.status
        run.since, run.until = result.since, result.until
        run.counts = result.counts
        run.error = result.error
        row = session.get_one(AdAccount, account_id)
        row.last_sync_status = result.status
        row.last_sync_error = result.error
        if result.ok:
            row.last_sync_at = now
            row.rate_limited_until = None


def _describe(error: Exception) -> str:
    return error.explain() if isinstance(error, GraphError) else str(error)


def _notify(progress: ProgressCallback | None, event: Progress) -> None:
    if progress is not None:
        progress(event)
