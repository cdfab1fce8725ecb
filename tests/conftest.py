"""Shared fixtures: real databases (SQLite file and PostgreSQL) and the sandbox over HTTP.

* `db` runs a test once per database. PostgreSQL is the machine's server (DATABASE_URL of
  the test run: REX_TEST_PG_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/test);
  each test session migrates its own schema there and drops it at the end. When the server
  is unreachable the PostgreSQL tests fail — they are never skipped.
* `sandbox` is the built-in Graph server on a loopback port, its clock frozen at `NOW`,
  reset to its generated world before each test.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, create_engine, text

from core.access.actor import SYSTEM
from core.db import migrate
from core.db.engine import dispose_engines, get_engine
from core.db.models import Base
from core.settings import reload_settings

NOW = datetime(2026, 11, 20, 18, 30, tzinfo=UTC)  # a Friday; Tokyo is already on the 21st
PG_URL = os.environ.get("REX_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SANDBOX_SEED = 7

# Settings every test runs with: its own data dir and key, quick retries.
_TEST_ENV = {
    "REX_SECRET_KEY": Fernet.generate_key().decode(),
    "REX_GRAPH_BACKOFF_SECONDS": "0.01",
    "REX_GRAPH_MAX_INLINE_WAIT_SECONDS": "2",
    "REX_GRAPH_TIMEOUT_SECONDS": "10",
}


@pytest.fixture(scope="session", autouse=True)
def _test_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's settings, in os.environ (where the commands tests start read them
    too), and the environment as it was once the session ends."""
    data_dir = tmp_path_factory.mktemp("rex-data")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in _TEST_ENV.items():
            patch.setenv(name, value)
        patch.setenv("REX_DATA_DIR", str(data_dir))
        patch.delenv("DATABASE_URL", raising=False)
        patch.setenv("REX_DATABASE_URL", f"sqlite:///{data_dir / 'default.db'}")
        reload_settings()
        yield data_dir
        dispose_engines()
    reload_settings()


@pytest.fixture(autouse=True)
def _wall_clock() -> Iterator[None]:
    """Every test starts and ends on the wall clock (a test that simulates sandbox days
    moves Rex's clock; core/clock.py)."""
    from core import clock

    clock.set_ahead_days(0)
    yield
    clock.set_ahead_days(0)


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Tokens encrypted with a key file (REX_SECRET_KEY unset) at the test's own path,
    for this process and the commands it starts."""
    path = tmp_path / "keys" / "secret.key"
    monkeypatch.delenv("REX_SECRET_KEY")
    monkeypatch.setenv("REX_SECRET_KEY_FILE", str(path))
    reload_settings()
    yield path
    monkeypatch.undo()
    reload_settings()


# --- databases ------------------------------------------------------------------------


def pg_schema_url(schema: str) -> str:
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    """A connection to the PostgreSQL server itself; fails (never skips) when it is down."""
    engine = create_engine(PG_URL, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_URL} ({type(error).__name__}). Start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
            "or point REX_TEST_PG_URL at a server.",
            pytrace=False,
        )
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def fresh_schema(pg_admin: Engine) -> Iterator[callable]:
    """Makes empty PostgreSQL schemas, dropped at the end of the session."""
    made: list[str] = []

    def make() -> str:
        name = f"rex_test_{os.getpid()}_{secrets.token_hex(3)}"
        with pg_admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{name}"'))
        made.append(name)
        return pg_schema_url(name)

    yield make
    dispose_engines()
    with pg_admin.begin() as connection:
        for name in made:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


@pytest.fixture(scope="session")
def migrated_urls(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> dict[str, str]:
    """One migrated database per backend for the whole session (created on first use)."""
    return {}


def _migrated_url(kind: str, request: pytest.FixtureRequest, cache: dict[str, str]) -> str:
    if kind not in cache:
        if kind == "sqlite":
            folder = request.getfixturevalue("tmp_path_factory").mktemp("sqlite")
            url = f"sqlite:///{folder / 'rex.db'}"
        else:
            url = request.getfixturevalue("fresh_schema")()
        migrate.upgrade("head", url=url)
        cache[kind] = url
    return cache[kind]


def _empty_tables(engine: Engine) -> None:
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())


def use_database(url: str) -> Iterator[Engine]:
    """Point Rex's settings at `url` (as DATABASE_URL would, for the commands a test starts
    too), empty its tables and yield its engine; then the settings are as they were."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REX_DATABASE_URL", url)
        reload_settings()
        engine = get_engine()
        _empty_tables(engine)
        yield engine
    reload_settings()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, migrated_urls: dict[str, str]) -> Iterator[Engine]:
    """A migrated, empty database that Rex's settings point at — once per backend."""
    yield from use_database(_migrated_url(request.param, request, migrated_urls))


@pytest.fixture
def cli_admin(db: Engine, monkeypatch: pytest.MonkeyPatch) -> str:
    """An admin the CLI commands of a test act as (`REX_AS`, as a script would set it)."""
    from tests.signed import ADMIN, person

    person(ADMIN)
    monkeypatch.setenv("REX_AS", ADMIN)
    return ADMIN


@pytest.fixture
def sqlite_db(request: pytest.FixtureRequest, migrated_urls: dict[str, str]) -> Iterator[Engine]:
    """Like `db`, SQLite only (for tests about the SQLite file itself)."""
    yield from use_database(_migrated_url("sqlite", request, migrated_urls))


@pytest.fixture
def pg_db(request: pytest.FixtureRequest, migrated_urls: dict[str, str]) -> Iterator[Engine]:
    """Like `db`, PostgreSQL only (for PostgreSQL's own SQL)."""
    yield from use_database(_migrated_url("postgresql", request, migrated_urls))


# --- the sandbox ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def _sandbox_server() -> Iterator[object]:
    from core.sandbox import SandboxServer

    server = SandboxServer(port=0, seed=SANDBOX_SEED, now=NOW).start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(_sandbox_server):  # type: ignore[no-untyped-def]
    """The sandbox Graph server in its generated state, with no faults and empty logs."""
    _sandbox_server.reset()
    return _sandbox_server


WORKED_EXAMPLE = Path(__file__).parent / "scenarios" / "worked_example.json"


@pytest.fixture
def worked(db: Engine):  # type: ignore[no-untyped-def]
    """The seed's worked example (campaigns A, B, C) in its own sandbox, frozen at NOW,
    connected and synced."""
    from core.accounts import connect_account
    from core.sandbox import SandboxServer
    from core.sync.runner import SyncOptions, sync_accounts

    with SandboxServer(scenario=WORKED_EXAMPLE, now=NOW) as server:
        connect_account("act_2001", server.token, graph_url=server.url, by=SYSTEM)
        sync_accounts(options=SyncOptions(days=15, breakdowns=False, now=NOW))
        yield server


@pytest.fixture
def live(db: Engine):  # type: ignore[no-untyped-def]
    """The worked example on the real clock (for what uses now(): the operators' SQL,
    the CLI and the scheduler), connected and synced."""
    from core.accounts import connect_account
    from core.sandbox import SandboxServer
    from core.sync.runner import SyncOptions, sync_accounts

    with SandboxServer(scenario=WORKED_EXAMPLE) as server:
        connect_account("act_2001", server.token, graph_url=server.url, by=SYSTEM)
        sync_accounts(options=SyncOptions(days=15, breakdowns=False))
        yield server
