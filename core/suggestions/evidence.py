"""The evidence suggestions are found on: an account's synced breakdowns, summed per ad
set over a period of whole days (today, still partial, left out).

Each breakdown table gives its dimensions (`DIMENSIONS`): age × gender, placement
(platform × position × device), country, region, DMA and hour of day; each ad set's
segments of each dimension make up the whole ad set, as core/suggestions/detect.py
needs them. Breakdowns synced at the ad level are summed to their ad sets; synced at the
campaign level there are no ad sets to judge (the setting `REX_BREAKDOWN_LEVEL`), so
nothing is read. Only ad sets that are delivering now are judged: a paused ad set's
segments would suggest a change to something that spends nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, aliased

from core.db import read_session
from core.db.models import (
    AdAccount,
    AdDemographicInsight,
    AdEntity,
    AdGeographicInsight,
    AdHourlyInsight,
    AdMetric,
    AdPlacementInsight,
    InsightTable,
)
from core.enums import Level
from core.money import MICROS_PER_UNIT
from core.rules.windows import Window, local_today
from core.settings import get_settings
from core.suggestions.detect import SegmentSums

PERIOD_DAYS = 28  # the evidence: the last four whole weeks (every weekday four times)


@dataclass(frozen=True)
class Period:
    """Whole account-local days, `since` to `until` inclusive."""

    since: date
    until: date

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    @classmethod
    def ending_yesterday(cls, account: AdAccount, now: datetime, days: int = PERIOD_DAYS) -> Period:
        """The `days` whole local days before today: the rules' `last_<days>d` window."""
        today = local_today(account.timezone_name, now)
        span = Window.parse(f"last_{days}d").days_range(today)
        assert span is not None
        return cls(*span)


@dataclass(frozen=True)
class AdSetEvidence:
    """One delivering ad set and its segments per dimension over the period."""

    entity: AdEntity
    campaign: AdEntity | None
    days: int  # days of the period it spent on
    tables: dict[str, list[SegmentSums]]  # dimension → segments


def account_evidence(
    account: AdAccount, period: Period, *, engine: Engine | None = None
) -> list[AdSetEvidence]:
    """The delivering ad sets of the account with their segments over `period`."""
    level = get_settings().breakdown_level
    if level == Level.CAMPAIGN:
        return []
    with read_session(engine) as session:
        adsets, campaigns = _delivering_adsets(session, account)
        if not adsets:
            return []
        days = _days_spent(session, account, period, adsets)
        tables: dict[int, dict[str, list[SegmentSums]]] = defaultdict(dict)
        for dimension, model, keys, where in DIMENSIONS:
            for adset_id, segments in _grouped(session, account, period, level, model, keys,
                                               where).items():  # fmt: skip
                if adset_id in adsets:
                    tables[adset_id][dimension] = segments
    return [
        AdSetEvidence(adsets[i], campaigns.get(adsets[i].parent_id or 0), days.get(i, 0), tables[i])
        for i in sorted(tables)
    ]


# dimension, table, its key columns, which rows (geography: one geo_type)
DIMENSIONS: tuple[tuple[str, type[InsightTable], tuple[str, ...], tuple[str, str] | None], ...] = (
    ("age_gender", AdDemographicInsight, ("age", "gender"), None),
    ("placement", AdPlacementInsight,
     ("publisher_platform", "platform_position", "impression_device"), None),
    ("country", AdGeographicInsight, ("geo_value",), ("geo_type", "country")),
    ("region", AdGeographicInsight, ("geo_value",), ("geo_type", "region")),
    ("dma", AdGeographicInsight, ("geo_value",), ("geo_type", "dma")),
    ("hour", AdHourlyInsight, ("hour",), None),
)  # fmt: skip


@dataclass(frozen=True)
class DailySeries:
    """A budget holder — a delivering ad set with a daily budget of its own, or a
    delivering campaign with a campaign budget — and its days (for the budget detector):
    (date, spend, revenue, purchases), money in major units."""

    entity: AdEntity
    days: tuple[tuple[date, float, float, int], ...]


