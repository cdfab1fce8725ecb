"""The Graph client against the sandbox over loopback HTTP: reads, paging, batch, async
reports, writes, and every error family mapped to its class."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from pydantic import SecretStr

from core.meta import (
    GraphClient,
    GraphOptions,
    InvalidParameterError,
    ObjectGoneError,
    RateLimitedError,
    TokenInvalidError,
    TransientError,
)
from core.meta.client import BatchRequest
from core.meta.errors import AsyncReportError, DeprecatedVersionError
from core.meta.objects import INSIGHT_FIELDS
from core.money import to_minor
from core.sandbox import FaultConfig
from tests.conftest import NOW

USD, JPY = "act_1010000001", "act_1020000002"


def client(sandbox, account: str = USD, *, sleep=time.sleep, **options) -> GraphClient:  # type: ignore[no-untyped-def]
    """A client of the sandbox; `options` change fields of the settings' GraphOptions."""
    options.setdefault("backoff_seconds", 0.001)
    options.setdefault("poll_seconds", 0.001)
    return GraphClient(
        sandbox.token,
        account_id=account,
        base_url=sandbox.url,
        options=replace(GraphOptions.from_settings(), **options),
        sleep=sleep,
    )


def requests_made(sandbox) -> int:  # type: ignore[no-untyped-def]
    return len(requests.get(f"{sandbox.url}/__sandbox/requests", timeout=5).json())


def writes(sandbox) -> list[dict]:  # type: ignore[no-untyped-def]
    return requests.get(f"{sandbox.url}/__sandbox/writes", timeout=5).json()


def entity(sandbox, object_id: str) -> dict:  # type: ignore[no-untyped-def]
    state = requests.get(f"{sandbox.url}/__sandbox/state", timeout=5).json()
    return next(e for e in state["entities"] if e["id"] == object_id)


def first(sandbox, account: str, level: str, **match) -> dict:  # type: ignore[no-untyped-def]
    state = requests.get(f"{sandbox.url}/__sandbox/state", timeout=5).json()
    return next(
        e
        for e in state["entities"]
        if e["account_id"] == account
        and e["level"] == level
        and all(e.get(k) == v for k, v in match.items())
    )


# ------------------------------------------------------------------------- reads


def test_account_fields_in_both_currencies(sandbox) -> None:  # type: ignore[no-untyped-def]
    usd = client(sandbox).get_account(USD)
    jpy = client(sandbox, JPY).get_account(JPY)
    assert (usd.currency, usd.timezone_name, usd.status_label) == (
        "USD",
        "America/Los_Angeles",
        "active",
    )
    assert (jpy.currency, jpy.timezone_name) == ("JPY", "Asia/Tokyo")


def test_entities_include_paused_and_archived(sandbox) -> None:  # type: ignore[no-untyped-def]
    graph = client(sandbox)
    campaigns = graph.list_entities(USD, "campaign")
    adsets = graph.list_entities(USD, "adset")
    ads = graph.list_entities(USD, "ad")
    assert len(campaigns) >= 3 and len(adsets) >= 12 and len(ads) >= 40
    assert {"ACTIVE", "PAUSED", "ARCHIVED"} <= {c.effective_status for c in campaigns}
    assert any(c.daily_budget_minor for c in campaigns)  # a campaign budget
    assert "CAMPAIGN_PAUSED" in {a.effective_status for a in adsets}
    without_archived = graph.list_entities(USD, "campaign", include_archived=False)
    assert len(without_archived) == len(campaigns) - 1


