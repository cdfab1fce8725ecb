"""The scheduler sidecar: `python -m core.scheduler` — Rex running unattended.

APScheduler 3.11 (BackgroundScheduler) with its known traps designed out:

* every job has an explicit id, `replace_existing=True`, `coalesce=True`,
  `max_instances=1` and a misfire grace that suits it (the default of 1 s silently
  skips late runs); every network call inside has a timeout (the Graph client's);
* exceptions and missed runs are recorded in `scheduler_events` by a listener, and each
  job's last outcome and duration in this process's `scheduler_heartbeats` row;
* SIGTERM / SIGINT: no new work, work in hand gets `REX_SCHEDULER_STOP_SECONDS` to
  finish, then its claims are released and the process exits 0;
* several processes: rules are claimed with leases (core.engine.claim) and shared jobs
  (syncs) take a named lease, so each piece of work is done once. The lease of a running
  job is short (`job_lease_seconds`, 2 min, or just under a shorter job's interval) and
  renewed every `lease_renew_seconds` (30 s; a third of a shorter lease) while the job
  runs, so a replica killed mid-sync holds it up for two minutes at most;
  when the job ends, the lease stays until its next run is due, so other replicas do not
  repeat the same sync meanwhile. On SQLite a second scheduler refuses to start (a lock
  on a file beside the database);
* the key check (core.crypto.verify_key) comes first in `start`: with a missing or
  changed key the scheduler stops with one message before it writes anything.

One structured log line per job run: `job=… outcome=… duration_ms=…` (the frequent
`notifications` job: only when it did something).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, false, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from core.access.actor import SYSTEM
from core.db import read_session, rows_changed, write_session
from core.db.models import (
    AdAccount,
    AutomationRule,
    DeliveryStatus,
    ExecutionStatus,
    NotificationDelivery,
    RuleStatus,
    SchedulerEvent,
    SchedulerHeartbeat,
    SchedulerLease,
    SyncRun,
    SyncStatus,
    TokenStatus,
)
from core.db.types import utcnow
from core.errors import RexError
from core.settings import Settings, get_settings

log = logging.getLogger("rex.scheduler")


class SchedulerLockedError(RexError):
    """Another scheduler already runs on this SQLite database."""


@dataclass(frozen=True)
class JobSpec:
    id: str
    seconds: int
    misfire_grace: int  # how late a run may start and still run
    func: Callable[[], Any]
    shared: bool = False  # one replica at a time (named lease)
    quiet: bool = False  # frequent: its log line only when it did something


@dataclass
class Scheduler:
    settings: Settings = field(default_factory=get_settings)
    engine: Engine | None = None
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    # set by SIGTERM / SIGINT (python -m core.scheduler installs the handlers first thing)
    stop_event: threading.Event = field(default_factory=threading.Event)
    job_lease_seconds: float = 120.0  # a running shared job's lease …
    lease_renew_seconds: float = 30.0  # … renewed this often while it runs

    def __post_init__(self) -> None:
        self.runner = f"{self.host}:{self.pid}"
        self.stats: dict[str, dict[str, Any]] = {}
        self.active = 0
        self._active_lock = threading.Lock()
        self._running_leases: set[str] = set()  # shared jobs in hand (their leases renewed)
        self.heartbeat_id: int | None = None
        self._lock_file: Any = None
        self.aps = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=4)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
        )
        self.aps.add_listener(
            self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )

    # ----------------------------------------------------------------- the jobs

    def job_specs(self) -> list[JobSpec]:
        s = self.settings
        return [
            JobSpec(
                "engine_tick",
                s.scheduler_tick_seconds,
                max(5, s.scheduler_tick_seconds // 2),
                self.engine_tick,
            ),
            JobSpec(
                "recent_sync", s.scheduler_sync_minutes * 60, 300, self.recent_sync, shared=True
            ),
            JobSpec(
                "breakdown_sync",
                s.scheduler_breakdown_minutes * 60,
                900,
                self.breakdown_sync,
                shared=True,
            ),
            JobSpec("nightly_lookback", 900, 600, self.nightly_lookback),
            JobSpec("approvals_expiry", 300, 300, self.expire_approvals),
            JobSpec("suggestions", 300, 300, self.suggestions),
            JobSpec("outcomes", 3600, 3600, self.outcomes),
            JobSpec(
                "notifications",
                s.notify_seconds,
                max(5, s.notify_seconds),
                self.notifications,
                shared=True,
                quiet=True,
            ),
            JobSpec("recovery", 60, 60, self.recover),
            JobSpec("heartbeat", 15, 15, self.beat),
        ]

    def register(self) -> None:
        start = datetime.now(UTC) + timedelta(seconds=1)
        for spec in self.job_specs():
            self.aps.add_job(
                self._instrument(spec),
                trigger=IntervalTrigger(seconds=spec.seconds, timezone=UTC),
                id=spec.id,
                name=spec.id,
                replace_existing=True,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=spec.misfire_grace,
                next_run_time=start,
            )

    def engine_tick(self) -> dict[str, Any]:
        from core.engine.run import run_due_rules

        now = utcnow()
        refreshed = self._refresh_due_accounts(now)
        stale_after = timedelta(minutes=self.settings.stale_after_minutes)
        results = run_due_rules(
            now, runner=self.runner, stale_after=stale_after, engine=self.engine
        )
        return {
            "rules": len(results),
            "ran": self._rules_ran([r.rule_id for r in results]),
            "refreshed": refreshed,
            "actions": sum(r.actions_taken for r in results),
            "failed": sum(r.status == ExecutionStatus.FAILED for r in results),
        }

    def _rules_ran(self, rule_ids: list[int], shown: int = 5) -> str:
        """The rules a tick ran, for its log line: `"#3 Scale winners, #5 Stop losers"`,
        the first few by id and "+N more" (quoted: names have spaces)."""
        if not rule_ids:
            return "none"
        with read_session(self.engine) as session:
            names = dict(
                session.execute(
                    select(AutomationRule.id, AutomationRule.name).where(
                        AutomationRule.id.in_(rule_ids[:shown])
                    )
                ).all()
            )
        words = ", ".join(f"#{i} {names.get(i, '?')}" for i in rule_ids[:shown])
        if len(rule_ids) > shown:
            words += f", +{len(rule_ids) - shown} more"
        return json.dumps(words, ensure_ascii=False)

    def recent_sync(self) -> dict[str, Any]:
        return self._sync(days=3, breakdowns=False, every=self.settings.scheduler_sync_minutes)

    def breakdown_sync(self) -> dict[str, Any]:
        return self._sync(days=3, breakdowns=True, every=self.settings.scheduler_breakdown_minutes)

    def nightly_lookback(self) -> dict[str, Any]:
        """The 28-day re-sync, once a day per account at its quiet local hour."""
        from core.sync.runner import SyncOptions, sync_account

        now = utcnow()
        done = []
        for account_id, external_id, tz in self._accounts():
            local = now.astimezone(ZoneInfo(tz))
            if local.hour != self.settings.scheduler_lookback_hour:
                continue
            lease = f"lookback:{external_id}:{local.date().isoformat()}"
            if not self.try_lease(lease, timedelta(days=2), now, again=False):
                continue  # done today already (here or by another replica)
            sync_account(account_id, options=SyncOptions(days=28), engine=self.engine)
            done.append(external_id)
        return {"accounts": done}

    def expire_approvals(self) -> dict[str, Any]:
        from core.actions.approvals import expire_approvals

        return {"expired": expire_approvals(utcnow(), engine=self.engine)}

    def suggestions(self) -> dict[str, Any]:
        """Suggestions decided elsewhere moved on (the approval queue, a settled write);
        once a day, at `REX_SUGGESTIONS_HOUR` UTC, generated again for every account."""
        from core.suggestions.apply import settle_suggestions
        from core.suggestions.generate import generate

        now = utcnow()
        settled = settle_suggestions(engine=self.engine, now=now)
        if now.hour != self.settings.suggestions_hour:
            return {"settled": settled}
        day = f"suggestions:{now.date().isoformat()}"
        if not self.try_lease(day, timedelta(days=2), now, again=False):
            return {"settled": settled}  # generated today already (here or by a replica)
        result = generate(engine=self.engine, now=now, by=SYSTEM)
        total = result.total
        return {"settled": settled, "new": len(total.new), "expired": len(total.expired),
                "skipped": sorted(result.skipped)}  # fmt: skip

    def outcomes(self) -> dict[str, Any]:
        """Once a day (the first hourly check of each UTC day, here or on a replica): the
        outcomes of the changes applied since, and the checkpoints whose days settled."""
        from core.outcomes.record import update_outcomes

        now = utcnow()
        if not self.try_lease(f"outcomes:{now.date().isoformat()}", timedelta(days=2), now,
                              again=False):  # fmt: skip
            return {"skipped": "measured today already"}
        done = update_outcomes(now=now, engine=self.engine)
        return {"started": done.started, "measured": len(done.measured), "waiting": done.waiting}

    def notifications(self) -> dict[str, Any]:
        """Tell people what happened (core/notify): new failures and proposals become
        notifications, each gets its recipients, and what is due is delivered."""
        from core.notify.deliver import deliver_due
        from core.notify.digest import make_digests
        from core.notify.outbox import publish

        now = utcnow()
        digests = make_digests(now, engine=self.engine)
        published = publish(now, engine=self.engine)
        done = deliver_due(now, runner=self.runner, engine=self.engine, stop=self.stop_event)
        return {"new": published.fanned_out, "queued": published.deliveries, "digests": digests,
                "sent": done.sent, "retrying": done.retrying, "failed": done.failed,
                "unknown": done.unknown}  # fmt: skip

    def recover(self) -> dict[str, Any]:
        from core.scheduler.recovery import recover

        lease = timedelta(seconds=self.settings.engine_lease_seconds)
        return recover(utcnow(), lease, engine=self.engine)

    def beat(self) -> dict[str, Any]:
        with write_session(self.engine) as session:
            row = session.get_one(SchedulerHeartbeat, self.heartbeat_id)
            row.last_tick_at = utcnow()
            row.jobs = json.loads(json.dumps(self.stats, default=str))
        return {}

    # ------------------------------------------------------------------ helpers

    def _sync(self, *, days: int, breakdowns: bool, every: int) -> dict[str, Any]:
        """Sync every account, except those a sync covering the same days (and the
        breakdowns, if asked) already read within half the job's interval: `make run`'s
        first sync, say, just before the scheduler started."""
        from core.sync.runner import SyncOptions, sync_account

        fresh = self._synced_since(utcnow() - timedelta(minutes=every / 2), days, breakdowns)
        options = SyncOptions(days=days, breakdowns=breakdowns)
        results = [
            sync_account(account_id, options=options, engine=self.engine)
            for account_id, _, _ in self._accounts()
            if account_id not in fresh
        ]
        return {
            "synced": sum(r.ok for r in results),
            "failed": sum(not r.ok for r in results),
            "fresh": len(fresh),
        }

    def _synced_since(self, since: datetime, days: int, breakdowns: bool) -> set[int]:
        from core.sync.breakdowns import BREAKDOWN_TABLES

        with read_session(self.engine) as session:
            runs = session.execute(
                select(SyncRun.account_id, SyncRun.since, SyncRun.until, SyncRun.counts).where(
                    SyncRun.status == SyncStatus.SUCCEEDED, SyncRun.started_at >= since
                )
            ).all()
        return {
            account_id
            for account_id, first, last, counts in runs
            if first is not None
            and last is not None
            and (last - first).days + 1 >= days
            and (not breakdowns or all(t.name in counts for t in BREAKDOWN_TABLES))
        }

    def _refresh_due_accounts(self, now: datetime) -> int:
        """Numbers older than REX_SCHEDULER_FRESH_MINUTES are refreshed before a due rule
        acts on them (entities and the last 2 days), so a change reaches its action fast."""
        from core.sync.runner import SyncOptions, sync_account

        minutes = self.settings.scheduler_fresh_minutes
        if not minutes:
            return 0
        with read_session(self.engine) as session:
            due = session.scalars(
                select(AutomationRule.document).where(
                    AutomationRule.status == RuleStatus.ACTIVE,
                    AutomationRule.next_execution_at <= now,
                )
            ).all()
            scoped = {a for doc in due for a in (doc.get("scope") or {}).get("account_ids", [])}
            everything = any(not (doc.get("scope") or {}).get("account_ids") for doc in due)
            query = select(AdAccount).where(
                AdAccount.token_status == TokenStatus.OK, AdAccount.connected
            )
            if not everything:
                query = query.where(AdAccount.external_id.in_(scoped))
            accounts = session.scalars(query).all() if due else []
        refreshed = 0
        for account in accounts:
            if account.last_sync_at and account.last_sync_at > now - timedelta(minutes=minutes):
                continue
            if not self.try_lease(f"fresh:{account.external_id}", timedelta(minutes=minutes), now):
                continue
            sync_account(
                account.id, options=SyncOptions(days=2, breakdowns=False), engine=self.engine
            )
            refreshed += 1
        return refreshed

    def _accounts(self) -> list[tuple[int, str, str]]:
        with read_session(self.engine) as session:
            return [
                (a.id, a.external_id, a.timezone_name)
                for a in session.scalars(
                    select(AdAccount).where(AdAccount.connected).order_by(AdAccount.id)
                )
            ]

    def try_lease(
        self, name: str, ttl: timedelta, now: datetime | None = None, *, again: bool = True
    ) -> bool:
        """Take the named lease if it is free or expired (or already ours, unless `again`
        is False: then a lease for work done once — a day's re-sync — is taken once)."""
        now = now or utcnow()
        ours = SchedulerLease.holder == self.runner if again else false()
        try:
            with write_session(self.engine) as session:
                if session.get(SchedulerLease, name) is None:
                    session.add(SchedulerLease(name=name, holder=self.runner, expires_at=now + ttl))
                    session.flush()
                    return True
                taken = rows_changed(
                    session,
                    update(SchedulerLease)
                    .where(
                        SchedulerLease.name == name,
                        (SchedulerLease.expires_at < now) | ours,
                    )
                    .values(holder=self.runner, expires_at=now + ttl)
                    .execution_options(synchronize_session=False),
                )
                return taken == 1
        except IntegrityError:
            return False  # another replica inserted it first

    def renew_lease(self, name: str, ttl: timedelta) -> bool:
        """Push our lease's expiry to now + ttl; False when it is no longer ours."""
        with write_session(self.engine) as session:
            renewed = rows_changed(
                session,
                update(SchedulerLease)
                .where(SchedulerLease.name == name, SchedulerLease.holder == self.runner)
                .values(expires_at=utcnow() + ttl)
                .execution_options(synchronize_session=False),
            )
        return renewed == 1

    def _finish_lease(self, name: str, next_due: datetime) -> None:
        """The job ended: keep the lease until its next run is due (other replicas would
        only repeat it), or give it up now if that time has passed."""
        with write_session(self.engine) as session:
            session.execute(
                update(SchedulerLease)
                .where(SchedulerLease.name == name, SchedulerLease.holder == self.runner)
                .values(expires_at=max(utcnow(), next_due))
                .execution_options(synchronize_session=False)
            )

    def _instrument(self, spec: JobSpec) -> Callable[[], Any]:
        def run() -> Any:
            if self.stop_event.is_set():
                return None
            keeper: _LeaseKeeper | None = None
            if spec.shared:
                lease, begun = f"job:{spec.id}", utcnow()
                ttl = timedelta(seconds=min(self.job_lease_seconds, max(1, spec.seconds - 1)))
                if not self.try_lease(lease, ttl, begun):
                    self._record_stats(spec.id, "skipped (another replica)", 0.0)
                    return None
                # renewed well within its ttl (a 15 s job's lease lasts 14 s)
                every = min(self.lease_renew_seconds, ttl.total_seconds() / 3)
                keeper = _LeaseKeeper(self, lease, ttl, every)
                keeper.start()
            with self._active_lock:
                self.active += 1
                if keeper is not None:
                    self._running_leases.add(keeper.name)
            started = time.monotonic()
            try:
                detail = spec.func()
            except Exception as error:
                ms = (time.monotonic() - started) * 1000
                self._record_stats(spec.id, f"error: {type(error).__name__}: {error}", ms)
                log.error("job=%s outcome=error duration_ms=%.0f error=%r", spec.id, ms, error)
                raise  # the listener records it in scheduler_events
            finally:
                with self._active_lock:
                    self.active -= 1
                    if keeper is not None:
                        self._running_leases.discard(keeper.name)
                if keeper is not None:
                    keeper.finish()
                    try:
                        self._finish_lease(keeper.name, begun + timedelta(seconds=spec.seconds - 1))
                    except Exception:  # the lease then simply runs out
                        log.exception("could not finish the lease %s", keeper.name)
            ms = (time.monotonic() - started) * 1000
            self._record_stats(spec.id, "ok", ms, detail)
            idle = spec.quiet and not any((detail or {}).values())
            if spec.id != "heartbeat" and not idle:
                log.info(
                    "job=%s outcome=ok duration_ms=%.0f %s",
                    spec.id,
                    ms,
                    " ".join(f"{k}={v}" for k, v in (detail or {}).items()),
                )
            return detail

        run.__name__ = spec.id
        return run

    def _record_stats(self, job_id: str, outcome: str, ms: float, detail: Any = None) -> None:
        self.stats[job_id] = {
            "last_run_at": utcnow().isoformat(),
            "outcome": outcome,
            "duration_ms": round(ms),
            **({"detail": detail} if detail else {}),
        }

    def _on_event(self, event: Any) -> None:
        """Record a job's error, missed run or skipped run (max_instances). APScheduler
        sends a JobExecutionEvent for the first two (`scheduled_run_time`, `exception`)
        and a JobSubmissionEvent for the third (`scheduled_run_times`, plural)."""
        kind = {EVENT_JOB_ERROR: "error", EVENT_JOB_MISSED: "missed"}.get(
            event.code, "max_instances"
        )
        if kind == "error":
            message = f"{type(event.exception).__name__}: {event.exception}"
        else:
            due = getattr(event, "scheduled_run_times", None) or [
                getattr(event, "scheduled_run_time", None)
            ]
            when = ", ".join(f"{t:%Y-%m-%d %H:%M:%S} UTC" for t in due if t is not None)
            why = "the previous run was still going" if kind == "max_instances" else "too late"
            message = f"run due at {when or 'an unknown time'} did not start ({why})"
            log.warning("job=%s outcome=%s", event.job_id, kind)
        try:
            with write_session(self.engine) as session:
                session.add(
                    SchedulerEvent(
                        host=self.host,
                        pid=self.pid,
                        job_id=event.job_id,
                        kind=kind,
                        message=message,
                    )
                )
        except Exception:  # the database itself may be what failed
            log.exception("could not record the %s of job %s", kind, event.job_id)

    # -------------------------------------------------------------- life cycle

    def start(self) -> None:
        from core.crypto import verify_key

        verify_key(self.engine)  # before anything is written, not even the heartbeat
        self._take_sqlite_lock()
        with write_session(self.engine) as session:
            row = SchedulerHeartbeat(host=self.host, pid=self.pid, jobs={})
            session.add(row)
            session.flush()
            self.heartbeat_id = row.id
        self.register()
        self.aps.start()
        log.info(
            "scheduler %s started with jobs %s",
            self.runner,
            ", ".join(j.id for j in self.aps.get_jobs()),
        )

    def stop(self) -> None:
        """No new work; work in hand may finish within the deadline; then release."""
        self.stop_event.set()
        self.aps.pause()
        deadline = time.monotonic() + self.settings.scheduler_stop_seconds
        while self.active and time.monotonic() < deadline:
            time.sleep(0.05)
        self.aps.shutdown(wait=False)
        unfinished = self.active
        now = utcnow()
        with write_session(self.engine) as session:
            # claims still held (a run that did not finish) expire now: recovery elsewhere
            # closes the execution and settles its writes by reading Meta
            session.execute(
                update(AutomationRule)
                .where(AutomationRule.claimed_by == self.runner)
                .values(claim_expires_at=now)
                .execution_options(synchronize_session=False)
            )
            with self._active_lock:
                unfinished_leases = sorted(self._running_leases)
            if unfinished_leases:  # shared jobs cut short: another replica may take them
                session.execute(
                    update(SchedulerLease)
                    .where(
                        SchedulerLease.name.in_(unfinished_leases),
                        SchedulerLease.holder == self.runner,
                    )
                    .values(expires_at=now)
                    .execution_options(synchronize_session=False)
                )
            session.execute(  # deliveries claimed that sent nothing: back in the outbox
                update(NotificationDelivery)
                .where(
                    NotificationDelivery.claimed_by == self.runner,
                    NotificationDelivery.status == DeliveryStatus.SENDING,
                    NotificationDelivery.in_flight_at.is_(None),
                )
                .values(status=DeliveryStatus.PENDING, claimed_by=None, claim_expires_at=None)
                .execution_options(synchronize_session=False)
            )
            if self.heartbeat_id:
                row = session.get_one(SchedulerHeartbeat, self.heartbeat_id)
                row.stopped_at = now
                row.jobs = json.loads(json.dumps(self.stats, default=str))  # the last word
        log.info("scheduler %s stopped (%d job(s) unfinished)", self.runner, unfinished)
        if self._lock_file:
            self._lock_file.close()

    def run_forever(self) -> int:
        """Run until SIGTERM / SIGINT; exit code 0. A stop that came during start-up
        (before this was called) ends here without starting anything."""
        signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_event.set())
        if self.stop_event.is_set():
            return 0
        self.start()
        self.stop_event.wait()
        self.stop()
        return 0

    def _take_sqlite_lock(self) -> None:
        url = make_url(self.settings.database_url)
        if url.get_backend_name() != "sqlite" or not url.database:
            return
        path = Path(f"{url.database}.scheduler.lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 — held for the life of the process
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise SchedulerLockedError(
                f"another scheduler ({holder}) already runs on the SQLite database "
                f"{url.database}: SQLite allows one scheduler (lock file {path}). "
                "Stop the other one, or use PostgreSQL (DATABASE_URL) to run replicas."
            ) from None
        handle.truncate(0)
        handle.write(f"{self.runner}\n")
        handle.flush()
        self._lock_file = handle


class _LeaseKeeper(threading.Thread):
    """Renews a running job's lease every `every` seconds until `finish()`."""

    def __init__(self, scheduler: Scheduler, name: str, ttl: timedelta, every: float) -> None:
        super().__init__(name=f"lease:{name}", daemon=True)
        self.scheduler, self.name, self.ttl, self.every = scheduler, name, ttl, every
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.every):
            try:
                if not self.scheduler.renew_lease(self.name, self.ttl):
                    log.warning("lease %s was taken over by another replica", self.name)
                    return
            except Exception:  # the database may be down for a moment: try again
                log.exception("could not renew the lease %s", self.name)

    def finish(self) -> None:
        self._done.set()
        self.join(timeout=5)
