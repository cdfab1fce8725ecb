"""Display names and number formats: what people read instead of Meta's raw values.

One catalogue for the breakdown values as Meta sends them (publisher platforms,
placement positions, impression devices, genders, age brackets, countries, hours and
weekdays) and one way to show a metric's value (percentages with %, money with its
currency, ratios with two decimals, counts with thousands separators). The breakdown
tables, charts and CSVs, the Overview and the Health page all read from here, so a value
is named the same everywhere. A value the catalogue does not know (Meta adds placements)
is shown readably from its code: `facebook_profile_reels` → "Facebook profile reels".

Rex's own records in words too, for every page and module that shows them (the activity
feed, the approval queue, notifications): an account's label, an action's kind, the
numbers that triggered a proposal, an entity's link to Ads Manager.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from core.actions.kinds import ROLLBACK_PREFIX, UnknownActionError, is_rollback, kind_of
from core.ids import account_digits
from core.money import decimals, format_money
from core.rules.describe import describe_value_key, explain_condition, format_value
from core.rules.document import Condition
from core.rules.metrics import METRICS, Unit
from core.settings import is_loopback

PLATFORMS = {
    "facebook": "Facebook",
    "instagram": "Instagram",
    "audience_network": "Audience Network",
    "messenger": "Messenger",
    "threads": "Threads",
    "whatsapp": "WhatsApp",
    "oculus": "Meta Quest",
    "unknown": "Unknown",
}
POSITIONS = {
    "feed": "Feed",
    "right_hand_column": "Right column",
    "marketplace": "Marketplace",
    "video_feeds": "Video feeds",
    "story": "Stories",
    "facebook_stories": "Facebook Stories",
    "search": "Search results",
    "instream_video": "In-stream videos",
    "facebook_reels": "Facebook Reels",
    "facebook_reels_overlay": "Ads on Facebook Reels",
    "profile_feed": "Profile feed",
    "notification": "Notifications",
    "instant_article": "Instant Articles",
    "biz_disco_feed": "Business Explore",
    "instagram_stories": "Instagram Stories",
    "instagram_explore": "Instagram Explore",
    "instagram_explore_grid_home": "Instagram Explore home",
    "instagram_reels": "Instagram Reels",
    "instagram_profile_feed": "Instagram profile feed",
    "instagram_profile_reels": "Instagram profile reels",
    "instagram_search": "Instagram search results",
    "messenger_inbox": "Messenger inbox",
    "messenger_stories": "Messenger Stories",
    "sponsored_messages": "Sponsored messages",
    "an_classic": "Native, banner and interstitial",
    "classic": "Native, banner and interstitial",
    "rewarded_video": "Rewarded videos",
    "threads_feed": "Threads feed",
    "all_placements": "All placements",
    "unknown": "Unknown",
}
DEVICES = {
    "android_smartphone": "Android phone",
    "android_tablet": "Android tablet",
    "iphone": "iPhone",
    "ipad": "iPad",
    "ipod": "iPod",
    "desktop": "Desktop",
    "mobile_web": "Mobile web",
    "connected_tv": "Connected TV",
    "other": "Other",
    "unknown": "Unknown",
}
GENDERS = {"female": "Female", "male": "Male", "unknown": "Unknown"}
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# pycountry's names where people say it shorter (or where ISO has no code: Kosovo)
_COUNTRY_NAMES = {
    "RU": "Russia",
    "XK": "Kosovo",
    "PS": "Palestine",
    "CD": "DR Congo",
    "CG": "Congo",
    "BN": "Brunei",
    "FM": "Micronesia",
    "TR": "Turkey",
}
# the breakdown's key → its column heading
DIMENSIONS = {
    "age": "Age",
    "gender": "Gender",
    "platform": "Platform",
    "position": "Position",
    "device": "Device",
    "country": "Country",
    "region": "Region",
    "dma": "DMA",
    "weekday": "Weekday",
    "hour": "Hour",
}


def readable(code: str) -> str:
    """An unknown code, readably: `facebook_profile_reels` → "Facebook profile reels"."""
    text = code.replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else "—"


def platform_name(code: str) -> str:
    return PLATFORMS.get(code) or readable(code)


def position_name(code: str) -> str:
    return POSITIONS.get(code) or readable(code)


def device_name(code: str) -> str:
    return DEVICES.get(code) or readable(code)


def gender_name(code: str) -> str:
    return GENDERS.get(code) or readable(code)


def age_name(code: str) -> str:
    """Meta's age brackets ("18-24", "65+", "Unknown") with an en dash: "18–24"."""
    return "Unknown" if code.lower() == "unknown" else code.replace("-", "–")


