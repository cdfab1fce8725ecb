"""Targeting and schedules as the sandbox takes them: Meta's spec checked as Meta refuses
it, and what a spec (and a schedule) leaves of each market dimension.

A spec is Meta's `targeting` JSON: `age_min` / `age_max` (13–65), `genders` ([1] male,
[2] female; absent = all), `geo_locations` / `excluded_geo_locations` (`countries`,
`regions` [{"key"}]: the sandbox's region keys are in `REGION_KEYS`),
`publisher_platforms` with `facebook_positions` / `instagram_positions` /
`audience_network_positions` / `messenger_positions` (an unset list: all of that
platform's positions), `device_platforms` (mobile, desktop), and
`targeting_automation.advantage_audience` (1 / 0). A write *replaces* the spec.

What it leaves (`included`), per dimension, as the fraction of each segment still
reached: an age band partly inside [age_min, age_max] keeps the part inside (ages are
spread evenly in a band); "unknown" gender is reached only when all genders are; a
region is reached when it or its country is included and neither is excluded; DMAs are
US areas (the "Unknown" one is everywhere else). With Advantage+ audience on, ages and
genders are suggestions Meta goes beyond: only `age_min` counts (Meta's hard limit).
An `adset_schedule` (dayparting) leaves the hours it lists on each weekday.
Dimensions are treated as independent (a region's share is not tied to its country's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.errors import RexError
from core.meta.errors import ADVANTAGE_AGES_TITLE, SPECIAL_CATEGORY_TITLE
from core.meta.objects import (
    AGE_BANDS,
    DEVICES,
    GENDER_CODES,
    PLATFORMS,
    POSITIONS,
    RESTRICTING_CATEGORIES,
)

# The sandbox's region keys (Meta's come from GET /search?type=adgeolocation) and the
# country each region is in.
REGION_KEYS = {
    "3847": ("California", "US"),
    "3886": ("Texas", "US"),
    "3875": ("New York", "US"),
    "3852": ("Florida", "US"),
    "3856": ("Illinois", "US"),
    "535": ("Ontario", "CA"),
    "1138": ("England", "GB"),
    "2573": ("New South Wales", "AU"),
    "2405": ("Tokyo", "JP"),
    "2412": ("Osaka", "JP"),
    "2395": ("Kanagawa", "JP"),
    "2369": ("Aichi", "JP"),
    "2372": ("Fukuoka", "JP"),
    "2374": ("Hokkaido", "JP"),
    "3409": ("Taipei City", "TW"),
    "2655": ("Seoul", "KR"),
}
COUNTRY_OF_REGION = {name: country for name, country in REGION_KEYS.values()}
SPEC_KEYS = frozenset(
    {
        "age_min", "age_max", "genders", "geo_locations", "excluded_geo_locations",
        "publisher_platforms", "facebook_positions", "instagram_positions",
        "audience_network_positions", "messenger_positions", "device_platforms",
        "targeting_automation", "age_range", "locales", "flexible_spec",
    }
)  # fmt: skip


TIMEZONE_TYPES = ("USER", "ADVERTISER")


class TargetingRefused(RexError):
    """A spec Meta refuses: its words, code, subcode, the field to blame and Meta's title
    and message for people."""

    def __init__(
        self, message: str, *, subcode: int | None = None, blame: str = "targeting",
        user_title: str | None = None, user_msg: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.subcode, self.blame, self.user_title = subcode, blame, user_title
        self.user_msg = user_msg


def check_spec(spec: Any, *, special_ad_categories: Any = ()) -> dict[str, Any]:
    """A targeting spec as Meta accepts it, or TargetingRefused in Meta's words.
    `special_ad_categories`: the campaign's (Meta restricts ages and genders for housing,
    employment and credit)."""
    if not isinstance(spec, dict):
        raise TargetingRefused("(#100) Param targeting must be a JSON object")
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise TargetingRefused(
            f"(#100) Invalid parameter: {unknown[0]} is not a targeting field the sandbox knows",
            blame=f"targeting.{unknown[0]}",
        )
    geo = spec.get("geo_locations")
    if not isinstance(geo, dict) or not (geo.get("countries") or geo.get("regions")):
        raise TargetingRefused(
            "(#100) Invalid parameter",
            subcode=1885364,
            blame="targeting.geo_locations",
            user_title="Location Required",
        )
    for field in ("age_min", "age_max"):
        value = spec.get(field)
        if value is not None and (not isinstance(value, int) or not 13 <= value <= 65):
            raise TargetingRefused(
                f"(#100) Param targeting[{field}] must be a number between 13 and 65",
                blame=f"targeting.{field}",
            )
    low, high = spec.get("age_min", 18), spec.get("age_max", 65)
    if low > high:
        raise TargetingRefused(
            "(#100) Invalid parameter: age_min must not be above age_max", blame="targeting.age_min"
        )
    if advantage_audience(spec) and not (18 <= low <= 25 and high == 65):
        raise TargetingRefused(
            "(#100) Invalid parameter: with Advantage+ audience on, age_min must be 18 to 25 "
            "and age_max 65; send narrower ages as age_range (a suggestion), or turn "
            "targeting_automation.advantage_audience off",
            blame="targeting.age_min",
            user_title=ADVANTAGE_AGES_TITLE,
            user_msg="You can add a higher minimum or lower maximum age as a suggestion instead.",
        )
    restricting = sorted(RESTRICTING_CATEGORIES & set(special_ad_categories or ()))
    if restricting and (low != 18 or high != 65 or set(spec.get("genders") or [1, 2]) != {1, 2}):
        field = "genders" if low == 18 and high == 65 else "age_min" if low != 18 else "age_max"
        raise TargetingRefused(
            f"(#100) Invalid parameter: campaigns in the special ad category {restricting[0]} "
            "must target ages 18 to 65 and all genders",
            blame=f"targeting.{field}",
            user_title=SPECIAL_CATEGORY_TITLE,
            user_msg="Age and gender targeting are not available for ads about housing, "
            "employment or credit.",
        )
    genders = spec.get("genders")
    if genders is not None and (
        not isinstance(genders, list) or any(g not in GENDER_CODES for g in genders)
    ):
        raise TargetingRefused(
            "(#100) Param targeting[genders] must be a list of 1 (male) and 2 (female)",
            blame="targeting.genders",
        )
    for side in ("geo_locations", "excluded_geo_locations"):
        for region in (spec.get(side) or {}).get("regions") or []:
            if not isinstance(region, dict) or str(region.get("key")) not in REGION_KEYS:
                raise TargetingRefused(
                    f"(#100) Invalid parameter: {region!r} in {side}.regions is no region key "
                    "(the sandbox's keys are in docs/sandbox.md)",
                    blame=f"targeting.{side}.regions",
                )
    lists = {"publisher_platforms": PLATFORMS, "device_platforms": DEVICES}
    lists.update({f"{platform}_positions": names for platform, names in POSITIONS.items()})
    for name, allowed in lists.items():
        for value in spec.get(name) or []:
            if value not in allowed:
                raise TargetingRefused(
                    f"(#100) Param targeting[{name}] has an invalid value {value!r}",
                    blame=f"targeting.{name}",
                )
    return spec


def advantage_audience(spec: Mapping[str, Any]) -> bool:
    automation = spec.get("targeting_automation") or {}
    return bool(automation.get("advantage_audience"))


def check_schedule(schedule: Any) -> list[dict[str, Any]]:
    """An `adset_schedule` as Meta accepts it (whole hours, at least one), or
    TargetingRefused."""
    if not isinstance(schedule, list) or not schedule:
        raise TargetingRefused(
            "(#100) Param adset_schedule must be a non-empty list", blame="adset_schedule"
        )
    for block in schedule:
        if not isinstance(block, dict):
            block = {}
        start, end = block.get("start_minute"), block.get("end_minute")
        days = block.get("days")
        ok = (
            isinstance(start, int) and isinstance(end, int) and start % 60 == 0
            and end % 60 == 0 and 0 <= start < end <= 1440
            and isinstance(days, list) and days and all(d in range(7) for d in days)
            and block.get("timezone_type", "USER") in TIMEZONE_TYPES
        )  # fmt: skip
        if not ok:
            raise TargetingRefused(
                "(#100) Invalid parameter: each adset_schedule block needs days (0 = Sunday … "
                "6), start_minute < end_minute in whole hours, at least one hour, and "
                "timezone_type USER or ADVERTISER",
                blame="adset_schedule",
            )
    return schedule


def included(
    spec: Mapping[str, Any] | None,
    schedule: list[dict[str, Any]] | None,
    weekday: int,
    segment_keys: Mapping[str, list[tuple[str, ...]]],
) -> dict[str, dict[tuple[str, ...], float]]:
    """Per dimension, the fraction of each segment a spec and a schedule still reach on a
    day (`weekday` Monday = 0, as Python counts). A dimension the spec leaves whole is
    not in the answer."""
    found: dict[str, dict[tuple[str, ...], float]] = {}
    if spec:
        demographic = _demographic(spec, segment_keys["demographic"])
        if demographic is not None:
            found["demographic"] = demographic
        placement = _placement(spec, segment_keys["placement"])
        if placement is not None:
            found["placement"] = placement
        found.update(_geography(spec, segment_keys))
    if schedule:
        meta_day = (weekday + 1) % 7  # Meta counts from Sunday
        hours = {
            h
            for block in schedule
            if meta_day in block["days"]
            for h in range(block["start_minute"] // 60, block["end_minute"] // 60)
        }
        found["hour"] = {
            key: (1.0 if i in hours else 0.0) for i, key in enumerate(segment_keys["hour"])
        }
    return found


def _demographic(
    spec: Mapping[str, Any], keys: list[tuple[str, ...]]
) -> dict[tuple[str, ...], float] | None:
    low = spec.get("age_min", 18)
    high = 65 if advantage_audience(spec) else spec.get("age_max", 65)
    genders = None if advantage_audience(spec) else spec.get("genders")
    if low <= 18 and high >= 65 and not genders:
        return None
    reached = {GENDER_CODES[g] for g in genders} if genders else None
    result: dict[tuple[str, ...], float] = {}
    for age, gender in keys:
        first, last = AGE_BANDS[age]
        inside = max(0, min(last, high) - max(first, low) + 1) / (last - first + 1)
        result[(age, gender)] = inside if reached is None or gender in reached else 0.0
    return result


def _placement(
    spec: Mapping[str, Any], keys: list[tuple[str, ...]]
) -> dict[tuple[str, ...], float] | None:
    platforms = spec.get("publisher_platforms")
    devices = spec.get("device_platforms")
    if not platforms and not devices:
        return None  # Advantage+ placements: all of them
    reached_devices = {d for name in (devices or DEVICES) for d in DEVICES[name]}
    result: dict[tuple[str, ...], float] = {}
    for platform, position, device in keys:
        ok = device in reached_devices and (not platforms or platform in platforms)
        positions = spec.get(f"{platform}_positions")
        if ok and positions:
            ok = position in {POSITIONS[platform][p] for p in positions}
        result[(platform, position, device)] = 1.0 if ok else 0.0
    return result


def _geography(
    spec: Mapping[str, Any], keys: Mapping[str, list[tuple[str, ...]]]
) -> dict[str, dict[tuple[str, ...], float]]:
    geo = spec.get("geo_locations") or {}
    excluded = spec.get("excluded_geo_locations") or {}
    regions_in = {REGION_KEYS[str(r["key"])][0] for r in geo.get("regions") or []}
    regions_out = {REGION_KEYS[str(r["key"])][0] for r in excluded.get("regions") or []}
    countries_in = set(geo.get("countries") or []) | {COUNTRY_OF_REGION[r] for r in regions_in}
    countries_out = set(excluded.get("countries") or [])

    def region_reached(name: str) -> bool:
        country = COUNTRY_OF_REGION.get(name)
        if name in regions_out or country in countries_out:
            return False
        return name in regions_in or country in set(geo.get("countries") or [])

    result: dict[str, dict[tuple[str, ...], float]] = {
        "country": {
            (c,): 1.0 if c in countries_in and c not in countries_out else 0.0
            for (c,) in keys["country"]
        },
        "region": {(r,): 1.0 if region_reached(r) else 0.0 for (r,) in keys["region"]},
    }
    us = "US" in countries_in and "US" not in countries_out
    others = bool(countries_in - {"US"} - countries_out)
    result["dma"] = {(d,): 1.0 if (us if d != "Unknown" else (others or us)) else 0.0
                     for (d,) in keys["dma"]}  # fmt: skip
    if all(v == 1.0 for part in result.values() for v in part.values()):
        return {}
    return result
