"""The sandbox's world: ad accounts, campaigns, ad sets, ads and their daily numbers.

Generated deterministically from a seed (or loaded from a scenario file, see
scenario.py). Every ad's numbers for a day come from `random.Random(f"{seed}:{ad}:{day}")`
— so one ad's numbers never depend on which others exist or on the order of requests —
and are computed when first asked for. Breakdown rows split a day's totals with the
largest-remainder method, so they always sum to the day exactly.

Writes (status, budgets, copies) change the state; past numbers stay as generated.

`World.to_state()` / `World.from_state()` write and read what writes changed — accounts,
entities (copies included), overrides, the write log, the change history, recent budget
changes and the id counter — as plain JSON, so a sandbox can keep its state in a file
across restarts (server.py). Generated numbers are not stored: they follow from the
seed and the entities. The request log and async report runs are not kept.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from core.money import offset

HISTORY_DAYS = 60
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
    # generation profile (ads): what a day's numbers look like
    roas: float = 0.0
    base_spend: Decimal = Decimal(0)  # major units per day
    active_days_ago: tuple[int, int] = (HISTORY_DAYS - 1, 0)  # spends on these days ago

    @property
    def parent_id(self) -> str | None:
        return {"campaign": None, "adset": self.campaign_id, "ad": self.adset_id}[self.level]


@dataclass(frozen=True)
class Day:
    """One ad's numbers for one account-local day. Money in minor units."""

    spend: int
    impressions: int
    clicks: int
    reach: int
    purchases: int
    revenue: int

    FIELDS = ("spend", "impressions", "clicks", "reach", "purchases", "revenue")

    def is_empty(self) -> bool:
        return not (self.spend or self.impressions)

    def __add__(self, other: Day) -> Day:
        return Day(*(getattr(self, f) + getattr(other, f) for f in Day.FIELDS))


ZERO = Day(0, 0, 0, 0, 0, 0)


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


def split(total: int, weights: list[float]) -> list[int]:
    """`total` in integer parts proportional to `weights`, summing exactly to `total`."""
    whole = sum(weights)
    if total == 0 or whole <= 0:
        return [0] * len(weights)
    raw = [total * w / whole for w in weights]
    parts = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - parts[i]), i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


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
        self.clock = clock
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
        self._cache: dict[tuple[str, date], Day] = {}
        self._last_id = 0

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
        key = (ad.id, day)
        if key in self.fixed_days:
            return self.fixed_days[key]
        if self.scripted:
            return ZERO
        if key not in self._cache:
            self._cache[key] = self._generate_day(ad, day)
        return self._cache[key]

    def segment_days(
        self, ad: Entity, day: date, breakdowns: tuple[str, ...]
    ) -> list[tuple[tuple[str, ...], Day]]:
        """A day's totals split over breakdown segments (parts sum to the totals)."""
        total = self.day(ad, day)
        account = self.accounts[ad.account_id]
        combos = segments(account, breakdowns)
        rng = random.Random(f"{self.seed}:{ad.id}:{','.join(breakdowns)}:{day}")
        base = random.Random(f"{self.seed}:{ad.id}:{','.join(breakdowns)}")
        weights = [base.uniform(0.2, 1.0) * rng.uniform(0.8, 1.2) for _ in combos]
        if breakdowns == (HOURLY,):
            weights = [w * h for w, h in zip(weights, HOUR_WEIGHTS, strict=True)]
        quality = [base.uniform(0.5, 1.6) for _ in combos]  # some segments convert better
        value_weights = [w * q for w, q in zip(weights, quality, strict=True)]
        columns = {
            "spend": split(total.spend, weights),
            "impressions": split(total.impressions, weights),
            "clicks": split(total.clicks, weights),
            # Meta reports no reach in hourly breakdowns
            "reach": [0] * len(combos) if breakdowns == (HOURLY,) else split(total.reach, weights),
            "purchases": split(total.purchases, value_weights),
            "revenue": split(total.revenue, value_weights),
        }
        return [
            (combo, Day(*(columns[f][i] for f in Day.FIELDS))) for i, combo in enumerate(combos)
        ]

    # generating -----------------------------------------------------------------

    def _generate_day(self, ad: Entity, day: date) -> Day:
        account = self.accounts[ad.account_id]
        now = self.clock()
        today = account.today(now)
        days_ago = (today - day).days
        first, last = ad.active_days_ago
        if days_ago < 0 or not (last <= days_ago <= first) or ad.base_spend <= 0:
            return ZERO
        rng = random.Random(f"{self.seed}:{ad.id}:{day.isoformat()}")
        unit = offset(account.currency)
        spend = ad.base_spend * Decimal(str(round(rng.uniform(0.7, 1.15), 4)))
        if days_ago == 0:  # today: only the part of the day that has passed
            local = now.astimezone(ZoneInfo(account.timezone_name))
            spend *= Decimal(local.hour * 60 + local.minute) / Decimal(1440)
        spend_minor = int((spend * unit).to_integral_value(rounding=ROUND_HALF_EVEN))
        if spend_minor <= 0:
            return ZERO
        spend_major = Decimal(spend_minor) / unit
        cpm = account.cpm * Decimal(str(round(rng.uniform(0.8, 1.25), 4)))
        impressions = int(spend_major / cpm * 1000)
        clicks = int(impressions * rng.uniform(0.008, 0.022))
        reach = int(impressions / rng.uniform(1.1, 1.6))
        roas = Decimal(str(round(ad.roas * rng.uniform(0.8, 1.2), 4)))
        order_value = account.order_value * Decimal(str(round(rng.uniform(0.8, 1.2), 4)))
        purchases = int((spend_major * roas / order_value).to_integral_value(ROUND_HALF_EVEN))
        revenue = (
            int((spend_major * roas * unit).to_integral_value(ROUND_HALF_EVEN)) if purchases else 0
        )
        return Day(spend_minor, impressions, clicks, reach, purchases, revenue)

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
            base_spend=Decimal(0),
            roas=0.0,
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
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], clock: Clock) -> World:
        """The world `to_state` wrote. Raises KeyError, TypeError or ValueError when the
        state is not one it wrote."""
        world = cls(int(state["seed"]), clock)
        world.scripted = bool(state["scripted"])
        world._last_id = int(state["last_id"])
        for item in state["accounts"]:
            account = _typed(Account, item)
            world.accounts[account.id] = account
        for item in state["entities"]:
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
        return world


