"""Sync from the sandbox into SQLite and PostgreSQL: complete, idempotent, revised days
picked up, archived kept, one account's failure not stopping the others."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import asdict
from datetime import date, timedelta

import pytest
import requests
from sqlalchemy import Engine, func, select

from core.access.actor import SYSTEM
from core.accounts import connect_account, get_account
from core.crypto import secret_box
from core.db import read_session, write_session
from core.db.models import (
    AdAccount,
    AdDemographicInsight,
    AdEntity,
    AdGeographicInsight,
    AdHourlyInsight,
    AdMetric,
    AdPlacementInsight,
    Base,
    SyncRun,
)
from core.sandbox import FaultConfig, SandboxServer
from core.settings import reload_settings
from core.sync.runner import SyncOptions, sync_accounts
from tests.conftest import NOW, SANDBOX_SEED, _empty_tables

USD, JPY = "act_1010000001", "act_1020000002"
LA_TODAY, TOKYO_TODAY = date(2026, 11, 20), date(2026, 11, 21)  # NOW is 18:30 UTC
BREAKDOWN_MODELS = (AdDemographicInsight, AdPlacementInsight, AdGeographicInsight, AdHourlyInsight)


def connect(sandbox, *accounts: str) -> None:  # type: ignore[no-untyped-def]
    for account in accounts or (USD, JPY):
        connect_account(account, sandbox.token, graph_url=sandbox.url, by=SYSTEM)


def sync(*accounts: str, days: int = 3, breakdowns: bool = True, progress=None):  # type: ignore[no-untyped-def]
    return sync_accounts(
        list(accounts) or None,
        options=SyncOptions(
            days=days, breakdowns=breakdowns, now=NOW, client_options={"poll_seconds": 0.01}
        ),
        progress=progress,
    )


def snapshot() -> dict[str, list[tuple]]:
    """Every row of every synced table, without the columns that record when Rex looked."""
    skip = {"updated_at", "first_seen_at", "token_checked_at", "last_sync_at", "created_at"}
    tables = [AdEntity, AdMetric, *BREAKDOWN_MODELS]
    with read_session() as session:
        return {
            model.__tablename__: sorted(
                tuple(getattr(row, c.key) for c in model.__table__.columns if c.key not in skip)
                for row in session.scalars(select(model))
            )
            for model in tables
        }


def count(model: type[Base], **where) -> int:  # type: ignore[no-untyped-def]
    with read_session() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return session.scalar(query)


def test_a_sync_fills_every_table_in_account_local_days(db: Engine, sandbox) -> None:  # type: ignore[no-untyped-def]
    connect(sandbox)
    events = []
    results = sync(progress=events.append)

    assert [r.ok for r in results] == [True, True], [r.error for r in results]
    assert [(r.account, r.until) for r in results] == [(USD, LA_TODAY), (JPY, TOKYO_TODAY)]
    assert events[-1].done == events[-1].total  # progress reaches the end
    with read_session() as session:
        levels = dict(
            session.execute(select(AdEntity.level, func.count()).group_by(AdEntity.level)).all()
        )
        dates = set(session.scalars(select(AdMetric.date).distinct()))
    assert levels["campaign"] >= 6 and levels["adset"] >= 24 and levels["ad"] >= 80
    assert dates == {LA_TODAY - timedelta(days=n) for n in range(3)} | {
        TOKYO_TODAY - timedelta(days=n) for n in range(3)
    }
    for model in BREAKDOWN_MODELS:
        assert count(model) > 0, model.__tablename__
    assert count(AdGeographicInsight, geo_type="dma") > 0
    assert count(SyncRun, status="succeeded") == 2


def test_metrics_match_what_meta_reports(db: Engine, sandbox) -> None:  # type: ignore[no-untyped-def]
    connect(sandbox, JPY)
    sync(JPY, days=2, breakdowns=False)
    day = TOKYO_TODAY - timedelta(days=1)
    reported = requests.get(
        f"{sandbox.url}/v26.0/{JPY}/insights",
        params={"access_token": sandbox.token, "level": "account", "fields": "spend",
                "time_range": f'{{"since":"{day}","until":"{day}"}}'},
        timeout=5,
    ).json()["data"][0]["spend"]  # fmt: skip
    with read_session() as session:
        campaigns = select(AdEntity.id).where(AdEntity.level == "campaign")
        stored = session.scalar(
            select(func.sum(AdMetric.spend_micros)).where(
                AdMetric.date == day, AdMetric.entity_id.in_(campaigns)
            )
        )
    assert stored == int(reported) * 1_000_000  # yen, exactly


def test_a_second_sync_changes_nothing(db: Engine, sandbox) -> None:  # type: ignore[no-untyped-def]
    connect(sandbox, USD)
    sync(USD)
    before = snapshot()
    second = sync(USD)[0]

    assert snapshot() == before
    assert second.counts["metrics"]["inserted"] == second.counts["metrics"]["updated"] == 0
    assert second.counts["entities"]["updated"] == 0
    for table in ("demographics", "placement", "geography", "hourly"):
        assert second.counts[table]["inserted"] == second.counts[table]["updated"] == 0


def test_the_look_back_picks_up_a_revised_past_day(db: Engine, sandbox) -> None:  # type: ignore[no-untyped-def]
    connect(sandbox, USD)
    sync(USD, days=10, breakdowns=False)  # ≥ 8 days: an async report run
    before = snapshot()["ad_metrics"]
    ad = requests.get(f"{sandbox.url}/__sandbox/state", timeout=5).json()["entities"]
    ad_id = next(e["id"] for e in ad if e["level"] == "ad" and e["account_id"] == USD
                 and e["effective_status"] == "ACTIVE")  # fmt: skip
    revised_day = LA_TODAY - timedelta(days=6)
    requests.post(f"{sandbox.url}/__sandbox/insights", timeout=5, json={
        "ad_id": ad_id, "date": str(revised_day), "spend": "321.09", "impressions": 30000,
        "clicks": 300, "reach": 20000, "purchases": 9, "purchase_value": "999.00"})  # fmt: skip

    result = sync(USD, days=10, breakdowns=False)[0]

    with read_session() as session:
        row = session.execute(
            select(AdMetric.spend_micros, AdMetric.revenue_micros, AdMetric.conversions)
            .join(AdEntity, AdEntity.id == AdMetric.entity_id)
            .where(AdEntity.external_id == ad_id, AdMetric.date == revised_day)
        ).one()
    assert tuple(row) == (321_090_000, 999_000_000, 9)
    # the ad, its ad set and its campaign changed on that day; nothing else did
    assert result.counts["metrics"]["updated"] == 3
    assert len(set(snapshot()["ad_metrics"]) - set(before)) == 3


def test_archived_entities_are_kept_and_deleted_ones_marked(db: Engine, sandbox) -> None:  # type: ignore[no-untyped-def]
    connect(sandbox, USD)
    sync(USD, breakdowns=False)
    assert count(AdEntity, level="campaign", effective_status="ARCHIVED") == 1
    with read_session() as session:
        ad = session.scalars(
            select(AdEntity).where(AdEntity.level == "ad", AdEntity.status == "ACTIVE")
        ).first()
    requests.post(f"{sandbox.url}/v26.0/{ad.external_id}", timeout=5,
                  data={"access_token": sandbox.token, "status": "DELETED"})  # fmt: skip

    sync(USD, breakdowns=False)

    with read_session() as session:
        assert session.get_one(AdEntity, ad.id).status == "DELETED"  # read by id, kept


def test_a_rejected_token_marks_the_account_and_the_others_still_sync(db: Engine, sandbox) -> None:  # type: ignore[no-untyped-def]
    connect(sandbox)
    with write_session() as session:  # the token was revoked at Meta after connecting
        usd = session.scalar(select(AdAccount).where(AdAccount.external_id == USD))
        usd.token_encrypted = secret_box().encrypt("revoked-token-0123456789")

    results = {r.account: r for r in sync(breakdowns=False)}

    assert not results[USD].ok and results[JPY].ok
    assert "Reconnect the account" in results[USD].error
    view = get_account(USD)
    assert view.needs_reconnect and "token" in view.token_error.lower()
    assert count(AdMetric) > 0  # JPY's numbers arrived
    # until someone reconnects, syncs skip it without calling Meta
    assert "reconnect" in sync(USD)[0].error
    connect(sandbox, USD)
    assert sync(USD, breakdowns=False)[0].ok


def test_a_rate_limit_records_when_calls_may_resume(db: Engine, sandbox) -> None:  # type: ignore[no-untyped-def]
    connect(sandbox)
    sandbox.set_faults(FaultConfig(fail_next=["buc"], regain_minutes=45))

    results = {r.account: r for r in sync(breakdowns=False)}

    assert not results[USD].ok and results[JPY].ok
    until = get_account(USD).rate_limited_until
    assert until is not None and timedelta(minutes=40) < until - NOW.now(until.tzinfo)


# --- an account's async reports, waited for at once ----------------------------------------


def sync_reports(concurrency: int, progress=None):  # type: ignore[no-untyped-def]
    """The USD account over 2 days as async reports (the `async_reports` fixture): 3
    metric levels and 6 breakdown calls."""
    options = SyncOptions(
        days=2, now=NOW, client_options={"poll_seconds": 0.01}, async_concurrency=concurrency
    )
    return sync_accounts([USD], options=options, progress=progress)


@pytest.fixture
def async_reports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every insights read runs as an async report, even of 2 days (less to generate)."""
    monkeypatch.setenv("REX_SYNC_ASYNC_MIN_DAYS", "1")
    reload_settings()
    yield
    monkeypatch.undo()
    reload_settings()


