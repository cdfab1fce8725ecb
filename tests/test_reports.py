"""The UI's read models: a 30-day series in the account's days, totals against the
previous period (only when it was synced), undefined ROAS, the entity table."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine

from core.db import write_session
from core.db.models import AdAccount, AdEntity, AdMetric
from core.reports import account_overview, entity_rows

NOW = datetime(2026, 11, 20, 7, 30, tzinfo=UTC)  # the 19th in Los Angeles
TODAY = date(2026, 11, 19)


def _setup(previous_days: bool) -> int:
    with write_session() as session:
        account = AdAccount(external_id="act_9", name="Shop", currency="USD",
                            timezone_name="America/Los_Angeles", account_status=1,
                            token_encrypted="x")  # fmt: skip
        session.add(account)
        session.flush()
        campaign = AdEntity(account_id=account.id, level="campaign", external_id="c1",
                            name="Camp", status="ACTIVE", effective_status="ACTIVE",
                            daily_budget_minor=12_345)  # fmt: skip
        session.add(campaign)
        session.flush()
        adset = AdEntity(account_id=account.id, level="adset", external_id="s1", name="Set",
                         status="ACTIVE", effective_status="ACTIVE", parent_id=campaign.id,
                         meta_campaign_id="c1")  # fmt: skip
        session.add(adset)
        for back in range(60 if previous_days else 30):
            if back == 3:
                continue  # a day without spend
            spend = 10_000_000 if back < 30 else 5_000_000
            session.add(AdMetric(account_id=account.id, entity_id=campaign.id,
                                 date=TODAY - timedelta(days=back), spend_micros=spend,
                                 revenue_micros=3 * spend))  # fmt: skip
        return account.id


def test_series_totals_and_previous_period(db: Engine) -> None:
    overview = account_overview(_setup(previous_days=True), now=NOW)
    assert overview.today == TODAY
    assert [p.day for p in overview.series] == [
        TODAY - timedelta(days=n) for n in range(29, -1, -1)
    ]
    gap = next(p for p in overview.series if p.day == TODAY - timedelta(days=3))
    assert (gap.spend, gap.roas) == (Decimal(0), None)
    assert overview.current.spend == Decimal(290) and overview.current.roas == 3
    assert overview.change("spend") == Decimal(290 - 150)
    assert overview.change("roas") == 0
    assert overview.money(overview.current.profit) == "580.00 USD"


def test_no_comparison_when_the_previous_period_was_never_synced(db: Engine) -> None:
    overview = account_overview(_setup(previous_days=False), now=NOW)
    assert overview.previous is None and overview.change("spend") is None


def test_entity_rows_show_budgets_where_they_live(db: Engine) -> None:
    rows = entity_rows(_setup(previous_days=False), now=NOW)
    assert [(r.level, r.name, r.budget) for r in rows] == [
        ("campaign", "Camp", "123.45 USD / day"),
        ("adset", "Set", "on campaign"),
    ]
    assert rows[0].spend == Decimal(290) and rows[0].parent is None and rows[1].parent == "Camp"
