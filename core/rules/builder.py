"""What the rule builder and the rules list need besides the document model.

* templates, which all open in a visible mode ("Test first"); the draft the builder
  edits is `core.rules.draft.RuleDraft`;
* what the rules list does: bulk enable / disable, "Go live", run now, duplicate (what
  it shows — last run, actions, money moved, errors, pages — is `core.views.rules`);
* scope by picking (synced entities with their status), expressed as the document's own
  filters (`{"field": "id", "op": "in", …}`, `{"field": "effective_status", …}`);
* validation in the builder's words: every message names the field as the page shows it
  ("Action 1 · Max") and says the fix; the document paths stay for the CLI and imports.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from core.access.actor import AccessDenied, Actor
from core.access.roles import Permission
from core.actions.kinds import ActionType
from core.db import read_session
from core.db.models import AdAccount, AdEntity, RuleExecution, RuleStatus
from core.errors import InputError, NotFoundError, RexError
from core.rules.describe import counts_text
from core.rules.document import (
    COMPARISONS,
    RANGE_OPS,
    RuleDocumentError,
    check_rule_currency,
    parse_rule,
)
from core.rules.draft import ACTIVE_ONLY, Mode, RuleDraft, is_active_only, is_pick, set_mode
from core.rules.frame import HIDDEN_STATUSES
from core.rules.metrics import METRICS, Unit
from core.rules.store import RuleView, get_rule, save_rule, set_status
from core.rules.windows import Window, WindowError

WINDOWS = (
    "today",
    "yesterday",
    "last_3d",
    "last_7d",
    "last_14d",
    "last_30d",
    "last_7d_with_today",
    "this_month",
    "lifetime",
)
OPERATORS = (*COMPARISONS, *RANGE_OPS)


def window_words(window: str) -> str:
    """A window as the builder lists it: "last 7 days", "yesterday"."""
    try:
        return Window.parse(window).short
    except WindowError:
        return window


SECTIONS = ("name", "status", "scope", "conditions", "actions", "schedule", "safety")


def _document(draft: RuleDraft | dict[str, Any]) -> dict[str, Any]:
    return draft.to_document() if isinstance(draft, RuleDraft) else draft


def offers_go_live(view: RuleView) -> bool:
    """A saved rule in dry run that has run at least once: its result can be reviewed."""
    return bool((view.document.get("safety") or {}).get("dry_run")) and (
        view.last_execution_at is not None
    )


def go_live(
    rule_id: int, *, by: Actor, engine: Engine | None = None, now: datetime | None = None
) -> RuleView:
    """The saved rule (the version its dry run ran) as a new version with dry run off and
    status active: the last step of "test first → review → go live"."""
    document = copy.deepcopy(get_rule(rule_id, actor=by, engine=engine).document)
    set_mode(document, Mode.LIVE)
    document["status"] = "active"
    return save_rule(document, by=by, rule_id=rule_id, engine=engine, now=now)


# ----------------------------------------------------------------------- templates

_TEST_FIRST = {"dry_run": True, "require_approval": False}

TEMPLATES: dict[str, dict[str, Any]] = {
    "Scale winners": {
        "name": "Scale winners",
        "status": "draft",
        "scope": {"level": "campaign", "account_ids": [], "filters": [ACTIVE_ONLY]},
        "conditions": {
            "all": [
                {"metric": "roas", "window": "last_7d", "op": ">", "value": 3},
                {"metric": "profit", "window": "last_7d", "op": ">", "value": 100},
            ]
        },
        "actions": [{"type": "change_budget", "by_percent": 25, "max": 500}],
        "schedule": {"every_minutes": 360},
        "safety": {"max_daily_actions": 10, "cooldown_minutes": 1440, **_TEST_FIRST},
    },
    "Stop losers": {
        "name": "Stop losers",
        "status": "draft",
        "scope": {"level": "adset", "account_ids": [], "filters": [ACTIVE_ONLY]},
        "conditions": {
            "all": [
                {"metric": "roas", "window": "last_7d", "op": "<", "value": 1},
                {"metric": "spend", "window": "last_7d", "op": ">", "value": 50},
            ]
        },
        "actions": [{"type": "pause"}],
        "schedule": {"every_minutes": 60},
        "safety": {"max_daily_actions": 5, "cooldown_minutes": 1440, **_TEST_FIRST},
    },
    "Pause on high CPA": {
        "name": "Pause on high CPA",
        "status": "draft",
        "scope": {"level": "ad", "account_ids": [], "filters": [ACTIVE_ONLY]},
        "conditions": {
            "all": [
                {
                    "metric": "cpa",
                    "window": "last_3d",
                    "op": ">",
                    "value": {"metric": "cpa", "window": "last_30d", "times": 1.5},
                },
                {"metric": "conversions", "window": "last_3d", "op": ">=", "value": 3},
            ]
        },
        "actions": [{"type": "pause"}],
        "schedule": {"every_minutes": 60},
        "safety": {"max_daily_actions": 10, "cooldown_minutes": 1440, **_TEST_FIRST},
    },
    "Revive when ROAS recovers": {
        "name": "Revive when ROAS recovers",
        "status": "draft",
        "scope": {
            "level": "adset",
            "account_ids": [],
            "filters": [{"field": "effective_status", "op": "in", "value": ["PAUSED"]}],
        },
        "conditions": {
            "any": [
                {"metric": "roas", "window": "last_3d", "op": ">=", "value": 2.5},
                {"metric": "roas", "window": "yesterday", "op": ">=", "value": 3},
            ]
        },
        "actions": [{"type": "resume"}],
        "schedule": {"every_minutes": 120},
        "safety": {"max_daily_actions": 5, "cooldown_minutes": 2880, **_TEST_FIRST},
    },
}


def template(name: str) -> dict[str, Any]:
    return copy.deepcopy(TEMPLATES[name])


def metric_choices(windowed: bool = True) -> list[str]:
    return [name for name, m in METRICS.items() if m.needs_window or not windowed]


def is_money(metric: str) -> bool:
    return metric in METRICS and METRICS[metric].unit == Unit.MONEY


# --------------------------------------------------------------------------- scope


@dataclass(frozen=True)
class ScopeChoice:
    external_id: str
    name: str
    account: str
    effective_status: str

    @property
    def label(self) -> str:
        return f"{self.name} · {self.effective_status} · {self.account} · {self.external_id}"


SCOPE_CHOICES_LIMIT = 2000


def scope_choices(
    account_ids: list[str] | None,
    level: str,
    *,
    active_only: bool = False,
    actor: Actor,
    limit: int = SCOPE_CHOICES_LIMIT,
    engine: Engine | None = None,
) -> list[ScopeChoice]:
    """Synced campaigns, ad sets or ads a rule can be scoped to by picking, with their
    status: of `account_ids` (all Meta accounts when empty), archived and deleted ones
    left out (as the evaluation does), only ACTIVE ones with `active_only`; by account
    and name, at most `limit`; only of the accounts `actor` may edit rules on."""
    query = (
        select(
            AdEntity.external_id, AdEntity.name, AdAccount.external_id, AdEntity.effective_status
        )
        .join(AdAccount, AdAccount.id == AdEntity.account_id)
        .where(AdAccount.platform == "meta", AdAccount.connected, AdEntity.level == level)
        .where(AdEntity.effective_status.not_in(HIDDEN_STATUSES))
        .order_by(AdAccount.external_id, AdEntity.name, AdEntity.external_id)
        .limit(limit)
    )
    if account_ids:
        query = query.where(AdAccount.external_id.in_(account_ids))
    if active_only:
        query = query.where(AdEntity.effective_status == "ACTIVE")
    editable = actor.account_ids(Permission.EDIT_RULES)
    if editable is not None:
        query = query.where(AdAccount.id.in_(editable))
    with read_session(engine) as session:
        return [ScopeChoice(*row) for row in session.execute(query)]


@dataclass(frozen=True)
class AccountChoice:
    external_id: str
    name: str
    currency: str
    timezone_name: str

    @property
    def label(self) -> str:
        return f"{self.name} ({self.external_id}, {self.currency})"


def account_choices(
    *, actor: Actor, permission: Permission = Permission.EDIT_RULES, engine: Engine | None = None
) -> dict[str, AccountChoice]:
    """The Meta accounts a rule can cover on which `actor` may do `permission`, by
    external id (no tokens read)."""
    query = (
        select(AdAccount.external_id, AdAccount.name, AdAccount.currency, AdAccount.timezone_name)
        .where(AdAccount.platform == "meta", AdAccount.connected)
        .order_by(AdAccount.external_id)
    )
    allowed = actor.account_ids(permission)
    if allowed is not None:
        query = query.where(AdAccount.id.in_(allowed))
    with read_session(engine) as session:
        return {row[0]: AccountChoice(*row) for row in session.execute(query)}


def scope_currencies(
    draft: RuleDraft | dict[str, Any], accounts: dict[str, AccountChoice]
) -> list[str]:
    """The currencies of the accounts a rule covers (all accounts when it names none)."""
    ids = (_document(draft).get("scope") or {}).get("account_ids") or list(accounts)
    return sorted({accounts[i].currency for i in ids if i in accounts})


def rule_currency(
    draft: RuleDraft | dict[str, Any], accounts: dict[str, AccountChoice]
) -> str | None:
    """The currency a rule's money values are in: the document's own `currency`, else
    the scoped accounts' one currency; None when they have several (or there are none)."""
    stated = _document(draft).get("currency")
    if isinstance(stated, str) and stated:
        return stated.upper()
    found = scope_currencies(draft, accounts)
    return found[0] if len(found) == 1 else None


