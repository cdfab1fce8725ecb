"""`db upgrade [REV]`, `db downgrade REV`, `db current`: the schema (Alembic)."""

from __future__ import annotations

import argparse

from core.cli.args import Parser, UsageError
from core.db import migrate
from core.db.errors import safe_url
from core.settings import get_settings


def register(parser: Parser) -> None:
    db = parser.add_subparsers(metavar="ACTION")
    upgrade = db.add_parser("upgrade", help="migrate to a revision (default head)")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(handler=upgrade_schema, needs_db=False)
    downgrade = db.add_parser("downgrade", help="migrate down, e.g. -1 or base")
    downgrade.add_argument("revision")
    downgrade.set_defaults(handler=downgrade_schema, needs_db=False)
    db.add_parser("current", help="the database's revision").set_defaults(
        handler=show_current, needs_db=False
    )


def upgrade_schema(args: argparse.Namespace) -> int:
    try:
        migrate.upgrade(args.revision)
    except migrate.RevisionError as error:
        raise UsageError(str(error)) from None
    print(f"database at {migrate.current_revision()} ({_url()})")
    return 0


def downgrade_schema(args: argparse.Namespace) -> int:
    try:
        migrate.downgrade(args.revision)
    except migrate.RevisionError as error:
        raise UsageError(str(error)) from None
    print(f"database at {migrate.current_revision() or 'base'} ({_url()})")
    return 0


def show_current(args: argparse.Namespace) -> int:
    current, head = migrate.current_revision(), migrate.head_revision()
    state = "up to date" if current == head else f"behind head {head}: run `db upgrade`"
    print(f"{current or 'empty'} ({state})")
    return 0


def _url() -> str:
    """The database's URL without its password."""
    return safe_url(get_settings().database_url)
