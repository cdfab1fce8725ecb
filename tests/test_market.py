"""The sandbox as a market: its clock moves on request and the days that pass follow the
state Rex left — a pause stops spend, a bigger budget spends more at a lower marginal
ROAS, a significant edit starts a learning phase, late purchases still arrive for the
last few days, a copy starts without history. Over loopback HTTP, as Rex talks to it;
the response model's own arithmetic (market.py) is checked on its pure functions."""

from __future__ import annotations

import json
import math
import random
import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
import requests

from core.access.actor import SYSTEM
from core.sandbox import SandboxServer, market
from tests.conftest import NOW

USD = "act_1010000001"
TODAY = date(2026, 11, 20)  # NOW in Los Angeles


def graph(sandbox, method: str, path: str, **params):  # type: ignore[no-untyped-def]
    params.setdefault("access_token", sandbox.token)
    call = requests.get if method == "GET" else requests.post
    key = "params" if method == "GET" else "data"
    answer = call(f"{sandbox.url}/v26.0/{path}", timeout=10, **{key: params})
    assert answer.ok, answer.text
    return answer.json()


def admin(sandbox, method: str, action: str, **data):  # type: ignore[no-untyped-def]
    url = f"{sandbox.url}/__sandbox/{action}"
    if method == "GET":
        return requests.get(url, params=data, timeout=10)
    return requests.post(url, json=data, timeout=10)


def days(sandbox, object_id: str, since: date, until: date, fields: str = "spend") -> dict:  # type: ignore[no-untyped-def]
    """The object's insights per day (date → row), as Rex's sync asks for them."""
    rows = graph(
        sandbox, "GET", f"{object_id}/insights", level="adset", time_increment=1,
        fields=f"{fields},actions,action_values", limit=500,
        time_range=json.dumps({"since": since.isoformat(), "until": until.isoformat()}),
    )["data"]  # fmt: skip
    return {date.fromisoformat(r["date_start"]): r for r in rows}


def purchases(row: dict) -> int:
    return sum(int(a["value"]) for a in row.get("actions", []) if a["action_type"] == "purchase")


def spend(rows: dict, since: date, until: date) -> Decimal:
    return sum((Decimal(r["spend"]) for d, r in rows.items() if since <= d <= until), Decimal(0))


def active_adsets(sandbox) -> list[dict]:  # type: ignore[no-untyped-def]
    state = admin(sandbox, "GET", "state").json()
    return [
        e for e in state["entities"]
        if e["level"] == "adset" and e["account_id"] == USD and e["daily_budget"]
        and e["effective_status"] == "ACTIVE"
    ]  # fmt: skip


def test_the_clock_moves_forward_on_request_and_never_back(sandbox) -> None:  # type: ignore[no-untyped-def]
    before = admin(sandbox, "GET", "clock").json()
    assert before["today"][USD] == "2026-11-20" and before["advanced_days"] == 0
    moved = admin(sandbox, "POST", "clock", advance_days=3).json()
    assert moved["today"][USD] == "2026-11-23" and moved["advanced_days"] == 3
    assert admin(sandbox, "POST", "clock", to="2026-11-30").json()["today"][USD] == "2026-11-30"
    refusals = (
        ({"advance_days": -1}, "advance_days"),
        ({"to": "2026-11-01"}, "only moves forward"),
        ({"to": "next week"}, "YYYY-MM-DD"),
        ({}, "advance_days"),
    )
    for body, words in refusals:
        refused = admin(sandbox, "POST", "clock", **body)
        assert refused.status_code == 400 and words in refused.json()["error"]["message"]
    account = graph(sandbox, "GET", USD, fields="timezone_name")
    assert account["id"] == USD  # the Graph API goes on answering on the new day


def test_a_paused_ad_set_spends_nothing_in_the_days_that_follow(sandbox) -> None:  # type: ignore[no-untyped-def]
    paused, other = active_adsets(sandbox)[:2]
    history = days(sandbox, paused["id"], TODAY - timedelta(days=14), TODAY - timedelta(days=1))
    assert spend(history, TODAY - timedelta(days=7), TODAY - timedelta(days=1)) > 0

    graph(sandbox, "POST", paused["id"], status="PAUSED")
    admin(sandbox, "POST", "clock", advance_days=7)
    after = days(sandbox, paused["id"], TODAY - timedelta(days=14), TODAY + timedelta(days=6))
    assert all(after[d]["spend"] == history[d]["spend"] for d in history)  # the past stays
    assert not [d for d in after if d > TODAY]  # no row: nothing spent after the day of the pause
    day_of_pause = Decimal(after[TODAY]["spend"])  # it delivered until 10:30 in Los Angeles
    typical = spend(history, TODAY - timedelta(days=7), TODAY - timedelta(days=1)) / 7
    assert 0 < day_of_pause < typical * Decimal("0.7")
    others = days(sandbox, other["id"], TODAY + timedelta(days=1), TODAY + timedelta(days=6))
    assert len(others) == 6  # the ad set left alone goes on delivering


