"""Notifications that reach people: each event told once, to the right people, on their
channels — with a real SMTP server and a real HTTP receiver on loopback, on both
databases."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from core.access.actor import SYSTEM, Actor, load_actor
from core.access.roles import Role
from core.access.users import add_user, grant
from core.accounts import connect_account, get_account
from core.db import read_session, write_session
from core.db.models import DeliveryStatus, Notification, NotificationDelivery
from core.engine.run import run_rule_now
from core.notify.deliver import deliver_due, retry
from core.notify.digest import make_digests
from core.notify.events import Event
from core.notify.inbox import inbox, mark_read, outbox_health
from core.notify.outbox import publish
from core.notify.preferences import save_preferences
from core.rules.store import save_rule
from core.sandbox import FaultConfig
from core.settings import reload_settings
from core.sync.runner import SyncOptions, sync_accounts
from tests.conftest import NOW
from tests.receivers import HttpReceiver, Mail, MailCatcher, free_port, self_signed
from tests.test_engine import SCALE_WINNERS
from tests.waiting import wait_until

SECRET = "a-long-random-webhook-secret"
PUBLIC = "https://rex.example.com"
NOTIFY = {**SCALE_WINNERS, "actions": [{"type": "notify", "message": "Scale me"}]}
APPROVAL = {**SCALE_WINNERS, "safety": {**SCALE_WINNERS["safety"], "require_approval": True}}
DEFAULTS = {"muted": [], "channels": ["email"], "digest": False, "digest_hour": 8,
            "time_zone": "UTC", "quiet_start": None, "quiet_end": None}  # fmt: skip


@pytest.fixture
def mail() -> Iterator[MailCatcher]:
    with MailCatcher() as catcher:
        yield catcher


@pytest.fixture
def hooks() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


def configure(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reload_settings()


@pytest.fixture
def channels(
    mail: MailCatcher, hooks: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """E-mail to the catcher, the team's Slack and webhook to the receiver."""
    configure(
        monkeypatch,
        REX_SMTP_HOST="127.0.0.1", REX_SMTP_PORT=str(mail.port), REX_SMTP_TLS="none",
        REX_SMTP_FROM="Rex <rex@example.com>",
        REX_SLACK_WEBHOOK_URL=hooks.url("/slack"), REX_WEBHOOK_URL=hooks.url("/hook"),
        REX_WEBHOOK_SECRET=SECRET, REX_PUBLIC_URL=PUBLIC, REX_NOTIFY_BACKOFF_SECONDS="0",
    )  # fmt: skip
    yield
    monkeypatch.undo()
    reload_settings()


def notify_twice() -> None:
    """The notify rule run twice (an hour apart): two notifications, each naming the two
    campaigns that matched (A and C)."""
    rule = save_rule(NOTIFY, now=NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW + timedelta(hours=1), by=SYSTEM)


def user(email: str, roles: list[Role] | None = None, account: str = "act_2001") -> Actor:
    add_user(email, password="correct horse battery", by=SYSTEM)
    if roles:
        grant(email, account, roles, by=SYSTEM)
    with read_session() as session:
        from core.db.models import User

        user_id = session.scalar(select(User.id).where(User.email == email))
        assert user_id is not None
        return load_actor(session, user_id)


def deliver(now: datetime | None = None, rounds: int = 1) -> None:
    """Publish (as of `now`, by default just after the frozen NOW the rules ran at) and
    deliver what is due (as of `now`, by default the wall clock: retries are due then)."""
    for _ in range(rounds):
        publish(now or NOW + timedelta(minutes=1))
        deliver_due(now, runner="test")


def deliveries() -> list[NotificationDelivery]:
    with read_session() as session:
        return list(session.scalars(select(NotificationDelivery).order_by(NotificationDelivery.id)))


def subject(mail: Mail) -> str:
    """The Subject as a mail client shows it (a long one is folded onto a new line)."""
    return str(mail.message["Subject"]).strip()


