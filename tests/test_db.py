"""The database layer: UTC-aware timestamps on both backends, SQLite safe for two writers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import StatementError

from core.db import read_session, write_session
from core.db.models import AdAccount

ROOT = Path(__file__).resolve().parent.parent


def _account(**overrides: object) -> AdAccount:
    values = {
        "external_id": "act_1",
        "name": "Test",
        "currency": "USD",
        "timezone_name": "America/Los_Angeles",
        "account_status": 1,
        "token_encrypted": "x",
    }
    values.update(overrides)
    return AdAccount(**values)


def test_timestamps_come_back_utc_aware(db: Engine) -> None:
    tokyo_evening = datetime(2026, 3, 8, 23, 30, tzinfo=timezone(timedelta(hours=9)))
    with write_session() as session:
        session.add(_account(last_sync_at=tokyo_evening))

    with read_session() as session:
        stored = session.scalar(select(AdAccount.last_sync_at))
    assert stored == tokyo_evening
    assert stored.utcoffset() == timedelta(0)
    assert (stored.hour, stored.day) == (14, 8)


def test_a_naive_timestamp_is_refused_and_nothing_is_written(db: Engine) -> None:
    with pytest.raises(StatementError, match="naive datetime"), write_session() as session:
        session.add(_account(last_sync_at=datetime(2026, 1, 1, 12, 0)))
    with read_session() as session:
        assert session.scalar(select(AdAccount.id)) is None


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_db: Engine) -> None:
    with sqlite_db.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() >= 5000


WORKER = textwrap.dedent(
    """
    import sys, time
    from sqlalchemy import select
    from core.db import write_session, get_engine
    from core.db.models import AdAccount
    engine = get_engine(sys.argv[1])
    while time.time() < float(sys.argv[3]):  # all workers start together
        time.sleep(0.005)
    for _ in range(int(sys.argv[2])):
        # read, then write: the pattern that fails with "database is locked" when a
        # deferred transaction has to upgrade its lock while another process writes
        with write_session(engine) as session:
            row = session.scalars(select(AdAccount)).one()
            row.account_status = row.account_status + 1
    """
)


def test_sqlite_processes_writing_at_once_never_see_database_is_locked(
    sqlite_db: Engine,
) -> None:
    with write_session() as session:
        session.add(_account(account_status=0))
    url = sqlite_db.url.render_as_string(hide_password=False)
    workers, rounds = 4, 150
    start_at = time.time() + 3

    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, str(rounds), str(start_at)],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    errors = [p.communicate(timeout=120)[1] for p in processes]

    assert [p.returncode for p in processes] == [0] * workers, errors
    assert not any("locked" in e for e in errors)
    with read_session() as session:
        assert session.scalar(select(AdAccount.account_status)) == workers * rounds
