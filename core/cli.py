"""`python -m core …`: the operations commands.

    db upgrade|downgrade|current     the schema (Alembic)
    sandbox serve                    the built-in Graph-compatible server
    accounts add|list|remove         connected ad accounts
    sync                             read accounts, entities, metrics and breakdowns
    up                               everything `make run` starts

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
import getpass
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from core.errors import RexError
from core.logs import configure_logging
from core.meta.errors import GraphError
from core.settings import get_settings

log = logging.getLogger("rex.cli")

Handler = Callable[[argparse.Namespace], int]

MAX_ID = 2**63 - 1  # ids are 64-bit signed integers on both databases
USAGE, FAILED = 2, 1


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None) -> int:
    try:
        settings = get_settings()
    except ValidationError as error:
        return _fail(settings_problem(error))
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
            from core.db.migrate import require_current_schema

            require_current_schema()
        if getattr(args, "needs_key", False):
            from core.crypto import verify_key

            verify_key()  # a missing or changed key stops the command before any write
        return handler(args)
    except _UsageError as error:
        return _fail(str(error), code=USAGE)
    except (RexError, GraphError) as error:
        return _fail(str(error), getattr(error, "hint", ""))
    except Exception as error:
        from core.db.errors import database_error

        translated = database_error(error)
        if translated is not None:
            log.debug("database error", exc_info=True)
            return _fail(str(translated))
        log.debug("unexpected error", exc_info=True)
        return _fail(
            f"unexpected {type(error).__name__}: {_one_line(str(error))} — a bug in Rex; "
            "run the command again with --log-level DEBUG for the traceback and report it"
        )


def _fail(message: str, hint: str = "", *, code: int = FAILED) -> int:
    print(f"error: {message}" + (f"\n  → {hint}" if hint else ""), file=sys.stderr)
    return code


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300] or "no detail"


def settings_problem(error: ValidationError) -> str:
    """A settings error as one line naming the variable, e.g. `REX_UI_PORT: …`."""
    problems = []
    for item in error.errors(include_url=False):
        name = str(item["loc"][0]) if item["loc"] else "settings"
        variable = "DATABASE_URL" if name == "database_url" else f"REX_{name.upper()}"
        problems.append(f"{variable}: {item['msg']} (got {item.get('input')!r})")
    return "; ".join(problems) + "; fix it in the environment or .env"


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one line (the usage is one `--help` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"error: {self.prog}: {message} (see --help)\n")


def _row_id(kind: str) -> Callable[[str], int]:
    """An argparse type for a database id: a whole number from 1 to 2^63 - 1."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if not 1 <= value <= MAX_ID:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a {kind} id: {kind} ids are whole numbers from 1 to {MAX_ID}"
            )
        return value

    parse.__name__ = f"{kind} id"
    return parse


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port: give a number from 1 to 65535, or 0 for any free one"
        )
    return value


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 90:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of days from 1 to 90")
    return value


def _token(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("the token is empty: give the whole token")
    return text.strip()


def _rule_file(text: str) -> str:
    if text != "-" and not Path(text).is_file():
        raise argparse.ArgumentTypeError(
            f"{text} does not exist (give a JSON file, or - for stdin)"
        )
    return text


def _milliseconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 60_000:
        raise argparse.ArgumentTypeError(f"{text!r}: give milliseconds from 0 to 60000")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m core",
        description="Rex operations: database, sandbox, accounts, sync.",
    )
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING … (default: REX_LOG_LEVEL)")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    _db_commands(commands)
    _sandbox_commands(commands)
    _account_commands(commands)

    _rule_commands(commands)

    sync = commands.add_parser("sync", help="sync accounts from Meta (or the sandbox)")
    sync.add_argument("--account", action="append", help="act_… (repeatable; default: all)")
    sync.add_argument("--days", type=_days, help="days of metrics to read (default REX_SYNC_DAYS)")
    sync.add_argument("--no-breakdowns", action="store_true", help="skip the breakdown tables")
    sync.set_defaults(handler=cmd_sync, needs_key=True)

    run = commands.add_parser("run", help="run the rules that are due (or one rule now)")
    run.add_argument(
        "--rule", type=_row_id("rule"), metavar="ID", help="run this rule now, due or not"
    )
    run.set_defaults(handler=cmd_run, needs_key=True)

    _approval_commands(commands)
    _action_commands(commands)

    up = commands.add_parser(
        "up", help="migrate, start the sandbox, connect and sync it, serve the app"
    )
    up.add_argument("--no-sandbox", action="store_true", help="don't start the sandbox")
    up.add_argument("--no-ui", action="store_true", help="don't start Streamlit")
    up.add_argument("--no-sync", action="store_true", help="skip the first sync")
    up.add_argument("--no-scheduler", action="store_true", help="don't start the scheduler")
    up.set_defaults(handler=cmd_up, needs_db=False)  # it migrates
    return parser


