"""Real receivers on loopback for the notification tests: an SMTP server (aiosmtpd's
Controller) and an HTTP server, each recording what arrives and able to refuse, fail
or hold on cue."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Mail:
    sender: str
    to: list[str]
    message: EmailMessage

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        return body.get_content()


class _Handler:
    def __init__(self, catcher: MailCatcher) -> None:
        self.catcher = catcher

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:  # fmt: skip
        if self.catcher.hold_rcpt.is_set():
            self.catcher.held.set()
            self.catcher.release.wait(30)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.catcher.lock:
            if self.catcher.replies:
                return self.catcher.replies.popleft()
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.catcher.mails.append(
                Mail(envelope.mail_from, list(envelope.rcpt_tos), message)  # type: ignore[arg-type]
            )
        return "250 Message accepted"


class MailCatcher:
    """`replies`: SMTP answers to DATA to give first ("451 try later"); `hold_rcpt` set:
    the server stops at RCPT (before any of the message has left) until `release`."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []
        self.replies: deque[str] = deque()
        self.lock = threading.Lock()
        self.hold_rcpt, self.held, self.release = (
            threading.Event(),
            threading.Event(),
            threading.Event(),
        )
        self.port = _free_port()
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> MailCatcher:
        self.controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.release.set()
        self.controller.stop()

    def to(self, address: str) -> list[Mail]:
        with self.lock:
            return [m for m in self.mails if address in m.to]


def _free_port() -> int:
    """A port free now (aiosmtpd's Controller checks its server by connecting to the
    port it was given, so it cannot take 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered (or was about to)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Answers each POST with the next of `answers` ((status, headers, body)), then 200
    "ok". With `hold` set, it reads the request, records it, and waits for `release`
    before answering (the sender may be killed meanwhile)."""

    requests: list[Request] = field(default_factory=list)
    answers: deque[tuple[int, dict[str, str], str]] = field(default_factory=deque)
    hold: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, headers, text = (
                    receiver.answers.popleft() if receiver.answers else (200, {}, "ok")
                )
                receiver.requests.append(Request(self.path, dict(self.headers), body, status))
                if receiver.hold.is_set():
                    receiver.held.set()
                    receiver.release.wait(60)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(text.encode())))
                    self.end_headers()
                    self.wfile.write(text.encode())
                except OSError:
                    pass  # the sender went away

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def accepted(self, path: str) -> list[Request]:
        """The requests to `path` it answered with a 2xx: the messages it took."""
        return [r for r in self.to(path) if 200 <= r.status < 300]
