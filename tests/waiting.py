"""Waiting for something to happen: polling against a deadline instead of sleeping.

A fixed sleep is either too short on a busy machine (the test fails) or longer than needed
everywhere else (the suite is slow); a poll returns as soon as the thing happened and,
when it does not, fails saying what did not happen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float, interval: float = 0.1, *, message: str
) -> T:
    """Call `predicate` every `interval` seconds until it returns something true, and
    return that. When `timeout` seconds pass first (it is asked once more at the deadline),
    fail with `message`, which says what did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{message} (waited {timeout:g} s)")
        time.sleep(min(interval, left))