# --------------------------------------------------------------------------- db


def _db_commands(commands: Any) -> None:
    db = commands.add_parser("db", help="database schema").add_subparsers(metavar="ACTION")
    upgrade = db.add_parser("upgrade", help="migrate to a revision (default head)")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(handler=cmd_db_upgrade, needs_db=False)
    downgrade = db.add_parser("downgrade", help="migrate down, e.g. -1 or base")
    downgrade.add_argument("revision")
    downgrade.set_defaults(handler=cmd_db_downgrade, needs_db=False)
    db.add_parser("current", help="the database's revision").set_defaults(
        handler=cmd_db_current, needs_db=False
    )


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from core.db import migrate

    try:
        migrate.upgrade(args.revision)
    except migrate.RevisionError as error:
        raise _usage(str(error)) from None
    print(f"database at {migrate.current_revision()} ({_safe_url()})")
    return 0


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    from core.db import migrate

    try:
        migrate.downgrade(args.revision)
    except migrate.RevisionError as error:
        raise _usage(str(error)) from None
    print(f"database at {migrate.current_revision() or 'base'} ({_safe_url()})")
    return 0


def cmd_db_current(args: argparse.Namespace) -> int:
    from core.db import migrate

    current, head = migrate.current_revision(), migrate.head_revision()
    state = "up to date" if current == head else f"behind head {head}: run `db upgrade`"
    print(f"{current or 'empty'} ({state})")
    return 0


def _safe_url() -> str:
    from core.db.errors import safe_url

    return safe_url(get_settings().database_url)


# ---------------------------------------------------------------------- sandbox


def _sandbox_commands(commands: Any) -> None:
    sandbox = commands.add_parser("sandbox", help="the built-in Graph-compatible server")
    actions = sandbox.add_subparsers(metavar="ACTION")
    serve = actions.add_parser(
        "serve",
        help="serve the sandbox; the first stdout line is JSON {graph_url, token, accounts}",
    )
    settings = get_settings()
    serve.add_argument("--host", default=settings.sandbox_host)
    serve.add_argument("--port", type=_port, default=settings.sandbox_port, help="0 = any free")
    serve.add_argument("--seed", type=int, default=settings.sandbox_seed)
    serve.add_argument("--scenario", help="a scenario JSON file (docs/sandbox.md)")
    serve.add_argument("--token", type=_token, help="the token to accept (default: a random one)")
    serve.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND=RATE",
        help="inject errors, e.g. --fault 5xx=0.1 --fault buc=0.05 (docs/sandbox.md)",
    )
    serve.add_argument("--latency-ms", type=_milliseconds, default=0, help="added to every answer")
    serve.add_argument("--expired-token", action="store_true", help="answer 190 to everything")
    serve.add_argument(
        "--state-file",
        type=Path,
        default=None,
        help="keep the sandbox's state (entities, writes, change history, token) in this file "
        "across restarts; `make run` uses <data dir>/sandbox-state.json",
    )
    serve.set_defaults(handler=cmd_sandbox_serve, needs_db=False)


def parse_faults(items: Sequence[str]) -> dict[str, float]:
    rates: dict[str, float] = {}
    for item in items:
        kind, sep, rate = item.partition("=")
        try:
            value = float(rate)
        except ValueError:
            value = -1.0
        if not sep or not kind or not 0 <= value <= 1:
            raise _usage(f"--fault {item!r}: write KIND=RATE with a rate from 0 to 1, e.g. 5xx=0.1")
        rates[kind.strip()] = value
    return rates