def test_a_doubled_budget_spends_more_at_a_lower_marginal_roas(sandbox) -> None:  # type: ignore[no-untyped-def]
    adset = max(active_adsets(sandbox), key=lambda e: e["daily_budget"])
    before = admin(sandbox, "GET", "truth", adset_id=adset["id"], date="2026-11-19").json()
    observed = days(sandbox, adset["id"], TODAY - timedelta(days=14), TODAY - timedelta(days=1))

    graph(sandbox, "POST", adset["id"], daily_budget=str(adset["daily_budget"] * 2))
    admin(sandbox, "POST", "clock", advance_days=22)
    settled = admin(sandbox, "GET", "truth", adset_id=adset["id"], date="2026-12-10").json()
    assert not settled["learning"]  # two weeks on, out of the learning phase
    assert settled["spend"] > before["spend"] * 1.3  # more is spent …
    assert settled["roas"] < before["roas"]  # … at a lower ROAS …
    marginal = (settled["revenue"] - before["revenue"]) / (settled["spend"] - before["spend"])
    assert marginal < settled["roas"]  # … and the extra money returns less than the average

    later = days(sandbox, adset["id"], date(2026, 11, 28), date(2026, 12, 11))
    assert spend(later, date(2026, 11, 28), date(2026, 12, 11)) > Decimal("1.3") * spend(
        observed, TODAY - timedelta(days=14), TODAY - timedelta(days=1)
    )  # what Rex's sync reads shows it, noise and all


def test_a_significant_budget_change_starts_a_learning_phase_a_small_one_does_not(sandbox) -> None:  # type: ignore[no-untyped-def]
    big, small = active_adsets(sandbox)[:2]
    graph(sandbox, "POST", big["id"], daily_budget=str(big["daily_budget"] * 2))
    graph(sandbox, "POST", small["id"], daily_budget=str(round(small["daily_budget"] * 1.1)))
    learning = {
        offset: admin(sandbox, "GET", "truth", adset_id=big["id"],
                      date=(TODAY + timedelta(days=offset)).isoformat()).json()["learning"]
        for offset in (1, 3, 6, 8)
    }  # fmt: skip
    assert learning == {1: True, 3: True, 6: True, 8: False}  # seven days from the change
    assert not admin(sandbox, "GET", "truth", adset_id=small["id"],
                     date="2026-11-22").json()["learning"]  # fmt: skip
    assert not admin(sandbox, "GET", "truth", adset_id=big["id"],
                     date="2026-11-18").json()["learning"]  # fmt: skip


def test_late_purchases_still_arrive_for_the_last_days_and_then_settle(sandbox) -> None:  # type: ignore[no-untyped-def]
    ids = [a["id"] for a in active_adsets(sandbox)]
    first = TODAY - timedelta(days=9)

    def totals() -> dict[date, tuple[Decimal, int]]:
        found: dict[date, tuple[Decimal, int]] = {}
        for adset_id in ids:
            for day, row in days(sandbox, adset_id, first, TODAY - timedelta(days=1)).items():
                s, p = found.get(day, (Decimal(0), 0))
                found[day] = (s + Decimal(row["spend"]), p + purchases(row))
        return found

    now = totals()
    admin(sandbox, "POST", "clock", advance_days=3)
    later = totals()
    assert all(later[d][0] == now[d][0] for d in now)  # spend never moves
    assert all(later[d][1] >= now[d][1] for d in now)  # purchases only grow …
    assert sum(later[d][1] - now[d][1] for d in now if d >= TODAY - timedelta(days=2)) > 0
    assert all(
        later[d][1] == now[d][1] for d in now if d <= TODAY - timedelta(days=8)
    )  # … and settle


def test_insights_of_a_day_not_yet_reached_are_empty(sandbox) -> None:  # type: ignore[no-untyped-def]
    adset = active_adsets(sandbox)[0]
    assert days(sandbox, adset["id"], TODAY + timedelta(days=1), TODAY + timedelta(days=5)) == {}
    admin(sandbox, "POST", "clock", advance_days=2)
    assert sorted(days(sandbox, adset["id"], TODAY + timedelta(days=1),
                       TODAY + timedelta(days=5))) == [TODAY + timedelta(days=1),
                                                       TODAY + timedelta(days=2)]  # fmt: skip


def test_a_copy_starts_without_history_and_learns(sandbox) -> None:  # type: ignore[no-untyped-def]
    source = active_adsets(sandbox)[0]
    copy_id = graph(sandbox, "POST", f"{source['id']}/copies", deep_copy="true",
                    status_option="ACTIVE")["copied_adset_id"]  # fmt: skip
    assert days(sandbox, copy_id, TODAY - timedelta(days=30), TODAY - timedelta(days=1)) == {}
    assert admin(sandbox, "GET", "truth", adset_id=copy_id, date="2026-11-22").json()["learning"]
    admin(sandbox, "POST", "clock", advance_days=3)
    assert spend(days(sandbox, copy_id, TODAY + timedelta(days=1), TODAY + timedelta(days=2)),
                 TODAY, TODAY + timedelta(days=2)) > 0  # fmt: skip


