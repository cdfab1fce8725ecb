"""A scheduler SIGKILLed in the middle of a delivery: nothing is lost, nothing sent twice
— the scheduler as its own process, the receivers real servers on loopback, on both
databases."""

from __future__ import annotations

import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from core.access.actor import SYSTEM
from core.access.users import add_user
from core.db import read_session, write_session
from core.db.models import DeliveryStatus, Notification, NotificationDelivery
from core.notify.deliver import STOPPED
from core.notify.events import Event
from tests.receivers import HttpReceiver, MailCatcher
from tests.test_scheduler import spawn_scheduler
from tests.waiting import wait_until

ADMIN = "ops@example.com"
FAST = {"REX_NOTIFY_SECONDS": "1", "REX_NOTIFY_CLAIM_SECONDS": "3",
        "REX_NOTIFY_BACKOFF_SECONDS": "0", "REX_SCHEDULER_STOP_SECONDS": "5"}  # fmt: skip


@pytest.fixture
def told(db: Engine) -> list[int]:
    """Three things to tell (about Rex as a whole: its admins hear them)."""
    add_user(ADMIN, password="correct horse battery", admin=True, by=SYSTEM)
    with write_session() as session:
        notes = [Notification(kind=Event.OUTCOME_UNKNOWN, title=f"Check action #{n}",
                              body="Rex cannot tell whether Meta applied it.", link="executions")
                 for n in (1, 2, 3)]  # fmt: skip
        session.add_all(notes)
        session.flush()
        return [n.id for n in notes]


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(30)


def deliveries() -> list[NotificationDelivery]:
    with read_session() as session:
        return list(session.scalars(select(NotificationDelivery).order_by(NotificationDelivery.id)))


def settled() -> bool:
    rows = deliveries()
    return len(rows) == 3 and all(d.status in (DeliveryStatus.SENT, DeliveryStatus.UNKNOWN)
                                  for d in rows)  # fmt: skip


def kill_mid_delivery(
    env: dict[str, str], hold: threading.Event, held: threading.Event,
    release: threading.Event, processes: list[subprocess.Popen],
) -> None:  # fmt: skip
    """A scheduler started, SIGKILLed once a delivery reached the receiver (`held`), the
    receiver let go, a second scheduler started: back when every delivery settled."""
    hold.set()
    processes.append(victim := spawn_scheduler(**env))
    assert held.wait(60), "no delivery reached the receiver"
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    hold.clear()
    release.set()
    processes.append(spawn_scheduler(**env))
    wait_until(settled, 60, 0.2, message="the deliveries did not settle")


def test_killed_while_a_webhook_is_in_flight_it_is_sent_once_and_marked_unknown(
    told: list[int], processes: list[subprocess.Popen]
) -> None:
    with HttpReceiver() as hooks:
        env = {**FAST, "REX_WEBHOOK_URL": hooks.url("/hook"), "REX_WEBHOOK_SECRET": "s3cret-s3cret"}
        # the first request arrives and is not answered
        kill_mid_delivery(env, hooks.hold, hooks.held, hooks.release, processes)

        keys = Counter(r.headers["X-Rex-Delivery"] for r in hooks.to("/hook"))
    rows = deliveries()
    assert sorted(keys) == sorted(d.idempotency_key for d in rows)  # none lost
    assert set(keys.values()) == {1}  # none twice
    (unknown,) = [d for d in rows if d.status == DeliveryStatus.UNKNOWN]
    assert unknown.idempotency_key == hooks.requests[0].headers["X-Rex-Delivery"]
    assert unknown.last_error == STOPPED and unknown.in_flight_at is not None
    assert [d.status for d in rows].count(DeliveryStatus.SENT) == 2


def test_killed_before_the_message_left_it_is_sent_after_the_restart_once(
    told: list[int], processes: list[subprocess.Popen]
) -> None:
    with MailCatcher() as mail:
        env = {**FAST, "REX_SMTP_HOST": "127.0.0.1", "REX_SMTP_PORT": str(mail.port),
               "REX_SMTP_TLS": "none"}  # fmt: skip
        # the server stops at RCPT: none of the message has left
        kill_mid_delivery(env, mail.hold_rcpt, mail.held, mail.release, processes)
        subjects = Counter(str(m.message["Subject"]).strip() for m in mail.to(ADMIN))

    assert subjects == {f"[Rex] Check action #{n}": 1 for n in (1, 2, 3)}
    rows = deliveries()
    assert {d.status for d in rows} == {DeliveryStatus.SENT}
    assert max(d.attempts for d in rows) == 2  # the one cut off was tried again
