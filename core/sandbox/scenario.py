"""Scenario files: a sandbox world written down exactly, to reproduce a situation.

A scenario replaces the generated world entirely. JSON (see docs/sandbox.md):

    {"accounts": [{"id": "act_2001", "name": "…", "currency": "USD",
                   "timezone": "America/Los_Angeles",
      "campaigns": [{"id": "3001", "name": "A", "status": "ACTIVE", "daily_budget": 20000,
        "adsets": [{"id": "4001", "name": "A · 1", "ads": [{"id": "5001", "name": "A · 1 · a",
          "days": [{"days_ago": [1, 7], "spend": "11.16", "revenue": "46.87",
                    "purchases": 1, "impressions": 1000, "clicks": 20, "reach": 800}]}]}]}]}]}

Budgets are integers in the currency's minor unit (as Meta sends them); a day's `spend`
and `revenue` are major units (as insights report them). An ad set may carry Meta's
`targeting` spec and a `market` — `{"roas", "capacity", "plants": [...]}` — whose days
then come from the response model (docs/sandbox.md) instead of listed days; a plant
states a segment's latent performance: `{"dimension": "demographic", "match": {"age":
"25-34", "gender": "female"}, "cvr": 3}`. A day is `"date": "2026-11-19"`
or `"days_ago": N` / `[from, to]` relative to the sandbox's today in the account's time
zone (each day of a range gets the same numbers).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from datetime import date as LocalDate  # `date` is also a field name below
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.errors import InputError
from core.money import MoneyError, to_minor
from core.sandbox.targeting import TargetingRefused, check_spec
from core.sandbox.world import (
    HISTORY_DAYS,
    PLANT_FIELDS,
    PLANT_PARTS,
    Account,
    Clock,
    Day,
    Entity,
    ProfileSpec,
    World,
    plant_matches,
    segment_keys,
)

# Currencies an ad account can be billed in (Meta's list of supported currencies).
META_CURRENCIES = frozenset((
    "AED", "ARS", "AUD", "BDT", "BGN", "BOB", "BRL", "CAD", "CHF", "CLP", "CNY", "COP",
    "CRC", "CZK", "DKK", "DZD", "EGP", "EUR", "GBP", "GTQ", "HKD", "HNL", "HUF", "IDR",
    "ILS", "INR", "ISK", "JPY", "KES", "KRW", "LKR", "MAD", "MOP", "MXN", "MYR", "NGN",
    "NIO", "NOK", "NZD", "PEN", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "SAR",
    "SEK", "SGD", "THB", "TRY", "TWD", "UAH", "USD", "UYU", "VES", "VND", "ZAR",
))  # fmt: skip


class ScenarioError(InputError):
    """A scenario file that does not load; names the field and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Status = Literal["ACTIVE", "PAUSED", "ARCHIVED", "DELETED"]


class DaySpec(_Strict):
    date: LocalDate | None = None
    days_ago: int | tuple[int, int] | None = None
    spend: Decimal = Field(default=Decimal(0), ge=0)
    revenue: Decimal = Field(default=Decimal(0), ge=0)
    purchases: int = Field(default=0, ge=0)
    impressions: int = Field(default=0, ge=0)
    clicks: int = Field(default=0, ge=0)
    reach: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _one_date(self) -> DaySpec:
        if (self.date is None) == (self.days_ago is None):
            raise ValueError("give either date (YYYY-MM-DD) or days_ago (N or [from, to])")
        return self


class AdSpec(_Strict):
    id: str
    name: str
    status: Status = "ACTIVE"
    days: list[DaySpec] = Field(default_factory=list)


Dimension = Literal["demographic", "placement", "country", "region", "dma", "hour"]


