"""Breakdown views and their page: every chart from synced breakdown tables, metrics from
the catalogue, undefined values left out, CSV that adds up; display names instead of
Meta's codes; a country map that draws without internet."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from core.access.actor import SYSTEM
from core.accounts import connect_account
from core.errors import InputError
from core.sync.runner import SyncOptions, sync_accounts
from core.views import breakdowns
from core.views.breakdowns import breakdown_view, segments_csv
from tests.conftest import NOW
from tests.signed import signed_page

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def synced(db: Engine, sandbox) -> int:  # type: ignore[no-untyped-def]
    view = connect_account(sandbox.account_ids[0], sandbox.token, graph_url=sandbox.url, by=SYSTEM)
    sync_accounts(options=SyncOptions(days=7, now=NOW, client_options={"poll_seconds": 0.01}))
    return view.id


def test_each_breakdown_adds_up_to_the_same_spend(synced: int) -> None:
    view = breakdown_view(
        synced, metric="spend", since=date(2026, 11, 14), until=date(2026, 11, 20), actor=SYSTEM
    )
    totals = {
        name: sum(s.sums["spend_micros"] for s in segments)
        for name, segments in (
            ("demographics", view.demographics),
            ("placements", view.placements),
            ("countries", view.countries),
            ("hours", view.hours),
        )
    }
    assert len(set(totals.values())) == 1 and totals["hours"] > 0
    assert {s.keys["gender"] for s in view.demographics} == {"female", "male", "unknown"}
    assert len(view.heatmap()) == 7 and len(view.heatmap()[0]) == 24


def test_ratio_metrics_come_from_the_sums_and_undefined_is_none(synced: int) -> None:
    view = breakdown_view(
        synced, metric="roas", since=date(2026, 11, 14), until=date(2026, 11, 20), actor=SYSTEM
    )
    for s in view.demographics:
        expected = (
            Decimal(s.sums["revenue_micros"]) / s.sums["spend_micros"]
            if s.sums["spend_micros"]
            else None
        )
        assert s.value == expected
    rows = list(csv.DictReader(io.StringIO(segments_csv(view.countries, "roas", "USD"))))
    assert {r["Country (code)"] for r in rows} == {"US", "CA", "GB", "AU"}


def test_bad_metric_or_range_names_the_field(synced: int) -> None:
    with pytest.raises(InputError) as caught:
        breakdown_view(
            synced, metric="vibes", since=date(2026, 11, 1), until=date(2026, 11, 2), actor=SYSTEM
        )
    assert caught.value.field == "metric"
    with pytest.raises(InputError) as caught:
        breakdown_view(
            synced, metric="roas", since=date(2026, 11, 3), until=date(2026, 11, 2), actor=SYSTEM
        )
    assert caught.value.field == "date range"


def test_the_page_draws_every_chart(synced: int) -> None:
    app = signed_page("pages/breakdowns.py", timeout=60)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert len(app.get("plotly_chart")) == 4  # age×gender, placement, map, heatmap
    assert len(app.get("download_button")) == 6  # one per breakdown, countries too
    app.selectbox(key="breakdowns_metric").set_value("cpa").run()
    assert not app.exception


def test_segments_have_display_names_and_csv_keeps_the_codes(synced: int) -> None:
    view = breakdown_view(
        synced, metric="ctr", since=date(2026, 11, 14), until=date(2026, 11, 20), actor=SYSTEM
    )
    names = {(s.name("platform"), s.name("device")) for s in view.placements}
    assert ("Audience Network", "Android phone") in names and ("Facebook", "iPhone") in names
    assert {s.name("gender") for s in view.demographics} == {"Female", "Male", "Unknown"}
    assert "18–24" in {s.name("age") for s in view.demographics}
    assert {s.name("country") for s in view.countries} >= {"United States", "United Kingdom"}

    rows = list(csv.DictReader(io.StringIO(segments_csv(view.placements, "ctr", "USD"))))
    network = next(r for r in rows if r["Platform (code)"] == "audience_network")
    assert network["Platform"] == "Audience Network"
    assert {"Device", "Device (code)", "Spend (USD)", "CTR (%)"} <= set(network)
    segment = next(s for s in view.placements if s.keys["platform"] == "audience_network")
    clicks, impressions = segment.sums["clicks"], segment.sums["impressions"]
    assert Decimal(network["CTR (%)"]) == (Decimal(clicks) * 100 / impressions).quantize(
        Decimal("0.0001")
    )
    hours = list(csv.DictReader(io.StringIO(segments_csv(view.hours, "ctr", "USD"))))
    assert (hours[0]["Weekday"], hours[0]["Hour"]) == ("Monday", "00:00–00:59")


def _chart_specs(app: AppTest) -> list[tuple[dict, dict]]:
    return [
        (json.loads(c.proto.spec), json.loads(c.proto.config or "{}"))
        for c in app.get("plotly_chart")
    ]


def test_the_country_map_carries_its_shapes_and_asks_no_cdn(synced: int) -> None:
    app = signed_page("pages/breakdowns.py", timeout=60)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    maps = [
        (spec, config)
        for spec, config in _chart_specs(app)
        if any(t.get("type") == "choropleth" for t in spec["data"])
    ]
    assert len(maps) == 1
    spec, config = maps[0]
    traces = [t for t in spec["data"] if t["type"] == "choropleth"]
    drawn = {f["id"] for t in traces for f in t["geojson"]["features"]}
    shipped = breakdowns.world_shapes()["features"]
    assert len(drawn) == len(shipped) > 170  # the whole world, in the figure
    for trace in traces:  # every location has its shape in the figure itself
        shapes = {f["id"] for f in trace["geojson"]["features"]}
        assert set(trace["locations"]) <= shapes and trace["featureidkey"] == "id"
    valued = next(t for t in traces if t.get("showscale") is not False)
    assert set(valued["locations"]) == {"US", "CA", "GB", "AU"}
    # plotly.js fetches `topojsonURL` + world_110m.json for every geo chart: here the
    # URL is data in the page, and nothing in the figure points at a server
    assert config["topojsonURL"].startswith("data:application/json,")
    assert "http" not in json.dumps(spec) + json.dumps(config)
    assert spec["layout"]["geo"]["visible"] is False  # no base layer to download

    countries = next(d.value for d in app.dataframe if "Country" in d.value.columns)
    assert set(countries["Country"]) == {"United States", "Canada", "United Kingdom", "Australia"}


def test_the_page_names_values_and_shows_percentages(synced: int) -> None:
    app = signed_page("pages/breakdowns.py", timeout=60)
    app.run()
    app.selectbox(key="breakdowns_metric").set_value("ctr").run()
    assert not app.exception, [e.value for e in app.exception]
    bars = [spec for spec, _ in _chart_specs(app) if spec["data"][0]["type"] == "bar"]
    placements = next(b for b in bars if b["layout"]["xaxis"]["title"]["text"] == "Platform")
    assert {x for t in placements["data"] for x in t["x"]} >= {"Facebook", "Audience Network"}
    assert {t["name"] for t in placements["data"]} >= {"Android phone", "iPhone", "Desktop"}
    assert placements["layout"]["yaxis"]["title"]["text"] == "CTR (%)"
    assert all(": %{y:,.2f} %<" in t["hovertemplate"] for t in placements["data"])

    regions = next(d for d in app.dataframe if "Region" in d.value.columns)
    assert list(regions.value.columns) == ["Region", "CTR (%)", "Spend (USD)"]
    formats = {c: v["type_config"]["format"] for c, v in json.loads(regions.proto.columns).items()
               if "type_config" in v}  # fmt: skip
    assert formats == {"CTR (%)": "%.2f %%", "Spend (USD)": "%.2f"}


def test_purchases_by_region_dma_and_hour_are_not_available_never_zero(synced: int) -> None:
    # Meta's Insights API gives no off-Meta action metrics with these breakdowns
    from sqlalchemy import select

    from core.db import read_session
    from core.db.models import AdGeographicInsight, AdHourlyInsight

    with read_session() as session:
        geo = session.execute(
            select(AdGeographicInsight.geo_type, AdGeographicInsight.conversions,
                   AdGeographicInsight.revenue_micros, AdGeographicInsight.spend_micros)
        ).all()  # fmt: skip
        hours = session.execute(
            select(AdHourlyInsight.conversions, AdHourlyInsight.revenue_micros,
                   AdHourlyInsight.spend_micros)
        ).all()  # fmt: skip
    by_type = {t: [r for r in geo if r[0] == t] for t in ("country", "region", "dma")}
    assert all(by_type.values()) and hours
    assert all(r[1] is None and r[2] is None for t in ("region", "dma") for r in by_type[t])
    assert all(r[0] is None and r[1] is None for r in hours)
    assert sum(r[1] for r in by_type["country"]) > 0  # countries do carry purchases
    assert sum(r[2] for r in hours) > 0  # and spend by hour is there

    view = breakdown_view(
        synced, metric="roas", since=date(2026, 11, 14), until=date(2026, 11, 20), actor=SYSTEM
    )
    assert view.substituted and view.on_meta_metric == "cpc"
    assert all(s.sums["conversions"] is None for s in view.regions + view.dmas + view.hours)
    for s in view.hours + view.regions:
        clicks = s.sums["clicks"]
        expected = Decimal(s.sums["spend_micros"]) / 10**6 / clicks if clicks else None
        assert s.value == expected  # CPC, not a ROAS of 0
    assert any(s.value for s in view.countries)  # countries keep ROAS
    regions = list(csv.DictReader(io.StringIO(segments_csv(view.regions, "cpc", "USD"))))
    assert regions and all(r["Purchases"] == "" and r["Revenue (USD)"] == "" for r in regions)

    ctr = breakdown_view(synced, metric="ctr", since=date(2026, 11, 14), until=date(2026, 11, 20),
                         on_meta_metric="cpm", actor=SYSTEM)  # fmt: skip
    assert not ctr.substituted and ctr.on_meta_metric == "ctr"  # an on-Meta metric shows as is
    with pytest.raises(InputError) as caught:
        breakdown_view(synced, metric="roas", since=date(2026, 11, 14), until=date(2026, 11, 20),
                       on_meta_metric="cpa", actor=SYSTEM)  # fmt: skip
    assert caught.value.field == "metric for regions, DMAs and hours"
    assert "ctr" in caught.value.problem


def test_the_page_says_meta_reports_no_purchases_by_region_or_hour(synced: int) -> None:
    app = signed_page("pages/breakdowns.py", timeout=60)
    app.run()
    assert app.selectbox(key="breakdowns_metric").value == "roas"
    assert app.selectbox(key="breakdowns_on_meta_metric").value == "cpc"
    notes = [c.value for c in app.caption if "Meta reports no purchases" in c.value]
    assert len(notes) == 3  # regions, DMAs, hours
    regions = next(d for d in app.dataframe if "Region" in d.value.columns)
    assert list(regions.value.columns) == ["Region", "CPC (USD)", "Spend (USD)"]
    heat = next(spec for spec, _ in _chart_specs(app) if spec["data"][0]["type"] == "heatmap")
    assert heat["data"][0]["colorbar"]["title"]["text"] == "CPC (USD)"
    app.selectbox(key="breakdowns_on_meta_metric").set_value("ctr").run()
    regions = next(d for d in app.dataframe if "Region" in d.value.columns)
    assert list(regions.value.columns) == ["Region", "CTR (%)", "Spend (USD)"]
    app.selectbox(key="breakdowns_metric").set_value("spend").run()
    assert not app.exception
    assert not [c for c in app.caption if "Meta reports no purchases" in c.value]
    assert not [s for s in app.selectbox if s.key == "breakdowns_on_meta_metric"]
