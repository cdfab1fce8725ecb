"""The sandbox's world: ad accounts, campaigns, ad sets, ads and their daily numbers.

Generated deterministically from a seed (or loaded from a scenario file, see
scenario.py). Numbers come from the market model (market.py): each ad set has a latent
profile (`profile_specs`, the segments drawn from the seed), and a day's numbers follow
from the state the ad set was in *during that day* — its budget (or its share of the
campaign's), whether it and its parents and ads were active, whether it was learning —
read from the timeline of changes (`changes`: every status and budget change with its
instant). A change therefore shows in the numbers from the moment it was made, and a
day already past never changes (changes are only ever added at "now"), except that the
last few days' purchases still grow a little as late conversions are attributed, as
Meta's do. Every ad's numbers for a day come from `random.Random(f"{seed}:{ad}:{day}")`
— one ad's numbers never depend on which others exist or on the order of requests.
Breakdown rows split a day's totals in the proportions the profile gives each segment
(a multinomial draw per column), so they always sum to the day exactly.

The clock moves forward on request (`advance`): the days that pass are generated from
the state as it is then.

`World.to_state()` / `World.from_state()` write and read what writes changed — accounts,
entities (copies included), profiles, the timeline, overrides, the write log, the change
history, recent budget changes, the clock's advance and the id counter — as plain JSON,
so a sandbox can keep its state in a file across restarts (server.py). Generated
numbers are not stored: they follow from the seed, the profiles and the timeline. The
request log and async report runs are not kept.
"""

from __future__ import annotations

import itertools
import math
import random
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from core.money import offset
from core.sandbox import market, targeting

HISTORY_DAYS = 90  # days of insights a generated world has, today included
LIFETIME_DAYS = 30  # a lifetime budget is spent over this many days
Clock = Callable[[], datetime]

# ----------------------------------------------------------------------- objects


@dataclass
class Account:
    id: str  # "act_…"
    name: str
    currency: str
    timezone_name: str
    account_status: int = 1
    min_daily_budget: int = 100  # minor units
    cpm: Decimal = Decimal("10")  # major units per 1000 impressions (generation only)
    order_value: Decimal = Decimal("60")  # major units per purchase (generation only)

    @property
    def numeric_id(self) -> str:
        return self.id.removeprefix("act_")

    def today(self, now: datetime) -> date:
        return now.astimezone(ZoneInfo(self.timezone_name)).date()


@dataclass
class Entity:
    id: str
    level: str  # campaign | adset | ad
    account_id: str
    name: str
    status: str  # ACTIVE | PAUSED | ARCHIVED | DELETED
    created_time: datetime
    updated_time: datetime
    campaign_id: str | None = None
    adset_id: str | None = None
    daily_budget: int | None = None  # minor units
    lifetime_budget: int | None = None
    bid_amount: int | None = None
    objective: str | None = None
    special_ad_categories: list[str] = field(default_factory=list)  # campaigns
    source_id: str | None = None  # a copy: what it was copied from (its profile's owner)
    targeting: dict[str, Any] | None = None  # ad sets: Meta's targeting spec
    adset_schedule: list[dict[str, Any]] | None = None  # ad sets: dayparting blocks
    end_time: datetime | None = None  # ad sets

    @property
    def parent_id(self) -> str | None:
        return {"campaign": None, "adset": self.campaign_id, "ad": self.adset_id}[self.level]


Day = market.Counts  # one ad's numbers for one account-local day; money in minor units

ZERO = market.ZERO_COUNTS


# The generated world's latent variation between segments (× the believable audience's:
# conversion rate ±15 %, CPM and CTR ±7.5 %): real differences, small beside the plants.
DEFAULT_VARIATION = 0.5


@dataclass
class ProfileSpec:
    """What the market model needs of an ad set besides the seed: the ROAS it makes at a
    low spend on its whole audience, its audience's capacity (major units a day), and
    planted patterns — segments that are truly better or worse (`PLANT_FIELDS`)."""

    roas: float
    capacity: Decimal
    plants: list[dict[str, Any]] = field(default_factory=list)
    variation: float = 1.0  # × the segments' own latent variation (0: none but the plants)
    meta_rates: bool = True  # Meta's own placements and hours differ (False: all alike)


# A planted pattern: {"dimension", "match": {part: value or [values]}, and any of
# "share" (the matched segments' part of delivery, 0–1), "cpm", "ctr", "cvr", "aov",
# "cpc" (multipliers; cpc = cpm at the same CTR), "roas" (the ROAS the matched segments
# make, as a multiple of the ad set's conversion rate)}.
PLANT_PARTS = {  # the parts of each dimension's segment key a plant can match on
    "demographic": ("age", "gender"),
    "placement": ("platform", "position", "device"),
    "country": ("country",),
    "region": ("region",),
    "dma": ("dma",),
    "hour": ("hour",),
}
PLANT_FIELDS = ("share", "cpm", "ctr", "cvr", "aov", "cpc", "roas")


@dataclass(frozen=True)
class Change:
    """One change of an entity's state on the timeline: at `at`, `field` went from `old`
    to `new` (status, daily_budget, lifetime_budget)."""

    at: datetime
    entity_id: str
    field: str
    old: Any
    new: Any


STATE_FIELDS = (
    "status",
    "daily_budget",
    "lifetime_budget",
    "targeting",
    "adset_schedule",
    "end_time",
)
EDITS = ("targeting", "adset_schedule")  # significant edits whatever they change
# Share of a day's purchases not yet attributed when the day is this many days old.
LATE_CONVERSIONS = (0.15, 0.08, 0.04, 0.02, 0.01, 0.01, 0.005)


# --------------------------------------------------------------------- segments

AGES = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
GENDERS = ("female", "male", "unknown")
PLACEMENTS = (
    ("facebook", "feed", "android_smartphone"),
    ("facebook", "feed", "iphone"),
    ("facebook", "feed", "desktop"),
    ("facebook", "marketplace", "android_smartphone"),
    ("facebook", "facebook_reels", "iphone"),
    ("instagram", "feed", "iphone"),
    ("instagram", "instagram_stories", "iphone"),
    ("instagram", "instagram_reels", "android_smartphone"),
    ("audience_network", "classic", "android_smartphone"),
    ("messenger", "messenger_inbox", "iphone"),
)
GEOGRAPHY = {
    "USD": {
        "country": ("US", "CA", "GB", "AU"),
        "region": ("California", "Texas", "New York", "Florida", "Illinois", "Ontario",
                   "England", "New South Wales"),
        "dma": ("Los Angeles", "New York", "Chicago", "Dallas-Ft. Worth",
                "San Francisco-Oak-San Jose", "Houston", "Unknown"),
    },
    "JPY": {
        "country": ("JP", "TW", "KR", "US"),
        "region": ("Tokyo", "Osaka", "Kanagawa", "Aichi", "Fukuoka", "Hokkaido", "Taipei City",
                   "Seoul"),
        "dma": ("Unknown",),
    },
}  # fmt: skip
HOURLY = "hourly_stats_aggregated_by_advertiser_time_zone"
HOURS = tuple(f"{h:02d}:00:00 - {h:02d}:59:59" for h in range(24))
# People buy in the evening: an hour-of-day weight curve (local time).
HOUR_WEIGHTS = (2, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 7, 8, 7, 6, 6, 7, 8, 10, 12, 13, 11, 8, 4)

