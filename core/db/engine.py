"""Engines and sessions for SQLite and PostgreSQL.

One engine per process and URL. Sessions are short: one per user action or job run.

SQLite is made safe for two processes (UI and scheduler) writing at once:
WAL journal, a busy timeout, foreign keys on, and write transactions that start with
`BEGIN IMMEDIATE`. A deferred transaction that reads and then writes can fail at once
with "database is locked" (the busy handler is not used for a lock upgrade in WAL
mode); an immediate one waits for the write lock up front, within the busy timeout.
Use `write_session()` for any unit of work that writes, `read_session()` otherwise.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, CursorResult, Engine, create_engine, event
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import UpdateBase

from core.db.errors import check_url, database_error
from core.settings import get_settings, normalise_database_url

SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE_OPTION = "rex_write"

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for `url` (default: the DATABASE_URL setting)."""
    url = normalise_database_url(url or get_settings().database_url)
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = make_engine(url)
        return engine


def dispose_engines() -> None:
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def make_engine(url: str) -> Engine:
    """Raises DatabaseError (core/db/errors.py) for a URL Rex cannot use; errors met later,
    on connecting or writing, are translated there too (`database_error`)."""
    url = normalise_database_url(url)
    parsed = check_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise database_error(error, url) or error from None
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Take transaction control away from the driver so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def write_session(engine: Engine | None = None) -> Iterator[Session]:
    """A session for a unit of work that writes; commits on success, rolls back on error."""
    engine = engine or get_engine()
    bind = engine.execution_options(**{_WRITE_OPTION: True}) if is_sqlite(engine) else engine
    with Session(bind=bind, expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def read_session(engine: Engine | None = None) -> Iterator[Session]:
    """A session for reading; anything it changes is rolled back. Objects read stay
    usable after it ends (detached with their loaded values, not expired)."""
    with Session(bind=engine or get_engine(), expire_on_commit=False) as session:
        try:
            yield session
        finally:
            session.expunge_all()
            session.rollback()


def rows_changed(session: Session, statement: UpdateBase) -> int:
    """Run an UPDATE or DELETE in `session`; the number of rows it changed. (The session
    types its answer as a plain `Result`; for these statements it is the driver's cursor
    result, which carries the count.)"""
    result = session.execute(statement)
    if not isinstance(result, CursorResult):
        raise TypeError(f"{type(statement).__name__} gave no row count")
    return result.rowcount
