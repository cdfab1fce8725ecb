"""Outcomes end to end, over the sandbox's HTTP, on both databases: a suggestion applied,
the sandbox's clock moved on, the days synced, `outcomes update` run — each checkpoint
measured once its days have settled, against the ad sets that were not changed, its
interval covering the change's true effect (the sandbox's world with the change against
the world without it), the learning phase marked; a second update changes nothing; a
rule action gets the same record; and the CLI lists them."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, select

from core.access.actor import SYSTEM
from core.accounts import connect_account
from core.db import read_session
from core.db.models import (
    ActionHistory,
    ActionStatus,
    AdEntity,
    RexOutcomeCheckpoint,
    RexSuggestionPerformance,
)
from core.outcomes.record import CHECKPOINTS, SETTLE_DAYS, update_outcomes
from core.rules.windows import local_today
from core.sandbox import SandboxServer
from core.suggestions.apply import apply_suggestion
from core.suggestions.generate import generate
from core.sync.runner import SyncOptions, sync_accounts
from core.views.suggestions import list_suggestions
from tests.conftest import NOW
from tests.signed import ANA, signed_page

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "act_4001"
SPEC: dict[str, Any] = {
    "age_min": 18, "age_max": 65, "geo_locations": {"countries": ["US", "CA", "GB", "AU"]},
    "targeting_automation": {"advantage_audience": 0},
}  # fmt: skip
# Audience Network takes a third of the spend and converts at a tenth of the rest's rate
AUDIENCE_NETWORK = {"dimension": "placement", "match": {"platform": "audience_network"},
                    "share": 0.35, "cvr": 0.1}  # fmt: skip


def scenario() -> dict[str, Any]:
    adsets = [
        {"id": f"80{i:02}", "name": f"Shop · 80{i:02}", "daily_budget": 40000,
         "targeting": SPEC,
         "market": {"roas": 2.0 + 0.2 * i, "capacity": "1200", "variation": 0.3,
                    "plants": [AUDIENCE_NETWORK] if i == 0 else []},
         "ads": [{"id": f"80{i:02}1", "name": "ad"}]}
        for i in range(6)
    ]  # fmt: skip
    return {"accounts": [{
        "id": ACCOUNT, "name": "Shop", "currency": "USD", "timezone": "America/Los_Angeles",
        "campaigns": [{"id": "4801", "name": "Shop", "adsets": adsets}],
    }]}  # fmt: skip


def sync(now: Any, days: int) -> None:
    sync_accounts(options=SyncOptions(days=days, now=now, client_options={"poll_seconds": 0.01}))


def checkpoints() -> dict[int, RexOutcomeCheckpoint]:
    with read_session() as session:
        return {c.days: c for c in session.scalars(select(RexOutcomeCheckpoint))}


def test_an_applied_suggestion_is_measured_at_each_checkpoint_against_the_truth(
    db: Engine,
) -> None:
    with SandboxServer(scenario=copy.deepcopy(scenario()), now=NOW) as server:
        connect_account(ACCOUNT, server.token, graph_url=server.url, by=SYSTEM)
        sync(NOW, 35)
        generate(ACCOUNT, now=NOW, by=SYSTEM)
        (excluded,) = [v for v in list_suggestions(actor=ANA) if v.entity_id == "8000"
                       and v.segment == ("audience_network",) and v.action]  # fmt: skip
        assert apply_suggestion(excluded.id, by=ANA, now=NOW).action_id is not None
        changed_on = local_today("America/Los_Angeles", NOW)

        # nothing to measure yet: no day after the change has passed
        first = update_outcomes(now=NOW)
        assert first.measured == [] and first.waiting == len(CHECKPOINTS)

        # eight days on: the first and third days are settled, the seventh is not
        later = NOW + timedelta(days=8)
        moved = requests.post(f"{server.url}/__sandbox/clock", json={"advance_days": 8},
                              timeout=10)  # fmt: skip
        assert moved.ok, moved.text
        sync(later, 12)
        done = update_outcomes(now=later)
        assert sorted(days for _, days in done.measured) == [1, 3]
        # twenty days on: all four
        latest = NOW + timedelta(days=20)
        assert requests.post(f"{server.url}/__sandbox/clock", json={"advance_days": 12},
                             timeout=10).ok  # fmt: skip
        sync(latest, 24)
        done = update_outcomes(now=latest)
        assert sorted(days for _, days in done.measured) == [7, 14]
        again = update_outcomes(now=latest + timedelta(hours=1))
        assert again.measured == [] and again.started == 0  # idempotent

        # the truth: the world with the targeting edit against the world without it
        world = server.state
        adset = world.entities["8000"]
        (edit,) = [c for c in world.changes if c.entity_id == "8000" and c.field == "targeting"]
        truths, anyway = {}, {}
        for days in (7, 14):
            truth = {"spend": 0.0, "revenue": 0.0}
            without = {"spend": 0.0, "purchases": 0.0}
            for k in range(1, days + 1):
                day = changed_on + timedelta(days=k)
                effect = world.true_effect(adset, day, edit)
                truth["spend"] += effect["spend"]
                truth["revenue"] += effect["revenue"]
                with world.lock, world.without(edit):
                    expected = world.expected_adset(adset, day)
                without["spend"] += expected.spend
                without["purchases"] += expected.purchases
            truth["profit"] = truth["revenue"] - truth["spend"]
            truths[days], anyway[days] = truth, without

    measured = checkpoints()
    assert set(measured) == set(CHECKPOINTS)
    week = measured[7]
    assert week.verdict in ("improving", "not improving", "not enough evidence")
    assert week.comparison and week.comparison["entities"] == 5  # the other ad sets
    assert week.comparison["method"] == "difference in differences"
    assert week.learning and week.comparison["learning_days"] == 7  # a targeting edit
    # what it would have done anyway, from the unchanged ad sets, is the world without
    # the change (within 10 %); the headline's profit interval holds the true effect
    # (each interval is a 90 % one: their coverage over many worlds is measured in
    # tests/test_outcomes_estimate.py and bench/outcomes.py, not on one draw)
    for days in (7, 14):
        predicted = measured[days].expected_metrics or {}
        for metric in ("spend", "purchases"):
            assert predicted[metric] == pytest.approx(anyway[days][metric], rel=0.1), (
                days,
                metric,
                predicted,
                anyway[days],
            )
    profit = (week.effects or {})["profit"]
    assert profit["low"] <= truths[7]["profit"] <= profit["high"], (profit, truths[7])
    # the first week pays Meta's learning phase (the edit restarts it); by the second,
    # leaving out a third of the spend that bought a tenth of the rest's sales pays
    assert truths[7]["profit"] < 0 < truths[14]["profit"]
    assert week.is_improving is not True and measured[14].is_improving is not False
    with read_session() as session:
        outcome = session.scalars(select(RexSuggestionPerformance)).one()
    assert outcome.suggestion_id == excluded.id and outcome.kind == "placement"
    assert outcome.changed_on == changed_on and outcome.last_comparison_at is not None
    assert outcome.effects == week.effects and outcome.is_improving == week.is_improving
    assert outcome.deltas == week.deltas and "roas" in (outcome.deltas or {})
    # what the kind learned: one outcome, against a prior worth five — moved toward it
    from core.outcomes.record import kind_confidence

    placement = kind_confidence()["placement"]
    assert placement.outcomes == 1 and placement.prior == excluded.confidence
    assert placement.rate.low < placement.rate.estimate < placement.rate.high
    # the suggestion says what it did (its latest checkpoint)
    from core.views.suggestions import get_suggestion

    said = get_suggestion(excluded.id, actor=ANA).measured or ""
    assert said.startswith(f"14 days after: {measured[14].verdict}") and "learning phase" in said
    # the Impact page: the kind, its measured outcome, the charts
    impact = signed_page("app.py", timeout=60)
    impact.switch_page("pages/impact.py").run()
    assert not impact.exception, [e.value for e in impact.exception]
    kinds = impact.dataframe[0].value
    assert list(kinds["Kind"]) == ["placement"] and list(kinds["Measured"]) == [1]
    assert "1 outcomes; prior" in kinds["Confidence learned"][0]
    every = impact.dataframe[1].value
    assert list(every["Checkpoints"]) == ["1 d, 3 d, 7 d, 14 d"]
    assert list(every["Compared with"]) == ["5 unchanged"] and list(every["Learning phase"]) == [
        "yes"
    ]
    assert "USD" in every["Profit effect (90 %)"][0]
    charts = impact.get("plotly_chart")
    assert len(charts) == 2  # the effects by kind, the reliability diagram
    (bar,) = json.loads(charts[0].proto.spec)["data"]
    profit = (week.effects or {})["profit"]
    assert bar["y"] == [pytest.approx(profit["estimate"])]
    assert bar["y"][0] + bar["error_y"]["array"][0] == pytest.approx(profit["high"])
    assert bar["y"][0] - bar["error_y"]["arrayminus"][0] == pytest.approx(profit["low"])
    # each checkpoint waited for its days and SETTLE_DAYS more
    for days, checkpoint in measured.items():
        measured_on = local_today("America/Los_Angeles", checkpoint.measured_at)
        assert measured_on > changed_on + timedelta(days=days + SETTLE_DAYS)


def test_a_rule_action_gets_an_outcome_and_the_cli_lists_it(db: Engine) -> None:
    from core.actions.changes import BudgetChange, stored
    from core.actions.execute import execute_intents
    from core.db import write_session
    from core.enums import Level
    from tests.test_cli import rex

    with SandboxServer(scenario=copy.deepcopy(scenario()), now=NOW) as server:
        connect_account(ACCOUNT, server.token, graph_url=server.url, by=SYSTEM)
        sync(NOW, 35)
        from core.rules.store import save_rule
        from tests.documents import scale_winners

        rule = save_rule(scale_winners(name="Scale the retargeting"), by=SYSTEM)
        with write_session() as session:
            entity = session.scalars(select(AdEntity).where(AdEntity.external_id == "8003")).one()
            change = BudgetChange(level=Level.ADSET, entity="8003", budget="daily",
                                  currency="USD", old_minor=40000, new_minor=48000)  # fmt: skip
            row = ActionHistory(
                account_id=entity.account_id, entity_id=entity.id, entity_name=entity.name,
                action_type="change_budget", status=ActionStatus.PENDING, rule_id=rule.id,
                idempotency_key="rule:test:8003", created_at=NOW,
                details={"change": stored(change), "values": {"roas@last_7d": "3.1"}},
            )  # fmt: skip
            session.add(row)
            session.flush()
            action_id = row.id
        assert execute_intents([action_id]) == {action_id: ActionStatus.SUCCEEDED}
        with write_session() as session:  # as if it had run at NOW (the sandbox's today)
            session.get_one(ActionHistory, action_id).finished_at = NOW
        later = NOW + timedelta(days=12)
        assert requests.post(f"{server.url}/__sandbox/clock", json={"advance_days": 12},
                             timeout=10).ok  # fmt: skip
        sync(later, 16)
        done = update_outcomes(now=later)
    assert done.started == 1 and sorted(d for _, d in done.measured) == [1, 3, 7]
    with read_session() as session:
        outcome = session.scalars(select(RexSuggestionPerformance)).one()
    assert (outcome.action_id, outcome.kind, outcome.suggestion_id) == (
        action_id, "change_budget", None,
    )  # fmt: skip
    week = checkpoints()[7]
    assert not week.learning  # a 20 % raise does not restart learning
    # the rule's own week was left out of the baseline (chosen for being extreme)
    assert week.comparison is not None
    assert week.comparison["baseline"][1] < (outcome.changed_on - timedelta(days=7)).isoformat()

    # the record's row says what it did (Executions)
    from core.views.activity import activity_feed

    (row,) = [r for r in activity_feed(actor=ANA).rows if r.id == action_id]
    assert row.measured and row.measured.startswith(f"7 days after: {week.verdict}")
    assert "USD" in row.measured

    # the Impact view groups it by its rule (too few outcomes to learn a rate from yet)
    from core.views.outcomes import impact

    (by_rule,) = impact(actor=ANA).rules
    assert (by_rule.rule_name, by_rule.measured, by_rule.learned) == (
        "Scale the retargeting", 1, None,
    )  # fmt: skip

    listed = rex("outcomes", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["action_id"], r["kind"]) for r in rows] == [(action_id, "change_budget")]
    assert rows[0]["checkpoints"]["7"]["verdict"] == week.verdict
    table = rex("outcomes", "list")
    assert table.returncode == 0 and week.verdict in table.stdout
    assert " USD (" in table.stdout and " USD)" in table.stdout  # the effect, in its currency


def test_the_checkpoints_are_a_setting_that_always_holds_the_headline() -> None:
    from pydantic import ValidationError

    from core.settings import Settings

    assert Settings(outcome_checkpoints="14, 3").checkpoint_days == (3, 7, 14)
    assert Settings().checkpoint_days == CHECKPOINTS
    for bad, words in (("x", "not a list of days"), ("0,7", "from 1 to 28")):
        with pytest.raises(ValidationError, match=words):
            Settings(outcome_checkpoints=bad)


def test_impact_keeps_currencies_apart_and_tells_waiting_from_no_estimate(db: Engine) -> None:
    """Two accounts, USD and JPY: each kind's figures stay in their own currency, with
    one profit chart per currency (never yen and dollars on one axis); a change whose 7
    days had too little data is "no estimate", not "waiting"."""
    from datetime import date

    from core.db import write_session
    from core.db.models import AdAccount
    from core.views.outcomes import impact

    effect = {"estimate": 120.0, "low": 20.0, "high": 220.0, "level": 0.9}
    with write_session() as session:
        for n, currency in enumerate(("USD", "JPY")):
            account = AdAccount(
                external_id=f"act_9{n}", name=currency, currency=currency,
                timezone_name="UTC", account_status=1, token_encrypted="x",
            )  # fmt: skip
            session.add(account)
            session.flush()
            for k, state in enumerate(("measured", "thin", "waiting")):
                entity = AdEntity(account_id=account.id, level="adset",
                                  external_id=f"9{n}{k}", name=f"{currency} {state}",
                                  status="PAUSED", effective_status="PAUSED")  # fmt: skip
                session.add(entity)
                session.flush()
                action = ActionHistory(account_id=account.id, entity_id=entity.id,
                                       action_type="pause", status="succeeded",
                                       created_at=NOW, finished_at=NOW)  # fmt: skip
                session.add(action)
                session.flush()
                outcome = RexSuggestionPerformance(
                    action_id=action.id, account_id=account.id, entity_id=entity.id,
                    kind="pause", changed_on=date(2026, 11, 20), baseline_metrics={},
                )  # fmt: skip
                session.add(outcome)
                session.flush()
                if state == "measured":
                    session.add(RexOutcomeCheckpoint(
                        performance_id=outcome.id, days=7, verdict="improving",
                        is_improving=True, effects={"profit": effect}, measured_at=NOW,
                    ))  # fmt: skip
                elif state == "thin":
                    session.add(RexOutcomeCheckpoint(
                        performance_id=outcome.id, days=7, verdict="no estimate",
                        reason="3 days with delivery in the baseline", measured_at=NOW,
                    ))  # fmt: skip

    view = impact(actor=ANA)
    assert [(k.currency, k.measured, k.without_estimate, k.waiting) for k in view.kinds] == [
        ("JPY", 1, 1, 1), ("USD", 1, 1, 1),
    ]  # fmt: skip
    app = signed_page("app.py", timeout=60)
    app.switch_page("pages/impact.py").run()
    assert not app.exception, [e.value for e in app.exception]
    kinds = app.dataframe[0].value
    assert list(kinds["No estimate"]) == [1, 1] and list(kinds["Waiting"]) == [1, 1]
    charts = [json.loads(c.proto.spec) for c in app.get("plotly_chart")]
    titles = [c["layout"]["title"]["text"] for c in charts]
    assert [t.rsplit("· ", 1)[1] for t in titles] == ["JPY", "USD"]
    for chart in charts:
        assert [bar["y"] for bar in chart["data"]] == [[120.0]]  # one kind, its own currency
