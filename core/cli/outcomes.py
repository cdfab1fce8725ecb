"""`outcomes update [--json]`, `outcomes list [--account …] [--json]`: what the applied
changes did, measured against what would have happened anyway (core/outcomes/).

`update` starts the outcomes of rule actions that have none and measures each checkpoint
(1, 3, 7, 14 days after the change) whose days and late conversions have settled; run
again, it changes nothing. The JSON of `list` is a list of objects, one per applied
change: id, action_id, suggestion_id, kind, account_id (act_…), currency, entity_id (Meta's
id), entity_name, changed_on (the account-local day), verdict and is_improving (the 7-day
checkpoint's), baseline (the 7 and 28 days before), checkpoints ({"1": …, "3": …, "7": …,
"14": …}: measured_at, verdict, is_improving, learning, effects {metric: {estimate, low,
high, level}}, deltas (the plain before/after), comparison {method, entities, baseline,
baseline_days, learning_days}, reason).
"""

from __future__ import annotations

import argparse
import json

from core.cli.acting import add_as, reader
from core.cli.args import Parser
from core.cli.console import print_table


def register(parser: Parser) -> None:
    actions = parser.add_subparsers(metavar="ACTION")
    update = actions.add_parser("update", help="measure the checkpoints whose days have settled")
    update.add_argument("--json", action="store_true")
    update.set_defaults(handler=update_outcomes)
    listing = actions.add_parser("list", help="every applied change and what it did")
    listing.add_argument("--account", help="act_… or Rex's id")
    listing.add_argument("--json", action="store_true")
    add_as(listing)
    listing.set_defaults(handler=list_outcomes)


def update_outcomes(args: argparse.Namespace) -> int:
    from core.db.types import utcnow
    from core.outcomes.record import update_outcomes as update

    done = update(now=utcnow())
    if args.json:
        measured = [{"outcome": o, "days": d} for o, d in done.measured]
        print(json.dumps({"started": done.started, "waiting": done.waiting, "measured": measured}))
    else:
        print(f"{done.started} outcomes started, {len(done.measured)} checkpoints measured, "
              f"{done.waiting} still waiting for their days to settle")  # fmt: skip
    return 0


def list_outcomes(args: argparse.Namespace) -> int:
    from core.views.outcomes import effect_words
    from core.views.outcomes import list_outcomes as listed

    views = listed(actor=reader(args), account=args.account)
    if args.json:
        print(json.dumps([v.to_json() for v in views], indent=2, ensure_ascii=False))
        return 0
    if not views:
        print("no outcomes yet: they start when a change is applied")
        return 0
    rows = [("ID", "CHANGED ON", "KIND", "ENTITY", "7-DAY VERDICT", "PROFIT EFFECT (90 %)")]
    for v in views:
        week = v.checkpoints.get(7)
        effect = effect_words((week.effects or {}).get("profit") if week else None, v.currency)
        rows.append((str(v.id), str(v.changed_on or "—"), v.kind or "—", v.entity_name or "—",
                     v.verdict or "waiting", effect))  # fmt: skip
    print_table(rows)
    return 0
