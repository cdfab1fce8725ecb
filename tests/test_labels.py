"""The catalogue of display names and the number formats the Insights pages share."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.labels import (
    format_duration,
    format_metric,
    format_share,
    format_time,
    metric_title,
    number_format,
    value_name,
)
from core.sandbox.world import AGES, GENDERS, PLACEMENTS


@pytest.mark.parametrize(
    ("dimension", "value", "shown"),
    [
        ("platform", "audience_network", "Audience Network"),
        ("platform", "instagram", "Instagram"),
        ("device", "android_smartphone", "Android phone"),
        ("device", "iphone", "iPhone"),
        ("position", "instagram_reels", "Instagram Reels"),
        ("position", "facebook_profile_reels", "Facebook profile reels"),  # not catalogued
        ("gender", "unknown", "Unknown"),
        ("age", "18-24", "18–24"),
        ("age", "65+", "65+"),
        ("country", "GB", "United Kingdom"),
        ("country", "TW", "Taiwan"),
        ("country", "XK", "Kosovo"),
        ("country", "unknown", "Unknown"),
        ("hour", 13, "13:00–13:59"),
        ("weekday", 0, "Monday"),
        ("region", "New South Wales", "New South Wales"),  # Meta names regions itself
    ],
)
def test_breakdown_values_by_their_names(dimension: str, value: object, shown: str) -> None:
    assert value_name(dimension, value) == shown


def test_every_value_the_sandbox_sends_has_a_name_without_underscores() -> None:
    named = [value_name("age", a) for a in AGES] + [value_name("gender", g) for g in GENDERS]
    for platform, position, device in PLACEMENTS:
        named += [
            value_name("platform", platform),
            value_name("position", position),
            value_name("device", device),
        ]
    assert [n for n in named if "_" in n or n == n.lower() and not n[0].isdigit()] == []


def test_metrics_with_their_units() -> None:
    assert format_metric("ctr", Decimal("1.4656"), "USD") == "1.47 %"
    assert format_metric("cpa", Decimal("12.5"), "USD") == "12.50 USD"
    assert format_metric("cpa", Decimal("1234.4"), "JPY") == "1,234 JPY"
    assert format_metric("roas", Decimal("4.1999"), "USD") == "4.20"
    assert format_metric("clicks", Decimal(12345), "USD") == "12,345"
    assert format_metric("ctr", None, "USD") == "—"
    assert (metric_title("ctr", "USD"), metric_title("cpm", "JPY")) == ("CTR (%)", "CPM (JPY)")
    assert metric_title("roas", "USD") == "ROAS"
    assert (number_format("ctr", "USD"), number_format("spend", "JPY")) == ("%.2f %%", "%.0f")
    assert (format_share(0.95), format_share(2 / 3), format_share(None)) == ("95 %", "66.7 %", "—")


def test_durations_and_times_as_people_read_them() -> None:
    assert [format_duration(ms) for ms in (0.4, 850, 4_200, 210_000, 7_200_000)] == [
        "0 ms",
        "850 ms",
        "4.2 s",
        "3.5 min",
        "2.0 h",
    ]
    assert format_time("2026-11-20T18:30:05.123456+00:00") == "2026-11-20 18:30:05 UTC"
    assert format_time(datetime(2026, 11, 20, 18, 30, 5, 999, tzinfo=UTC)) == (
        "2026-11-20 18:30:05 UTC"
    )
    assert (format_duration(None), format_time(None)) == ("—", "—")
