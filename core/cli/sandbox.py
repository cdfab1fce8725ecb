"""`sandbox serve`: the built-in Graph-compatible server (docs/sandbox.md).

Its first stdout line is JSON {graph_url, token, accounts, admin_url}; `up` reads it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from core.cli.args import Parser, UsageError, milliseconds, port, token
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
