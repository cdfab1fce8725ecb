"""The Streamlit pages under AppTest: they run without exceptions on an empty database and
on a synced sandbox account, and their forms and buttons do what they say."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from core.accounts import connect_account, list_accounts
from core.settings import reload_settings
from core.sync.runner import SyncOptions, sync_accounts
from tests.conftest import NOW

PAGES = ("app.py", "pages/overview.py", "pages/accounts.py")
TIMEOUT = 60
ROOT = Path(__file__).resolve().parent.parent


def run(page: str) -> AppTest:
    app = AppTest.from_file(str(ROOT / page), default_timeout=TIMEOUT)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


@pytest.fixture
def synced(db: Engine, sandbox) -> str:  # type: ignore[no-untyped-def]
    account = sandbox.account_ids[0]
    connect_account(account, sandbox.token, graph_url=sandbox.url)
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
    assert set(metrics) == {"Spend", "Revenue", "Profit", "ROAS"}
    assert metrics["Spend"].endswith(" USD") and metrics["Spend"] != "0.00 USD"
    assert "America/Los_Angeles" in app.caption[0].value
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


def test_a_refused_token_is_explained(db: Engine, sandbox) -> None:  # type: ignore[no-untyped-def]
    app = run("pages/accounts.py")
    app.text_input[0].set_value(sandbox.account_ids[0])
    app.text_input[1].set_value("expired-token-abcdef")
    app.text_input[2].set_value(sandbox.url)
    app.button[0].click().run()
    assert "Meta refused" in app.error[0].value and "Reconnect" in app.error[0].value
    assert list_accounts() == []
