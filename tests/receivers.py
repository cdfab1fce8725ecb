"""Real receivers on loopback for the notification tests: an SMTP server (aiosmtpd's
Controller) and an HTTP server, each recording what arrives and able to refuse, fail
or hold on cue."""

from __future__ import annotations

import email
import email.policy
import ipaddress
import json
import socket
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


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
    the server stops at RCPT (before any of the message has left) until `release`.
    With `tls` (an SSLContext): STARTTLS required, or with `implicit` TLS from the first
    byte; with `logins` ({user: password}): AUTH required, over TLS only."""

    def __init__(self, *, tls: ssl.SSLContext | None = None, implicit: bool = False,
                 logins: dict[str, str] | None = None) -> None:  # fmt: skip
        self.mails: list[Mail] = []
        self.replies: deque[str] = deque()
        self.lock = threading.Lock()
        self.hold_rcpt, self.held, self.release = (
            threading.Event(),
            threading.Event(),
            threading.Event(),
        )
        self.port = free_port()
        self.logins: list[str] = []
        options: dict[str, Any] = {}
        if tls is not None and implicit:
            options["ssl_context"] = tls
        elif tls is not None:
            options.update(tls_context=tls, require_starttls=True)
        if logins is not None:
            # over implicit TLS aiosmtpd offers AUTH only when not told to require TLS
            # (it knows TLS from STARTTLS only); the connection is TLS from its first byte
            options.update(authenticator=self._authenticate, auth_require_tls=not implicit,
                           auth_required=True)  # fmt: skip
        self.known = logins or {}
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                     **options)  # fmt: skip

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, data: Any) -> AuthResult:  # fmt: skip
        user, password = data.login.decode(), data.password.decode()
        ok = self.known.get(user) == password
        if ok:
            self.logins.append(user)
        return AuthResult(success=ok, handled=False)

    def __enter__(self) -> MailCatcher:
        self.controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.release.set()
        self.controller.stop()

    def to(self, address: str) -> list[Mail]:
        with self.lock:
            return [m for m in self.mails if address in m.to]


def free_port() -> int:
    """A port free now (aiosmtpd's Controller checks its server by connecting to the
    port it was given, so it cannot take 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def self_signed(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A certificate for 127.0.0.1, signed by itself: the server's TLS context and the
    file a client trusts (REX_SMTP_CA_FILE)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = folder / "smtp.crt", folder / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file


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
