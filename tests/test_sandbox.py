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
    fields = "adset_id,spend,impressions,clicks,actions,action_values,purchase_roas"
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

    on_meta_only = breakdowns[0] in ("region", "dma", HOURLY)
    assert any(purchases(total) for total in totals)  # the day has purchases to split
    for total in totals:
        parts = [r for r in split if r["adset_id"] == total["adset_id"]]
        assert sum(int(p["spend"]) for p in parts) == int(total["spend"])  # JPY: whole yen
        assert sum(int(p["impressions"]) for p in parts) == int(total["impressions"])
        assert sum(int(p["clicks"]) for p in parts) == int(total["clicks"])
        if not on_meta_only:
            assert sum(purchases(p) for p in parts) == purchases(total)
    if on_meta_only:  # Meta gives no off-Meta action metrics by region, DMA or hour
        assert not any(purchases(p) or "action_values" in p or "purchase_roas" in p
                       for p in split)  # fmt: skip
        assert any(a["action_type"] == "link_click" for p in split for a in p.get("actions", []))


def test_requests_as_the_official_sdk_sends_them(sandbox) -> None:  # type: ignore[no-untyped-def]
    from facebook_business.adobjects.adaccount import AdAccount
    from facebook_business.adobjects.adset import AdSet
    from facebook_business.adobjects.campaign import Campaign
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
    # targeting: read, changed and written whole, as Meta takes it (a write replaces it)
    spec = AdSet(target["id"]).api_get(fields=["targeting"])["targeting"].export_all_data()
    narrower = {**spec, "age_min": 25, "age_max": 44, "genders": [2],
                "targeting_automation": {"advantage_audience": 0}}  # fmt: skip
    AdSet(target["id"]).api_update(params={"targeting": narrower})
    read = AdSet(target["id"]).api_get(fields=["targeting"])["targeting"]
    assert read.export_all_data() == narrower  # the SDK's Targeting object, as sent

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

    # an async report, polled and read as the SDK does it
    job = AdAccount(USD).get_insights_async(
        fields=["ad_id", "spend"], params={"level": "ad", "date_preset": "last_7d"}
    )
    states = [job.api_get()["async_status"] for _ in range(2)]
    assert states == ["Job Running", "Job Completed"]
    rows = list(job.get_result(params={"limit": 10}))
    assert len(rows) > 10 and all(row["ad_id"] and row["spend"] for row in rows)

    # a batch with one item for an object that does not exist
    answers: list = []
    batch = api.new_batch()
    for campaign_id in [campaigns[0]["id"], "404404"]:
        Campaign(campaign_id).api_get(
            fields=["name"],
            batch=batch,
            success=lambda r: answers.append(r.json()),
            failure=lambda r: answers.append(r.json()["error"]["error_subcode"]),
        )
    batch.execute()
    assert answers == [{"id": campaigns[0]["id"], "name": campaigns[0]["name"]}, 33]


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
    # by days_ago too (NOW is the 20th in Los Angeles); breakdowns follow the new totals
    requests.post(
        f"{sandbox.url}/__sandbox/insights",
        timeout=5,
        json={"ad_id": ad["id"], "days_ago": 3, "spend": "10.01", "impressions": 999},
    )
    parts = get(
        sandbox,
        f"{ad['id']}/insights",
        fields="spend,impressions",
        time_range=json.dumps({"since": "2026-11-17", "until": "2026-11-17"}),
        breakdowns=json.dumps(["age"]),
    ).json()["data"]
    assert sum(Decimal(p["spend"]) for p in parts) == Decimal("10.01")
    assert sum(int(p["impressions"]) for p in parts) == 999


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


# --- helpers for the tests below -------------------------------------------------------


def post(sandbox, path: str, **data):  # type: ignore[no-untyped-def]
    data.setdefault("access_token", sandbox.token)
    return requests.post(f"{sandbox.url}/v26.0/{path}", data=data, timeout=10)


def entities(sandbox, level: str, account: str = USD, **match) -> list[dict]:  # type: ignore[no-untyped-def]
    state = requests.get(f"{sandbox.url}/__sandbox/state", timeout=5).json()
    return [
        e
        for e in state["entities"]
        if e["level"] == level
        and e["account_id"] == account
        and all(e[k] == v for k, v in match.items())
    ]


def writes(sandbox) -> list[dict]:  # type: ignore[no-untyped-def]
    return requests.get(f"{sandbox.url}/__sandbox/writes", timeout=5).json()