BREAKDOWN_VALUES: dict[str, Callable[[Account], tuple[str, ...]]] = {
    "age": lambda _a: AGES,
    "gender": lambda _a: GENDERS,
    "publisher_platform": lambda _a: tuple(sorted({p[0] for p in PLACEMENTS})),
    "country": lambda a: GEOGRAPHY.get(a.currency, GEOGRAPHY["USD"])["country"],
    "region": lambda a: GEOGRAPHY.get(a.currency, GEOGRAPHY["USD"])["region"],
    "dma": lambda a: GEOGRAPHY.get(a.currency, GEOGRAPHY["USD"])["dma"],
    HOURLY: lambda _a: HOURS,
}
SUPPORTED_BREAKDOWNS = (
    ("age",),
    ("gender",),
    ("age", "gender"),
    ("country",),
    ("region",),
    ("dma",),
    ("publisher_platform",),
    ("publisher_platform", "platform_position"),
    ("publisher_platform", "impression_device"),
    ("publisher_platform", "platform_position", "impression_device"),
    (HOURLY,),
)


def segments(account: Account, breakdowns: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every value combination Meta would report for these breakdowns."""
    if breakdowns and breakdowns[0] == "publisher_platform" and len(breakdowns) > 1:
        index = {"publisher_platform": 0, "platform_position": 1, "impression_device": 2}
        combos = {tuple(p[index[b]] for b in breakdowns) for p in PLACEMENTS}
        return sorted(combos)
    return list(itertools.product(*(BREAKDOWN_VALUES[b](account) for b in breakdowns)))


def _dimension_of(breakdowns: tuple[str, ...]) -> tuple[str, tuple[int, ...]]:
    """The market dimension a breakdown reads, and which parts of its keys it reports."""
    if breakdowns and breakdowns[0] in ("age", "gender"):
        return "demographic", tuple(("age", "gender").index(b) for b in breakdowns)
    if breakdowns and breakdowns[0] == "publisher_platform":
        index = {"publisher_platform": 0, "platform_position": 1, "impression_device": 2}
        return "placement", tuple(index[b] for b in breakdowns)
    if breakdowns == (HOURLY,):
        return "hour", (0,)
    return breakdowns[0], (0,)  # country, region, dma


def segment_keys(account: Account) -> dict[str, list[tuple[str, ...]]]:
    """Every dimension's segments for an account, in a fixed order."""
    geography = GEOGRAPHY.get(account.currency, GEOGRAPHY["USD"])
    return {
        "demographic": [(a, g) for a in AGES for g in GENDERS],
        "placement": list(PLACEMENTS),
        "country": [(c,) for c in geography["country"]],
        "region": [(r,) for r in geography["region"]],
        "dma": [(d,) for d in geography["dma"]],
        "hour": [(h,) for h in HOURS],
    }


# A believable audience: who is reached how much, before a profile's own variation.
_AGE_SHARES = (0.14, 0.28, 0.24, 0.16, 0.11, 0.07)
_GENDER_SHARES = (0.54, 0.43, 0.03)
_PLACEMENT_SHARES = (0.20, 0.18, 0.06, 0.06, 0.08, 0.15, 0.10, 0.08, 0.06, 0.03)
# Meta's own placements differ: Audience Network is cheap and converts poorly, desktop
# orders are larger, stories click less.
_PLACEMENT_RATES: dict[tuple[str, ...], tuple[float, float, float, float]] = {
    ("facebook", "feed", "desktop"): (1.3, 1.0, 1.1, 1.25),
    ("instagram", "instagram_stories", "iphone"): (0.9, 0.7, 0.9, 1.0),
    ("audience_network", "classic", "android_smartphone"): (0.45, 1.4, 0.3, 0.8),
    ("messenger", "messenger_inbox", "iphone"): (0.8, 0.8, 0.7, 1.0),
}
_HOUR_RATES = {h: (0.8, 0.9, 0.8, 1.0) for h in range(0, 6)}  # night: cheap, converts less


def build_profile(seed: int, adset_id: str, spec: ProfileSpec, account: Account) -> market.Profile:
    """An ad set's latent profile: the spec's ROAS and capacity, the account's typical
    CPM and order value, and segments drawn from the seed around a believable audience
    (log-normal variation: conversion rate ±30 %, CPM and CTR ±15 %, order value ±10 %;
    hours a quarter of that), then the spec's plants."""
    rng = random.Random(f"{seed}:{adset_id}:profile")

    def wobble(sigma: float) -> float:
        return math.exp(rng.gauss(0.0, sigma))

    keys = segment_keys(account)
    shares: dict[str, list[float]] = {
        "demographic": [a * g for a in _AGE_SHARES for g in _GENDER_SHARES],
        "placement": list(_PLACEMENT_SHARES),
        "country": [
            0.8 if i == 0 else 0.2 / max(1, len(keys["country"]) - 1)
            for i in range(len(keys["country"]))
        ],  # fmt: skip
        "region": [rng.uniform(0.3, 1.0) for _ in keys["region"]],
        "dma": [rng.uniform(0.3, 1.0) for _ in keys["dma"]],
        "hour": [float(w) for w in HOUR_WEIGHTS],
    }
    segments: dict[str, dict[tuple[str, ...], market.Segment]] = {}
    for dimension, dimension_keys in keys.items():
        made = {}
        for key, share in zip(dimension_keys, shares[dimension], strict=True):
            cpm, ctr, cvr, aov = _PLACEMENT_RATES.get(key, (1.0, 1.0, 1.0, 1.0))
            if dimension == "hour":
                cpm, ctr, cvr, aov = _HOUR_RATES.get(HOURS.index(key[0]), (1.0, 1.0, 1.0, 1.0))
            if not spec.meta_rates:
                cpm, ctr, cvr, aov = 1.0, 1.0, 1.0, 1.0
            # hours differ smoothly (people's days), not each on its own: a quarter of
            # the variation the other dimensions' segments have
            vary = spec.variation * (0.25 if dimension == "hour" else 1.0)
            made[key] = market.Segment(
                share=share * wobble(0.15),
                cpm=cpm * wobble(0.15 * vary),
                ctr=ctr * wobble(0.15 * vary),
                cvr=cvr * wobble(0.3 * vary),
                aov=aov * wobble(0.1 * vary),
            )
        segments[dimension] = made
    for plant in spec.plants:
        segments[plant["dimension"]] = _planted(segments[plant["dimension"]], plant, spec.roas)
    cpm = float(account.cpm) * wobble(0.1)
    ctr = 0.015 * wobble(0.15)
    aov = float(account.order_value) * wobble(0.1)
    # the spec's ROAS at a low spend: revenue per spend = 1000 / CPM · CTR · CVR · AOV
    cvr = spec.roas * cpm / (1000 * ctr * aov)
    return market.Profile(
        capacity=float(spec.capacity), cpm=cpm, ctr=ctr, cvr=cvr, aov=aov, segments=segments
    ).normalised()


def plant_matches(dimension: str, key: tuple[str, ...], match: dict[str, Any]) -> bool:
    """Whether a segment key is one a plant's `match` names (hours by their number)."""
    parts: dict[str, str | int] = dict(zip(PLANT_PARTS[dimension], key, strict=True))
    if dimension == "hour":
        parts = {"hour": HOURS.index(key[0])}
    for part, wanted in match.items():
        values = wanted if isinstance(wanted, list) else [wanted]
        if parts.get(part) not in values:
            return False
    return True


def _planted(
    segments: dict[tuple[str, ...], market.Segment], plant: dict[str, Any], roas: float
) -> dict[tuple[str, ...], market.Segment]:
    """The segments with a plant applied. Its multipliers are relative to *the rest of the
    ad set* (the segments it does not match, as they deliver together): "cvr": 3 makes
    the matched segments convert at exactly 3× the rest's rate, replacing their own
    variation; "roas" makes their revenue per spend that ROAS's multiple of the ad set's
    (exact against the rest); "share" sets their part of the delivery (the others make
    up the rest, in their proportions)."""
    dimension = plant["dimension"]
    matched = {k for k in segments if plant_matches(dimension, k, plant.get("match", {}))}
    if not matched or len(matched) == len(segments):
        return dict(segments)
    rest = market.mix(segments, {k: s.share for k, s in segments.items() if k not in matched})
    result = dict(segments)
    for key in matched:
        s = result[key]
        ctr = rest.ctr * plant["ctr"] if "ctr" in plant else s.ctr
        cpm = rest.cpm * plant["cpm"] if "cpm" in plant else s.cpm
        if "cpc" in plant:  # cost per click = CPM / CTR: that multiple of the rest's
            cpm = plant["cpc"] * (rest.cpm / rest.ctr) * ctr
        cvr = rest.cvr * plant["cvr"] if "cvr" in plant else s.cvr
        aov = rest.aov * plant["aov"] if "aov" in plant else s.aov
        if "roas" in plant:  # revenue per spend = roas / the ad set's × the rest's
            rest_rps = rest.ctr * rest.cvr * rest.aov / rest.cpm
            cvr = plant["roas"] / roas * rest_rps * cpm / (ctr * aov)
        result[key] = replace(s, cpm=cpm, ctr=ctr, cvr=cvr, aov=aov)
    share = plant.get("share")
    if share is not None:
        inside = sum(result[k].share for k in matched)
        outside = sum(s.share for k, s in result.items() if k not in matched)
        for key, s in result.items():
            scale = share / inside if key in matched else (1 - share) / outside
            result[key] = replace(s, share=s.share * scale)
    return result


def ad_weight(seed: int, ad_id: str) -> float:
    """An ad's pull inside its ad set (its share of the ad set's delivery among the ads
    delivering)."""
    return random.Random(f"{seed}:{ad_id}:weight").uniform(0.5, 1.5)


# ------------------------------------------------------------------------ world


@dataclass
class WriteRecord:
    """One accepted write. Read as attributes (`w.params`) or as a dict (`w["params"]`)."""

    at: datetime
    method: str
    path: str
    object_id: str
    params: dict[str, str]
    result: dict
    changed: bool = True  # False: an update that set what the object already had

    def __getitem__(self, key: str) -> Any:
        return self.as_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.as_dict().get(key, default)

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "method": self.method,
            "path": self.path,
            "object_id": self.object_id,
            "params": dict(self.params),
            "result": dict(self.result),
            "changed": self.changed,
        }


