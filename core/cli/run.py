"""`run [--rule ID]`: run the due rules (or one rule now) and print what each did; exit 1
if a run failed."""

from __future__ import annotations

import argparse

from core.cli.acting import acting, add_as
from core.cli.args import Parser, row_id
from core.db.models import ExecutionStatus
from core.engine.run import run_due_rules, run_rule_now
from core.engine.steps import StepOutcome
from core.rules.store import get_rule

STEP_WORDS = {StepOutcome.DRY_RUN: "would (dry run)", StepOutcome.PENDING: "not sent"}


def register(parser: Parser) -> None:
    parser.add_argument(
        "--rule", type=row_id("rule"), metavar="ID",
        help="run this rule now, due or not (as the user named by --as)",
    )  # fmt: skip
    add_as(parser)
    parser.set_defaults(handler=run, needs_key=True)


def run(args: argparse.Namespace) -> int:
    if args.rule is not None:
        by = acting(args)
        get_rule(args.rule, actor=by)  # "no rule with id …" rather than "running elsewhere"
        results = [run_rule_now(args.rule, by=by)]
    else:
        results = run_due_rules()  # the scheduler's own work, as Rex
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
            outcome = STEP_WORDS.get(step.outcome, step.outcome.value)
            change = f" {step.old} → {step.new}" if step.new else ""
            reason = f" ({step.reason})" if step.reason else ""
            error = f" — {step.error}" if step.error else ""
            print(f"  {outcome}: {step.action} {step.name}{change}{reason}{error} · {step.account}")
    return 0 if all(r.status != ExecutionStatus.FAILED for r in results) else 1
