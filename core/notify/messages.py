"""One notification as each channel shows it: an e-mail (plain text and HTML), a Slack
message (Block Kit blocks with a text fallback) and a JSON webhook body.

Everything a message says comes from its `notifications` row: the title, the body, the
facts (account, rule, entity, the values that matched — `details`) and the page its
link opens, under REX_PUBLIC_URL.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from core.labels import format_time
from core.notify.events import EventKind, event_of

SLACK_SECTION_LIMIT = 3000  # Slack refuses a section's text longer than this
SLACK_HEADER_LIMIT = 150
SLACK_FIELD_LIMIT = 2000
SLACK_FIELDS = 10  # at most this many fields in a section


@dataclass(frozen=True)
class Message:
    kind: EventKind
    title: str
    body: str
    facts: tuple[tuple[str, str], ...]  # ("Account", "Shop (act_1)"), ("ROAS 7d", "3.20")
    items: tuple[str, ...]  # the lines of a list (failed actions, proposals waiting)
    link: str | None  # the page, absolute
    at: datetime
    key: str  # the delivery's idempotency key

    @classmethod
    def of(
        cls,
        *,
        kind: str,
        title: str,
        body: str | None,
        details: dict[str, Any] | None,
        link: str | None,
        at: datetime,
        key: str,
        base: str,
    ) -> Message:
        details = details or {}
        facts = [(str(k), str(v)) for k, v in (details.get("facts") or {}).items()]
        return cls(
            kind=event_of(kind),
            title=title,
            body=body or "",
            facts=tuple(facts),
            items=tuple(str(i) for i in details.get("items") or ()),
            link=f"{base}/{link.lstrip('/')}" if link else None,
            at=at,
            key=key,
        )

    # ------------------------------------------------------------------- e-mail

    def email(self, *, sender: str, to: str) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = f"[Rex] {self.title}"
        mail["From"] = sender
        mail["To"] = to
        mail["Date"] = format_datetime(self.at)
        mail["Message-ID"] = f"<{self.key}@rex.local>"  # the same for the same message
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies
        mail["X-Rex-Delivery"] = self.key
        mail.set_content(self.text())
        mail.add_alternative(self.html(), subtype="html")
        return mail

    def text(self) -> str:
        lines = [self.title, "", self.body] if self.body else [self.title]
        if self.items:
            lines += ["", *(f"- {item}" for item in self.items)]
        if self.facts:
            lines += ["", *(f"{name}: {value}" for name, value in self.facts)]
        if self.link:
            lines += ["", f"Open in Rex: {self.link}"]
        lines += ["", "--", self._why()]
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        e = html.escape
        parts = [f'<h2 style="margin:0 0 12px">{e(self.title)}</h2>']
        if self.body:
            parts.append(f"<p>{e(self.body)}</p>")
        if self.items:
            parts.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in self.items) + "</ul>")
        if self.facts:
            rows = "".join(
                f'<tr><th align="left" style="padding:2px 12px 2px 0">{e(n)}</th>'
                f"<td>{e(v)}</td></tr>"
                for n, v in self.facts
            )
            parts.append(f"<table>{rows}</table>")
        if self.link:
            parts.append(f'<p><a href="{e(self.link, quote=True)}">Open in Rex</a></p>')
        parts.append(f'<p style="color:#666;font-size:12px">{e(self._why())}</p>')
        return "<!doctype html><html><body>" + "".join(parts) + "</body></html>"

    def _why(self) -> str:
        return (
            f"{self.kind.label} · {format_time(self.at)}. You get this because you have "
            "access to the account; choose what you hear in Rex → Notifications."
        )

    # -------------------------------------------------------------------- Slack

    def slack(self) -> dict[str, Any]:
        """Block Kit: a header, the body, the list, the facts as fields, a button."""
        blocks: list[dict[str, Any]] = [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": _cut(self.title, SLACK_HEADER_LIMIT)},
            },
        ]
        text = "\n".join(
            [_mrkdwn(self.body)] * bool(self.body) + [f"• {_mrkdwn(i)}" for i in self.items]
        )
        if text:
            blocks.append(_section(_cut(text, SLACK_SECTION_LIMIT)))
        fields = [
            {"type": "mrkdwn", "text": _cut(f"*{_mrkdwn(n)}*\n{_mrkdwn(v)}", SLACK_FIELD_LIMIT)}
            for n, v in self.facts
        ]
        for start in range(0, len(fields), SLACK_FIELDS):
            blocks.append({"type": "section", "fields": fields[start : start + SLACK_FIELDS]})
        if self.link:
            blocks.append(
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": "Open in Rex"},
                            "url": self.link,
                        }
                    ],
                }
            )
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"{self.kind.label} · {format_time(self.at)}"}
                ],
            }
        )
        fallback = f"{self.title}: {self.body}" if self.body else self.title
        return {"text": _cut(fallback, SLACK_SECTION_LIMIT), "blocks": blocks}

    # ------------------------------------------------------------------ webhook

    def payload(self) -> dict[str, Any]:
        return {
            "id": self.key,
            "event": self.kind.event.value,
            "title": self.title,
            "body": self.body,
            "items": list(self.items),
            "facts": dict(self.facts),
            "link": self.link,
            "created_at": self.at.isoformat(),
        }


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _mrkdwn(text: str) -> str:
    """Slack's three control characters, escaped as its docs ask."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
