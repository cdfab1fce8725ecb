"""Suggestions end to end, over the sandbox's HTTP, on both databases: planted patterns in
a scenario's market are found as the right change on the right ad set (and a world
without patterns, or with thin data, yields none); applying one writes the full spec Meta
then reports, the excluded segment stops delivering in the days that follow, and a
rollback puts the old spec back; the record keeps dismissed suggestions dismissed,
expires what is not found again, supersedes a changed proposal and never holds two open
ones for the same change; Meta's refusals and changes made at Meta since read as words;
with an approval required, applying queues and the approval queue decides."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from core.access.actor import SYSTEM
from core.accounts import connect_account
from core.actions.approvals import approve, reject
from core.actions.rollback import rollback
from core.actions.targeting import schedule_for_hours
from core.db import read_session, write_session
from core.db.models import (
    ActionHistory,
    ActionStatus,
    AdAccount,
    AdEntity,
    AdPlacementInsight,
    ApprovalStatus,
    PendingAction,
    RexSuggestion,
    RexSuggestionPerformance,
)
from core.enums import SuggestionStatus
from core.meta.objects import PLATFORMS
from core.rules.windows import local_today
from core.sandbox import FaultConfig, SandboxServer
from core.settings import reload_settings
from core.suggestions.apply import apply_suggestion, settle_suggestions
from core.suggestions.evidence import Period, account_evidence
from core.suggestions.generate import find_for_account, generate
from core.suggestions.records import EXPIRED_REASON, SuggestionStateError, dismiss, reconcile
from core.sync.runner import SyncOptions, sync_accounts
from core.views.suggestions import SuggestionView, get_suggestion, list_suggestions
from tests.conftest import NOW, _migrated_url, use_database
from tests.signed import ANA, BEN, person

ACCOUNT = "act_4001"
SPEC: dict[str, Any] = {
    "age_min": 18,
    "age_max": 65,
    "geo_locations": {"countries": ["US", "CA", "GB", "AU"]},
    "targeting_automation": {"advantage_audience": 0},
}
# Meta's own Audience Network converts at about a third of the rest's rate in the
# sandbox market: ad sets whose pattern is elsewhere leave it out of their placements
FEEDS = {**SPEC, "publisher_platforms": ["facebook", "instagram"]}
NIGHT = [1, 2, 3, 4, 5]

AUDIENCE_NETWORK = {"dimension": "placement", "match": {"platform": "audience_network"},
                    "share": 0.25, "cvr": 0.15}  # fmt: skip
OLDEST = {"dimension": "demographic", "match": {"age": "65+"}, "share": 0.15, "cvr": 0.2}
# a small country converting at a tenth of the rest: large enough to be judged, small
# enough that the US (four fifths of the delivery) is not thereby called a winner
BRITAIN = {"dimension": "country", "match": {"country": "GB"}, "share": 0.03, "cvr": 0.1}
EXPENSIVE_NIGHTS = {"dimension": "hour", "match": {"hour": NIGHT}, "share": 0.3, "cpc": 4}


def adset(
    adset_id: str,
    plants: list[dict[str, Any]],
    *,
    targeting: dict[str, Any],
    budget: int = 60000,  # minor units a day: 600 dollars
    lifetime: bool = False,
    roas: float = 2.5,
    variation: float = 0.0,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "id": adset_id, "name": f"Shop · {adset_id}", "targeting": targeting,
        "market": {"roas": roas, "capacity": str(4 * budget // 100), "plants": plants,
                   "variation": variation},
        "ads": [{"id": f"{adset_id}1", "name": f"Shop · {adset_id} · ad"}],
    }  # fmt: skip
    if lifetime:  # the same money a day, spent over the sandbox's 30 days
        spec["lifetime_budget"] = budget * 30
    else:
        spec["daily_budget"] = budget
    return spec


def scenario(*adsets: dict[str, Any]) -> dict[str, Any]:
    return {
        "accounts": [{
            "id": ACCOUNT, "name": "Shop", "currency": "USD", "timezone": "America/Los_Angeles",
            "campaigns": [{"id": "4101", "name": "Shop", "adsets": copy.deepcopy(list(adsets))}],
        }],
    }  # fmt: skip


def graph(server: SandboxServer, object_id: str, *fields: str) -> dict[str, Any]:
    """An object as Meta answers it over HTTP."""
    answer = requests.get(
        f"{server.url}/v26.0/{object_id}",
        params={"fields": ",".join(fields), "access_token": server.token},
        timeout=10,
    )
    assert answer.ok, answer.text
    return dict(answer.json())


def write(server: SandboxServer, object_id: str, **params: str) -> None:
    """A write over HTTP, as another tool (or a person's script) would make it."""
    answer = requests.post(
        f"{server.url}/v26.0/{object_id}",
        data={**params, "access_token": server.token},
        timeout=10,
    )
    assert answer.ok, answer.text


def connect_and_sync(server: SandboxServer, *, days: int = 29, now: Any = NOW) -> None:
    sync_accounts(options=SyncOptions(days=days, now=now, client_options={"poll_seconds": 0.01}))


def account_row() -> AdAccount:
    with read_session() as session:
        return session.scalars(select(AdAccount).where(AdAccount.external_id == ACCOUNT)).one()


def by_subject(views: list[SuggestionView]) -> dict[tuple[str | None, str | None, str], Any]:
    return {(v.entity_id, v.dimension, ",".join(v.segment)): v for v in views}


def suggestion(suggestion_id: int) -> RexSuggestion:
    with read_session() as session:
        return session.get_one(RexSuggestion, suggestion_id)


def history(suggestion_id: int) -> list[tuple[str | None, str, str | None]]:
    return [
        (e.previous, e.status, e.reason) for e in get_suggestion(suggestion_id, actor=ANA).events
    ]


# ------------------------------------------------------------- what is found


@dataclass(frozen=True)
class Patterns:
    views: list[SuggestionView]
    new: list[int]
    tested: dict[str, set[str]]  # ad set → the dimensions that had evidence


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def patterns(request: pytest.FixtureRequest, migrated_urls: dict[str, str]) -> Patterns:
    """One world with a planted pattern in each of three ad sets, synced over 29 days and
    generated once per database; what was generated, read back (the tables are emptied
    for the tests after)."""
    world = scenario(
        adset("5001", [AUDIENCE_NETWORK, OLDEST], targeting=SPEC),
        adset("5002", [BRITAIN], targeting=FEEDS, budget=200000),
        adset("5003", [EXPENSIVE_NIGHTS], targeting=FEEDS, lifetime=True, roas=1.8),
    )
    url = _migrated_url(request.param, request, migrated_urls)
    for _engine in use_database(url):
        with SandboxServer(scenario=world, now=NOW) as server:
            connect_account(ACCOUNT, server.token, graph_url=server.url, by=SYSTEM)
            # dayparting needs an end time as well as the lifetime budget
            write(server, "5003", end_time="2026-12-20T00:00:00-0800")
            connect_and_sync(server)
            done = generate(ACCOUNT, now=NOW, by=SYSTEM)
            account = account_row()
            evidence = account_evidence(account, Period.ending_yesterday(account, NOW))
            result = Patterns(
                views=[
                    get_suggestion(v.id, actor=ANA)
                    for v in list_suggestions(actor=ANA, status="all")
                ],
                new=done.accounts[ACCOUNT].new,
                tested={e.entity.external_id: set(e.tables) for e in evidence},
            )
    return result


def test_each_planted_pattern_is_found_as_the_change_that_stops_it(patterns: Patterns) -> None:
    found = by_subject(patterns.views)
    assert sorted(v.id for v in patterns.views) == sorted(patterns.new)
    assert all(v.status == SuggestionStatus.NEW for v in patterns.views)

    network = found[("5001", "publisher_platform", "audience_network")]
    assert (network.kind, network.direction, network.level) == ("placement", "worse", "adset")
    assert network.action is not None and network.action["type"] == "edit_targeting"
    change = network.action["change"]
    assert change["old"] == SPEC  # computed on the spec read from Meta
    kept = [p for p in PLATFORMS if p != "audience_network"]
    assert change["new"] == {**SPEC, "publisher_platforms": kept}  # the whole spec, written whole

    oldest = found[("5001", "age", "65+")]
    assert (oldest.kind, oldest.direction) == ("demographic", "worse")
    assert oldest.action is not None and oldest.action["type"] == "edit_targeting"
    assert oldest.action["change"]["new"] == {**SPEC, "age_max": 64}

    britain = found[("5002", "country", "GB")]
    assert (britain.kind, britain.direction) == ("geography", "worse")
    assert britain.action is not None
    assert britain.action["change"]["new"] == {
        **FEEDS,
        "geo_locations": {"countries": ["US", "CA", "AU"]},
    }

    nights = found[("5003", "hour", ",".join(map(str, NIGHT)))]
    assert (nights.kind, nights.direction) == ("dayparting", "worse")
    assert nights.action is not None and nights.action["type"] == "set_schedule"
    day = [h for h in range(24) if h not in NIGHT]
    assert nights.action["hours"] == day
    assert nights.action["change"]["old"] is None  # it had no schedule
    assert nights.action["change"]["new"] == schedule_for_hours(day)
    assert all(h not in NIGHT for b in nights.action["change"]["new"]
               for h in range(b["start_minute"] // 60, b["end_minute"] // 60))  # fmt: skip


def test_only_planted_segments_are_suggested_for_exclusion(patterns: Patterns) -> None:
    worse = {(v.entity_id, v.dimension, tuple(v.segment)) for v in patterns.views
             if v.direction == "worse"}  # fmt: skip
    assert worse == {
        ("5001", "publisher_platform", ("audience_network",)),
        ("5001", "age", ("65+",)),
        ("5002", "country", ("GB",)),
        ("5003", "hour", tuple(map(str, NIGHT))),
    }
    # every ad set's dimensions were tested, not only those with a pattern
    for adset_id in ("5001", "5002", "5003"):
        assert patterns.tested[adset_id] >= {"age_gender", "placement", "country", "hour"}


def test_a_suggestion_carries_its_evidence_and_an_effect_with_its_interval(
    patterns: Patterns,
) -> None:
    network = by_subject(patterns.views)[("5001", "publisher_platform", "audience_network")]
    estimate, low, high = network.weekly_profit_minor or (0, 0, 0)
    assert 0 < low <= estimate <= high
    evidence = network.evidence
    assert evidence["basis"] == "purchases" and evidence["period"]["days"] == 28
    segment, rest = evidence["segment"], evidence["rest"]
    # the segment buys at a credibly lower rate: its cost per purchase is higher
    assert segment["cost"]["low"] > rest["cost"]["high"]
    assert segment["spend_minor"] / (segment["spend_minor"] + rest["spend_minor"]) == (
        pytest.approx(evidence["share_of_spend"], abs=1e-4)
    )
    assert 0 <= (network.confidence or 0) <= 1
    assert "Audience Network" in network.title and network.why


def test_the_cli_json_has_the_suggestion_s_facts(patterns: Patterns) -> None:
    view = by_subject(patterns.views)[("5002", "country", "GB")]
    shown = view.to_json()
    assert json.loads(json.dumps(shown)) == shown  # plain JSON
    assert {"id", "kind", "account_id", "entity_id", "level", "dimension", "segment", "action",
            "expected_weekly_profit", "confidence", "evidence", "status"} <= set(shown)  # fmt: skip
    assert shown["id"] == view.id and shown["kind"] == "geography"
    assert (shown["account_id"], shown["entity_id"], shown["level"]) == (ACCOUNT, "5002", "adset")
    assert (shown["dimension"], shown["segment"], shown["status"]) == ("country", ["GB"], "new")
    assert shown["action"]["type"] == "edit_targeting"
    estimate, low, high = view.weekly_profit_minor or (0, 0, 0)
    assert shown["expected_weekly_profit"] == {
        "estimate": f"{estimate / 100:.2f}", "low": f"{low / 100:.2f}",
        "high": f"{high / 100:.2f}", "currency": "USD",
    }  # fmt: skip
    assert shown["confidence"] == view.confidence and shown["evidence"] == view.evidence


def test_no_pattern_and_thin_data_suggest_nothing(db: Engine) -> None:
    world = scenario(
        # no plants, no latent variation: only the noise of counts
        adset("6001", [], targeting=FEEDS),
        # a clear pattern, at 15 dollars a day
        adset("6002", [AUDIENCE_NETWORK, OLDEST], targeting=SPEC, budget=1500),
    )
    with SandboxServer(scenario=world, now=NOW) as server:
        connect_account(ACCOUNT, server.token, graph_url=server.url, by=SYSTEM)
        connect_and_sync(server)
        done = generate(ACCOUNT, now=NOW, by=SYSTEM)
    account = account_row()
    evidence = account_evidence(account, Period.ending_yesterday(account, NOW))
    assert {e.entity.external_id for e in evidence} == {"6001", "6002"}  # there was data …
    assert all(len(e.tables["age_gender"]) > 10 for e in evidence)
    assert done.skipped == {} and done.accounts[ACCOUNT].new == []  # … and nothing in it
    assert list_suggestions(actor=ANA, status="all") == []


def test_in_a_special_ad_category_no_age_edit_is_proposed_but_placements_still_are(
    db: Engine,
) -> None:
    # a housing campaign: Meta allows no age or gender targeting there, so the bad 65+
    # is said with its numbers and why Rex cannot act, and Audience Network still goes
    world = scenario(adset("7101", [AUDIENCE_NETWORK, OLDEST], targeting=SPEC))
    world["accounts"][0]["campaigns"][0]["special_ad_categories"] = ["HOUSING"]
    with SandboxServer(scenario=world, now=NOW) as server:
        connect_account(ACCOUNT, server.token, graph_url=server.url, by=SYSTEM)
        connect_and_sync(server)
        generate(ACCOUNT, now=NOW, by=SYSTEM)
        views = by_subject(list_suggestions(actor=ANA))
        oldest = get_suggestion(views[("7101", "age", "65+")].id, actor=ANA)
        assert not oldest.can_apply and suggestion(oldest.id).action is None
        assert "special ad category (housing, employment or credit)" in oldest.why
        placement = get_suggestion(
            views[("7101", "publisher_platform", "audience_network")].id, actor=ANA
        )
        assert placement.can_apply
        # and Meta itself (the sandbox, over HTTP) refuses the age edit in those words
        answer = requests.post(
            f"{server.url}/v26.0/7101",
            data={"targeting": json.dumps({**SPEC, "age_max": 64}), "access_token": server.token},
            timeout=10,
        )
        assert answer.status_code == 400
        assert answer.json()["error"]["error_user_title"] == (
            "Targeting Not Available For Special Ad Category"
        )
        assert graph(server, "7101", "targeting")["targeting"] == SPEC


def budget_history(server: SandboxServer, entity_id: str, budgets: list[int],
                   every: int = 3) -> None:  # fmt: skip
    """The entity's daily budget raised through `budgets` (minor units), one step every
    `every` days, the last step `every` days ago — on the sandbox's timeline, as if made
    in Ads Manager (so not Rex's: its days do not count as learning)."""
    world = server.state
    account = world.accounts[ACCOUNT]
    zone = ZoneInfo(account.timezone_name)
    today = account.today(NOW)
    entity = world.entities[entity_id]
    for k, (old, new) in enumerate(zip(budgets, budgets[1:], strict=False)):
        ago = every * (len(budgets) - 1 - k)
        at = datetime.combine(today - timedelta(days=ago), time(), zone)
        world.seed_change(entity, "daily_budget", old, new, at)


def test_a_budget_moves_from_a_saturated_campaign_budget_to_a_budget_limited_ad_set(
    db: Engine,
) -> None:
    # a campaign budget (Advantage+: Meta shares it among the campaign's ad sets) raised
    # far past what its audience takes, and an ad set of another campaign spending its
    # whole budget well under its audience: the money moves from the campaign to the ad
    # set, the campaign's budget written at the campaign
    saturated = {"id": "5201", "name": "Prospecting · broad",
                 "market": {"roas": 2.0, "capacity": "1000", "variation": 0},
                 "ads": [{"id": "52011", "name": "ad"}]}  # fmt: skip
    limited = {"id": "5301", "name": "Retargeting · cart", "daily_budget": 48800,
               "market": {"roas": 3.5, "capacity": "10000", "variation": 0},
               "ads": [{"id": "53011", "name": "ad"}]}  # fmt: skip
    campaign_budgets = [60000, 75000, 94000, 117000, 146000, 183000, 229000, 286000]
    world = {
        "accounts": [{
            "id": ACCOUNT, "name": "Shop", "currency": "USD", "timezone": "America/Los_Angeles",
            "campaigns": [
                {"id": "4201", "name": "Prospecting", "daily_budget": campaign_budgets[-1],
                 "adsets": [saturated]},
                {"id": "4301", "name": "Retargeting", "adsets": [limited]},
            ],
        }],
    }  # fmt: skip
    with SandboxServer(scenario=world, now=NOW) as server:
        budget_history(server, "4201", campaign_budgets)
        budget_history(server, "5301", [16000, 20000, 25000, 31200, 39000, 48800], every=4)
        connect_account(ACCOUNT, server.token, graph_url=server.url, by=SYSTEM)
        connect_and_sync(server)
        generate(ACCOUNT, now=NOW, by=SYSTEM)
        (shift,) = list_suggestions(actor=ANA, kind="budget")
        steps = (suggestion(shift.id).action or {})["steps"]
        assert [s["change"]["level"] for s in steps] == ["campaign", "adset"]
        moved = steps[0]["change"]["old_minor"] - steps[0]["change"]["new_minor"]
        assert moved > 0
        assert steps[1]["change"]["new_minor"] - steps[1]["change"]["old_minor"] == moved

        done = apply_suggestion(shift.id, by=ANA, now=NOW)
        assert done.status == SuggestionStatus.APPLIED, done.message
        assert int(graph(server, "4201", "daily_budget")["daily_budget"]) == 286000 - moved
        assert int(graph(server, "5301", "daily_budget")["daily_budget"]) == 48800 + moved


# ------------------------------------------------------------- acting on one


@dataclass
class Shop:
    server: SandboxServer
    views: dict[tuple[str | None, str | None, str], SuggestionView]

    def id_of(self, adset_id: str, dimension: str, segment: str) -> int:
        return self.views[(adset_id, dimension, segment)].id


@pytest.fixture
def shop(db: Engine) -> Iterator[Shop]:
    """Two ad sets whose 65+ buy at a fifth of the rest's rate — one of them with Advantage+
    audience on — and the first's Audience Network at 0.15 of it; synced and generated."""
    world = scenario(
        adset("7001", [AUDIENCE_NETWORK, OLDEST], targeting=SPEC),
        adset(
            "7002", [OLDEST], targeting={**FEEDS, "targeting_automation": {"advantage_audience": 1}}
        ),  # fmt: skip
    )
    with SandboxServer(scenario=world, now=NOW) as server:
        connect_account(ACCOUNT, server.token, graph_url=server.url, by=SYSTEM)
        connect_and_sync(server)
        generate(ACCOUNT, now=NOW, by=SYSTEM)
        views = by_subject(list_suggestions(actor=ANA))
        assert {("7001", "publisher_platform", "audience_network"), ("7001", "age", "65+"),
                ("7002", "age", "65+")} <= set(views)  # fmt: skip
        yield Shop(server, views)


def test_applying_writes_the_full_spec_and_the_segment_stops_delivering(shop: Shop) -> None:
    server, sid = shop.server, shop.id_of("7001", "publisher_platform", "audience_network")
    planned = suggestion(sid).action or {}
    done = apply_suggestion(sid, by=ANA, now=NOW)
    assert done.status == SuggestionStatus.APPLIED and done.action_id is not None
    assert "applied" in done.message
    assert graph(server, "7001", "targeting")["targeting"] == planned["change"]["new"]
    assert (
        "audience_network"
        not in graph(server, "7001", "targeting")["targeting"]["publisher_platforms"]
    )
    row = suggestion(sid)
    assert (row.status, row.action_id, row.applied_at) == (SuggestionStatus.APPLIED,
                                                           done.action_id, NOW)  # fmt: skip
    with read_session() as session:
        action = session.get_one(ActionHistory, done.action_id)
        baseline = session.scalars(
            select(RexSuggestionPerformance).where(RexSuggestionPerformance.suggestion_id == sid)
        ).one()
    assert (action.status, action.action_type) == (ActionStatus.SUCCEEDED, "edit_targeting")
    assert action.idempotency_key == f"suggestion:{sid}:1.1"
    assert baseline.baseline_metrics["last_7_days"]["spend_micros"] > 0
    assert [(p, s) for p, s, _ in history(sid)] == [(None, "new"), ("new", "applied")]

    # three days on: the new days' placements have no Audience Network, the others deliver
    moved = requests.post(f"{server.url}/__sandbox/clock", json={"advance_days": 3}, timeout=10)
    assert moved.ok, moved.text
    later = NOW + timedelta(days=3)
    connect_and_sync(server, days=6, now=later)
    with read_session() as session:
        entity = session.scalars(select(AdEntity).where(AdEntity.external_id == "7001")).one()
        rows = session.execute(
            select(AdPlacementInsight.date, AdPlacementInsight.publisher_platform,
                   AdPlacementInsight.spend_micros)
            .where(AdPlacementInsight.entity_id == entity.id)
        ).all()  # fmt: skip
    changed_on = local_today("America/Los_Angeles", NOW)  # applied at 10:30 there
    before = {p for d, p, spend in rows if d < changed_on and spend > 0}
    after = {p for d, p, spend in rows if d > changed_on and spend > 0}
    assert "audience_network" in before
    assert after and "audience_network" not in after
    assert {d for d, _, _ in rows if d > changed_on} >= {
        changed_on + timedelta(days=1),
        changed_on + timedelta(days=2),
    }

    # the rollback restores the spec the suggestion was computed on
    undo = rollback(done.action_id, by=ANA, now=later)
    assert undo.status == ActionStatus.SUCCEEDED
    assert graph(server, "7001", "targeting")["targeting"] == planned["change"]["old"] == SPEC


def test_meta_s_refusals_and_changes_made_at_meta_read_as_words(shop: Shop) -> None:
    # Advantage+ audience on: Meta takes no age_max below 65, so excluding 65+ is refused
    server, sid = shop.server, shop.id_of("7002", "age", "65+")
    before = graph(server, "7002", "targeting")["targeting"]
    assert (suggestion(sid).action or {})["change"]["new"]["age_max"] == 64
    done = apply_suggestion(sid, by=ANA, now=NOW)
    assert done.status == SuggestionStatus.NEW
    words = "This ad set uses Advantage+ audience: ages are only a suggestion"
    assert words in done.message and "turn Advantage+ audience off" in done.message
    row = suggestion(sid)
    assert row.status == SuggestionStatus.NEW and words in (row.reason or "")
    assert graph(server, "7002", "targeting")["targeting"] == before  # nothing changed
    assert get_suggestion(sid, actor=ANA).can_apply  # it can be dismissed, or tried again

    # Meta cannot read the ad set now: nothing is known to have changed, nothing is sent
    sid = shop.id_of("7001", "publisher_platform", "audience_network")
    server.set_faults(FaultConfig(fail_next=[("5xx", 20)]))
    with pytest.raises(SuggestionStateError, match="Meta cannot read Shop · 7001"):
        apply_suggestion(sid, by=ANA, now=NOW)
    server.set_faults(FaultConfig())
    assert suggestion(sid).status == SuggestionStatus.NEW  # still to decide

    # someone changed its targeting since the suggestion was made
    by_hand = {**SPEC, "age_min": 21}
    write(server, "7001", targeting=json.dumps(by_hand))
    with pytest.raises(SuggestionStateError, match="targeting changed at Meta since"):
        apply_suggestion(sid, by=ANA, now=NOW)
    row = suggestion(sid)
    assert row.status == SuggestionStatus.EXPIRED and row.action_id is None
    assert "targeting changed at Meta" in (row.reason or "")
    assert graph(server, "7001", "targeting")["targeting"] == by_hand  # not written over
    with read_session() as session:  # only the refused write was ever sent
        sent = session.scalars(select(ActionHistory)).all()
    assert [(a.entity_name, a.status) for a in sent] == [("Shop · 7002", ActionStatus.FAILED)]


def test_a_dismissed_suggestion_stays_dismissed_unless_the_evidence_changed(shop: Shop) -> None:
    sid = shop.id_of("7001", "age", "65+")
    dismiss(sid, "we sell to 65+ in store", by=ANA, now=NOW)
    again = generate(ACCOUNT, now=NOW + timedelta(minutes=5), by=SYSTEM).accounts[ACCOUNT]
    assert sid in again.still_dismissed and again.new == []
    assert suggestion(sid).status == SuggestionStatus.DISMISSED
    assert history(sid) == [(None, "new", None), ("new", "dismissed", "we sell to 65+ in store")]
    assert sid not in {v.id for v in list_suggestions(actor=ANA)}  # the open ones

    dismissed = suggestion(sid)
    account = account_row()
    found = {f.subject: f for f in find_for_account(account, now=NOW)}
    item = found[dismissed.detail["subject"]]
    low, high = dismissed.weekly_profit_low_minor or 0, dismissed.weekly_profit_high_minor or 0
    others = [f for s, f in found.items() if s != item.subject]
    inside = replace(item, values={**item.values, "weekly_profit_minor": (low + high) // 2})
    kept = reconcile(account, [*others, inside], now=NOW)
    assert kept.new == [] and kept.still_dismissed == [sid]  # within what it stated

    outside = replace(item, values={**item.values, "weekly_profit_minor": high * 3})
    done = reconcile(account, [*others, outside], now=NOW + timedelta(hours=1))
    assert len(done.new) == 1 and done.new[0] != sid
    [(previous, status, why)] = history(done.new[0])
    assert (previous, status) == (None, "new")
    assert "changed materially" in (why or "") and f"suggestion {sid}" in (why or "")
    assert suggestion(sid).status == SuggestionStatus.DISMISSED  # its own record stays


def test_the_record_expires_supersedes_and_never_holds_two_open_for_a_change(
    shop: Shop,
) -> None:
    network = shop.id_of("7001", "publisher_platform", "audience_network")
    advantage = shop.id_of("7002", "age", "65+")
    account = account_row()
    found = find_for_account(account, now=NOW)

    # the same subject with another change: the new one supersedes the open one
    item = next(f for f in found if f.fingerprint == suggestion(network).fingerprint)
    changed = replace(item, fingerprint=f"{item.subject}|another change")
    done = reconcile(account, [changed if f is item else f for f in found], now=NOW)
    assert done.superseded == [network] and len(done.new) == 1
    old = suggestion(network)
    assert (old.status, old.superseded_by_id) == (SuggestionStatus.SUPERSEDED, done.new[0])
    assert f"superseded by suggestion {done.new[0]}" in (old.reason or "")

    # the ad set paused in Ads Manager: not delivering, its suggestion not found again
    shop.server.edit_as_person("7002", status="PAUSED")
    connect_and_sync(shop.server, days=1)
    again = generate(ACCOUNT, now=NOW, by=SYSTEM).accounts[ACCOUNT]
    assert advantage in again.expired
    row = suggestion(advantage)
    assert (row.status, row.reason) == (SuggestionStatus.EXPIRED, EXPIRED_REASON)
    assert history(advantage)[-1] == ("new", "expired", EXPIRED_REASON)

    # found again: the same suggestion, refreshed; a second open one is refused
    sid = shop.id_of("7001", "age", "65+")
    assert sid in again.refreshed
    row = suggestion(sid)
    copied = {c.key: getattr(row, c.key) for c in RexSuggestion.__mapper__.column_attrs
              if c.key != "id"}  # fmt: skip
    with pytest.raises(IntegrityError), write_session() as session:
        session.add(RexSuggestion(**copied))  # the database refuses it too
    dismiss(sid, "not now", by=ANA, now=NOW)
    with write_session() as session:  # a closed one does not count
        session.add(RexSuggestion(**copied))


@pytest.fixture
def approval_for_all(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shop]:
    monkeypatch.setenv("REX_SUGGESTION_APPROVAL", "all")
    reload_settings()
    yield shop
    monkeypatch.delenv("REX_SUGGESTION_APPROVAL")
    reload_settings()


def test_with_an_approval_required_applying_queues_and_the_queue_decides(
    approval_for_all: Shop,
) -> None:
    server = approval_for_all.server
    network = approval_for_all.id_of("7001", "publisher_platform", "audience_network")
    oldest = approval_for_all.id_of("7001", "age", "65+")
    planned = suggestion(network).action or {}

    queued = apply_suggestion(network, by=ANA, now=NOW)
    other = apply_suggestion(oldest, by=ANA, now=NOW)
    assert queued.status == other.status == SuggestionStatus.QUEUED
    assert queued.approval_id is not None and other.approval_id is not None
    with read_session() as session:
        pending = session.get_one(PendingAction, queued.approval_id)
        assert (pending.status, pending.action_type) == (ApprovalStatus.PENDING, "edit_targeting")
        assert pending.proposal["change"] == planned["change"]
        assert session.scalars(select(ActionHistory)).all() == []  # nothing sent yet
    assert graph(server, "7001", "targeting")["targeting"] == SPEC
    assert settle_suggestions(now=NOW) == 0  # still waiting

    approve(queued.approval_id, by=BEN, now=NOW)
    reject(other.approval_id, by=BEN, reason="65+ buy in store", now=NOW)
    assert settle_suggestions(now=NOW) == 2
    applied, rejected = suggestion(network), suggestion(oldest)
    assert applied.status == SuggestionStatus.APPLIED and applied.action_id is not None
    assert graph(server, "7001", "targeting")["targeting"] == planned["change"]["new"]
    assert rejected.status == SuggestionStatus.DISMISSED
    assert rejected.reason == "rejected in Approvals: 65+ buy in store"
    assert [s for _, s, _ in history(network)] == ["new", "queued", "applied"]
    assert [s for _, s, _ in history(oldest)] == ["new", "queued", "dismissed"]


def test_the_cli_lists_shows_applies_and_dismisses(shop: Shop) -> None:
    from tests.test_cli import rex

    listed = rex("suggestions", "list", "--json", "--kind", "placement")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [v.id for v in list_suggestions(actor=ANA, kind="placement")]
    assert all(r["kind"] == "placement" for r in rows) and rows

    oldest = shop.id_of("7001", "age", "65+")
    shown = rex("suggestions", "show", str(oldest))
    assert shown.returncode == 0 and suggestion(oldest).title in shown.stdout
    assert "new  by rex" in shown.stdout  # its history

    person("ana@example.com", admin=True)
    refused = rex(
        "suggestions", "dismiss", str(oldest), "--reason", "  ", "--as", "ana@example.com"
    )
    assert refused.returncode == 1 and "reason" in refused.stderr
    assert suggestion(oldest).status == SuggestionStatus.NEW  # nothing changed
    reason = ("--reason", "sold in store", "--as", "ana@example.com")
    dismissed = rex("suggestions", "dismiss", str(oldest), *reason)
    assert dismissed.returncode == 0, dismissed.stderr
    assert (suggestion(oldest).status, suggestion(oldest).reason) == ("dismissed", "sold in store")

    missing = rex("suggestions", "apply", "999999", "--as", "ana@example.com")
    assert missing.returncode == 1 and "no suggestion with id 999999" in missing.stderr
    bad = rex("suggestions", "list", "--status", "maybe")
    assert bad.returncode == 1 and "status" in bad.stderr
