"""Breakdown views: the four breakdown tables aggregated over a date range, in any metric
of the catalogue (ROAS, CPA, CTR … computed from the sums, undefined where they are).

Dates are the account's local dates; the hourly table's hours are the advertiser time
zone's, as Meta reports them.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select

from core.accounts import AccountView, get_account
from core.db import read_session
from core.db.models import (
    METRIC_COLUMNS,
    AdDemographicInsight,
    AdEntity,
    AdGeographicInsight,
    AdHourlyInsight,
    AdPlacementInsight,
)
from core.errors import InputError
from core.rules.metrics import METRICS, Kind
from core.settings import get_settings

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# ISO 3166 alpha-2 → alpha-3, for the choropleth (the countries Meta reports most).
ISO3 = {
    "US": "USA",
    "CA": "CAN",
    "GB": "GBR",
    "AU": "AUS",
    "JP": "JPN",
    "TW": "TWN",
    "KR": "KOR",
    "DE": "DEU",
    "FR": "FRA",
    "ES": "ESP",
    "IT": "ITA",
    "NL": "NLD",
    "BR": "BRA",
    "MX": "MEX",
    "IN": "IND",
    "SE": "SWE",
    "NO": "NOR",
    "DK": "DNK",
    "IE": "IRL",
    "NZ": "NZL",
}
CHARTABLE = tuple(name for name, metric in METRICS.items() if metric.kind != Kind.CURRENT)


@dataclass(frozen=True)
class Segment:
    keys: dict[str, Any]
    sums: dict[str, int]
    value: Decimal | None


@dataclass(frozen=True)
class BreakdownView:
    account: AccountView
    metric: str
    since: date
    until: date
    demographics: list[Segment]
    placements: list[Segment]
    countries: list[Segment]
    regions: list[Segment]
    dmas: list[Segment]
    hours: list[Segment]  # keys: weekday (0 = Monday), hour

    @property
    def empty(self) -> bool:
        return not (self.demographics or self.placements or self.countries or self.hours)

    def heatmap(self) -> list[list[float | None]]:
        """7 × 24 values (weekday rows, hour columns) for a heatmap."""
        grid: list[list[float | None]] = [[None] * 24 for _ in WEEKDAYS]
        for segment in self.hours:
            value = segment.value
            grid[segment.keys["weekday"]][segment.keys["hour"]] = (
                None if value is None else float(value)
            )
        return grid


def breakdown_view(
    account_id: int,
    *,
    metric: str,
    since: date,
    until: date,
    engine: Engine | None = None,
) -> BreakdownView:
    if metric not in CHARTABLE:
        raise InputError("metric", f"{metric!r} is not a metric; use one of {', '.join(CHARTABLE)}")
    if since > until:
        raise InputError("date range", "the first day must not be after the last")
    account = get_account(account_id, engine=engine)
    level = get_settings().breakdown_level
    with read_session(engine) as session:

        def grouped(model, *keys):  # type: ignore[no-untyped-def]
            sums = [func.sum(getattr(model, c)).label(c) for c in METRIC_COLUMNS]
            query = (
                select(*keys, *sums)
                .join(AdEntity, AdEntity.id == model.entity_id)
                .where(
                    model.account_id == account.id,
                    AdEntity.level == level,
                    model.date.between(since, until),
                )
                .group_by(*keys)
            )
            return session.execute(query).all()

        demographics = grouped(
            AdDemographicInsight, AdDemographicInsight.age, AdDemographicInsight.gender
        )
        placements = grouped(
            AdPlacementInsight,
            AdPlacementInsight.publisher_platform,
            AdPlacementInsight.impression_device,
        )
        geography = grouped(
            AdGeographicInsight, AdGeographicInsight.geo_type, AdGeographicInsight.geo_value
        )
        hourly = grouped(AdHourlyInsight, AdHourlyInsight.date, AdHourlyInsight.hour)

    definition = METRICS[metric]

    def segment(keys: dict[str, Any], row: Any) -> Segment:
        sums = {c: int(getattr(row, c) or 0) for c in METRIC_COLUMNS}
        return Segment(keys, sums, definition.value(sums))

    by_weekday: dict[tuple[int, int], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(METRIC_COLUMNS, 0)
    )
    for row in hourly:
        bucket = by_weekday[(row.date.weekday(), row.hour)]
        for column in METRIC_COLUMNS:
            bucket[column] += int(getattr(row, column) or 0)
    geo = defaultdict(list)
    for row in geography:
        geo[row.geo_type].append(segment({row.geo_type: row.geo_value}, row))
    return BreakdownView(
        account=account,
        metric=metric,
        since=since,
        until=until,
        demographics=[segment({"age": r.age, "gender": r.gender}, r) for r in demographics],
        placements=[
            segment({"platform": r.publisher_platform, "device": r.impression_device}, r)
            for r in placements
        ],
        countries=sorted(geo["country"], key=lambda s: -s.sums["spend_micros"]),
        regions=sorted(geo["region"], key=lambda s: -s.sums["spend_micros"]),
        dmas=sorted(geo["dma"], key=lambda s: -s.sums["spend_micros"]),
        hours=[
            Segment({"weekday": w, "hour": h}, sums, definition.value(sums))
            for (w, h), sums in sorted(by_weekday.items())
        ],
    )


def segments_csv(segments: list[Segment], metric: str) -> str:
    """Segments as CSV: their keys, the stored sums (money in major units), the metric."""
    out = io.StringIO()
    writer = csv.writer(out)
    if not segments:
        return ""
    keys = list(segments[0].keys)
    writer.writerow(
        [*keys, "spend", "revenue", "impressions", "clicks", "reach", "conversions", metric]
    )
    for s in segments:
        writer.writerow(
            [
                *(s.keys[k] for k in keys),
                Decimal(s.sums["spend_micros"]) / 1_000_000,
                Decimal(s.sums["revenue_micros"]) / 1_000_000,
                s.sums["impressions"],
                s.sums["clicks"],
                s.sums["reach"],
                s.sums["conversions"],
                "" if s.value is None else s.value.quantize(Decimal("0.0001")),
            ]
        )
    return out.getvalue()
