"""What went wrong on the way to the database, in words: the one place where errors of
SQLAlchemy, psycopg, sqlite3 and the filesystem become Rex's `DatabaseError`.

`database_error(error)` returns the DatabaseError for an exception raised while opening,
reading or writing the database, or None when the exception is not about the database
(then it is a bug and should surface as one). Every message names the database (without
its password), the problem and the fix, on one line:

    DATABASE_URL: cannot connect to PostgreSQL at 127.0.0.1:5999 (connection refused);
    check the host and port, or unset DATABASE_URL to use the SQLite file
"""

from __future__ import annotations

import re
import sqlite3

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from core.errors import RexError

SUPPORTED = "sqlite:///path/to/rex.db or postgresql+psycopg://user@host:5432/database"
_USE_SQLITE = "or unset DATABASE_URL to use the SQLite file"


class DatabaseError(RexError):
    """The database cannot be reached, opened or written; the message says how to fix it."""


class DatabaseUrlError(DatabaseError):
    """DATABASE_URL is not a URL Rex can use."""


def safe_url(url: str) -> str:
    """The URL as it can be shown: the password hidden, even in text that does not parse."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r":[^:/@\s]*@", ":***@", url)


def check_url(url: str) -> URL:
    """The parsed URL, or DatabaseUrlError when Rex cannot use it (garbage, another kind of
    database, a driver that is not installed)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise DatabaseUrlError(
            f"DATABASE_URL: {safe_url(url)!r} is not a database URL; use {SUPPORTED}"
        ) from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend not in ("sqlite", "postgresql"):
        raise DatabaseUrlError(
            f"DATABASE_URL: {backend} databases are not supported; Rex runs on SQLite or "
            f"PostgreSQL: use {SUPPORTED}"
        )
    if backend == "postgresql" and driver != "psycopg":
        raise DatabaseUrlError(
            f"DATABASE_URL: the PostgreSQL driver {driver!r} is not Rex's; write the URL as "
            "postgresql+psycopg://user@host:5432/database (psycopg 3 is installed with Rex)"
        )
    if backend == "sqlite" and not parsed.database:
        raise DatabaseUrlError(
            "DATABASE_URL: an SQLite URL needs a file, e.g. sqlite:///var/rex.db "
            "(three slashes, then the path)"
        )
    return parsed


def database_error(error: BaseException, url: str | None = None) -> DatabaseError | None:
    """Rex's DatabaseError for `error`, or None when it is not about reaching, opening or
    writing the database."""
    if isinstance(error, DatabaseError):
        return error
    if url is None:
        from core.settings import get_settings

        url = get_settings().database_url
    try:
        parsed = check_url(url)
    except DatabaseUrlError as bad_url:
        return bad_url if isinstance(error, (ArgumentError, NoSuchModuleError)) else None
    if isinstance(error, (ArgumentError, NoSuchModuleError)):
        return DatabaseUrlError(f"DATABASE_URL: {safe_url(url)!r} cannot be used ({error})")
    if isinstance(error, ModuleNotFoundError):
        return DatabaseUrlError(
            f"DATABASE_URL: the driver for {safe_url(url)} is not installed "
            f"({error.name}); use {SUPPORTED}"
        )
    if isinstance(error, DBAPIError):
        original = error.orig if error.orig is not None else error
        text = _first_line(str(original))
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_error(original, text, parsed)
        return _postgresql_error(original, text, parsed, connection=error.connection_invalidated)
    if isinstance(error, sqlite3.Error):
        return _sqlite_error(error, _first_line(str(error)), parsed)
    if isinstance(error, OSError) and parsed.get_backend_name() == "sqlite":
        return DatabaseError(
            f"DATABASE_URL: cannot use the SQLite file {parsed.database} "
            f"({error.strerror or error}); check that its folder can be created and Rex's "
            "user may write there"
        )
    return None


