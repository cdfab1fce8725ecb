"""Database: engines and sessions, the typed model, migrations."""

from core.db.engine import get_engine, read_session, rows_changed, write_session
from core.db.errors import DatabaseError, database_error

__all__ = [
    "DatabaseError",
    "database_error",
    "get_engine",
    "read_session",
    "rows_changed",
    "write_session",
]