def error(answer: requests.Response) -> tuple[int, int, int | None]:
    body = answer.json()["error"]
    return answer.status_code, body["code"], body.get("error_subcode")


# --- auth and versions -----------------------------------------------------------------


def test_tokens_versions_and_appsecret_proof(sandbox) -> None:  # type: ignore[no-untyped-def]
    missing = requests.get(f"{sandbox.url}/v26.0/{USD}", timeout=5)
    assert error(missing) == (400, 190, None)
    assert missing.json()["error"]["type"] == "OAuthException"
    bearer = requests.get(
        f"{sandbox.url}/v26.0/{USD}",
        params={"fields": "currency"},
        headers={"Authorization": f"Bearer {sandbox.token}"},
        timeout=5,
    )
    assert bearer.json() == {"id": USD, "currency": "USD"}
    old = requests.get(
        f"{sandbox.url}/v23.0/{USD}", params={"access_token": sandbox.token}, timeout=5
    )
    assert error(old)[1] == 2635
    assert error(get(sandbox, "123456789"))[1:] == (100, 33)

    import hashlib
    import hmac

    with SandboxServer(token="tok", app_secret="s3cret", now=NOW) as server:
        proof = hmac.new(b"s3cret", b"tok", hashlib.sha256).hexdigest()
        assert get(server, USD, appsecret_proof=proof).status_code == 200
        assert error(get(server, USD, appsecret_proof="0" * 64))[1] == 100
        assert error(get(server, USD))[1] == 100


def test_account_fields_and_todays_date_in_each_time_zone(sandbox) -> None:  # type: ignore[no-untyped-def]
    fields = "account_id,name,currency,timezone_name,timezone_offset_hours_utc,account_status"
    usd = get(sandbox, USD, fields=fields + ",min_daily_budget,amount_spent").json()
    assert usd["account_id"] == USD.removeprefix("act_") and usd["account_status"] == 1
    assert (usd["timezone_name"], usd["timezone_offset_hours_utc"]) == ("America/Los_Angeles", -8)
    assert int(usd["amount_spent"]) > 0
    # NOW is 18:30 UTC: 10:30 on the 20th in Los Angeles, 03:30 on the 21st in Tokyo
    for account, today in ((USD, "2026-11-20"), (JPY, "2026-11-21")):
        rows = get(
            sandbox,
            f"{account}/insights",
            level="account",
            time_increment=1,
            fields="spend",
            date_preset="maximum",
            limit=100,
        ).json()["data"]
        assert max(r["date_start"] for r in rows) == today
        assert len(rows) == 90  # the generated history, today included
    # money in major units: cents for USD, whole yen for JPY
    usd_rows = get(sandbox, f"{USD}/insights", fields="spend", date_preset="last_7d").json()
    jpy_rows = get(sandbox, f"{JPY}/insights", fields="spend", date_preset="last_7d").json()
    assert len(usd_rows["data"][0]["spend"].split(".")[1]) == 2
    assert "." not in jpy_rows["data"][0]["spend"]


# --- reading edges ---------------------------------------------------------------------