def country_name(code: str) -> str:
    """ISO 3166 alpha-2 (as Meta's country breakdown sends it) → the country's name."""
    upper = code.upper()
    if upper in _COUNTRY_NAMES:
        return _COUNTRY_NAMES[upper]
    if len(upper) == 2 and upper.isalpha():
        import pycountry  # loads its tables on first use

        country = pycountry.countries.get(alpha_2=upper)
        if country is not None:
            return getattr(country, "common_name", None) or country.name
    return "Unknown" if code.lower() == "unknown" else code


def hour_name(hour: int) -> str:
    """An hour of the day as Meta's hourly breakdown means it: "13:00–13:59"."""
    return f"{hour:02d}:00–{hour:02d}:59"


def weekday_name(weekday: int) -> str:
    return WEEKDAY_NAMES[weekday]


_NAMERS = {
    "age": age_name,
    "gender": gender_name,
    "platform": platform_name,
    "position": position_name,
    "device": device_name,
    "country": country_name,
}


def value_name(dimension: str, value: object) -> str:
    """The display name of one breakdown value (`("device", "iphone")` → "iPhone")."""
    if dimension in ("hour", "weekday"):
        number = int(value) if isinstance(value, int | float) else int(str(value))
        return hour_name(number) if dimension == "hour" else weekday_name(number)
    namer = _NAMERS.get(dimension)
    text = str(value)
    return namer(text) if namer else text  # regions and DMAs come named from Meta


# the parts of a suggestion's segment (core/suggestions/detect.py dimensions) as
# breakdown keys above
SEGMENT_PARTS = {
    "age_gender": ("age", "gender"),
    "age": ("age",),
    "gender": ("gender",),
    "placement": ("platform", "position", "device"),
    "publisher_platform": ("platform",),
    "impression_device": ("device",),
    "country": ("country",),
    "region": ("region",),
    "dma": ("dma",),
    "hour": ("hour",),
}


def segment_name(dimension: str, segment: tuple[str, ...] | list[str]) -> str:
    """A suggestion's segment in words: ("25-34", "female") → "Female 25–34";
    ("audience_network", "classic", "iphone") → "Audience Network · Classic · iPhone"."""
    if dimension == "hour" and len(segment) > 1:  # a block of hours: "01:00–05:59"
        hours = sorted(int(h) for h in segment)
        runs: list[list[int]] = []
        for hour in hours:
            if runs and hour == runs[-1][-1] + 1:
                runs[-1].append(hour)
            else:
                runs.append([hour])
        return ", ".join(f"{r[0]:02d}:00–{r[-1]:02d}:59" for r in runs)
    parts = SEGMENT_PARTS.get(dimension, (dimension,) * len(segment))
    names = [value_name(part, value) for part, value in zip(parts, segment, strict=False)]
    if dimension == "age_gender" and len(names) == 2:
        return f"{names[1]} {names[0]}"
    if dimension == "age":
        return f"ages {names[0]}"
    return " · ".join(names)


# ------------------------------------------------------------------ numbers


def metric_title(metric: str, currency: str) -> str:
    """An axis or column title that says the unit: "CTR (%)", "CPA (USD)", "ROAS"."""
    definition = METRICS[metric]
    if definition.unit == Unit.MONEY:
        return f"{definition.label} ({currency})"
    if definition.unit == Unit.PERCENT:
        return f"{definition.label} (%)"
    return definition.label


def format_percent(value: Decimal | float | None, places: int = 2) -> str:
    """A value already in percent (0–100): `1.4656` → "1.47 %"; None → "—"."""
    return "—" if value is None else f"{float(value):,.{places}f} %"


def format_share(value: float | None) -> str:
    """A share 0–1 as a percentage: `0.95` → "95 %", `0.9567` → "95.7 %"; None → "—"."""
    if value is None:
        return "—"
    percent = value * 100
    return f"{percent:.0f} %" if abs(percent - round(percent)) < 0.05 else f"{percent:.1f} %"


def format_metric(metric: str, value: Decimal | None, currency: str) -> str:
    """A metric's value as people read it: money with its currency, percentages with %,
    ratios with two decimals, counts with thousands separators; undefined is "—"."""
    if value is None:
        return "—"
    unit = METRICS[metric].unit
    if unit == Unit.MONEY:
        return format_money(Decimal(value), currency)
    if unit == Unit.PERCENT:
        return format_percent(value)
    if unit == Unit.RATIO:
        return f"{Decimal(value):,.2f}"
    return f"{int(value):,}"


def metric_places(metric: str, currency: str) -> int:
    """Decimals worth showing for a metric: the currency's for money, 2 for ratios and
    percentages, none for counts."""
    unit = METRICS[metric].unit
    if unit == Unit.MONEY:
        return decimals(currency)
    return 0 if unit == Unit.COUNT else 2


def number_format(metric: str, currency: str) -> str:
    """A printf format for a table column of the metric (Streamlit's NumberColumn)."""
    places = metric_places(metric, currency)
    suffix = " %%" if METRICS[metric].unit == Unit.PERCENT else ""
    return f"%.{places}f{suffix}"


