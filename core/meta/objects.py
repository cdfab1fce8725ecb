"""Meta's objects as Rex reads them: validated once at the boundary, typed after it.

Budgets stay integers in minor units; insights money becomes micros (see core.money);
Meta's times ("2026-10-01T12:00:00-0700") become aware UTC datetimes.

Every value Rex keeps is checked on the way in, by one validating constructor per
object (`from_graph`): ids are digit strings, statuses Meta's words, budgets and counts
non-negative integers below 2^63, money finite, non-negative and below a cap, dates ISO
dates (inside the range asked for, when the caller says which), the currency one whose
minor unit Rex knows, the time zone a real IANA zone. Anything else raises
`InvalidAnswerError`, which names the object, the field, the value and what was
expected. A caller reading many objects refuses the bad ones and keeps the rest
(`core.sync.runner`); a caller reading one (connect, a read-back) refuses the answer.

Plain frozen dataclasses rather than pydantic models: Meta's wire values are strings
that need Meta-specific coercion ("0" means no budget, "12.0" impressions, money in
major units → micros), so a model would be mostly custom validators, and insights rows
come by the hundred thousand, where a few checks per field cost least.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.enums import Level
from core.ids import MAX_DIGITS, OBJECT_ID, account_digits, account_id
from core.meta.errors import UnexpectedResponseError
from core.money import MICROS_PER_UNIT, MoneyError, check_currency

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
ENTITY_FIELDS: dict[Level, tuple[str, ...]] = {
    Level.CAMPAIGN: (*_COMMON_ENTITY_FIELDS, "objective"),
    Level.ADSET: (*_COMMON_ENTITY_FIELDS, "campaign_id", "bid_amount"),
    Level.AD: (
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
EDGE_FOR_LEVEL = {Level.CAMPAIGN: "campaigns", Level.ADSET: "adsets", Level.AD: "ads"}
# An ad set's delivery settings: read only where a change to them is checked (a rollback,
# a read-back), never by the sync — a targeting spec can be kilobytes per ad set.
ADSET_DELIVERY_FIELDS = ("targeting", "adset_schedule", "pacing_type", "end_time")
# Meta's special ad categories that restrict targeting (housing, employment, credit /
# financial products): ages 18–65 only, no gender targeting
RESTRICTING_CATEGORIES = frozenset(
    {"HOUSING", "EMPLOYMENT", "CREDIT", "FINANCIAL_PRODUCTS_SERVICES"}
)

# ------------------------------------------------- the targeting spec's vocabulary
# Meta's conventions (the breakdowns reference and the targeting spec), shared by the
# targeting edits (core/actions/targeting.py) and the sandbox (core/sandbox/targeting.py).

AGE_BANDS: dict[str, tuple[int, int]] = {  # the age breakdown's bands and the ages they hold
    "18-24": (18, 24),
    "25-34": (25, 34),
    "35-44": (35, 44),
    "45-54": (45, 54),
    "55-64": (55, 64),
    "65+": (65, 65),  # age_max 65 means 65 and over
}
AGE_LIMITS = (13, 65)  # age_min / age_max
GENDER_CODES: dict[int, str] = {1: "male", 2: "female"}  # `genders`; absent = all
# `publisher_platforms` as Rex writes it (Meta also knows threads, which Rex never lists)
PLATFORMS = ("facebook", "instagram", "audience_network", "messenger")
# `<platform>_positions` names → the placement breakdown's `platform_position` values
POSITIONS: dict[str, dict[str, str]] = {
    "facebook": {"feed": "feed", "marketplace": "marketplace", "facebook_reels": "facebook_reels"},
    "instagram": {"stream": "feed", "story": "instagram_stories", "reels": "instagram_reels"},
    "audience_network": {"classic": "classic"},
    "messenger": {"messenger_home": "messenger_inbox"},
}
# `device_platforms` names → the placement breakdown's `impression_device` values
DEVICES: dict[str, tuple[str, ...]] = {
    "mobile": ("android_smartphone", "iphone"),
    "desktop": ("desktop",),
}

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


class InvalidAnswerError(UnexpectedResponseError):
    """An answer in Meta's shape holding a value Rex must not keep: a negative budget, an
    id that is not digits, a date outside the range asked for, an unknown currency …"""

    hint = (
        "Rex kept nothing of this object. If Meta keeps answering so, check the account's "
        "Graph URL (a proxy or test server may be answering) and report it to Meta with "
        "the trace id."
    )

    def __init__(self, what: str, field_name: str, value: Any, expected: str) -> None:
        self.what = what
        self.field = field_name
        self.value = value
        self.expected = expected
        super().__init__(
            f"{what}: {field_name} is {_shown(value)}; expected {expected}",
            blamed_field=field_name,
        )


# Meta's words for `status`; `effective_status` adds more (see GRAPH_API_NOTES.md) and
# Meta adds values over time, so an unknown but well-formed effective status is kept.
STATUSES = frozenset({"ACTIVE", "PAUSED", "DELETED", "ARCHIVED"})
# The effective statuses an edge lists when asked (deleted objects never come back).
LISTED_STATUSES = (
    "ACTIVE",
    "PAUSED",
    "ARCHIVED",
    "IN_PROCESS",
    "WITH_ISSUES",
    "CAMPAIGN_PAUSED",
    "ADSET_PAUSED",
    "DISAPPROVED",
    "PENDING_REVIEW",
    "PREAPPROVED",
    "PENDING_BILLING_INFO",
)
EFFECTIVE_STATUSES = STATUSES | frozenset(LISTED_STATUSES)
MAX_BIGINT = 2**63 - 1  # budgets, counts and micros are BIGINT columns
# Caps on one insights row (one entity, one day): far above any real figure, low enough
# that sums over years of rows stay below 2^63. 10^12 major units is ~40 million USD a
# day even in VND or IDR.
MAX_MONEY_MAJOR = Decimal(10) ** 12
MAX_COUNT = 10**15
_DIGITS = re.compile(r"\d{1,19}")  # a count or an amount below 2^63 (ids: core.ids)
_STATUS_WORD = re.compile(r"[A-Z][A-Z0-9_]{0,39}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_BUDGET = 'a non-negative whole number of the currency\'s minor unit (e.g. "2000") below 2^63'


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
        what = "the ad account answer"
        body = _mapping(what, body)
        external_id = _account_id(what, "id", body.get("id"))
        if body.get("account_id") not in (None, "") and (
            _account_id(what, "account_id", body["account_id"]) != external_id
        ):
            raise InvalidAnswerError(
                what, "account_id", body["account_id"], f"the digits of id {external_id}"
            )
        return cls(
            external_id=external_id,
            name=_text(what, "name", body.get("name"), 300) or external_id,
            currency=_currency(what, body.get("currency")),
            timezone_name=_timezone(what, body.get("timezone_name")),
            account_status=_account_status(what, body.get("account_status", 1)),
            min_daily_budget_minor=_minor(what, "min_daily_budget", body.get("min_daily_budget")),
        )

    @property
    def status_label(self) -> str:
        return ACCOUNT_STATUS_LABELS.get(self.account_status, f"status {self.account_status}")


@dataclass(frozen=True)
class EntityInfo:
    level: Level
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
    # ad sets, when asked for (ADSET_DELIVERY_FIELDS); None: not read
    targeting: dict[str, Any] | None = field(default=None, hash=False)
    adset_schedule: list[dict[str, Any]] | None = field(default=None, hash=False)
    pacing_type: tuple[str, ...] | None = None
    end_time: datetime | None = None
    # a campaign's `special_ad_categories`, when asked for; on an ad set read for a
    # targeting edit, its campaign's (they restrict the ad set's targeting)
    special_ad_categories: tuple[str, ...] | None = None

    @classmethod
    def from_graph(cls, level: Level, body: Mapping[str, Any]) -> EntityInfo:
        body = _mapping(f"the {level} answer", body)
        external_id = _id(f"the {level} answer", "id", body.get("id"))
        what = f"{level} {external_id}"
        status = body.get("status")
        if not isinstance(status, str) or status not in STATUSES:
            raise InvalidAnswerError(
                what, "status", status, "one of " + ", ".join(sorted(STATUSES))
            )
        effective = body.get("effective_status")
        return cls(
            level=level,
            external_id=external_id,
            name=_text(what, "name", body.get("name"), 400) or external_id,
            status=status,
            effective_status=status if effective is None else _effective_status(what, effective),
            campaign_id=_opt_id(what, "campaign_id", body.get("campaign_id")),
            adset_id=_opt_id(what, "adset_id", body.get("adset_id")),
            daily_budget_minor=_budget(what, "daily_budget", body.get("daily_budget")),
            lifetime_budget_minor=_budget(what, "lifetime_budget", body.get("lifetime_budget")),
            budget_remaining_minor=_minor(what, "budget_remaining", body.get("budget_remaining")),
            bid_amount_minor=_minor(what, "bid_amount", body.get("bid_amount")),
            objective=_word(what, "objective", body.get("objective"), 60),
            created_time=_time(what, "created_time", body.get("created_time")),
            updated_time=_time(what, "updated_time", body.get("updated_time")),
            targeting=_spec(what, body.get("targeting")),
            adset_schedule=_schedule(what, body.get("adset_schedule")),
            pacing_type=_words(what, "pacing_type", body.get("pacing_type")),
            end_time=_time(what, "end_time", body.get("end_time")),
            special_ad_categories=_words(
                what, "special_ad_categories", body.get("special_ad_categories")
            ),
        )

    @property
    def schedule(self) -> list[dict[str, Any]] | None:
        """The dayparting schedule in force: None when there is none (or it was not read)."""
        if not self.adset_schedule:
            return None
        if self.pacing_type is not None and "day_parting" not in self.pacing_type:
            return None  # a schedule kept while pacing is standard does not apply
        return self.adset_schedule

    @property
    def parent_external_id(self) -> str | None:
        parents = {Level.CAMPAIGN: None, Level.ADSET: self.campaign_id, Level.AD: self.adset_id}
        return parents[self.level]


# Meta's Insights breakdowns reference ("Restrictions for off-Meta action metrics"): with
# these breakdowns the API returns no off-Meta action metrics — no pixel purchases in
# `actions`, no `action_values`, `purchase_roas` or `cost_per_action_type` — only on-Meta
# ones (spend, impressions, clicks, reach). Their rows' purchases and revenue are not
# available (None), never zero.
ON_META_ONLY_BREAKDOWNS = frozenset(
    {
        "region",
        "dma",
        "hourly_stats_aggregated_by_advertiser_time_zone",
        "hourly_stats_aggregated_by_audience_time_zone",
    }
)


@dataclass(frozen=True)
class InsightRow:
    """One insights row: a date range, the ids it belongs to, its numbers, its segment.
    `conversions` and `revenue_micros` are None for a breakdown Meta gives no off-Meta
    metrics for (`ON_META_ONLY_BREAKDOWNS`)."""

    date_start: date
    date_stop: date
    ids: dict[str, str]
    spend_micros: int
    impressions: int
    clicks: int
    reach: int
    conversions: int | None
    revenue_micros: int | None
    segment: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_graph(
        cls,
        raw: Mapping[str, Any],
        breakdowns: Sequence[str] = (),
        *,
        since: date | None = None,
        until: date | None = None,
    ) -> InsightRow:
        """`since` / `until`: the range asked for; a row dated outside it is refused."""
        raw = _mapping("an insights row", raw)
        ids = {
            key: _id("an insights row", key, raw[key])
            for key in ("account_id", "campaign_id", "adset_id", "ad_id")
            if raw.get(key) not in (None, "")
        }
        what = "insights row" + "".join(f" {key[:-3]} {value}" for key, value in ids.items())
        start = _date(what, "date_start", raw.get("date_start"), since, until)
        stop = _date(what, "date_stop", raw.get("date_stop"), since, until)
        if stop < start:
            raise InvalidAnswerError(what, "date_stop", raw.get("date_stop"), "≥ date_start")
        on_meta_only = not ON_META_ONLY_BREAKDOWNS.isdisjoint(breakdowns)
        return cls(
            date_start=start,
            date_stop=stop,
            ids=ids,
            spend_micros=_micros(what, "spend", raw.get("spend")),
            impressions=_count(what, "impressions", raw.get("impressions")),
            clicks=_count(what, "clicks", raw.get("clicks")),
            reach=_count(what, "reach", raw.get("reach")),
            conversions=None
            if on_meta_only
            else _count(what, "actions", _purchase_value(what, raw.get("actions"))),
            revenue_micros=None
            if on_meta_only
            else _micros(what, "action_values", _purchase_value(what, raw.get("action_values"))),
            segment={name: _segment(what, name, raw.get(name)) for name in breakdowns},
        )

    def metrics(self) -> dict[str, int | None]:
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
    def from_graph(cls, level: Level, body: Mapping[str, Any]) -> CopyResult:
        key = {
            Level.CAMPAIGN: "copied_campaign_id",
            Level.ADSET: "copied_adset_id",
            Level.AD: "copied_ad_id",
        }
        what = f"the {level} copy answer"
        body = _mapping(what, body)
        if body.get(key[level]) in (None, ""):
            raise UnexpectedResponseError(f"the copy answer has no {key[level]}")
        copied = _id(what, key[level], body[key[level]])
        items = body.get("ad_object_ids") or []
        if not isinstance(items, list):
            raise InvalidAnswerError(what, "ad_object_ids", items, "a list")
        children = {}
        for index, item in enumerate(items):
            item = _mapping(f"{what} ad_object_ids[{index}]", item)
            if item.get("source_id") and item.get("copied_id"):
                source = _id(what, f"ad_object_ids[{index}].source_id", item["source_id"])
                children[source] = _id(what, f"ad_object_ids[{index}].copied_id", item["copied_id"])
        return cls(copied_id=copied, children=children)


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


def _purchase_value(what: str, actions: Any) -> Any:
    if actions is None:
        return None
    if not isinstance(actions, list) or not all(isinstance(i, Mapping) for i in actions):
        raise InvalidAnswerError(what, "actions", actions, 'a list of {"action_type", "value"}')
    by_type = {item.get("action_type"): item.get("value") for item in actions}
    for action_type in PURCHASE_ACTION_TYPES:
        if by_type.get(action_type) is not None:
            return by_type[action_type]
    return None


# ------------------------------------------------------------ one field at a time


def check_timezone(name: Any) -> str:
    """`name` if it is an IANA time zone this machine knows, else ValueError."""
    if not isinstance(name, str) or not name or len(name) > 64:
        raise ValueError(f"{_shown(name)} is not an IANA time zone name")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{_shown(name)} is not an IANA time zone name") from None
    return name


def _mapping(what: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidAnswerError(what, "(the answer)", value, "a JSON object")
    return value


def _id(what: str, name: str, value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_BIGINT:
        return str(value)
    if isinstance(value, str) and OBJECT_ID.fullmatch(value) and int(value) <= MAX_BIGINT:
        return value
    raise InvalidAnswerError(what, name, value, 'an id of digits, e.g. "120210000000000"')


def _opt_id(what: str, name: str, value: Any) -> str | None:
    return None if value is None or value == "" else _id(what, name, value)


def _account_id(what: str, name: str, value: Any) -> str:
    found = account_id(value) if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        found = account_id(str(value))
    if found is None or len(account_digits(found)) > MAX_DIGITS:  # Meta's: 64 bits
        raise InvalidAnswerError(what, name, value, "an ad account id, act_ followed by digits")
    return found


def _text(what: str, name: str, value: Any, length: int) -> str | None:
    """A name: text, cut to the column's length (names are for people, not for matching)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidAnswerError(what, name, value, "text")
    return value if len(value) <= length else value[: length - 1] + "…"


