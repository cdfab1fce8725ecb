"""The Suggestions page under AppTest, on both databases, over a sandbox whose ad sets
carry planted patterns: a losing placement Meta's targeting can exclude (Apply), a
winning age band and expensive night hours on a daily budget (nothing to apply: the
page says why), the evidence as a chart, Dismiss with a reason, Find now."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, select
from streamlit.testing.v1 import AppTest

from core.access.actor import SYSTEM
from core.access.roles import Role
from core.accounts import connect_account
from core.db import read_session
from core.db.models import AdAccount, AdEntity
from core.enums import SuggestionStatus
from core.rules.store import list_rules
from core.sandbox import SandboxServer
from core.settings import reload_settings
from core.suggestions.generate import generate
from core.suggestions.records import Found, reconcile
from core.sync.runner import SyncOptions, sync_accounts
from core.views.suggestions import SuggestionView, get_suggestion, list_suggestions
from tests.conftest import NOW
from tests.signed import ADMIN, ANA, person, signed_page

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "act_4001"
LOSER = {"dimension": "placement", "match": {"platform": "audience_network"}, "cvr": 0.1,
         "share": 0.3}  # fmt: skip
WINNER = {"dimension": "demographic", "match": {"age": "25-34", "gender": "female"}, "cvr": 3}
NIGHT = {"dimension": "hour", "match": {"hour": [1, 2, 3, 4, 5]}, "cpc": 3}


def adset(adset_id: str, plants: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": adset_id, "name": f"Shop · {adset_id}", "daily_budget": 80000,  # 800 USD a day
        "targeting": {"age_min": 18, "geo_locations": {"countries": ["US"]}},
        "market": {"roas": 2.5, "capacity": "900", "plants": plants, "variation": 0},
        "ads": [{"id": f"{adset_id}1", "name": "ad"}],
    }  # fmt: skip


SCENARIO = {
    "accounts": [{
        "id": ACCOUNT, "name": "Shop", "currency": "USD", "timezone": "America/Los_Angeles",
        "campaigns": [{"id": "4101", "name": "Shop",
                       "adsets": [adset("5001", [LOSER]), adset("5002", [WINNER, NIGHT])]}],
    }],
}  # fmt: skip


@pytest.fixture
def shop(db: Engine):  # type: ignore[no-untyped-def]
    """The planted shop in its own sandbox frozen at NOW, connected and synced (29 days:
    the 28 whole days the evidence uses, and today)."""
    with SandboxServer(scenario=copy.deepcopy(SCENARIO), now=NOW) as server:
        connect_account(ACCOUNT, server.token, graph_url=server.url, by=SYSTEM)
        sync_accounts(options=SyncOptions(days=29, now=NOW, client_options={"poll_seconds": 0.01}))
        yield server


@pytest.fixture
def suggested(shop):  # type: ignore[no-untyped-def]
    generate(now=NOW, by=SYSTEM)
    return shop


def page(email: str = ADMIN) -> AppTest:
    """The page as `make run` serves it (through app.py: its links to other pages work),
    signed in as `email`."""
    app = signed_page("app.py", email=email, timeout=60)
    app.switch_page("pages/suggestions.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def click(app: AppTest, key: str) -> AppTest:
    app.button(key=key).click().run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def one(kind: str, *, action: bool, segment: str | None = None) -> SuggestionView:
    """The open suggestion of `kind` with (or without) a change, about `segment`."""
    (found,) = [
        s for s in list_suggestions(actor=ANA)
        if s.kind == kind and (s.action is not None) == action
        and (segment is None or s.segment[:1] == (segment,))
    ]  # fmt: skip
    return found


def planted_loser() -> SuggestionView:
    return one("placement", action=True, segment="audience_network")


def planted_winner() -> SuggestionView:
    return one("demographic", action=False, segment="25-34")


def read_targeting(server: SandboxServer, adset_id: str) -> dict[str, Any]:
    answer = requests.get(f"{server.url}/v26.0/{adset_id}",
                          params={"fields": "targeting", "access_token": server.token},
                          timeout=10)  # fmt: skip
    assert answer.ok, answer.text
    return answer.json()["targeting"]


def test_an_empty_database_says_what_to_do(db: Engine) -> None:
    app = page()
    assert "make run" in app.info[0].value


def test_each_suggestion_by_its_weekly_profit_with_its_numbers_and_chart(suggested) -> None:  # type: ignore[no-untyped-def]
    shown = list_suggestions(actor=ANA)
    assert {s.kind for s in shown} >= {"placement", "demographic", "dayparting"}
    app = page()
    labels = [e.label for e in app.expander]
    assert labels == [f"**{s.title}** · {s.weekly_words}" for s in shown]
    profits = [s.weekly_profit_minor[0] for s in shown if s.weekly_profit_minor]
    assert profits == sorted(profits, reverse=True)  # one currency: highest first

    metrics = [(m.label, m.value) for m in app.metric]
    captions = [c.value for c in app.caption]
    for s in shown:
        assert ("Confidence", f"{s.confidence:.0%}") in metrics
        assert any(c.endswith(f"over 4 weeks: {s.confidence_28_days:.0%}") for c in captions)
        assert ("Expected weekly profit", s.money(s.weekly_profit_minor[0])) in metrics
    loser = planted_loser()
    assert ("Pays back in", f"{loser.payback_days:.0f} days") in metrics
    text = " ".join(m.value for m in app.markdown)
    assert loser.why in text and loser.action["summary"] in text

    charts = {c.proto.id: c for c in app.get("plotly_chart")}
    assert len(charts) == len(shown)
    spec = next(c for c in app.get("plotly_chart") if f"evidence_{loser.id}" in c.proto.id)
    figure = json.loads(spec.proto.spec)
    bars = {trace["x"][0]: trace for trace in figure["data"]}
    segment, rest = loser.evidence["segment"]["cost"], loser.evidence["rest"]["cost"]
    assert set(bars) == {"Audience Network", "Rest of the ad set"}  # the planted placement
    assert bars["Audience Network"]["y"] == [segment["estimate"]]
    assert bars["Rest of the ad set"]["y"] == [rest["estimate"]]
    error = bars["Audience Network"]["error_y"]
    assert error["array"][0] == pytest.approx(segment["high"] - segment["estimate"])
    assert error["arrayminus"][0] == pytest.approx(segment["estimate"] - segment["low"])
    assert figure["layout"]["yaxis"]["title"]["text"] == "Cost per purchase (USD)"

    (hours,) = [s for s in shown if s.kind == "dayparting"]
    spec = next(c for c in app.get("plotly_chart") if f"evidence_{hours.id}" in c.proto.id)
    figure = json.loads(spec.proto.spec)
    costs = sorted(t["y"][0] for t in figure["data"][:-1])
    assert costs == sorted(h["segment"]["cost"]["estimate"] for h in hours.evidence["hourly"])
    assert figure["data"][-1]["x"] == ["Other hours"]
    assert figure["layout"]["yaxis"]["title"]["text"] == "Cost per click (USD)"


def test_a_suggestion_without_a_change_has_no_apply_but_says_why(suggested) -> None:  # type: ignore[no-untyped-def]
    winner = planted_winner()
    app = page()
    keys = {b.key for b in app.button}
    assert f"apply_{winner.id}" not in keys and f"dismiss_{winner.id}" in keys
    assert f"apply_{planted_loser().id}" in keys
    assert f"Cannot be applied from Rex: {winner.not_applicable}" in [i.value for i in app.info]


def test_dismiss_needs_a_reason_and_keeps_it(suggested) -> None:  # type: ignore[no-untyped-def]
    loser = planted_loser()
    app = page()
    click(app, f"dismiss_{loser.id}")
    assert any("**Reason**" in e.value and f"#{loser.id}" in e.value for e in app.error)
    after = get_suggestion(loser.id, actor=ANA)
    assert after.status == SuggestionStatus.NEW and len(after.events) == 1  # nothing changed

    app.text_input(key=f"dismiss_reason_{loser.id}").set_value("  we sell in store  ")
    click(app, f"dismiss_{loser.id}")
    assert f"#{loser.id} dismissed: we sell in store" in [s.value for s in app.success]
    after = get_suggestion(loser.id, actor=ANA)
    assert after.status == SuggestionStatus.DISMISSED and after.reason == "we sell in store"
    assert (after.events[-1].by, after.events[-1].previous) == (ADMIN, SuggestionStatus.NEW)
    assert f"dismiss_{loser.id}" not in {b.key for b in app.button}  # no longer open
    app.selectbox(key="suggestions_status").set_value("dismissed").run()
    assert [e.label for e in app.expander] == [f"**{loser.title}** · {loser.weekly_words}"]
    assert "Dismissed: we sell in store" in [c.value for c in app.caption]


def test_a_viewer_reads_the_suggestions_but_cannot_decide_them(suggested) -> None:  # type: ignore[no-untyped-def]
    loser = planted_loser()
    person("vi@example.com", roles={loser.account_id: [Role.VIEWER]})
    app = page("vi@example.com")
    click(app, f"apply_{loser.id}")  # the page offers it; core refuses it
    assert any("vi@example.com may not apply suggestions on" in e.value for e in app.error)
    app.text_input(key=f"dismiss_reason_{loser.id}").set_value("not for us")
    click(app, f"dismiss_{loser.id}")
    assert any("vi@example.com may not apply suggestions" in e.value for e in app.error)
    assert get_suggestion(loser.id, actor=ANA).status == SuggestionStatus.NEW


def test_apply_writes_the_new_targeting_and_points_to_the_record(suggested) -> None:  # type: ignore[no-untyped-def]
    loser = planted_loser()
    before = read_targeting(suggested, loser.entity_id)
    assert before == loser.action["change"]["old"]  # what the suggestion was computed on
    app = page()
    click(app, f"apply_{loser.id}")
    after = get_suggestion(loser.id, actor=ANA)
    assert after.status == SuggestionStatus.APPLIED and after.action_id is not None
    assert [s.value for s in app.success][0].startswith(f"#{loser.id} applied: ")
    targeting = read_targeting(suggested, loser.entity_id)
    assert targeting == loser.action["change"]["new"]
    assert "audience_network" not in targeting["publisher_platforms"]

    app.selectbox(key="suggestions_status").set_value("applied").run()
    assert f"Applied as action #{after.action_id}" in app.success[-1].value
    links = app.get("page_link")
    assert any(link.proto.page == "executions" for link in links)
    events = app.dataframe[0].value
    assert list(events["To"]) == ["new", "applied"] and events["By"].iloc[-1] == ADMIN


def test_find_now_says_what_it_did(shop) -> None:  # type: ignore[no-untyped-def]
    app = page()
    assert "Find suggestions now" in app.info[0].value  # nothing found yet: the way to it
    click(app, "suggestions_find")
    made = list_suggestions(actor=ANA, status="all")  # a first generation: every one is new
    said = f"{len(made)} new" if made else "nothing found"
    assert app.success[0].value == f"Looked at 1 account(s): {said}."
    assert app.get("progress")  # the bar, at the top
    click(app, "suggestions_find")  # the same data again: the open ones refreshed
    still = list_suggestions(actor=ANA)
    said = f"{len(still)} refreshed" if still else "nothing found"
    assert app.success[0].value == f"Looked at 1 account(s): {said}."


def test_filters_narrow_the_list(suggested) -> None:  # type: ignore[no-untyped-def]
    app = page()
    app.selectbox(key="suggestions_kind").set_value("placement").run()
    expected = list_suggestions(actor=ANA, kind="placement")
    assert [e.label for e in app.expander] == [f"**{s.title}** · {s.weekly_words}"
                                               for s in expected]  # fmt: skip
    app.selectbox(key="suggestions_account").set_value(ACCOUNT).run()
    assert len(app.expander) == len(expected)


def test_breakdowns_link_to_the_open_suggestions(suggested) -> None:  # type: ignore[no-untyped-def]
    app = signed_page("app.py", timeout=60)
    app.switch_page("pages/breakdowns.py").run()
    assert not app.exception, [e.value for e in app.exception]
    (link,) = app.get("page_link")
    count = len(list_suggestions(actor=ANA, account=ACCOUNT))
    assert link.proto.page == "suggestions"
    assert (
        link.proto.label == f"Suggestions: {count} open for this account come from these breakdowns"
    )


def test_a_queued_suggestion_points_to_the_approvals(suggested, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("REX_SUGGESTION_APPROVAL", "placement")  # a second person decides
    reload_settings()
    loser = planted_loser()
    app = page()
    click(app, f"apply_{loser.id}")
    after = get_suggestion(loser.id, actor=ANA)
    assert after.status == SuggestionStatus.QUEUED and after.approval_id is not None
    assert f"#{loser.id} queued for approval (proposal {after.approval_id})" in app.info[0].value
    assert read_targeting(suggested, loser.entity_id) == loser.action["change"]["old"]  # not yet
    text = " ".join(i.value for i in app.info)
    assert f"Waiting in the approval queue (proposal #{after.approval_id})" in text
    assert any(link.proto.page == "approvals" for link in app.get("page_link"))
    monkeypatch.undo()
    reload_settings()


def test_a_budget_shift_charts_both_ad_sets_marginal_returns(shop) -> None:  # type: ignore[no-untyped-def]
    """A shift on the record (budget shifts need a budget history the scenario cannot
    plant): the chart shows each side's marginal ROAS with its interval."""
    with read_session() as session:
        account = session.scalars(select(AdAccount)).one()
        donor, recipient = session.scalars(
            select(AdEntity).where(AdEntity.level == "adset").order_by(AdEntity.external_id)
        ).all()
        session.expunge_all()
    donor_roas = {"estimate": 0.6, "low": 0.4, "high": 0.8}
    recipient_roas = {"estimate": 2.4, "low": 1.9, "high": 3.0}
    steps = [{"entity_id": e.id, "entity_name": e.name, "old": o, "new": n}
             for e, o, n in ((donor, "800.00 USD", "640.00 USD"),
                             (recipient, "800.00 USD", "960.00 USD"))]  # fmt: skip
    values = {
        "entity_id": recipient.id, "kind": "budget", "level": "adset",
        "dimension": "marginal_roas", "segment": [donor.external_id, recipient.external_id],
        "direction": "better", "title": f"Move 160.00 USD a day from {donor.name} to "
        f"{recipient.name}", "currency": "USD",
        "action": {"type": "change_budget", "steps": steps, "summary": "move 160.00 USD a day",
                   "old": "800.00 USD / 800.00 USD", "new": "640.00 USD / 960.00 USD"},
        "evidence": {"basis": "marginal_roas", "donor": {"marginal_roas": donor_roas},
                     "recipient": {"marginal_roas": recipient_roas}},
        "weekly_profit_minor": 50000, "weekly_profit_low_minor": 20000,
        "weekly_profit_high_minor": 80000, "confidence": 0.97,
        "detail": {"subject": "shift", "why": "returns differ", "payback_days": None},
    }  # fmt: skip
    reconcile(account, [Found("shift", "shift|16000", values)], now=NOW)
    (shift,) = list_suggestions(actor=ANA, kind="budget")
    app = page()
    spec = next(c for c in app.get("plotly_chart") if f"evidence_{shift.id}" in c.proto.id)
    figure = json.loads(spec.proto.spec)
    bars = {trace["x"][0]: trace for trace in figure["data"]}
    assert bars[f"From: {donor.name}"]["y"] == [donor_roas["estimate"]]
    assert bars[f"To: {recipient.name}"]["y"] == [recipient_roas["estimate"]]
    error = bars[f"To: {recipient.name}"]["error_y"]
    assert error["array"][0] == pytest.approx(recipient_roas["high"] - recipient_roas["estimate"])
    assert "marginal ROAS" in figure["layout"]["yaxis"]["title"]["text"]
    assert ("Confidence", "97%") in [(m.label, m.value) for m in app.metric]


def test_an_hours_window_is_applied_as_rules_in_test_first_mode(suggested) -> None:  # type: ignore[no-untyped-def]
    (hours,) = list_suggestions(actor=ANA, kind="dayparting")
    assert hours.action["type"] == "create_rules"
    app = page()
    click(app, f"apply_{hours.id}")
    after = get_suggestion(hours.id, actor=ANA)
    assert after.status == SuggestionStatus.APPLIED
    made = {r.name: r for r in list_rules(actor=SYSTEM)}
    assert set(made) == {r["name"] for r in hours.action["rules"]}
    assert all(r.document["safety"]["dry_run"] for r in made.values())  # Test first, as proposed
    app.selectbox(key="suggestions_status").set_value("applied").run()
    assert f"Applied: {after.reason}" in [s.value for s in app.success]
    assert any(link.proto.page == "rules" for link in app.get("page_link"))
