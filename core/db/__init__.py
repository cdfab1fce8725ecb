"""Database: engines and sessions, the typed model, migrations."""

from core.db.engine import get_engine, read_session, write_session

__all__ = ["get_engine", "read_session", "write_session"]
