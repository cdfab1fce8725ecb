"""One account Rex cannot judge — a time zone or currency an old install stored without
checking — is left out of rule evaluation alone: every other account is still
evaluated, and the evaluation and the run's trace say why that one was not."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Engine, select, text

from core.access.actor import SYSTEM
from core.db import read_session, write_session
from core.db.models import AdAccount, AdEntity, AdMetric, RuleExecution
from core.engine.run import run_rule_now
from core.rules.document import parse_rule
from core.rules.evaluate import evaluate_many
from core.rules.store import save_rule
from tests.conftest import NOW as SANDBOX_NOW

NOW = datetime(2026, 11, 20, 7, 30, tzinfo=UTC)  # the 19th in Los Angeles
SPEND_RULE = {
    "name": "Any spend",
    "scope": {"level": "campaign"},
    "conditions": {"metric": "spend", "window": "last_7d", "op": ">", "value": 10},
    "actions": [{"type": "pause"}],
}


def add_account(external_id: str, *, currency: str = "USD", zone: str = "UTC") -> None:
    """A valid account with one spending campaign, then its currency and time zone set by
    plain SQL, as an install that stored Meta's answer unchecked might hold them."""
    with write_session() as session:
        account = AdAccount(
            external_id=external_id,
            name=external_id,
            currency="USD",
            timezone_name="America/Los_Angeles",
            account_status=1,
            token_encrypted="x",
        )
        session.add(account)
        session.flush()
        campaign = AdEntity(
            account_id=account.id,
            level="campaign",
            external_id=f"{external_id.removeprefix('act_')}01",
            name=f"{external_id} campaign",
            status="ACTIVE",
            effective_status="ACTIVE",
        )
        session.add(campaign)
        session.flush()
        session.add(
            AdMetric(
                account_id=account.id,
                entity_id=campaign.id,
                date=date(2026, 11, 18),
                spend_micros=50_000_000,
                revenue_micros=0,
                impressions=1000,
                clicks=10,
                reach=900,
                conversions=0,
            )
        )
    with write_session() as session:
        session.execute(
            text("UPDATE ad_accounts SET currency = :c, timezone_name = :z WHERE external_id = :e"),
            {"c": currency, "z": zone, "e": external_id},
        )


def test_a_bad_account_is_left_out_and_the_others_are_evaluated(db: Engine) -> None:
    add_account("act_1")
    add_account("act_2", zone="Mars/Olympus")
    add_account("act_3", currency="XYZ")
    everywhere = parse_rule(SPEND_RULE)
    only_good = parse_rule({**SPEND_RULE, "scope": {"level": "campaign", "account_ids": ["act_1"]}})
    with_bad = parse_rule(
        {**SPEND_RULE, "scope": {"level": "campaign", "account_ids": ["act_1", "act_2"]}}
    )

    with read_session() as session:
        results = evaluate_many(session, [everywhere, only_good, with_bad], NOW)

    for evaluation in results:
        assert [(c.account, c.matched) for c in evaluation.candidates] == [("act_1", True)]
    skipped = results[0].skipped_accounts
    assert sorted(skipped) == ["act_2", "act_3"]
    assert "'Mars/Olympus'" in skipped["act_2"] and "time zone" in skipped["act_2"]
    assert "'XYZ'" in skipped["act_3"] and "currency" in skipped["act_3"]
    assert results[1].skipped_accounts == {}  # out of its scope: not its business
    assert results[2].skipped_accounts == {"act_2": skipped["act_2"]}
    assert results[2].to_json()["skipped_accounts"] == {"act_2": skipped["act_2"]}
    assert "skipped_accounts" not in results[1].to_json()


def test_a_run_over_a_bad_and_a_good_account_acts_on_the_good_one(worked) -> None:  # type: ignore[no-untyped-def]
    add_account("act_666", zone="Not/AZone")
    scale = {
        "name": "Scale winners",
        "scope": {"level": "campaign", "account_ids": ["act_2001", "act_666"]},
        "conditions": {"metric": "roas", "window": "last_7d", "op": ">", "value": 3},
        "actions": [{"type": "change_budget", "by_percent": 25, "max": 500}],
        "safety": {"max_daily_actions": 10, "cooldown_minutes": 0},
    }
    rule = save_rule(scale, now=SANDBOX_NOW, by=SYSTEM)
    alone = save_rule(
        {**scale, "name": "Alone", "scope": {"level": "campaign", "account_ids": ["act_2001"]}},
        now=SANDBOX_NOW,
        by=SYSTEM,
    )

    result = run_rule_now(rule.id, SANDBOX_NOW, by=SYSTEM)

    assert (result.status, result.entities_matched, result.actions_taken) == ("succeeded", 2, 2)
    with read_session() as session:
        trace = session.get_one(RuleExecution, result.execution_id).trace
        names = set(session.scalars(select(AdEntity.name).where(AdEntity.level == "campaign")))
    assert {c["name"] for c in trace["candidates"]} == names - {"act_666 campaign"}
    assert list(trace["skipped_accounts"]) == ["act_666"]
    assert "'Not/AZone'" in trace["skipped_accounts"]["act_666"]
    assert run_rule_now(alone.id, SANDBOX_NOW, by=SYSTEM).status == "succeeded"


def test_a_rule_whose_only_account_is_unusable_is_skipped_with_the_reason(worked) -> None:  # type: ignore[no-untyped-def]
    add_account("act_666", zone="Not/AZone")
    rule = save_rule(
        {
            "name": "Only the bad one",
            "scope": {"level": "campaign", "account_ids": ["act_666"]},
            "conditions": {"metric": "roas", "window": "last_7d", "op": ">", "value": 3},
            "actions": [{"type": "pause"}],
        },
        now=SANDBOX_NOW,
        by=SYSTEM,
    )
    result = run_rule_now(rule.id, SANDBOX_NOW, by=SYSTEM)
    assert result.status == "skipped" and "Not/AZone" in result.error