def currency_label(draft: RuleDraft | dict[str, Any], accounts: dict[str, AccountChoice]) -> str:
    """What a money field's label says its currency is: "USD", or "each account's
    currency: JPY, USD" when the scope mixes them."""
    currency = rule_currency(draft, accounts)
    if currency:
        return currency
    found = scope_currencies(draft, accounts)
    return f"each account's currency: {', '.join(found)}" if found else "account currency"


def scope_time_zones(
    draft: RuleDraft | dict[str, Any], accounts: dict[str, AccountChoice]
) -> list[str]:
    ids = (_document(draft).get("scope") or {}).get("account_ids") or list(accounts)
    return sorted({f"{i}: {accounts[i].timezone_name}" for i in ids if i in accounts})


# --------------------------------------------------------------------- validation

_TOKEN = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")
_ACTION_FIELDS = {
    "type": "Action",
    "by_percent": "Amount",
    "by_amount": "Amount",
    "to": "Amount",
    "min": "Min",
    "max": "Max",
    "budget": "Budget",
    "name_suffix": "Name suffix",
    "message": "Message",
}
_CONDITION_FIELDS = {"metric": "Metric", "window": "Window", "op": "Op", "value": "Value"}
_REFERENCE_FIELDS = {"times": "× factor", "window": "Baseline window", "metric": "Metric"}
_SCHEDULE_FIELDS = {
    "every_minutes": "Every (minutes)",
    "days": "Only on these days",
    "hours": "Only between these hours",
}
_SAFETY_FIELDS = {
    "max_daily_actions": "Max actions a day",
    "cooldown_minutes": "Cooldown (minutes)",
    "dry_run": "Mode",
    "require_approval": "Mode",
    "min_spend": "Min spend",
    "min_impressions": "Min impressions",
}
_SCOPE_FIELDS = {"account_ids": "Accounts", "level": "Level", "filters": "Filters"}
_FILTER_FIELDS = {"field": "Field", "op": "Op", "value": "Value"}

