"""Meta's errors as classes, from one mapping function (`error_from_response`).

Callers decide on the class, never on message text:

| class                 | Meta codes                              | what Rex does           |
|-----------------------|-----------------------------------------|-------------------------|
| TransientError        | 1, 2, `is_transient`, HTTP 5xx, network | retry with backoff      |
| RateLimitedError      | 4, 17, 32, 341, 613, 80000–80014        | wait until the regain   |
| TokenInvalidError     | 190 (subcodes 458–467, 492), 102        | account needs reconnect |
| PermissionDeniedError | 10, 200–299                             | permanent (the object)  |
| ObjectGoneError       | 100 with subcode 33                     | permanent               |
| InvalidParameterError | 100 (other subcodes), 2635 …            | permanent; names field  |
| TargetingRefusedError | 100 blaming targeting / adset_schedule  | permanent; in words     |
| PolicyBlockedError    | 368                                     | permanent               |

Messages never contain the access token: the client does not put it into URLs, and
`GraphError` texts are built from Meta's error fields only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from core import clock
from core.errors import RexError
from core.ids import account_digits

RATE_LIMIT_CODES = frozenset({4, 17, 32, 341, 613}) | frozenset(range(80000, 80015))
TRANSIENT_CODES = frozenset({1, 2})
TOKEN_CODES = frozenset({102, 190})
PERMISSION_CODES = frozenset({10}) | frozenset(range(200, 300))
POLICY_CODES = frozenset({368})
OBJECT_GONE_SUBCODES = frozenset({33})
OBJECT_RATE_LIMIT_SUBCODES = frozenset({1487632})  # too many budget changes to one ad set
LOCATION_REQUIRED_SUBCODE = 1885364  # a targeting spec without a location
SCHEDULE_END_SUBCODE = 1885407  # a schedule on an ad set without an end date
# Meta's titles (`error_user_title`) for refusals of a targeting spec that carry no
# subcode of their own; the sandbox answers with the same ones.
ADVANTAGE_AGES_TITLE = "Age Range Not Available With Advantage+ Audience"
SPECIAL_CATEGORY_TITLE = "Targeting Not Available For Special Ad Category"
SPECIAL_CATEGORY_WORDS = (
    "This campaign is in a special ad category (housing, employment or credit): Meta does "
    "not allow age or gender targeting there — ages stay 18 to 65 and all genders are "
    "reached. Exclude by placement or location instead"
)
LIFETIME_BUDGET_TITLE = "Lifetime Budget Required"
TARGETING_FIELDS = ("targeting", "adset_schedule", "pacing_type")  # blamed → targeting refusal
DEPRECATED_VERSION_CODE = 2635
DEFAULT_RATE_LIMIT_WAIT = timedelta(minutes=5)


class GraphError(RexError):
    """Any failure talking to Meta's Graph API (or the sandbox).

    For a write, what the failure says about the write's outcome:
    * `sent` is False when the request certainly never reached Meta (a refused
      connection, a call held back by a rate limit on record): nothing happened;
    * `may_have_applied` (by class) is True when Meta may have applied the write although
      the answer says otherwise or was lost (5xx, transient codes, an unreadable answer,
      no answer): its outcome is unknown until Meta is read;
    * otherwise Meta refused it definitely (validation, permission, policy, token,
      a rate limit it answered with).
    """

    hint = "See the error message from Meta."
    may_have_applied = False

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        subcode: int | None = None,
        http_status: int | None = None,
        error_type: str | None = None,
        user_title: str | None = None,
        user_message: str | None = None,
        fbtrace_id: str | None = None,
        blamed_field: str | None = None,
    ) -> None:
        self.message = message
        self.code = code
        self.subcode = subcode
        self.http_status = http_status
        self.error_type = error_type
        self.user_title = user_title
        self.user_message = user_message
        self.fbtrace_id = fbtrace_id
        self.blamed_field = blamed_field
        self.sent = True
        super().__init__(self.describe())

    def not_sent(self) -> GraphError:
        """Mark this error as raised before the request went out; returns it."""
        self.sent = False
        return self

    @property
    def outcome_unknown(self) -> bool:
        """For a write: Meta may or may not have applied it (read Meta to find out)."""
        return self.sent and self.may_have_applied

    def describe(self) -> str:
        """One line for logs and records: what Meta said, its code, the field it blamed."""
        parts = [self.user_message or self.message]
        if self.user_message and self.message and self.message not in self.user_message:
            parts.append(f"({self.message})")
        tags = []
        if self.code is not None:
            tags.append(f"code {self.code}" + (f"/{self.subcode}" if self.subcode else ""))
        if self.blamed_field:
            tags.append(f"field {self.blamed_field}")
        if self.fbtrace_id:
            tags.append(f"trace {self.fbtrace_id}")
        return " ".join(parts) + (f" [{', '.join(tags)}]" if tags else "")

    def explain(self) -> str:
        """What happened and what to do, in words for the person using Rex."""
        return f"{self.describe()}. {self.hint}"


class TransientError(GraphError):
    """Meta could not answer now; the same call may succeed later. A write answered so
    may nevertheless have been applied."""

    hint = "Meta had a temporary problem; Rex retries on its own. If it persists, try later."
    may_have_applied = True


class ConnectionFailedError(TransientError):
    """No answer at all: DNS, refused connection, timeout. A write's outcome is unknown."""

    hint = (
        "Rex could not reach the Graph API. Check the network and the account's Graph URL; "
        "for a write, Rex checks Meta's current state before it tries again."
    )