def test_the_truth_names_what_it_is_about_and_refuses_what_is_no_ad_set(sandbox) -> None:  # type: ignore[no-untyped-def]
    adset = active_adsets(sandbox)[0]
    truth = admin(sandbox, "GET", "truth", adset_id=adset["id"]).json()
    assert truth["date"] == "2026-11-19"  # yesterday by default
    assert set(truth["segments"]) == {"demographic", "placement", "country", "region", "dma",
                                      "hour"}  # fmt: skip
    for rows in truth["segments"].values():  # each dimension splits the same day
        assert sum(r["spend"] for r in rows) == pytest.approx(truth["spend"])
        assert sum(r["purchases"] for r in rows) == pytest.approx(truth["purchases"])
    refused = admin(sandbox, "GET", "truth", adset_id=USD)
    assert refused.status_code == 400 and "adset_id" in refused.json()["error"]["message"]


def test_the_timeline_and_the_clock_survive_a_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    state = tmp_path / "sandbox.json"
    with SandboxServer(now=NOW, state_file=state) as first:
        adset = active_adsets(first)[0]
        graph(first, "POST", adset["id"], status="PAUSED")
        admin(first, "POST", "clock", advance_days=4)
        seen = days(first, adset["id"], TODAY - timedelta(days=10), TODAY + timedelta(days=3))
    with SandboxServer(now=NOW, state_file=state) as second:
        assert admin(second, "GET", "clock").json()["advanced_days"] == 4
        assert days(second, adset["id"], TODAY - timedelta(days=10),
                    TODAY + timedelta(days=3)) == seen  # fmt: skip


# --- the response model's arithmetic ---------------------------------------------------


def _profile(**segments: dict[tuple[str, ...], market.Segment]) -> market.Profile:
    return market.Profile(
        capacity=300.0, cpm=10.0, ctr=0.015, cvr=0.03, aov=60.0, segments=segments
    ).normalised()


AGES = {("young",): market.Segment(0.5, cvr=3.0), ("old",): market.Segment(0.5, cvr=1.0)}


def test_the_whole_audience_has_the_base_rates_and_a_segment_its_multipliers() -> None:
    profile = _profile(demographic=AGES)
    day = market.expected(profile, market.State(budget=10.0))  # far below capacity
    assert day.spend == pytest.approx(300 * (1 - math.exp(-10 / 300)))  # ≈ the budget
    assert day.purchases / day.clicks == pytest.approx(0.03)  # the base conversion rate …
    young = profile.segments["demographic"][("young",)]
    old = profile.segments["demographic"][("old",)]
    assert young.cvr / old.cvr == pytest.approx(3.0)  # … and young converts 3× old


def test_delivery_follows_the_budget_with_diminishing_returns() -> None:
    profile = _profile(demographic=AGES)
    budgets = [25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0]
    days = [market.expected(profile, market.State(budget=b)) for b in budgets]
    spends = [d.spend for d in days]
    assert spends == sorted(spends) and spends[-1] < profile.capacity  # a capacity it cannot pass
    assert spends[0] == pytest.approx(25.0, rel=0.05)  # a small budget is spent in full
    roas = [d.roas for d in days]
    assert roas == sorted(roas, reverse=True)  # ROAS falls as the budget rises
    marginal = [
        (b.revenue - a.revenue) / (b.spend - a.spend) for a, b in zip(days, days[1:], strict=False)
    ]
    assert marginal == sorted(marginal, reverse=True) and marginal[-1] < roas[-1]


def test_narrowing_targeting_moves_delivery_and_shrinks_the_audience() -> None:
    profile = _profile(demographic=AGES)
    broad = market.expected(profile, market.State(budget=400.0))
    narrow = market.expected(
        profile, market.State(budget=400.0, included={"demographic": {("young",): 1.0}})
    )
    assert narrow.spend < broad.spend  # half the audience cannot take the same money
    assert narrow.purchases / narrow.clicks > broad.purchases / broad.clicks  # the better half
    weights = market.column_weights(
        profile, market.State(budget=1.0, included={"demographic": {("young",): 1.0}}),
        "demographic",
    )  # fmt: skip
    assert weights["spend"][1] == 0 and weights["purchases"][1] == 0  # old gets no delivery
    assert market.expected(profile, market.State(budget=0.0)) == market.Expected()  # paused


def test_a_day_split_over_segments_sums_exactly_and_is_made_of_counts() -> None:
    profile = _profile(demographic=AGES)
    totals = market.Counts(12345, 98765, 1234, 70000, 37, 222222)
    weights = market.column_weights(profile, market.State(budget=1.0), "demographic")
    for seed in range(20):
        parts = market.split_day(totals, weights, random.Random(seed))
        for index, column in enumerate(market.COLUMNS):
            assert sum(p.as_tuple()[index] for p in parts) == getattr(totals, column)
        assert all(p.revenue == 0 for p in parts if p.purchases == 0)  # value comes with orders
    young = [market.split_day(totals, weights, random.Random(s))[0].purchases for s in range(200)]
    assert len(set(young)) > 3  # counts vary from day to day, as counts do
    assert sum(young) / len(young) == pytest.approx(37 * 0.75, rel=0.1)  # around 3:1


