"""The channels a notification travels on: e-mail (SMTP), Slack incoming webhooks and a
signed JSON webhook. The one catalogue of channels (`CHANNELS`).

Each `send` either returns (the receiver accepted the message) or raises one of three
errors, which decide what the outbox does next (core/notify/deliver.py):

* `TryAgain` — the receiver did not take it and said or showed it may later (a 4xx
  SMTP reply, HTTP 429 / 5xx, a refused connection): retried with backoff, never before
  its `Retry-After`;
* `Undeliverable` — refused for good (an address or a URL that does not exist, a
  configuration to fix): failed, with what to do;
* `MaybeDelivered` — the message had left and no answer came (a timeout, a dropped
  connection): Rex does not know, so it does not send it again by itself.

`leaving()` is called just before the bytes that could deliver the message go out:
the outbox records it, so a sender killed before it resends safely and one killed
after it never sends twice. For SMTP that is the DATA command, after the server took
the sender and the recipient; for HTTP it is the request.
"""

from __future__ import annotations

import contextlib
import email.policy
import hashlib
import hmac
import json
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import NewConnectionError

from core.errors import InputError, RexError
from core.logs import register_secret
from core.notify.messages import Message
from core.settings import Settings, is_loopback

MAX_RETRY_AFTER = 3600.0  # a Retry-After beyond an hour is read as an hour


class DeliveryError(RexError):
    """A delivery that did not succeed (see the module's docstring)."""


