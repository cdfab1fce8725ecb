"""Access tokens: checked before they are stored, encrypted at rest, never logged or shown."""

from __future__ import annotations

import io
import logging

import pytest
from sqlalchemy import Engine, func, select, text

from core.access.actor import SYSTEM
from core.accounts import connect_account, get_account, list_accounts
from core.crypto import SecretBox, SecretKeyError, secret_box
from core.db import read_session
from core.db.engine import dispose_engines
from core.db.models import AdAccount, Base, SyncRun
from core.errors import InputError
from core.logs import RedactingFilter, configure_logging, redact
from core.meta import TokenInvalidError
from core.sync.runner import SyncOptions, sync_accounts
from tests.conftest import NOW


def _database_text(engine: Engine) -> bytes:
    """Everything the database holds, as bytes: the SQLite files, or every PG row as JSON."""
    if engine.dialect.name == "sqlite":
        # Close this process's connections first: opening and closing the database files
        # by other means drops every POSIX lock SQLite holds on them in this process, and
        # another process would then delete the WAL index under our live connections.
        dispose_engines()
        path = engine.url.database
        chunks = []
        for suffix in ("", "-wal", "-shm"):
            try:
                with open(f"{path}{suffix}", "rb") as handle:
                    chunks.append(handle.read())
            except FileNotFoundError:
                pass
        return b"".join(chunks)
    with engine.connect() as connection:
        rows = [
            connection.execute(text(f'SELECT row_to_json(t)::text FROM "{table.name}" t')).all()
            for table in Base.metadata.sorted_tables
        ]
    return "\n".join(str(r) for table_rows in rows for r in table_rows).encode()


def test_connect_stores_the_token_encrypted_and_nowhere_in_clear(db: Engine, sandbox) -> None:
    account = sandbox.account_ids[0]
    view = connect_account(account, sandbox.token, graph_url=sandbox.url, by=SYSTEM)
    sync_accounts([account], options=SyncOptions(days=3, breakdowns=False, now=NOW))

    with read_session() as session:
        stored = session.scalar(select(AdAccount.token_encrypted))
    assert stored != sandbox.token
    assert secret_box().decrypt(stored) == sandbox.token
    assert sandbox.token.encode() not in _database_text(db)
    assert sandbox.token not in repr(view)


def test_a_rejected_token_stores_nothing_and_is_not_echoed(db: Engine, sandbox) -> None:
    wrong = "EAAwrongtoken1234567890abcdefABCDEF"
    with pytest.raises(TokenInvalidError) as caught:
        connect_account(sandbox.account_ids[0], wrong, graph_url=sandbox.url, by=SYSTEM)

    assert wrong not in str(caught.value)
    assert "Reconnect" in caught.value.explain() or "token" in caught.value.explain()
    assert list_accounts() == []
    with read_session() as session:
        assert session.scalar(select(func.count(AdAccount.id))) == 0


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("account", {"account": "1234-5678", "token": "x" * 20}),
        ("token", {"account": "act_123", "token": "   "}),
        ("graph_url", {"account": "act_123", "token": "x" * 20, "graph_url": "http://10.0.0.5"}),
    ],
)
def test_bad_input_names_the_field(db: Engine, field: str, kwargs: dict) -> None:
    with pytest.raises(InputError) as caught:
        connect_account(**kwargs, by=SYSTEM)
    assert caught.value.field == field
    assert list_accounts() == []


def test_token_never_reaches_the_log_output(db: Engine, sandbox) -> None:
    output = io.StringIO()
    configure_logging("DEBUG", stream=output)
    # Third-party libraries log too: urllib3 at DEBUG shows every request line.
    logging.getLogger("urllib3").setLevel(logging.DEBUG)
    try:
        connect_account(sandbox.account_ids[0], sandbox.token, graph_url=sandbox.url, by=SYSTEM)
        sync_accounts(options=SyncOptions(days=2, breakdowns=False, now=NOW))
        with pytest.raises(TokenInvalidError):
            connect_account(
                sandbox.account_ids[1], sandbox.token + "x", graph_url=sandbox.url, by=SYSTEM
            )
        logging.getLogger("third.party").warning("GET /me?access_token=%s", sandbox.token)
    finally:
        configure_logging("WARNING")
    logged = output.getvalue()
    assert "graph GET" in logged  # the client's debug lines were captured
    assert sandbox.token not in logged
    assert "access_token=[redacted]" in logged


def test_redaction_patterns() -> None:
    line = "url=/v26.0/me?access_token=EAAB123abc&fields=id Authorization: Bearer abc.def-ghi"
    assert redact(line) == (
        "url=/v26.0/me?access_token=[redacted]&fields=id Authorization: Bearer [redacted]"
    )
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "token %s", ("EAA" + "z" * 30,), None
    )
    RedactingFilter().filter(record)
    assert record.getMessage() == "token [redacted]"