# Who changes things: Rex's calls come from the sandbox app the token belongs to; an edit
# through the admin endpoint `POST /__sandbox/edit` is a person in Ads Manager.
SANDBOX_APP = ("1950000000000001", "Rex Sandbox App")
ADS_MANAGER_APP = ("119211728144504", "Ads Manager")
API_ACTOR = ("1960000000000001", "Sandbox System User")
PERSON_ACTOR = ("1970000000000001", "Sandbox Person")

# Meta's change-history event types per (level, what changed); inside Meta's activity log
# `campaign` means an ad set and `campaign_group` a campaign.
ACTIVITY_EVENTS = {
    ("campaign", "status"): "update_campaign_run_status",
    ("adset", "status"): "update_ad_set_run_status",
    ("ad", "status"): "update_ad_run_status",
    ("campaign", "budget"): "update_campaign_budget",
    ("adset", "budget"): "update_ad_set_budget",
    ("campaign", "name"): "update_campaign_name",
    ("adset", "name"): "update_ad_set_name",
    ("ad", "name"): "update_ad_name",
    ("adset", "targeting"): "update_ad_set_target_spec",
    ("adset", "adset_schedule"): "update_ad_set_ad_schedule",
    ("adset", "end_time"): "update_ad_set_duration",
    ("campaign", "create"): "create_campaign_group",
    ("adset", "create"): "create_ad_set",
    ("ad", "create"): "create_ad",
}


@dataclass(frozen=True)
class Activity:
    """One entry of an account's change history (`GET /act_…/activities`)."""

    event_time: datetime
    event_type: str
    object_id: str
    object_name: str
    object_type: str
    account_id: str
    application: tuple[str, str]
    actor: tuple[str, str]
    extra_data: dict[str, Any]