def insights_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("rex-insights")]


def test_an_accounts_reports_run_at_once_and_store_what_one_at_a_time_stores(
    db: Engine, async_reports: None
) -> None:
    runs = {}
    for concurrency in (1, 3):
        _empty_tables(db)  # ids start over: equal snapshots mean the same rows, same order
        # each report runs 0.1 s at the sandbox, which counts how many ran at once
        with SandboxServer(seed=SANDBOX_SEED, now=NOW, report_seconds=0.1) as server:
            connect(server, USD)
            events = []
            (result,) = sync_reports(concurrency, progress=events.append)
            reports = sum(
                1 for r in server.state.request_log
                if r["method"] == "POST" and r["path"].endswith("/insights")
            )  # fmt: skip
            runs[concurrency] = (server.state.reports_peak, reports, result, events, snapshot())
        assert result.ok, result.error
        assert insights_threads() == []  # every worker ended with the sync

    (peak_1, reports_1, result_1, events_1, rows_1) = runs[1]
    (peak_3, reports_3, result_3, events_3, rows_3) = runs[3]
    assert reports_1 == reports_3 == 9
    assert peak_1 == 1  # one after another
    assert 1 < peak_3 <= 3  # at once, never more than allowed
    assert rows_3 == rows_1 and all(rows_1.values())
    assert result_3.counts == result_1.counts
    # the same progress, step by step, from the first to the last
    assert [asdict(e) for e in events_3] == [asdict(e) for e in events_1]
    assert [e.done for e in events_3] == list(range(1, events_3[-1].total + 1))