def test_counts_are_noisy_around_their_expectation() -> None:
    profile = _profile(demographic=AGES)
    day = market.expected(profile, market.State(budget=100.0))
    draws = [market.simulate(profile, day, random.Random(s), unit=100) for s in range(400)]
    mean_purchases = sum(d.purchases for d in draws) / len(draws)
    assert mean_purchases == pytest.approx(day.purchases, rel=0.1)
    assert len({d.purchases for d in draws}) > 5
    learning = market.expected(profile, market.State(budget=100.0, learning=True))
    assert learning.purchases < day.purchases * 0.8  # the learning phase costs efficiency


@pytest.fixture
def on_the_wall_clock():  # type: ignore[no-untyped-def]
    """A sandbox on the wall clock, as `make run` starts it (Rex's clock is the wall's)."""
    with SandboxServer() as server:
        yield server


def test_moving_the_sandbox_on_moves_rex_with_it_so_a_sync_reads_the_new_days(  # type: ignore[no-untyped-def]
    db, cli_admin, on_the_wall_clock
) -> None:
    sandbox = on_the_wall_clock
    from sqlalchemy import func, select

    from core import clock
    from core.accounts import advance_sandboxes, connect_account, reset_sandboxes
    from core.db import read_session
    from core.db.models import AdMetric
    from core.sync.runner import SyncOptions, sync_accounts
    from tests.test_cli import rex

    connect_account(USD, sandbox.token, graph_url=sandbox.url, by=SYSTEM)
    options = SyncOptions(days=3, breakdowns=False, client_options={"poll_seconds": 0.01})
    first = sync_accounts(options=options)
    assert all(r.ok for r in first), [r.error for r in first]
    with read_session() as session:
        before = session.scalar(select(func.max(AdMetric.date)))

    moved = rex("sandbox", "advance", "--days", "2")
    assert moved.returncode == 0, moved.stderr
    assert "2 day(s) ahead" in moved.stdout and "python -m core sync" in moved.stdout
    time.sleep(clock.RECHECK_SECONDS)  # each process reads the clock file at most once a second
    assert clock.ahead_days() == 2  # Rex's clock moved with the sandbox's …
    assert admin(sandbox, "GET", "clock").json()["advanced_days"] == 2
    sync_accounts(options=options)  # … so the sync asks for the days that passed
    with read_session() as session:
        after = session.scalar(select(func.max(AdMetric.date)))
    assert after == before + timedelta(days=2)

    assert advance_sandboxes(3, by=SYSTEM).ahead_days == 5
    back = rex("sandbox", "advance", "--to", "2026-01-01")
    assert back.returncode == 2 and "only moves forward" in back.stderr
    assert rex("sandbox", "advance", "--days", "-3").returncode == 2

    reset_sandboxes(by=SYSTEM)  # the sandbox back to its world, Rex back on the wall clock
    assert clock.ahead_days() == 0 and admin(sandbox, "GET", "clock").json()["advanced_days"] == 0


def test_a_real_account_keeps_rex_on_the_wall_clock(db, on_the_wall_clock) -> None:  # type: ignore[no-untyped-def]
    sandbox = on_the_wall_clock
    from core import clock
    from core.accounts import advance_sandboxes, connect_account
    from core.db import write_session
    from core.db.models import AdAccount
    from core.errors import InputError

    connect_account(USD, sandbox.token, graph_url=sandbox.url, by=SYSTEM)
    advance_sandboxes(1, by=SYSTEM)
    with pytest.raises(InputError) as refused:  # no real account joins simulated days
        connect_account("act_999", "EAAB" + "x" * 40, graph_url=None, by=SYSTEM)
    assert refused.value.field == "graph_url" and "Reset the sandbox" in refused.value.problem

    clock.set_ahead_days(0)
    with write_session() as session:  # a real account, connected (its token is never used)
        session.add(AdAccount(platform="meta", external_id="act_777", name="Real",
                              currency="USD", timezone_name="UTC", account_status=1,
                              token_encrypted="x", graph_url=None))  # fmt: skip
    with pytest.raises(InputError) as refused:
        advance_sandboxes(7, by=SYSTEM)
    assert refused.value.field == "days" and "act_777 is a real Meta account" in (
        refused.value.problem
    )
    assert clock.ahead_days() == 0  # refused: neither clock moved
    assert admin(sandbox, "GET", "clock").json()["advanced_days"] == 1
    with pytest.raises(InputError):
        advance_sandboxes(0, by=SYSTEM)  # 1 to 366 days


