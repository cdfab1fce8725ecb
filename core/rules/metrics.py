"""The metric catalogue: every metric Rex knows, defined once.

The evaluator builds its SQL from it, the rule builder fills its choices from it, charts
label their axes with it. A metric is a sum of a stored column, a ratio of two sums
(undefined — None — when the denominator is zero), a difference of sums, or an entity's
current value (budgets: no window).

Stored columns: money as micros of the major unit (`spend_micros`, `revenue_micros`),
counts as integers (see core/db/models.py). Values come out in the units people use:
money in major units, percentages as 0–100.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from core.money import MICROS_PER_UNIT


class Unit(StrEnum):
    MONEY = "money"
    COUNT = "count"
    RATIO = "ratio"
    PERCENT = "percent"


class Kind(StrEnum):
    SUM = "sum"  # Σ column
    DIFFERENCE = "difference"  # Σ a − Σ b
    RATIO = "ratio"  # Σ a / Σ b × scale, undefined when Σ b = 0
    CURRENT = "current"  # the entity's current value, no window


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    unit: Unit
    kind: Kind
    a: str  # column (or the first column)
    b: str | None = None  # second column for difference / ratio
    scale: Decimal = Decimal(1)  # applied to the ratio, in the metric's unit
    higher_is_better: bool = True
    description: str = ""

    @property
    def needs_window(self) -> bool:
        return self.kind != Kind.CURRENT

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.a,) if self.b is None else (self.a, self.b)

    @property
    def off_meta(self) -> bool:
        """Whether it needs purchases or revenue — the off-Meta (pixel) numbers Meta does
        not give for region, DMA and hourly breakdowns."""
        return bool({"conversions", "revenue_micros"} & set(self.columns))

    @property
    def words(self) -> str:
        """The metric inside a sentence: "ROAS", "profit", "cost per purchase" (the
        label without its explanation in brackets, lower case unless an acronym)."""
        label = self.label.split(" (")[0]
        return label if label[:2].isupper() else label[0].lower() + label[1:]

    @property
    def plural(self) -> bool:
        """Counted things ("purchases are 5"), for sentences."""
        return self.name in ("conversions", "impressions", "clicks")

    @property
    def undefined_because(self) -> str:
        """Why a ratio is undefined, in words: its denominator is zero."""
        return {
            "spend_micros": "nothing spent",
            "conversions": "no purchases",
            "impressions": "no impressions",
            "clicks": "no clicks",
            "reach": "no reach",
        }.get(self.b or "", "no data")

    def value(self, sums: Mapping[str, int | None]) -> Decimal | None:
        """The metric from a window's sums of stored columns (money columns in micros);
        None where it is undefined, or where a column it needs is not available (None:
        Meta gives no purchases or revenue for some breakdowns)."""
        if any(sums[column] is None for column in self.columns):
            return None
        a = _unit_value(self.a, sums[self.a])
        if self.kind == Kind.SUM:
            return a
        assert self.b is not None
        b = _unit_value(self.b, sums[self.b])
        if self.kind == Kind.DIFFERENCE:
            return a - b
        if b == 0:
            return None
        return a / b * self.scale


_M = Decimal(MICROS_PER_UNIT)


def _unit_value(column: str, raw: int | None) -> Decimal:
    assert raw is not None  # Metric.value returned before
    return Decimal(raw) / _M if column.endswith("_micros") else Decimal(raw)


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("spend", "Spend", Unit.MONEY, Kind.SUM, "spend_micros", higher_is_better=False),
        Metric("revenue", "Revenue (purchase value)", Unit.MONEY, Kind.SUM, "revenue_micros"),
        Metric(
            "profit", "Profit", Unit.MONEY, Kind.DIFFERENCE, "revenue_micros", "spend_micros",
            description="revenue − spend",
        ),
        Metric("roas", "ROAS", Unit.RATIO, Kind.RATIO, "revenue_micros", "spend_micros"),
        Metric(
            "cpa", "Cost per purchase", Unit.MONEY, Kind.RATIO, "spend_micros", "conversions",
            higher_is_better=False,
        ),
        Metric("conversions", "Purchases", Unit.COUNT, Kind.SUM, "conversions"),
        Metric("impressions", "Impressions", Unit.COUNT, Kind.SUM, "impressions"),
        Metric("clicks", "Clicks", Unit.COUNT, Kind.SUM, "clicks"),
        Metric(
            "reach", "Reach (sum of daily reach)", Unit.COUNT, Kind.SUM, "reach",
            description="over a window, the sum of daily reach: an upper bound",
        ),
        Metric(
            "ctr", "CTR", Unit.PERCENT, Kind.RATIO, "clicks", "impressions", Decimal(100)
        ),
        Metric(
            "cpc", "CPC", Unit.MONEY, Kind.RATIO, "spend_micros", "clicks",
            higher_is_better=False,
        ),
        Metric(
            "cpm", "CPM", Unit.MONEY, Kind.RATIO, "spend_micros", "impressions", Decimal(1000),
            higher_is_better=False,
        ),
        Metric(
            "cvr", "Conversion rate", Unit.PERCENT, Kind.RATIO, "conversions", "clicks",
            Decimal(100),
        ),
        Metric(
            "frequency", "Frequency", Unit.RATIO, Kind.RATIO, "impressions", "reach",
            higher_is_better=False,
        ),
        Metric("daily_budget", "Daily budget", Unit.MONEY, Kind.CURRENT, "daily_budget_minor"),
        Metric(
            "lifetime_budget", "Lifetime budget", Unit.MONEY, Kind.CURRENT,
            "lifetime_budget_minor",
        ),
    )
}  # fmt: skip


def get_metric(name: str) -> Metric:
    return METRICS[name]