def test_paging_across_several_pages_with_summary_and_fields(sandbox) -> None:  # type: ignore[no-untyped-def]
    first = get(sandbox, f"{USD}/ads", limit=7, summary="true", fields="name,adset_id").json()
    total = first["summary"]["total_count"]
    assert total >= 40 and len(first["data"]) == 7
    assert set(first["data"][0]) == {"id", "name", "adset_id"}
    seen, page, pages = [], first, 0
    while True:
        pages += 1
        seen += [ad["id"] for ad in page["data"]]
        if "next" not in page["paging"]:
            break
        page = requests.get(page["paging"]["next"], params={"access_token": sandbox.token}).json()
    assert len(seen) == len(set(seen)) == total and pages == -(-total // 7)
    # `before` goes back one page from the last one
    back = get(sandbox, f"{USD}/ads", limit=7, before=page["paging"]["cursors"]["before"]).json()
    assert [a["id"] for a in back["data"]] == seen[-len(page["data"]) - 7 : -len(page["data"])]


def test_effective_status_follows_parents_and_filters(sandbox) -> None:  # type: ignore[no-untyped-def]
    default = get(sandbox, f"{USD}/campaigns", fields="status", limit=100).json()["data"]
    archived = get(
        sandbox, f"{USD}/campaigns", fields="status", effective_status='["ARCHIVED"]'
    ).json()["data"]
    assert "ARCHIVED" not in {c["status"] for c in default}
    assert [c["status"] for c in archived] == ["ARCHIVED"]
    assert "PAUSED" in {c["status"] for c in default}

    adset = entities(sandbox, "adset", status="ACTIVE", effective_status="ACTIVE")[0]
    assert post(sandbox, adset["id"], status="PAUSED").json() == {"success": True}
    ads = get(sandbox, f"{adset['id']}/ads", fields="status,effective_status").json()["data"]
    assert ads and {a["effective_status"] for a in ads if a["status"] == "ACTIVE"} == {
        "ADSET_PAUSED"
    }
    campaign = entities(sandbox, "campaign", status="ACTIVE")[0]
    post(sandbox, campaign["id"], status="PAUSED")
    children = get(sandbox, f"{campaign['id']}/adsets", fields="effective_status").json()["data"]
    assert {c["effective_status"] for c in children} <= {"CAMPAIGN_PAUSED"}
    assert [w["object_id"] for w in writes(sandbox)] == [adset["id"], campaign["id"]]
    assert sandbox.state.write_log[0]["params"] == {"status": "PAUSED"}


# --- writes ----------------------------------------------------------------------------


def test_budget_refusals_change_nothing(sandbox) -> None:  # type: ignore[no-untyped-def]
    cbo = next(c for c in entities(sandbox, "campaign") if c["daily_budget"])
    under_cbo = entities(sandbox, "adset", campaign_id=cbo["id"])[0]
    assert error(post(sandbox, under_cbo["id"], daily_budget="5000")) == (400, 100, 1885621)
    for account in (USD, JPY):
        adset = next(a for a in entities(sandbox, "adset", account) if a["daily_budget"])
        assert error(post(sandbox, adset["id"], daily_budget="99")) == (400, 100, 1885272)
        assert (
            entities(sandbox, "adset", account, id=adset["id"])[0]["daily_budget"]
            == (adset["daily_budget"])
        )
        assert post(sandbox, adset["id"], daily_budget="100").json() == {"success": True}
    assert error(post(sandbox, cbo["id"], daily_budget="12.50"))[1] == 100
    assert post(sandbox, cbo["id"], daily_budget="45000").json() == {"success": True}
    assert get(sandbox, cbo["id"], fields="daily_budget").json()["daily_budget"] == "45000"
    assert len(writes(sandbox)) == 3


def test_copies_appear_in_the_edges(sandbox) -> None:  # type: ignore[no-untyped-def]
    ad = entities(sandbox, "ad", status="ACTIVE")[0]
    copied = post(sandbox, f"{ad['id']}/copies").json()
    assert set(copied) == {"copied_ad_id"}
    listed = get(sandbox, f"{ad['adset_id']}/ads", fields="name,status", limit=100).json()
    copy = next(a for a in listed["data"] if a["id"] == copied["copied_ad_id"])
    assert copy == {
        "id": copied["copied_ad_id"],
        "name": ad["name"] + " - Copy",
        "status": "PAUSED",
    }

    adset = next(
        a for a in entities(sandbox, "adset", status="ACTIVE") if a["id"] != ad["adset_id"]
    )
    answer = post(
        sandbox,
        f"{adset['id']}/copies",
        deep_copy="true",
        status_option="ACTIVE",
        rename_options=json.dumps({"rename_strategy": "DEEP_RENAME", "rename_suffix": " (2)"}),
    ).json()
    new_id = answer["copied_adset_id"]
    assert [o["ad_object_type"] for o in answer["ad_object_ids"]] == ["adset", "ad", "ad", "ad"]
    adsets = get(sandbox, f"{adset['campaign_id']}/adsets", fields="name,status").json()["data"]
    assert {"id": new_id, "name": adset["name"] + " (2)", "status": "ACTIVE"} in adsets
    new_ads = get(sandbox, f"{new_id}/ads", fields="name").json()["data"]
    assert len(new_ads) == 3 and all(a["name"].endswith(" (2)") for a in new_ads)
    assert [w["path"] for w in writes(sandbox)] == [
        f"{ad['id']}/copies",
        f"{adset['id']}/copies",
    ]


# --- batch and async -------------------------------------------------------------------


def test_batch_items_answer_on_their_own(sandbox) -> None:  # type: ignore[no-untyped-def]
    from core.sandbox import FaultConfig

    ad = entities(sandbox, "ad", status="ACTIVE")[0]
    batch = [
        {"method": "GET", "relative_url": f"{ad['id']}?fields=name"},
        {"method": "GET", "relative_url": "v26.0/424242?fields=name"},
        {"method": "POST", "relative_url": ad["id"], "body": "status=PAUSED"},
    ]
    answer = requests.post(
        f"{sandbox.url}/v26.0/",
        data={"access_token": sandbox.token, "batch": json.dumps(batch)},
        timeout=5,
    ).json()
    assert [item["code"] for item in answer] == [200, 400, 200]
    assert json.loads(answer[0]["body"]) == {"id": ad["id"], "name": ad["name"]}
    assert json.loads(answer[1]["body"])["error"]["error_subcode"] == 33
    assert entities(sandbox, "ad", id=ad["id"])[0]["status"] == "PAUSED"

    sandbox.set_faults(FaultConfig(fail_next=["batch_null"]))
    again = requests.post(
        f"{sandbox.url}/",
        data={"access_token": sandbox.token, "batch": json.dumps(batch[:2])},
        timeout=5,
    ).json()
    assert again[0] is None and again[1]["code"] == 400
    too_many = requests.post(
        f"{sandbox.url}/v26.0",
        data={"access_token": sandbox.token, "batch": json.dumps(batch[:1] * 51)},
        timeout=5,
    )
    assert error(too_many)[1] == 1


def _report(sandbox, **faults) -> tuple[list[tuple[str, int]], str]:  # type: ignore[no-untyped-def]
    from core.sandbox import FaultConfig

    sandbox.set_faults(FaultConfig(**faults))
    params = {
        "level": "ad",
        "fields": "ad_id,spend",
        "time_range": json.dumps({"since": "2026-11-01", "until": "2026-11-07"}),
        "time_increment": "1",
    }
    run_id = post(sandbox, f"{USD}/insights", **params).json()["report_run_id"]
    assert error(get(sandbox, f"{run_id}/insights"))[1] == 100  # not ready yet
    seen = []
    while not seen or seen[-1][0] not in ("Job Completed", "Job Failed"):
        status = get(sandbox, run_id, fields="async_status,async_percent_completion").json()
        seen.append((status["async_status"], status["async_percent_completion"]))
    return seen, run_id


def test_async_reports_run_through_their_states(sandbox) -> None:  # type: ignore[no-untyped-def]
    seen, run_id = _report(sandbox)
    assert seen == [("Job Running", 100), ("Job Completed", 100)]
    rows = get(sandbox, f"{run_id}/insights", limit=20).json()
    assert len(rows["data"]) == 20 and "next" in rows["paging"]
    direct = get(
        sandbox,
        f"{USD}/insights",
        level="ad",
        fields="ad_id,spend",
        time_range=json.dumps({"since": "2026-11-01", "until": "2026-11-07"}),
        time_increment=1,
        limit=20,
    ).json()
    assert rows["data"] == direct["data"]

    slow, _ = _report(sandbox, fail_next=["async_slow"])
    assert slow == [
        ("Job Not Started", 0),
        ("Job Running", 45),
        ("Job Running", 100),
        ("Job Completed", 100),
    ]
    failed, _ = _report(sandbox, fail_next=["async_fail"])
    assert failed[-1][0] == "Job Failed"


# --- faults ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("5xx", 500, 1),
        ("transient", 503, 2),
        ("user_rate", 400, 17),
        ("app_rate", 400, 4),
        ("ads_rate", 400, 613),
        ("buc", 400, 80004),
        ("token", 400, 190),
    ],
)
def test_each_fault_answers_as_meta_and_writes_nothing(sandbox, kind, status, code) -> None:  # type: ignore[no-untyped-def]
    from core.sandbox import FaultConfig

    adset = entities(sandbox, "adset", status="ACTIVE")[0]
    sandbox.set_faults(FaultConfig(rates={kind: 1.0}, regain_minutes=7))
    read = get(sandbox, USD, fields="name")
    write = post(sandbox, adset["id"], status="PAUSED")
    for answer in (read, write):
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)
        assert answer.json()["error"]["fbtrace_id"]
    if kind in ("5xx", "transient"):
        assert write.json()["error"]["is_transient"] is True
    if kind == "buc":
        usage = json.loads(read.headers["X-Business-Use-Case-Usage"])
        assert usage[USD.removeprefix("act_")][0]["estimated_time_to_regain_access"] == 7
    assert writes(sandbox) == [] and sandbox.state.write_log == []
    assert entities(sandbox, "adset", id=adset["id"])[0]["status"] == "ACTIVE"


