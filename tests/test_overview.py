"""The Overview page on the real clock: its figures follow the picked range, say what they
count and in which currency, and say where the synced data starts."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from core.db import write_session
from core.db.models import AdAccount, AdEntity, AdMetric, SyncRun
from core.db.types import utcnow
from core.rules.windows import local_today
from tests.signed import signed_page

ROOT = Path(__file__).resolve().parent.parent
TZ = "America/Los_Angeles"


@pytest.fixture
def synced_30_days(db: Engine):  # type: ignore[no-untyped-def]
    """A USD account synced over its last 30 local days (a sync run says so): a campaign
    spending 10 USD a day over the last 7 days and 20 a day before, revenue twice that."""
    today = local_today(TZ, utcnow())
    with write_session() as session:
        account = AdAccount(external_id="act_30", name="Thirty", currency="USD",
                            timezone_name=TZ, account_status=1, token_encrypted="x",
                            last_sync_at=utcnow())  # fmt: skip
        session.add(account)
        session.flush()
        session.add(SyncRun(account_id=account.id, started_at=utcnow(), finished_at=utcnow(),
                            status="succeeded", since=today - timedelta(days=29),
                            until=today))  # fmt: skip
        campaign = AdEntity(account_id=account.id, level="campaign", external_id="c30",
                            name="Always on", status="ACTIVE", effective_status="ACTIVE",
                            daily_budget_minor=2_000)  # fmt: skip
        session.add(campaign)
        session.flush()
        for back in range(30):
            spend = 10 if back < 7 else 20
            session.add(AdMetric(account_id=account.id, entity_id=campaign.id,
                                 date=today - timedelta(days=back),
                                 spend_micros=spend * 1_000_000,
                                 revenue_micros=2 * spend * 1_000_000))  # fmt: skip
    return today


def _page() -> AppTest:
    app = signed_page("pages/overview.py", timeout=60)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _pick(app: AppTest, days: int) -> dict[str, object]:
    app.segmented_control(key="overview_days").set_value(days).run()
    assert not app.exception, [e.value for e in app.exception]
    return {m.label: m for m in app.metric}


def test_the_entity_table_follows_the_picked_range(synced_30_days) -> None:  # type: ignore[no-untyped-def]
    app = _page()
    for days, spend in ((7, 7 * 10), (14, 7 * 10 + 7 * 20), (30, 7 * 10 + 23 * 20)):
        metrics = _pick(app, days)
        assert metrics["Spend"].value == f"{spend:.2f} USD"
        table = app.dataframe[0].value
        assert list(table[f"Spend {days}d (USD)"]) == [spend]
        assert list(table[f"Revenue {days}d (USD)"]) == [2 * spend]
        assert any(f"over {_span(synced_30_days, days)}" in c.value for c in app.caption)


def _span(today, days: int) -> str:  # type: ignore[no-untyped-def]
    return f"{today - timedelta(days=days - 1):%b %d} – {today:%b %d, %Y}"


def test_a_range_before_the_synced_data_says_where_it_starts(synced_30_days) -> None:  # type: ignore[no-untyped-def]
    today = synced_30_days
    app = _page()
    metrics = _pick(app, 60)
    start = today - timedelta(days=29)
    assert [i.value for i in app.info] == [
        f"Synced data starts {start:%Y-%m-%d} (30 of the 60 days have no data); "
        "the comparison period has no data."
    ]
    assert metrics["Spend"].value == f"{7 * 10 + 23 * 20:.2f} USD"
    assert all(not m.delta for m in metrics.values())  # nothing to compare with
    figure = json.loads(app.get("plotly_chart")[0].proto.spec)
    shaded = [s for s in figure["layout"].get("shapes", []) if s.get("type") == "rect"]
    assert len(shaded) == 1 and shaded[0]["x1"].startswith(
        f"{start - timedelta(days=1):%Y-%m-%d}"
    )  # the days before the data are marked on the chart
    notes = [a["text"] for a in figure["layout"].get("annotations", [])]
    assert "not synced" in notes

    metrics = _pick(app, 14)  # the 14 days before are synced: compared
    assert metrics["Spend"].delta == f"-{7 * 20 - 7 * 10:.2f} USD vs previous 14 days"
    assert not app.info


def test_every_figure_says_what_it_counts_and_in_which_currency(synced_30_days) -> None:  # type: ignore[no-untyped-def]
    app = _page()
    metrics = _pick(app, 30)
    span = _span(synced_30_days, 30)
    for label in ("Spend", "Revenue", "Profit"):
        assert span in metrics[label].help and "USD" in metrics[label].help, label
    assert span in metrics["ROAS"].help
    assert "24 hours" in metrics["Actions (24 h)"].help
