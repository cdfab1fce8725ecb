"""`up [--no-sandbox] [--no-ui] [--no-sync] [--no-scheduler]`: what `make run` runs
(core/launcher.py)."""

from __future__ import annotations

import argparse

from core.cli.args import Parser
from core.launcher import Launcher
from core.settings import get_settings


def register(parser: Parser) -> None:
    parser.add_argument("--no-sandbox", action="store_true", help="don't start the sandbox")
    parser.add_argument("--no-ui", action="store_true", help="don't start Streamlit")
    parser.add_argument("--no-sync", action="store_true", help="skip the first sync")
    parser.add_argument("--no-scheduler", action="store_true", help="don't start the scheduler")
    parser.set_defaults(handler=up, needs_db=False)  # it migrates


def up(args: argparse.Namespace) -> int:
    return Launcher(
        sandbox=not args.no_sandbox and get_settings().run_sandbox,
        ui=not args.no_ui,
        first_sync=not args.no_sync,
        scheduler=not args.no_scheduler,
    ).run()