def _word(what: str, name: str, value: Any, length: int) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _STATUS_WORD.fullmatch(value) or len(value) > length:
        raise InvalidAnswerError(what, name, value, "one of Meta's upper-case words")
    return value


def _effective_status(what: str, value: Any) -> str:
    if isinstance(value, str) and (value in EFFECTIVE_STATUSES or _STATUS_WORD.fullmatch(value)):
        return value
    raise InvalidAnswerError(
        what, "effective_status", value, "one of Meta's words, e.g. ACTIVE or CAMPAIGN_PAUSED"
    )


def _currency(what: str, value: Any) -> str:
    try:
        return check_currency(value)
    except MoneyError as error:
        raise InvalidAnswerError(
            what, "currency", value, f"a currency Rex knows ({error})"
        ) from None


def _timezone(what: str, value: Any) -> str:
    try:
        return check_timezone(value)
    except ValueError:
        raise InvalidAnswerError(
            what, "timezone_name", value, "an IANA time zone name, e.g. America/Los_Angeles"
        ) from None


def _account_status(what: str, value: Any) -> int:
    number = _whole(value)
    if number is None or number > 10_000:
        raise InvalidAnswerError(what, "account_status", value, "Meta's status number, e.g. 1")
    return number


def _minor(what: str, name: str, value: Any) -> int | None:
    """A budget-like field in minor units; absent → None."""
    if value is None or value == "":
        return None
    number = _whole(value)
    if number is None:
        raise InvalidAnswerError(what, name, value, _BUDGET)
    return number


