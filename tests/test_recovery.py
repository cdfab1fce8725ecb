"""Recovery closes what a killed process left open: its sync run, its heartbeat, its
never-sent intents — with real processes SIGKILLed mid-work, on both databases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from core.access.actor import SYSTEM
from core.accounts import connect_account
from core.db import read_session, write_session
from core.db.models import AdAccount, SchedulerHeartbeat, SyncRun
from core.db.types import utcnow
from core.process import process_name
from core.sandbox import FaultConfig
from core.scheduler.recovery import recover
from tests.hostile import wait_for

ROOT = Path(__file__).resolve().parent.parent
LEASE = timedelta(minutes=10)


def _running_syncs() -> list[SyncRun]:
    with read_session() as session:
        return list(session.scalars(select(SyncRun).where(SyncRun.status == "running")))


def test_a_sync_killed_mid_run_is_closed_by_the_next_recovery(db: Engine, sandbox) -> None:  # type: ignore[no-untyped-def]
    account = sandbox.account_ids[0]
    connect_account(account, sandbox.token, graph_url=sandbox.url, by=SYSTEM)
    sandbox.set_faults(FaultConfig(latency_ms=300))  # a slow Meta: the sync takes a while
    child = subprocess.Popen(
        [sys.executable, "-m", "core", "sync", "--account", account, "--days", "3"],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: bool(_running_syncs()), timeout=30)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    (left,) = _running_syncs()
    assert left.owner and left.owner.endswith(f":{child.pid}")

    counts = recover(utcnow(), LEASE)

    assert counts["syncs_closed"] == 1
    with read_session() as session:
        closed = session.get_one(SyncRun, left.id)
    assert closed.status == "failed" and "stopped before it finished" in closed.error
    assert closed.finished_at is not None


def test_a_sync_still_running_elsewhere_is_left_alone(db: Engine, sandbox) -> None:  # type: ignore[no-untyped-def]
    connect_account(sandbox.account_ids[0], sandbox.token, graph_url=sandbox.url, by=SYSTEM)
    with write_session() as session:
        account_id = session.scalars(select(AdAccount.id)).one()
        session.add_all(
            [
                SyncRun(account_id=account_id, status="running", owner=process_name()),
                SyncRun(account_id=account_id, status="running", owner="elsewhere:1"),
                SyncRun(account_id=account_id, status="running", owner="elsewhere:2",
                        started_at=utcnow() - timedelta(days=1)),
            ]
        )  # fmt: skip

    counts = recover(utcnow(), LEASE)

    assert counts["syncs_closed"] == 1  # only the day-old one: no sync takes that long
    assert sorted(r.owner for r in _running_syncs()) == ["elsewhere:1", process_name()]


def test_a_killed_scheduler_s_heartbeat_is_closed(db: Engine) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "core.scheduler"],
        cwd=ROOT,
        env={**os.environ, "REX_SCHEDULER_TICK_SECONDS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def beating() -> bool:
        with read_session() as session:
            return session.scalar(select(SchedulerHeartbeat.id)) is not None

    try:
        assert wait_for(beating, timeout=60)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    with write_session() as session:  # a live scheduler elsewhere, beating
        session.add(SchedulerHeartbeat(host="elsewhere", pid=1, last_tick_at=utcnow()))

    counts = recover(utcnow(), LEASE)

    assert counts["heartbeats_closed"] == 1
    with read_session() as session:
        beats = {b.host: b for b in session.scalars(select(SchedulerHeartbeat))}
    killed = next(b for host, b in beats.items() if host != "elsewhere")
    assert killed.pid == child.pid and killed.stopped_at is not None
    assert "killed" in killed.jobs["stopped"]
    assert beats["elsewhere"].stopped_at is None
