"""The system's figures and the Health page."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from core.engine.run import run_rule_now
from core.health import system_health
from core.rules.store import save_rule
from tests.conftest import NOW
from tests.test_engine import SCALE_WINNERS

ROOT = Path(__file__).resolve().parent.parent


def test_figures_after_a_run(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(SCALE_WINNERS, now=NOW)
    run_rule_now(rule.id, NOW)
    later = save_rule(
        {
            **SCALE_WINNERS,
            "name": "Pause losers",
            "actions": [{"type": "pause"}],
            "conditions": {"metric": "roas", "window": "last_7d", "op": "<", "value": 3},
        },
        now=NOW,
    )
    run_rule_now(later.id, NOW)

    health = system_health(now=NOW + timedelta(days=2))
    assert (health.rule_success_rate, health.action_success_rate) == (1.0, 1.0)
    assert health.active_rules == 2 and health.pending_approvals == 0
    assert health.actions_today == 0  # they were two days ago
    # A ($250) and C ($400) are active with their new budgets; B was paused
    assert health.budget_under_automation == {"USD": Decimal("650.00")}
    # B spent 45.45 over the 7 days before its pause: 6.4929/day × 2 days paused
    assert health.spend_saved["USD"].quantize(Decimal("0.01")) == Decimal("12.99")
    assert health.revenue_change_after_scaling == {}  # the 7 days after are not over yet


def test_the_page_says_when_no_scheduler_runs(db: Engine) -> None:
    app = AppTest.from_file(str(ROOT / "pages/health.py"), default_timeout=60)
    app.run()
    assert not app.exception
    assert "python -m core.scheduler" in app.warning[0].value
    assert {m.label for m in app.metric} >= {"Rule success rate", "API error rate"}