# Fields that JSON cannot carry as they are: written as text or lists, read back typed.
_DECIMALS = frozenset({"cpm", "order_value", "base_spend"})
_INSTANTS = frozenset({"created_time", "updated_time", "event_time"})
_PAIRS = frozenset({"active_days_ago", "application", "actor"})


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
        elif name in _INSTANTS:
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
    ("Prospecting – Broad", "ACTIVE", "OUTCOME_SALES", None, (4.6, 2.4, 0.6), (59, 0)),
    ("Retargeting – Site Visitors", "ACTIVE", "OUTCOME_SALES", 300, (5.2, 3.8, 1.6), (59, 0)),
    ("Catalog – Dynamic Products", "ACTIVE", "OUTCOME_SALES", None, (3.4, 0.8, 2.9), (45, 0)),
    ("Lookalike – Purchasers 1%", "ACTIVE", "OUTCOME_SALES", None, (0.5, 1.2, 4.1), (30, 0)),
    ("Brand Awareness Q3", "PAUSED", "OUTCOME_AWARENESS", None, (0.9, 1.1, 0.7), (59, 8)),
    ("Summer Sale 2026", "ARCHIVED", "OUTCOME_SALES", None, (3.0, 2.2, 1.8), (59, 31)),
)
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
    a campaign budget, one paused, one archived), 18 ad sets and 54 ads."""
    world = World(seed, clock)
    created = clock() - timedelta(days=HISTORY_DAYS + 30)
    for acc_id, name, currency, tz, minimum, cpm, order_value, scale in GENERATED_ACCOUNTS:
        account = Account(acc_id, name, currency, tz, 1, minimum, cpm, order_value)
        world.accounts[acc_id] = account
        rng = random.Random(f"{seed}:{acc_id}")
        unit = offset(currency)
        for c_index, (c_name, status, objective, cbo, profiles, active) in enumerate(_CAMPAIGNS):
            campaign = Entity(
                id=world.new_id(), level="campaign", account_id=acc_id, name=c_name,
                status=status, created_time=created, updated_time=created, objective=objective,
                daily_budget=int(cbo * scale * unit) if cbo else None,
            )  # fmt: skip
            world.entities[campaign.id] = campaign
            for a_index, profile in enumerate(profiles):
                budget = Decimal(rng.choice((40, 60, 80, 120, 150, 200))) * scale
                adset_status = "PAUSED" if (c_index, a_index) == (2, 1) else "ACTIVE"
                adset = Entity(
                    id=world.new_id(), level="adset", account_id=acc_id,
                    name=f"{c_name} · {_ADSET_NAMES[(c_index + a_index) % len(_ADSET_NAMES)]}",
                    status=adset_status, created_time=created, updated_time=created,
                    campaign_id=campaign.id,
                    daily_budget=None if cbo else int(budget * unit),
                    bid_amount=None,
                )  # fmt: skip
                world.entities[adset.id] = adset
                adset_spend = (Decimal(cbo) * scale / len(profiles)) if cbo else budget
                first, last = active
                if adset_status == "PAUSED":
                    last = max(last, 12)
                for d_index, ad_name in enumerate(_AD_NAMES):
                    ad_status = "PAUSED" if (a_index + d_index + c_index) % 7 == 6 else "ACTIVE"
                    ad = Entity(
                        id=world.new_id(), level="ad", account_id=acc_id,
                        name=f"{ad_name} #{c_index + 1}{a_index + 1}{d_index + 1}",
                        status=ad_status, created_time=created, updated_time=created,
                        campaign_id=campaign.id, adset_id=adset.id,
                        roas=round(profile * rng.uniform(0.85, 1.15), 3),
                        base_spend=(adset_spend / len(_AD_NAMES)
                                    * Decimal(str(round(rng.uniform(0.7, 1.1), 3)))),
                        active_days_ago=(first, max(last, 4) if ad_status == "PAUSED" else last),
                    )  # fmt: skip
                    world.entities[ad.id] = ad
    return world


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
