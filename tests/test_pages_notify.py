"""The Notifications page and Health's notifications under AppTest, on both databases:
a person's inbox (read, unread, the count in the navigation), their preferences (saved,
or refused naming the field on screen), and the failed deliveries only admins see."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import time, timedelta

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.access.actor import Actor
from core.access.roles import Role
from core.access.users import actor_for
from core.db import read_session, write_session
from core.db.models import AdAccount, DeliveryStatus, Notification, NotificationDelivery
from core.db.types import utcnow
from core.notify.events import Event
from core.notify.outbox import publish
from core.notify.preferences import my_preferences
from core.settings import get_settings, reload_settings
from tests.conftest import NOW
from tests.signed import person, signed_page

ANA = "ana@example.com"  # a viewer of the worked example's account
SLACK = "https://hooks.slack.com/services/T000/B000/ana-secret-path"


@pytest.fixture
def mail_set_up(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Rex can send e-mail (nothing is sent here: the outbox only queues)."""
    monkeypatch.setenv("REX_SMTP_HOST", "127.0.0.1")
    reload_settings()
    yield
    monkeypatch.undo()
    reload_settings()


def told(title: str, kind: Event = Event.RULE_NOTIFY, **details: object) -> int:
    """A notification about the worked example's account (act_2001), fanned out."""
    with write_session() as session:
        account = session.scalars(select(AdAccount).where(AdAccount.external_id == "act_2001"))
        note = Notification(account_id=account.one().id, kind=kind, title=title, link="executions",
                            body="Scale me", details=details, created_at=NOW)  # fmt: skip
        session.add(note)
        session.flush()
        note_id = note.id
    publish(NOW)
    return note_id