# The fix, by the field a generic (pydantic) message is about.
_FIXES = {
    "name": "type a name for the rule",
    "max": "enter an amount above 0, or leave Max empty for no maximum",
    "min": "enter an amount above 0, or leave Min empty for no minimum",
    "to": "enter the budget to set, above 0",
    "every_minutes": "choose a preset, or enter 1 to 10,080 minutes (a week)",
    "max_daily_actions": "enter 1 to 10,000",
    "cooldown_minutes": "enter 0 (no cooldown) to 525,600 (a year)",
    "min_spend": "enter 0 or more, or leave it empty for no minimum",
    "min_impressions": "enter 0 or more, or leave it empty for no minimum",
    "times": "enter a factor such as 0.8 or 1.5",
    "actions": "add an action",
    "conditions": "add a condition",
    "all": "add a condition to the group, or remove the group",
    "any": "add a condition to the group, or remove the group",
    "message": "shorten the message",
    "name_suffix": "shorten the suffix",
}
_GENERIC = (
    (r"Input should be greater than or equal to (\S+)", "must be at least {0}"),
    (r"Input should be greater than (\S+)", "must be more than {0}"),
    (r"Input should be less than or equal to (\S+)", "must be at most {0}"),
    (r"Input should be less than (\S+)", "must be below {0}"),
    (r"String should have at least 1 character", "is empty"),
    (r"String should have at most (\d+) characters?", "is too long (at most {0} characters)"),
    (r"List should have at least 1 item.*", "is empty"),
    (r"List should have at most (\d+) items?.*", "has too many (at most {0})"),
    (r"Input should be a valid integer.*", "must be a whole number"),
    (r"Input should be a valid number.*", "must be a number"),
    (r"required: add it", "is missing"),
)
# Our own validators already say the fix, in the document's words; on screen, its words.
_SCREEN_WORDS = (
    ("give exactly one of by_percent, by_amount or to", "fill in Amount"),
    ('add "max"', "fill in Max"),
    ("use `to`", "choose “set to”"),
    ("change_budget needs campaign or adset", "a budget change needs the campaign or ad set level"),
    ("must not be above max", "must not be above Max"),
    ("needs [lo, hi] with lo ≤ hi", "needs From ≤ To"),
)