class World:
    """The sandbox's state. Thread-safe: the HTTP server serves requests in threads."""

    def __init__(self, seed: int, clock: Clock) -> None:
        self.seed = seed
        self._wall = clock
        self.advanced = timedelta(0)  # how far `advance` moved the clock ahead of the wall
        self.lock = threading.RLock()
        self.accounts: dict[str, Account] = {}
        self.entities: dict[str, Entity] = {}
        self.fixed_days: dict[tuple[str, date], Day] = {}  # scenario or admin overrides
        self.scripted = False  # True: only fixed_days exist (scenario worlds)
        self.budget_changes: dict[str, list[datetime]] = {}
        self.reports: dict[str, dict] = {}
        self.reports_running = 0  # async report runs started and not yet ended
        self.reports_peak = 0  # the most that were running at once
        self.write_log: list[WriteRecord] = []
        self.activities: list[Activity] = []
        self.request_log: list[dict] = []
        self.revision = 0  # counts changes worth keeping (see `touch`)
        self.profile_specs: dict[str, ProfileSpec] = {}  # ad set id → its latent profile
        self.changes: list[Change] = []  # the timeline, in order
        self._changes_of: dict[str, list[Change]] = {}
        self._profiles: dict[str, market.Profile] = {}
        # an ad's day, and its split by breakdown, with what they were computed for
        self._cache: dict[tuple[str, date], tuple[datetime | date, Day]] = {}
        self._segment_cache: dict[tuple[str, date, tuple[str, ...]], tuple[Any, Any]] = {}
        self._last_id = 0

    # the clock ------------------------------------------------------------------

    def clock(self) -> datetime:
        """The sandbox's now: the wall clock, moved ahead by `advance`."""
        return self._wall() + self.advanced

    def advance(self, days: int) -> None:
        """Move the clock `days` forward: the days that pass are generated from the state
        as it is now (nothing changes during them but what the market does)."""
        if days < 0:
            raise ValueError("the sandbox clock only moves forward: advance_days must be ≥ 0")
        self.advanced += timedelta(days=days)
        self.touch()

    # the timeline ---------------------------------------------------------------

    def record_change(self, entity: Entity, field_name: str, old: Any, new: Any) -> None:
        """Put a change on the timeline at now (call it with the entity already changed)."""
        change = Change(self.clock(), entity.id, field_name, old, new)
        self.changes.append(change)
        self._changes_of.setdefault(entity.id, []).append(change)
        self.touch()

    def seed_change(
        self, entity: Entity, field_name: str, old: Any, new: Any, at: datetime
    ) -> None:
        """Put a change on the timeline at `at` while generating a world (before any
        request: changes stay in order of time)."""
        change = Change(at, entity.id, field_name, old, new)
        self.changes.append(change)
        self._changes_of.setdefault(entity.id, []).append(change)
        self._changes_of[entity.id].sort(key=lambda c: c.at)

    def value_at(self, entity: Entity, field_name: str, instant: datetime) -> Any:
        """What `field_name` of `entity` was at `instant` (a change at exactly `instant`
        counts)."""
        value = getattr(entity, field_name)
        for change in reversed(self._changes_of.get(entity.id, ())):
            if change.at <= instant:
                break
            if change.field == field_name:
                value = change.old
        return value

    def _delivering(self, entity: Entity, instant: datetime) -> bool:
        return (
            entity.created_time <= instant and self.value_at(entity, "status", instant) == "ACTIVE"
        )

    # ids ------------------------------------------------------------------------

    def new_id(self) -> str:
        self._last_id += 1
        return str(120_000_000_000_000 + self._last_id * 7 + self.seed % 7)

    def touch(self) -> None:
        """Note a change that a state file must keep (writes, edits, overrides)."""
        self.revision += 1

    # reading --------------------------------------------------------------------

    def effective_status(self, entity: Entity) -> str:
        if entity.status in ("DELETED", "ARCHIVED"):
            return entity.status
        chain = []
        if entity.campaign_id:
            chain.append(("CAMPAIGN", self.entities.get(entity.campaign_id)))
        if entity.level == "ad" and entity.adset_id:
            chain.append(("ADSET", self.entities.get(entity.adset_id)))
        for label, parent in chain:
            if parent is None:
                continue
            if parent.status in ("DELETED", "ARCHIVED"):
                return parent.status
            if parent.status == "PAUSED":
                return f"{label}_PAUSED"
        return entity.status

    def children(self, entity_or_account: str, level: str) -> list[Entity]:
        """Entities at `level` under an account, campaign or ad set, in id order."""
        owner = self.entities.get(entity_or_account)
        result = []
        for e in self.entities.values():
            if e.level != level:
                continue
            mine = (
                e.account_id == entity_or_account
                if owner is None
                else owner.id in (e.campaign_id, e.adset_id)
            )
            if mine:
                result.append(e)
        return sorted(result, key=lambda e: e.id)

    def account_of(self, object_id: str) -> Account | None:
        if object_id in self.accounts:
            return self.accounts[object_id]
        entity = self.entities.get(object_id)
        return self.accounts.get(entity.account_id) if entity else None

    def day(self, ad: Entity, day: date) -> Day:
        """One ad's numbers for one account-local day, as Meta reports them now."""
        key = (ad.id, day)
        if key in self.fixed_days:
            return self.fixed_days[key]
        if self.scripted and (ad.adset_id or "") not in self.profile_specs:
            return ZERO  # a scenario's ad set without a market: only the days it gives
        account = self.accounts[ad.account_id]
        now = self.clock().replace(second=0, microsecond=0)  # today's numbers move by minute
        today = account.today(now)
        if day > today or ad.level != "ad" or ad.adset_id not in self.entities:
            return ZERO
        stamp = now if day == today else today  # what the day's numbers depend on
        cached = self._cache.get((ad.id, day))
        if cached is None or cached[0] != stamp:
            cached = self._cache[(ad.id, day)] = (stamp, self._generate_day(ad, day, today, now))
        return cached[1]

    def adset_day(self, adset_id: str, day: date) -> Day:
        """An ad set's numbers for a local day: its ads' days summed (what the insights of
        level=adset report)."""
        total = [0] * len(Day.FIELDS)
        for ad in self.children(adset_id, "ad"):
            for i, value in enumerate(self.day(ad, day).as_tuple()):
                total[i] += value
        return Day(*total)

    def segment_days(
        self, ad: Entity, day: date, breakdowns: tuple[str, ...]
    ) -> list[tuple[tuple[str, ...], Day]]:
        """A day's totals split over breakdown segments (parts sum to the totals), in the
        proportions the ad set's profile gives each segment."""
        now = self.clock().replace(second=0, microsecond=0)
        account = self.accounts[ad.account_id]
        today = account.today(now)
        stamp = (now if day == today else today, self.day(ad, day))
        cached = self._segment_cache.get((ad.id, day, breakdowns))
        if cached is None or cached[0] != stamp:
            split = self._split(ad, day, breakdowns)
            cached = self._segment_cache[(ad.id, day, breakdowns)] = (stamp, split)
        return cached[1]

    def _split(
        self, ad: Entity, day: date, breakdowns: tuple[str, ...]
    ) -> list[tuple[tuple[str, ...], Day]]:
        total = self.day(ad, day)
        account = self.accounts[ad.account_id]
        combos = segments(account, breakdowns)
        dimension, projection = _dimension_of(breakdowns)
        adset = self.entities.get(ad.adset_id or "")
        if adset is None:
            return [(combo, ZERO) for combo in combos]
        profile = self.profile(adset)
        weights = self._day_weights(ad, adset, day, dimension)
        rng = random.Random(f"{self.seed}:{ad.id}:{','.join(breakdowns)}:{day}")
        parts = market.split_day(total, weights, rng)
        summed: dict[tuple[str, ...], list[int]] = {}
        for key, part in zip(profile.segments[dimension], parts, strict=True):
            shown = tuple(key[i] for i in projection)
            row = summed.setdefault(shown, [0] * len(Day.FIELDS))
            for i, value in enumerate(part.as_tuple()):
                row[i] += value
        result = []
        for combo in combos:
            row = summed.get(combo, [0] * len(Day.FIELDS))
            if breakdowns == (HOURLY,):
                row[Day.FIELDS.index("reach")] = 0  # Meta reports no reach by hour
            result.append((combo, Day(*row)))
        return result

    def _day_weights(
        self, ad: Entity, adset: Entity, day: date, dimension: str
    ) -> dict[str, list[float]]:
        """Each segment's weight in the ad's day, per column: the parts of the day mixed
        by what each delivered (a targeting change at noon splits the day between both);
        the ad set as it is now where the day delivered nothing (an override)."""
        profile = self.profile(adset)
        mixed: dict[str, list[float]] = {}
        for fraction, state, shares in self._pieces(adset, day, self.clock()):
            share = shares.get(ad.id, 0.0)
            part = market.expected(profile, state).scaled(fraction * share)
            if part.spend <= 0:
                continue
            weights = market.column_weights(profile, state, dimension)
            for column, values in weights.items():
                amount = getattr(part, "impressions" if column == "reach" else column)
                whole = sum(values) or 1.0
                row = mixed.setdefault(column, [0.0] * len(values))
                for i, w in enumerate(values):
                    row[i] += amount * w / whole
        if not mixed:
            now = self.clock()
            account = self.accounts[adset.account_id]
            reached = targeting.included(
                adset.targeting, adset.adset_schedule,
                now.astimezone(ZoneInfo(account.timezone_name)).weekday(), segment_keys(account),
            )  # fmt: skip
            return market.column_weights(profile, market.State(1.0, reached), dimension)
        return mixed

    # the market -----------------------------------------------------------------

    def profile(self, adset: Entity) -> market.Profile:
        """The ad set's latent profile (a copy has its source's)."""
        owner = adset
        while owner.id not in self.profile_specs and owner.source_id in self.entities:
            owner = self.entities[owner.source_id]
        if owner.id not in self._profiles:
            spec = self.profile_specs.get(owner.id) or self._default_spec(owner)
            self._profiles[owner.id] = build_profile(
                self.seed, owner.id, spec, self.accounts[owner.account_id]
            )
        return self._profiles[owner.id]

    def _default_spec(self, adset: Entity) -> ProfileSpec:
        """For an ad set nobody described (a scenario's, an injected one): middling."""
        rng = random.Random(f"{self.seed}:{adset.id}:spec")
        unit = offset(self.accounts[adset.account_id].currency)
        budget = Decimal(adset.daily_budget or 0) / unit
        capacity = budget * 3 if budget else Decimal(100)
        return ProfileSpec(roas=round(rng.uniform(0.8, 4.0), 2), capacity=capacity,
                           variation=DEFAULT_VARIATION)  # fmt: skip

    @contextmanager
    def without(self, change: Change) -> Iterator[None]:
        """The world as if `change` had never been made — what the market would have done
        anyway, against which a change's true effect is measured: it leaves its entity's
        timeline, and the next change of the same field starts from its old value (or,
        when there is none, the entity holds the old value now). Everything is put back on
        exit. Hold `lock` around it: readers must not see the world without it."""
        entity = self.entities[change.entity_id]
        timeline = self._changes_of.get(change.entity_id, [])
        index = timeline.index(change)
        later = next((i for i in range(index + 1, len(timeline))
                      if timeline[i].field == change.field), None)  # fmt: skip
        kept = list(timeline)
        current = getattr(entity, change.field)
        edited = [c for c in timeline if c is not change]
        if later is not None:
            edited[later - 1] = replace(timeline[later], old=change.old)
        else:
            setattr(entity, change.field, change.old)
        self._changes_of[change.entity_id] = edited
        try:
            yield
        finally:
            self._changes_of[change.entity_id] = kept
            setattr(entity, change.field, current)

    def true_effect(self, adset: Entity, day: date, change: Change) -> dict[str, float]:
        """What `change` did to the ad set's expected numbers on a local day (major units,
        before noise): with it minus without it (`without`), per column."""
        with self.lock:
            made = self.expected_adset(adset, day)
            with self.without(change):
                anyway = self.expected_adset(adset, day)
        return {
            column: getattr(made, column) - getattr(anyway, column)
            for column in ("spend", "impressions", "clicks", "purchases", "revenue")
        }

    def expected_adset(self, adset: Entity, day: date) -> market.Expected:
        """The ad set's expected numbers for a whole local day (no noise): what the market
        would give on average in the state it was (or, for a day to come, is) in — the
        truth tests compare estimates with."""
        return self._expected(self.profile(adset), self._pieces(adset, day, None))

    @staticmethod
    def _expected(
        profile: market.Profile, pieces: list[tuple[float, market.State, dict[str, float]]]
    ) -> market.Expected:
        total = market.Expected()
        for fraction, state, _shares in pieces:
            total = total + market.expected(profile, state).scaled(fraction)
        return total

    def truth(self, adset: Entity, day: date) -> dict[str, Any]:
        """The ad set's expected numbers on a local day — totals and each segment's, money
        in major units, before noise — and whether it was learning."""
        profile = self.profile(adset)
        pieces = self._pieces(adset, day, None)
        total = self._expected(profile, pieces)
        segments: dict[str, list[dict[str, Any]]] = {}
        state = max(pieces, key=lambda p: p[0])[1] if pieces else market.State(1.0)
        for dimension, keyed in profile.segments.items():
            weights = market.column_weights(profile, state, dimension)
            rows = []
            for index, key in enumerate(keyed):
                row: dict[str, Any] = {"segment": list(key)}
                for column, value in (
                    ("spend", total.spend), ("impressions", total.impressions),
                    ("clicks", total.clicks), ("purchases", total.purchases),
                    ("revenue", total.revenue),
                ):  # fmt: skip
                    whole = sum(weights[column]) or 1.0
                    row[column] = value * weights[column][index] / whole
                row["roas"] = row["revenue"] / row["spend"] if row["spend"] else None
                rows.append(row)
            segments[dimension] = rows
        return {
            "adset_id": adset.id,
            "date": day.isoformat(),
            "spend": total.spend,
            "impressions": total.impressions,
            "clicks": total.clicks,
            "purchases": total.purchases,
            "revenue": total.revenue,
            "roas": total.roas,
            "learning": total.learning,
            "segments": segments,
        }

    def _generate_day(self, ad: Entity, day: date, today: date, now: datetime) -> Day:
        adset = self.entities[ad.adset_id or ""]
        profile = self.profile(adset)
        expected = market.Expected()
        for fraction, state, shares in self._pieces(adset, day, now):
            share = shares.get(ad.id, 0.0)
            if share > 0:
                expected = expected + market.expected(profile, state).scaled(fraction * share)
        account = self.accounts[ad.account_id]
        rng = random.Random(f"{self.seed}:{ad.id}:{day.isoformat()}")
        counts = market.simulate(profile, expected, rng, unit=offset(account.currency))
        purchases, age = counts.purchases, (today - day).days
        if purchases and age < len(LATE_CONVERSIONS):  # not all attributed yet
            late = sum(rng.random() < LATE_CONVERSIONS[age] for _ in range(purchases))
            revenue = counts.revenue * (purchases - late) // purchases
            return replace(counts, purchases=purchases - late, revenue=revenue)
        return counts

    def _pieces(
        self, adset: Entity, day: date, now: datetime | None
    ) -> list[tuple[float, market.State, dict[str, float]]]:
        """The parts of a local day between changes: (fraction of the day, the ad set's
        state, each ad's share of its delivery). Today ends at `now` (None: the whole
        day, in the state as it is now where the day has not come yet)."""
        account = self.accounts[adset.account_id]
        zone = ZoneInfo(account.timezone_name)
        start = datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)
        end = start + timedelta(days=1) if now is None else min(start + timedelta(days=1), now)
        if end <= start:
            return []
        campaign = self.entities.get(adset.campaign_id or "")
        ads = [e for e in self.children(adset.id, "ad")]
        siblings = self.children(campaign.id, "adset") if campaign else [adset]
        watched = [adset, *ads, *([campaign] if campaign else []), *siblings]
        cuts = {start, end}
        for entity in watched:
            for change in self._changes_of.get(entity.id, ()):
                if start < change.at < end:
                    cuts.add(change.at)
            if start < entity.created_time < end:
                cuts.add(entity.created_time)
        bounds = sorted(cuts)
        unit = offset(account.currency)
        pieces = []
        for a, b in zip(bounds, bounds[1:], strict=False):
            fraction = (b - a) / timedelta(days=1)
            budget = self._budget_at(adset, campaign, siblings, a) / unit
            live = [ad for ad in ads if self._delivering(ad, a)]
            if campaign is not None and not self._delivering(campaign, a):
                budget = 0.0
            if not self._delivering(adset, a) or not live:
                budget = 0.0
            end_time = self.value_at(adset, "end_time", a)
            if end_time is not None and a >= end_time:
                budget = 0.0  # its schedule ended
            weights = {ad.id: ad_weight(self.seed, ad.id) for ad in live}
            whole = sum(weights.values()) or 1.0
            shares = {ad_id: w / whole for ad_id, w in weights.items()}
            reached = targeting.included(
                self.value_at(adset, "targeting", a),
                self.value_at(adset, "adset_schedule", a),
                a.astimezone(zone).weekday(),
                segment_keys(account),
            )
            learning = self._learning(adset, campaign, a)
            state = market.State(budget=budget, included=reached, learning=learning)
            pieces.append((fraction, state, shares))
        return pieces

    def _budget_at(
        self, adset: Entity, campaign: Entity | None, siblings: list[Entity], at: datetime
    ) -> float:
        """The budget (minor units a day) the ad set may spend at `at`: its own, or its
        share of its campaign's (Advantage+ campaign budget: shared by the delivering ad
        sets in proportion to what each makes of it)."""
        daily = self.value_at(adset, "daily_budget", at)
        if daily:
            return float(daily)
        lifetime = self.value_at(adset, "lifetime_budget", at)
        if lifetime:
            return float(lifetime) / LIFETIME_DAYS
        if campaign is None:
            return 0.0
        pool = self.value_at(campaign, "daily_budget", at) or (
            (self.value_at(campaign, "lifetime_budget", at) or 0) / LIFETIME_DAYS
        )
        if not pool:
            return 0.0

        def pull(entity: Entity) -> float:
            profile = self.profile(entity)
            return profile.capacity * (profile.ctr * profile.cvr * profile.aov / profile.cpm)

        sharing = [e for e in siblings if self._delivering(e, at)]
        whole = sum(pull(e) for e in sharing)
        return float(pool) * pull(adset) / whole if whole and adset in sharing else 0.0

    def _learning(self, adset: Entity, campaign: Entity | None, at: datetime) -> bool:
        """Whether the ad set is in Meta's learning phase at `at`: within
        `market.LEARNING_DAYS` of being created (a copy), of a targeting or schedule
        change, of a budget change above
        `market.SIGNIFICANT_BUDGET_CHANGE`, or of resuming after a pause of at least
        `market.LONG_PAUSE_DAYS`."""
        since = at - timedelta(days=market.LEARNING_DAYS)
        if since < adset.created_time <= at and adset.source_id:
            return True
        for entity in (adset, *([campaign] if campaign else [])):
            changes = self._changes_of.get(entity.id, ())
            for index, change in enumerate(changes):
                if not since < change.at <= at:
                    continue
                if change.field in EDITS:
                    return True
                if change.field.endswith("_budget") and change.old and change.new:
                    ratio = float(change.new) / float(change.old)
                    if abs(ratio - 1) > market.SIGNIFICANT_BUDGET_CHANGE:
                        return True
                if change.field == "status" and change.new == "ACTIVE":
                    paused_at = next(
                        (c.at for c in reversed(changes[:index]) if c.field == "status"),
                        entity.created_time,  # paused since it was made
                    )
                    if change.at - paused_at >= timedelta(days=market.LONG_PAUSE_DAYS):
                        return True
        return False

    # writing --------------------------------------------------------------------

    def log_write(
        self,
        method: str,
        path: str,
        object_id: str,
        params: dict,
        result: dict,
        *,
        changed: bool = True,
    ) -> None:
        secret = ("access_token", "appsecret_proof")
        kept = {k: v for k, v in params.items() if k not in secret}
        record = WriteRecord(self.clock(), method, path, object_id, kept, dict(result), changed)
        self.write_log.append(record)
        self.touch()

    def log_activity(
        self,
        entity: Entity,
        what: str,
        extra: dict[str, Any],
        *,
        by_person: bool = False,
    ) -> None:
        """Record a change in the account's change history, as Meta's activity log does."""
        self.activities.append(
            Activity(
                event_time=self.clock(),
                event_type=ACTIVITY_EVENTS[(entity.level, what)],
                object_id=entity.id,
                object_name=entity.name,
                object_type={"campaign": "CAMPAIGN_GROUP", "adset": "CAMPAIGN", "ad": "AD"}[
                    entity.level
                ],
                account_id=entity.account_id,
                application=ADS_MANAGER_APP if by_person else SANDBOX_APP,
                actor=PERSON_ACTOR if by_person else API_ACTOR,
                extra_data=dict(extra),
            )
        )
        self.touch()

    def copy_entity(
        self, source: Entity, *, status: str, name: str, parent_id: str | None
    ) -> Entity:
        now = self.clock()
        copy = replace(
            source,
            id=self.new_id(),
            name=name,
            status=status,
            created_time=now,
            updated_time=now,
            source_id=source.id,
        )
        if parent_id and source.level == "adset":
            copy.campaign_id = parent_id
        if parent_id and source.level == "ad":
            copy.adset_id = parent_id
            copy.campaign_id = self.entities[parent_id].campaign_id
        self.entities[copy.id] = copy
        self.touch()
        return copy

    # keeping --------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """What writes changed, as plain JSON (read back by `from_state`)."""
        return {
            "seed": self.seed,
            "scripted": self.scripted,
            "last_id": self._last_id,
            "accounts": [_plain(a) for a in self.accounts.values()],
            "entities": [_plain(e) for e in self.entities.values()],
            "fixed_days": [
                {"ad_id": ad_id, "date": day.isoformat(), **_plain(numbers)}
                for (ad_id, day), numbers in self.fixed_days.items()
            ],
            "budget_changes": {
                entity_id: [t.isoformat() for t in times]
                for entity_id, times in self.budget_changes.items()
            },
            "write_log": [w.as_dict() for w in self.write_log],
            "activities": [_plain(a) for a in self.activities],
            "advanced_days": self.advanced.days,
            "profiles": {adset_id: _plain(spec) for adset_id, spec in self.profile_specs.items()},
            "changes": [_plain(c) for c in self.changes],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], clock: Clock) -> World:
        """The world `to_state` wrote. Raises KeyError, TypeError or ValueError when the
        state is not one it wrote. A state written before the market model (no
        `changes`) loses its ads' old generation fields: its numbers now follow the
        market from the entities as they are."""
        world = cls(int(state["seed"]), clock)
        world.scripted = bool(state["scripted"])
        world._last_id = int(state["last_id"])
        for item in state["accounts"]:
            account = _typed(Account, item)
            world.accounts[account.id] = account
        for item in state["entities"]:
            if "changes" not in state:  # written before the market model
                item = {k: v for k, v in item.items() if k not in _BEFORE_MARKET}
            entity = _typed(Entity, item)
            world.entities[entity.id] = entity
        for item in state["fixed_days"]:
            item = dict(item)
            key = (str(item.pop("ad_id")), date.fromisoformat(item.pop("date")))
            world.fixed_days[key] = _typed(Day, item)
        world.budget_changes = {
            str(entity_id): [_instant(t) for t in times]
            for entity_id, times in state["budget_changes"].items()
        }
        for item in state["write_log"]:
            world.write_log.append(
                WriteRecord(
                    at=_instant(item["at"]),
                    method=str(item["method"]),
                    path=str(item["path"]),
                    object_id=str(item["object_id"]),
                    params=dict(item["params"]),
                    result=dict(item["result"]),
                    changed=bool(item["changed"]),
                )
            )
        world.activities = [_typed(Activity, item) for item in state["activities"]]
        world.advanced = timedelta(days=int(state.get("advanced_days", 0)))
        for adset_id, item in (state.get("profiles") or {}).items():
            world.profile_specs[str(adset_id)] = _typed(ProfileSpec, item)
        for item in state.get("changes") or []:
            change = _typed(Change, item)
            if change.field in _MAYBE_INSTANTS:
                change = replace(
                    change,
                    old=None if change.old is None else _instant(change.old),
                    new=None if change.new is None else _instant(change.new),
                )
            world.changes.append(change)
            world._changes_of.setdefault(change.entity_id, []).append(change)
        return world


