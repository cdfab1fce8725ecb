"""Alembic, driven from code: `python -m core db upgrade` and the tests use this.

The migration scripts live inside the package (core/db/migrations), so Rex migrates
the same way from a clone, an installed package or a container.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError

from core.db.engine import get_engine
from core.errors import RexError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = get_engine(url)
    return config


class RevisionError(RexError):
    """A revision that names no migration (or a step past the first or last one)."""


def upgrade(revision: str = "head", url: str | None = None) -> None:
    _migrate(command.upgrade, revision, url)


def downgrade(revision: str, url: str | None = None) -> None:
    _migrate(command.downgrade, revision, url)


def _migrate(step: Callable[[Config, str], None], revision: str, url: str | None) -> None:
    config = alembic_config(url)
    try:
        step(config, revision)
    except CommandError as error:
        known = ", ".join(
            script.revision
            for script in reversed(list(ScriptDirectory.from_config(config).walk_revisions()))
        )
        raise RevisionError(
            f"revision {revision!r}: {error}; give head, base, a step such as -1, or one of {known}"
        ) from None


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