def verified(request) -> bool:  # type: ignore[no-untyped-def]
    stamp = request.headers["X-Rex-Timestamp"]
    expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + request.body, hashlib.sha256)
    return hmac.compare_digest(request.headers["X-Rex-Signature"], f"sha256={expected.hexdigest()}")


# ------------------------------------------------------------------ what is sent


def test_a_rule_notify_reaches_its_people_by_email_slack_and_webhook(
    worked, channels, mail: MailCatcher, hooks: HttpReceiver, db: Engine
) -> None:  # type: ignore[no-untyped-def]
    ana = user("ana@example.com", [Role.VIEWER])
    zed = user("zed@example.com")  # no grant: hears nothing
    notify_twice()

    deliver()

    mails = mail.to("ana@example.com")
    assert [subject(m) for m in mails] == 2 * ["[Rex] Scale winners: 2 campaigns matched"]
    text, html = mails[0].part("plain"), mails[0].part("html")
    assert "Scale me" in text and "Account: Worked example (USD) (act_2001)" in text
    lines = [line for line in text.splitlines() if line.startswith("- ")]
    assert [line.split(" (")[0] for line in lines] == ["- A", "- C"]  # the entities matched
    assert all("ROAS, last 7 days" in line and "Profit, last 7 days" in line for line in lines)
    assert f"Open in Rex: {PUBLIC}/executions" in text
    assert f'href="{PUBLIC}/executions"' in html and "<th" in html
    assert mails[0].sender == "rex@example.com" and mails[0].message["Auto-Submitted"]
    assert mail.to("zed@example.com") == []

    slack = [r.json for r in hooks.to("/slack")]
    assert [m["text"] for m in slack] == 2 * ["Scale winners: 2 campaigns matched: Scale me"]
    for message in slack:
        kinds = [b["type"] for b in message["blocks"]]
        assert kinds[0] == "header" and "actions" in kinds
        assert all(
            len(b["text"]["text"]) <= 3000
            for b in message["blocks"]
            if b["type"] == "section" and "text" in b
        )
        button = next(b for b in message["blocks"] if b["type"] == "actions")["elements"][0]
        assert button["url"] == f"{PUBLIC}/executions"

    hooked = hooks.to("/hook")
    assert len(hooked) == 2 and all(verified(r) for r in hooked)
    assert {r.json["event"] for r in hooked} == {"rule_notify"}
    assert len({r.headers["X-Rex-Delivery"] for r in hooked}) == 2
    assert hooked[0].json["facts"]["Rule"] == "Scale winners"

    assert (inbox(actor=ana).unread, inbox(actor=ana).total) == (2, 2)
    assert inbox(actor=zed).total == 0
    assert {d.status for d in deliveries()} == {DeliveryStatus.SENT}

    deliver(rounds=2)  # nothing new: nothing sent again
    assert len(mail.mails) == 2 and len(hooks.requests) == 4


def test_the_inbox_marks_read_and_unread_and_shows_where_each_went(
    worked, channels, db: Engine
) -> None:  # type: ignore[no-untyped-def]
    ana = user("ana@example.com", [Role.VIEWER])
    notify_twice()
    deliver()

    box = inbox(actor=ana)
    first = box.items[0]
    assert {(d.channel, d.to, d.words) for d in first.deliveries} == {
        ("E-mail", "ana@example.com", "sent"), ("Slack", "the team's channel", "sent"),
        ("Webhook", "the team's channel", "sent"),
    }  # fmt: skip
    assert (
        first.link == f"{PUBLIC}/executions" and first.account == "Worked example (USD) (act_2001)"
    )
    assert mark_read([first.receipt_id], actor=ana) == 1
    assert inbox(actor=ana).unread == 1 and len(inbox(actor=ana, unread_only=True).items) == 1
    assert mark_read(actor=ana) == 2  # all of them
    assert inbox(actor=ana).unread == 0
    mark_read([first.receipt_id], actor=ana, unread=True)
    assert inbox(actor=ana).unread == 1

    other = user("bo@example.com", [Role.VIEWER])  # someone else's receipts are not theirs
    assert mark_read([first.receipt_id], actor=other) == 0