def daily_series(
    account: AdAccount, period: Period, *, engine: Engine | None = None
) -> list[DailySeries]:
    """The account's budget holders with their days with delivery over `period` (from
    the daily table, whatever the breakdown level): ad sets with their own daily budget,
    and campaigns with a daily campaign budget that are ACTIVE with a delivering ad set."""
    with read_session(engine) as session:
        adsets, campaigns = _delivering_adsets(session, account)
        own = {i: a for i, a in adsets.items() if a.daily_budget_minor}
        delivering = {a.parent_id for a in adsets.values()}
        own |= {
            i: c for i, c in campaigns.items()
            if c.daily_budget_minor and c.effective_status == "ACTIVE" and i in delivering
        }  # fmt: skip
        if not own:
            return []
        rows = session.execute(
            select(AdMetric.entity_id, AdMetric.date, AdMetric.spend_micros,
                   AdMetric.revenue_micros, AdMetric.conversions)
            .where(
                AdMetric.account_id == account.id,
                AdMetric.entity_id.in_(own),
                AdMetric.date.between(period.since, period.until),
                AdMetric.spend_micros > 0,
            )
            .order_by(AdMetric.entity_id, AdMetric.date)
        ).all()  # fmt: skip
    days: dict[int, list[tuple[date, float, float, int]]] = defaultdict(list)
    for entity_id, day, spend, revenue, purchases in rows:
        days[entity_id].append((day, spend / MICROS_PER_UNIT, revenue / MICROS_PER_UNIT,
                                int(purchases)))  # fmt: skip
    return [DailySeries(own[i], tuple(days[i])) for i in sorted(days)]


def _delivering_adsets(
    session: Session, account: AdAccount
) -> tuple[dict[int, AdEntity], dict[int, AdEntity]]:
    """The account's ad sets delivering now (effective status ACTIVE: it and its campaign
    active), and their campaigns, by id."""
    rows = session.scalars(
        select(AdEntity).where(
            AdEntity.account_id == account.id,
            AdEntity.level.in_((Level.CAMPAIGN, Level.ADSET)),
        )
    ).all()
    campaigns = {r.id: r for r in rows if r.level == Level.CAMPAIGN}
    adsets = {r.id: r for r in rows if r.level == Level.ADSET and r.effective_status == "ACTIVE"}
    for row in (*adsets.values(), *campaigns.values()):
        session.expunge(row)
    return adsets, campaigns


def _days_spent(
    session: Session, account: AdAccount, period: Period, adsets: dict[int, AdEntity]
) -> dict[int, int]:
    query = (
        select(AdMetric.entity_id, func.count(AdMetric.date))
        .where(
            AdMetric.account_id == account.id,
            AdMetric.entity_id.in_(adsets),
            AdMetric.date.between(period.since, period.until),
            AdMetric.spend_micros > 0,
        )
        .group_by(AdMetric.entity_id)
    )
    return {entity_id: int(count) for entity_id, count in session.execute(query)}


def _grouped(
    session: Session,
    account: AdAccount,
    period: Period,
    level: Level,
    model: type[InsightTable],
    keys: Sequence[str],
    where: tuple[str, str] | None,
) -> dict[int, list[SegmentSums]]:
    """Each ad set's segments of one dimension over the period."""
    entity = aliased(AdEntity)
    adset = entity.id if level == Level.ADSET else entity.parent_id
    columns = [getattr(model, k) for k in keys]
    sums = [
        func.sum(getattr(model, c)).label(c)
        for c in ("spend_micros", "impressions", "clicks", "conversions", "revenue_micros")
    ]
    query = (
        select(adset.label("adset"), *columns, *sums)
        .join(entity, entity.id == model.entity_id)
        .where(
            model.account_id == account.id,
            entity.level == level,
            model.date.between(period.since, period.until),
        )
        .group_by(adset, *columns)
    )
    if where is not None:
        query = query.where(getattr(model, where[0]) == where[1])
    found: dict[int, list[SegmentSums]] = defaultdict(list)
    for row in session.execute(query):
        found[row.adset].append(_sums(row, keys))
    return found


def _sums(row: Any, keys: Sequence[str]) -> SegmentSums:
    purchases, revenue = row.conversions, row.revenue_micros
    return SegmentSums(
        key=tuple(str(getattr(row, k)) for k in keys),
        spend=int(row.spend_micros or 0) / MICROS_PER_UNIT,
        impressions=int(row.impressions or 0),
        clicks=int(row.clicks or 0),
        purchases=None if purchases is None else int(purchases),
        revenue=None if revenue is None else int(revenue) / MICROS_PER_UNIT,
    )
