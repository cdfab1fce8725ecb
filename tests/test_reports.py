"""The UI's read models: a 30-day series in the account's days, totals against the
previous period (only when it was synced in full), where the synced data starts,
undefined ROAS, the entity table over the picked range."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine

from core.access.actor import SYSTEM
from core.db import write_session
from core.db.models import AdAccount, AdEntity, AdMetric, SyncRun
from core.views.overview import account_overview, entity_table

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
    overview = account_overview(_setup(previous_days=True), now=NOW, actor=SYSTEM)
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
    overview = account_overview(_setup(previous_days=False), now=NOW, actor=SYSTEM)
    assert overview.previous is None and overview.change("spend") is None


def test_entity_rows_show_budgets_where_they_live(db: Engine) -> None:
    rows = entity_table(_setup(previous_days=False), now=NOW, actor=SYSTEM)
    assert [(r.level, r.name, r.budget) for r in rows] == [
        ("campaign", "Camp", "123.45 USD / day"),
        ("adset", "Set", "on campaign"),
    ]
    assert rows[0].spend == Decimal(290) and rows[0].parent is None and rows[1].parent == "Camp"


def test_a_range_reaching_before_the_synced_data_says_where_it_starts(db: Engine) -> None:
    account_id = _setup(previous_days=False)  # 30 days of numbers, nothing before
    overview = account_overview(account_id, days=60, now=NOW, actor=SYSTEM)
    start = TODAY - timedelta(days=29)
    assert overview.data_starts == start and overview.starts_late
    assert overview.current.spend == Decimal(290)  # the same as over 30 days …
    assert overview.previous is None and overview.change("spend") is None
    assert overview.coverage() == (  # … and it says why
        f"synced data starts {start:%Y-%m-%d} (30 of the 60 days have no data); "
        "the comparison period has no data"
    )
    thirty = account_overview(account_id, days=30, now=NOW, actor=SYSTEM)
    assert not thirty.starts_late and thirty.previous is None
    assert thirty.coverage() == "the comparison period has no data"


def test_a_comparison_period_synced_in_part_is_not_compared(db: Engine) -> None:
    account_id = _setup(previous_days=False)
    with write_session() as session:  # a sync read 45 days (the first 15 without delivery)
        session.add(SyncRun(account_id=account_id, status="succeeded",
                            since=TODAY - timedelta(days=44), until=TODAY))  # fmt: skip
    overview = account_overview(account_id, days=30, now=NOW, actor=SYSTEM)
    assert overview.data_starts == TODAY - timedelta(days=44)
    assert overview.previous is None
    assert overview.coverage() == (
        f"the comparison period ({TODAY - timedelta(days=59):%Y-%m-%d} – "
        f"{TODAY - timedelta(days=30):%Y-%m-%d}) is synced only from "
        f"{TODAY - timedelta(days=44):%Y-%m-%d}, so there is no comparison"
    )
    # 15 days: the 15 before are synced (without delivery): compared, against zero
    fifteen = account_overview(account_id, days=15, now=NOW, actor=SYSTEM)
    assert fifteen.previous is not None and fifteen.coverage() is None
    assert fifteen.change("spend") == fifteen.current.spend - fifteen.previous.spend


def test_entity_rows_follow_the_range(db: Engine) -> None:
    account_id = _setup(previous_days=True)
    spend = {
        days: entity_table(account_id, days=days, now=NOW, actor=SYSTEM)[0].spend
        for days in (7, 30, 60)
    }
    assert spend == {7: Decimal(60), 30: Decimal(290), 60: Decimal(290 + 150)}