def hover_value(metric: str, currency: str, field: str = "y") -> str:
    """A plotly hover-template placeholder with the metric's unit: "%{y:,.2f} USD"."""
    places = metric_places(metric, currency)
    unit = METRICS[metric].unit
    suffix = f" {currency}" if unit == Unit.MONEY else " %" if unit == Unit.PERCENT else ""
    return f"%{{{field}:,.{places}f}}{suffix}"


def format_duration(ms: float | None) -> str:
    """A duration as people read it: "850 ms", "4.2 s", "3.5 min", "2.0 h"; None → "—"."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def format_time(at: datetime | str | None) -> str:
    """A UTC timestamp to the second ("2026-11-20 18:30:05 UTC"), also from ISO text."""
    if at is None or at == "":
        return "—"
    if isinstance(at, str):
        try:
            parsed = datetime.fromisoformat(at)
        except ValueError:
            return at
        return f"{parsed:%Y-%m-%d %H:%M:%S} UTC"
    return f"{at:%Y-%m-%d %H:%M:%S} UTC"


# ------------------------------------------------------ Rex's own records, in words


def account_label(name: str | None, external_id: str | None) -> str:
    if name and external_id and name != external_id:
        return f"{name} ({external_id})"
    return external_id or name or "—"


def action_words(action_type: str) -> str:
    """`change_budget` → "change budget"; `rollback_pause` → "undo pause"."""
    try:
        words = kind_of(action_type).words
    except UnknownActionError:
        words = action_type.removeprefix(ROLLBACK_PREFIX).replace("_", " ")
    return f"undo {words}" if is_rollback(action_type) else words


def triggering_numbers(justification: dict[str, Any] | None, currency: str | None) -> list[str]:
    """Why a rule proposed a change, in words (core.rules.describe): each condition as the
    trace says it ("ROAS over the last 7 days is 4.19, above 3"), then the other values
    the rule looked at ("Daily budget: 200.00 USD")."""
    justification = justification or {}
    values: dict[str, Any] = dict(justification.get("values") or {})
    words = []
    for judged in justification.get("conditions") or []:
        metric, window = judged.get("metric", ""), judged.get("window")
        key = f"{metric}@{window}" if window else metric
        values.pop(key, None)
        words.append(_condition_words(judged, currency))
    for key, value in sorted(values.items()):
        value_text = format_value(key.partition("@")[0], value, currency)
        words.append(f"{describe_value_key(key)}: {value_text}")
    return words


def _condition_words(judged: dict[str, Any], currency: str | None) -> str:
    """A stored judged condition in words; its threshold is the number it was compared
    with (a reference's value, when the rule compared with another metric)."""
    metric, window = judged.get("metric", ""), judged.get("window")
    try:
        expected = _decimal(judged.get("expected"))
        condition = Condition.model_validate(
            {"metric": metric, "window": window, "op": judged.get("op"), "value": expected}
        )
        return explain_condition(
            condition,
            actual=_decimal(judged.get("actual")),
            expected=expected,
            held=bool(judged.get("held")),
            undefined=judged.get("undefined"),
            currency=currency,
        )
    except (ValueError, KeyError, TypeError, InvalidOperation):  # a condition Rex no longer reads
        key = f"{metric}@{window}" if window else metric
        actual = judged.get("undefined") or format_value(metric, judged.get("actual"), currency)
        return f"{describe_value_key(key)}: {actual}"


def _decimal(value: Any) -> Any:
    """The trace keeps numbers as exact text ("4.2007"): back to Decimal (lists too)."""
    if isinstance(value, list):
        return [_decimal(v) for v in value]
    return None if value is None else Decimal(str(value))


_ADS_MANAGER = "https://adsmanager.facebook.com/adsmanager/manage"
_ADS_MANAGER_LEVELS = {
    "campaign": ("campaigns", "selected_campaign_ids"),
    "adset": ("adsets", "selected_adset_ids"),
    "ad": ("ads", "selected_ad_ids"),
}


def ads_manager_url(level: str | None, account_external_id: str, entity_id: str | None) -> str:
    """The entity in Meta's Ads Manager (the account's act_ digits, the entity selected)."""
    if level not in _ADS_MANAGER_LEVELS or not entity_id:
        return ""
    path, parameter = _ADS_MANAGER_LEVELS[level]
    digits = account_digits(account_external_id)
    return f"{_ADS_MANAGER}/{path}?act={digits}&{parameter}={entity_id}"


def is_sandbox(graph_url: str | None) -> bool:
    """An account served by a sandbox (its Graph URL on loopback) has no Ads Manager."""
    if graph_url is None:
        from core.settings import get_settings

        graph_url = get_settings().graph_base_url
    return is_loopback(urlsplit(graph_url).hostname or "")
