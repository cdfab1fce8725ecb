"""When to send a Graph call again: the retry policy as pure functions, no HTTP.

`retry_delay` decides after a failed call, `block_wait` before a call while a rate
limit is on record. The client's request loop only asks them; the tests ask them too,
without a server (tests/test_retry.py).

The policy:
* a transient failure (5xx, Meta's transient codes, no answer) is sent again after an
  exponential backoff with full jitter — uniform in [0, min(cap, base × 2^attempt)] — but
  only when the call is idempotent (a read) or certainly never reached Meta: a write
  answered so may have been applied, and sending it again could apply it twice;
* a rate limit on the app or the account is waited out when it regains within the
  inline-wait limit (Meta did not run a call it refused for its rate); a longer one
  stops, and the caller records the regain time;
* a rate limit on one object (too many budget changes to an ad set) stops at once;
* anything else (a token, a permission, a refused value, an answer in no shape Meta
  uses) stops: sending it again would get the same answer;
* after `max_retries` retries, everything stops.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from core import clock
from core.meta.errors import GraphError, RateLimitedError, TransientError

Uniform = Callable[[float, float], float]


@dataclass(frozen=True)
class RetryLimits:
    max_retries: int
    backoff_seconds: float
    max_inline_wait_seconds: float
    max_backoff_seconds: float = 60.0


def retry_delay(
    error: GraphError,
    attempt: int,
    *,
    idempotent: bool,
    limits: RetryLimits,
    now: datetime | None = None,
    uniform: Uniform = random.uniform,
) -> float | None:
    """Seconds to wait before sending the call again after `error` ended attempt
    `attempt` (0 for the first), or None: stop and raise it."""
    if attempt >= limits.max_retries:
        return None
    if isinstance(error, RateLimitedError):
        if error.object_level:
            return None
        wait = max(0.0, _seconds_until(error.regain_at, now))
        return wait if wait <= limits.max_inline_wait_seconds else None
    if isinstance(error, TransientError):
        if idempotent or not error.sent:
            return backoff(attempt, limits, uniform)
        return None
    return None


def block_wait(
    blocked_until: datetime | None,
    attempt: int,
    *,
    limits: RetryLimits,
    now: datetime | None = None,
) -> float | None:
    """Before a call while a rate limit is on record: seconds to wait first (0: none), or
    None when the block lasts longer than the inline-wait limit — the call is refused
    without being sent."""
    if blocked_until is None:
        return 0.0
    wait = _seconds_until(blocked_until, now)
    if wait <= 0:
        return 0.0
    if wait > limits.max_inline_wait_seconds or attempt > limits.max_retries:
        return None
    return wait


def backoff(attempt: int, limits: RetryLimits, uniform: Uniform = random.uniform) -> float:
    """Exponential backoff with full jitter, capped (`max_backoff_seconds`)."""
    ceiling = min(limits.max_backoff_seconds, limits.backoff_seconds * 2**attempt)
    return uniform(0, ceiling)


def _seconds_until(instant: datetime, now: datetime | None) -> float:
    return (instant - (now or clock.now())).total_seconds()