class RateLimitedError(GraphError):
    """Meta throttles this app or account until `regain_at`."""

    hint = "Meta is throttling calls; Rex pauses calls to this account until the regain time."

    def __init__(self, message: str, *, regain_at: datetime, **kwargs: Any) -> None:
        self.regain_at = regain_at
        super().__init__(message, **kwargs)

    def describe(self) -> str:
        return f"{super().describe()} — calls resume at {self.regain_at:%Y-%m-%d %H:%M:%S} UTC"

    @property
    def object_level(self) -> bool:
        """A limit on one object, not the account: at most 4 budget changes an hour per
        ad set (613 / 1487632). That change is refused; other calls may go on."""
        return self.subcode in OBJECT_RATE_LIMIT_SUBCODES

    @property
    def retry_after_seconds(self) -> float:
        return max(0.0, (self.regain_at - clock.now()).total_seconds())


class TokenInvalidError(GraphError):
    """The access token is expired, revoked or wrong: only a person can fix it."""

    hint = (
        "The access token was rejected. Reconnect the account with a new token "
        "(Accounts page, or `python -m core accounts add --account act_… --token …`)."
    )


class PermissionDeniedError(GraphError):
    hint = (
        "The token lacks permission for this object (it needs ads_management / ads_read on "
        "the ad account). Grant it in Business Manager, then reconnect."
    )


class InvalidParameterError(GraphError):
    hint = "Meta refused a value Rex sent; the blamed field says which one."


class ObjectGoneError(InvalidParameterError):
    hint = "The object no longer exists at Meta (deleted, or not visible to this token)."


class TargetingRefusedError(InvalidParameterError):
    """Meta refused a targeting spec or a schedule Rex sent; `explain()` says why in the
    words of a person who runs ads, and what they can do instead."""

    hint = "Meta refused the targeting or schedule Rex sent; nothing was changed."

    @property
    def words(self) -> str | None:
        """Why Meta refused it, for a marketer; None when Rex has no words for it."""
        if self.subcode == LOCATION_REQUIRED_SUBCODE:
            return (
                "Meta needs at least one location to deliver to: this targeting would have "
                "no country or region left. Keep at least one country or region"
            )
        if self.user_title == ADVANTAGE_AGES_TITLE:
            return (
                "This ad set uses Advantage+ audience: ages are only a suggestion there, which "
                "Meta may go beyond, and Meta refuses a maximum age below 65 or a minimum age "
                "above 25. To really exclude these ages, turn Advantage+ audience off for "
                "the ad set in Ads Manager first"
            )
        if self.user_title == SPECIAL_CATEGORY_TITLE:
            return SPECIAL_CATEGORY_WORDS
        if self.subcode == SCHEDULE_END_SUBCODE:
            return "An ad set with an hour schedule needs an end date: set one in Ads Manager"
        if self.user_title == LIFETIME_BUDGET_TITLE:
            return (
                "Meta schedules hours (dayparting) only for ad sets with a lifetime budget; "
                "this one has a daily budget, which cannot become a lifetime one"
            )
        return None

    def explain(self) -> str:
        words = self.words
        if words is None:
            return super().explain()
        return f"{words}. Nothing was changed. (Meta: {self.describe()})"


class PolicyBlockedError(GraphError):
    hint = "Meta blocked this action for policy reasons; review the account in Ads Manager."


class DeprecatedVersionError(InvalidParameterError):
    hint = "The Marketing API version is no longer served: raise REX_GRAPH_API_VERSION."


class UnexpectedResponseError(GraphError):
    """An answer that is not in Meta's shapes (not JSON, `"success": "true"`, a batch
    answer of the wrong length …). A write answered so may have been applied."""

    hint = (
        "Meta answered in an unexpected shape. For a change, Rex reads Meta's state and "
        "change history to learn whether it took effect, and never sends it again blindly."
    )
    may_have_applied = True


class ReadLimitError(GraphError):
    """A read that would not end: more pages than REX_GRAPH_MAX_PAGES, or longer than
    REX_GRAPH_READ_DEADLINE_SECONDS."""

    hint = (
        "Rex stopped the read so that a misbehaving answer cannot keep it busy forever; "
        "the next sync tries again. If the account really is that large, raise "
        "REX_GRAPH_MAX_PAGES or REX_GRAPH_READ_DEADLINE_SECONDS."
    )


class AsyncReportError(GraphError):
    """An async insights report ended Job Failed / Job Skipped, or took too long."""

    hint = "Meta could not build the report; Rex will try again at the next sync."


