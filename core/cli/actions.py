"""`actions rollback ID`, `actions unknown`, `actions settle ID --applied|--not-applied`:
the writes Rex made — undoing one, and those whose outcome is still being settled."""

from __future__ import annotations

import argparse

from core.actions.rollback import rollback
from core.actions.settle import list_unknown, settle_by_person
from core.cli.acting import acting, add_as
from core.cli.args import Parser, row_id
from core.cli.console import print_table
from core.enums import ActionStatus


def register(parser: Parser) -> None:
    actions = parser.add_subparsers(metavar="ACTION")
    undo = actions.add_parser("rollback", help="undo an action (refused if it drifted)")
    undo.add_argument("action_id", type=row_id("action"))
    add_as(undo)
    undo.set_defaults(handler=roll_back, needs_key=True)
    unknown = actions.add_parser(
        "unknown", help="writes whose outcome Rex is still settling, or needs a person for"
    )
    unknown.set_defaults(handler=show_unknown)
    settle = actions.add_parser(
        "settle", help="say whether Meta applied a write whose outcome is unknown"
    )
    settle.add_argument("action_id", type=row_id("action"))
    verdict = settle.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--applied", action="store_true", help="Ads Manager shows the change")
    verdict.add_argument("--not-applied", action="store_true", help="it does not")
    add_as(settle)
    settle.add_argument("--note", default=None, help="what you checked")
    settle.set_defaults(handler=settle_one)


def roll_back(args: argparse.Namespace) -> int:
    undo = rollback(args.action_id, by=acting(args))
    print(
        f"rollback action {undo.id}: {undo.status} ({undo.old_value} → {undo.new_value})"
        + (f" — {undo.error_message}" if undo.error_message else "")
    )
    return 0 if undo.status == ActionStatus.SUCCEEDED else 1


def show_unknown(args: argparse.Namespace) -> int:
    rows = list_unknown()
    if not rows:
        print("no action has an unknown outcome")
        return 0
    print_table(
        [("ID", "WHEN (UTC)", "ACTION", "ENTITY", "STATE"), *[
            (str(r.id), f"{r.created_at:%Y-%m-%d %H:%M}", r.action_type, r.entity_name or "",
             "needs a person" if r.needs_person else "Rex is settling it")
            for r in rows
        ]]
    )  # fmt: skip
    return 0


def settle_one(args: argparse.Namespace) -> int:
    by = acting(args)
    row = settle_by_person(args.action_id, applied=args.applied, by=by, note=args.note)
    print(f"action {row.id}: {row.status} (settled by {by.label})")
    return 0
