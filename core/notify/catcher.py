"""`python -m core notifications catch`: an SMTP server and a webhook receiver on this
machine that print what Rex sends them — to try notifications without a mail server,
a Slack workspace or a service of your own.

    python -m core notifications catch            # SMTP on 127.0.0.1:8025, HTTP on :8026
    REX_SMTP_HOST=127.0.0.1 REX_SMTP_PORT=8025 REX_SMTP_TLS=none \\
    REX_WEBHOOK_URL=http://127.0.0.1:8026/hook REX_WEBHOOK_SECRET=try-me make run

Each e-mail is printed with its subject and plain-text part; each webhook request with
its event, title and whether its signature checks out against REX_WEBHOOK_SECRET (a
Slack-shaped body, `{"text", "blocks"}`, is printed by its text). Loopback only.
"""

from __future__ import annotations

import email
import email.policy
import hmac
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from core.notify.channels import signature

Say = Callable[[str], None]


class _Mail:
    def __init__(self, say: Say) -> None:
        self.say = say

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = mail.get_body(preferencelist=("plain",))
        parts = sorted({p.get_content_type() for p in mail.walk() if not p.is_multipart()})
        self.say(
            f"--- e-mail to {', '.join(envelope.rcpt_tos)} ({' + '.join(parts)})\n"
            f"Subject: {str(mail['Subject']).strip()}\n\n"
            + (body.get_content().strip() if body is not None else "")
        )
        return "250 Message accepted"


def _handler(secret: str | None, say: Say) -> type[BaseHTTPRequestHandler]:
    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            say(f"--- {self.path} " + _describe(body, self.headers, secret))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: object) -> None:
            pass

    return Hook


def _describe(body: bytes, headers: Any, secret: str | None) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return f"(not JSON, {len(body)} bytes)"
    if "blocks" in data:
        return f"Slack message ({len(data['blocks'])} blocks): {data.get('text')}"
    stamp, sent = headers.get("X-Rex-Timestamp", ""), headers.get("X-Rex-Signature", "")
    if secret is None:
        checked = "signature not checked (no REX_WEBHOOK_SECRET)"
    elif hmac.compare_digest(sent, signature(secret, stamp, body)):
        checked = "signature ok"
    else:
        checked = "SIGNATURE DOES NOT MATCH"
    return f"webhook {data.get('event')} [{checked}]: {data.get('title')} → {data.get('link')}"


def catch(
    *, smtp_port: int, http_port: int, secret: str | None, say: Say = print,
    stop: threading.Event | None = None,
) -> None:  # fmt: skip
    """Serve until `stop` is set (or Ctrl-C)."""
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-connection lines
    smtp = Controller(_Mail(say), hostname="127.0.0.1", port=smtp_port)
    http = ThreadingHTTPServer(("127.0.0.1", http_port), _handler(secret, say))
    smtp.start()
    threading.Thread(target=http.serve_forever, daemon=True).start()
    say(f"catching e-mail on 127.0.0.1:{smtp_port} and webhooks on "
        f"http://127.0.0.1:{http_port}/… (Ctrl-C stops)")  # fmt: skip
    try:
        (stop or threading.Event()).wait()
    finally:
        http.shutdown()
        smtp.stop()
