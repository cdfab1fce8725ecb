"""Alembic, driven from code: `python -m core db upgrade` and the tests use this.

The migration scripts live inside the package (core/db/migrations), so Rex migrates
the same way from a clone, an installed package or a container.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from core.db.engine import get_engine
from core.errors import RexError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = get_engine(url)
    return config


def upgrade(revision: str = "head", url: str | None = None) -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(revision: str, url: str | None = None) -> None:
    command.downgrade(alembic_config(url), revision)


def current_revision(url: str | None = None) -> str | None:
    with get_engine(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


class SchemaOutOfDateError(RexError):
    """The database is not at the schema this code expects."""


def require_current_schema(url: str | None = None) -> None:
    """Refuse to work on a database that is not migrated to head, saying how to fix it."""
    current, head = current_revision(url), head_revision()
    if current != head:
        state = "empty" if current is None else f"at revision {current}"
        raise SchemaOutOfDateError(
            f"the database is {state}, this Rex needs {head}: run `python -m core db upgrade`"
        )
