"""`rules import|export|list|enable|disable|delete|preview|schema`: rule documents.

The document's JSON Schema is docs/rule.schema.json; every saved change is a new version.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from core.cli.acting import acting, add_as, reader
from core.cli.args import Parser, row_id, rule_file
from core.cli.console import print_table
from core.db.models import RuleStatus
from core.engine.preview import PreviewStep, preview_outcomes
from core.errors import InputError
from core.rules.describe import describe_rule, describe_value_key
from core.rules.document import parse_rule, rule_json_schema
from core.rules.preview import preview_rules
from core.rules.store import delete_rule, get_rule, list_rules, save_rule, set_status


def register(parser: Parser) -> None:
    actions = parser.add_subparsers(metavar="ACTION")
    imported = actions.add_parser("import", help="save a rule document; prints the new id")
    imported.add_argument("file", type=rule_file, help="a JSON file, or - for stdin")
    imported.add_argument(
        "--replace", type=row_id("rule"), metavar="ID", help="save as a new version of ID"
    )
    add_as(imported)
    imported.set_defaults(handler=import_rule)
    exported = actions.add_parser("export", help="print rule documents as JSON")
    exported.add_argument("rule_id", nargs="?", type=row_id("rule"), help="one rule (default: all)")
    add_as(exported)
    exported.set_defaults(handler=export_rules)
    listed = actions.add_parser("list", help="saved rules")
    add_as(listed)
    listed.set_defaults(handler=show_rules)
    for name, help_text in (
        ("enable", "set a rule active"),
        ("disable", "pause a rule"),
        ("delete", "delete a rule (its executions and actions stay on the record)"),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("rule_id", type=row_id("rule"))
        add_as(action)
        action.set_defaults(handler=change_rule, change=name)
    preview = actions.add_parser(
        "preview", help="what a rule — or, without ID, every active rule — matches now"
    )
    preview.add_argument(
        "rule_id", type=row_id("rule"), nargs="?", help="omit for every active rule"
    )
    preview.add_argument("--all", action="store_true", help="show candidates that don't match")
    add_as(preview)
    preview.set_defaults(handler=preview_rule)
    actions.add_parser(
        "schema", help="print the rule document's JSON Schema (docs/rule.schema.json)"
    ).set_defaults(handler=print_schema, needs_db=False)


def import_rule(args: argparse.Namespace) -> int:
    if args.file == "-":
        name, data = "stdin", sys.stdin.buffer.read()
    else:
        name, data = args.file, Path(args.file).read_bytes()
    rule = parse_rule(_utf8(name, data))  # the document's own problems first
    view = save_rule(rule, by=acting(args), rule_id=args.replace)
    print(view.id)
    print(
        f"saved rule {view.id} “{view.name}” version {view.version} ({view.status})",
        file=sys.stderr,
    )
    return 0


def _utf8(name: str, data: bytes) -> str:
    """The text of a rule file (a UTF-8 byte-order mark is allowed), or InputError."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(
            "file",
            f"{name} is not UTF-8 text (byte 0x{data[error.start]:02x} at offset "
            f"{error.start}); save it as UTF-8, e.g. `iconv -f latin1 -t utf-8`",
        ) from None


def export_rules(args: argparse.Namespace) -> int:
    if args.rule_id is not None:
        document = get_rule(args.rule_id, actor=reader(args)).document
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        documents = [rule.document for rule in list_rules(actor=reader(args))]
        print(json.dumps(documents, indent=2, ensure_ascii=False))
    return 0


def show_rules(args: argparse.Namespace) -> int:
    rules = list_rules(actor=reader(args))
    if not rules:
        print("no rules yet: `python -m core rules import FILE` (docs/rule.schema.json)")
        return 0
    rows = [("ID", "NAME", "LEVEL", "STATUS", "VERSION", "EVERY", "NEXT RUN")]
    for rule in rules:
        next_run = rule.next_execution_at
        rows.append(
            (
                str(rule.id),
                rule.name,
                rule.level,
                rule.status,
                str(rule.version),
                f"{rule.check_frequency_minutes} min",
                next_run.strftime("%Y-%m-%d %H:%M UTC") if next_run else "—",
            )
        )
    print_table(rows, notes=[describe_rule(rule.rule) for rule in rules])  # each in words
    return 0


def change_rule(args: argparse.Namespace) -> int:
    if args.change == "delete":
        view = delete_rule(args.rule_id, by=acting(args))
        print(f"deleted rule {view.id} “{view.name}”")
    else:
        status = RuleStatus.ACTIVE if args.change == "enable" else RuleStatus.PAUSED
        view = set_status(args.rule_id, status, by=acting(args))
        print(f"rule {view.id} “{view.name}” is {view.status} (version {view.version})")
    return 0


def preview_rule(args: argparse.Namespace) -> int:
    """One rule: each candidate's values, the conditions it failed and what Rex would do;
    without an id, every active rule in one pass."""
    if args.rule_id is None:
        return _preview_every_rule(args)
    preview = preview_outcomes(args.rule_id, actor=reader(args))
    evaluation = preview.evaluation
    print(f"{evaluation.rule.name}: {describe_rule(evaluation.rule, evaluation.currency)}")
    shown = evaluation.candidates if args.all else evaluation.matched
    print(
        f"{len(evaluation.matched)} of {len(evaluation.candidates)} candidates match now "
        f"(local dates: {', '.join(f'{a} {d}' for a, d in evaluation.today.items()) or '—'})"
    )
    steps: dict[int, list[PreviewStep]] = {}
    for step in preview.steps:
        steps.setdefault(step.entity_id, []).append(step)
    for candidate in shown:
        mark = "✓" if candidate.matched else "·"
        values = " · ".join(
            f"{describe_value_key(key)} {text}" for key, text in candidate.shown.items()
        )
        print(f"{mark} {candidate.external_id} {candidate.name} ({candidate.account}): {values}")
        for reason in candidate.reasons:
            print(f"    ✗ {reason}")
        for step in steps.get(candidate.entity_id, []):
            change = f" {step.old_text} → {step.new_text}" if step.new_text else ""
            why = f": {step.reason}" if step.reason else ""
            note = f" ({step.note})" if step.note else ""
            print(f"    → {step.outcome}{why} — {step.action}{change}{note}")
    for account, reason in preview.skipped_accounts.items():
        print(f"left out: {account} — {reason}")
    print(f"{preview.summary} (a preview: nothing was changed)")
    return 0


def _preview_every_rule(args: argparse.Namespace) -> int:
    started = time.monotonic()
    results = preview_rules(actor=reader(args))
    if not results:
        print("no active rules")
        return 0
    rows = [("ID", "RULE", "LEVEL", "CANDIDATES", "MATCH NOW")]
    for view, evaluation in results:
        matched = int(evaluation.matched_mask.sum())
        rows.append((str(view.id), view.name, view.level, f"{len(evaluation):,}",
                     f"{matched:,}"))  # fmt: skip
    print_table(rows)
    print(
        f"{len(results)} active rules evaluated in one pass in "
        f"{time.monotonic() - started:.2f} s; `rules preview ID` shows one rule's values"
    )
    return 0


def print_schema(args: argparse.Namespace) -> int:
    print(json.dumps(rule_json_schema(), indent=2, ensure_ascii=False))
    return 0
