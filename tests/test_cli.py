"""`python -m core …` as an operator runs it: real processes, the test database, the sandbox."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from core.access.actor import SYSTEM

ROOT = Path(__file__).resolve().parent.parent


def rex(
    *args: str,
    stdin: str | bytes | None = None,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    module: str = "core",
    **options: Any,
) -> subprocess.CompletedProcess:
    """`python -m core ARGS` (or another module) as a user runs it; bytes in, bytes out."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=not isinstance(stdin, bytes),
        timeout=timeout,
        # conftest pointed REX_DATABASE_URL at the test database
        env=os.environ.copy() if env is None else env,
        **options,
    )


def test_help_lists_the_operations_commands() -> None:
    result = rex("--help")
    assert result.returncode == 0
    for command in ("db", "sandbox", "accounts", "sync", "up"):
        assert command in result.stdout


def test_add_sync_list_remove_an_account(db: Engine, cli_admin: str, sandbox) -> None:
    account = sandbox.account_ids[1]

    added = rex(
        "accounts",
        "add",
        "--account",
        account,
        "--graph-url",
        sandbox.url,
        "--token-stdin",
        stdin=sandbox.token + "\n",
    )
    assert added.returncode == 0, added.stderr
    assert f"connected {account}" in added.stdout
    assert "JPY" in added.stdout and "Asia/Tokyo" in added.stdout

    synced = rex("sync", "--account", account, "--days", "3", "--no-breakdowns")
    assert synced.returncode == 0, synced.stderr
    assert f"✓ {account}" in synced.stdout
    assert "metrics" in synced.stderr  # the progress lines

    listed = json.loads(rex("accounts", "list", "--json").stdout)
    assert [a["account"] for a in listed] == [account]
    assert listed[0]["last_sync_status"] == "succeeded"
    assert listed[0]["ads"] >= 40
    assert sandbox.token not in json.dumps(listed)

    removed = rex("accounts", "remove", account, "--yes")
    assert removed.returncode == 0
    assert json.loads(rex("accounts", "list", "--json").stdout) == []


def test_errors_name_the_field_and_exit_1(db: Engine, cli_admin: str, sandbox) -> None:
    bad_id = rex("accounts", "add", "--account", "12-34", "--token", "x" * 20)
    assert bad_id.returncode == 1
    assert "account:" in bad_id.stderr and "act_" in bad_id.stderr

    bad_token = rex(
        "accounts",
        "add",
        "--account",
        sandbox.account_ids[0],
        "--graph-url",
        sandbox.url,
        "--token",
        "wrong-token-123456",
    )
    assert bad_token.returncode == 1
    assert "Reconnect" in bad_token.stderr or "token" in bad_token.stderr
    assert "wrong-token-123456" not in bad_token.stderr

    bad_days = rex("sync", "--days", "0")  # the command line itself: a usage error, exit 2
    assert bad_days.returncode == 2 and "--days" in bad_days.stderr


def test_sandbox_serve_announces_itself_then_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core",
            "sandbox",
            "serve",
            "--port",
            "0",
            "--seed",
            "3",
            "--token",
            "cli-test-token",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        announcement = json.loads(process.stdout.readline())
        assert announcement["graph_url"].startswith("http://127.0.0.1:")
        assert announcement["token"] == "cli-test-token"
        assert len(announcement["accounts"]) >= 2
        assert all(a.startswith("act_") for a in announcement["accounts"])

        import requests

        answer = requests.get(
            f"{announcement['graph_url']}/v26.0/{announcement['accounts'][0]}",
            params={"access_token": "cli-test-token", "fields": "currency"},
            timeout=10,
        )
        assert answer.json()["currency"] in ("USD", "JPY")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0


def test_db_commands(db: Engine) -> None:
    current = rex("db", "current")
    assert current.returncode == 0 and "up to date" in current.stdout
    upgraded = rex("db", "upgrade")
    assert upgraded.returncode == 0
    assert "password" not in upgraded.stdout


def test_an_unmigrated_database_is_refused_with_the_fix(tmp_path: Path) -> None:
    env = dict(os.environ, REX_DATABASE_URL=f"sqlite:///{tmp_path / 'new.db'}")
    result = rex("accounts", "list", env=env, timeout=60)
    assert result.returncode == 1
    assert "run `python -m core db upgrade`" in result.stderr
    assert "Traceback" not in result.stderr


