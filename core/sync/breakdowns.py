"""The four breakdown tables: which Meta breakdowns fill them and how a row is keyed."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from core.db.models import (
    AdDemographicInsight,
    AdGeographicInsight,
    AdHourlyInsight,
    AdPlacementInsight,
    InsightTable,
)
from core.meta.objects import InvalidAnswerError

HOURLY = "hourly_stats_aggregated_by_advertiser_time_zone"


@dataclass(frozen=True)
class BreakdownTable:
    """A table and the insights calls that fill it.

    `calls` are breakdown combinations, one insights request each; `dimensions` turns a
    row's segment (Meta's breakdown values) into the table's key columns.
    """

    name: str
    model: type[InsightTable]
    calls: tuple[tuple[str, ...], ...]
    key: tuple[str, ...]
    dimensions: Callable[[tuple[str, ...], dict[str, str]], dict[str, object]]

    def row_key(self, call: tuple[str, ...], segment: dict[str, str], what: str) -> dict:
        """The key columns of a row, or InvalidAnswerError when a value does not fit them
        (an hour that is no hour, a value longer than its column)."""
        values = self.dimensions(call, segment)
        columns = self.model.__table__.c
        for name, value in values.items():
            length = getattr(columns[name].type, "length", None)
            if isinstance(value, str) and length is not None and len(value) > length:
                shown = next((b for b in call if segment.get(b) == value), name)
                raise InvalidAnswerError(what, shown, value, f"at most {length} characters")
        return values


_HOUR_RANGE = re.compile(r"(\d{2}):00:00 - (\d{2}):59:59")


def _hour(segment: dict[str, str]) -> int:
    # "13:00:00 - 13:59:59" → 13
    text = segment[HOURLY]
    match = _HOUR_RANGE.fullmatch(text)
    if match is None or match.group(1) != match.group(2) or int(match.group(1)) > 23:
        raise InvalidAnswerError(
            "an hourly insights row", HOURLY, text, 'an hour of the day, "13:00:00 - 13:59:59"'
        )
    return int(match.group(1))


BREAKDOWN_TABLES: tuple[BreakdownTable, ...] = (
    BreakdownTable(
        name="demographics",
        model=AdDemographicInsight,
        calls=(("age", "gender"),),
        key=("age", "gender"),
        dimensions=lambda _call, s: {"age": s["age"], "gender": s["gender"]},
    ),
    BreakdownTable(
        name="placement",
        model=AdPlacementInsight,
        calls=(("publisher_platform", "platform_position", "impression_device"),),
        key=("publisher_platform", "platform_position", "impression_device"),
        dimensions=lambda _call, s: {
            "publisher_platform": s["publisher_platform"],
            "platform_position": s["platform_position"],
            "impression_device": s["impression_device"],
        },
    ),
    BreakdownTable(
        name="geography",
        model=AdGeographicInsight,
        calls=(("country",), ("region",), ("dma",)),
        key=("geo_type", "geo_value"),
        dimensions=lambda call, s: {"geo_type": call[0], "geo_value": s[call[0]]},
    ),
    BreakdownTable(
        name="hourly",
        model=AdHourlyInsight,
        calls=((HOURLY,),),
        key=("hour",),
        dimensions=lambda _call, s: {"hour": _hour(s)},
    ),
)

BREAKDOWN_CALLS = sum(len(table.calls) for table in BREAKDOWN_TABLES)