def _tokens(path: str) -> list[str | int]:
    return [name if name else int(index) for name, index in _TOKEN.findall(path)]


def _node(document: Any, tokens: list[str | int]) -> Any:
    node = document
    for token in tokens:
        try:
            node = node[token]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def field_label(path: str, document: Any = None) -> str:
    """A document path as the builder names the field on screen:
    `conditions.all[0].value` → "Condition 1 · Value", `actions[0].max` → "Action 1 · Max"."""
    tokens = _tokens(path)
    head, rest = (tokens[0], tokens[1:]) if tokens else ("document", [])
    if head == "name":
        return "Name"
    if head == "status":
        return "Status"
    if head == "currency":
        return "Scope · Money values in"
    if head == "scope":
        return _scope_label(rest, document)
    if head == "conditions":
        return _condition_label(rest, document)
    if head == "actions":
        if not rest or not isinstance(rest[0], int):
            return "Actions"
        label = f"Action {rest[0] + 1}"
        return f"{label} · {_ACTION_FIELDS.get(str(rest[1]), str(rest[1]))}" if rest[1:] else label
    if head in ("schedule", "safety"):
        names = _SCHEDULE_FIELDS if head == "schedule" else _SAFETY_FIELDS
        section = head.capitalize()
        return f"{section} · {names.get(str(rest[0]), str(rest[0]))}" if rest else section
    return "Rule"


def _scope_label(rest: list[str | int], document: Any) -> str:
    if not rest:
        return "Scope"
    if rest[0] != "filters" or len(rest) < 2 or not isinstance(rest[1], int):
        return f"Scope · {_SCOPE_FIELDS.get(str(rest[0]), str(rest[0]))}"
    filters = _node(document, ["scope", "filters"]) or []
    index = rest[1]
    item = filters[index] if 0 <= index < len(filters) and isinstance(filters[index], dict) else {}
    if is_active_only(item):
        return "Scope · Only active ones"
    if is_pick(item):
        return "Scope · Picked"
    before = [f for f in filters[:index] if isinstance(f, dict)]
    number = 1 + sum(1 for f in before if not is_active_only(f) and not is_pick(f))
    label = f"Filter {number}"
    return f"{label} · {_FILTER_FIELDS.get(str(rest[2]), str(rest[2]))}" if rest[2:] else label


