"""The Streamlit pages under AppTest: they run without exceptions on an empty database and
on a synced sandbox account, and their forms and buttons do what they say."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from core.access.actor import SYSTEM
from core.accounts import connect_account, list_accounts
from core.db import write_session
from core.db.models import AdAccount, AdEntity, AdMetric, TokenStatus
from core.errors import InputError
from core.settings import reload_settings
from core.sync.runner import SyncOptions, sync_accounts
from core.views.overview import account_overview, entity_table
from tests.conftest import NOW
from tests.signed import signed_page

PAGES = ("app.py", "pages/overview.py", "pages/accounts.py")
TIMEOUT = 60
ROOT = Path(__file__).resolve().parent.parent


def run(page: str) -> AppTest:
    app = signed_page(page, timeout=TIMEOUT)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


@pytest.fixture
def synced(db: Engine, sandbox) -> str:  # type: ignore[no-untyped-def]
    account = sandbox.account_ids[0]
    connect_account(account, sandbox.token, graph_url=sandbox.url, by=SYSTEM)
    sync_accounts(
        [account],
        options=SyncOptions(
            days=30, breakdowns=False, now=NOW, client_options={"poll_seconds": 0.01}
        ),
    )
    return account


@pytest.mark.parametrize("page", PAGES)
def test_every_page_explains_an_empty_database(db: Engine, page: str) -> None:
    app = run(page)
    text = " ".join(i.value for i in app.info)
    assert "make run" in text


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_on_a_synced_account(synced: str, page: str) -> None:
    run(page)


def test_overview_shows_the_numbers_with_their_currency(synced: str) -> None:
    app = run("pages/overview.py")
    metrics = {m.label: m.value for m in app.metric}
    assert {"Spend", "Revenue", "Profit", "ROAS", "Active rules", "Scheduler"} <= set(metrics)
    assert metrics["Scheduler"] == "not running"
    assert metrics["Spend"].endswith(" USD") and metrics["Spend"] != "0.00 USD"
    assert any("America/Los_Angeles" in c.value for c in app.caption)
    assert len(app.get("plotly_chart")) == 1
    table = app.dataframe[0].value
    assert len(table) >= 6 and "Retargeting – Site Visitors" in set(table["Name"])

    app.segmented_control(key="overview_level").set_value("ad").run()
    assert len(app.dataframe[0].value) >= 40


def test_connecting_names_the_bad_field(db: Engine) -> None:
    app = run("pages/accounts.py")
    app.text_input[0].set_value("12-34")
    app.text_input[1].set_value("some-token-123")
    app.button[0].click().run()
    assert "account" in app.error[0].value and "act_" in app.error[0].value
    assert list_accounts() == []


def test_connect_then_sync_now_from_the_page(db: Engine, sandbox, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("REX_SYNC_DAYS", "3")  # the button, not a long sync, is under test
    reload_settings()
    app = run("pages/accounts.py")
    app.text_input[0].set_value(sandbox.account_ids[1])
    app.text_input[1].set_value(sandbox.token)
    app.text_input[2].set_value(sandbox.url)
    app.button[0].click().run()
    assert not app.exception
    assert "Connected Sandbox Kitchen KK (JP)" in app.success[0].value
    assert sandbox.token not in str(app)  # the token is never shown back

    account = list_accounts()[0]
    app.button(key=f"sync_{account.id}").click().run()
    assert not app.exception
    assert app.success and app.success[-1].value.startswith("Synced")
    assert list_accounts()[0].ads >= 40
    monkeypatch.undo()
    reload_settings()


def _submit(app: AppTest) -> AppTest:
    next(b for b in app.button if b.label == "Check and connect").click().run()
    assert not app.exception
    return app


def _page_with_connect_form(account: str, token: str, graph_url: str) -> AppTest:
    app = run("pages/accounts.py")
    app.text_input(key="connect_account").set_value(account)
    app.text_input(key="connect_token").set_value(token)
    app.text_input(key="connect_graph_url").set_value(graph_url)
    return _submit(app)


def test_a_refused_token_for_a_new_account_says_what_token_is_needed(db: Engine, sandbox) -> None:  # type: ignore[no-untyped-def]
    app = _page_with_connect_form(sandbox.account_ids[0], "expired-token-abcdef", sandbox.url)
    shown = app.error[0].value
    assert "refused this access token" in shown and "nothing was stored" in shown
    assert "ads_management" in shown and "system-user token" in shown  # the token needed
    assert "reconnect" not in shown.lower()  # it was never connected
    assert "expired-token-abcdef" not in shown
    assert list_accounts() == []


def test_a_refused_token_for_a_connected_account_keeps_the_old_one(db: Engine, sandbox) -> None:  # type: ignore[no-untyped-def]
    account = sandbox.account_ids[0]
    connect_account(account, sandbox.token, graph_url=sandbox.url, by=SYSTEM)
    app = _page_with_connect_form(account, "expired-token-abcdef", sandbox.url)
    assert f"{account} keeps the token it had" in app.error[0].value
    assert list_accounts()[0].token_status == "ok"


def test_an_unreachable_graph_url_is_not_called_a_refusal(db: Engine) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    app = _page_with_connect_form("act_1010000001", "some-token-123456", url)
    shown = app.error[0].value
    assert f"Rex could not reach the Graph API at {url}" in shown
    assert "refused" not in shown.replace("ConnectionRefused", "")  # nobody answered
    assert "Graph API URL" in shown and "nothing was stored" in shown
    assert list_accounts() == []


def test_an_empty_account_id_is_required_not_malformed(db: Engine) -> None:
    app = _page_with_connect_form("", "some-token-123456", "")
    shown = app.error[0].value
    assert shown.startswith("**Ad account ID**") and "is required" in shown
    assert "is not an ad account id" not in shown


# --- the report functions behind the pages, on rows written through the ORM ------------


@pytest.fixture
def tokyo(db: Engine) -> int:
    """A JPY account in Tokyo: a campaign with a budget, its ad set and ad, four days of
    numbers (one without spend) and one day in the period before."""
    with write_session() as session:
        account = AdAccount(
            external_id="act_42",
            name="Kitchen KK",
            currency="JPY",
            timezone_name="Asia/Tokyo",
            account_status=1,
            token_encrypted="not-a-token",
            token_status=TokenStatus.NEEDS_RECONNECT,
        )
        session.add(account)
        session.flush()
        common = {"account_id": account.id, "status": "ACTIVE", "effective_status": "ACTIVE"}
        campaign = AdEntity(
            level="campaign", external_id="c1", name="Ramen", daily_budget_minor=5000, **common
        )
        session.add(campaign)
        session.flush()
        adset = AdEntity(
            level="adset",
            external_id="s1",
            name="Tokyo 25-34",
            parent_id=campaign.id,
            meta_campaign_id="c1",
            **common,
        )
        session.add(adset)
        session.flush()
        ad = AdEntity(
            level="ad",
            external_id="a1",
            name="Bowl video",
            parent_id=adset.id,
            meta_campaign_id="c1",
            meta_adset_id="s1",
            **common,
        )
        session.add(ad)
        session.flush()
        for day, spend, revenue in [
            (date(2026, 11, 21), 1000, 3000),  # Tokyo's today at NOW
            (date(2026, 11, 20), 2000, 2000),
            (date(2026, 11, 19), 0, 500),
            (date(2026, 10, 23), 500, 0),  # the first of the 30 days
            (date(2026, 10, 22), 700, 1400),  # the last day of the period before
        ]:
            for entity in (campaign, adset, ad):
                session.add(
                    AdMetric(
                        account_id=account.id,
                        entity_id=entity.id,
                        date=day,
                        spend_micros=spend * 1_000_000,
                        revenue_micros=revenue * 1_000_000,
                    )
                )
        return account.id


def test_overview_counts_account_local_days_and_fills_gaps(tokyo: int) -> None:
    overview = account_overview(tokyo, now=NOW, actor=SYSTEM)
    assert overview.today == date(2026, 11, 21)  # already Saturday in Tokyo
    assert overview.first_day == date(2026, 10, 23)
    assert len(overview.series) == 30 and overview.series[-1].day == overview.today
    by_day = {p.day: p for p in overview.series}
    assert by_day[date(2026, 11, 1)].spend == 0 and by_day[date(2026, 11, 1)].roas is None
    assert by_day[date(2026, 11, 19)].roas is None  # revenue without spend: undefined
    assert by_day[date(2026, 11, 21)].roas == 3
    assert overview.current.spend == Decimal(3500) and overview.current.revenue == Decimal(5500)
    # the 30 days before hold one synced day (Oct 22): no comparison with the other 29
    assert overview.data_starts == date(2026, 10, 22) and overview.previous is None
    assert "synced only from 2026-10-22" in (overview.coverage() or "")
    day_before = account_overview(tokyo, now=NOW, days=1, actor=SYSTEM).previous  # Nov 20: synced
    assert day_before is not None and day_before.spend == Decimal(2000)
    assert overview.money(overview.current.spend) == "3,500 JPY"
    assert (
        account_overview(tokyo, today=date(2026, 11, 20), days=2, actor=SYSTEM).current.spend
        == 2000
    )


def test_entity_table_names_parents_and_formats_budgets(tokyo: int) -> None:
    rows = {r.level: r for r in entity_table(tokyo, today=date(2026, 11, 21), actor=SYSTEM)}
    assert rows["campaign"].budget == "5,000 JPY / day" and rows["campaign"].campaign is None
    assert rows["adset"].budget == "on campaign" and rows["adset"].campaign == "Ramen"
    assert (rows["ad"].campaign, rows["ad"].adset, rows["ad"].parent) == (
        "Ramen",
        "Tokyo 25-34",
        "Tokyo 25-34",
    )
    assert rows["ad"].spend == Decimal(3500) and rows["ad"].roas == Decimal(5500) / 3500
    assert [r.level for r in entity_table(tokyo, level="adset", actor=SYSTEM)] == ["adset"]
    with pytest.raises(InputError) as error:
        entity_table(tokyo, level="campaigns", actor=SYSTEM)
    assert error.value.field == "level"


def test_overview_page_names_parents_and_asks_to_reconnect(tokyo: int) -> None:
    app = run("pages/overview.py")
    assert "Kitchen KK · act_42 · JPY · Asia/Tokyo" in app.selectbox[0].options
    assert "Reconnect" in app.warning[0].value
    assert app.metric[0].value.endswith(" JPY")

    app.segmented_control(key="overview_level").set_value("ad").run()
    table = app.dataframe[0].value
    assert list(table[["Name", "Campaign", "Ad set"]].iloc[0]) == [
        "Bowl video",
        "Ramen",
        "Tokyo 25-34",
    ]


def test_accounts_page_says_how_to_reconnect_and_removes_on_confirmation(tokyo: int) -> None:
    app = run("pages/accounts.py")
    assert "act_42" in app.caption[0].value and "new token" in app.caption[0].value
    assert app.button(key=f"sync_{tokyo}").disabled
    assert app.button(key=f"remove_{tokyo}").disabled  # not before the box is ticked

    app.checkbox(key=f"confirm_remove_{tokyo}").check().run()
    app.button(key=f"remove_{tokyo}").click().run()
    assert not app.exception
    assert app.success[0].value.startswith("Removed Kitchen KK")
    assert list_accounts() == []


def test_reset_the_sandbox_from_the_page(synced: str, sandbox) -> None:  # type: ignore[no-untyped-def]
    import requests

    adset = next(e for e in sandbox.state.entities.values() if e.level == "adset")
    requests.post(
        f"{sandbox.url}/v26.0/{adset.id}",
        timeout=5,
        data={"access_token": sandbox.token, "status": "PAUSED"},
    )
    assert sandbox.state.write_log

    app = run("pages/accounts.py")
    app.button(key="reset_sandbox").click().run()
    assert not app.exception
    assert sandbox.state.write_log == []  # its writes are undone
    assert app.success[0].value.startswith("Sandbox reset; synced act_1010000001")


def test_settings_are_shown_without_secrets(db: Engine) -> None:
    import os

    app = run("pages/accounts.py")
    shown = app.dataframe[-1].value
    values = dict(zip(shown["Setting"], shown["Value"], strict=True))
    assert values["secret_key"] == "set (hidden)"
    assert os.environ["REX_SECRET_KEY"] not in str(app)
    assert values["graph_api_version"] == "v26.0"


def test_move_the_sandbox_on_from_the_page_and_back_with_a_reset(synced: str, sandbox) -> None:  # type: ignore[no-untyped-def]
    from core import clock

    app = run("pages/accounts.py")
    app.number_input(key="advance_days").set_value(3).run()
    app.button(key="advance_sandbox").click().run()
    assert not app.exception
    assert app.success[0].value.startswith(
        "The sandbox moved on: act_1010000001 is on 2026-11-23"
    )  # NOW is the 20th in Los Angeles
    assert "3 day(s) ahead of the wall clock, Rex with it); synced act_1010000001" in (
        app.success[0].value
    )
    assert clock.ahead_days() == 3 and sandbox.state.advanced.days == 3
    assert any("3 day(s) ahead" in i.value for i in app.info)  # the page says so
    app.button(key="reset_sandbox").click().run()
    assert clock.ahead_days() == 0 and sandbox.state.advanced.days == 0