class TryAgain(DeliveryError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Undeliverable(DeliveryError):
    pass


class MaybeDelivered(DeliveryError):
    pass


Leaving = Callable[[], None]


@dataclass(frozen=True)
class Channel:
    name: str  # stored in notification_deliveries.channel and in preferences
    label: str

    def configured(self, settings: Settings) -> bool:
        raise NotImplementedError

    def send(self, message: Message, address: str, settings: Settings, leaving: Leaving) -> None:
        raise NotImplementedError


# ------------------------------------------------------------------------- e-mail


@dataclass(frozen=True)
class Email(Channel):
    name: str = "email"
    label: str = "E-mail"

    def configured(self, settings: Settings) -> bool:
        return bool(settings.smtp_host)

    def send(self, message: Message, address: str, settings: Settings, leaving: Leaving) -> None:
        """`address`: the recipient's e-mail."""
        if not settings.smtp_host:
            raise Undeliverable("e-mail is not set up: set REX_SMTP_HOST (README, Notifications)")
        mail = message.email(sender=settings.smtp_from, to=address)
        try:
            smtp = _connect(settings)
        except (OSError, smtplib.SMTPException) as error:
            raise _before_data(error, settings) from None
        with smtp:
            try:
                _log_in(smtp, settings)
                sender = _bare_address(settings.smtp_from)
                code, reply = smtp.mail(sender)
                if code != 250:
                    raise smtplib.SMTPSenderRefused(code, reply, sender)
                code, reply = smtp.rcpt(address)
                if code not in (250, 251):
                    raise smtplib.SMTPRecipientsRefused({address: (code, reply)})
            except (OSError, smtplib.SMTPException) as error:
                raise _before_data(error, settings) from None
            leaving()
            try:
                code, reply = smtp.data(mail.as_bytes(policy=email.policy.SMTP))
            except smtplib.SMTPDataError as error:  # the server answered: not taken
                raise _refused(error.smtp_code, error.smtp_error, "the message") from None
            except (OSError, smtplib.SMTPException) as error:
                raise MaybeDelivered(
                    f"the connection to {settings.smtp_host} ended while the message was "
                    f"being sent ({type(error).__name__}); it may have arrived"
                ) from None
            if code != 250:  # the server answered the message itself: not taken
                raise _refused(code, reply, "the message")
            with contextlib.suppress(OSError, smtplib.SMTPException):
                smtp.quit()  # accepted already: the goodbye does not matter


def _connect(settings: Settings) -> smtplib.SMTP:
    host, port, timeout = (
        settings.smtp_host or "",
        settings.smtp_port,
        settings.notify_timeout_seconds,
    )
    if settings.smtp_tls == "tls":
        return smtplib.SMTP_SSL(host, port, timeout=timeout, context=_tls_context(settings))
    smtp = smtplib.SMTP(host, port, timeout=timeout)
    smtp.ehlo()
    if settings.smtp_tls == "starttls":
        if not smtp.has_extn("starttls"):
            smtp.close()
            raise Undeliverable(
                f"{host}:{port} does not offer STARTTLS: set REX_SMTP_TLS=tls for implicit "
                "TLS (port 465), or none for a server on this machine"
            )
        smtp.starttls(context=_tls_context(settings))
        smtp.ehlo()
    return smtp


def _tls_context(settings: Settings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.smtp_ca_file)


def _log_in(smtp: smtplib.SMTP, settings: Settings) -> None:
    if not settings.smtp_username:
        return
    if settings.smtp_tls == "none" and not is_loopback(settings.smtp_host or ""):
        raise Undeliverable(
            "REX_SMTP_TLS=none would send the SMTP password in clear text to "
            f"{settings.smtp_host}: use starttls or tls"
        )
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
    register_secret(password)
    smtp.login(settings.smtp_username, password)


def _before_data(error: Exception, settings: Settings) -> DeliveryError:
    """Nothing of the message has left: a temporary refusal or a dropped connection is
    worth trying again; a permanent refusal or a setting to fix is not."""
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    if isinstance(error, DeliveryError):
        return error
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return Undeliverable(
            f"{where} refused the login ({error.smtp_code}): check REX_SMTP_USERNAME and "
            "REX_SMTP_PASSWORD, then `python -m core notifications retry`"
        )
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return Undeliverable(
            f"{where} offers no login (AUTH) here: unset REX_SMTP_USERNAME, or use "
            "REX_SMTP_TLS=starttls / tls if it offers one only over TLS"
        )
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        ((address, (code, reply)),) = error.recipients.items()
        return _refused(code, reply, address)
    if isinstance(error, smtplib.SMTPSenderRefused):
        return _refused(error.smtp_code, error.smtp_error, f"the sender {error.sender}")
    if isinstance(error, ssl.SSLCertVerificationError):
        return Undeliverable(
            f"{where}'s TLS certificate is not trusted ({error.verify_message}): use the "
            "server's real name in REX_SMTP_HOST, or REX_SMTP_CA_FILE for a private CA"
        )
    if isinstance(error, smtplib.SMTPResponseException):
        return _refused(error.smtp_code, error.smtp_error, "the connection")
    return TryAgain(f"could not reach {where}: {type(error).__name__}: {error}")


def _refused(code: int, reply: bytes | str, what: str) -> DeliveryError:
    said = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    words = f"the SMTP server refused {what}: {code} {said}".strip()
    return TryAgain(words) if 400 <= code < 500 else Undeliverable(words)


def _bare_address(sender: str) -> str:
    """`Rex <rex@example.com>` → `rex@example.com` (the envelope's MAIL FROM)."""
    return sender[sender.index("<") + 1 : sender.index(">")] if "<" in sender else sender


# -------------------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class Slack(Channel):
    """A Slack incoming webhook: JSON `{"text", "blocks"}`, answered `ok`."""

    name: str = "slack"
    label: str = "Slack"

    def configured(self, settings: Settings) -> bool:
        return settings.slack_webhook_url is not None

    def send(self, message: Message, address: str, settings: Settings, leaving: Leaving) -> None:
        """`address`: the webhook URL."""
        body = json.dumps(message.slack(), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        _post(address, body, headers, settings, leaving, "Slack")


@dataclass(frozen=True)
class Webhook(Channel):
    """A JSON body signed like Stripe's and Slack's own: `X-Rex-Timestamp` and
    `X-Rex-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`; the receiver
    checks it and refuses old timestamps. `X-Rex-Delivery` (also `Idempotency-Key`) is
    the same for the same message: a receiver can drop a repeat."""

    name: str = "webhook"
    label: str = "Webhook"

    def configured(self, settings: Settings) -> bool:
        return settings.webhook_url is not None

    def send(self, message: Message, address: str, settings: Settings, leaving: Leaving) -> None:
        if settings.webhook_secret is None:
            raise Undeliverable("webhooks are signed: set REX_WEBHOOK_SECRET")
        body = json.dumps(message.payload(), ensure_ascii=False).encode()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Rex-Delivery": message.key,
            "Idempotency-Key": message.key,
            "X-Rex-Event": message.kind.event.value,
            "X-Rex-Timestamp": stamp,
            "X-Rex-Signature": signature(settings.webhook_secret.get_secret_value(), stamp, body),
        }
        _post(address, body, headers, settings, leaving, "the webhook")


def signature(secret: str, stamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def _post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    settings: Settings,
    leaving: Leaving,
    who: str,
) -> None:
    parts = urlsplit(url)
    for secret in (url, parts.path, parts.query):  # a webhook URL is its own password; an
        register_secret(secret)  # HTTP library's debug line shows its path alone
    host = parts.hostname or "?"
    leaving()
    try:
        answer = requests.post(
            url,
            data=body,
            headers={"User-Agent": "Rex", **headers},
            timeout=(min(10.0, settings.notify_timeout_seconds), settings.notify_timeout_seconds),
            allow_redirects=False,
        )
    except requests.ConnectTimeout:
        raise TryAgain(f"{who} at {host} did not accept a connection in time") from None
    except requests.exceptions.SSLError as error:
        raise Undeliverable(f"{who} at {host}: TLS failed ({error.__class__.__name__})") from None
    except requests.ConnectionError as error:
        if _never_connected(error):
            raise TryAgain(f"could not connect to {who} at {host}") from None
        raise MaybeDelivered(
            f"{who} at {host} closed the connection before answering; it may have arrived"
        ) from None
    except requests.Timeout:
        raise MaybeDelivered(
            f"{who} at {host} did not answer within {settings.notify_timeout_seconds:g} s; "
            "it may have arrived"
        ) from None
    _check_answer(answer, who, host)


def _never_connected(error: requests.ConnectionError) -> bool:
    cause = error.args[0] if error.args else None
    reason = getattr(cause, "reason", cause)
    return isinstance(reason, NewConnectionError | ConnectionRefusedError)


def _check_answer(answer: requests.Response, who: str, host: str) -> None:
    status = answer.status_code
    if 200 <= status < 300:
        return
    said = answer.text.strip()[:200] or answer.reason
    if status in (408, 425, 429) or status >= 500:
        raise TryAgain(f"{who} at {host} answered {status} {said}", retry_after(answer))
    if 300 <= status < 400:
        raise Undeliverable(
            f"{who} at {host} redirects ({status}) to {answer.headers.get('Location')}: "
            "set the URL it redirects to"
        )
    fix = {
        404: "the URL is wrong or the webhook was removed",
        410: "the channel is archived or the webhook was removed",
        403: "the webhook was revoked or may not post there",
    }.get(status, "")
    raise Undeliverable(f"{who} at {host} refused it: {status} {said}" + (f" ({fix})" * bool(fix)))


def retry_after(answer: requests.Response) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date), at most an hour."""
    value = answer.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


def check_webhook_url(url: str, field: str) -> str:
    """A webhook URL Rex will post to: https, or http to this machine only."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(field, f"{url[:40]!r}… is not an http(s) URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise InputError(field, "use https (plain http is allowed to this machine only)")
    return url


EMAIL, SLACK, WEBHOOK = Email(), Slack(), Webhook()
CHANNELS: dict[str, Channel] = {c.name: c for c in (EMAIL, SLACK, WEBHOOK)}