def test_paging_across_several_pages(sandbox) -> None:  # type: ignore[no-untyped-def]
    graph = client(sandbox)
    before = requests_made(sandbox)
    paged = list(graph.iter_edge(f"{USD}/ads", {"fields": "id,name", "limit": 7}))
    pages = requests_made(sandbox) - before
    everything = graph.list_entities(USD, "ad", include_archived=False)

    assert pages == -(-len(paged) // 7)  # ceil: one request per page
    assert pages >= 5
    assert len({ad["id"] for ad in paged}) == len(paged) == len(everything)


def test_insights_daily_rows_with_purchases_counted_once(sandbox) -> None:  # type: ignore[no-untyped-def]
    today = NOW.astimezone(__import__("zoneinfo").ZoneInfo("America/Los_Angeles")).date()
    rows = list(
        client(sandbox).insights(
            USD,
            level="campaign",
            since=today - timedelta(days=6),
            until=today,
            fields=INSIGHT_FIELDS,
        )
    )
    assert {r.date_start for r in rows} == {today - timedelta(days=n) for n in range(7)}
    assert all(r.date_start == r.date_stop for r in rows)
    # omni_purchase, purchase and the pixel event all report the same purchases: not 3×
    raw = requests.get(
        f"{sandbox.url}/v26.0/{rows[0].ids['campaign_id']}/insights",
        params={
            "access_token": sandbox.token,
            "fields": "actions",
            "time_range": f'{{"since":"{rows[0].date_start}","until":"{rows[0].date_start}"}}',
        },
        timeout=5,
    ).json()["data"][0]
    purchases = {a["action_type"]: int(a["value"]) for a in raw["actions"]}
    assert rows[0].conversions == purchases["omni_purchase"]


def test_async_report_waits_for_job_completed_not_percent(sandbox) -> None:  # type: ignore[no-untyped-def]
    graph = client(sandbox)
    since, until = date(2026, 10, 22), date(2026, 11, 19)
    direct = list(graph.insights(USD, level="ad", since=since, until=until, fields=INSIGHT_FIELDS))
    before = requests_made(sandbox)
    report = list(
        graph.insights(
            USD, level="ad", since=since, until=until, fields=INSIGHT_FIELDS, use_async=True
        )
    )
    assert report == direct
    # POST, a poll answering "Job Running" at 100 %, one answering "Job Completed", pages
    pages = -(-len(report) // 500)
    assert requests_made(sandbox) - before == 1 + 2 + pages


def test_async_report_that_fails_raises(sandbox) -> None:  # type: ignore[no-untyped-def]
    sandbox.set_faults(FaultConfig(fail_next=["async_fail"]))
    with pytest.raises(AsyncReportError, match="Job Failed"):
        list(
            client(sandbox).insights(
                USD,
                level="ad",
                since=date(2026, 11, 1),
                until=date(2026, 11, 2),
                fields=INSIGHT_FIELDS,
                use_async=True,
            )
        )


def test_batch_answers_each_item_and_one_failure_does_not_fail_the_rest(sandbox) -> None:  # type: ignore[no-untyped-def]
    ads = [a.external_id for a in client(sandbox).list_entities(USD, "ad")][:3]
    results = client(sandbox).get_objects([ads[0], "999999999", ads[1], ads[2]], ["id", "name"])
    assert [r["id"] for r in (results[0], results[2], results[3])] == [ads[0], ads[1], ads[2]]
    assert isinstance(results[1], ObjectGoneError)


def test_batch_items_answered_null_are_sent_again(sandbox) -> None:  # type: ignore[no-untyped-def]
    ads = [a.external_id for a in client(sandbox).list_entities(USD, "ad")][:3]
    sandbox.set_faults(FaultConfig(fail_next=["batch_null"]))
    results = client(sandbox).get_objects(ads, ["id"])
    assert [r["id"] for r in results] == ads


def test_batches_hold_at_most_50_items(sandbox) -> None:  # type: ignore[no-untyped-def]
    ads = [a.external_id for a in client(sandbox).list_entities(USD, "ad")]
    wanted = (ads * 3)[:120]
    before = requests_made(sandbox)
    results = client(sandbox).batch([BatchRequest("GET", ad, {"fields": "id"}) for ad in wanted])
    assert [r["id"] for r in results] == wanted
    assert requests_made(sandbox) - before == 3  # 50 + 50 + 20


# ------------------------------------------------------------------------ writes


def test_pausing_an_adset_pauses_its_ads_effectively(sandbox) -> None:  # type: ignore[no-untyped-def]
    adset = first(sandbox, USD, "adset", status="ACTIVE", effective_status="ACTIVE")
    client(sandbox).set_status(adset["id"], "PAUSED")
    ads = client(sandbox).get_objects(
        [
            e["id"]
            for e in requests.get(f"{sandbox.url}/__sandbox/state", timeout=5).json()["entities"]
            if e.get("adset_id") == adset["id"]
        ],
        ["id", "status", "effective_status"],
    )
    assert ads and all(
        a["effective_status"] in ("ADSET_PAUSED",) for a in ads if a["status"] == "ACTIVE"
    )
    assert writes(sandbox)[-1]["params"] == {"status": "PAUSED"}


@pytest.mark.parametrize(("account", "amount"), [(USD, "123.45"), (JPY, "12345")])
def test_budgets_round_trip_exactly_in_minor_units(sandbox, account: str, amount: str) -> None:  # type: ignore[no-untyped-def]
    graph = client(sandbox, account)
    adset = next(
        a for a in graph.list_entities(account, "adset") if a.daily_budget_minor is not None
    )
    currency = graph.get_account(account).currency
    minor = to_minor(amount, currency)
    graph.set_budget(adset.external_id, "daily", minor)

    fresh = graph.get_objects([adset.external_id], ["daily_budget"])[0]
    assert int(fresh["daily_budget"]) == minor == 12345  # $123.45 in cents, ¥12,345 in yen
    assert writes(sandbox)[-1]["params"] == {"daily_budget": str(minor)}


def test_budget_refusals_name_the_field_and_change_nothing(sandbox) -> None:  # type: ignore[no-untyped-def]
    graph = client(sandbox)
    adsets = graph.list_entities(USD, "adset")
    cbo = next(c for c in graph.list_entities(USD, "campaign") if c.daily_budget_minor)
    cbo_adset = next(a for a in adsets if a.campaign_id == cbo.external_id)
    with pytest.raises(InvalidParameterError) as caught:
        graph.set_budget(cbo_adset.external_id, "daily", 5000)
    assert caught.value.subcode == 1885621 and caught.value.blamed_field == "daily_budget"
    assert "campaign budget" in caught.value.explain()

    own = next(a for a in adsets if a.daily_budget_minor)
    with pytest.raises(InvalidParameterError) as too_low:
        graph.set_budget(own.external_id, "daily", 50)
    assert too_low.value.subcode == 1885272
    assert writes(sandbox) == []


def test_copies_get_new_ids_names_and_appear_in_the_edge(sandbox) -> None:  # type: ignore[no-untyped-def]
    graph = client(sandbox)
    ad = next(a for a in graph.list_entities(USD, "ad") if a.effective_status == "ACTIVE")
    copied = graph.copy(ad.external_id, "ad", rename_suffix=" - Copy")
    listed = {a.external_id: a for a in graph.list_entities(USD, "ad")}
    assert copied.copied_id != ad.external_id
    assert listed[copied.copied_id].name == f"{ad.name} - Copy"
    assert listed[copied.copied_id].status == "PAUSED"
    assert listed[copied.copied_id].adset_id == ad.adset_id


def test_a_transient_error_is_retried_and_succeeds(sandbox) -> None:  # type: ignore[no-untyped-def]
    adset = first(sandbox, USD, "adset", status="ACTIVE")
    sandbox.set_faults(FaultConfig(fail_next=["transient"]))
    before = requests_made(sandbox)
    client(sandbox).set_status(adset["id"], "PAUSED")
    assert requests_made(sandbox) - before == 2
    assert len(writes(sandbox)) == 1  # the failed attempt changed nothing
    assert entity(sandbox, adset["id"])["status"] == "PAUSED"


def test_a_copy_is_never_retried(sandbox) -> None:  # type: ignore[no-untyped-def]
    ad = first(sandbox, USD, "ad", status="ACTIVE")
    sandbox.set_faults(FaultConfig(fail_next=["5xx"]))
    with pytest.raises(TransientError):
        client(sandbox).copy(ad["id"], "ad")
    assert writes(sandbox) == []


# ------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("fault", "error_class", "code"),
    [
        ("5xx", TransientError, 1),
        ("transient", TransientError, 2),
        ("user_rate", RateLimitedError, 17),
        ("app_rate", RateLimitedError, 4),
        ("ads_rate", RateLimitedError, 613),
        ("buc", RateLimitedError, 80004),
        ("token", TokenInvalidError, 190),
    ],
)
def test_each_error_family_maps_to_its_class(sandbox, fault, error_class, code) -> None:  # type: ignore[no-untyped-def]
    sandbox.set_faults(FaultConfig(rates={fault: 1.0}, regain_minutes=30))
    graph = client(sandbox, max_retries=1)
    with pytest.raises(error_class) as caught:
        graph.get_account(USD)
    assert caught.value.code == code
    if error_class is RateLimitedError:
        # the regain time from the usage headers; app-level throttling (X-App-Usage)
        # carries none, so the client waits its conservative default of 5 minutes
        minutes = 5 if fault == "app_rate" else 30
        wait = caught.value.regain_at - datetime.now(UTC)
        assert timedelta(minutes=minutes - 1) < wait <= timedelta(minutes=minutes)


def test_wrong_token_unknown_object_and_old_version(sandbox) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TokenInvalidError) as caught:
        GraphClient("not-the-token", base_url=sandbox.url).get_account(USD)
    assert caught.value.code == 190
    with pytest.raises(ObjectGoneError):
        client(sandbox).get("123", {"fields": "id"})
    with pytest.raises(DeprecatedVersionError):
        client(sandbox, version="v19.0").get_account(USD)


