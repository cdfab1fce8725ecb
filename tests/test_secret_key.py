"""The key file: a missing or changed key stops Rex with one message before anything is
written, and no new key is generated while the database holds tokens encrypted with the
old one. Real processes (the CLI, the scheduler), both databases, the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, func, select

from core.access.actor import SYSTEM
from core.accounts import connect_account
from core.db import read_session
from core.db.models import (
    ActionHistory,
    RuleExecution,
    SchedulerHeartbeat,
    SyncRun,
)
from core.rules.store import save_rule
from tests.test_cli import rex

PAUSE_EVERYTHING = {
    "name": "Pause everything",
    "scope": {"level": "campaign"},
    "conditions": {"metric": "impressions", "window": "last_7d_with_today", "op": ">=", "value": 0},
    "actions": [{"type": "pause"}],
    "safety": {"cooldown_minutes": 0, "max_daily_actions": 100},
}


def rows(model: type) -> int:
    with read_session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def nothing_written() -> None:
    for model in (SyncRun, RuleExecution, ActionHistory, SchedulerHeartbeat):
        assert rows(model) == 0, f"{model.__tablename__} was written"


def refused(result: subprocess.CompletedProcess, *words: str) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], (word, errors[0])
    return errors[0]


def scheduler_run() -> subprocess.CompletedProcess:
    env = {**os.environ, "REX_SCHEDULER_TICK_SECONDS": "1"}
    return rex(module="core.scheduler", env=env, timeout=60)


def connected(sandbox) -> str:  # type: ignore[no-untyped-def]
    """One sandbox account connected (the key file made for it) and a due rule."""
    account = sandbox.account_ids[0]
    connect_account(account, sandbox.token, graph_url=sandbox.url, by=SYSTEM)
    save_rule(PAUSE_EVERYTHING, by=SYSTEM)
    return account


def every_command_stops(account: str, *words: str) -> None:
    """sync, run, the scheduler, `up` and the commands that act stop with the key's
    message, and none of them wrote anything."""
    for args in (
        ("sync", "--days", "2", "--no-breakdowns"),
        ("run",),
        ("run", "--rule", "1"),
        ("approvals", "approve", "1"),
        ("approvals", "reject", "1"),
        ("actions", "rollback", "1"),
        ("up", "--no-sandbox", "--no-ui", "--no-sync", "--no-scheduler"),
    ):
        refused(rex(*args, timeout=60), account, *words)
    refused(scheduler_run(), account, *words)
    nothing_written()


def test_a_deleted_key_file_stops_every_command_and_is_not_replaced(
    db: Engine, cli_admin: str, sandbox, key_file: Path
) -> None:  # type: ignore[no-untyped-def]
    account = connected(sandbox)
    assert key_file.exists()
    key_file.unlink()

    every_command_stops(
        account, f"the key file {key_file} is missing", "restore it", "accounts remove"
    )
    assert not key_file.exists()  # no new key: it could never decrypt the stored token

    # connecting again refuses to make a key the stored token was not encrypted with
    added = rex(
        "accounts", "add", "--account", account, "--graph-url", sandbox.url, "--token-stdin",
        stdin=sandbox.token + "\n",
    )  # fmt: skip
    refused(added, "is missing", account, "not in the database backup")
    assert not key_file.exists()

    listed = rex("accounts", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [a["token_readable"] for a in json.loads(listed.stdout)] == [False]


def test_a_changed_key_stops_every_command(db: Engine, sandbox, key_file: Path) -> None:  # type: ignore[no-untyped-def]
    account = connected(sandbox)
    key_file.write_bytes(Fernet.generate_key())  # a key, but not the one of the token

    every_command_stops(account, "does not decrypt", str(key_file), "another key")


def test_a_changed_environment_key_stops_the_scheduler(
    db: Engine, sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    account = connected(sandbox)
    monkeypatch.setenv("REX_SECRET_KEY", Fernet.generate_key().decode())  # for the children
    refused(scheduler_run(), "REX_SECRET_KEY does not decrypt", account)
    refused(rex("sync"), "REX_SECRET_KEY does not decrypt", account)
    nothing_written()


def test_a_fresh_install_makes_its_key_on_the_first_connect(
    db: Engine, cli_admin: str, sandbox, key_file: Path
) -> None:  # type: ignore[no-untyped-def]
    assert not key_file.exists()
    listed = rex("accounts", "list")
    assert listed.returncode == 0, listed.stderr  # nothing to decrypt: no key needed
    synced = rex("sync")
    assert synced.returncode == 0, synced.stderr
    assert not key_file.exists()

    account = sandbox.account_ids[0]
    added = rex(
        "accounts", "add", "--account", account, "--graph-url", sandbox.url, "--token-stdin",
        stdin=sandbox.token + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert key_file.stat().st_mode & 0o777 == 0o600
    synced = rex("sync", "--days", "2", "--no-breakdowns")
    assert synced.returncode == 0, synced.stderr

    # after every account is removed, a lost key may be replaced by a new one
    key_file.unlink()
    assert rex("accounts", "remove", account, "--yes").returncode == 0
    again = rex(
        "accounts", "add", "--account", account, "--graph-url", sandbox.url, "--token-stdin",
        stdin=sandbox.token + "\n",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert key_file.exists()
