"""Breakdown views and their page: every chart from synced breakdown tables, metrics from
the catalogue, undefined values left out, CSV that adds up."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from core.accounts import connect_account
from core.breakdown_views import breakdown_view, segments_csv
from core.errors import InputError
from core.sync.runner import SyncOptions, sync_accounts
from tests.conftest import NOW

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def synced(db: Engine, sandbox) -> int:  # type: ignore[no-untyped-def]
    view = connect_account(sandbox.account_ids[0], sandbox.token, graph_url=sandbox.url)
    sync_accounts(options=SyncOptions(days=7, now=NOW, client_options={"poll_seconds": 0.01}))
    return view.id


def test_each_breakdown_adds_up_to_the_same_spend(synced: int) -> None:
    view = breakdown_view(
        synced, metric="spend", since=date(2026, 11, 14), until=date(2026, 11, 20)
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
    view = breakdown_view(synced, metric="roas", since=date(2026, 11, 14), until=date(2026, 11, 20))
    for s in view.demographics:
        expected = (
            Decimal(s.sums["revenue_micros"]) / s.sums["spend_micros"]
            if s.sums["spend_micros"]
            else None
        )
        assert s.value == expected
    rows = list(csv.DictReader(io.StringIO(segments_csv(view.countries, "roas"))))
    assert {r["country"] for r in rows} == {"US", "CA", "GB", "AU"}


def test_bad_metric_or_range_names_the_field(synced: int) -> None:
    with pytest.raises(InputError) as caught:
        breakdown_view(synced, metric="vibes", since=date(2026, 11, 1), until=date(2026, 11, 2))
    assert caught.value.field == "metric"
    with pytest.raises(InputError) as caught:
        breakdown_view(synced, metric="roas", since=date(2026, 11, 3), until=date(2026, 11, 2))
    assert caught.value.field == "date range"


def test_the_page_draws_every_chart(synced: int) -> None:
    app = AppTest.from_file(str(ROOT / "pages/breakdowns.py"), default_timeout=60)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert len(app.get("plotly_chart")) == 4  # age×gender, placement, map, heatmap
    assert len(app.get("download_button")) == 5
    app.selectbox(key="breakdowns_metric").set_value("cpa").run()
    assert not app.exception