# Fields that JSON cannot carry as they are: written as text or lists, read back typed.
_DECIMALS = frozenset({"cpm", "order_value", "capacity"})
_INSTANTS = frozenset({"created_time", "updated_time", "event_time", "at"})
_MAYBE_INSTANTS = frozenset({"end_time"})
_PAIRS = frozenset({"application", "actor"})
_BEFORE_MARKET = frozenset({"roas", "base_spend", "active_days_ago"})  # ads' old profile


def _plain(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def _typed(cls: Any, data: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)} for {cls.__name__}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name in _DECIMALS:
            value = Decimal(str(value))
        elif name in _INSTANTS or (name in _MAYBE_INSTANTS and value is not None):
            value = _instant(value)
        elif name in _PAIRS:
            first, second = value
            value = (first, second)
        values[name] = value
    return cls(**values)


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return value


# ------------------------------------------------------------------- generation

_CAMPAIGNS = (
    # name, status, objective, campaign budget (major, per day) or None, adset ROAS profile,
    # active days ago (first, last)
    ("Prospecting – Broad", "ACTIVE", "OUTCOME_SALES", None, (4.6, 2.4, 0.6), (89, 0)),
    ("Retargeting – Site Visitors", "ACTIVE", "OUTCOME_SALES", 300, (5.2, 3.8, 1.6), (89, 0)),
    ("Catalog – Dynamic Products", "ACTIVE", "OUTCOME_SALES", None, (3.4, 0.8, 2.9), (45, 0)),
    ("Lookalike – Purchasers 1%", "ACTIVE", "OUTCOME_SALES", None, (0.5, 1.2, 4.1), (30, 0)),
    ("Brand Awareness Q3", "PAUSED", "OUTCOME_AWARENESS", None, (0.9, 1.1, 0.7), (89, 8)),
    ("Summer Sale 2026", "ARCHIVED", "OUTCOME_SALES", None, (3.0, 2.2, 1.8), (89, 31)),
)
# The generated world's planted patterns — what its breakdowns truly say (docs/sandbox.md):
# (campaign index, ad set index or None for all of the campaign's) → plants; `{abroad}` is
# the account's second country (CA for the USD account, TW for the JPY one).
PLANTS: dict[tuple[int, int | None], list[dict[str, Any]]] = {
    (0, 0): [  # Prospecting · US 25-44: women 25–34 convert at 2.5× the rest
        {"dimension": "demographic", "match": {"age": "25-34", "gender": "female"}, "cvr": 2.5},
    ],
    (0, 1): [  # Prospecting · Interests: 55 and over convert at a quarter of the rest's rate
        {"dimension": "demographic", "match": {"age": ["55-64", "65+"]}, "cvr": 0.25},
    ],
    (2, None): [  # Catalog: Audience Network takes 25 % of the spend, converts at 0.15×
        {"dimension": "placement", "match": {"platform": "audience_network"}, "share": 0.25,
         "cvr": 0.15},
    ],
    (1, None): [  # Retargeting: the night hours 1–5 cost 2.5× the CPC
        {"dimension": "hour", "match": {"hour": [1, 2, 3, 4, 5]}, "cpc": 2.5},
    ],
    (3, 2): [  # Lookalike · Interests: the second country, 3 % of delivery, makes ROAS 9 at a
        # low spend (the ad set ≈ 4.5 there): about twice the ad set's ROAS at any budget
        {"dimension": "country", "match": {"country": "{abroad}"}, "share": 0.03, "roas": 9.0},
    ],
}  # fmt: skip
_ADSET_NAMES = ("US 25-44", "Interests – Home", "Advantage+ Audience", "Lookalike 3%")
_AD_NAMES = ("Video – UGC", "Carousel – Bestsellers", "Static – Offer")

