"""Breakdown views: the four breakdown tables aggregated over a date range, in any metric
of the catalogue (ROAS, CPA, CTR … computed from the sums, undefined where they are).

Dates are the account's local dates; the hourly table's hours are the advertiser time
zone's, as Meta reports them. Meta gives no purchases or revenue by region, DMA or hour
(they are stored as NULL): there, a metric that needs them (ROAS, CPA, profit …) is not
available, and those sections show an on-Meta metric instead (`on_meta_metric`: spend,
impressions, clicks, CTR, CPC, CPM). Segments keep Meta's raw values as keys and give their
display names (core/labels.py); CSVs carry both.

The country map draws offline: the shapes ship with Rex (core/data/countries_110m.geojson,
Natural Earth 1:110m admin-0 countries, public domain, keyed by ISO 3166 alpha-2 as Meta's
country breakdown sends it) and `PLOTLY_OFFLINE_CONFIG` points plotly's base-map download
at an empty map in the page itself, so the browser asks no CDN for anything.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, Row, func, select
from sqlalchemy.orm import InstrumentedAttribute

from core.access.actor import Actor
from core.accounts import AccountView, read_account
from core.db import read_session
from core.db.models import (
    METRIC_COLUMNS,
    AdDemographicInsight,
    AdEntity,
    AdGeographicInsight,
    AdHourlyInsight,
    AdPlacementInsight,
    InsightTable,
)
from core.errors import InputError
from core.labels import DIMENSIONS, metric_title, value_name
from core.money import decimals, from_micros
from core.rules.metrics import METRICS, Kind, Unit
from core.settings import get_settings

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
SHAPES = Path(__file__).parent.parent / "data" / "countries_110m.geojson"
# plotly.js downloads a base map (`<topojsonURL>world_110m.json`, by default from
# cdn.plot.ly) for every geo chart, even one that brings its own GeoJSON and shows no
# base layer; offline the download fails and the chart stays empty. This URL answers it
# from the page itself with an empty topology (the "#" keeps plotly's file name out of
# the data). Pass it as the chart's config.
_EMPTY_TOPOLOGY = json.dumps({"type": "Topology", "objects": {}, "arcs": []}, separators=(",", ":"))
PLOTLY_OFFLINE_CONFIG = {"topojsonURL": "data:application/json," + quote(_EMPTY_TOPOLOGY) + "#"}
CHARTABLE = tuple(name for name, metric in METRICS.items() if metric.kind != Kind.CURRENT)
ON_META_CHARTABLE = tuple(name for name in CHARTABLE if not METRICS[name].off_meta)
ON_META_DEFAULT = "cpc"


def _total(values: Sequence[int | None]) -> int | None:
    """A sum of stored values; None (not available) if any is."""
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


@dataclass(frozen=True)
class Segment:
    keys: dict[str, Any]  # Meta's raw values: {"platform": "audience_network", …}
    sums: dict[str, int | None]  # None: Meta gives no such number for this breakdown
    value: Decimal | None

    def name(self, key: str) -> str:
        """The display name of one of its keys: "Audience Network"."""
        return value_name(key, self.keys[key])

    @property
    def names(self) -> dict[str, str]:
        return {key: self.name(key) for key in self.keys}


@dataclass(frozen=True)
class BreakdownView:
    account: AccountView
    metric: str
    on_meta_metric: str  # what regions, DMAs and hours show (`metric` where available)
    since: date
    until: date
    demographics: list[Segment]
    placements: list[Segment]
    countries: list[Segment]
    regions: list[Segment]
    dmas: list[Segment]
    hours: list[Segment]  # keys: weekday (0 = Monday), hour

    @property
    def substituted(self) -> bool:
        """Whether regions, DMAs and hours show another metric than the one chosen (Meta
        gives no purchases or revenue for them)."""
        return self.on_meta_metric != self.metric

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
    actor: Actor,
    metric: str,
    since: date,
    until: date,
    on_meta_metric: str | None = None,
    engine: Engine | None = None,
) -> BreakdownView:
    """The breakdowns of an account in `metric`; regions, DMAs and hours in `metric` if
    Meta reports what it needs for them, else in `on_meta_metric` (CPC by default)."""
    if metric not in CHARTABLE:
        raise InputError("metric", f"{metric!r} is not a metric; use one of {', '.join(CHARTABLE)}")
    if not METRICS[metric].off_meta:
        on_meta_metric = metric
    on_meta_metric = on_meta_metric or ON_META_DEFAULT
    if on_meta_metric not in ON_META_CHARTABLE:
        raise InputError(
            "metric for regions, DMAs and hours",
            f"{on_meta_metric!r}: Meta reports no purchases or revenue there; use one of "
            + ", ".join(ON_META_CHARTABLE),
        )
    if since > until:
        raise InputError("date range", "the first day must not be after the last")
    account = read_account(account_id, actor=actor, engine=engine)
    level = get_settings().breakdown_level
    with read_session(engine) as session:

        def grouped(
            model: type[InsightTable], *keys: InstrumentedAttribute[Any]
        ) -> Sequence[Row[*tuple[Any, ...]]]:
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

    def segment(keys: dict[str, Any], row: Any, shown: str = metric) -> Segment:
        sums = {c: None if (v := getattr(row, c)) is None else int(v) for c in METRIC_COLUMNS}
        return Segment(keys, sums, METRICS[shown].value(sums))

    by_weekday: dict[tuple[int, int], dict[str, list[int | None]]] = defaultdict(
        lambda: {c: [] for c in METRIC_COLUMNS}
    )
    for row in hourly:
        bucket = by_weekday[(row.date.weekday(), row.hour)]
        for column in METRIC_COLUMNS:
            bucket[column].append(getattr(row, column))
    weekday_sums = {
        key: {c: _total(values) for c, values in bucket.items()}
        for key, bucket in by_weekday.items()
    }
    geo = defaultdict(list)
    for row in geography:
        shown = metric if row.geo_type == "country" else on_meta_metric
        geo[row.geo_type].append(segment({row.geo_type: row.geo_value}, row, shown))
    return BreakdownView(
        account=account,
        metric=metric,
        on_meta_metric=on_meta_metric,
        since=since,
        until=until,
        demographics=sorted(
            (segment({"age": r.age, "gender": r.gender}, r) for r in demographics),
            key=lambda s: (s.keys["age"], s.keys["gender"]),
        ),
        placements=[
            segment({"platform": r.publisher_platform, "device": r.impression_device}, r)
            for r in placements
        ],
        countries=sorted(geo["country"], key=_by_spend),
        regions=sorted(geo["region"], key=_by_spend),
        dmas=sorted(geo["dma"], key=_by_spend),
        hours=[
            Segment({"weekday": w, "hour": h}, sums, METRICS[on_meta_metric].value(sums))
            for (w, h), sums in sorted(weekday_sums.items())
        ],
    )


def _by_spend(segment: Segment) -> int:
    return -(segment.sums["spend_micros"] or 0)


def segments_csv(segments: list[Segment], metric: str, currency: str) -> str:
    """Segments as CSV: each key by its display name and, beside it, its code (as Meta
    sends it; weekdays 0 = Monday); the stored sums (money in the currency's major unit,
    named in the heading; empty where Meta gives no such number) and the metric in its
    unit ("CTR (%)", "CPA (USD)")."""
    if not segments:
        return ""
    out = io.StringIO()
    writer = csv.writer(out)
    keys = list(segments[0].keys)
    money = [("spend_micros", f"Spend ({currency})"), ("revenue_micros", f"Revenue ({currency})")]
    counts = [
        ("impressions", "Impressions"),
        ("clicks", "Clicks"),
        ("reach", "Reach"),
        ("conversions", "Purchases"),
    ]
    definition = METRICS[metric]
    places = Decimal(1).scaleb(-(decimals(currency) if definition.unit == Unit.MONEY else 4))
    writer.writerow(
        [
            *(part for k in keys for part in (DIMENSIONS[k], f"{DIMENSIONS[k]} (code)")),
            *(title for _, title in money + counts),
            metric_title(metric, currency),
        ]
    )
    for s in segments:
        writer.writerow(
            [
                *(part for k in keys for part in (s.name(k), s.keys[k])),
                *(_shown_micros(s.sums[c], currency) for c, _ in money),
                *("" if s.sums[c] is None else s.sums[c] for c, _ in counts),
                "" if s.value is None else s.value.quantize(places),
            ]
        )
    return out.getvalue()


def _shown_micros(micros: int | None, currency: str) -> Decimal | str:
    return "" if micros is None else from_micros(micros, currency)


@dataclass(frozen=True)
class CountryMap:
    """What the country map draws: the countries with a value (shapes and values in the
    same order) and, grey behind them, every other country; plus those Rex has no shape
    for (Meta's "unknown", tiny territories), which only the table shows."""

    codes: list[str]
    names: list[str]
    values: list[float]
    shapes: dict[str, Any]  # GeoJSON FeatureCollection of `codes`, feature id = alpha-2
    background: dict[str, Any]  # every other country
    unmapped: list[str]


@cache
def world_shapes() -> dict[str, Any]:
    """Natural Earth's 1:110m countries, keyed by ISO 3166 alpha-2 (read once)."""
    return json.loads(SHAPES.read_text(encoding="utf-8"))


def country_map(segments: list[Segment]) -> CountryMap:
    features = {f["id"]: f for f in world_shapes()["features"]}
    defined = [s for s in segments if s.value is not None]
    mapped = [s for s in defined if str(s.keys["country"]).upper() in features]
    codes = [str(s.keys["country"]).upper() for s in mapped]
    drawn = set(codes)
    return CountryMap(
        codes=codes,
        names=[s.name("country") for s in mapped],
        values=[float(value) for s in mapped if (value := s.value) is not None],  # each has one
        shapes={"type": "FeatureCollection", "features": [features[c] for c in codes]},
        background={
            "type": "FeatureCollection",
            "features": [f for code, f in features.items() if code not in drawn],
        },
        unmapped=[
            s.name("country") for s in defined if str(s.keys["country"]).upper() not in drawn
        ],
    )