# --- targeting and schedules -----------------------------------------------------------


def refusal(answer: requests.Response) -> tuple[int, int | None, str]:
    body = answer.json()["error"]
    blame = json.loads(body.get("error_data", "{}")).get("blame_field_specs", [[""]])[0][0]
    return body["code"], body.get("error_subcode"), blame


def write(sandbox, object_id: str, **params):  # type: ignore[no-untyped-def]
    data = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    return requests.post(f"{sandbox.url}/v26.0/{object_id}",
                         data={**data, "access_token": sandbox.token}, timeout=10)  # fmt: skip


def rows_by(sandbox, adset_id: str, breakdown: str, day: date) -> dict[str, Decimal]:  # type: ignore[no-untyped-def]
    rows = graph(
        sandbox, "GET", f"{adset_id}/insights", level="adset", fields="spend", limit=500,
        breakdowns=json.dumps([breakdown]),
        time_range=json.dumps({"since": day.isoformat(), "until": day.isoformat()}),
    )["data"]  # fmt: skip
    found: dict[str, Decimal] = {}
    for row in rows:
        found[row[breakdown]] = found.get(row[breakdown], Decimal(0)) + Decimal(row["spend"])
    return found


def test_a_targeting_write_replaces_the_spec_and_is_refused_as_meta_refuses_it(sandbox) -> None:  # type: ignore[no-untyped-def]
    adset = active_adsets(sandbox)[0]
    spec = graph(sandbox, "GET", adset["id"], fields="targeting")["targeting"]
    assert spec["geo_locations"]["countries"] == ["US", "CA", "GB", "AU"]
    assert write(sandbox, adset["id"], targeting={**spec, "genders": [1]}).ok
    assert write(sandbox, adset["id"], targeting={"geo_locations": {"countries": ["US"]}}).ok
    now = graph(sandbox, "GET", adset["id"], fields="targeting")["targeting"]
    assert now == {"geo_locations": {"countries": ["US"]}}  # replaced, not merged

    advantage = {**spec, "targeting_automation": {"advantage_audience": 1}}
    cases = [
        ({"age_min": 18}, (100, 1885364, "targeting.geo_locations")),  # no location
        ({**spec, "age_min": 12}, (100, None, "targeting.age_min")),
        ({**spec, "age_max": 70}, (100, None, "targeting.age_max")),
        ({**advantage, "age_min": 30}, (100, None, "targeting.age_min")),  # Advantage+: 18–25
        ({**advantage, "age_max": 44}, (100, None, "targeting.age_min")),  # … and 65
        ({**spec, "genders": [3]}, (100, None, "targeting.genders")),
        ({**spec, "publisher_platforms": ["myspace"]}, (100, None,
                                                        "targeting.publisher_platforms")),
        ({**spec, "geo_locations": {"regions": [{"key": "1"}]}}, (100, None,
                                                                  "targeting.geo_locations.regions")),
    ]  # fmt: skip
    for bad, expected in cases:
        answer = write(sandbox, adset["id"], targeting=bad)
        assert answer.status_code == 400 and refusal(answer) == expected, (bad, answer.text)
    assert graph(sandbox, "GET", adset["id"], fields="targeting")["targeting"] == now  # kept


def test_an_excluded_age_band_or_placement_gets_no_delivery_in_the_days_after(sandbox) -> None:  # type: ignore[no-untyped-def]
    first, second = active_adsets(sandbox)[:2]
    day = TODAY - timedelta(days=1)
    assert {"18-24", "25-34"} <= set(rows_by(sandbox, first["id"], "age", day))
    assert "audience_network" in rows_by(sandbox, second["id"], "publisher_platform", day)
    spec = graph(sandbox, "GET", first["id"], fields="targeting")["targeting"]
    spec = {**spec, "targeting_automation": {"advantage_audience": 0}}
    assert write(sandbox, first["id"], targeting={**spec, "age_min": 35}).ok
    assert write(sandbox, second["id"], targeting={
        **graph(sandbox, "GET", second["id"], fields="targeting")["targeting"],
        "publisher_platforms": ["facebook", "instagram"],
    }).ok  # fmt: skip
    truth = admin(sandbox, "GET", "truth", adset_id=first["id"], date="2026-11-21").json()
    assert truth["learning"]  # a targeting change is a significant edit
    admin(sandbox, "POST", "clock", advance_days=3)
    later = TODAY + timedelta(days=2)
    ages = rows_by(sandbox, first["id"], "age", later)
    assert ages and not {"18-24", "25-34"} & set(ages)  # rows with nothing spent are left out
    platforms = rows_by(sandbox, second["id"], "publisher_platform", later)
    assert platforms and set(platforms) <= {"facebook", "instagram"}
    assert rows_by(sandbox, first["id"], "age", day) == rows_by(
        sandbox, first["id"], "age", day
    ) and {"18-24"} <= set(rows_by(sandbox, first["id"], "age", day))  # the past stays


