"""`sandbox serve`: the built-in Graph-compatible server (docs/sandbox.md); `sandbox
advance`: move a running sandbox's clock forward.

`serve`'s first stdout line is JSON {graph_url, token, accounts, admin_url}; `up` reads
it. `advance --days N` (or `--to YYYY-MM-DD`) moves every connected sandbox's today
forward and Rex's clock with it (core/clock.py): the days that pass are generated from
the state as it is then; sync to see them in Rex. Refused while a real Meta account is
connected.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from core.cli.acting import acting, add_as
from core.cli.args import Parser, UsageError, milliseconds, port, token
from core.cli.console import print_table
from core.sandbox import FaultConfig, run_server
from core.settings import get_settings


def register(parser: Parser) -> None:
    actions = parser.add_subparsers(metavar="ACTION")
    serve = actions.add_parser(
        "serve",
        help="serve the sandbox; the first stdout line is JSON {graph_url, token, accounts}",
    )
    settings = get_settings()
    serve.add_argument("--host", default=settings.sandbox_host)
    serve.add_argument("--port", type=port, default=settings.sandbox_port, help="0 = any free")
    serve.add_argument("--seed", type=int, default=settings.sandbox_seed)
    serve.add_argument("--scenario", help="a scenario JSON file (docs/sandbox.md)")
    serve.add_argument("--token", type=token, help="the token to accept (default: a random one)")
    serve.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND=RATE",
        help="inject errors, e.g. --fault 5xx=0.1 --fault buc=0.05 (docs/sandbox.md)",
    )
    serve.add_argument("--latency-ms", type=milliseconds, default=0, help="added to every answer")
    serve.add_argument("--expired-token", action="store_true", help="answer 190 to everything")
    serve.add_argument(
        "--state-file",
        type=Path,
        default=None,
        help="keep the sandbox's state (entities, writes, change history, token) in this file "
        "across restarts; `make run` uses <data dir>/sandbox-state.json",
    )
    serve.set_defaults(handler=serve_sandbox, needs_db=False)

    advance = actions.add_parser(
        "advance",
        help="move the connected sandboxes' clock forward, and Rex's with it (then sync)",
    )
    when = advance.add_mutually_exclusive_group(required=True)
    when.add_argument("--days", type=_days, help="how many days to move forward (1–366)")
    when.add_argument("--to", type=_date, help="the UTC date to move to (YYYY-MM-DD)")
    add_as(advance)
    advance.set_defaults(handler=advance_clock)


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of days, 0 or more")
    return value


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a date as YYYY-MM-DD") from None


def advance_clock(args: argparse.Namespace) -> int:
    from core import clock
    from core.accounts import advance_sandboxes

    days = args.days
    if args.to is not None:
        days = (args.to - clock.now().date()).days
        if days < 1:
            raise UsageError(
                f"--to: {args.to} is not after Rex's today ({clock.now().date()}): the "
                "sandbox's clock only moves forward"
            )
    moved = advance_sandboxes(days, by=acting(args))
    print_table([("Account", "Today"), *moved.today.items()])
    print(
        f"The sandbox and Rex are {moved.ahead_days} day(s) ahead of the wall clock. Sync "
        "to see the new days: python -m core sync (the scheduler also does, within minutes)"
    )
    return 0


def serve_sandbox(args: argparse.Namespace) -> int:
    if args.scenario is not None and not Path(args.scenario).is_file():
        raise UsageError(f"--scenario: {args.scenario} does not exist")
    try:
        faults = FaultConfig(
            rates=parse_faults(args.fault),
            latency_ms=args.latency_ms,
            expired_token=args.expired_token,
        )
    except ValueError as error:  # an unknown kind: FaultConfig names the known ones
        raise UsageError(f"--fault: {error}") from None
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


def parse_faults(items: Sequence[str]) -> dict[str, float]:
    """`--fault KIND=RATE` options as {kind: rate}; a rate is from 0 to 1."""
    rates: dict[str, float] = {}
    for item in items:
        kind, sep, rate = item.partition("=")
        try:
            value = float(rate)
        except ValueError:
            value = -1.0
        if not sep or not kind or not 0 <= value <= 1:
            raise UsageError(
                f"--fault {item!r}: write KIND=RATE with a rate from 0 to 1, e.g. 5xx=0.1"
            )
        rates[kind.strip()] = value
    return rates