def _sqlite_error(original: BaseException, text: str, url: URL) -> DatabaseError:
    path = (url.database or "").removeprefix("file:")  # a URI filename (?mode=ro&uri=true)
    lowered = text.lower()
    if "readonly" in lowered or "read-only" in lowered:
        return DatabaseError(
            f"DATABASE_URL: the SQLite database {path} is read-only ({text}); give Rex's "
            "user write access to the file and its folder (the -wal and -shm files live "
            "beside it)"
        )
    if "disk is full" in lowered or "disk i/o error" in lowered:
        return DatabaseError(
            f"DATABASE_URL: the SQLite database {path} could not be written ({text}); free "
            "space on the disk that holds it (or lift the file size limit), then run the "
            "command again"
        )
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        return DatabaseError(
            f"DATABASE_URL: {path} is not a usable SQLite database ({text}); restore it "
            "from a backup, or point DATABASE_URL at another file and run "
            "`python -m core db upgrade`"
        )
    if "unable to open" in lowered:
        return DatabaseError(
            f"DATABASE_URL: cannot open the SQLite database {path} ({text}); check that the "
            "path names a file (not a folder) and Rex's user may write its folder"
        )
    if "locked" in lowered or "busy" in lowered:
        return DatabaseError(
            f"DATABASE_URL: the SQLite database {path} stayed locked by another process "
            f"({text}); try again, and run replicas on PostgreSQL"
        )
    return DatabaseError(f"DATABASE_URL: the SQLite database {path} refused: {text}")


def _postgresql_error(
    original: BaseException, text: str, url: URL, *, connection: bool
) -> DatabaseError:
    where = f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}"
    database, user = url.database or "(default)", url.username or "(default)"
    lowered = text.lower()
    state = getattr(original, "sqlstate", None) or ""
    if "connection refused" in lowered:
        return DatabaseError(
            f"DATABASE_URL: cannot connect to {where} (connection refused); check the host "
            f"and port, {_USE_SQLITE}"
        )
    if "failed to resolve host" in lowered or "could not translate host" in lowered:
        return DatabaseError(
            f"DATABASE_URL: cannot connect to {where} (unknown host {url.host!r}); check "
            f"the host name, {_USE_SQLITE}"
        )
    if "invalid port" in lowered:
        return DatabaseError(
            f"DATABASE_URL: {url.port} is not a port; give one from 1 to 65535 (PostgreSQL "
            "listens on 5432 by default)"
        )
    if "timeout" in lowered or "timed out" in lowered:
        return DatabaseError(
            f"DATABASE_URL: {where} did not answer in time ({text}); check the host, the "
            f"port and any firewall between, {_USE_SQLITE}"
        )
    if re.search(r'database "[^"]*" does not exist', text):
        return DatabaseError(
            f"DATABASE_URL: {where} has no database {database!r}; create it "
            f"(`createdb {database}`) or fix the name in the URL"
        )
    if re.search(r'role "[^"]*" does not exist', text):
        return DatabaseError(
            f"DATABASE_URL: {where} has no user {user!r}; create it or fix the user in the URL"
        )
    if "authentication failed" in lowered or "password" in lowered:
        return DatabaseError(
            f"DATABASE_URL: {where} refused user {user!r} (authentication failed); check "
            "the user and password in the URL"
        )
    if state == "53100" or "no space left" in lowered or "disk full" in lowered:
        return DatabaseError(
            f"DATABASE_URL: {where} could not write (the disk is full: {text}); free space "
            "on the server, then run the command again"
        )
    if state == "25006" or "read-only transaction" in lowered:
        return DatabaseError(
            f"DATABASE_URL: database {database!r} on {where} is read-only ({text}); point "
            "DATABASE_URL at the primary server"
        )
    if state.startswith("08") or connection or "server closed" in lowered:
        return DatabaseError(
            f"DATABASE_URL: lost the connection to {where} ({text}); check that the server "
            "is running, then run the command again"
        )
    return DatabaseError(f"DATABASE_URL: {where} refused: {text}")


def _first_line(text: str) -> str:
    text = text.strip()
    for prefix in ("connection failed: ",):
        text = text.removeprefix(prefix)
    line = text.splitlines()[0] if text else "no detail"
    return re.sub(r"\s+", " ", line)[:300]