def test_proposals_waiting_reach_the_approvers_of_the_account_only(
    worked, channels, mail: MailCatcher, db: Engine
) -> None:  # type: ignore[no-untyped-def]
    viewer = user("ana@example.com", [Role.VIEWER])
    approver = user("cy@example.com", [Role.APPROVER])
    rule = save_rule(APPROVAL, now=NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW, by=SYSTEM)

    deliver()

    (message,) = mail.to("cy@example.com")
    assert subject(message) == "[Rex] 2 proposals wait for approval on Worked example (USD)"
    text = message.part("plain")
    assert f"Open in Rex: {PUBLIC}/approvals" in text
    assert "- change budget A 200.00 USD → 250.00 USD (Scale winners)" in text
    assert mail.to("ana@example.com") == [] and inbox(actor=viewer).total == 0
    assert inbox(actor=approver).items[0].page == "approvals"

    run_rule_now(rule.id, NOW + timedelta(hours=1), by=SYSTEM)  # the same proposals wait
    deliver()
    assert len(mail.to("cy@example.com")) == 1  # told once


def test_a_failed_action_is_told_once(worked, channels, mail: MailCatcher, db: Engine) -> None:  # type: ignore[no-untyped-def]
    user("ana@example.com", [Role.MARKETER])
    worked.set_faults(FaultConfig(rates={"buc": 1.0}, regain_minutes=30))
    run_rule_now(save_rule(SCALE_WINNERS, now=NOW, by=SYSTEM).id, NOW, by=SYSTEM)

    deliver(rounds=2)

    (message,) = mail.to("ana@example.com")
    assert subject(message) == "[Rex] 2 actions failed on Worked example (USD)"
    text = message.part("plain")
    assert "change budget A 200.00 USD → 250.00 USD:" in text and "Rule: Scale winners" in text


def test_an_account_held_for_its_token_is_told_once_until_reconnected(
    worked, channels, mail: MailCatcher, db: Engine
) -> None:  # type: ignore[no-untyped-def]
    user("ana@example.com", [Role.VIEWER])
    worked.set_faults(FaultConfig(expired_token=True))
    options = SyncOptions(days=2, breakdowns=False, now=NOW)
    sync_accounts(options=options)
    sync_accounts(options=options)
    deliver()
    (held,) = mail.to("ana@example.com")
    assert subject(held).startswith("[Rex] Reconnect Worked example (USD) (act_2001)")
    assert f"{PUBLIC}/accounts" in held.part("plain")

    worked.set_faults(FaultConfig())
    connect_account("act_2001", worked.token, graph_url=worked.url, by=SYSTEM)
    assert not get_account("act_2001").needs_reconnect
    worked.set_faults(FaultConfig(expired_token=True))
    sync_accounts(options=options)
    deliver()
    assert len(mail.to("ana@example.com")) == 2  # held again after the reconnection


# -------------------------------------------------------------- when and whether


def test_quiet_hours_hold_messages_and_muted_events_reach_only_the_inbox(
    worked, channels, mail: MailCatcher, db: Engine
) -> None:  # type: ignore[no-untyped-def]
    ana = user("ana@example.com", [Role.VIEWER])
    bo = user("bo@example.com", [Role.VIEWER])
    now = datetime.now(UTC)
    tokyo = now.astimezone(ZoneInfo("Asia/Tokyo"))
    start, end = (tokyo - timedelta(hours=1)), (tokyo + timedelta(hours=2))
    quiet = {"quiet_start": f"{start:%H:%M}", "quiet_end": f"{end:%H:%M}"}
    save_preferences(by=ana, **{**DEFAULTS, "time_zone": "Asia/Tokyo", **quiet})
    save_preferences(by=bo, **{**DEFAULTS, "muted": ["rule_notify"]})
    notify_twice()

    deliver(now)
    assert mail.to("ana@example.com") == [] and mail.to("bo@example.com") == []
    assert inbox(actor=ana).total == 2 and inbox(actor=bo).total == 2  # the inbox has all
    waiting = [d for d in deliveries() if d.channel == "email"]
    assert {d.target for d in waiting} == {"ana@example.com"}
    quiet_end = end.replace(second=0, microsecond=0).astimezone(UTC)
    assert all(d.not_before == quiet_end for d in waiting)

    deliver(quiet_end - timedelta(minutes=1))
    assert mail.to("ana@example.com") == []
    deliver(quiet_end + timedelta(seconds=1))
    assert len(mail.to("ana@example.com")) == 2 and mail.to("bo@example.com") == []


