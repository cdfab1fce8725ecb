"""An account's insights reads, waited for on a few threads and taken in order.

A sync spends most of its time waiting for Meta's async insights reports (a POST, then
polls until `Job Completed`), nine per account with breakdowns. `Reads` runs them on up
to `concurrency` threads, so an account takes about as long as its slowest reports, not
their sum. Only the Graph calls run there: the caller takes each result, in the order it
asks for them, on its own thread, and does everything else there — validating, the
database writes (SQLite has one writer), the progress it reports (Streamlit draws only
from the script's thread) — so what a sync stores and says is what a sync one report at
a time gives. A read's error is raised where its result is taken, as if it had run
there.

With `concurrency` 1 there are no threads: each read runs when its result is asked for,
as syncs always did. Leaving the `with` block (an error, the last result taken) stops
what is still running: reads not started are cancelled, reports being waited for are
abandoned at their next poll (`stop`), and the block ends when the threads have.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
Read = Callable[[threading.Event], T]  # gets the stop event; returns the read's result


class Reads(Generic[T]):
    def __init__(self, concurrency: int) -> None:
        self.stop = threading.Event()
        self._pool = (
            ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="rex-insights")
            if concurrency > 1
            else None
        )
        self._reads: dict[Hashable, Future[T] | Read[T]] = {}

    def submit(self, key: Hashable, read: Read[T]) -> None:
        """Start `read` on a free thread (reads start in the order submitted)."""
        if key in self._reads:
            raise ValueError(f"read {key!r} submitted twice")
        self._reads[key] = read if self._pool is None else self._pool.submit(read, self.stop)

    def result(self, key: Hashable) -> T:
        """The read's result, once it is done; its exception if it failed."""
        read = self._reads.pop(key)
        return read.result() if isinstance(read, Future) else read(self.stop)

    def close(self) -> None:
        self.stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._reads.clear()

    def __enter__(self) -> Reads[T]:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
