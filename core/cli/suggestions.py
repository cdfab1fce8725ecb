"""`suggestions generate [--account act_…] [--json]`, `suggestions list [--status …]
[--account …] [--kind …] [--json]`, `suggestions show ID`, `suggestions apply ID`,
`suggestions dismiss ID --reason …`: what the breakdowns say, as changes to apply.

The JSON (`--json`) is a list of objects, one per suggestion: id, kind, status,
account_id (act_…), entity_id (the ad set's Meta id), entity_name, level, dimension,
segment (as Meta spells it), direction, title, why, action (the proposed change: its
type, the full change and its words; null when Rex cannot make it, with
`not_applicable` saying why), expected_weekly_profit ({estimate, low, high, currency},
in the account currency's major units, as strings), confidence, evidence, reason,
created_at, action_id, approval_id.
"""

from __future__ import annotations

import argparse
import json
import sys

from core.cli.acting import acting, add_as, reader
from core.cli.args import Parser, row_id
from core.cli.console import print_table


def register(parser: Parser) -> None:
    actions = parser.add_subparsers(metavar="ACTION")
    generate = actions.add_parser("generate", help="find suggestions now (all accounts or one)")
    generate.add_argument("--account", help="act_… or Rex's id (default: every account)")
    generate.add_argument("--json", action="store_true", help="the open suggestions, as JSON")
    add_as(generate)
    generate.set_defaults(handler=generate_suggestions)
    listing = actions.add_parser("list", help="suggestions (default: the open ones)")
    listing.add_argument(
        "--status", help="open (default), new, queued, applied, dismissed, expired, superseded, all"
    )
    listing.add_argument("--account", help="act_… or Rex's id")
    listing.add_argument("--kind", help="demographic, placement, geography, dayparting, budget")
    listing.add_argument("--json", action="store_true")
    add_as(listing)
    listing.set_defaults(handler=list_suggestions)
    show = actions.add_parser("show", help="one suggestion: its why, evidence and history")
    show.add_argument("suggestion_id", type=row_id("suggestion"), metavar="ID")
    add_as(show)
    show.set_defaults(handler=show_suggestion)
    apply = actions.add_parser("apply", help="apply a suggestion (through the rails)")
    apply.add_argument("suggestion_id", type=row_id("suggestion"), metavar="ID")
    add_as(apply)
    apply.set_defaults(handler=apply_suggestion, needs_key=True)
    dismiss = actions.add_parser("dismiss", help="dismiss a suggestion, with a reason")
    dismiss.add_argument("suggestion_id", type=row_id("suggestion"), metavar="ID")
    dismiss.add_argument("--reason", required=True, help="why (kept on the record)")
    add_as(dismiss)
    dismiss.set_defaults(handler=dismiss_suggestion)


def generate_suggestions(args: argparse.Namespace) -> int:
    from core.suggestions.generate import generate
    from core.views.suggestions import list_suggestions as listed

    def progress(done: int, of: int, account: str) -> None:
        if account and not args.json:
            print(f"[{done + 1}/{of}] {account} …", file=sys.stderr)

    by = reader(args)
    result = generate(args.account, by=by, progress=progress)
    if args.json:
        views = listed(actor=by, account=args.account)  # what was generated
        print(json.dumps([v.to_json() for v in views], indent=2, ensure_ascii=False))
    else:
        for account, done in result.accounts.items():
            print(
                f"{account}: {len(done.new)} new, {len(done.refreshed)} refreshed, "
                f"{len(done.superseded)} superseded, {len(done.expired)} expired, "
                f"{len(done.still_dismissed)} still dismissed"
            )
    for account, why in result.skipped.items():
        print(f"{account}: not generated: {why}", file=sys.stderr)
    return 1 if result.skipped else 0


def list_suggestions(args: argparse.Namespace) -> int:
    from core.views.suggestions import list_suggestions as listed

    views = listed(actor=reader(args), status=args.status, account=args.account, kind=args.kind)
    if args.json:
        print(json.dumps([v.to_json() for v in views], indent=2, ensure_ascii=False))
        return 0
    if not views:
        print("no suggestions: `python -m core suggestions generate` looks for them")
        return 0
    rows = [("ID", "KIND", "STATUS", "WEEKLY PROFIT (90 %)", "CONFIDENCE", "SUGGESTION")]
    for v in views:
        rows.append(
            (
                str(v.id),
                v.kind,
                v.status,
                v.weekly_words,
                "—" if v.confidence is None else f"{v.confidence:.0%}",
                v.title,
            )
        )
    print_table(rows)
    return 0


def show_suggestion(args: argparse.Namespace) -> int:
    from core.views.suggestions import get_suggestion

    v = get_suggestion(args.suggestion_id, actor=reader(args))
    print(f"{v.title}\n{v.kind} · {v.account} · {v.entity_name} · {v.status}")
    print(f"\n{v.why}\n")
    print(f"expected: {v.weekly_words}; confidence {v.confidence or 0:.0%} over 7 days"
          + (f", {v.confidence_28_days:.0%} over 4 weeks" if v.confidence_28_days is not None
             else "")
          + (f"; pays Meta's learning phase back in {v.payback_days:.0f} days"
             if v.payback_days else ""))  # fmt: skip
    if v.action:
        print(f"change: {v.action.get('summary')}: {v.action.get('old')} → {v.action.get('new')}")
    else:
        print(f"not applicable from Rex: {v.not_applicable}")
    for event in v.events:
        came = f"{event.previous} → " if event.previous else ""
        print(f"  {event.at:%Y-%m-%d %H:%M} UTC  {came}{event.status}  by {event.by}"
              + (f": {event.reason}" if event.reason else ""))  # fmt: skip
    return 0


def apply_suggestion(args: argparse.Namespace) -> int:
    from core.suggestions.apply import apply_suggestion as apply

    result = apply(args.suggestion_id, by=acting(args))
    print(f"suggestion {result.suggestion_id}: {result.message}")
    return 0 if result.status in ("applied", "queued") else 1


def dismiss_suggestion(args: argparse.Namespace) -> int:
    from core.db.types import utcnow
    from core.suggestions.records import dismiss

    row = dismiss(args.suggestion_id, args.reason, by=acting(args), now=utcnow())
    print(f"suggestion {row.id}: dismissed ({row.reason})")
    return 0