def test_fail_next_fails_exactly_that_many_requests(sandbox) -> None:  # type: ignore[no-untyped-def]
    from core.sandbox import FaultConfig

    sandbox.set_faults(FaultConfig(fail_next=[("transient", 2), "user_rate"]))
    codes = [get(sandbox, USD).json().get("error", {}).get("code") for _ in range(4)]
    assert codes == [2, 2, 17, None]
    # the same through the admin endpoint, with JSON pairs
    set_ = requests.post(
        f"{sandbox.url}/__sandbox/faults", json={"fail_next": [["token", 1]]}, timeout=5
    ).json()
    assert set_["pending"] == ["token"]
    assert error(get(sandbox, USD))[1] == 190 and get(sandbox, USD).status_code == 200
    wrong = requests.post(f"{sandbox.url}/__sandbox/faults", json={"rates": {"x": 1}}, timeout=5)
    assert wrong.status_code == 400 and "unknown fault kind" in wrong.text


def test_expired_token_and_reset(sandbox) -> None:  # type: ignore[no-untyped-def]
    from core.sandbox import FaultConfig

    adset = entities(sandbox, "adset", status="ACTIVE")[0]
    post(sandbox, adset["id"], status="PAUSED")
    sandbox.set_faults(FaultConfig(expired_token=True))
    assert error(get(sandbox, USD))[1:] == (190, 463)
    requests.post(f"{sandbox.url}/__sandbox/reset", timeout=5)
    assert get(sandbox, USD).status_code == 200
    assert entities(sandbox, "adset", id=adset["id"])[0]["status"] == "ACTIVE"
    assert writes(sandbox) == []
    assert requests.get(f"{sandbox.url}/__sandbox/requests", timeout=5).json()[0]["path"]


