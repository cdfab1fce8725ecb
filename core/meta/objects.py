"""Meta's objects as Rex reads them: parsed once at the boundary, typed after it.

Budgets stay integers in minor units; insights money becomes micros (see core.money);
Meta's times ("2026-10-01T12:00:00-0700") become aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from core.meta.errors import UnexpectedResponseError
from core.money import parse_minor, to_micros

ACCOUNT_FIELDS = (
    "id",
    "account_id",
    "name",
    "currency",
    "timezone_name",
    "timezone_offset_hours_utc",
    "account_status",
    "min_daily_budget",
)

_COMMON_ENTITY_FIELDS = (
    "id",
    "name",
    "status",
    "effective_status",
    "daily_budget",
    "lifetime_budget",
    "budget_remaining",
    "created_time",
    "updated_time",
)
ENTITY_FIELDS: dict[str, tuple[str, ...]] = {
    "campaign": (*_COMMON_ENTITY_FIELDS, "objective"),
    "adset": (*_COMMON_ENTITY_FIELDS, "campaign_id", "bid_amount"),
    "ad": (
        "id",
        "name",
        "status",
        "effective_status",
        "campaign_id",
        "adset_id",
        "created_time",
        "updated_time",
    ),
}
EDGE_FOR_LEVEL = {"campaign": "campaigns", "adset": "adsets", "ad": "ads"}

# Meta reports one purchase under several action types; count the first one present.
PURCHASE_ACTION_TYPES = ("omni_purchase", "purchase", "offsite_conversion.fb_pixel_purchase")

INSIGHT_FIELDS = (
    "account_id",
    "campaign_id",
    "adset_id",
    "ad_id",
    "spend",
    "impressions",
    "clicks",
    "reach",
    "actions",
    "action_values",
)

ACCOUNT_STATUS_LABELS = {
    1: "active",
    2: "disabled",
    3: "unsettled",
    7: "pending risk review",
    8: "pending settlement",
    9: "in grace period",
    100: "pending closure",
    101: "closed",
}


@dataclass(frozen=True)
class AccountInfo:
    external_id: str
    name: str
    currency: str
    timezone_name: str
    account_status: int
    min_daily_budget_minor: int | None

    @classmethod
    def from_graph(cls, body: Mapping[str, Any]) -> AccountInfo:
        try:
            external_id = str(body["id"])
            return cls(
                external_id=external_id if external_id.startswith("act_") else f"act_{external_id}",
                name=str(body.get("name") or external_id),
                currency=str(body["currency"]).upper(),
                timezone_name=str(body["timezone_name"]),
                account_status=int(body.get("account_status", 1)),
                min_daily_budget_minor=parse_minor(body.get("min_daily_budget")),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise UnexpectedResponseError(f"ad account answer lacks {error}") from None

    @property
    def status_label(self) -> str:
        return ACCOUNT_STATUS_LABELS.get(self.account_status, f"status {self.account_status}")


@dataclass(frozen=True)
class EntityInfo:
    level: str
    external_id: str
    name: str
    status: str
    effective_status: str
    campaign_id: str | None = None
    adset_id: str | None = None
    daily_budget_minor: int | None = None
    lifetime_budget_minor: int | None = None
    budget_remaining_minor: int | None = None
    bid_amount_minor: int | None = None
    objective: str | None = None
    created_time: datetime | None = None
    updated_time: datetime | None = None

    @classmethod
    def from_graph(cls, level: str, body: Mapping[str, Any]) -> EntityInfo:
        try:
            return cls(
                level=level,
                external_id=str(body["id"]),
                name=str(body.get("name") or body["id"]),
                status=str(body.get("status") or "UNKNOWN"),
                effective_status=str(body.get("effective_status") or body.get("status")),
                campaign_id=_opt_str(body.get("campaign_id")),
                adset_id=_opt_str(body.get("adset_id")),
                daily_budget_minor=_positive(parse_minor(body.get("daily_budget"))),
                lifetime_budget_minor=_positive(parse_minor(body.get("lifetime_budget"))),
                budget_remaining_minor=parse_minor(body.get("budget_remaining")),
                bid_amount_minor=parse_minor(body.get("bid_amount")),
                objective=_opt_str(body.get("objective")),
                created_time=parse_meta_time(body.get("created_time")),
                updated_time=parse_meta_time(body.get("updated_time")),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise UnexpectedResponseError(f"{level} answer lacks {error}") from None

    @property
    def parent_external_id(self) -> str | None:
        return {"campaign": None, "adset": self.campaign_id, "ad": self.adset_id}[self.level]


@dataclass(frozen=True)
class InsightRow:
    """One insights row: a date range, the ids it belongs to, its numbers, its segment."""

    date_start: date
    date_stop: date
    ids: dict[str, str]
    spend_micros: int
    impressions: int
    clicks: int
    reach: int
    conversions: int
    revenue_micros: int
    segment: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_graph(cls, raw: Mapping[str, Any], breakdowns: Sequence[str] = ()) -> InsightRow:
        try:
            return cls(
                date_start=date.fromisoformat(raw["date_start"]),
                date_stop=date.fromisoformat(raw["date_stop"]),
                ids={
                    key: str(raw[key])
                    for key in ("account_id", "campaign_id", "adset_id", "ad_id")
                    if raw.get(key)
                },
                spend_micros=to_micros(raw.get("spend")),
                impressions=_count(raw.get("impressions")),
                clicks=_count(raw.get("clicks")),
                reach=_count(raw.get("reach")),
                conversions=_count(_purchase_value(raw.get("actions"))),
                revenue_micros=to_micros(_purchase_value(raw.get("action_values"))),
                segment={name: str(raw.get(name, "")) for name in breakdowns},
            )
        except (KeyError, TypeError, ValueError) as error:
            raise UnexpectedResponseError(f"insights row cannot be read: {error}") from None

    def metrics(self) -> dict[str, int]:
        return {
            "spend_micros": self.spend_micros,
            "impressions": self.impressions,
            "clicks": self.clicks,
            "reach": self.reach,
            "conversions": self.conversions,
            "revenue_micros": self.revenue_micros,
        }


@dataclass(frozen=True)
class CopyResult:
    copied_id: str
    children: dict[str, str]  # source id → copied id, for deep copies

    @classmethod
    def from_graph(cls, level: str, body: Mapping[str, Any]) -> CopyResult:
        key = {"campaign": "copied_campaign_id", "adset": "copied_adset_id", "ad": "copied_ad_id"}
        copied = body.get(key[level])
        if not copied:
            raise UnexpectedResponseError(f"the copy answer has no {key[level]}")
        children = {
            str(item["source_id"]): str(item["copied_id"])
            for item in body.get("ad_object_ids") or []
            if item.get("source_id") and item.get("copied_id")
        }
        return cls(copied_id=str(copied), children=children)


def parse_meta_time(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value)
    for pattern in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            return datetime.strptime(text, pattern).astimezone(UTC)
        except ValueError:
            continue
    raise ValueError(f"unreadable time {text!r}")


def _purchase_value(actions: Any) -> str | None:
    if not isinstance(actions, list):
        return None
    by_type = {item.get("action_type"): item.get("value") for item in actions}
    for action_type in PURCHASE_ACTION_TYPES:
        if by_type.get(action_type) is not None:
            return by_type[action_type]
    return None


def _count(value: Any) -> int:
    """Meta's counts are strings ("12"); modelled ones may carry decimals ("12.0")."""
    if value is None or value == "":
        return 0
    text = str(value)
    return int(text) if text.isdigit() else int(round(float(text)))


def _opt_str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _positive(value: int | None) -> int | None:
    """Meta reports "0" for a budget the entity does not use."""
    return value if value else None