def test_preferences_refuse_bad_fields_and_store_nothing(db: Engine) -> None:
    from core.errors import InputError
    from core.notify.preferences import my_preferences

    ana = user("ana@example.com")
    for change, field in (
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"quiet_start": "22:00"}, "quiet_end"),
        ({"quiet_start": "25:00", "quiet_end": "07:00"}, "quiet_start"),
        ({"muted": ["sometimes"]}, "muted"),
        ({"channels": ["pigeon"]}, "channels"),
        ({"channels": ["slack"]}, "slack_url"),
        ({"digest_hour": 24}, "digest_hour"),
        ({"slack_url": "http://hooks.example.com/x"}, "slack_url"),
    ):
        with pytest.raises(InputError) as refused:
            save_preferences(by=ana, **{**DEFAULTS, **change})
        assert refused.value.field == field
    assert not my_preferences(actor=ana).saved


def test_a_persons_own_slack_url_is_stored_encrypted_and_used(
    worked, channels, hooks: HttpReceiver, db: Engine
) -> None:  # type: ignore[no-untyped-def]
    from core.db.models import NotificationPreference
    from core.notify.preferences import my_preferences

    ana = user("ana@example.com", [Role.VIEWER])
    own = hooks.url("/ana")
    save_preferences(by=ana, **{**DEFAULTS, "channels": ["slack"]}, slack_url=own)
    with read_session() as session:
        stored = session.get_one(NotificationPreference, ana.user_id)
    assert stored.slack_url and own not in stored.slack_url  # encrypted at rest
    assert my_preferences(actor=ana).has_slack_url and own not in repr(my_preferences(actor=ana))

    notify_twice()
    deliver()
    assert len(hooks.accepted("/ana")) == 2


def test_the_digest_comes_once_a_day_at_the_persons_hour(
    worked, channels, mail: MailCatcher, db: Engine
) -> None:  # type: ignore[no-untyped-def]
    ana = user("ana@example.com", [Role.APPROVER])
    user("bo@example.com", [Role.VIEWER])  # digest off (the default): none
    save_preferences(by=ana, **{**DEFAULTS, "digest": True, "time_zone": "Asia/Tokyo"})
    rule = save_rule(APPROVAL, now=NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW, by=SYSTEM)
    tokyo = ZoneInfo("Asia/Tokyo")
    day = NOW.astimezone(tokyo).date()  # the proposals wait from NOW for 24 hours
    seven = datetime(day.year, day.month, day.day, 7, 59, tzinfo=tokyo)
    if seven < NOW:
        seven += timedelta(days=1)

    assert make_digests(seven.astimezone(UTC)) == 0  # before her hour
    assert make_digests((seven + timedelta(minutes=2)).astimezone(UTC)) == 1
    assert make_digests((seven + timedelta(hours=5)).astimezone(UTC)) == 0  # once a day
    deliver()
    digests = [m for m in mail.to("ana@example.com") if "digest" in subject(m)]
    (digest,) = digests
    text = digest.part("plain")
    assert "Approvals waiting for you: 2" in text and "Worked example (USD) (act_2001)" in text
    assert mail.to("bo@example.com") == []  # a viewer with the digest off: nothing
    with read_session() as session:
        kinds = session.scalars(
            select(Notification.kind).where(Notification.user_id.is_not(None))
        ).all()
    assert kinds == [Event.DIGEST]
    assert make_digests((seven + timedelta(days=1, minutes=2)).astimezone(UTC)) == 1  # next day


