"""A hostile Graph server for the tests: a loopback proxy in front of a sandbox that lies.

Every request is forwarded to the sandbox (so a write is really applied there, and the
sandbox's write log says what Meta "did"), then answered according to the first
behaviour that matches it — an HTML error page instead of JSON, a batch answer of the
wrong length, garbage values, an answer trickled one byte at a time, a connection
dropped after the write, pages that never end. Without a matching behaviour the
sandbox's answer is relayed unchanged.

    with Hostile(sandbox.url) as hostile:
        hostile.add(Behaviour(writes, lose(502)))     # apply every write, lose the answer
        connect_account(..., graph_url=hostile.url)

Behaviours are tried in the order added; `times` limits how often one applies, `rate`
draws from a seeded generator so a run with the same seed lies the same way.
"""

from __future__ import annotations

import base64
import json
import random
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

HTML_PAGE = "<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"


@dataclass
class Request:
    method: str
    path: str  # without the query
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))

    @property
    def batch_items(self) -> list[dict[str, Any]]:
        raw = self.form.get("batch")
        return json.loads(raw) if raw else []

    @property
    def node(self) -> list[str]:
        """The path without the version: ["act_1", "adsets"]."""
        parts = [p for p in self.path.split("/") if p]
        return parts[1:] if parts and parts[0].startswith("v") else parts


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_json(cls, status: int, value: Any, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(value).encode(), headers=headers or {})

    def json(self) -> Any:
        return json.loads(self.body)


Forward = Callable[[], Reply]
# What a behaviour does: given the request and a way to forward it (once), the reply —
# or None to drop the connection without answering.
Act = Callable[[Request, Forward], "Reply | None | Trickle"]


@dataclass
class Trickle:
    """Send `reply` one byte every `seconds` (status line and headers included)."""

    reply: Reply
    seconds: float = 2.0


@dataclass
class Behaviour:
    match: Callable[[Request], bool]
    act: Act
    times: int | None = None  # None: every time
    rate: float = 1.0
    used: int = 0


# ------------------------------------------------------------------------ matchers


def anything(_request: Request) -> bool:
    return True


def writes(request: Request) -> bool:
    """A write: a POST to a node, or a batch carrying at least one POST item."""
    if request.method != "POST":
        return False
    if request.node:
        return request.node[-1] != "insights"
    return any(str(i.get("method", "GET")).upper() == "POST" for i in request.batch_items)


def reads(request: Request) -> bool:
    return not writes(request)


def edge(name: str) -> Callable[[Request], bool]:
    """GET of an edge (`adsets`, `insights`, `activities` …)."""
    return lambda r: r.method == "GET" and bool(r.node) and r.node[-1] == name


def node_read(request: Request) -> bool:
    """GET of one object by id (an account, a campaign …)."""
    return request.method == "GET" and len(request.node) == 1


# ------------------------------------------------------------------------- actions


def relay(_request: Request, forward: Forward) -> Reply:
    return forward()


def lose(status: int = 502, body: str = HTML_PAGE) -> Act:
    """Apply (forward), then answer an HTML error page: the answer is lost."""

    def act(_request: Request, forward: Forward) -> Reply:
        forward()
        return Reply(status, body.encode(), "text/html; charset=UTF-8")

    return act


def drop(_request: Request, forward: Forward) -> None:
    """Apply (forward), then close the connection without answering."""
    forward()
    return None


def refuse_unsent(status: int = 503, code: int = 2) -> Act:
    """Answer an error WITHOUT forwarding: Meta did not apply it."""

    def act(_request: Request, _forward: Forward) -> Reply:
        error = {"message": "Service temporarily unavailable", "code": code, "is_transient": True}
        return Reply.of_json(status, {"error": error})

    return act


def rewrite(change: Callable[[Any], Any]) -> Act:
    """Apply, then answer `change(the sandbox's JSON answer)` with the same status."""

    def act(_request: Request, forward: Forward) -> Reply:
        reply = forward()
        return Reply.of_json(reply.status, change(reply.json()), reply.headers)

    return act