def test_narrowing_targeting_shrinks_the_audience_and_moves_delivery(sandbox) -> None:  # type: ignore[no-untyped-def]
    adset = max(active_adsets(sandbox), key=lambda e: e["daily_budget"])
    spec = graph(sandbox, "GET", adset["id"], fields="targeting")["targeting"]
    before = admin(sandbox, "GET", "truth", adset_id=adset["id"], date="2026-12-05").json()
    narrow = {**spec, "age_min": 55, "genders": [1], "geo_locations": {"countries": ["CA"]},
              "targeting_automation": {"advantage_audience": 0}}  # fmt: skip
    assert write(sandbox, adset["id"], targeting=narrow).ok
    after = admin(sandbox, "GET", "truth", adset_id=adset["id"], date="2026-12-05").json()
    assert after["spend"] < before["spend"] * 0.5  # a small audience cannot take the budget
    by_country = {r["segment"][0]: r["spend"] for r in after["segments"]["country"]}
    assert by_country["CA"] == pytest.approx(after["spend"]) and by_country["US"] == 0


def test_dayparting_needs_a_lifetime_budget_and_leaves_the_other_hours_empty(sandbox) -> None:  # type: ignore[no-untyped-def]
    daily = active_adsets(sandbox)[0]
    state = admin(sandbox, "GET", "state").json()
    lifetime = next(
        e for e in state["entities"]
        if e["level"] == "adset" and e["account_id"] == USD and e["lifetime_budget"]
    )  # fmt: skip
    schedule = [{"days": list(range(7)), "start_minute": 9 * 60, "end_minute": 21 * 60}]
    refused = write(sandbox, daily["id"], adset_schedule=schedule, pacing_type=["day_parting"])
    assert refused.status_code == 400 and refusal(refused)[2] == "adset_schedule"
    assert "lifetime budget" in refused.json()["error"]["message"]
    no_pacing = write(sandbox, lifetime["id"], adset_schedule=schedule)
    assert refusal(no_pacing)[2] == "pacing_type"
    half_hours = [{"days": [1], "start_minute": 90, "end_minute": 600}]
    bad = write(sandbox, lifetime["id"], adset_schedule=half_hours, pacing_type=["day_parting"])
    assert refusal(bad)[2] == "adset_schedule"

    done = write(sandbox, lifetime["id"], adset_schedule=schedule, pacing_type=["day_parting"])
    assert done.ok, done.text
    read = graph(sandbox, "GET", lifetime["id"], fields="adset_schedule,pacing_type,end_time")
    assert read["adset_schedule"] == schedule and read["pacing_type"] == ["day_parting"]
    before = rows_by(sandbox, lifetime["id"], "hourly_stats_aggregated_by_advertiser_time_zone",
                     TODAY - timedelta(days=1))  # fmt: skip
    assert any(int(h[:2]) < 9 for h, s in before.items() if s > 0)  # it used to deliver at night
    admin(sandbox, "POST", "clock", advance_days=3)
    hours = rows_by(sandbox, lifetime["id"], "hourly_stats_aggregated_by_advertiser_time_zone",
                    TODAY + timedelta(days=2))  # fmt: skip
    delivered = sorted(int(h[:2]) for h, s in hours.items() if s > 0)
    assert delivered and all(9 <= h < 21 for h in delivered)  # nothing outside its hours


# --- planted patterns in scenario files ------------------------------------------------

PLANTED = {
    "description": "One ad set whose 25-34 women convert at 3x, with audience network at a "
                   "tenth of the conversion rate on 30 % of the spend.",
    "accounts": [{
        "id": "act_3001", "name": "Planted", "currency": "USD",
        "timezone": "America/Los_Angeles",
        "campaigns": [{"id": "3101", "name": "Shop", "adsets": [{
            "id": "3201", "name": "Shop · broad", "daily_budget": 20000,
            "targeting": {"age_min": 18, "geo_locations": {"countries": ["US", "GB"]}},
            "market": {"roas": 2.5, "capacity": "600", "plants": [
                {"dimension": "demographic", "match": {"age": "25-34", "gender": "female"},
                 "cvr": 3},
                {"dimension": "placement", "match": {"platform": "audience_network"},
                 "share": 0.3, "cvr": 0.1},
            ]},
            "ads": [{"id": "3301", "name": "Shop · ad"}],
        }]}],
    }],
}  # fmt: skip


