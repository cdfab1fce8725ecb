"""The Overview page: an account's spend, revenue and ROAS by day over a range, against
the period before, and its campaigns, ad sets and ads as a table.

Money comes out in major units (Decimal) with its currency; dates are the account's
local dates; ROAS is None where nothing was spent (undefined, shown as "—").
Aggregation happens in SQL on either database.

A range can reach back before the synced data (60 days after a 30-day sync): the
overview then says where the data starts, and compares with the period before only when
that period was synced in full — a comparison with days Rex never read would be one
with zeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, aliased

from core.access.actor import Actor
from core.accounts import AccountView, read_account
from core.db import read_session
from core.db.models import AdEntity, AdMetric, Level, SyncRun, SyncStatus
from core.db.types import utcnow
from core.enums import spoken
from core.errors import InputError
from core.money import format_minor, format_money, from_micros
from core.rules.windows import local_today


@dataclass(frozen=True)
class DailyPoint:
    day: date
    spend: Decimal
    revenue: Decimal

    @property
    def roas(self) -> Decimal | None:
        return self.revenue / self.spend if self.spend else None


@dataclass(frozen=True)
class Totals:
    spend: Decimal
    revenue: Decimal

    @property
    def profit(self) -> Decimal:
        return self.revenue - self.spend

    @property
    def roas(self) -> Decimal | None:
        return self.revenue / self.spend if self.spend else None


@dataclass(frozen=True)
class AccountOverview:
    account: AccountView
    today: date
    first_day: date
    series: list[DailyPoint]  # every day of the range, zero where nothing was spent
    current: Totals
    previous: Totals | None  # the same number of days just before, if synced in full
    data_starts: date | None = None  # the first day Rex synced; None: nothing synced

    @property
    def days(self) -> int:
        return len(self.series)

    @property
    def previous_first_day(self) -> date:
        return self.first_day - timedelta(days=self.days)

    @property
    def starts_late(self) -> bool:
        """The range begins before the synced data: its first days are empty."""
        return self.data_starts is not None and self.data_starts > self.first_day

    def coverage(self) -> str | None:
        """What the range's figures cannot show, in words; None when nothing is missing."""
        if self.data_starts is None:
            return "no data synced yet"
        if self.previous is not None:
            return None
        parts = []
        if self.starts_late:
            missing = (self.data_starts - self.first_day).days
            parts.append(
                f"synced data starts {self.data_starts:%Y-%m-%d} ({missing} of the "
                f"{self.days} days have no data)"
            )
        if self.data_starts >= self.first_day:
            parts.append("the comparison period has no data")
        else:
            parts.append(
                f"the comparison period ({self.previous_first_day:%Y-%m-%d} – "
                f"{self.first_day - timedelta(days=1):%Y-%m-%d}) is synced only from "
                f"{self.data_starts:%Y-%m-%d}, so there is no comparison"
            )
        return "; ".join(parts)

    def money(self, amount: Decimal | None) -> str:
        return format_money(amount, self.account.currency)

    def change(self, name: str) -> Decimal | None:
        """Current minus previous period for spend / revenue / profit / roas, if known."""
        if self.previous is None:
            return None
        now, before = getattr(self.current, name), getattr(self.previous, name)
        return None if now is None or before is None else now - before


@dataclass(frozen=True)
class EntityRow:
    level: Level
    external_id: str
    name: str
    parent: str | None  # the direct parent's name (campaign of an ad set, ad set of an ad)
    campaign: str | None  # for ad sets and ads
    adset: str | None  # for ads
    status: str
    effective_status: str
    budget: str  # "200.00 USD / day", "—", or "on campaign"
    spend: Decimal
    revenue: Decimal

    @property
    def roas(self) -> Decimal | None:
        return self.revenue / self.spend if self.spend else None


def account_overview(
    account_id: int,
    *,
    actor: Actor,
    days: int = 30,
    today: date | None = None,
    now: datetime | None = None,
    engine: Engine | None = None,
) -> AccountOverview:
    """The last `days` account-local days ending `today` (default: the account's today at
    `now`), day by day, with totals, where the synced data starts, and the same number of
    days just before when they were synced in full. Only an account `actor` may read."""
    account = read_account(account_id, actor=actor, engine=engine)
    today = today or local_today(account.timezone_name, now or utcnow())
    first = today - timedelta(days=days - 1)
    before = first - timedelta(days=days)
    with read_session(engine) as session:
        rows = session.execute(
            select(
                AdMetric.date,
                func.sum(AdMetric.spend_micros),
                func.sum(AdMetric.revenue_micros),
            )
            .join(AdEntity, AdEntity.id == AdMetric.entity_id)
            .where(
                AdMetric.account_id == account.id,
                AdEntity.level == Level.CAMPAIGN,  # campaign rows add up to the account
                AdMetric.date >= before,
                AdMetric.date <= today,
            )
            .group_by(AdMetric.date)
        ).all()
        data_starts = _data_starts(session, account.id)
    by_day = {day: (int(spend or 0), int(revenue or 0)) for day, spend, revenue in rows}
    series = [
        DailyPoint(
            day,
            from_micros(by_day.get(day, (0, 0))[0], account.currency),
            from_micros(by_day.get(day, (0, 0))[1], account.currency),
        )
        for day in (first + timedelta(days=n) for n in range(days))
    ]
    previous = [v for d, v in by_day.items() if before <= d < first]
    compared = data_starts is not None and data_starts <= before  # synced in full
    return AccountOverview(
        account=account,
        today=today,
        first_day=first,
        series=series,
        current=Totals(
            sum((p.spend for p in series), Decimal(0)), sum((p.revenue for p in series), Decimal(0))
        ),  # fmt: skip
        previous=Totals(
            from_micros(sum(s for s, _ in previous), account.currency),
            from_micros(sum(r for _, r in previous), account.currency),
        )
        if compared
        else None,
        data_starts=data_starts,
    )


