"""Rule documents several test files start from, in one place.

Plain functions: each call returns a fresh dict that shares nothing with another call's,
so a test may edit what it gets. Keyword arguments replace top-level fields
(`scale_winners(safety={"dry_run": True})`); a field not in the document is added at the
end.
"""

from __future__ import annotations

from typing import Any


def rules_md_example(**overrides: Any) -> dict[str, Any]:
    """RULES.md's example, every field written out (also the defaults)."""
    return {
        "schema_version": 1,
        "name": "Scale high performers",
        "status": "active",
        "scope": {
            "account_ids": ["act_1001"],
            "level": "campaign",
            "filters": [
                {"field": "name", "op": "contains", "value": "Prospecting"},
                {"field": "effective_status", "op": "in", "value": ["ACTIVE"]},
            ],
        },
        "conditions": {
            "all": [
                {"metric": "roas", "window": "last_7d", "op": ">", "value": 3},
                {"metric": "profit", "window": "last_7d", "op": ">", "value": 100},
                {
                    "any": [
                        {"metric": "conversions", "window": "yesterday", "op": ">=", "value": 5},
                        {
                            "metric": "cpa",
                            "window": "last_3d",
                            "op": "<",
                            "value": {"metric": "cpa", "window": "last_30d", "times": 0.8},
                        },
                    ]
                },
            ]
        },
        "actions": [{"type": "change_budget", "by_percent": 25, "max": 500}],
        "schedule": {"every_minutes": 360},
        "safety": {
            "max_daily_actions": 10,
            "cooldown_minutes": 1440,
            "dry_run": False,
            "require_approval": False,
        },
        **overrides,
    }


def minimal_rule(**overrides: Any) -> dict[str, Any]:
    """The least a rule must say: the rest is the defaults."""
    return {
        "name": "Stop losers",
        "scope": {"level": "ad"},
        "conditions": {"metric": "spend", "window": "yesterday", "op": ">", "value": 50},
        "actions": [{"type": "pause"}],
        **overrides,
    }


def scale_winners(**overrides: Any) -> dict[str, Any]:
    """The worked example's rule (tests/scenarios/worked_example.json): ROAS above 3 and
    profit above 100 over the last 7 days raise the budget 25 %, to at most 500 —
    campaigns A and C match, B does not. Every account, schedule and safety defaulted."""
    return {
        "name": "Scale winners",
        "scope": {"level": "campaign"},
        "conditions": {
            "all": [
                {"metric": "roas", "window": "last_7d", "op": ">", "value": 3},
                {"metric": "profit", "window": "last_7d", "op": ">", "value": 100},
            ]
        },
        "actions": [{"type": "change_budget", "by_percent": 25, "max": 500}],
        **overrides,
    }