def test_a_planted_pattern_shows_in_the_breakdowns_and_in_the_truth() -> None:
    with SandboxServer(scenario=PLANTED, now=NOW) as planted:
        truth = admin(planted, "GET", "truth", adset_id="3201").json()
        placements = truth["segments"]["placement"]
        network = sum(r["spend"] for r in placements if r["segment"][0] == "audience_network")
        assert network / truth["spend"] == pytest.approx(0.3)  # 30 % of the spend …
        women = next(r for r in truth["segments"]["demographic"]
                     if r["segment"] == ["25-34", "female"])  # fmt: skip
        rest = [r for r in truth["segments"]["demographic"] if r is not women]
        rest_cvr = sum(r["purchases"] for r in rest) / sum(r["clicks"] for r in rest)
        assert women["purchases"] / women["clicks"] == pytest.approx(3 * rest_cvr)  # 3× the rest

        # … and 30 days of what Rex's sync reads show both, noise and all
        rows = graph(
            planted, "GET", "3201/insights", level="adset", fields="spend,actions", limit=500,
            breakdowns=json.dumps(["age", "gender"]),
            time_range=json.dumps({"since": "2026-10-21", "until": "2026-11-19"}),
        )["data"]  # fmt: skip
        by = {}
        for row in rows:
            key = (row["age"], row["gender"])
            spent, bought = by.get(key, (Decimal(0), 0))
            by[key] = (spent + Decimal(row["spend"]), bought + purchases(row))
        seen, others = by.pop(("25-34", "female")), by.values()
        rest_rate = sum(b for _, b in others) / sum(s for s, _ in others)
        assert seen[1] / seen[0] > 2 * rest_rate  # purchases per dollar, 30 noisy days
        network_rows = graph(
            planted, "GET", "3201/insights", level="adset", fields="spend,actions", limit=500,
            breakdowns=json.dumps(["publisher_platform"]),
            time_range=json.dumps({"since": "2026-10-21", "until": "2026-11-19"}),
        )["data"]  # fmt: skip
        spent = {r["publisher_platform"]: Decimal(r["spend"]) for r in network_rows}
        share = spent["audience_network"] / sum(spent.values())
        assert share == pytest.approx(Decimal("0.3"), abs=Decimal("0.05"))


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda s: s["market"]["plants"][0].update(match={"colour": "red"}),
         "adsets[0].market.plants[0].match", "matched by age, gender"),
        (lambda s: s["market"]["plants"][0].update(match={"age": "12-17"}),
         "adsets[0].market.plants[0].match", "matches no demographic segment"),
        (lambda s: s["market"]["plants"][1].pop("cvr") and s["market"]["plants"][1].pop("share"),
         "adsets[0].market.plants[1]", "say what is different"),
        (lambda s: s["market"].update(capacity="0"), "adsets[0].market.capacity", "greater than 0"),
        (lambda s: s["targeting"].pop("geo_locations"), "adsets[0].targeting.geo_locations",
         "Invalid parameter"),
        (lambda s: s["targeting"].update(age_min=11), "adsets[0].targeting.age_min", "13 and 65"),
    ],
)  # fmt: skip
def test_scenario_market_errors_name_the_field(change, field: str, words: str) -> None:  # type: ignore[no-untyped-def]
    import copy

    from core.sandbox import ScenarioError, load_scenario
    from core.sandbox.scenario import build_world

    scenario = copy.deepcopy(PLANTED)
    change(scenario["accounts"][0]["campaigns"][0]["adsets"][0])
    with pytest.raises(ScenarioError) as refused:
        build_world(load_scenario(scenario), 7, lambda: NOW)
    assert refused.value.field == f"accounts[0].campaigns[0].{field}"
    assert words in refused.value.problem


def test_the_generated_world_has_three_months_and_its_documented_planted_patterns(sandbox) -> None:  # type: ignore[no-untyped-def]
    state = admin(sandbox, "GET", "state").json()
    adsets = {e["name"]: e["id"] for e in state["entities"]
              if e["level"] == "adset" and e["account_id"] == USD}  # fmt: skip

    def truth(name: str) -> dict:
        return admin(sandbox, "GET", "truth", adset_id=adsets[name]).json()

    def rate(rows: list[dict], top: str, bottom: str) -> float:
        return sum(r[top] for r in rows) / sum(r[bottom] for r in rows)

    prospecting = truth("Prospecting – Broad · US 25-44")["segments"]["demographic"]
    women = [r for r in prospecting if r["segment"] == ["25-34", "female"]]
    others = [r for r in prospecting if r["segment"] != ["25-34", "female"]]
    assert rate(women, "purchases", "clicks") == pytest.approx(
        2.5 * rate(others, "purchases", "clicks"))  # fmt: skip

    interests = truth("Prospecting – Broad · Interests – Home")["segments"]["demographic"]
    older = [r for r in interests if r["segment"][0] in ("55-64", "65+")]
    younger = [r for r in interests if r["segment"][0] not in ("55-64", "65+")]
    assert rate(older, "purchases", "clicks") == pytest.approx(
        0.25 * rate(younger, "purchases", "clicks"))  # fmt: skip

    catalog = truth("Catalog – Dynamic Products · Advantage+ Audience")
    network = [r for r in catalog["segments"]["placement"] if r["segment"][0] == "audience_network"]
    assert sum(r["spend"] for r in network) == pytest.approx(0.25 * catalog["spend"])

    retargeting = truth("Retargeting – Site Visitors · Interests – Home")["segments"]["hour"]
    night = [r for r in retargeting if int(r["segment"][0][:2]) in range(1, 6)]
    day = [r for r in retargeting if int(r["segment"][0][:2]) not in range(1, 6)]
    assert rate(night, "spend", "clicks") == pytest.approx(2.5 * rate(day, "spend", "clicks"))

    lookalike = truth("Lookalike – Purchasers 1% · Interests – Home")
    canada = next(r for r in lookalike["segments"]["country"] if r["segment"] == ["CA"])
    assert canada["spend"] == pytest.approx(0.03 * lookalike["spend"])
    assert canada["roas"] > 1.5 * lookalike["roas"]  # a small, very good country

    oldest = days(sandbox, adsets["Prospecting – Broad · US 25-44"], TODAY - timedelta(days=100),
                  TODAY)  # fmt: skip
    assert min(oldest) == TODAY - timedelta(days=89)  # about three months of history


