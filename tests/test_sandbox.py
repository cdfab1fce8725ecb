"""The sandbox speaks Meta's wire protocol: as the official SDK sends it, in Meta's shapes,
deterministic for a seed, with breakdowns that add up and scenarios that load exactly."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest
import requests

from core.sandbox import SandboxServer, ScenarioError, load_scenario
from core.sandbox.world import HOURLY
from tests.conftest import NOW

USD, JPY = "act_1010000001", "act_1020000002"
SCENARIO = "tests/scenarios/worked_example.json"
FIRST_AD = "accounts[0].campaigns[0].adsets[0].ads[0]"


def get(sandbox, path: str, **params):  # type: ignore[no-untyped-def]
    params.setdefault("access_token", sandbox.token)
    return requests.get(f"{sandbox.url}/v26.0/{path}", params=params, timeout=10)


def test_the_generated_world_has_what_the_issue_asks(sandbox) -> None:  # type: ignore[no-untyped-def]
    state = requests.get(f"{sandbox.url}/__sandbox/state", timeout=5).json()
    assert [(a["currency"], a["timezone"]) for a in state["accounts"]] == [
        ("USD", "America/Los_Angeles"),
        ("JPY", "Asia/Tokyo"),
    ]
    for account in (USD, JPY):
        mine = [e for e in state["entities"] if e["account_id"] == account]
        levels = defaultdict(list)
        for e in mine:
            levels[e["level"]].append(e)
        assert len(levels["campaign"]) >= 3 and len(levels["adset"]) >= 12
        assert len(levels["ad"]) >= 40
        assert any(c["daily_budget"] for c in levels["campaign"])


def test_sixty_days_of_insights_with_winners_and_losers(sandbox) -> None:  # type: ignore[no-untyped-def]
    today = date(2026, 11, 20)  # 10:30 in Los Angeles
    rows = get(
        sandbox,
        f"{USD}/insights",
        level="adset",
        time_increment=1,
        limit=5000,
        fields="adset_id,spend,action_values",
        time_range=json.dumps({"since": str(today - timedelta(days=59)), "until": str(today)}),
    ).json()["data"]
    assert min(r["date_start"] for r in rows) == str(today - timedelta(days=59))
    assert max(r["date_start"] for r in rows) == str(today)
    spend, revenue = defaultdict(Decimal), defaultdict(Decimal)
    for row in rows:
        spend[row["adset_id"]] += Decimal(row["spend"])
        for value in row.get("action_values", []):
            if value["action_type"] == "omni_purchase":
                revenue[row["adset_id"]] += Decimal(value["value"])
    roas = {adset: revenue[adset] / spend[adset] for adset in spend if spend[adset]}
    assert sum(r > 3 for r in roas.values()) >= 3  # clear winners
    assert sum(r < 1 for r in roas.values()) >= 2  # clear losers


def test_same_seed_same_world_other_seed_other_numbers() -> None:
    def numbers(seed: int) -> list[dict]:
        with SandboxServer(seed=seed, now=NOW) as server:
            return get(
                server,
                f"{USD}/insights",
                level="ad",
                time_increment=1,
                fields="ad_id,spend,clicks",
                date_preset="last_7d",
                limit=500,
            ).json()["data"]

    assert numbers(3) == numbers(3)
    assert numbers(3) != numbers(4)


@pytest.mark.parametrize(
    "breakdowns",
    [
        ["age", "gender"],
        ["publisher_platform", "platform_position", "impression_device"],
        ["country"],
        ["region"],
        ["dma"],
        [HOURLY],
    ],
)
def test_breakdown_rows_sum_to_the_day_totals(sandbox, breakdowns) -> None:  # type: ignore[no-untyped-def]
    fields = "adset_id,spend,impressions,clicks,actions"
    day = json.dumps({"since": "2026-11-18", "until": "2026-11-18"})
    totals = get(
        sandbox,
        f"{JPY}/insights",
        level="adset",
        time_increment=1,
        fields=fields,
        time_range=day,
        limit=500,
    ).json()["data"]
    split = get(
        sandbox,
        f"{JPY}/insights",
        level="adset",
        time_increment=1,
        fields=fields,
        time_range=day,
        limit=5000,
        breakdowns=json.dumps(breakdowns),
    ).json()["data"]
    assert split and all(all(b in row for b in breakdowns) for row in split)

    def purchases(row: dict) -> int:
        return sum(
            int(a["value"]) for a in row.get("actions", []) if a["action_type"] == "purchase"
        )

    for total in totals:
        parts = [r for r in split if r["adset_id"] == total["adset_id"]]
        assert sum(int(p["spend"]) for p in parts) == int(total["spend"])  # JPY: whole yen
        assert sum(int(p["impressions"]) for p in parts) == int(total["impressions"])
        assert sum(purchases(p) for p in parts) == purchases(total)


def test_requests_as_the_official_sdk_sends_them(sandbox) -> None:  # type: ignore[no-untyped-def]
    from facebook_business.adobjects.adaccount import AdAccount
    from facebook_business.adobjects.adset import AdSet
    from facebook_business.api import FacebookAdsApi

    api = FacebookAdsApi.init(access_token=sandbox.token, api_version="v26.0")
    api._session.GRAPH = sandbox.url  # the SDK's base URL
    account = AdAccount(USD).api_get(fields=["name", "currency", "timezone_name"])
    assert account["currency"] == "USD"

    cursor = AdAccount(USD).get_campaigns(fields=["name", "status"], params={"limit": 2})
    campaigns = list(cursor)  # the SDK follows paging.next / after cursors itself
    assert len(campaigns) >= 4

    adsets = AdAccount(USD).get_ad_sets(
        fields=["name", "status", "daily_budget"], params={"effective_status": ["ACTIVE"]}
    )
    target = next(a for a in adsets if int(a["daily_budget"] or 0) > 0)
    AdSet(target["id"]).api_update(params={"status": "PAUSED", "daily_budget": 12_300})
    after = AdSet(target["id"]).api_get(fields=["status", "daily_budget", "effective_status"])
    assert (after["status"], after["daily_budget"]) == ("PAUSED", "12300")

    insights = AdAccount(USD).get_insights(
        fields=["spend", "actions"],
        params={
            "level": "campaign",
            "time_range": {"since": "2026-11-10", "until": "2026-11-16"},
            "time_increment": 1,
            "breakdowns": ["age", "gender"],
        },
    )
    assert all("age" in row and "gender" in row for row in insights)


def test_wire_details(sandbox) -> None:  # type: ignore[no-untyped-def]
    # token in the Authorization header, a trailing slash, summary=true
    answer = requests.get(
        f"{sandbox.url}/v26.0/{USD}/campaigns/",
        params={"summary": "true", "limit": 2, "fields": "name"},
        headers={"Authorization": f"OAuth {sandbox.token}"},
        timeout=5,
    )
    body = answer.json()
    assert len(body["data"]) == 2 and body["summary"]["total_count"] >= 4
    assert "after" in body["paging"]["cursors"] and "next" in body["paging"]
    assert json.loads(answer.headers["X-Business-Use-Case-Usage"])[USD.removeprefix("act_")]
    # form-encoded JSON parameters on POST, as the SDKs send them
    adset = next(
        e
        for e in requests.get(f"{sandbox.url}/__sandbox/state", timeout=5).json()["entities"]
        if e["level"] == "adset" and e["daily_budget"]
    )
    posted = requests.post(
        f"{sandbox.url}/v26.0/{adset['id']}/",
        data={"access_token": sandbox.token, "status": "PAUSED"},
        timeout=5,
    )
    assert posted.json() == {"success": True}
    # a wrong token is error 190, shaped as Meta shapes it
    wrong = requests.get(f"{sandbox.url}/v26.0/{USD}", params={"access_token": "x"}, timeout=5)
    assert wrong.status_code == 400
    assert wrong.json()["error"]["code"] == 190 and wrong.json()["error"]["fbtrace_id"]


def test_deep_copies_are_limited_to_three_children(sandbox) -> None:  # type: ignore[no-untyped-def]
    campaign = next(
        e
        for e in requests.get(f"{sandbox.url}/__sandbox/state", timeout=5).json()["entities"]
        if e["level"] == "campaign"
    )
    answer = requests.post(
        f"{sandbox.url}/v26.0/{campaign['id']}/copies",
        data={"access_token": sandbox.token, "deep_copy": "true"},
        timeout=5,
    ).json()
    assert answer["error"]["error_subcode"] == 1885194


def test_four_budget_changes_an_hour_per_adset(sandbox) -> None:  # type: ignore[no-untyped-def]
    adset = next(
        e
        for e in requests.get(f"{sandbox.url}/__sandbox/state", timeout=5).json()["entities"]
        if e["level"] == "adset" and e["daily_budget"]
    )
    answers = [
        requests.post(
            f"{sandbox.url}/v26.0/{adset['id']}",
            data={"access_token": sandbox.token, "daily_budget": 5000 + n},
            timeout=5,
        ).json()
        for n in range(5)
    ]
    assert answers[:4] == [{"success": True}] * 4
    assert answers[4]["error"]["code"] == 613 and answers[4]["error"]["error_subcode"] == 1487632


def test_admin_override_changes_a_past_day(sandbox) -> None:  # type: ignore[no-untyped-def]
    ad = next(
        e
        for e in requests.get(f"{sandbox.url}/__sandbox/state", timeout=5).json()["entities"]
        if e["level"] == "ad" and e["account_id"] == USD
    )
    requests.post(
        f"{sandbox.url}/__sandbox/insights",
        timeout=5,
        json={
            "ad_id": ad["id"],
            "date": "2026-11-10",
            "spend": "99.99",
            "impressions": 5000,
            "clicks": 50,
            "reach": 4000,
            "purchases": 4,
            "purchase_value": "400.00",
        },
    )
    row = get(
        sandbox,
        f"{ad['id']}/insights",
        fields="spend,action_values",
        time_range=json.dumps({"since": "2026-11-10", "until": "2026-11-10"}),
    ).json()["data"][0]
    assert row["spend"] == "99.99"
    assert {"action_type": "omni_purchase", "value": "400.00"} in row["action_values"]


def test_a_scenario_replaces_the_generated_world() -> None:
    with SandboxServer(scenario=SCENARIO, now=NOW) as server:
        assert server.account_ids == ["act_2001"]
        rows = get(
            server,
            "act_2001/insights",
            level="campaign",
            fields="campaign_id,spend",
            date_preset="last_7d",
        ).json()["data"]
        assert {r["campaign_id"]: r["spend"] for r in rows} == {
            "3001": "78.13",  # 6 × 11.16 + 11.17, as written in the file
            "3002": "45.45",
            "3003": "45.00",
        }


def _account(scenario: dict) -> dict:
    return scenario["accounts"][0]


def _first_day(scenario: dict) -> dict:
    return _account(scenario)["campaigns"][0]["adsets"][0]["ads"][0]["days"][0]


@pytest.mark.parametrize(
    ("change", "field", "fix"),
    [
        (lambda s: _account(s).update(currency="DOLLARS"), "accounts[0].currency", "at most 3"),
        (lambda s: _first_day(s).pop("days_ago"), f"{FIRST_AD}.days[0]", "either date"),
        (
            lambda s: s["accounts"][0]["campaigns"][1].update(id="3001"),
            "accounts[0].campaigns[1].id",
            "already used",
        ),
        (
            lambda s: s["accounts"][0]["campaigns"][0]["adsets"][0].update(daily_budget=100),
            "accounts[0].campaigns[0]",
            "never both",
        ),
    ],
)
def test_scenario_errors_name_the_field(change, field: str, fix: str) -> None:  # type: ignore[no-untyped-def]
    with open(SCENARIO) as handle:
        scenario = json.load(handle)
    change(scenario)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(scenario)
    assert caught.value.field == field
    assert fix in caught.value.problem