def cmd_sandbox_serve(args: argparse.Namespace) -> int:
    from core.sandbox import FaultConfig, run_server

    if args.scenario is not None and not Path(args.scenario).is_file():
        raise _usage(f"--scenario: {args.scenario} does not exist")
    try:
        faults = FaultConfig(
            rates=parse_faults(args.fault),
            latency_ms=args.latency_ms,
            expired_token=args.expired_token,
        )
    except ValueError as error:  # an unknown kind: FaultConfig names the known ones
        raise _usage(f"--fault: {error}") from None
    run_server(
        host=args.host,
        port=args.port,
        seed=args.seed,
        scenario=args.scenario,
        token=args.token,
        faults=faults,
        state_file=args.state_file,
    )
    return 0


# --------------------------------------------------------------------- accounts


def _account_commands(commands: Any) -> None:
    accounts = commands.add_parser("accounts", help="connected ad accounts")
    actions = accounts.add_subparsers(metavar="ACTION")
    add = actions.add_parser(
        "add", help="connect an account (the token is checked with a live read first)"
    )
    add.add_argument("--account", required=True, help="act_…")
    token = add.add_mutually_exclusive_group()
    token.add_argument(
        "--token", type=_token, help="access token (visible to `ps`: prefer --token-stdin)"
    )
    token.add_argument("--token-stdin", action="store_true", help="read the token from stdin")
    add.add_argument("--graph-url", help="another Graph endpoint, e.g. the sandbox's graph_url")
    add.set_defaults(handler=cmd_accounts_add, prepare=_read_token)

    listing = actions.add_parser("list", help="connected accounts")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=cmd_accounts_list)

    remove = actions.add_parser("remove", help="remove an account and all its synced data")
    remove.add_argument("account", help="act_… or Rex's id")
    remove.add_argument("--yes", action="store_true", help="don't ask for confirmation")
    remove.set_defaults(handler=cmd_accounts_remove)


def _read_token(args: argparse.Namespace) -> int:
    """The token from --token, stdin or the terminal, before the database is opened."""
    if args.token_stdin:
        args.token = sys.stdin.readline().strip()
        if not args.token:
            raise _usage("--token-stdin: stdin gave no token; pipe the token in, one line")
    elif args.token is None:
        if not sys.stdin.isatty():
            raise _usage("no token given: pipe it in with --token-stdin, or run in a terminal")
        args.token = getpass.getpass("Access token (not echoed): ").strip()
        if not args.token:
            raise _usage("no token typed; run the command again and paste the token")
    return 0


def cmd_accounts_add(args: argparse.Namespace) -> int:
    from core.accounts import connect_account

    view = connect_account(args.account, args.token, graph_url=args.graph_url)
    print(
        f"connected {view.external_id} “{view.name}” ({view.currency}, {view.timezone_name}, "
        f"{view.status_label}); run `python -m core sync --account {view.external_id}`"
    )
    return 0


def cmd_accounts_list(args: argparse.Namespace) -> int:
    from core.accounts import list_accounts

    accounts = list_accounts()
    if accounts and not hasattr(accounts[0], "token_readable"):
        from core.crypto import verify_key

        verify_key()  # no per-account flag to show it with: stop with the key's problem
    if args.json:
        print(json.dumps([_account_json(a) for a in accounts], indent=2))
        return 0
    if not accounts:
        print("no accounts yet: `python -m core accounts add --account act_… --token-stdin`")
        return 0
    header = ("ID", "ACCOUNT", "NAME", "CUR", "TIME ZONE", "TOKEN", "LAST SYNC", "ENTITIES")
    rows = [header]
    for a in accounts:
        last = a.last_sync_at.strftime("%Y-%m-%d %H:%M UTC") if a.last_sync_at else "never"
        if a.last_sync_status and a.last_sync_status != "succeeded":
            last += f" ({a.last_sync_status})"
        rows.append(
            (
                str(a.id),
                a.external_id,
                a.name,
                a.currency,
                a.timezone_name,
                _token_shown(a),
                last,
                f"{a.campaigns}/{a.adsets}/{a.ads}",
            )
        )
    _print_table(rows)
    return 0