# --- running it as a process -----------------------------------------------------------


def test_run_server_announces_itself_and_stops_on_sigterm() -> None:
    import signal
    import subprocess
    import sys

    code = "from core.sandbox import run_server; run_server(port=0, token='tok', seed=3)"
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd="."
    )
    try:
        line = json.loads(process.stdout.readline())  # type: ignore[union-attr]
        assert set(line) == {"graph_url", "token", "accounts", "admin_url"}
        assert line["token"] == "tok" and line["accounts"] == [USD, JPY]
        assert line["admin_url"] == line["graph_url"] + "/__sandbox"
        answer = requests.get(
            f"{line['graph_url']}/v26.0/{USD}", params={"access_token": "tok"}, timeout=5
        )
        assert answer.json() == {"id": USD}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_insight_rows_carry_names_filters_and_revenue_without_purchases() -> None:
    with SandboxServer(scenario=SCENARIO, now=NOW) as server:
        yesterday = get(
            server,
            "act_2001/insights",
            level="ad",
            fields="campaign_name,ad_id,ad_name,spend,actions,action_values,purchase_roas",
            date_preset="yesterday",
            filtering=json.dumps([{"field": "campaign.id", "operator": "IN", "value": ["3002"]}]),
        ).json()["data"]
        assert len(yesterday) == 1
        row = yesterday[0]
        assert (row["campaign_name"], row["ad_id"], row["spend"]) == ("B", "5002", "6.51")
        # revenue reported although no purchase was counted that day (late attribution)
        assert {"action_type": "omni_purchase", "value": "13.61"} in row["action_values"]
        assert "omni_purchase" not in {a["action_type"] for a in row.get("actions", [])}
        assert row["purchase_roas"][0]["value"].startswith("2.09")
        bad = get(
            server,
            "act_2001/insights",
            filtering=json.dumps([{"field": "campaign.name", "operator": "IN", "value": ["B"]}]),
        )
        assert error(bad)[1] == 100 and "filtering" in bad.json()["error"]["message"]


def test_the_scenario_schema_file_matches_the_loader() -> None:
    from pathlib import Path

    from core.sandbox.scenario import scenario_json_schema

    written = json.loads(Path("docs/scenario.schema.json").read_text())
    assert written == scenario_json_schema()
