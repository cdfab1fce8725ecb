"""`accounts add|list|remove`: connected ad accounts (never their tokens)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from core.accounts import (
    AccountView,
    connect_account,
    get_account,
    readable_accounts,
    remove_account,
    set_four_eyes,
)
from core.cli.acting import acting, add_as, reader
from core.cli.args import Parser, UsageError, token
from core.cli.console import confirm, print_table
from core.enums import SyncStatus


def register(parser: Parser) -> None:
    actions = parser.add_subparsers(metavar="ACTION")
    add = actions.add_parser(
        "add", help="connect an account (the token is checked with a live read first)"
    )
    add.add_argument("--account", required=True, help="act_…")
    given = add.add_mutually_exclusive_group()
    given.add_argument(
        "--token", type=token, help="access token (visible to `ps`: prefer --token-stdin)"
    )
    given.add_argument("--token-stdin", action="store_true", help="read the token from stdin")
    add.add_argument("--graph-url", help="another Graph endpoint, e.g. the sandbox's graph_url")
    add_as(add)
    add.set_defaults(handler=add_account, prepare=read_token)

    listing = actions.add_parser("list", help="connected accounts")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    add_as(listing)
    listing.set_defaults(handler=show_accounts)

    remove = actions.add_parser("remove", help="remove an account and all its synced data")
    remove.add_argument("account", help="act_… or Rex's id")
    remove.add_argument("--yes", action="store_true", help="don't ask for confirmation")
    add_as(remove)
    remove.set_defaults(handler=remove_one)

    eyes = actions.add_parser(
        "four-eyes", help="on: whoever last changed a rule cannot approve its proposals here"
    )
    eyes.add_argument("account", help="act_… or Rex's id")
    eyes.add_argument("switch", choices=("on", "off"))
    add_as(eyes)
    eyes.set_defaults(handler=four_eyes)


def read_token(args: argparse.Namespace) -> int:
    """The token from --token, stdin or the terminal, before the database is opened."""
    if args.token_stdin:
        args.token = sys.stdin.readline().strip()
        if not args.token:
            raise UsageError("--token-stdin: stdin gave no token; pipe the token in, one line")
    elif args.token is None:
        if not sys.stdin.isatty():
            raise UsageError("no token given: pipe it in with --token-stdin, or run in a terminal")
        args.token = getpass.getpass("Access token (not echoed): ").strip()
        if not args.token:
            raise UsageError("no token typed; run the command again and paste the token")
    return 0


def add_account(args: argparse.Namespace) -> int:
    view = connect_account(args.account, args.token, by=acting(args), graph_url=args.graph_url)
    print(
        f"connected {view.external_id} “{view.name}” ({view.currency}, {view.timezone_name}, "
        f"{view.status_label}); run `python -m core sync --account {view.external_id}`"
    )
    return 0


def four_eyes(args: argparse.Namespace) -> int:
    view = set_four_eyes(args.account, args.switch == "on", by=acting(args))
    print(f"four eyes is {'on' if view.four_eyes else 'off'} for {view.external_id}: "
          + ("whoever last changed a rule cannot approve its proposals there"
             if view.four_eyes else "anyone with the approver role decides"))  # fmt: skip
    return 0


def show_accounts(args: argparse.Namespace) -> int:
    accounts = readable_accounts(reader(args))
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
        if a.last_sync_status and a.last_sync_status != SyncStatus.SUCCEEDED:
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
    print_table(rows)
    return 0


def _account_json(a: AccountView) -> dict[str, Any]:
    return {
        "id": a.id,
        "account": a.external_id,
        "name": a.name,
        "currency": a.currency,
        "timezone": a.timezone_name,
        "status": a.status_label,
        "token_status": a.token_status,
        "token_readable": a.token_readable,
        "graph_url": a.graph_url,
        "last_sync_at": a.last_sync_at.isoformat() if a.last_sync_at else None,
        "last_sync_status": a.last_sync_status,
        "last_sync_error": a.last_sync_error,
        "campaigns": a.campaigns,
        "adsets": a.adsets,
        "ads": a.ads,
    }


def _token_shown(account: AccountView) -> str:
    if not account.token_readable:
        return "unreadable: key missing or changed"
    return str(account.token_status)


def remove_one(args: argparse.Namespace) -> int:
    by = acting(args)
    view = get_account(args.account)
    if not args.yes and not confirm(
        f"Remove {view.external_id} “{view.name}” and all its synced data?"
    ):
        print("nothing removed")
        return 1
    remove_account(view.id, by=by)
    print(f"removed {view.external_id}")
    return 0
