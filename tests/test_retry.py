"""The retry policy (core.meta.retry) as pure functions: no server, no clock, no sleep.

The client's behaviour against a real server is in test_client.py and
test_client_faults.py; here every branch of the decision, one at a time."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from core.meta.errors import (
    ConnectionFailedError,
    InvalidParameterError,
    PermissionDeniedError,
    RateLimitedError,
    TokenInvalidError,
    TransientError,
    UnexpectedResponseError,
    error_from_response,
)
from core.meta.retry import RetryLimits, backoff, block_wait, retry_delay

NOW = datetime(2026, 11, 20, 18, 30, tzinfo=UTC)
LIMITS = RetryLimits(max_retries=4, backoff_seconds=1.0, max_inline_wait_seconds=60.0)


def ceiling(_low: float, high: float) -> float:
    """A 'jitter' that always draws the top of the range: the bound itself."""
    return high


def http_500() -> TransientError:
    error = error_from_response(500, None)
    assert isinstance(error, TransientError)
    return error


def rate_limited(seconds: float, **fields: object) -> RateLimitedError:
    return RateLimitedError("throttled", regain_at=NOW + timedelta(seconds=seconds), **fields)  # type: ignore[arg-type]


def delay(error, attempt: int = 0, *, idempotent: bool = True, limits=LIMITS, **kw):  # type: ignore[no-untyped-def]
    return retry_delay(error, attempt, idempotent=idempotent, limits=limits, now=NOW, **kw)


def test_a_transient_5xx_on_a_read_backs_off_exponentially_up_to_the_cap() -> None:
    bounds = [delay(http_500(), attempt, uniform=ceiling) for attempt in range(4)]
    assert bounds == [1.0, 2.0, 4.0, 8.0]
    wide = RetryLimits(max_retries=10, backoff_seconds=10.0, max_inline_wait_seconds=60.0)
    assert delay(http_500(), 7, limits=wide, uniform=ceiling) == 60.0  # capped at a minute


def test_the_backoff_is_full_jitter_from_zero_to_the_bound() -> None:
    draws = [delay(http_500(), 3, uniform=random.Random(seed).uniform) for seed in range(200)]
    assert all(0.0 <= d <= 8.0 for d in draws)
    assert min(draws) < 1.0 and max(draws) > 7.0  # the whole range, not a fixed step
    assert backoff(2, LIMITS, uniform=lambda low, high: low) == 0.0


def test_meta_transient_codes_and_lost_answers_retry_a_read_too() -> None:
    transient = error_from_response(400, {"error": {"code": 2, "message": "try again"}})
    assert delay(transient, uniform=ceiling) == 1.0
    assert delay(ConnectionFailedError("no answer"), uniform=ceiling) == 1.0


def test_a_write_whose_answer_may_have_been_applied_is_never_retried() -> None:
    for error in (http_500(), ConnectionFailedError("timed out"), UnexpectedResponseError("?")):
        assert error.outcome_unknown
        assert delay(error, idempotent=False) is None


def test_a_write_that_certainly_never_left_is_retried() -> None:
    refused = ConnectionFailedError("connection refused").not_sent()
    assert delay(refused, idempotent=False, uniform=ceiling) == 1.0


def test_a_short_rate_limit_waits_its_regain_time() -> None:
    assert delay(rate_limited(45)) == 45.0
    assert delay(rate_limited(60)) == 60.0  # at the limit: still waited out
    assert delay(rate_limited(-5)) == 0.0  # already regained: at once, never a negative wait
    assert delay(rate_limited(45), idempotent=False) == 45.0  # Meta ran nothing it throttled


def test_a_long_rate_limit_stops_at_once() -> None:
    assert delay(rate_limited(61)) is None
    assert delay(rate_limited(30 * 60)) is None


def test_a_rate_limit_on_one_object_stops_however_short() -> None:
    one_adset = rate_limited(5, code=613, subcode=1487632)
    assert one_adset.object_level
    assert delay(one_adset) is None


def test_the_attempt_limit_stops_everything() -> None:
    for error in (http_500(), rate_limited(1), ConnectionFailedError("x").not_sent()):
        assert delay(error, 3) is not None
        assert delay(error, 4) is None
    none = RetryLimits(max_retries=0, backoff_seconds=1.0, max_inline_wait_seconds=60.0)
    assert delay(http_500(), 0, limits=none) is None


@pytest.mark.parametrize(
    "error",
    [
        TokenInvalidError("expired", code=190),
        PermissionDeniedError("no", code=200),
        InvalidParameterError("bad value", code=100, blamed_field="daily_budget"),
        UnexpectedResponseError("HTML"),  # the same server would answer the same
    ],
)
def test_permanent_errors_are_not_retried_even_for_reads(error) -> None:  # type: ignore[no-untyped-def]
    assert delay(error) is None


def test_no_block_or_a_past_one_lets_the_call_go_at_once() -> None:
    assert block_wait(None, 0, limits=LIMITS, now=NOW) == 0.0
    assert block_wait(NOW - timedelta(seconds=1), 0, limits=LIMITS, now=NOW) == 0.0


def test_a_short_block_is_waited_out_and_a_long_one_refuses_the_call() -> None:
    assert block_wait(NOW + timedelta(seconds=30), 0, limits=LIMITS, now=NOW) == 30.0
    assert block_wait(NOW + timedelta(minutes=5), 0, limits=LIMITS, now=NOW) is None
    assert block_wait(NOW + timedelta(seconds=30), 5, limits=LIMITS, now=NOW) is None
