"""`python -m core …`: the operations commands, one module per command group.

    db upgrade|downgrade|current     the schema (Alembic)                   db.py
    sandbox serve                    the built-in Graph-compatible server   sandbox.py
    accounts add|list|remove         connected ad accounts                  accounts.py
    rules import|export|list|…       rule documents                         rules.py
    sync                             read accounts, entities, metrics …     sync.py
    run                              run the due rules (or one now)         run.py
    approvals list|approve|reject    the approval queue                     approvals.py
    actions rollback|unknown|settle  the writes Rex made                    actions.py
    suggestions generate|list|…      what the breakdowns suggest            suggestions.py
    outcomes update|list             what the applied changes did           outcomes.py
    users add|list|grant|revoke|…    who signs in, and their roles          users.py
    notifications status|retry|…     the outbox: e-mail, Slack, webhooks    notifications.py
    up                               everything `make run` starts           up.py

Each module has `register(parser)`, which adds its options and subcommands and sets
each one's handler; it runs only when its command is on the command line (args.Parser),
so a command loads what it uses and nothing else. console.py prints (errors, tables,
progress), args.py checks values.

Exit codes, the same for every command:

    0  done;
    1  Rex, its settings, the database, the key or Meta refused or failed — the message
       names the problem and what to do (a file's content, a record that does not exist,
       a database that cannot be reached, a token that cannot be decrypted);
    2  the command line itself is wrong: an unknown command or option, a value out of
       range (an id, a port, a fault rate), an empty token, a file that does not exist,
       a revision that names no migration. Fix the command and run it again.

Errors are one line on stderr (`error: …`), never a traceback: `--log-level DEBUG` adds
the traceback of an unexpected one. Tokens are never printed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from core.cli.args import Parser, UsageError
from core.cli.console import USAGE, fail, one_line, settings_problem
from core.crypto import verify_key
from core.errors import RexError
from core.logs import configure_logging
from core.settings import get_settings

log = logging.getLogger("rex.cli")

Handler = Callable[[argparse.Namespace], int]

# The commands in the order --help lists them; core/cli/<name>.py registers each one.
COMMANDS = (
    ("db", "database schema"),
    ("sandbox", "the built-in Graph-compatible server"),
    ("accounts", "connected ad accounts"),
    ("rules", "automation rules (RULES.md documents)"),
    ("sync", "sync accounts from Meta (or the sandbox)"),
    ("run", "run the rules that are due (or one rule now)"),
    ("approvals", "the approval queue"),
    ("actions", "actions Rex took"),
    ("suggestions", "suggestions from the breakdowns: generate, list, apply, dismiss"),
    ("outcomes", "what applied changes did: update, list"),
    ("users", "who signs in and their roles: add, list, grant, revoke, passwd, disable"),
    ("notifications", "the outbox: status, retry, test your channels, catch locally"),
    ("up", "migrate, start the sandbox, connect and sync it, serve the app"),
)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def build_parser() -> Parser:
    parser = Parser(
        prog="python -m core",
        description="Rex operations: database, sandbox, accounts, sync.",
    )
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING … (default: REX_LOG_LEVEL)")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name, help_text in COMMANDS:
        commands.add_parser(name, help=help_text, register=_registrar(name))
    return parser


def _registrar(name: str) -> Callable[[Parser], None]:
    def register(parser: Parser) -> None:
        importlib.import_module(f"core.cli.{name}").register(parser)

    return register


def _main(argv: Sequence[str] | None) -> int:
    try:
        settings = get_settings()
    except ValidationError as error:
        return fail(settings_problem(error))
    parser = build_parser()
    args = parser.parse_args(argv)  # a usage error exits 2 here, in one line
    configure_logging(args.log_level or settings.log_level)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return USAGE
    try:
        prepare: Handler | None = getattr(args, "prepare", None)
        if prepare is not None:  # what can be refused without the database, first
            prepare(args)
        if getattr(args, "needs_db", True):
            # Lazy: Alembic and the models load only for a command that uses the database.
            from core.db.migrate import require_current_schema

            require_current_schema()
        if getattr(args, "needs_key", False):
            verify_key()  # a missing or changed key stops the command before any write
        return handler(args)
    except UsageError as error:
        return fail(str(error), code=USAGE)
    except RexError as error:
        return fail(str(error), error.hint)
    except Exception as error:
        return _unexpected(error)


def _unexpected(error: Exception) -> int:
    """A database's error in words, or, for anything else, a one-line bug report."""
    # Lazy: SQLAlchemy loads only when there is an error to translate.
    from core.db.errors import database_error

    translated = database_error(error)
    if translated is not None:
        log.debug("database error", exc_info=True)
        return fail(str(translated))
    log.debug("unexpected error", exc_info=True)
    return fail(
        f"unexpected {type(error).__name__}: {one_line(str(error))} — a bug in Rex; "
        "run the command again with --log-level DEBUG for the traceback and report it"
    )
