"""Faults the sandbox can inject, the way Meta fails.

Rates per kind (0–1) draw from a seeded generator, so a run with the same seed fails
the same way; `fail_next` queues exact failures for the next requests (tests use it to
say "the next call fails once with a transient error"). A faulted write changes
nothing. `latency_ms` delays every answer; `expired_token` answers 190 to everything.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = {
    # kind: (HTTP status, code, subcode, message, is_transient)
    "5xx": (500, 1, None, "An unknown error occurred", True),
    "transient": (503, 2, None, "Service temporarily unavailable", True),
    "user_rate": (400, 17, 2446079, "User request limit reached", False),
    "app_rate": (400, 4, None, "Application request limit reached", False),
    "ads_rate": (400, 613, 1487742, "Calls to this api have exceeded the rate limit.", False),
    "buc": (
        400,
        80004,
        2446079,
        "There have been too many calls to this ad-account. Wait a bit and try again.",
        False,
    ),
    "token": (
        400,
        190,
        463,
        "Error validating access token: Session has expired on Friday, 20-Nov-26 10:00:00 "
        "PST. The current time is Friday, 20-Nov-26 10:30:00 PST.",
        False,
    ),
}
RATE_LIMIT_KINDS = ("user_rate", "app_rate", "ads_rate", "buc")
# Not request faults: a batch item answered `null`, an async report that fails, an async
# report that first answers "Job Not Started" and a running percentage before 100.
SPECIAL_KINDS = ("batch_null", "async_fail", "async_slow")
# Writes that Meta APPLIES and whose answer is then lost or garbled — what makes a client
# that trusts answers record a change as failed and send it again:
#   lost_5xx      the write (or a whole batch) is applied, the answer is HTTP 502 with an
#                 HTML page instead of JSON;
#   lost_success  applied, answered `{"success": "true"}` (a string, not Meta's boolean);
#   lost_item     a batch item is applied and answered `null`.
LOST_KINDS = ("lost_5xx", "lost_success", "lost_item")
# In `fail_next` only: this request (or batch item) goes through — to line a queued fault
# up with, say, the 50th item of a batch.
PASS = "none"
LOST_HTML = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>Bad Gateway</h1><p>The upstream server did not answer in time.</p></body></html>"
)


@dataclass
class FaultConfig:
    """What to inject. `fail_next` lists kinds, or `(kind, count)` pairs, in order:
    `FaultConfig(fail_next=[("transient", 2)])` fails the next two requests."""

    rates: dict[str, float] = field(default_factory=dict)
    latency_ms: int = 0
    expired_token: bool = False
    seed: int = 0
    regain_minutes: int = 5
    fail_next: list[str | tuple[str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        known = set(FAULT_KINDS) | set(SPECIAL_KINDS) | set(LOST_KINDS) | {PASS}
        for kind in [*self.rates, *self.queue()]:
            if kind not in known:
                kinds = ", ".join(sorted(known))
                raise ValueError(f"unknown fault kind {kind!r}; use one of {kinds}")
        for kind, rate in self.rates.items():
            if not 0 <= float(rate) <= 1:
                raise ValueError(f"fault rate for {kind} must be from 0 to 1, got {rate}")

    def queue(self) -> list[str]:
        """`fail_next` spelled out one kind per failure."""
        kinds: list[str] = []
        for item in self.fail_next:
            if isinstance(item, str):
                kinds.append(item)
                continue
            try:
                kind, count = item
                count = int(count)
            except (TypeError, ValueError):
                raise ValueError(
                    f"fail_next items are a kind or [kind, count], got {item!r}"
                ) from None
            if count < 0:
                raise ValueError(f"fail_next count for {kind} must be 0 or more, got {count}")
            kinds += [kind] * count
        return kinds

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultConfig:
        allowed = {"rates", "latency_ms", "expired_token", "seed", "regain_minutes", "fail_next"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault settings {sorted(unknown)}; use {sorted(allowed)}")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        return {
            "rates": self.rates,
            "latency_ms": self.latency_ms,
            "expired_token": self.expired_token,
            "seed": self.seed,
            "regain_minutes": self.regain_minutes,
            "fail_next": [x if isinstance(x, str) else list(x) for x in self.fail_next],
        }


class Faults:
    """The live fault state of a server (thread-safe)."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._queue = config.queue()
            self._rng = random.Random(config.seed)
            self.injected: Counter[str] = Counter()  # faults drawn since configured

    def pending(self) -> list[str]:
        """The queued failures not used yet."""
        with self._lock:
            return list(self._queue)

    def draw(
        self, *, special: str | None = None, among: tuple[str, ...] | None = None
    ) -> str | None:
        """The fault for this request (or batch item / report when `special` is given,
        or one of `among`, e.g. the LOST_KINDS that apply to an applied write)."""
        with self._lock:
            kinds = among or ((special,) if special else tuple(FAULT_KINDS))
            for index, kind in enumerate(self._queue):
                if kind in kinds or (kind == PASS and not special and not among):
                    del self._queue[index]
                    if kind == PASS:
                        return None
                    self.injected[kind] += 1
                    return kind
            for kind in kinds:
                rate = float(self.config.rates.get(kind, 0))
                if rate and self._rng.random() < rate:
                    self.injected[kind] += 1
                    return kind
        return None


def error_body(kind: str, trace_id: str) -> tuple[int, dict[str, Any]]:
    status, code, subcode, message, transient = FAULT_KINDS[kind]
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": trace_id,
    }
    if subcode:
        error["error_subcode"] = subcode
    if transient:
        error["is_transient"] = True
    if kind == "token":
        error["error_user_title"] = "Session expired"
        error["error_user_msg"] = "Your session has expired. Please log in again."
    return status, {"error": error}


def rate_limit_headers(kind: str, account_numeric_id: str | None, regain_minutes: int) -> dict:
    """The usage headers Meta sends with a rate-limit error."""
    if kind == "app_rate":
        return {
            "X-App-Usage": json.dumps({"call_count": 100, "total_cputime": 40, "total_time": 60})
        }
    entry = {
        "type": "ads_management",
        "call_count": 100,
        "total_cputime": 30,
        "total_time": 40,
        "estimated_time_to_regain_access": regain_minutes,
    }
    key = account_numeric_id or "0"
    return {
        "X-Business-Use-Case-Usage": json.dumps({key: [entry]}),
        "X-Ad-Account-Usage": json.dumps(
            {"acc_id_util_pct": 100, "reset_time_duration": regain_minutes * 60}
        ),
    }