def test_a_key_that_does_not_match_gives_a_clear_error() -> None:
    from cryptography.fernet import Fernet

    ciphertext = SecretBox(Fernet.generate_key()).encrypt("secret-token")
    with pytest.raises(SecretKeyError, match="REX_SECRET_KEY"):
        SecretBox(Fernet.generate_key()).decrypt(ciphertext)
    with pytest.raises(SecretKeyError, match="Fernet key"):
        SecretBox(b"not a key")


def test_the_generated_key_file_is_private(db: Engine, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from core.settings import reload_settings

    monkeypatch.delenv("REX_SECRET_KEY")
    monkeypatch.setenv("REX_SECRET_KEY_FILE", str(tmp_path / "secret.key"))
    reload_settings()
    try:
        box = secret_box(create=True)  # as connecting an account does (no tokens stored yet)
        assert box.decrypt(box.encrypt("t")) == "t"
        assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
        (tmp_path / "secret.key").chmod(0o644)
        with pytest.raises(SecretKeyError, match="chmod 600"):
            secret_box()
    finally:
        monkeypatch.undo()
        reload_settings()


def test_connecting_makes_the_key_file_and_accounts_say_whether_it_reads_the_token(
    db: Engine, sandbox, key_file
) -> None:  # type: ignore[no-untyped-def]
    from cryptography.fernet import Fernet

    account = sandbox.account_ids[0]
    connect_account(account, sandbox.token, graph_url=sandbox.url, by=SYSTEM)
    assert key_file.exists()
    assert [a.token_readable for a in list_accounts()] == [True]

    key_file.write_bytes(Fernet.generate_key())  # another key: the token cannot be read
    assert [a.token_readable for a in list_accounts()] == [False]
    key_file.unlink()
    assert get_account(account).token_readable is False  # and no key file is made for it
    assert not key_file.exists()


def test_without_the_key_file_every_account_is_attempted_and_every_run_closed(
    db: Engine, sandbox, key_file
) -> None:  # type: ignore[no-untyped-def]
    for account in sandbox.account_ids:
        connect_account(account, sandbox.token, graph_url=sandbox.url, by=SYSTEM)
    key_file.unlink()

    results = sync_accounts(options=SyncOptions(days=2, breakdowns=False, now=NOW))

    assert [r.account for r in results] == sandbox.account_ids
    assert all(not r.ok and "key file" in r.error and "missing" in r.error for r in results)
    with read_session() as session:
        runs = session.execute(
            select(SyncRun.status, SyncRun.error, SyncRun.finished_at).order_by(SyncRun.id)
        ).all()
    assert [(status, error) for status, error, _ in runs] == [
        ("failed", result.error) for result in results
    ]
    assert all(finished is not None for _, _, finished in runs)
    assert not key_file.exists()  # a new key could never decrypt the stored tokens
    assert [a.token_readable for a in list_accounts()] == [False, False]
    assert [a.last_sync_status for a in list_accounts()] == ["failed", "failed"]


def test_connect_failures_say_what_happened_for_this_account(db: Engine, sandbox) -> None:  # type: ignore[no-untyped-def]
    import socket

    from core.meta.errors import ConnectionFailedError

    account = sandbox.account_ids[0]
    with pytest.raises(TokenInvalidError) as new:
        connect_account(account, "EAAwrongtoken1234567890", graph_url=sandbox.url, by=SYSTEM)
    assert "nothing was stored" in new.value.hint and "ads_management" in new.value.hint
    assert "reconnect" not in new.value.explain().lower()  # never connected: nothing to redo

    connect_account(account, sandbox.token, graph_url=sandbox.url, by=SYSTEM)
    with pytest.raises(TokenInvalidError) as again:
        connect_account(account, "EAAwrongtoken1234567890", graph_url=sandbox.url, by=SYSTEM)
    assert f"{account} keeps the token it had" in again.value.hint
    assert get_account(account).token_status == "ok"

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(ConnectionFailedError) as unreachable:
        connect_account(sandbox.account_ids[1], "EAAsometoken1234567890", graph_url=url, by=SYSTEM)
    assert unreachable.value.hint.startswith(f"Rex could not reach the Graph API at {url}")
    assert "refused" not in unreachable.value.hint


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_account_id_is_required(db: Engine, value: str) -> None:
    with pytest.raises(InputError) as caught:
        connect_account(value, "x" * 20, by=SYSTEM)
    assert caught.value.field == "account"
    assert caught.value.problem.startswith("an ad account id is required")