def _account_json(a: Any) -> dict[str, Any]:
    return {
        "id": a.id,
        "account": a.external_id,
        "name": a.name,
        "currency": a.currency,
        "timezone": a.timezone_name,
        "status": a.status_label,
        "token_status": a.token_status,
        "token_readable": getattr(a, "token_readable", True),
        "graph_url": a.graph_url,
        "last_sync_at": a.last_sync_at.isoformat() if a.last_sync_at else None,
        "last_sync_status": a.last_sync_status,
        "last_sync_error": a.last_sync_error,
        "campaigns": a.campaigns,
        "adsets": a.adsets,
        "ads": a.ads,
    }


def _token_shown(account: Any) -> str:
    if not getattr(account, "token_readable", True):
        return "unreadable: key missing or changed"
    return str(account.token_status)


def cmd_accounts_remove(args: argparse.Namespace) -> int:
    from core.accounts import get_account, remove_account

    view = get_account(args.account)
    if not args.yes:
        answer = input(f"Remove {view.external_id} “{view.name}” and all its synced data? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 1
    remove_account(view.id)
    print(f"removed {view.external_id}")
    return 0


# ------------------------------------------------------------------------ rules


def _rule_commands(commands: Any) -> None:
    rules = commands.add_parser("rules", help="automation rules (RULES.md documents)")
    actions = rules.add_subparsers(metavar="ACTION")
    imported = actions.add_parser("import", help="save a rule document; prints the new id")
    imported.add_argument("file", type=_rule_file, help="a JSON file, or - for stdin")
    imported.add_argument(
        "--replace", type=_row_id("rule"), metavar="ID", help="save as a new version of ID"
    )
    imported.set_defaults(handler=cmd_rules_import)
    exported = actions.add_parser("export", help="print rule documents as JSON")
    exported.add_argument(
        "rule_id", nargs="?", type=_row_id("rule"), help="one rule (default: all)"
    )
    exported.set_defaults(handler=cmd_rules_export)
    actions.add_parser("list", help="saved rules").set_defaults(handler=cmd_rules_list)
    for name, help_text in (
        ("enable", "set a rule active"),
        ("disable", "pause a rule"),
        ("delete", "delete a rule (its executions and actions stay on the record)"),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("rule_id", type=_row_id("rule"))
        action.set_defaults(handler=cmd_rules_change, change=name)
    preview = actions.add_parser(
        "preview", help="what a rule — or, without ID, every active rule — matches now"
    )
    preview.add_argument(
        "rule_id", type=_row_id("rule"), nargs="?", help="omit for every active rule"
    )
    preview.add_argument("--all", action="store_true", help="show candidates that don't match")
    preview.set_defaults(handler=cmd_rules_preview)
    actions.add_parser(
        "schema", help="print the rule document's JSON Schema (docs/rule.schema.json)"
    ).set_defaults(handler=cmd_rules_schema, needs_db=False)


def cmd_rules_import(args: argparse.Namespace) -> int:
    from core.rules.store import save_rule

    if args.file == "-":
        name, data = "stdin", sys.stdin.buffer.read()
    else:
        name, data = args.file, Path(args.file).read_bytes()
    view = save_rule(_utf8(name, data), rule_id=args.replace)
    print(view.id)
    print(
        f"saved rule {view.id} “{view.name}” version {view.version} ({view.status})",
        file=sys.stderr,
    )
    return 0


def _utf8(name: str, data: bytes) -> str:
    """The text of a rule file (a UTF-8 byte-order mark is allowed), or InputError."""
    from core.errors import InputError

    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(
            "file",
            f"{name} is not UTF-8 text (byte 0x{data[error.start]:02x} at offset "
            f"{error.start}); save it as UTF-8, e.g. `iconv -f latin1 -t utf-8`",
        ) from None


def cmd_rules_export(args: argparse.Namespace) -> int:
    from core.rules.store import get_rule, list_rules

    if args.rule_id is not None:
        print(json.dumps(get_rule(args.rule_id).document, indent=2, ensure_ascii=False))
    else:
        documents = [rule.document for rule in list_rules()]
        print(json.dumps(documents, indent=2, ensure_ascii=False))
    return 0


def cmd_rules_list(args: argparse.Namespace) -> int:
    from core.rules.describe import describe_rule
    from core.rules.store import list_rules

    rules = list_rules()
    if not rules:
        print("no rules yet: `python -m core rules import FILE` (docs/rule.schema.json)")
        return 0
    rows = [("ID", "NAME", "LEVEL", "STATUS", "VERSION", "EVERY", "NEXT RUN")]
    for rule in rules:
        next_run = rule.next_execution_at
        rows.append(
            (
                str(rule.id),
                rule.name,
                rule.level,
                rule.status,
                str(rule.version),
                f"{rule.check_frequency_minutes} min",
                next_run.strftime("%Y-%m-%d %H:%M UTC") if next_run else "—",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index:  # each rule in words, under its row
            print(f"    {describe_rule(rules[index - 1].rule)}")
    return 0


def cmd_rules_change(args: argparse.Namespace) -> int:
    from core.rules.store import delete_rule, set_status

    if args.change == "delete":
        view = delete_rule(args.rule_id)
        print(f"deleted rule {view.id} “{view.name}”")
    else:
        view = set_status(args.rule_id, "active" if args.change == "enable" else "paused")
        print(f"rule {view.id} “{view.name}” is {view.status} (version {view.version})")
    return 0


def cmd_rules_preview(args: argparse.Namespace) -> int:
    from core.engine.preview import preview_outcomes
    from core.rules.describe import describe_rule, describe_value_key

    if args.rule_id is None:
        return _preview_every_rule()
    preview = preview_outcomes(args.rule_id)
    evaluation = preview.evaluation
    print(f"{evaluation.rule.name}: {describe_rule(evaluation.rule, evaluation.currency)}")
    shown = evaluation.candidates if args.all else evaluation.matched
    print(
        f"{len(evaluation.matched)} of {len(evaluation.candidates)} candidates match now "
        f"(local dates: {', '.join(f'{a} {d}' for a, d in evaluation.today.items()) or '—'})"
    )
    steps: dict[int, list[Any]] = {}
    for step in preview.steps:
        steps.setdefault(step.entity_id, []).append(step)
    for candidate in shown:
        mark = "✓" if candidate.matched else "·"
        values = " · ".join(
            f"{describe_value_key(key)} {text}" for key, text in candidate.shown.items()
        )
        print(f"{mark} {candidate.external_id} {candidate.name} ({candidate.account}): {values}")
        for reason in candidate.reasons:
            print(f"    ✗ {reason}")
        for step in steps.get(candidate.entity_id, []):
            change = f" {step.old_text} → {step.new_text}" if step.new_text else ""
            why = f": {step.reason}" if step.reason else ""
            note = f" ({step.note})" if step.note else ""
            print(f"    → {step.outcome}{why} — {step.action}{change}{note}")
    for account, reason in preview.skipped_accounts.items():
        print(f"left out: {account} — {reason}")
    print(f"{preview.summary} (a preview: nothing was changed)")
    return 0


def _preview_every_rule() -> int:
    from core.engine.run import preview_rules

    started = time.monotonic()
    results = preview_rules()
    if not results:
        print("no active rules")
        return 0
    rows = [("ID", "RULE", "LEVEL", "CANDIDATES", "MATCH NOW")]
    for view, evaluation in results:
        matched = int(evaluation.matched_mask.sum())
        rows.append((str(view.id), view.name, view.level, f"{len(evaluation):,}",
                     f"{matched:,}"))  # fmt: skip
    _print_table(rows)
    print(
        f"{len(results)} active rules evaluated in one pass in "
        f"{time.monotonic() - started:.2f} s; `rules preview ID` shows one rule's values"
    )
    return 0


STEP_WORDS = {"dry_run": "would (dry run)", "pending": "not sent"}


def cmd_run(args: argparse.Namespace) -> int:
    from core.engine.run import run_due_rules, run_rule_now
    from core.rules.store import get_rule

    if args.rule is not None:
        get_rule(args.rule)  # "no rule with id …" rather than "running elsewhere"
    results = [run_rule_now(args.rule)] if args.rule is not None else run_due_rules()
    if not results:
        print("no rules are due")
    for r in results:
        print(
            f"rule {r.rule_id}: {r.status} — {r.entities_checked} checked, "
            f"{r.entities_matched} matched; {r.summary} "
            f"in {r.duration_ms} ms (execution {r.execution_id})"
            + (f"\n  {r.error}" if r.error else "")
        )
        for step in r.steps:
            outcome = STEP_WORDS.get(step["outcome"], step["outcome"])
            change = f" {step.get('old')} → {step.get('new')}" if step.get("new") else ""
            reason = f" ({step['reason']})" if step.get("reason") else ""
            error = f" — {step['error']}" if step.get("error") else ""
            print(
                f"  {outcome}: {step['action']} {step['name']}{change}{reason}{error}"
                f" · {step['account']}"
            )
    return 0 if all(r.status != "failed" for r in results) else 1


# -------------------------------------------------------------------- approvals


def _approval_commands(commands: Any) -> None:
    approvals = commands.add_parser("approvals", help="the approval queue")
    actions = approvals.add_subparsers(metavar="ACTION")
    listing = actions.add_parser("list", help="pending proposals (--all: every one)")
    listing.add_argument("--all", action="store_true")
    listing.set_defaults(handler=cmd_approvals_list)
    for name in ("approve", "reject"):
        decide = actions.add_parser(name, help=f"{name} proposals by id (one or more)")
        decide.add_argument("approval_ids", type=_row_id("proposal"), nargs="+", metavar="ID")
        decide.add_argument("--by", default=getpass.getuser(), help="who decides")
        decide.add_argument("--reason")
        decide.set_defaults(handler=cmd_approvals_decide, decision=name, needs_key=True)


def cmd_approvals_list(args: argparse.Namespace) -> int:
    from core.actions.approvals import expire_approvals, list_approvals

    expire_approvals()
    items = list_approvals(None if args.all else "pending")
    if not items:
        print("nothing awaits approval")
        return 0
    rows = [("ID", "ENTITY", "ACTION", "CURRENT → PROPOSED", "STATUS", "EXPIRES")]
    for item in items:
        rows.append(
            (
                str(item.id),
                item.entity_name or "—",
                item.action_type,
                f"{item.old or '—'} → {item.new or '—'}",
                item.status,
                f"{item.expires_at:%Y-%m-%d %H:%M} UTC",
            )
        )
    _print_table(rows)
    return 0


def cmd_approvals_decide(args: argparse.Namespace) -> int:
    """Several ids are decided together (approvals re-read and write in batches); the
    exit code is 1 when any of them could not be decided."""
    from core.actions.approvals import Decision, approve_many, reject

    if args.decision == "approve":
        decisions = approve_many(args.approval_ids, by=args.by, reason=args.reason)
    else:
        decisions = []
        for approval_id in args.approval_ids:
            try:
                decisions.append(Decision(approval_id, reject(approval_id, by=args.by,
                                                              reason=args.reason)))  # fmt: skip
            except RexError as error:
                decisions.append(Decision(approval_id, None, error))
    for decision in decisions:
        if decision.error is not None:
            print(f"proposal {decision.approval_id}: {decision.error}", file=sys.stderr)
            continue
        view = decision.view
        assert view is not None
        executed = f" (action {view.action_id})" if view.action_id else ""
        print(f"proposal {view.id}: {view.status}{executed}")
    return 1 if any(d.error for d in decisions) else 0


# ---------------------------------------------------------------------- actions


def _action_commands(commands: Any) -> None:
    actions = commands.add_parser("actions", help="actions Rex took").add_subparsers(
        metavar="ACTION"
    )
    rollback = actions.add_parser("rollback", help="undo an action (refused if it drifted)")
    rollback.add_argument("action_id", type=_row_id("action"))
    rollback.add_argument("--by", default=getpass.getuser())
    rollback.set_defaults(handler=cmd_actions_rollback, needs_key=True)
    unknown = actions.add_parser(
        "unknown", help="writes whose outcome Rex is still settling, or needs a person for"
    )
    unknown.set_defaults(handler=cmd_actions_unknown)
    settle = actions.add_parser(
        "settle", help="say whether Meta applied a write whose outcome is unknown"
    )
    settle.add_argument("action_id", type=_row_id("action"))
    verdict = settle.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--applied", action="store_true", help="Ads Manager shows the change")
    verdict.add_argument("--not-applied", action="store_true", help="it does not")
    settle.add_argument("--by", default=getpass.getuser())
    settle.add_argument("--note", default=None, help="what you checked")
    settle.set_defaults(handler=cmd_actions_settle)


def cmd_actions_unknown(args: argparse.Namespace) -> int:
    from core.actions.settle import list_unknown

    rows = list_unknown()
    if not rows:
        print("no action has an unknown outcome")
        return 0
    _print_table(
        [("ID", "WHEN (UTC)", "ACTION", "ENTITY", "STATE"), *[
            (str(r.id), f"{r.created_at:%Y-%m-%d %H:%M}", r.action_type, r.entity_name or "",
             "needs a person" if r.needs_person else "Rex is settling it")
            for r in rows
        ]]
    )  # fmt: skip
    return 0


def cmd_actions_settle(args: argparse.Namespace) -> int:
    from core.actions.settle import settle_by_person

    row = settle_by_person(args.action_id, applied=args.applied, by=args.by, note=args.note)
    print(f"action {row.id}: {row.status} (settled by {args.by})")
    return 0


def cmd_actions_rollback(args: argparse.Namespace) -> int:
    from core.actions.rollback import rollback

    undo = rollback(args.action_id, by=args.by)
    print(
        f"rollback action {undo.id}: {undo.status} ({undo.old_value} → {undo.new_value})"
        + (f" — {undo.error_message}" if undo.error_message else "")
    )
    return 0 if undo.status == "succeeded" else 1


def cmd_rules_schema(args: argparse.Namespace) -> int:
    from core.rules.document import rule_json_schema

    print(json.dumps(rule_json_schema(), indent=2, ensure_ascii=False))
    return 0


# ------------------------------------------------------------------------- sync


def cmd_sync(args: argparse.Namespace) -> int:
    from core.sync.runner import SyncOptions, sync_accounts

    results = sync_accounts(
        args.account,
        options=SyncOptions(days=args.days, breakdowns=not args.no_breakdowns),
        progress=_print_progress,
    )
    if not results:
        print("no accounts to sync: connect one with `python -m core accounts add`")
        return 0
    for result in results:
        if result.ok:
            summary = ", ".join(f"{k} {v}" for k, v in _flatten(result.counts).items() if v)
            print(
                f"✓ {result.account}: {result.since} … {result.until} in {result.seconds:.1f} s"
                + (f" ({summary})" if summary else " (no changes)")
            )
        else:
            print(f"✗ {result.account}: {result.error}", file=sys.stderr)
    return 0 if all(r.ok for r in results) else 1


def _print_progress(event: Any) -> None:
    width = 24
    filled = int(width * event.done / max(event.total, 1))
    bar = "█" * filled + "·" * (width - filled)
    detail = f" {event.detail}" if event.detail else ""
    line = f"\r{event.account} [{bar}] {event.done}/{event.total} {event.step}{detail}"
    stream = sys.stderr
    if stream.isatty():
        stream.write(line[:120].ljust(120))
        if event.done >= event.total:
            stream.write("\n")
    else:
        stream.write(line.lstrip("\r") + "\n")
    stream.flush()


def _flatten(counts: dict[str, Any], prefix: str = "") -> dict[str, int]:
    flat: dict[str, int] = {}
    for key, value in counts.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        elif isinstance(value, int):
            flat[f"{prefix}{key}"] = value
    return flat


# --------------------------------------------------------------------------- up


def cmd_up(args: argparse.Namespace) -> int:
    from core.launcher import Launcher

    return Launcher(
        sandbox=not args.no_sandbox and get_settings().run_sandbox,
        ui=not args.no_ui,
        first_sync=not args.no_sync,
        scheduler=not args.no_scheduler,
    ).run()


# ---------------------------------------------------------------------- helpers


class _UsageError(RexError):
    pass


def _usage(message: str) -> _UsageError:
    return _UsageError(message)


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
