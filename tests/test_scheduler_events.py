"""The scheduler under faults: a run skipped because the previous one is still going is on
the record; a shared job's lease is renewed while its holder works and taken over soon
after the holder is killed; a stop requested during start-up exits 0. Real APScheduler,
real processes, both databases."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from core.db import read_session
from core.db.models import SchedulerEvent, SchedulerHeartbeat, SchedulerLease
from core.db.types import utcnow
from core.scheduler.service import JobSpec, Scheduler
from core.settings import get_settings
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------- max_instances


def test_a_run_skipped_because_the_last_one_still_runs_is_recorded(db: Engine) -> None:
    sched = Scheduler(settings=get_settings())
    release = threading.Event()
    sched.aps.start()
    try:
        sched.aps.add_job(  # blocks while its 1-second interval elapses, again and again
            lambda: release.wait(15),
            "interval",
            seconds=1,
            id="slow",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=30,
            next_run_time=datetime.now(UTC),
        )

        def skipped() -> list[SchedulerEvent]:
            with read_session() as session:
                return list(
                    session.scalars(select(SchedulerEvent).where(SchedulerEvent.job_id == "slow"))
                )

        events = wait_until(skipped, 10, message="no scheduler_events row for the skipped run")
    finally:
        release.set()
        sched.aps.shutdown(wait=True)
    assert events[0].kind == "max_instances"
    assert "did not start" in events[0].message and "still going" in events[0].message
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", events[0].message)


# --------------------------------------------------------------------- leases

HOLDER = """
import time
from core.scheduler.service import JobSpec, Scheduler
from core.settings import get_settings

holder = Scheduler(settings=get_settings(), job_lease_seconds=2, lease_renew_seconds=0.5)


def sync_that_hangs():
    print("holding", flush=True)
    time.sleep(600)


holder._instrument(JobSpec("recent_sync", 3600, 60, sync_that_hangs, shared=True))()
"""


def lease(name: str) -> SchedulerLease | None:
    with read_session() as session:
        return session.get(SchedulerLease, name)


def test_a_shared_jobs_lease_is_renewed_while_it_runs_and_taken_over_once_its_holder_dies(
    db: Engine,
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = holder.stdout.readline()  # type: ignore[union-attr]
        assert line.strip() == "holding", holder.stderr.read()  # type: ignore[union-attr]
        taken = lease("job:recent_sync")
        assert taken is not None and taken.expires_at <= utcnow() + timedelta(seconds=3)

        ran: list[float] = []
        other = Scheduler(settings=get_settings(), job_lease_seconds=2, lease_renew_seconds=0.5)
        job = other._instrument(
            JobSpec("recent_sync", 3600, 60, lambda: ran.append(time.monotonic()), shared=True)
        )
        watched_until = time.monotonic() + 5  # 2.5 lease lengths: renewed, never taken over
        while time.monotonic() < watched_until:
            job()
            assert not ran, "the lease of a live holder was taken over"
            assert other.stats["recent_sync"]["outcome"] == "skipped (another replica)"
            time.sleep(0.25)

        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        killed = time.monotonic()
        wait_until(lambda: job() or ran, 10, 0.2, message="the lease was never taken over")
        assert ran[0] - killed < 2 + 1.5  # within the short lease, not the job's hour
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=10)

    # done: the lease stays until the next run is due, so replicas do not repeat the job
    kept = lease("job:recent_sync")
    assert kept is not None and kept.holder == other.runner
    assert kept.expires_at > utcnow() + timedelta(minutes=55)


# ------------------------------------------------------- a stop during start-up


def catches(pid: int, signum: int) -> bool:
    """Whether the process has a handler for `signum` (/proc's SigCgt mask)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    caught = re.search(r"^SigCgt:\s*([0-9a-f]+)$", status, re.MULTILINE)
    return bool(caught and int(caught.group(1), 16) & (1 << (signum - 1)))


@pytest.mark.parametrize(
    ("delay", "signum"),
    [
        (None, signal.SIGTERM),  # the moment it catches SIGTERM
        (None, signal.SIGINT),
        (0.1, signal.SIGTERM),  # after Rex's handler is in: while modules load …
        (0.25, signal.SIGTERM),
        (0.45, signal.SIGINT),  # … and the schema is checked (a stop once it runs: see
    ],  # test_scheduler.py)
)
def test_a_stop_during_start_up_exits_0(
    sqlite_db: Engine, delay: float | None, signum: int
) -> None:
    """Before a process installs its handler the kernel's default applies (no program can
    exit cleanly then), so the earliest honest moment is when /proc shows the handler;
    `delay` counts from that moment (Rex's first lines, before its modules load and the
    schema is checked). Counting from Python's own init instead made the test depend on
    how loaded the machine was: on a busy one, 0.1 s could still be before Rex's code."""
    process = subprocess.Popen(
        [sys.executable, "-m", "core.scheduler"],
        cwd=ROOT,
        env={**os.environ, "REX_SCHEDULER_TICK_SECONDS": "1", "REX_SCHEDULER_STOP_SECONDS": "5"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(
            lambda: catches(process.pid, signal.SIGTERM),
            30,
            0.001,
            message="the scheduler never installed its SIGTERM handler",
        )
        if delay is not None:
            time.sleep(delay)  # the moment under test: modules loading, the schema checked
        process.send_signal(signum)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert "Traceback" not in output
    with read_session() as session:
        beats = list(session.scalars(select(SchedulerHeartbeat)))
    if delay is None:  # stopped as soon as it could be: before it started anything
        assert beats == []
    assert all(beat.stopped_at is not None for beat in beats)  # any start ended cleanly