def test_rules_list_and_preview_speak_plainly(live) -> None:  # type: ignore[no-untyped-def]
    from tests.signed import ADMIN, person
    from tests.test_engine import SCALE_WINNERS

    document = {**SCALE_WINNERS, "currency": "USD", "safety": {"max_daily_actions": 1}}
    person(ADMIN)
    rule_id = rex("rules", "import", "-", "--as", ADMIN, stdin=json.dumps(document)).stdout.strip()

    listed = rex("rules", "list")
    assert listed.returncode == 0, listed.stderr
    assert (
        "    If ROAS over the last 7 days > 3 and profit over the last 7 days > 100.00 USD → "
        "raise the budget 25 % (at most 500.00 USD), every hour · at most 1 action a day "
        "per account · cooldown 1 day"
    ) in listed.stdout.splitlines()

    preview = rex("rules", "preview", rule_id, "--all")
    assert preview.returncode == 0, preview.stderr
    lines = preview.stdout.splitlines()
    assert lines[0].startswith("Scale winners: If ROAS over the last 7 days > 3")
    a = next(i for i, line in enumerate(lines) if line.startswith("✓ 3001 A (act_2001): "))
    # 328.13 revenue on 78.13 spend: ROAS 4.1998, profit 250.00
    assert "ROAS, last 7 days 4.20" in lines[a] and "Profit, last 7 days 250.00 USD" in lines[a]
    assert lines[a + 1] == "    → would change — change_budget 200.00 USD → 250.00 USD"
    b = next(i for i, line in enumerate(lines) if line.startswith("· 3002 B (act_2001): "))
    assert lines[b + 1].startswith("    ✗ ROAS over the last 7 days is 2.")
    assert lines[b + 1].endswith(", not above 3")
    assert "    → skipped: daily cap reached (1 actions today) — change_budget" in lines
    assert lines[-1] == "would act on 1, skipped 1 (a preview: nothing was changed)"
    assert "roas@" not in preview.stdout and "conditions.all" not in preview.stdout


def test_a_restarted_make_run_keeps_the_sandbox_and_what_rex_did_there(
    db: Engine, tmp_path: Path
) -> None:
    """`make run` twice: a pause Rex sent is still in the sandbox (and in Rex) after the
    restart, the stored token still works, and an account removed in between stays out."""
    import socket

    from sqlalchemy import select

    from core.accounts import client_for, list_accounts, remove_account
    from core.crypto import secret_box
    from core.db import read_session
    from core.db.models import AdAccount, AdEntity

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "REX_DATA_DIR": str(tmp_path), "REX_SANDBOX_PORT": str(port)}
    env["REX_SYNC_DAYS"] = "2"
    usd, jpy = "act_1010000001", "act_1020000002"

    @contextlib.contextmanager
    def up() -> Iterator[list[str]]:
        """`up` without UI and scheduler, running from its first sync until the block ends."""
        process = subprocess.Popen(
            [sys.executable, "-m", "core", "up", "--no-ui", "--no-scheduler"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        lines: list[str] = []
        try:
            for line in process.stdout:  # type: ignore[union-attr]
                lines.append(line.strip())
                connected = sum("connected" in x and "not connected" not in x for x in lines)
                if sum(" synced" in x for x in lines) == connected and connected:
                    break
            yield lines
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)

    with up() as first:
        assert any(str(tmp_path / "sandbox-state.json") in line for line in first), first
        with read_session() as session:
            account = session.scalars(select(AdAccount).where(AdAccount.external_id == usd)).one()
            adset = session.scalars(
                select(AdEntity).where(
                    AdEntity.account_id == account.id,
                    AdEntity.level == "adset",
                    AdEntity.status == "ACTIVE",
                )
            ).first()
            token_before = account.token_encrypted
        client_for(account).set_status(adset.external_id, "PAUSED")  # as Rex acts
    remove_account(jpy, by=SYSTEM)

    with up() as second:
        assert any(f"{jpy} was removed; not connected again" in line for line in second), second
        assert [a.external_id for a in list_accounts()] == [usd]
        with read_session() as session:
            account = session.scalars(select(AdAccount).where(AdAccount.external_id == usd)).one()
            synced = session.get_one(AdEntity, adset.id)
        assert synced.status == "PAUSED"  # read back from the sandbox after the restart
        assert account.token_status == "ok"
        assert client_for(account).get_account(usd).external_id == usd  # the token works
        assert secret_box().decrypt(account.token_encrypted) == secret_box().decrypt(token_before)