def test_no_call_before_the_rate_limit_regain_time(sandbox) -> None:  # type: ignore[no-untyped-def]
    sandbox.set_faults(FaultConfig(fail_next=["buc"], regain_minutes=10))
    graph = client(sandbox, max_inline_wait_seconds=2)
    with pytest.raises(RateLimitedError) as caught:
        graph.get_account(USD)
    assert graph.blocked_until == caught.value.regain_at
    before = requests_made(sandbox)
    with pytest.raises(RateLimitedError, match="paused by an earlier rate limit"):
        graph.list_entities(USD, "campaign")
    assert requests_made(sandbox) == before  # refused without an HTTP call


def test_a_short_rate_limit_is_waited_out(sandbox) -> None:  # type: ignore[no-untyped-def]
    sandbox.set_faults(FaultConfig(fail_next=["buc"], regain_minutes=1))
    slept: list[float] = []
    graph = client(sandbox, max_inline_wait_seconds=120, sleep=slept.append)
    assert graph.get_account(USD).currency == "USD"
    assert 55 < max(slept) <= 60


def test_app_secret_proof_is_sent_when_configured(sandbox) -> None:  # type: ignore[no-untyped-def]
    from core.sandbox import SandboxServer

    with SandboxServer(seed=1, now=NOW, app_secret="s3cret") as strict:
        secret = GraphOptions(app_secret=SecretStr("s3cret"))
        ok = GraphClient(strict.token, base_url=strict.url, options=secret)
        assert ok.get_account(strict.account_ids[0]).currency in ("USD", "JPY")
        with pytest.raises(InvalidParameterError, match="appsecret_proof"):
            GraphClient(strict.token, base_url=strict.url, options=GraphOptions()).get_account(
                strict.account_ids[0]
            )