def app_as(email: str) -> AppTest:
    """The app as `make run` serves it, on the Notifications page."""
    app = signed_page("app.py", email=email).run()
    app.switch_page("pages/notifications.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def nav_title(email: str) -> str:
    """The Notifications page's title in the navigation that `email` sees now (what
    app.py registered on its first run: AppTest shows no sidebar navigation)."""
    pages = signed_page("app.py", email=email).run()._registered_pages.values()
    return next(p["page_name"] for p in pages if p["url_pathname"] == "notifications")


def texts(app: AppTest) -> str:
    return "\n".join(e.value for kind in ("markdown", "caption", "info", "success", "error")
                     for e in getattr(app, kind))  # fmt: skip


def me(email: str) -> Actor:
    return actor_for(email, via="ui")


# ------------------------------------------------------------------------- inbox


def test_a_person_reads_their_notifications_and_marks_them_read(worked, mail_set_up) -> None:  # type: ignore[no-untyped-def]
    person(ANA, roles={"act_2001": [Role.VIEWER]})
    person("cy@example.com")  # no role anywhere: told nothing about the account
    told("Scale winners: Campaign A", items=["Campaign A: ROAS 4.2"],
         facts={"Rule": "Scale winners", "ROAS (7 days)": "4.20"})  # fmt: skip
    told("An action failed on Worked example", Event.ACTION_FAILED)

    app = app_as(ANA)
    assert nav_title(ANA) == "Notifications (2)"
    assert app.tabs[0].label == "Inbox (2 unread)"
    shown = texts(app)
    assert shown.index("An action failed") < shown.index(
        "Scale winners: Campaign A"
    )  # newest first
    assert "- Campaign A: ROAS 4.2" in shown and "ROAS (7 days): **4.20**" in shown
    assert "A rule's notify action" in shown and "act_2001" in shown
    assert f"E-mail to {ANA} — waiting" in shown  # where it went
    (open_link, _) = app.get("link_button")
    assert open_link.proto.url == f"{get_settings().link_base}/executions"

    receipt = next(b for b in app.button if b.label == "Mark read")  # the newest: the failure
    app.button(key=receipt.key).click().run()
    assert "1 marked read" in app.success[0].value
    assert nav_title(ANA) == "Notifications (1)"
    assert app.button(key=receipt.key).label == "Mark unread"

    app.toggle(key="inbox_unread_only").set_value(True).run()
    assert "An action failed on" not in texts(app) and "Scale winners" in texts(app)
    app.button(key="inbox_mark_all").click().run()
    assert nav_title(ANA) == "Notifications" and "Nothing unread." in texts(app)

    outsider = app_as("cy@example.com")
    assert nav_title("cy@example.com") == "Notifications"
    assert "Nothing yet" in texts(outsider) and "Scale winners" not in texts(outsider)


# ------------------------------------------------------------------- preferences


def save(app: AppTest) -> AppTest:
    app.button(key="pref_save").click().run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_preferences_save_and_a_bad_field_is_named_and_stores_nothing(db) -> None:  # type: ignore[no-untyped-def]
    app = signed_page("pages/notifications.py", email=ANA).run()
    assert app.checkbox(key="pref_channel_email").disabled  # no SMTP: said why
    assert "REX_SMTP_HOST" in texts(app)

    # quiet hours on, but when? Then half of them: named as on screen, nothing stored
    app.selectbox(key="pref_time_zone").set_value("Europe/Berlin")
    app.toggle(key="pref_quiet").set_value(True)
    save(app)
    assert app.error[0].value.startswith("**Quiet hours · From**: pick when")
    app.time_input(key="pref_quiet_start").set_value(time(22))
    save(app)
    assert app.error[0].value.startswith("**Quiet hours · Until**: give both ends")
    assert not my_preferences(actor=me(ANA)).saved

    # a Slack URL that is not https; Slack without a URL
    app.time_input(key="pref_quiet_end").set_value(time(7))
    app.checkbox(key="pref_channel_slack").check()
    app.text_input(key="pref_slack_url").input("http://hooks.example.com/x")
    save(app)
    assert app.error[0].value.startswith("**Slack URL**: use https")
    app.text_input(key="pref_slack_url").input("")
    save(app)
    assert app.error[0].value.startswith("**Slack URL**: set your Slack URL")
    assert not my_preferences(actor=me(ANA)).saved

    app.checkbox(key=f"pref_event_{Event.ACTION_FAILED}").uncheck()
    app.text_input(key="pref_slack_url").input(SLACK)
    app.toggle(key="pref_digest").set_value(True)
    app.selectbox(key="pref_digest_hour").set_value(9)
    save(app)
    assert not app.error
    assert "Preferences saved: email, slack · daily digest at 09:00 · quiet hours 22:00–07:00 " \
           "(Europe/Berlin)" in app.success[0].value  # fmt: skip
    saved = my_preferences(actor=me(ANA))
    assert saved.muted == {Event.ACTION_FAILED} and saved.channels == {"email", "slack"}
    assert (saved.digest, saved.digest_hour, saved.time_zone) == (True, 9, "Europe/Berlin")
    assert (saved.quiet_start, saved.quiet_end, saved.has_slack_url) == (time(22), time(7), True)
    # the URL is never shown back: the field is empty, the page says one is set
    assert app.text_input(key="pref_slack_url").value == ""
    assert "A Slack URL is set" in texts(app) and "ana-secret-path" not in texts(app)

    # removing the URL while Slack stays on is refused; with Slack off it goes
    app.checkbox(key="pref_slack_remove").check()
    save(app)
    assert app.error[0].value.startswith("**Slack URL**: set your Slack URL")
    assert my_preferences(actor=me(ANA)) == saved
    app.checkbox(key="pref_channel_slack").uncheck()
    app.checkbox(key="pref_slack_remove").check()
    app.toggle(key="pref_quiet").set_value(False)
    save(app)
    assert app.success and not app.error
    removed = my_preferences(actor=me(ANA))
    assert not removed.has_slack_url and removed.channels == {"email"}
    assert removed.quiet_start is None and removed.quiet_end is None
    assert "A Slack URL is set" not in texts(app)


# ------------------------------------------------------------------------ health


def test_health_shows_failed_deliveries_to_admins_who_send_them_again(worked) -> None:  # type: ignore[no-untyped-def]
    person(ANA, roles={"act_2001": [Role.VIEWER]})
    note = told("Budget raise failed on Worked example", Event.ACTION_FAILED)
    with write_session() as session:
        session.add(NotificationDelivery(
            notification_id=note, user_id=None, channel="slack", target="team",
            idempotency_key="a-failed-one", status=DeliveryStatus.FAILED, attempts=5,
            not_before=utcnow(), last_error="Slack answered 404: no_service",
            created_at=utcnow() - timedelta(hours=1),
        ))  # fmt: skip

    viewer = signed_page("pages/health.py", email=ANA).run()
    assert not viewer.exception
    assert "Notifications" not in [s.value for s in viewer.subheader]
    assert not [b for b in viewer.button if b.key == "notify_send_again"]

    admin = signed_page("pages/health.py").run()
    assert not admin.exception, [e.value for e in admin.exception]
    assert "Notifications" in [s.value for s in admin.subheader]
    assert "E-mail: **not set up**" in texts(admin)
    (table,) = [f.value for f in admin.dataframe if "Notification" in f.value.columns]
    assert table.to_dict("records") == [{
        "Notification": "Budget raise failed on Worked example", "Channel": "Slack",
        "To": "the team's channel", "Tries": 5,
        "What happened": "failed: Slack answered 404: no_service",
    }]  # fmt: skip
    assert {m.label: m.value for m in admin.metric}["Failed"] == "1"

    admin.button(key="notify_send_again").click().run()
    assert "1 deliveries queued to be sent again" in admin.success[0].value
    with read_session() as session:
        assert session.scalar(select(NotificationDelivery.status)) == DeliveryStatus.PENDING
    assert "No delivery failed" in texts(admin)