def _data_starts(session: Session, account_id: int) -> date | None:
    """The first day of the account's synced numbers: the earliest day a successful sync
    read (days without delivery have no rows), or the earliest row if that is older."""
    synced = session.scalar(
        select(func.min(SyncRun.since)).where(
            SyncRun.account_id == account_id, SyncRun.status == SyncStatus.SUCCEEDED
        )
    )
    stored = session.scalar(
        select(func.min(AdMetric.date)).where(AdMetric.account_id == account_id)
    )
    known = [d for d in (synced, stored) if d is not None]
    return min(known) if known else None


def entity_table(
    account_id: int,
    *,
    actor: Actor,
    level: Level | None = None,
    days: int = 30,
    today: date | None = None,
    now: datetime | None = None,
    engine: Engine | None = None,
) -> list[EntityRow]:
    """Campaigns, ad sets and ads with status, budget and the last `days` days' numbers."""
    if level is not None and level not in tuple(Level):
        raise InputError("level", f"{level!r} is not a level; use {spoken(Level)}")
    account = read_account(account_id, actor=actor, engine=engine)
    today = today or local_today(account.timezone_name, now or utcnow())
    first = today - timedelta(days=days - 1)
    parent = aliased(AdEntity)
    campaign = aliased(AdEntity)
    adset = aliased(AdEntity)
    metrics = (
        select(
            AdMetric.entity_id,
            func.sum(AdMetric.spend_micros).label("spend"),
            func.sum(AdMetric.revenue_micros).label("revenue"),
        )
        .where(AdMetric.account_id == account.id, AdMetric.date.between(first, today))
        .group_by(AdMetric.entity_id)
        .subquery()
    )
    query = (
        select(AdEntity, parent.name, campaign.name, adset.name, metrics.c.spend, metrics.c.revenue)
        .outerjoin(parent, parent.id == AdEntity.parent_id)
        .outerjoin(
            campaign,
            (campaign.account_id == AdEntity.account_id)
            & (campaign.level == Level.CAMPAIGN)
            & (campaign.external_id == AdEntity.meta_campaign_id)
            & (AdEntity.level != Level.CAMPAIGN),
        )
        .outerjoin(
            adset,
            (adset.account_id == AdEntity.account_id)
            & (adset.level == Level.ADSET)
            & (adset.external_id == AdEntity.meta_adset_id)
            & (AdEntity.level == Level.AD),
        )
        .outerjoin(metrics, metrics.c.entity_id == AdEntity.id)
        .where(AdEntity.account_id == account.id)
    )
    if level:
        query = query.where(AdEntity.level == level)
    order = {level: n for n, level in enumerate(Level)}  # parents first
    with read_session(engine) as session:
        campaign_budgets = {
            e.external_id
            for e in session.scalars(
                select(AdEntity).where(
                    AdEntity.account_id == account.id,
                    AdEntity.level == Level.CAMPAIGN,
                    (AdEntity.daily_budget_minor.is_not(None))
                    | (AdEntity.lifetime_budget_minor.is_not(None)),
                )
            )
        }
        result = [
            EntityRow(
                level=entity.level,
                external_id=entity.external_id,
                name=entity.name,
                parent=parent_name,
                campaign=campaign_name,
                adset=adset_name,
                status=entity.status,
                effective_status=entity.effective_status,
                budget=_budget_text(entity, account.currency, campaign_budgets),
                spend=from_micros(int(spend or 0), account.currency),
                revenue=from_micros(int(revenue or 0), account.currency),
            )
            for entity, parent_name, campaign_name, adset_name, spend, revenue in session.execute(
                query
            )
        ]
    return sorted(result, key=lambda r: (order[r.level], -r.spend, r.name))


def _budget_text(entity: AdEntity, currency: str, campaign_budgets: set[str]) -> str:
    if entity.daily_budget_minor:
        return f"{format_minor(entity.daily_budget_minor, currency)} / day"
    if entity.lifetime_budget_minor:
        return f"{format_minor(entity.lifetime_budget_minor, currency)} lifetime"
    if entity.level == Level.ADSET and entity.meta_campaign_id in campaign_budgets:
        return "on campaign"
    return "—"
