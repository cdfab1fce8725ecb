"""What Rex tells people: the one catalogue of notification events.

Each event says who hears it (the people with this permission on the account: a
rule's notification reaches everyone who reads the account, proposals only those who
may decide them), which page its link opens and whether a person hears it unless they
turn it off. Imports nothing of the database or the settings (the settings validate
REX_TEAM_EVENTS with it).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.access.roles import Permission
from core.errors import InputError


class Event(StrEnum):
    """`notifications.kind`."""

    RULE_NOTIFY = "rule_notify"
    ACTION_FAILED = "action_failed"
    ACCOUNT_HELD = "account_held"
    OUTCOME_UNKNOWN = "outcome_unknown"
    APPROVALS_WAITING = "approvals_waiting"
    DIGEST = "digest"


@dataclass(frozen=True)
class EventKind:
    event: Event
    label: str  # what a person ticks in their preferences
    explains: str
    page: str  # the page its link opens (a Streamlit url path)
    hears: Permission = Permission.READ
    default_on: bool = True


EVENTS: dict[Event, EventKind] = {
    k.event: k
    for k in (
        EventKind(
            Event.RULE_NOTIFY,
            "A rule's notify action",
            "a rule whose action is notify matched: the entity and its values",
            "executions",
        ),
        EventKind(
            Event.ACTION_FAILED,
            "An action failed",
            "Meta refused a change a rule or a person made, or it was not applied",
            "executions",
        ),
        EventKind(
            Event.ACCOUNT_HELD,
            "An account needs reconnecting",
            "Meta rejected an account's token: Rex holds it until it is reconnected",
            "accounts",
        ),
        EventKind(
            Event.OUTCOME_UNKNOWN,
            "A change needs checking",
            "Rex cannot tell whether Meta applied a change",
            "executions",
        ),
        EventKind(
            Event.APPROVALS_WAITING,
            "Proposals wait for approval",
            "changes wait for an approver of the account",
            "approvals",
            hears=Permission.DECIDE_APPROVALS,
        ),
        EventKind(
            Event.DIGEST,
            "Daily digest",
            "once a day at your hour: actions and money moved, approvals waiting, "
            "new suggestions, outcomes measured",
            "/",  # the Overview: the app's first page
            default_on=False,
        ),
    )
}

# the seed's kinds, read as the events they are
LEGACY_KINDS = {"token_invalid": Event.ACCOUNT_HELD}


def event_of(kind: str) -> EventKind:
    return EVENTS[Event(LEGACY_KINDS.get(kind, kind))]


def event_kinds(words: str | list[str], *, field: str = "events") -> list[Event]:
    """Events from a comma-separated list (or a list), or InputError naming them all."""
    named = [w.strip() for w in (words.split(",") if isinstance(words, str) else words)]
    events = []
    for word in filter(None, named):
        try:
            events.append(Event(LEGACY_KINDS.get(word, word)))
        except ValueError:
            raise InputError(
                field, f"{word!r} is not an event: use {', '.join(e.value for e in Event)}"
            ) from None
    return sorted(set(events), key=list(Event).index)
