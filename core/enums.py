"""Rex's own statuses and levels, importing nothing (so a rule document, a page or the
CLI can name them without loading SQLAlchemy or the settings).

These are the values Rex stores in its status and level columns and writes in its JSON
(rule documents, the record's traces): each member *is* its lower-case string
(`StrEnum`), so `RuleStatus.ACTIVE == "active"` and a document or a row written before
the columns were enum-typed reads back the same. The ORM maps each column to its enum
(core/db/types.py `enum_column`); core/db/models.py re-exports them for the code that
imports them from there.

Meta's own statuses (`ACTIVE`, `PAUSED`, `effective_status` …, upper-case Graph API
values) are not Rex statuses: they stay plain strings, as Meta sends them.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Literal, get_args


class Level(StrEnum):
    """The level a rule works at and an entity sits at, from the top down (a campaign
    holds ad sets, an ad set holds ads): iterating `Level` gives parents first."""

    CAMPAIGN = "campaign"
    ADSET = "adset"
    AD = "ad"


class TokenStatus(StrEnum):
    """`ad_accounts.token_status`."""

    OK = "ok"
    NEEDS_RECONNECT = "needs_reconnect"
    REMOVED = "removed"  # the account was removed from Rex: its token is wiped


class RuleStatus(StrEnum):
    """`automation_rules.status`: the document's status (active, paused, draft), or
    `deleted` — a rule taken off the list whose record (versions, executions, actions)
    stays. Only `active` rules are scheduled."""

    ACTIVE = "active"
    PAUSED = "paused"
    DRAFT = "draft"
    DELETED = "deleted"


# The statuses a rule document may state (`deleted` is the store's, never a document's).
DocumentStatus = Literal[RuleStatus.ACTIVE, RuleStatus.PAUSED, RuleStatus.DRAFT]
DOCUMENT_STATUSES: tuple[DocumentStatus, ...] = get_args(DocumentStatus)


class SyncStatus(StrEnum):
    """`sync_runs.status` and `ad_accounts.last_sync_status`."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ActionStatus(StrEnum):
    """`action_history.status`: an intent is `pending`, then `sending` (sent_at set just
    before the call goes out), then what Meta answered — or `unknown` until Rex has read
    Meta. `pending`, `sending` and `unknown` count toward cooldowns and caps like a
    success and hold back other writes to the entity until settled."""

    PENDING = "pending"  # intent recorded, not sent yet
    SENDING = "sending"  # the call is going out (or went out) and has not been answered
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # Meta refused, or Meta's record shows it was not applied
    UNKNOWN = "unknown"  # sent, the answer lost or unreadable: settled by reading Meta
    DEFERRED = "deferred"  # not sent (rate limit, token, key, the runner stopped first)
    DRY_RUN = "dry_run"  # "would …": the rule is in dry run
    SKIPPED = "skipped"  # not sent: cooldown, cap, no change, budget on the campaign …


UNSETTLED = (ActionStatus.PENDING, ActionStatus.SENDING, ActionStatus.UNKNOWN)


class ExecutionStatus(StrEnum):
    """`rule_executions.status`."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"  # some actions failed
    FAILED = "failed"
    SKIPPED = "skipped"  # not evaluated (stale data, account needs reconnect …)


class ApprovalStatus(StrEnum):
    """`pending_actions.status`."""

    PENDING = "pending"
    APPROVED = "approved"  # and executed (see action_id)
    REJECTED = "rejected"
    EXPIRED = "expired"
    STALE = "stale"  # the entity changed since the proposal


class SuggestionStatus(StrEnum):
    """`rex_suggestions.status`: a suggestion's life (core/suggestions/records.py)."""

    NEW = "new"  # open: found, not yet decided
    QUEUED = "queued"  # open: applied, waiting in the approval queue
    APPLIED = "applied"  # its change was written (see action_id)
    DISMISSED = "dismissed"  # by a person, with a reason
    EXPIRED = "expired"  # the evidence no longer holds
    SUPERSEDED = "superseded"  # a newer suggestion proposes another change to the same


OPEN_SUGGESTIONS = (SuggestionStatus.NEW, SuggestionStatus.QUEUED)


class DeliveryStatus(StrEnum):
    """`notification_deliveries.status`: one message on one channel (core/notify/deliver.py).
    `sending` is claimed by a scheduler; `unknown`: it stopped after the message may have
    left, so Rex does not send it again by itself (at most once)."""

    PENDING = "pending"  # waiting for its time (quiet hours, a retry's backoff)
    SENDING = "sending"  # claimed; in_flight_at set just before the message leaves
    SENT = "sent"  # the receiver accepted it
    FAILED = "failed"  # refused for good, or still failing after the last retry
    UNKNOWN = "unknown"  # the sender stopped mid-send: it may or may not have arrived
    SKIPPED = "skipped"  # not sent: the person lost access or turned it off meanwhile


def spoken(members: Iterable[StrEnum]) -> str:
    """The values as a sentence lists them, for messages: "active, paused or draft"."""
    values = [member.value for member in members]
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"
