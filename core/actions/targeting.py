"""Targeting edits and hour schedules: the new full spec (or schedule) from the current one.

Meta's `targeting` is one field that a write *replaces*, so a change to it is always
"this whole spec instead of that one" (core/actions/changes.py, `TargetingChange`).
This module makes the new spec from the spec read from Meta and a typed edit — what a
suggestion found in a breakdown ("ages 55-64 and 65+ lose money") — and says it in
words. It is pure: no Meta, no database.

What each edit can do is what Meta's spec can say:

* ages: only `age_min` / `age_max`, so only the bands at either edge of the range can go
  (a band in the middle cannot be excluded: `AgeBandInMiddle`);
* genders: `genders` = the other one;
* placements, named as the placement breakdown spells them (`publisher_platform`,
  `platform_position`, `impression_device`): a platform leaves `publisher_platforms`, a
  position its platform's `<platform>_positions`, a device `device_platforms`. A spec
  without those lists means all of them (Advantage+ placements): the edit writes the
  full list minus the one excluded. A breakdown device that Meta's targeting cannot
  name alone (an iPhone is "mobile" with Android phones) is refused;
* locations: a country or region targeted directly leaves `geo_locations`; one inside
  a targeted country goes into `excluded_geo_locations`; a country can be added.

An edit that changes nothing, or that would leave nobody to deliver to (no gender, no
placement, no location, no age), raises a `TargetingEditError` naming what and why.

Schedules: the hours of the day to keep (0–23, in the ad account's time zone, as the
hourly breakdown `hourly_stats_aggregated_by_advertiser_time_zone` counts them) become
an `adset_schedule` of whole-hour blocks on all 7 days with `timezone_type` ADVERTISER
(the account's time zone; USER would be each viewer's own).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from copy import deepcopy
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.errors import RexError
from core.meta.errors import SPECIAL_CATEGORY_WORDS
from core.meta.objects import (
    AGE_BANDS,
    AGE_LIMITS,
    DEVICES,
    GENDER_CODES,
    PLATFORMS,
    POSITIONS,
    RESTRICTING_CATEGORIES,
)

Spec = dict[str, Any]
AgeBand = Literal["18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
Gender = Literal["male", "female"]
DAYS = list(range(7))  # Meta's days: 0 = Sunday … 6
TIMEZONE_TYPE = "ADVERTISER"  # the hours are the ad account's
ALL_HOURS = frozenset(range(24))


class TargetingEditError(RexError):
    """An edit that cannot be made to this spec; the message names what and why."""


class EditChangesNothing(TargetingEditError):
    """The spec already leaves out what the edit would exclude (or has what it adds)."""


class EditLeavesNoOne(TargetingEditError):
    """The edit would leave nobody to deliver to: no gender, placement, location or age."""


class AgeBandInMiddle(TargetingEditError):
    """An age band inside the range: age_min / age_max can only cut bands at its edges."""


class RestrictedByCategory(TargetingEditError):
    """An age or gender edit in a campaign of a special ad category that restricts them
    (housing, employment, credit): Meta would refuse it."""


class NotTargetable(TargetingEditError):
    """A segment Meta's targeting cannot name on its own (an iPhone: "mobile" is all
    phones), or a name Rex does not know."""


# ------------------------------------------------------------------------- the edits


class _Edit(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExcludeAgeBands(_Edit):
    """Stop targeting these age bands (the age breakdown's): narrows age_min / age_max."""

    edit: Literal["exclude_ages"] = "exclude_ages"
    bands: tuple[AgeBand, ...] = Field(min_length=1)


class ExcludeGender(_Edit):
    """Stop targeting one gender: `genders` becomes the other."""

    edit: Literal["exclude_gender"] = "exclude_gender"
    gender: Gender


class ExcludePlacement(_Edit):
    """Stop delivering to a platform, to one position of a platform, or to a device — as
    the placement breakdown spells them ("instagram", "instagram_stories", "desktop")."""

    edit: Literal["exclude_placement"] = "exclude_placement"
    publisher_platform: str | None = None
    platform_position: str | None = None  # needs its publisher_platform
    impression_device: str | None = None

    @model_validator(mode="after")
    def _one_placement(self) -> ExcludePlacement:
        by_platform = self.publisher_platform is not None
        if by_platform == (self.impression_device is not None):
            raise ValueError("name either a publisher_platform (and maybe a position) or a device")
        return self


class ExcludeCountry(_Edit):
    """Stop delivering to a country (ISO 3166 alpha-2, as the country breakdown)."""

    edit: Literal["exclude_country"] = "exclude_country"
    country: str = Field(pattern=r"^[A-Z]{2}$")


class ExcludeRegion(_Edit):
    """Stop delivering to a region: its Meta key (GET /search?type=adgeolocation), its
    name as the region breakdown shows it, and its country."""

    edit: Literal["exclude_region"] = "exclude_region"
    key: str = Field(pattern=r"^\d+$")
    name: str
    country: str = Field(pattern=r"^[A-Z]{2}$")


class AddCountry(_Edit):
    """Deliver to one more country."""

    edit: Literal["add_country"] = "add_country"
    country: str = Field(pattern=r"^[A-Z]{2}$")


TargetingEdit = Annotated[
    ExcludeAgeBands | ExcludeGender | ExcludePlacement | ExcludeCountry | ExcludeRegion
    | AddCountry,
    Field(discriminator="edit"),
]  # fmt: skip


# ------------------------------------------------------------------ making the spec


def edited_spec(spec: Mapping[str, Any], edits: Sequence[TargetingEdit]) -> tuple[Spec, str]:
    """The new full spec after the edits, in order, and the words for them ("exclude
    ages 55-64 and 65+; exclude female"). `spec` itself is left as it is."""
    if not edits:
        raise EditChangesNothing("no edit was given")
    new: Spec = deepcopy(dict(spec))
    words = []
    for edit in edits:
        new, said = edit_spec(new, edit)
        words.append(said)
    return new, "; ".join(words)


def edit_spec(
    spec: Mapping[str, Any], edit: TargetingEdit, *, special_ad_categories: Iterable[str] = ()
) -> tuple[Spec, str]:
    """The new full spec after one edit, and its words. `special_ad_categories`: the
    campaign's — housing, employment and credit allow no age or gender edit."""
    if isinstance(edit, ExcludeAgeBands | ExcludeGender) and (
        RESTRICTING_CATEGORIES & set(special_ad_categories)
    ):
        raise RestrictedByCategory(SPECIAL_CATEGORY_WORDS)
    new: Spec = deepcopy(dict(spec))
    if isinstance(edit, ExcludeAgeBands):
        return _exclude_ages(new, edit.bands)
    if isinstance(edit, ExcludeGender):
        return _exclude_gender(new, edit.gender)
    if isinstance(edit, ExcludePlacement):
        if edit.impression_device is not None:
            return _exclude_device(new, edit.impression_device)
        assert edit.publisher_platform is not None
        if edit.platform_position is not None:
            return _exclude_position(new, edit.publisher_platform, edit.platform_position)
        return _exclude_platform(new, edit.publisher_platform)
    if isinstance(edit, ExcludeCountry):
        return _exclude_country(new, edit.country)
    if isinstance(edit, ExcludeRegion):
        return _exclude_region(new, edit)
    return _add_country(new, edit.country)


def _exclude_ages(spec: Spec, bands: Sequence[str]) -> tuple[Spec, str]:
    low, high = spec.get("age_min", 18), spec.get("age_max", AGE_LIMITS[1])
    reached = [b for b, (first, last) in AGE_BANDS.items() if first <= high and last >= low]
    asked = [b for b in AGE_BANDS if b in set(bands)]  # in age order
    gone = [b for b in asked if b in reached]
    named = _and(asked)
    if not gone:
        raise EditChangesNothing(f"ages {named} are not targeted now (ages {_ages(low, high)})")
    if len(gone) == len(reached):
        raise EditLeavesNoOne(
            f"excluding ages {named} leaves no age to deliver to (ages {_ages(low, high)})"
        )
    kept = [b for b in reached if b not in gone]
    first, last = reached.index(kept[0]), reached.index(kept[-1])
    if kept != reached[first : last + 1]:
        middle = [b for b in gone if reached.index(b) > first and reached.index(b) < last]
        raise AgeBandInMiddle(
            f"ages {_and(middle)} lie inside the targeted ages {_ages(low, high)}: Meta's "
            "targeting has only a minimum and a maximum age, so only the youngest or oldest "
            "bands can be excluded"
        )
    spec["age_min"] = max(low, AGE_BANDS[kept[0]][0])
    spec["age_max"] = min(high, AGE_BANDS[kept[-1]][1])
    return spec, f"exclude ages {_and(gone)}"


def _exclude_gender(spec: Spec, gender: str) -> tuple[Spec, str]:
    codes = {name: code for code, name in GENDER_CODES.items()}
    targeted = set(spec.get("genders") or GENDER_CODES)
    if codes[gender] not in targeted:
        raise EditChangesNothing(f"{gender} is not targeted now")
    left = sorted(targeted - {codes[gender]})
    if not left:
        raise EditLeavesNoOne(f"excluding {gender} leaves no gender to deliver to")
    spec["genders"] = left
    return spec, f"exclude {gender}"


def _platforms(spec: Spec) -> list[str]:
    return list(spec.get("publisher_platforms") or PLATFORMS)


def _exclude_platform(spec: Spec, platform: str) -> tuple[Spec, str]:
    if platform not in POSITIONS:
        raise NotTargetable(f"{platform!r} is not a platform Rex can target ({_and(PLATFORMS)})")
    platforms = _platforms(spec)
    if platform not in platforms:
        raise EditChangesNothing(f"{platform} is not among the placements now")
    left = [p for p in platforms if p != platform]
    if not left:
        raise EditLeavesNoOne(f"excluding {platform} leaves no platform to deliver to")
    spec["publisher_platforms"] = left
    spec.pop(f"{platform}_positions", None)
    return spec, f"exclude {platform}"


def _exclude_position(spec: Spec, platform: str, position: str) -> tuple[Spec, str]:
    names = POSITIONS.get(platform)
    by_breakdown = {shown: name for name, shown in (names or {}).items()}
    if names is None or position not in by_breakdown:
        raise NotTargetable(f"{position!r} is not a position of {platform!r} Rex can target")
    platforms = _platforms(spec)
    key = f"{platform}_positions"
    positions = list(spec.get(key) or names)
    name = by_breakdown[position]
    if platform not in platforms or name not in positions:
        raise EditChangesNothing(f"{platform} {position} is not among the placements now")
    left = [p for p in positions if p != name]
    spec["publisher_platforms"] = platforms
    if left:
        spec[key] = left
        return spec, f"exclude {platform} {position}"
    spec, _ = _exclude_platform(spec, platform)  # its last position: the platform goes
    return spec, f"exclude {platform} {position}"


def _exclude_device(spec: Spec, device: str) -> tuple[Spec, str]:
    name = next((n for n, shown in DEVICES.items() if device in shown or device == n), None)
    if name is None:
        raise NotTargetable(f"{device!r} is not a device Rex can target")
    if device != name and len(DEVICES[name]) > 1:
        others = _and([d for d in DEVICES[name] if d != device])
        raise NotTargetable(
            f"{device} cannot be excluded alone: Meta's targeting names only {name} devices, "
            f"which include {others}"
        )
    devices = list(spec.get("device_platforms") or DEVICES)
    if name not in devices:
        raise EditChangesNothing(f"{device} is not among the placements now")
    left = [d for d in devices if d != name]
    if not left:
        raise EditLeavesNoOne(f"excluding {device} leaves no device to deliver to")
    spec["device_platforms"] = left
    return spec, f"exclude {device}"


def _geo(spec: Spec, side: str) -> dict[str, Any]:
    found = spec.get(side)
    geo = dict(found) if isinstance(found, Mapping) else {}
    spec[side] = geo
    return geo


def _exclude_country(spec: Spec, country: str) -> tuple[Spec, str]:
    geo, excluded = _geo(spec, "geo_locations"), _geo(spec, "excluded_geo_locations")
    countries = list(geo.get("countries") or [])
    if country in (excluded.get("countries") or []):
        raise EditChangesNothing(f"{country} is already excluded")
    regions = list(geo.get("regions") or [])
    if country in countries:  # targeted by name: it leaves the list, with its regions
        geo["countries"] = [c for c in countries if c != country]
        geo["regions"] = [r for r in regions if _country_of(r) != country]
        for key in ("countries", "regions"):
            if not geo[key]:
                del geo[key]
    elif any(_country_of(r) == country for r in regions):
        excluded["countries"] = [*(excluded.get("countries") or []), country]
    else:
        raise EditChangesNothing(f"{country} is not targeted now")
    if not _reached(geo, excluded):
        raise EditLeavesNoOne(f"excluding {country} leaves no location to deliver to")
    if not excluded:
        del spec["excluded_geo_locations"]
    return spec, f"exclude {country}"


def _reached(geo: Mapping[str, Any], excluded: Mapping[str, Any]) -> bool:
    """Whether a location is left: a country not excluded, a region not in an excluded
    country, or a city."""
    out = set(excluded.get("countries") or [])
    return (
        bool(set(geo.get("countries") or []) - out)
        or any(_country_of(r) not in out for r in geo.get("regions") or [])
        or bool(geo.get("cities"))
    )


def _exclude_region(spec: Spec, edit: ExcludeRegion) -> tuple[Spec, str]:
    geo, excluded = _geo(spec, "geo_locations"), _geo(spec, "excluded_geo_locations")
    regions = list(geo.get("regions") or [])
    if any(str(r.get("key")) == edit.key for r in excluded.get("regions") or []):
        raise EditChangesNothing(f"{edit.name} is already excluded")
    if any(str(r.get("key")) == edit.key for r in regions):
        geo["regions"] = [r for r in regions if str(r.get("key")) != edit.key]
        if not geo["regions"]:
            del geo["regions"]
        if not _reached(geo, excluded):
            raise EditLeavesNoOne(f"excluding {edit.name} leaves no location to deliver to")
    elif edit.country in (geo.get("countries") or []) and edit.country not in (
        excluded.get("countries") or []
    ):
        excluded["regions"] = [*(excluded.get("regions") or []), {"key": edit.key}]
    else:
        raise EditChangesNothing(f"{edit.name} ({edit.country}) is not targeted now")
    if not excluded:
        del spec["excluded_geo_locations"]
    return spec, f"exclude {edit.name}"


def _add_country(spec: Spec, country: str) -> tuple[Spec, str]:
    geo, excluded = _geo(spec, "geo_locations"), _geo(spec, "excluded_geo_locations")
    countries = list(geo.get("countries") or [])
    if country in countries:
        raise EditChangesNothing(f"{country} is targeted already")
    geo["countries"] = [*countries, country]
    if country in (excluded.get("countries") or []):
        excluded["countries"] = [c for c in excluded["countries"] if c != country]
        if not excluded["countries"]:
            del excluded["countries"]
    if not excluded:
        del spec["excluded_geo_locations"]
    return spec, f"add {country}"


def _country_of(region: Any) -> str | None:
    return region.get("country") if isinstance(region, Mapping) else None


def _ages(low: int, high: int) -> str:
    return f"{low}–{high}+" if high >= AGE_LIMITS[1] else f"{low}–{high}"


def _and(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def same_spec(first: Any, second: Any) -> bool:
    """Whether two specs (or schedules) say the same: key order and the order of lists
    (countries, platforms, days) do not matter."""
    return _canonical(first) == _canonical(second)


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        items = [_canonical(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return value


# ------------------------------------------------------------------------ schedules


class NoHoursLeft(TargetingEditError):
    """A schedule without any hour: the ad set would never deliver."""


def schedule_for_hours(hours: Iterable[int]) -> list[dict[str, Any]]:
    """An `adset_schedule` delivering in the given hours (0–23, account time) on all 7
    days: one block per run of consecutive hours."""
    kept = sorted(set(hours))
    if any(not isinstance(h, int) or not 0 <= h <= 23 for h in kept):
        raise NotTargetable("hours of the day are 0 to 23")
    if not kept:
        raise NoHoursLeft("a schedule needs at least one hour: the ad set would never deliver")
    return [
        {"start_minute": start * 60, "end_minute": end * 60, "days": list(DAYS),
         "timezone_type": TIMEZONE_TYPE}
        for start, end in _runs(kept)
    ]  # fmt: skip


def hours_of(schedule: Iterable[Mapping[str, Any]] | None) -> frozenset[int] | None:
    """The hours a schedule delivers in on every day (None: no schedule, or one whose
    days differ — `schedule_words` says those)."""
    blocks = list(schedule or [])
    if not blocks:
        return None
    if any(sorted(b.get("days") or []) != DAYS for b in blocks):
        return None
    return frozenset(
        h for b in blocks for h in range(int(b["start_minute"]) // 60, int(b["end_minute"]) // 60)
    )


def hours_words(hours: Iterable[int]) -> str:
    """{6, …, 22} → "06:00–23:00 every day"."""
    kept = sorted(set(hours))
    if not kept:
        return "no hours"
    if len(kept) == 24:
        return "all hours, every day"
    return _and([f"{start:02d}:00–{end:02d}:00" for start, end in _runs(kept)]) + " every day"


_DAY_NAMES = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")


def schedule_words(schedule: Iterable[Mapping[str, Any]] | None) -> str:
    """Any schedule in words; none → "all hours (no schedule)"."""
    blocks = list(schedule or [])
    if not blocks:
        return "all hours (no schedule)"
    hours = hours_of(blocks)
    if hours is not None:
        return hours_words(hours)
    return "; ".join(
        f"{int(b['start_minute']) // 60:02d}:00–{int(b['end_minute']) // 60:02d}:00 "
        + ", ".join(_DAY_NAMES[d] for d in sorted(b.get("days") or []))
        for b in blocks
    )


def _runs(hours: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted hours → [start, end) runs of consecutive hours."""
    runs: list[tuple[int, int]] = []
    for hour in hours:
        if runs and runs[-1][1] == hour:
            runs[-1] = (runs[-1][0], hour + 1)
        else:
            runs.append((hour, hour + 1))
    return runs


# ------------------------------------------------------------------------- in words


def spec_words(spec: Mapping[str, Any] | None) -> str:
    """A spec in a few words for the record: "ages 18–65+, all genders, US, CA;
    Advantage+ placements"."""
    if spec is None:
        return "not known"
    low, high = spec.get("age_min", 18), spec.get("age_max", AGE_LIMITS[1])
    genders = spec.get("genders")
    parts = [
        f"ages {_ages(low, high)}",
        "all genders"
        if not genders or set(genders) >= set(GENDER_CODES)
        else _and([GENDER_CODES.get(g, str(g)) for g in genders]),
    ]
    places = _places(spec.get("geo_locations"))
    parts.append(", ".join(places) if places else "no location")
    left_out = _places(spec.get("excluded_geo_locations"))
    if left_out:
        parts.append("not " + ", ".join(left_out))
    placements = [*(spec.get("publisher_platforms") or []), *(spec.get("device_platforms") or [])]
    shown = ", ".join(parts)
    return shown + "; " + (", ".join(placements) if placements else "Advantage+ placements")


def _places(geo: Any) -> list[str]:
    if not isinstance(geo, Mapping):
        return []
    regions = [str(r.get("name") or r.get("key")) for r in geo.get("regions") or []]
    return [*(geo.get("countries") or []), *regions]


def spec_differences(first: Mapping[str, Any], second: Mapping[str, Any]) -> list[str]:
    """The top-level fields in which two specs differ ("age_max", "genders")."""
    return sorted(
        key for key in set(first) | set(second) if not same_spec(first.get(key), second.get(key))
    )