def error_from_response(
    http_status: int,
    body: Any,
    headers: Mapping[str, str] | None = None,
    *,
    account_id: str | None = None,
    now: datetime | None = None,
) -> GraphError:
    """The one place that turns Meta's error answers into classes."""
    headers = headers or {}
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        if http_status >= 500:
            return TransientError(
                f"HTTP {http_status} without an error body", http_status=http_status
            )
        return UnexpectedResponseError(
            f"HTTP {http_status} with an unexpected body", http_status=http_status
        )

    code = _as_int(error.get("code"))
    subcode = _as_int(error.get("error_subcode"))
    fields: dict[str, Any] = {
        "code": code,
        "subcode": subcode,
        "http_status": http_status,
        "error_type": error.get("type"),
        "user_title": error.get("error_user_title"),
        "user_message": error.get("error_user_msg"),
        "fbtrace_id": error.get("fbtrace_id"),
    }
    message = str(error.get("message") or "Graph API error")

    if code in RATE_LIMIT_CODES:
        regain_at = regain_time(headers, account_id=account_id, now=now)
        return RateLimitedError(message, regain_at=regain_at, **fields)
    if code in TOKEN_CODES:
        return TokenInvalidError(message, **fields)
    if code in TRANSIENT_CODES or error.get("is_transient") is True or http_status >= 500:
        return TransientError(message, **fields)
    if code in PERMISSION_CODES:
        return PermissionDeniedError(message, **fields)
    if code in POLICY_CODES:
        return PolicyBlockedError(message, **fields)
    if code == DEPRECATED_VERSION_CODE:
        return DeprecatedVersionError(message, **fields)
    blamed = blamed_field(error)
    if code == 100 and subcode in OBJECT_GONE_SUBCODES:
        return ObjectGoneError(message, blamed_field=blamed, **fields)
    if code == 100 and (
        subcode in (LOCATION_REQUIRED_SUBCODE, SCHEDULE_END_SUBCODE)
        or (blamed or "").split(".")[0] in TARGETING_FIELDS
    ):
        return TargetingRefusedError(message, blamed_field=blamed, **fields)
    return InvalidParameterError(message, blamed_field=blamed, **fields)


def blamed_field(error: Mapping[str, Any]) -> str | None:
    """The field Meta blames: `error_data.blame_field_specs` ([["daily_budget"]]) if any."""
    data = error.get("error_data")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            data = None
    specs = data.get("blame_field_specs") if isinstance(data, Mapping) else None
    if isinstance(specs, list) and specs:
        first = specs[0]
        if isinstance(first, list) and first:
            return ".".join(str(part) for part in first)
        if isinstance(first, str):
            return first
    return None


def regain_time(
    headers: Mapping[str, str], *, account_id: str | None = None, now: datetime | None = None
) -> datetime:
    """When a throttled app/account may call again, read from Meta's usage headers.

    `X-Business-Use-Case-Usage` gives `estimated_time_to_regain_access` in minutes per
    account; `X-Ad-Account-Usage` gives `reset_time_duration` in seconds. The longest
    wait wins; with neither header Rex waits a conservative default.
    """
    now = now or clock.now()
    waits: list[timedelta] = []
    buc = _json_header(headers, "X-Business-Use-Case-Usage")
    if isinstance(buc, Mapping):
        digits = account_digits(account_id) if account_id else None
        for key, entries in buc.items():
            if digits and str(key) != digits:
                continue
            for entry in entries if isinstance(entries, list) else []:
                minutes = _as_int(entry.get("estimated_time_to_regain_access"))
                if minutes:
                    waits.append(timedelta(minutes=minutes))
    account_usage = _json_header(headers, "X-Ad-Account-Usage")
    if isinstance(account_usage, Mapping):
        seconds = _as_int(account_usage.get("reset_time_duration"))
        if seconds:
            waits.append(timedelta(seconds=seconds))
    return now + (max(waits) if waits else DEFAULT_RATE_LIMIT_WAIT)


def usage_percent(headers: Mapping[str, str]) -> int:
    """The highest utilisation any of Meta's usage headers reports (0–100)."""
    values: list[int] = []
    app = _json_header(headers, "X-App-Usage")
    if isinstance(app, Mapping):
        values += [_as_int(app.get(k)) or 0 for k in ("call_count", "total_time", "total_cputime")]
    account = _json_header(headers, "X-Ad-Account-Usage")
    if isinstance(account, Mapping):
        values.append(_as_int(account.get("acc_id_util_pct")) or 0)
    buc = _json_header(headers, "X-Business-Use-Case-Usage")
    if isinstance(buc, Mapping):
        for entries in buc.values():
            for entry in entries if isinstance(entries, list) else []:
                values += [
                    _as_int(entry.get(k)) or 0
                    for k in ("call_count", "total_time", "total_cputime")
                ]
    return max(values, default=0)


def _json_header(headers: Mapping[str, str], name: str) -> Any:
    value = _header(headers, name)
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def _as_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
