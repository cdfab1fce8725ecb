"""`approvals list [--all]`, `approvals approve|reject ID [ID …]`: the approval queue."""

from __future__ import annotations

import argparse
import sys

from core.actions.approvals import approve_many, expire_approvals, list_approvals, reject_many
from core.cli.acting import acting, add_as, reader
from core.cli.args import Parser, row_id
from core.cli.console import print_table
from core.enums import ApprovalStatus


def register(parser: Parser) -> None:
    actions = parser.add_subparsers(metavar="ACTION")
    listing = actions.add_parser("list", help="pending proposals (--all: every one)")
    listing.add_argument("--all", action="store_true")
    add_as(listing)
    listing.set_defaults(handler=show_approvals)
    for name in ("approve", "reject"):
        decide = actions.add_parser(name, help=f"{name} proposals by id (one or more)")
        decide.add_argument("approval_ids", type=row_id("proposal"), nargs="+", metavar="ID")
        add_as(decide)
        decide.add_argument("--reason")
        decide.set_defaults(handler=decide_approvals, decision=name, needs_key=True)


def show_approvals(args: argparse.Namespace) -> int:
    expire_approvals()
    items = list_approvals(None if args.all else ApprovalStatus.PENDING, actor=reader(args))
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
    print_table(rows)
    return 0


def decide_approvals(args: argparse.Namespace) -> int:
    """Several ids are decided together (approvals re-read and write in batches); the
    exit code is 1 when any of them could not be decided."""
    decide = approve_many if args.decision == "approve" else reject_many
    result = decide(args.approval_ids, by=acting(args), reason=args.reason)
    for decision in result:
        if not decision.decided:
            print(f"proposal {decision.approval_id}: {decision.message}", file=sys.stderr)
            continue
        executed = f" (action {decision.action_id})" if decision.action_id else ""
        print(f"proposal {decision.approval_id}: {decision.outcome}{executed}")
    return 0 if result.all_decided else 1