def rewrite_items(change: Callable[[dict[str, Any]], Any]) -> Act:
    """Apply a batch, then answer each item's body replaced by `change(body)`."""

    def each(items: Any) -> Any:
        out = []
        for item in items:
            if item is None:
                out.append(None)
                continue
            body = change(json.loads(item["body"]))
            out.append({**item, "body": json.dumps(body)})
        return out

    return rewrite(each)


def trickle(seconds: float = 2.0) -> Act:
    def act(_request: Request, forward: Forward) -> Trickle:
        return Trickle(forward(), seconds)

    return act


def endless_pages(request: Request, forward: Forward) -> Reply:
    """Every page has a next page, with a fresh cursor each time (the first page's items
    are the sandbox's; later pages repeat its first item)."""
    first = forward().json()
    data = first.get("data") if isinstance(first, dict) else None
    page = data[:1] if isinstance(data, list) and data else [{"id": "1"}]
    cursor = base64.urlsafe_b64encode(str(random.random()).encode()).decode().rstrip("=")
    next_url = f"https://graph.example/{request.path}?after={cursor}"
    return Reply.of_json(
        200, {"data": page, "paging": {"cursors": {"after": cursor}, "next": next_url}}
    )


# ------------------------------------------------------------------------- server


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up
            super().handle_error(request, client_address)


class Hostile:
    def __init__(self, upstream: str, *, seed: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.behaviours: list[Behaviour] = []
        self.log: list[tuple[str, str, str]] = []  # (method, path, what it did)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._http = requests.Session()
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread: threading.Thread | None = None

    def add(self, behaviour: Behaviour) -> Behaviour:
        with self._lock:
            self.behaviours.append(behaviour)
        return behaviour

    def clear(self) -> None:
        with self._lock:
            self.behaviours.clear()

    def start(self) -> Hostile:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Hostile:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def choose(self, request: Request) -> Behaviour | None:
        with self._lock:
            for behaviour in self.behaviours:
                if behaviour.times is not None and behaviour.used >= behaviour.times:
                    continue
                if not behaviour.match(request):
                    continue
                if behaviour.rate < 1.0 and self._rng.random() >= behaviour.rate:
                    continue
                behaviour.used += 1
                return behaviour
        return None

    def forward(self, request: Request) -> Reply:
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("authorization", "content-type", "accept")
        }
        answer = self._http.request(
            request.method,
            f"{self.upstream}{request.path}",
            params=request.query or None,
            data=request.body or None,
            headers=headers,
            timeout=30,
        )
        kept = {
            k: v
            for k, v in answer.headers.items()
            if k.lower().startswith(("x-app", "x-ad", "x-b"))
        }
        return Reply(
            answer.status_code,
            answer.content,
            answer.headers.get("Content-Type", "application/json"),
            kept,
        )


def _handler_for(hostile: Hostile) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                method,
                parts.path,
                dict(parse_qsl(parts.query, keep_blank_values=True)),
                dict(self.headers.items()),
                self.rfile.read(length) if length else b"",
            )
            behaviour = hostile.choose(request)
            forwarded: list[Reply] = []

            def forward() -> Reply:
                if not forwarded:
                    forwarded.append(hostile.forward(request))
                return forwarded[0]

            outcome = (behaviour.act if behaviour else relay)(request, forward)
            what = getattr(behaviour.act, "__qualname__", "behaviour") if behaviour else "relay"
            with hostile._lock:
                hostile.log.append((method, parts.path, what))
            if outcome is None:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if isinstance(outcome, Trickle):
                self._trickle(outcome)
                return
            try:
                self.send_response(outcome.status)
                self.send_header("Content-Type", outcome.content_type)
                self.send_header("Content-Length", str(len(outcome.body)))
                for name, value in outcome.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(outcome.body)
            except OSError:  # the client gave up (a deadline, a killed runner)
                self.close_connection = True

        def _trickle(self, trickle: Trickle) -> None:
            reply = trickle.reply
            head = (
                f"HTTP/1.1 {reply.status} OK\r\nContent-Type: {reply.content_type}\r\n"
                f"Content-Length: {len(reply.body)}\r\n\r\n"
            ).encode()
            self.close_connection = True
            for byte in head + reply.body:
                if hostile._stopping.wait(trickle.seconds):
                    return
                try:
                    self.connection.sendall(bytes([byte]))
                except OSError:
                    return  # the client gave up: good

    return Handler


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
