"""What the rule builder needs besides the document model: templates, choices from the
metric catalogue, listing with activity, duplicating, and problems grouped by section.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from core.db import read_session
from core.db.models import ActionHistory, ActionStatus
from core.db.types import utcnow
from core.rules.document import COMPARISONS, RANGE_OPS, RuleDocumentError, parse_rule
from core.rules.metrics import METRICS
from core.rules.store import RuleView, get_rule, save_rule

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
SECTIONS = ("name", "status", "scope", "conditions", "actions", "schedule", "safety")

TEMPLATES: dict[str, dict[str, Any]] = {
    "Scale winners": {
        "name": "Scale winners",
        "status": "draft",
        "scope": {"level": "campaign", "account_ids": [], "filters": []},
        "conditions": {
            "all": [
                {"metric": "roas", "window": "last_7d", "op": ">", "value": 3},
                {"metric": "profit", "window": "last_7d", "op": ">", "value": 100},
            ]
        },
        "actions": [{"type": "change_budget", "by_percent": 25, "max": 500}],
        "schedule": {"every_minutes": 360},
        "safety": {
            "max_daily_actions": 10,
            "cooldown_minutes": 1440,
            "dry_run": True,
            "require_approval": False,
        },
    },
    "Stop losers": {
        "name": "Stop losers",
        "status": "draft",
        "scope": {"level": "adset", "account_ids": [], "filters": []},
        "conditions": {
            "all": [
                {"metric": "roas", "window": "last_7d", "op": "<", "value": 1},
                {"metric": "spend", "window": "last_7d", "op": ">", "value": 50},
            ]
        },
        "actions": [{"type": "pause"}],
        "schedule": {"every_minutes": 60},
        "safety": {
            "max_daily_actions": 5,
            "cooldown_minutes": 1440,
            "dry_run": True,
            "require_approval": True,
        },
    },
    "Pause on high CPA": {
        "name": "Pause on high CPA",
        "status": "draft",
        "scope": {"level": "ad", "account_ids": [], "filters": []},
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
        "safety": {
            "max_daily_actions": 10,
            "cooldown_minutes": 1440,
            "dry_run": True,
            "require_approval": False,
        },
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
        "safety": {
            "max_daily_actions": 5,
            "cooldown_minutes": 2880,
            "dry_run": True,
            "require_approval": True,
        },
    },
}


@dataclass(frozen=True)
class RuleListRow:
    rule: RuleView
    actions_7d: int


def template(name: str) -> dict[str, Any]:
    return copy.deepcopy(TEMPLATES[name])


def metric_choices(windowed: bool = True) -> list[str]:
    return [name for name, m in METRICS.items() if m.needs_window or not windowed]


def rules_with_activity(
    *, now: datetime | None = None, engine: Engine | None = None
) -> list[RuleListRow]:
    from core.rules.store import list_rules

    since = (now or utcnow()) - timedelta(days=7)
    with read_session(engine) as session:
        counts = dict(
            session.execute(
                select(ActionHistory.rule_id, func.count())
                .where(
                    ActionHistory.created_at >= since,
                    ActionHistory.status == ActionStatus.SUCCEEDED,
                )
                .group_by(ActionHistory.rule_id)
            ).all()
        )
    return [RuleListRow(rule, counts.get(rule.id, 0)) for rule in list_rules(engine=engine)]


RULES_PER_PAGE = 20


def page_of_rules(
    rows: list[RuleListRow], *, text: str = "", statuses: list[str] | None = None, page: int = 1
) -> tuple[list[RuleListRow], int, int]:
    """The rules whose name contains `text` (any case) and whose status is in `statuses`
    (all when empty), one page of them: (rows on the page, rules found, pages)."""
    needle = text.strip().lower()
    found = [
        r for r in rows
        if needle in r.rule.name.lower() and (not statuses or r.rule.status in statuses)
    ]  # fmt: skip
    pages = max(1, -(-len(found) // RULES_PER_PAGE))
    page = min(max(page, 1), pages)
    return found[(page - 1) * RULES_PER_PAGE : page * RULES_PER_PAGE], len(found), pages


def duplicate_rule(rule_id: int, *, engine: Engine | None = None) -> RuleView:
    """A copy of a rule as a draft named "… (copy)", so it never runs by surprise."""
    document = copy.deepcopy(get_rule(rule_id, engine=engine).document)
    document["name"] = f"{document['name']} (copy)"[:200]
    document["status"] = "draft"
    return save_rule(document, engine=engine)


def problems_by_section(document: dict[str, Any]) -> dict[str, list[str]]:
    """Validation problems of a draft, grouped under the builder section they belong to
    ("conditions" → ["conditions.all[1].value: between needs [lo, hi] …"])."""
    try:
        parse_rule(document)
    except RuleDocumentError as error:
        grouped: dict[str, list[str]] = {}
        for path, problem in error.problems:
            section = next((s for s in SECTIONS if path.startswith(s)), "document")
            grouped.setdefault(section, []).append(f"{path}: {problem}")
        return grouped
    return {}


def is_reference(value: Any) -> bool:
    return isinstance(value, dict)


def default_condition() -> dict[str, Any]:
    return {"metric": "roas", "window": "last_7d", "op": ">", "value": 1}


def level_allows_budget(level: str) -> bool:
    return level in ("campaign", "adset")
