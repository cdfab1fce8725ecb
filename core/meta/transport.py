"""How bytes move to and from the Graph API: HTTP with a total deadline per call.

`requests` timeouts bound each socket operation, not the call: a server that trickles
one byte every two seconds keeps a 5-second timeout waiting forever. Every call made
through `DeadlineSession` must be answered in full — status line, headers and body —
within its deadline; when the deadline passes, a watchdog shuts the connection's socket
down and the call fails with `DeadlineExceeded`.

It also tells whether a failed call reached the server at all (`never_sent`): a refused
connection or a connect timeout means Meta never saw the request, which matters for a
write — anything after the request went out may have been applied.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

_current = threading.local()  # the watch of the call this thread is making


class DeadlineExceeded(requests.RequestException):
    """The answer was not complete within the call's deadline."""


class _Watch:
    """Remembers the connection a call uses, so a timer can cut it off."""

    def __init__(self) -> None:
        self.connection: HTTPConnection | None = None
        self.fired = False
        self._lock = threading.Lock()

    def abort(self) -> None:
        with self._lock:
            self.fired = True
            connection = self.connection
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv in the caller


class _WatchedMixin(HTTPConnection):
    """Notes the connection a call goes out on (for HTTPS too: it comes first in the MRO of
    `_HTTPSConnection`, before `HTTPSConnection`)."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        watch = getattr(_current, "watch", None)
        if watch is not None:
            watch.connection = self
        return super().request(*args, **kwargs)


class _HTTPConnection(_WatchedMixin, HTTPConnection):
    pass


class _HTTPSConnection(_WatchedMixin, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


class DeadlineSession(requests.Session):
    """A `requests.Session` whose every call has a total deadline (`deadline=` seconds)."""

    def __init__(self) -> None:
        super().__init__()
        self.mount("http://", _Adapter())
        self.mount("https://", _Adapter())

    def request(  # type: ignore[override]  # every call needs a deadline: no default
        self, method: str, url: str, *, deadline: float, **kwargs: Any
    ) -> requests.Response:
        watch = _Watch()
        timer = threading.Timer(deadline, watch.abort)
        timer.daemon = True
        _current.watch = watch
        timer.start()
        try:
            response = super().request(method, url, **kwargs)
            _ = response.content  # the whole body, inside the deadline
        except requests.RequestException as error:
            if watch.fired:
                raise DeadlineExceeded(f"no complete answer within {deadline:g} s") from error
            raise
        finally:
            timer.cancel()
            _current.watch = None
        if watch.fired:  # cut off at the last byte: the body may be short
            raise DeadlineExceeded(f"no complete answer within {deadline:g} s")
        return response


def never_sent(error: requests.RequestException) -> bool:
    """True when the request certainly did not reach the server (a refused connection,
    an unknown host, a connect timeout): nothing it asked for can have happened."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    reason = getattr(error.args[0] if error.args else None, "reason", None)
    return isinstance(reason, NewConnectionError)
