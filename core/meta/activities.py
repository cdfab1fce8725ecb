"""Meta's change history (`GET /act_{id}/activities`) as Rex reads it.

Each entry says what changed (`event_type`), on which object, when, and through which
application: the evidence Rex uses to learn whether a write whose answer was lost was
applied (see core/actions/settle.py). In Meta's activity log `campaign` means an ad set
and `campaign_group` a campaign; the event types Rex's writes produce are listed in
`EVENT_TYPES`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.enums import Level

ACTIVITY_FIELDS = (
    "event_time",
    "event_type",
    "object_id",
    "object_name",
    "application_id",
    "application_name",
    "actor_name",
    "extra_data",
)

# (level, what changed) → Meta's event type
EVENT_TYPES: dict[tuple[Level, str], str] = {
    (Level.CAMPAIGN, "status"): "update_campaign_run_status",
    (Level.ADSET, "status"): "update_ad_set_run_status",
    (Level.AD, "status"): "update_ad_run_status",
    (Level.CAMPAIGN, "budget"): "update_campaign_budget",
    (Level.ADSET, "budget"): "update_ad_set_budget",
    (Level.CAMPAIGN, "create"): "create_campaign_group",
    (Level.ADSET, "create"): "create_ad_set",
    (Level.AD, "create"): "create_ad",
    (Level.ADSET, "targeting"): "update_ad_set_target_spec",
    (Level.ADSET, "schedule"): "update_ad_set_ad_schedule",
}


@dataclass(frozen=True)
class Activity:
    event_time: datetime
    event_type: str
    object_id: str
    object_name: str | None = None
    application_id: str | None = None
    application_name: str | None = None
    actor_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def new_value(self) -> Any:
        """The value the change set, where Meta says (extra_data's `new_value`)."""
        return self.extra.get("new_value")

    @classmethod
    def from_graph(cls, raw: Any) -> Activity | None:
        """An entry as Meta sends it; None when it lacks what Rex needs to use it."""
        from core.meta.objects import parse_meta_time

        if not isinstance(raw, Mapping):
            return None
        try:
            when = parse_meta_time(raw.get("event_time"))
        except ValueError:
            return None
        kind, object_id = raw.get("event_type"), raw.get("object_id")
        if when is None or not isinstance(kind, str) or not object_id:
            return None
        return cls(
            event_time=when,
            event_type=kind,
            object_id=str(object_id),
            object_name=_text(raw.get("object_name")),
            application_id=_text(raw.get("application_id")),
            application_name=_text(raw.get("application_name")),
            actor_name=_text(raw.get("actor_name")),
            extra=_extra(raw.get("extra_data")),
        )


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _extra(value: Any) -> dict[str, Any]:
    """extra_data is a JSON string (sometimes already an object, sometimes junk)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return dict(value) if isinstance(value, Mapping) else {}