def test_a_failed_report_fails_the_account_and_stops_the_other_reports(
    db: Engine, async_reports: None, sandbox
) -> None:  # type: ignore[no-untyped-def]
    connect(sandbox, USD)
    sandbox.set_faults(FaultConfig(fail_next=["async_fail"]))  # the first report started

    (result,) = sync_reports(3)

    assert not result.ok and "ended 'Job Failed'" in result.error
    assert insights_threads() == []
    assert count(AdEntity) > 0  # what came before the reports is kept
    assert count(AdMetric) == 0  # a metric level failed: no metrics, no breakdowns
    for model in BREAKDOWN_MODELS:
        assert count(model) == 0, model.__tablename__
    with read_session() as session:
        run = session.scalars(select(SyncRun)).one()
    assert run.status == "failed" and "Job Failed" in run.error
    assert "Job Failed" in get_account(USD).last_sync_error


def test_a_rate_limit_met_by_one_report_stops_the_others(db: Engine, async_reports: None) -> None:
    with SandboxServer(seed=SANDBOX_SEED, now=NOW, report_seconds=0.3) as server:
        connect(server, USD)
        # the account and its three entity edges pass, then the first report's POST is
        # refused for 45 minutes while the others (0.3 s each) are still running
        server.set_faults(FaultConfig(fail_next=[("none", 4), "buc"], regain_minutes=45))

        (result,) = sync_reports(3)
        log = list(server.state.request_log)

    assert not result.ok and "Rex pauses calls to this account" in result.error, result.error
    assert insights_threads() == []
    until = get_account(USD).rate_limited_until
    assert until is not None and timedelta(minutes=40) < until - NOW.now(until.tzinfo)
    # the block is one record for every thread: the reports already sent (one a thread)
    # were the last, and none of them was waited out to its rows
    started = [r for r in log if r["method"] == "POST" and r["path"].endswith("/insights")]
    assert 1 <= len(started) <= 3
    assert not any(r["method"] == "GET" and r["path"].endswith("/insights") for r in log)