GENERATED_ACCOUNTS = (
    # id, name, currency, time zone, min daily budget (minor), CPM, order value, scale
    ("act_1010000001", "Sandbox Outdoor Co. (US)", "USD", "America/Los_Angeles", 100,
     Decimal("11"), Decimal("64"), Decimal(1)),
    ("act_1020000002", "Sandbox Kitchen KK (JP)", "JPY", "Asia/Tokyo", 100,
     Decimal("1400"), Decimal("8200"), Decimal(150)),
)  # fmt: skip


def generate(seed: int, clock: Clock) -> World:
    """Two accounts (USD in Los Angeles, JPY in Tokyo), each with six campaigns (one with
    a campaign budget, one paused, one archived), 18 ad sets (one on a lifetime budget
    with an end time, the one dayparting can be tried on) and 54 ads. Each campaign
    started delivering some days ago (its objects were made then); the paused and the
    archived ones stopped on a day of the history, as did one paused ad set and a few
    paused ads — those stops are on the timeline, so their days before still show."""
    world = World(seed, clock)
    now = clock()
    for acc_id, name, currency, tz, minimum, cpm, order_value, scale in GENERATED_ACCOUNTS:
        account = Account(acc_id, name, currency, tz, 1, minimum, cpm, order_value)
        world.accounts[acc_id] = account
        rng = random.Random(f"{seed}:{acc_id}")
        unit = offset(currency)
        for c_index, (c_name, status, objective, cbo, profiles, active) in enumerate(_CAMPAIGNS):
            first, last = active
            # made at the start of the local day `first` days ago: it delivers from then on
            started = account.today(now) - timedelta(days=first)
            created = datetime.combine(started, datetime.min.time(), ZoneInfo(tz)).astimezone(UTC)
            campaign = Entity(
                id=world.new_id(), level="campaign", account_id=acc_id, name=c_name,
                status=status, created_time=created, updated_time=created, objective=objective,
                daily_budget=int(cbo * scale * unit) if cbo else None,
            )  # fmt: skip
            world.entities[campaign.id] = campaign
            if status != "ACTIVE":
                world.seed_change(campaign, "status", "ACTIVE", status, now - timedelta(days=last))
            for a_index, roas in enumerate(profiles):
                budget = Decimal(rng.choice((40, 60, 80, 120, 150, 200))) * scale
                adset_status = "PAUSED" if (c_index, a_index) == (2, 1) else "ACTIVE"
                lifetime = (c_index, a_index) == (2, 2)  # one ad set on a lifetime budget
                adset = Entity(
                    id=world.new_id(), level="adset", account_id=acc_id,
                    name=f"{c_name} · {_ADSET_NAMES[(c_index + a_index) % len(_ADSET_NAMES)]}",
                    status=adset_status, created_time=created, updated_time=created,
                    campaign_id=campaign.id,
                    daily_budget=None if cbo or lifetime else int(budget * unit),
                    lifetime_budget=int(budget * LIFETIME_DAYS * unit) if lifetime else None,
                    end_time=now + timedelta(days=LIFETIME_DAYS) if lifetime else None,
                    bid_amount=None,
                    targeting=default_targeting(
                        account, advantage=(c_index + a_index) % len(_ADSET_NAMES) == 2
                    ),
                )  # fmt: skip
                world.entities[adset.id] = adset
                if adset_status == "PAUSED":
                    world.seed_change(adset, "status", "ACTIVE", "PAUSED",
                                      now - timedelta(days=max(last, 12)))  # fmt: skip
                takes = (Decimal(cbo) * scale / len(profiles)) if cbo else budget
                capacity = (takes * Decimal(str(round(rng.uniform(2.0, 4.0), 3)))).quantize(
                    Decimal("0.01")
                )
                # the profile's ROAS is what it makes at its budget: at a low spend, more
                pushed = 1 - math.exp(-float(takes / capacity))
                abroad = GEOGRAPHY.get(currency, GEOGRAPHY["USD"])["country"][1]
                plants = [
                    {**plant, "match": {k: (abroad if v == "{abroad}" else v)
                                        for k, v in plant["match"].items()}}
                    for plant in PLANTS.get((c_index, a_index), PLANTS.get((c_index, None), []))
                ]  # fmt: skip
                world.profile_specs[adset.id] = ProfileSpec(
                    roas=round(roas * rng.uniform(0.9, 1.1) * (1 + market.SATURATION * pushed), 3),
                    capacity=capacity,
                    plants=plants,
                    variation=DEFAULT_VARIATION,
                )
                for d_index, ad_name in enumerate(_AD_NAMES):
                    ad_status = "PAUSED" if (a_index + d_index + c_index) % 7 == 6 else "ACTIVE"
                    ad = Entity(
                        id=world.new_id(), level="ad", account_id=acc_id,
                        name=f"{ad_name} #{c_index + 1}{a_index + 1}{d_index + 1}",
                        status=ad_status, created_time=created, updated_time=created,
                        campaign_id=campaign.id, adset_id=adset.id,
                    )  # fmt: skip
                    world.entities[ad.id] = ad
                    if ad_status == "PAUSED":
                        world.seed_change(ad, "status", "ACTIVE", "PAUSED",
                                          now - timedelta(days=max(last, 4)))  # fmt: skip
    return world


def default_targeting(account: Account, *, advantage: bool = False) -> dict[str, Any]:
    """A generated ad set's targeting: adults of every age and gender in the account's
    countries, Advantage+ placements (no placement lists), Advantage+ audience on or off."""
    countries = GEOGRAPHY.get(account.currency, GEOGRAPHY["USD"])["country"]
    return {
        "age_min": 18,
        "age_max": 65,
        "geo_locations": {"countries": list(countries)},
        "targeting_automation": {"advantage_audience": 1 if advantage else 0},
    }


def date_range(first: date, last: date) -> Iterable[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def fixed_clock(now: datetime | Clock | None) -> Clock:
    if now is None:
        return lambda: datetime.now(UTC)
    if callable(now):
        return now
    if now.tzinfo is None:
        raise ValueError("the sandbox clock needs a tz-aware datetime")
    return lambda: now


def meta_time(value: datetime, timezone_name: str) -> str:
    """Meta's timestamp format, in the account's time zone: 2026-11-01T10:00:00-0800."""
    return value.astimezone(ZoneInfo(timezone_name)).strftime("%Y-%m-%dT%H:%M:%S%z")