def _condition_label(rest: list[str | int], document: Any) -> str:
    numbers: list[int] = []
    i = 0
    while i + 1 < len(rest) and rest[i] in ("all", "any") and isinstance(rest[i + 1], int):
        numbers.append(int(rest[i + 1]) + 1)
        i += 2
    tail = rest[i:]
    if not numbers:
        if not tail or tail[0] in ("all", "any"):
            return "Conditions"
        numbers = [1]  # a document whose root is one condition
    node = _node(document, ["conditions", *rest[:i]])
    is_group = isinstance(node, dict) and ("all" in node or "any" in node)
    label = f"{'Group' if is_group else 'Condition'} {'.'.join(map(str, numbers))}"
    if not tail or tail[0] in ("all", "any"):
        return label
    name = _CONDITION_FIELDS.get(str(tail[0]), str(tail[0]))
    if tail[0] == "value" and len(tail) > 1:
        bound = {0: "From", 1: "To"}.get(tail[1]) if isinstance(tail[1], int) else None
        name = bound or _REFERENCE_FIELDS.get(str(tail[1]), "Value")
    return f"{label} · {name}"


def screen_message(path: str, problem: str, document: Any = None) -> str:
    """One validation problem in the builder's words: the field as shown, what is
    wrong and the fix — "Action 1 · Max: must be more than 0 — enter an amount …"."""
    label = field_label(path, document)
    tokens = _tokens(path)
    leaf = next((str(t) for t in reversed(tokens) if isinstance(t, str)), "document")
    for pattern, words in _GENERIC:
        found = re.fullmatch(pattern, problem)
        if found:
            numbers = [_readable_number(g) for g in found.groups()]
            what = words.format(*numbers)
            fix = _FIXES.get(leaf)
            return f"{label}: {what}" + (f" — {fix}." if fix else ".")
    for document_words, builder_words in _SCREEN_WORDS:
        problem = problem.replace(document_words, builder_words)
    problem = re.sub(
        r'state the currency its values are in \("currency": "(\w+)"\)',
        r"choose the currency under “Money values in” (e.g. \1)",
        problem,
    )
    return f"{label}: {problem}"


def _readable_number(text: str) -> str:
    return f"{int(text):,}" if text.lstrip("-").isdigit() else text


def problems_by_section(
    draft: RuleDraft | dict[str, Any], accounts: dict[str, AccountChoice] | None = None
) -> dict[str, list[str]]:
    """Validation problems of a draft in the builder's words, grouped under the builder
    section they belong to ("actions" → ["Action 1 · Max: must be more than 0 — …"]).
    With `accounts` (the connected ones), also what saving would refuse about the
    currency of its money values (a scope that mixes currencies)."""
    document = _document(draft)
    try:
        rule = parse_rule(document)
        if accounts is not None:
            check_rule_currency(rule, {i: a.currency for i, a in accounts.items()})
    except RuleDocumentError as error:
        grouped: dict[str, list[str]] = {}
        for path, problem in error.problems:
            section = (
                "scope"
                if path == "currency"
                else next((s for s in SECTIONS if path.startswith(s)), "document")
            )
            grouped.setdefault(section, []).append(screen_message(path, problem, document))
        return grouped
    return {}