# ------------------------------------------------------------ failure and retry


def test_a_receiver_that_fails_then_recovers_gets_each_message_exactly_once(
    worked, channels, mail: MailCatcher, hooks: HttpReceiver, db: Engine
) -> None:  # type: ignore[no-untyped-def]
    user("ana@example.com", [Role.VIEWER])
    mail.replies.extend(["451 4.3.0 Try again later", "421 4.7.0 Busy"])
    hooks.answers.extend([(503, {}, "down"), (500, {}, "oops"), (502, {}, "gateway")])
    notify_twice()

    deliver(rounds=6)

    assert len(mail.to("ana@example.com")) == 2
    for path in ("/slack", "/hook"):
        taken = hooks.accepted(path)
        assert len(taken) == 2
    keys = [r.headers.get("X-Rex-Delivery") for r in hooks.accepted("/hook")]
    assert len(set(keys)) == 2
    assert len(hooks.requests) == 4 + 3  # the failures, and each message once
    rows = deliveries()
    assert {d.status for d in rows} == {DeliveryStatus.SENT}
    assert sum(d.attempts for d in rows) == len(rows) + 2 + 3


def test_retry_after_is_honoured_for_the_whole_channel(
    worked, channels, hooks: HttpReceiver, db: Engine
) -> None:  # type: ignore[no-untyped-def]
    hooks.answers.append((429, {"Retry-After": "120"}, "rate_limited"))
    notify_twice()
    before = datetime.now(UTC)

    deliver()

    slack = [d for d in deliveries() if d.channel == "slack"]
    assert len(hooks.to("/slack")) == 1  # the second one was not tried meanwhile
    assert all(d.status == DeliveryStatus.PENDING for d in slack)
    assert all(d.not_before >= before + timedelta(seconds=119) for d in slack)
    deliver(before + timedelta(seconds=121))
    assert len(hooks.accepted("/slack")) == 2


def test_a_permanent_refusal_fails_and_is_shown_in_health_and_on_the_notification(
    worked, channels, hooks: HttpReceiver, db: Engine
) -> None:  # type: ignore[no-untyped-def]
    ana = user("ana@example.com", [Role.VIEWER])
    hooks.answers.extend([(404, {}, "no_service"), (404, {}, "no_service")])
    notify_twice()

    deliver(rounds=3)

    failed = [d for d in deliveries() if d.status == DeliveryStatus.FAILED]
    assert len(failed) == 2 and len(hooks.to("/slack")) == 2  # not retried
    assert (
        "404 no_service" in failed[0].last_error and "webhook was removed" in failed[0].last_error
    )
    health = outbox_health(actor=SYSTEM, days=30)  # NOW, the rules' time, is in the past
    assert health.counts["failed"] == 2 and health.counts["sent"] == 4
    assert health.channels == {"E-mail": True, "Slack": True, "Webhook": True}
    assert all("404" in d.error for _, d in health.troubled)
    first = inbox(actor=ana).items[-1]  # newest first: the first notification is last
    shown = [d.words for d in first.deliveries if d.channel == "Slack"]
    assert shown and shown[0].startswith("failed: Slack at 127.0.0.1 refused it: 404")


def test_a_person_who_loses_access_meanwhile_is_not_sent_what_waited(
    worked, channels, mail: MailCatcher, db: Engine
) -> None:  # type: ignore[no-untyped-def]
    from core.access.users import revoke

    ana = user("ana@example.com", [Role.VIEWER])
    now = datetime.now(UTC)
    quiet = {"quiet_start": f"{now - timedelta(hours=1):%H:%M}",
             "quiet_end": f"{now + timedelta(hours=1):%H:%M}"}  # fmt: skip
    save_preferences(by=ana, **{**DEFAULTS, **quiet})
    notify_twice()
    deliver(now)  # waits for the end of her quiet hours
    revoke("ana@example.com", "act_2001", by=SYSTEM)

    deliver(now + timedelta(hours=2))

    assert mail.to("ana@example.com") == []
    email = [d for d in deliveries() if d.channel == "email"]
    assert {d.status for d in email} == {DeliveryStatus.SKIPPED}
    assert all("no longer have access" in (d.last_error or "") for d in email)