def test_the_state_tells_each_ad_sets_expected_day(sandbox) -> None:  # type: ignore[no-untyped-def]
    state = admin(sandbox, "GET", "state").json()
    assert state["advanced_days"] == 0 and state["now"].startswith("2026-11-20T18:30")
    adset = next(e for e in state["entities"] if e["level"] == "adset" and e["daily_budget"])
    truth = admin(sandbox, "GET", "truth", adset_id=adset["id"]).json()
    expected = adset["expected_yesterday"]
    assert expected["date"] == truth["date"] == "2026-11-19"
    assert expected["spend"] == pytest.approx(truth["spend"], abs=0.01)
    assert expected["purchases"] == pytest.approx(truth["purchases"], abs=0.01)


def test_an_end_time_write_is_kept_in_the_history_and_the_state_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    state = tmp_path / "sandbox.json"
    with SandboxServer(now=NOW, state_file=state) as first:
        lifetime = next(e for e in admin(first, "GET", "state").json()["entities"]
                        if e["level"] == "adset" and e["lifetime_budget"])  # fmt: skip
        assert write(first, lifetime["id"], end_time="2026-11-25T00:00:00-0800").ok
        changes = [a for a in admin(first, "GET", "activities").json()
                   if a["object_id"] == lifetime["id"]]  # fmt: skip
        assert changes[-1]["extra_data"]["new_value"] == "2026-11-25T08:00:00+00:00"
        admin(first, "POST", "clock", advance_days=7)
        after = days(first, lifetime["id"], TODAY, TODAY + timedelta(days=6))
        assert max(after) == TODAY + timedelta(days=4)  # nothing spent after its end time
    with SandboxServer(now=NOW, state_file=state) as second:  # and the file reads back
        read = graph(second, "GET", lifetime["id"], fields="end_time")
        assert read["end_time"] == "2026-11-25T00:00:00-0800"


def test_a_change_s_true_effect_is_the_world_with_it_against_the_world_without_it() -> None:
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    from core.sandbox.scenario import build_world, load_scenario

    def world(raised: bool):  # type: ignore[no-untyped-def]
        spec = {"accounts": [{
            "id": "act_4001", "name": "Shop", "currency": "USD",
            "timezone": "America/Los_Angeles",
            "campaigns": [{"id": "4101", "name": "Shop", "adsets": [{
                "id": "5001", "name": "Shop · 5001", "daily_budget": 20000,
                "market": {"roas": 3.0, "capacity": "400", "variation": 0},
                "ads": [{"id": "50011", "name": "ad"}],
            }]}],
        }]}  # fmt: skip
        built = build_world(load_scenario(spec), 5, lambda: NOW)
        if raised:  # the budget doubled ten days ago (so learning has ended since)
            adset = built.entities["5001"]
            zone = ZoneInfo("America/Los_Angeles")
            at = datetime.combine(TODAY - timedelta(days=10), time(), zone)
            built.seed_change(adset, "daily_budget", 20000, 40000, at)
            adset.daily_budget = 40000
        return built

    changed, unchanged = world(True), world(False)
    adset = changed.entities["5001"]
    (raise_,) = [c for c in changed.changes if c.field == "daily_budget"]
    day = TODAY - timedelta(days=3)
    effect = changed.true_effect(adset, day, raise_)
    with_it = changed.expected_adset(adset, day)
    anyway = unchanged.expected_adset(unchanged.entities["5001"], day)
    # the world without the change is the world where it was never made …
    assert effect["spend"] == pytest.approx(with_it.spend - anyway.spend)
    assert effect["revenue"] == pytest.approx(with_it.revenue - anyway.revenue)
    # … and doubling a budget under its audience's capacity spends more at a lower ROAS
    assert 0 < effect["spend"] < with_it.spend
    assert effect["revenue"] / effect["spend"] < anyway.revenue / anyway.spend
    # before the change, nothing differs; and the world is put back afterwards
    before = changed.true_effect(adset, TODAY - timedelta(days=12), raise_)
    assert all(v == pytest.approx(0.0) for v in before.values())
    assert adset.daily_budget == 40000 and raise_ in changed.changes
    assert changed.expected_adset(adset, day) == with_it