class ImportRefused(RexError):
    """A pasted document that does not validate: its problems, one per line."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__(
            "This document cannot be loaded:\n" + "\n".join(f"- {line}" for line in lines)
        )


def import_rule(text: str) -> dict[str, Any]:
    """A pasted rule document, validated, as the builder's draft; or ImportRefused whose
    lines name each field on screen and by its document path (`actions[0].max`)."""
    try:
        return parse_rule(text).to_json()
    except RuleDocumentError as error:
        try:
            import json

            data = json.loads(text)
        except ValueError:
            data = None
        lines = []
        for path, problem in error.problems:
            label = field_label(path, data)
            lines.append(f"{problem}" if path == "document" else f"{label} (`{path}`): {problem}")
        raise ImportRefused(lines) from None


def save_draft(
    draft: RuleDraft | dict[str, Any],
    rule_id: int | None = None,
    *,
    by: Actor,
    engine: Engine | None = None,
) -> RuleView:
    """Save the builder's draft (a new rule, or a new version of `rule_id`); a refusal
    names the field as the builder shows it."""
    document = _document(draft)
    try:
        return save_rule(document, by=by, rule_id=rule_id, engine=engine)
    except RuleDocumentError as error:
        path, problem = error.problems[0]
        raise InputError(field_label(path, document), problem) from None
    except InputError as error:
        raise InputError(field_label(error.field, document), error.problem) from None


# ------------------------------------------------------------ the list's actions


def run_summary(result: Any, *, actor: Actor, engine: Engine | None = None) -> str:
    """What a run did, in words, from its recorded execution (acted, queued for approval,
    would act in a dry run, skipped)."""
    with read_session(engine) as session:
        execution = session.get_one(RuleExecution, result.execution_id)
        name = get_rule(execution.rule_id, actor=actor, engine=engine).name
        text = f"{name}: {execution.status} — {execution.entities_matched} matched, " + counts_text(
            execution.actions_taken,
            execution.actions_queued,
            execution.actions_would,
            execution.actions_skipped,
        )
        return text + (f". {execution.error}" if execution.error else "")


@dataclass(frozen=True)
class BulkResult:
    status: RuleStatus
    done: list[str]
    refused: list[str]

    def __str__(self) -> str:
        verb = "Enabled" if self.status == RuleStatus.ACTIVE else "Disabled"
        text = f"{verb} {len(self.done)} rule(s)" + (
            f": {', '.join(self.done)}" if self.done else ""
        )
        return text + (f". Not changed: {'; '.join(self.refused)}" if self.refused else "")


def set_statuses(
    rule_ids: Iterable[int], status: RuleStatus, *, by: Actor, engine: Engine | None = None
) -> BulkResult:
    """Enable (`active`) or disable (`paused`) several rules; one that cannot be changed
    (an account no longer connected …) is named, the others are changed."""
    done, refused = [], []
    for rule_id in sorted(set(rule_ids)):
        try:
            done.append(set_status(rule_id, status, by=by, engine=engine).name)
        except (InputError, NotFoundError, AccessDenied) as error:
            refused.append(f"rule {rule_id}: {error}")
    if not done and refused:
        raise InputError("rules", "; ".join(refused))
    return BulkResult(status, done, refused)


def saved_rule(
    rule_id: int | None, *, actor: Actor, engine: Engine | None = None
) -> RuleView | None:
    """The saved rule the builder edits, or None (new, or deleted meanwhile)."""
    if rule_id is None:
        return None
    try:
        return get_rule(rule_id, actor=actor, engine=engine)
    except RexError:
        return None


def duplicate_rule(rule_id: int, *, by: Actor, engine: Engine | None = None) -> RuleView:
    """A copy of a rule as a draft named "… (copy)", so it never runs by surprise."""
    document = copy.deepcopy(get_rule(rule_id, actor=by, engine=engine).document)
    document["name"] = f"{document['name']} (copy)"[:200]
    document["status"] = "draft"
    return save_rule(document, by=by, engine=engine)


# --------------------------------------------------------------------- preview


def outcome_text(step: Any) -> str:
    """One preview step in words: "budget 40.00 → 50.00 USD", "would pause",
    "skipped: in cooldown until …"."""
    if step.outcome == "skipped":
        return f"skipped: {step.reason}" if step.reason else "skipped"
    if step.action == ActionType.CHANGE_BUDGET and step.old_text and step.new_text:
        old, new = step.old_text, step.new_text
        old_amount, _, old_currency = old.rpartition(" ")
        _, _, new_currency = new.rpartition(" ")
        if old_amount and old_currency == new_currency:
            old = old_amount
        change = f"budget {old} → {new}"
        return change if step.outcome == "would change" else f"{step.outcome}: {change}"
    if step.action == ActionType.NOTIFY and step.new_text:
        return f"{step.outcome}: “{step.new_text}”"
    return step.outcome