# ------------------------------------------------------------------ TLS and login


def send_one(mail: MailCatcher, monkeypatch: pytest.MonkeyPatch, **env: str) -> DeliveryStatus:
    """One notification to an admin over `mail` with these settings; its delivery's end."""
    configure(monkeypatch, REX_SMTP_HOST="127.0.0.1", REX_SMTP_PORT=str(mail.port), **env)
    add_user("ops@example.com", password="correct horse battery", admin=True, by=SYSTEM)
    with write_session() as session:
        session.add(Notification(kind=Event.OUTCOME_UNKNOWN, title="Check action #9"))
    deliver()
    (row,) = deliveries()
    return row


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit-tls"])
# aiosmtpd warns that AUTH is not made to require TLS: over implicit TLS it already is
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_email_over_tls_with_a_login(
    implicit: bool, tmp_path, monkeypatch: pytest.MonkeyPatch, db: Engine
) -> None:  # type: ignore[no-untyped-def]
    context, ca_file = self_signed(tmp_path)
    with MailCatcher(tls=context, implicit=implicit, logins={"rex": "s3cret"}) as mail:
        row = send_one(mail, monkeypatch, REX_SMTP_TLS="tls" if implicit else "starttls",
                       REX_SMTP_CA_FILE=str(ca_file), REX_SMTP_USERNAME="rex",
                       REX_SMTP_PASSWORD="s3cret")  # fmt: skip
        assert row.status == DeliveryStatus.SENT, row.last_error
        assert mail.logins == ["rex"] and len(mail.to("ops@example.com")) == 1
    monkeypatch.undo()
    reload_settings()


def test_a_refused_login_or_an_untrusted_certificate_fails_with_what_to_do(
    tmp_path, monkeypatch: pytest.MonkeyPatch, db: Engine
) -> None:  # type: ignore[no-untyped-def]
    context, ca_file = self_signed(tmp_path)
    with MailCatcher(tls=context, logins={"rex": "s3cret"}) as mail:
        row = send_one(mail, monkeypatch, REX_SMTP_TLS="starttls", REX_SMTP_CA_FILE=str(ca_file),
                       REX_SMTP_USERNAME="rex", REX_SMTP_PASSWORD="wrong")  # fmt: skip
        assert row.status == DeliveryStatus.FAILED and mail.mails == []
        assert "refused the login" in row.last_error and "REX_SMTP_PASSWORD" in row.last_error
        assert "wrong" not in row.last_error  # a password is never shown

    with MailCatcher(tls=context) as mail:  # the same message again, to a server not trusted
        monkeypatch.delenv("REX_SMTP_CA_FILE")
        monkeypatch.delenv("REX_SMTP_USERNAME")
        configure(monkeypatch, REX_SMTP_PORT=str(mail.port))
        assert retry(by=SYSTEM) == 1
        deliver()
        (row,) = deliveries()
        assert row.status == DeliveryStatus.FAILED and mail.mails == []
        assert "certificate is not trusted" in row.last_error
        assert "REX_SMTP_CA_FILE" in row.last_error
    monkeypatch.undo()
    reload_settings()