def _budget(what: str, name: str, value: Any) -> int | None:
    """Meta reports "0" for a budget the entity does not use."""
    return _minor(what, name, value) or None


def _whole(value: Any) -> int | None:
    """A non-negative integer below 2^63 from an int or a string of digits, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value):
        number = int(value)
    else:
        return None
    return number if 0 <= number <= MAX_BIGINT else None


def _decimal(value: Any) -> Decimal | None:
    """A finite non-negative decimal from an int or a decimal string, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    elif isinstance(value, str) and len(value) <= 40:
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None  # floats are never money; bools and lists are no numbers
    return number if number.is_finite() and number >= 0 else None


def _count(what: str, name: str, value: Any) -> int:
    """Meta's counts are strings ("12"); modelled ones may carry decimals ("12.0")."""
    if value is None or value == "":
        return 0
    number = _decimal(value)
    if number is None or number >= MAX_COUNT:
        raise InvalidAnswerError(what, name, value, 'a non-negative count below 10^15, e.g. "12"')
    return int(number.to_integral_value(rounding=ROUND_HALF_EVEN))


def _micros(what: str, name: str, value: Any) -> int:
    """Money in major units (a decimal string) → micros."""
    if value is None or value == "":
        return 0
    number = _decimal(value)
    if number is None or number >= MAX_MONEY_MAJOR:
        raise InvalidAnswerError(
            what,
            name,
            value,
            'a non-negative amount in major units below 10^12, e.g. "12.34"',
        )
    return int((number * MICROS_PER_UNIT).to_integral_value(rounding=ROUND_HALF_EVEN))


