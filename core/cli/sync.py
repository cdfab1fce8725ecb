"""`sync [--account act_…] [--days N] [--no-breakdowns]`: read accounts from Meta, with
progress; exit 1 if an account failed."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.cli.args import Parser, days
from core.cli.console import print_progress
from core.sync.runner import SyncOptions, sync_accounts


def register(parser: Parser) -> None:
    parser.add_argument("--account", action="append", help="act_… (repeatable; default: all)")
    parser.add_argument("--days", type=days, help="days of metrics to read (default REX_SYNC_DAYS)")
    parser.add_argument("--no-breakdowns", action="store_true", help="skip the breakdown tables")
    parser.set_defaults(handler=sync, needs_key=True)


def sync(args: argparse.Namespace) -> int:
    results = sync_accounts(
        args.account,
        options=SyncOptions(days=args.days, breakdowns=not args.no_breakdowns),
        progress=print_progress,
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


def _flatten(counts: dict[str, Any], prefix: str = "") -> dict[str, int]:
    """Nested counts as one level: {"metrics": {"ads": 3}} → {"metrics.ads": 3}."""
    flat: dict[str, int] = {}
    for key, value in counts.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        elif isinstance(value, int):
            flat[f"{prefix}{key}"] = value
    return flat