def test_webhook_urls_and_the_smtp_password_are_never_shown_or_logged(
    worked, hooks: HttpReceiver, mail: MailCatcher, monkeypatch: pytest.MonkeyPatch, db: Engine
) -> None:  # type: ignore[no-untyped-def]
    import io
    import logging

    from core.accounts import public_settings
    from core.logs import RedactingFilter

    secret_path = "/services/T0AAA/B0BBB/abcdefSECRETxyz123"
    configure(monkeypatch, REX_SLACK_WEBHOOK_URL=hooks.url(secret_path),
              REX_SMTP_HOST="127.0.0.1", REX_SMTP_PORT=str(mail.port), REX_SMTP_TLS="none",
              REX_SMTP_USERNAME="rex", REX_SMTP_PASSWORD="smtp-pass-word-42")  # fmt: skip
    hooks.answers.append((410, {}, "channel_is_archived"))
    user("ana@example.com", [Role.VIEWER])
    notify_twice()
    logged = io.StringIO()
    handler = logging.StreamHandler(logged)  # Rex's own handler: every record scrubbed
    handler.addFilter(RedactingFilter())
    root, before = logging.getLogger(), logging.getLogger().level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # even the HTTP library's debug lines
    try:
        deliver()
    finally:
        root.removeHandler(handler)
        root.setLevel(before)

    shown = public_settings()
    assert shown["slack_webhook_url"] == "set (hidden)" and shown["smtp_password"] == "set (hidden)"
    rows = deliveries()
    assert [d.last_error for d in rows if d.channel == "slack"][0].endswith(
        "(the channel is archived or the webhook was removed)"
    )
    assert "POST" in logged.getvalue()  # the HTTP library did log the request
    everything = " ".join([logged.getvalue(), repr(shown), *(d.last_error or "" for d in rows)])
    assert "SECRETxyz" not in everything and "smtp-pass-word" not in everything
    monkeypatch.undo()
    reload_settings()


# ------------------------------------------------------------------ the commands


def test_notifications_test_sends_on_every_channel_and_says_what_each_answered(
    channels, mail: MailCatcher, hooks: HttpReceiver, db: Engine
) -> None:  # type: ignore[no-untyped-def]
    from tests.test_cli import rex

    add_user("ops@example.com", password="correct horse battery", admin=True, by=SYSTEM)
    hooks.answers.append((404, {}, "no_service"))  # the team's Slack is gone

    result = rex("notifications", "test", "--as", "ops@example.com")

    assert result.returncode == 1, result.stderr  # one channel failed
    lines = result.stdout.splitlines()
    assert any(line.startswith("E-mail") and "ops@example.com" in line and "sent" in line
               for line in lines)  # fmt: skip
    assert any(line.startswith("Slack") and "404 no_service" in line for line in lines)
    assert any(line.startswith("Webhook") and line.rstrip().endswith("sent") for line in lines)
    (test_mail,) = mail.to("ops@example.com")
    assert subject(test_mail) == "[Rex] Rex test message"
    assert verified(hooks.to("/hook")[0])
    assert deliveries() == []  # outside the outbox: nothing recorded


def test_the_catcher_prints_what_arrives_and_checks_the_signature(channels, db: Engine) -> None:  # type: ignore[no-untyped-def]
    import threading

    from core.notify.catcher import catch

    said: list[str] = []
    stop = threading.Event()
    smtp_port, http_port = free_port(), free_port()
    worker = threading.Thread(target=catch, kwargs={
        "smtp_port": smtp_port, "http_port": http_port, "secret": SECRET, "say": said.append,
        "stop": stop})  # fmt: skip
    worker.start()
    try:
        wait_until(lambda: said, 10, 0.05, message="the catcher did not start")
        configure_env = {"REX_SMTP_PORT": str(smtp_port),
                         "REX_SLACK_WEBHOOK_URL": f"http://127.0.0.1:{http_port}/slack",
                         "REX_WEBHOOK_URL": f"http://127.0.0.1:{http_port}/hook"}  # fmt: skip
        with pytest.MonkeyPatch.context() as patch:
            configure(patch, **configure_env)
            add_user("ops@example.com", password="correct horse battery", admin=True, by=SYSTEM)
            with write_session() as session:
                session.add(Notification(kind=Event.OUTCOME_UNKNOWN, title="Check action #4"))
            deliver()
        reload_settings()
        wait_until(lambda: len(said) >= 4, 10, 0.05, message="not everything arrived")
    finally:
        stop.set()
        worker.join(10)
    text = "\n".join(said)
    assert "e-mail to ops@example.com (text/html + text/plain)" in text
    assert "Subject: [Rex] Check action #4" in text
    assert "Slack message" in text and "webhook outcome_unknown [signature ok]" in text