class PlantSpec(_Strict):
    """A planted pattern: segments of one dimension that are truly better or worse.
    `match` names them by their parts — demographic: age, gender; placement: platform,
    position, device; country; region; dma; hour (0–23) — each a value or a list."""

    dimension: Dimension
    match: dict[str, str | int | list[str | int]] = Field(
        json_schema_extra={"examples": [{"age": "25-34", "gender": "female"},
                                        {"platform": "audience_network"}, {"hour": [1, 2, 3]}]}
    )  # fmt: skip
    share: float | None = Field(
        default=None, gt=0, lt=1, description="the matched segments' part of the delivery"
    )
    cpm: float | None = Field(default=None, gt=0, description="× the CPM")
    ctr: float | None = Field(default=None, gt=0, description="× the CTR")
    cvr: float | None = Field(default=None, gt=0, description="× the conversion rate")
    aov: float | None = Field(default=None, gt=0, description="× the order value")
    cpc: float | None = Field(default=None, gt=0, description="× the cost per click")
    roas: float | None = Field(
        default=None, ge=0, description="the ROAS the matched segments make (at low spend)"
    )

    @field_validator("match")
    @classmethod
    def _parts(cls, match: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        dimension = info.data.get("dimension")
        if dimension is None:
            return match
        allowed = PLANT_PARTS[dimension]
        unknown = sorted(set(match) - set(allowed))
        if unknown or not match:
            raise ValueError(
                f"{dimension} segments are matched by {', '.join(allowed)}"
                + (f", not {', '.join(unknown)}" if unknown else "")
            )
        return match

    @model_validator(mode="after")
    def _effect(self) -> PlantSpec:
        if all(getattr(self, f) is None for f in PLANT_FIELDS):
            raise ValueError(f"say what is different: give one of {', '.join(PLANT_FIELDS)}")
        return self


class MarketSpec(_Strict):
    """How the market treats an ad set: its days come from the response model (see
    docs/sandbox.md) instead of listed days."""

    roas: float = Field(gt=0, description="the ROAS it makes at a low spend")
    capacity: Decimal = Field(
        gt=0, description="the daily spend (major units) its whole audience takes"
    )
    plants: list[PlantSpec] = Field(default_factory=list)
    variation: float = Field(
        default=1.0,
        ge=0,
        le=3,
        description="× the segments' own latent variation (conversion rate ±30 %, CPM and "
        "CTR ±15 %, order value ±10 %); 0: no differences but the plants and Meta's own "
        "placements and hours",
    )
    meta_rates: bool = Field(
        default=True,
        description="whether Meta's own placements and hours differ as they do (Audience "
        "Network cheap and converting poorly, stories clicking less, night hours cheap); "
        "false: every placement and hour alike but for the plants and the variation — an "
        "ad set with nothing at all to find",
    )


class AdSetSpec(_Strict):
    id: str
    name: str
    status: Status = "ACTIVE"
    daily_budget: int | None = Field(default=None, gt=0)
    lifetime_budget: int | None = Field(default=None, gt=0)
    targeting: dict[str, Any] | None = Field(
        default=None, description="Meta's targeting spec (docs/sandbox.md)"
    )
    market: MarketSpec | None = None
    ads: list[AdSpec] = Field(default_factory=list)


class CampaignSpec(_Strict):
    id: str
    name: str
    status: Status = "ACTIVE"
    objective: str = "OUTCOME_SALES"
    special_ad_categories: list[
        Literal["HOUSING", "EMPLOYMENT", "CREDIT", "FINANCIAL_PRODUCTS_SERVICES",
                "ISSUES_ELECTIONS_POLITICS", "ONLINE_GAMBLING_AND_GAMING"]
    ] = Field(default_factory=list, description="Meta's special ad categories: housing, "
              "employment and credit restrict ages to 18–65 and genders to all")  # fmt: skip
    daily_budget: int | None = Field(default=None, gt=0)
    lifetime_budget: int | None = Field(default=None, gt=0)
    adsets: list[AdSetSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _budget_in_one_place(self) -> CampaignSpec:
        cbo = self.daily_budget is not None or self.lifetime_budget is not None
        if cbo and any(a.daily_budget or a.lifetime_budget for a in self.adsets):
            raise ValueError(
                "a budget lives on the campaign or on its ad sets, never both; "
                "remove the ad sets' budgets or the campaign's"
            )
        return self


class AccountSpec(_Strict):
    id: str = Field(pattern=r"^act_\d+$")
    name: str
    currency: str = Field(
        min_length=3, max_length=3, json_schema_extra={"examples": ["USD", "EUR", "JPY"]}
    )
    timezone: str = Field(json_schema_extra={"examples": ["America/Los_Angeles", "Asia/Tokyo"]})

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        code = value.upper()
        if code not in META_CURRENCIES:
            raise ValueError(
                f"unknown currency {value!r}; use an ISO 4217 code Meta bills in, e.g. USD, "
                "EUR, GBP, JPY"
            )
        return code

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as America/Los_Angeles"
            ) from None
        return value

    account_status: int = 1
    min_daily_budget: int = Field(default=100, gt=0)
    campaigns: list[CampaignSpec] = Field(default_factory=list)


class ScenarioSpec(_Strict):
    description: str = ""
    accounts: list[AccountSpec] = Field(min_length=1)


def load_scenario(source: str | Path | dict[str, Any]) -> ScenarioSpec:
    if isinstance(source, dict):
        data: Any = source
    else:
        path = Path(source)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ScenarioError("scenario", f"{path} does not exist") from None
        except ValueError as error:
            raise ScenarioError("scenario", f"{path} is not valid JSON ({error})") from None
    try:
        spec = ScenarioSpec.model_validate(data)
    except ValidationError as error:
        item = error.errors(include_url=False)[0]
        raise ScenarioError(_path(item["loc"]), item["msg"].removeprefix("Value error, ")) from None
    _check_references(spec)
    _check_amounts(spec)
    return spec


def scenario_json_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file (written to docs/scenario.schema.json)."""
    schema = ScenarioSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Rex sandbox scenario"
    return schema


def build_world(spec: ScenarioSpec, seed: int, clock: Clock) -> World:
    world = World(seed, clock)
    world.scripted = True
    now = clock()
    made = now - timedelta(days=HISTORY_DAYS + 30)  # objects exist before their history
    for a_index, acc in enumerate(spec.accounts):
        account = Account(
            acc.id,
            acc.name,
            acc.currency.upper(),
            acc.timezone,
            acc.account_status,
            acc.min_daily_budget,
        )
        world.accounts[account.id] = account
        today = account.today(now)
        for c_index, c in enumerate(acc.campaigns):
            world.entities[c.id] = Entity(
                id=c.id,
                level="campaign",
                account_id=acc.id,
                name=c.name,
                status=c.status,
                created_time=made,
                updated_time=made,
                objective=c.objective,
                special_ad_categories=list(c.special_ad_categories),
                daily_budget=c.daily_budget,
                lifetime_budget=c.lifetime_budget,
            )
            for s_index, s in enumerate(c.adsets):
                where = f"accounts[{a_index}].campaigns[{c_index}].adsets[{s_index}]"
                world.entities[s.id] = Entity(
                    id=s.id,
                    level="adset",
                    account_id=acc.id,
                    name=s.name,
                    status=s.status,
                    created_time=made,
                    updated_time=made,
                    campaign_id=c.id,
                    daily_budget=s.daily_budget,
                    lifetime_budget=s.lifetime_budget,
                    targeting=_targeting(s.targeting, f"{where}.targeting"),
                )
                if s.market is not None:
                    world.profile_specs[s.id] = _profile(s.market, account, f"{where}.market")
                for d_index, ad in enumerate(s.ads):
                    world.entities[ad.id] = Entity(
                        id=ad.id,
                        level="ad",
                        account_id=acc.id,
                        name=ad.name,
                        status=ad.status,
                        created_time=made,
                        updated_time=made,
                        campaign_id=c.id,
                        adset_id=s.id,
                    )
                    for day_index, day in enumerate(ad.days):
                        field = f"{where}.ads[{d_index}].days[{day_index}]"
                        numbers = _day(day, account.currency, field)
                        for local in _dates(day, today):
                            world.fixed_days[(ad.id, local)] = numbers
    return world


def _targeting(spec: dict[str, Any] | None, field: str) -> dict[str, Any] | None:
    if spec is None:
        return None
    try:
        return check_spec(spec)
    except TargetingRefused as refused:
        blame = refused.blame.removeprefix("targeting")
        raise ScenarioError(field + blame, str(refused).removeprefix("(#100) ")) from None


def _profile(spec: MarketSpec, account: Account, field: str) -> ProfileSpec:
    """The market's profile of an ad set; a plant that matches no segment of the account
    is refused naming it."""
    keys = segment_keys(account)
    for index, plant in enumerate(spec.plants):
        if not any(plant_matches(plant.dimension, k, plant.match) for k in keys[plant.dimension]):
            shown = ", ".join("/".join(k) for k in keys[plant.dimension][:8])
            raise ScenarioError(
                f"{field}.plants[{index}].match",
                f"matches no {plant.dimension} segment of {account.id}; its segments are {shown} …",
            )
    return ProfileSpec(
        roas=spec.roas,
        capacity=spec.capacity,
        plants=[p.model_dump(exclude_none=True) for p in spec.plants],
        variation=spec.variation,
        meta_rates=spec.meta_rates,
    )


def _day(spec: DaySpec, currency: str, field: str) -> Day:
    try:
        spend = to_minor(spec.spend, currency)
        revenue = to_minor(spec.revenue, currency)
    except MoneyError as error:
        raise ScenarioError(field, str(error)) from None
    return Day(spend, spec.impressions, spec.clicks, spec.reach, spec.purchases, revenue)


def _dates(spec: DaySpec, today: date) -> list[date]:
    if spec.date is not None:
        return [spec.date]
    ago = spec.days_ago
    if isinstance(ago, int):
        first = last = ago
    else:
        first, last = max(ago or (0, 0)), min(ago or (0, 0))
    return [today - timedelta(days=n) for n in range(last, first + 1)]


def _check_amounts(spec: ScenarioSpec) -> None:
    """Every day's money must fit its account's currency (no cents for JPY)."""
    for a_index, account in enumerate(spec.accounts):
        for c_index, c in enumerate(account.campaigns):
            for s_index, s in enumerate(c.adsets):
                for d_index, ad in enumerate(s.ads):
                    for day_index, day in enumerate(ad.days):
                        where = (
                            f"accounts[{a_index}].campaigns[{c_index}].adsets[{s_index}]"
                            f".ads[{d_index}].days[{day_index}]"
                        )
                        _day(day, account.currency, where)


def _check_references(spec: ScenarioSpec) -> None:
    seen: dict[str, str] = {}
    for a_index, account in enumerate(spec.accounts):
        for c_index, c in enumerate(account.campaigns):
            objects = [(f"accounts[{a_index}].campaigns[{c_index}]", c.id)]
            for s_index, s in enumerate(c.adsets):
                base = f"accounts[{a_index}].campaigns[{c_index}].adsets[{s_index}]"
                objects.append((base, s.id))
                objects += [(f"{base}.ads[{i}]", ad.id) for i, ad in enumerate(s.ads)]
            for where, object_id in objects:
                if object_id in seen:
                    used = f"{object_id} is already used by {seen[object_id]}; ids are unique"
                    raise ScenarioError(f"{where}.id", used)
                seen[object_id] = where


def _path(loc: tuple[Any, ...]) -> str:
    text = ""
    for piece in loc:
        text += f"[{piece}]" if isinstance(piece, int) else (f".{piece}" if text else str(piece))
    return text or "scenario"