def _date(what: str, name: str, value: Any, since: date | None, until: date | None) -> date:
    try:
        day = date.fromisoformat(value) if _ISO_DATE.fullmatch(value) else None
    except (TypeError, ValueError):
        day = None
    if day is None:
        raise InvalidAnswerError(what, name, value, "an ISO date, e.g. 2026-11-20")
    if (since is not None and day < since) or (until is not None and day > until):
        raise InvalidAnswerError(what, name, value, f"a day of the range asked, {since} … {until}")
    return day


def _time(what: str, name: str, value: Any) -> datetime | None:
    try:
        return parse_meta_time(value)
    except (TypeError, ValueError):
        raise InvalidAnswerError(
            what, name, value, "a time like 2026-10-01T12:00:00-0700"
        ) from None


def _spec(what: str, value: Any) -> dict[str, Any] | None:
    """A targeting spec: a JSON object (kept as Meta sent it; its keys are Meta's)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidAnswerError(what, "targeting", value, "a targeting spec (a JSON object)")
    return dict(value)


def _schedule(what: str, value: Any) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(b, Mapping) for b in value):
        raise InvalidAnswerError(
            what, "adset_schedule", value,
            "a list of {start_minute, end_minute, days, timezone_type}",
        )  # fmt: skip
    return [dict(block) for block in value]


def _words(what: str, name: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidAnswerError(what, name, value, 'a list of words, e.g. ["standard"]')
    return tuple(value)


def _segment(what: str, name: str, value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidAnswerError(what, name, value, "the breakdown's value as text")
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"
