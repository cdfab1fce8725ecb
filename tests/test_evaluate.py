"""Set-based evaluation on stored metrics: windows per account time zone, undefined ratios,
baselines, nested groups — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from core.db import read_session, write_session
from core.db.models import AdAccount, AdEntity, AdMetric
from core.rules.document import parse_rule
from core.rules.evaluate import evaluate
from tests.documents import scale_winners

# 07:30 UTC: still the 19th in Los Angeles (23:30), already the 20th in Tokyo (16:30).
NOW = datetime(2026, 11, 20, 7, 30, tzinfo=UTC)
LA_TODAY, TOKYO_TODAY = date(2026, 11, 19), date(2026, 11, 20)
M = 1_000_000  # micros per unit


def _account(session, external_id: str, currency: str, tz: str) -> AdAccount:  # type: ignore[no-untyped-def]
    account = AdAccount(
        external_id=external_id,
        name=external_id,
        currency=currency,
        timezone_name=tz,
        account_status=1,
        token_encrypted="x",
    )
    session.add(account)
    session.flush()
    return account


def _campaign(session, account: AdAccount, name: str, **fields) -> AdEntity:  # type: ignore[no-untyped-def]
    entity = AdEntity(
        account_id=account.id,
        level="campaign",
        external_id=f"{account.external_id}:{name}",
        name=name,
        status=fields.pop("status", "ACTIVE"),
        effective_status=fields.pop("effective_status", "ACTIVE"),
        **fields,
    )
    session.add(entity)
    session.flush()
    return entity


def _day(session, entity: AdEntity, day: date, spend: str, revenue: str, **counts) -> None:  # type: ignore[no-untyped-def]
    session.add(
        AdMetric(
            account_id=entity.account_id,
            entity_id=entity.id,
            date=day,
            spend_micros=int(Decimal(spend) * M),
            revenue_micros=int(Decimal(revenue) * M),
            impressions=counts.get("impressions", 1000),
            clicks=counts.get("clicks", 10),
            reach=counts.get("reach", 800),
            conversions=counts.get("conversions", 1),
        )
    )


@pytest.fixture
def worked_example(db: Engine) -> None:
    """The seed's example: A (ROAS 4.2, profit 250), B (ROAS 2.1, profit 55), C (ROAS 5,
    profit 180) over the last 7 days; outside the window, days that would change it all."""
    with write_session() as session:
        shop = _account(session, "act_1", "USD", "America/Los_Angeles")
        for name, spend, revenue in (
            ("A", "78.125", "328.125"),
            ("B", "50", "105"),
            ("C", "45", "225"),
        ):
            campaign = _campaign(session, shop, name, daily_budget_minor=20_000)
            yesterday = LA_TODAY - timedelta(days=1)
            _day(session, campaign, yesterday, spend, revenue)
            _day(session, campaign, yesterday - timedelta(days=6), "0", "0")
            # today and the 8th day back are outside last_7d: huge losses there
            _day(session, campaign, LA_TODAY, "9999", "0")
            _day(session, campaign, LA_TODAY - timedelta(days=8), "9999", "0")
        _campaign(session, shop, "no spend")
        _campaign(session, shop, "archived", status="ARCHIVED", effective_status="ARCHIVED")


SCALE_WINNERS = scale_winners()


def _run(document: dict):  # type: ignore[no-untyped-def]
    with read_session() as session:
        return evaluate(session, parse_rule(document), NOW)


def test_the_worked_example_matches_a_and_c(worked_example: None) -> None:
    result = _run(SCALE_WINNERS)
    by_name = {c.name: c for c in result.candidates}

    assert sorted(c.name for c in result.matched) == ["A", "C"]
    assert set(by_name) == {"A", "B", "C", "no spend"}  # archived is not a candidate
    assert by_name["A"].values == {"roas@last_7d": Decimal("4.2"), "profit@last_7d": 250}
    assert by_name["C"].values["roas@last_7d"] == 5
    assert [c.held for c in by_name["B"].conditions] == [False, False]
    assert result.today == {"act_1": "2026-11-19"}


def test_an_undefined_ratio_never_matches_and_the_trace_says_why(worked_example: None) -> None:
    losers = dict(
        SCALE_WINNERS,
        conditions={"metric": "roas", "window": "last_7d", "op": "<", "value": 100},
    )
    result = _run(losers)
    no_spend = next(c for c in result.candidates if c.name == "no spend")
    assert not no_spend.matched
    assert no_spend.values["roas@last_7d"] is None
    assert no_spend.conditions[0].undefined == (
        "ROAS over the last 7 days is undefined (nothing spent)"
    )
    assert no_spend.conditions[0].reason == no_spend.conditions[0].undefined
    assert sorted(c.name for c in result.matched) == ["A", "B", "C"]
    trace = result.to_json()
    assert trace["candidates"][3]["conditions"][0]["undefined"]


@pytest.mark.parametrize(
    ("op", "value", "matched"),
    [
        ("between", [2.1, 4.2], ["A", "B"]),  # both edges inclusive
        ("not_between", [2.1, 4.2], ["C"]),
        (">=", 4.2, ["A", "C"]),
        ("=", 5, ["C"]),
        ("!=", 5, ["A", "B"]),
        ("<=", 2.1, ["B"]),
    ],
)
def test_operators_and_range_edges(worked_example: None, op: str, value, matched) -> None:  # type: ignore[no-untyped-def]
    rule = dict(
        SCALE_WINNERS, conditions={"metric": "roas", "window": "last_7d", "op": op, "value": value}
    )
    assert sorted(c.name for c in _run(rule).matched) == matched


def test_nested_any_inside_all(worked_example: None) -> None:
    rule = dict(
        SCALE_WINNERS,
        conditions={
            "all": [
                {"metric": "spend", "window": "last_7d", "op": ">", "value": 40},
                {
                    "any": [
                        {"metric": "roas", "window": "last_7d", "op": ">=", "value": 5},
                        {"metric": "profit", "window": "last_7d", "op": "<", "value": 60},
                    ]
                },
            ]
        },
    )
    result = _run(rule)
    assert sorted(c.name for c in result.matched) == ["B", "C"]
    a = next(c for c in result.candidates if c.name == "A")
    assert [c.path for c in a.conditions] == [
        "conditions.all[0]",
        "conditions.all[1].any[0]",
        "conditions.all[1].any[1]",
    ]


def test_a_metric_against_its_own_baseline(db: Engine) -> None:
    with write_session() as session:
        shop = _account(session, "act_1", "USD", "America/Los_Angeles")
        improving = _campaign(session, shop, "improving")
        worsening = _campaign(session, shop, "worsening")
        for back in range(1, 31):
            day = LA_TODAY - timedelta(days=back)
            recent = back <= 3
            _day(session, improving, day, "10", "30", conversions=2 if recent else 1)
            _day(session, worsening, day, "10", "30", conversions=1 if recent else 2)
    rule = dict(
        SCALE_WINNERS,
        conditions={
            "metric": "cpa",
            "window": "last_3d",
            "op": "<",
            "value": {"metric": "cpa", "window": "last_30d", "times": 0.8},
        },
    )
    result = _run(rule)
    assert [c.name for c in result.matched] == ["improving"]
    improving_trace = next(c for c in result.candidates if c.name == "improving")
    # 3 days at CPA 5; 30 days: 300 spend / 33 purchases
    assert improving_trace.values["cpa@last_3d"] == 5
    assert improving_trace.conditions[0].expected == Decimal(300) / 33 * Decimal("0.8")


def test_windows_are_each_accounts_own_days(db: Engine) -> None:
    with write_session() as session:
        la = _account(session, "act_1", "USD", "America/Los_Angeles")
        tokyo = _account(session, "act_2", "JPY", "Asia/Tokyo")
        la_campaign, tokyo_campaign = _campaign(session, la, "LA"), _campaign(session, tokyo, "TK")
        for campaign in (la_campaign, tokyo_campaign):
            _day(session, campaign, date(2026, 11, 18), "100", "0")
            _day(session, campaign, date(2026, 11, 19), "200", "0")
            _day(session, campaign, date(2026, 11, 20), "400", "0")

    def spend(window: str) -> dict[str, Decimal | None]:
        rule = dict(  # no money value but 0: one rule over a USD and a JPY account
            SCALE_WINNERS,
            scope={"level": "campaign"},
            conditions={"metric": "spend", "window": window, "op": ">", "value": 0},
            actions=[{"type": "pause"}],
        )
        return {c.name: c.values[f"spend@{window}"] for c in _run(rule).candidates}

    # In LA it is 23:30 on the 19th; in Tokyo 16:30 on the 20th.
    assert spend("today") == {"LA": 200, "TK": 400}
    assert spend("yesterday") == {"LA": 100, "TK": 200}
    assert spend("last_2d_with_today") == {"LA": 300, "TK": 600}


def test_current_budget_in_major_units_and_scope_filters(db: Engine) -> None:
    with write_session() as session:
        tokyo = _account(session, "act_2", "JPY", "Asia/Tokyo")
        _campaign(session, tokyo, "Prospecting JP", daily_budget_minor=5000)
        _campaign(session, tokyo, "Retargeting JP", daily_budget_minor=20000)
    rule = dict(
        SCALE_WINNERS,
        scope={
            "level": "campaign",
            "filters": [{"field": "name", "op": "contains", "value": "prospecting"}],
        },
        conditions={"metric": "daily_budget", "op": "<", "value": 6000},
    )
    result = _run(rule)
    assert [(c.name, c.values["daily_budget"]) for c in result.candidates] == [
        ("Prospecting JP", Decimal(5000))
    ]
    assert len(result.matched) == 1


def test_min_spend_keeps_thin_data_from_matching(worked_example: None) -> None:
    rule = dict(SCALE_WINNERS, safety={"min_spend": 50})
    assert sorted(c.name for c in _run(rule).matched) == ["A"]


def _boundary_data() -> None:
    """Two accounts, 48 campaigns whose ratios sit exactly on thresholds that floats
    cannot represent (ROAS 1.1, CTR 1.1 %, CPC 0.3 …), one day each (yesterday)."""
    spends, revenues = ("0", "10", "30", "33.3"), ("0", "11", "33", "99.9")
    clicks, impressions = (0, 11, 33), (1000, 3000)
    with write_session() as session:
        la = _account(session, "act_1", "USD", "America/Los_Angeles")
        tokyo = _account(session, "act_2", "JPY", "Asia/Tokyo")
        index = 0
        for account, today in ((la, LA_TODAY), (tokyo, TOKYO_TODAY)):
            for spend in spends:
                for revenue in revenues:
                    index += 1
                    campaign = _campaign(
                        session, account, f"c{index:02}", daily_budget_minor=1000 * index
                    )
                    _day(
                        session, campaign, today - timedelta(days=1), spend, revenue,
                        clicks=clicks[index % 3], impressions=impressions[index % 2],
                        conversions=index % 4,
                    )  # fmt: skip
            # a second day per account so that baselines over 2 days differ from 1
            for campaign in session.query(AdEntity).filter_by(account_id=account.id):
                _day(session, campaign, today - timedelta(days=2), "10", "11", clicks=11)


def _boundary_rules() -> list[dict]:
    rules = []
    for metric, thresholds in (
        ("roas", (1.1, 3, 0.33)),
        ("ctr", (1.1, 0.3667)),
        ("cpc", (0.3, 0.9091)),
        ("profit", (1, 3, 0, -0.1)),
        ("cpa", (3.33, 10)),
    ):
        for op in (">", ">=", "<", "<=", "=", "!="):
            for value in thresholds:
                rules.append({"metric": metric, "window": "yesterday", "op": op, "value": value})
        rules.append(
            {"metric": metric, "window": "yesterday", "op": "between", "value": [0.3, 1.1]}
        )
        rules.append(
            {"metric": metric, "window": "yesterday", "op": "not_between", "value": [1.1, 3]}
        )
        rules.append(
            {
                "metric": metric,
                "window": "yesterday",
                "op": ">=",
                "value": {"metric": metric, "window": "last_2d", "times": 1},
            }
        )
    rules.append({"any": [rules[0], {"all": [rules[5], rules[20]]}]})
    rules.append({"metric": "daily_budget", "op": "<=", "value": 11})
    # one rule per account: their money values are in its currency (USD, then JPY)
    return [
        dict(SCALE_WINNERS, name=f"r{i}{tag}", conditions=c,
             scope={"level": "campaign", "account_ids": [account]})
        for account, tag in (("act_1", ""), ("act_2", "jp"))
        for i, c in enumerate(rules)
    ]  # fmt: skip


def test_rules_judged_together_get_the_exact_verdict_of_each_alone(db: Engine) -> None:
    """All rules are pre-judged at once on floats; the verdicts must be the exact
    Decimal ones, also on thresholds floats cannot hold (ROAS 11/10 = 1.1 exactly)."""
    from core.rules.evaluate import evaluate_many

    _boundary_data()
    documents = [parse_rule(d) for d in _boundary_rules()]
    with read_session() as session:
        together = evaluate_many(session, documents, NOW)
        alone = [evaluate(session, document, NOW) for document in documents[::7]]
    for evaluation in together:
        fast = [c.entity_id for c in evaluation.matched]  # built from the pre-judged verdict
        exact = [c.entity_id for c in evaluation.candidates if c.matched]  # each judged exactly
        assert fast == exact, evaluation.rule.name
    for evaluation in alone:
        twin = together[documents.index(evaluation.rule)]
        assert [c.entity_id for c in evaluation.matched] == [c.entity_id for c in twin.matched]

    by_name = {e.rule.name: e for e in together}
    on_the_line = [r["name"] for r in _boundary_rules() if r["conditions"].get("op") == "="]
    # exact equality holds where floats would say 1.0999999999999999 ≠ 1.1
    assert all(by_name[name].matched for name in on_the_line[:2])
    roas_11 = next(
        c
        for c in by_name["r0"].candidates  # roas > 1.1: 11 / 10 is not more than 1.1
        if c.values["roas@yesterday"] == Decimal("1.1")
    )
    assert not roas_11.matched


def test_the_trace_says_its_verdicts_in_words(worked_example: None) -> None:
    result = _run(dict(SCALE_WINNERS, safety={"min_spend": 50}))
    by_name = {c.name: c for c in result.candidates}
    assert [c.reason for c in by_name["B"].conditions] == [
        "ROAS over the last 7 days is 2.10, not above 3",
        "profit over the last 7 days is 55.00 USD, not above 100.00 USD",
    ]
    assert by_name["B"].reasons == [c.reason for c in by_name["B"].conditions]
    assert [c.reason for c in by_name["A"].conditions] == [
        "ROAS over the last 7 days is 4.20, above 3",
        "profit over the last 7 days is 250.00 USD, above 100.00 USD",
    ]
    assert by_name["C"].reasons == [  # it met the conditions on too little spend
        "spend over the last 7 days is 45.00 USD, below the rule's minimum of 50.00 USD"
    ]
    trace = next(c for c in result.to_json()["candidates"] if c["name"] == "B")
    # the raw keys stay (pages and approvals read them); beside them, the words
    assert trace["values"] == {"profit@last_7d": "55", "roas@last_7d": "2.1"}
    assert trace["shown"] == {"profit@last_7d": "55.00 USD", "roas@last_7d": "2.10"}
    assert trace["currency"] == "USD" and result.to_json()["currency"] == "USD"
    assert trace["conditions"][0]["reason"] == "ROAS over the last 7 days is 2.10, not above 3"


def test_a_baseline_verdict_names_the_baseline(db: Engine) -> None:
    with write_session() as session:
        shop = _account(session, "act_1", "USD", "America/Los_Angeles")
        worsening = _campaign(session, shop, "worsening")
        for back in range(1, 31):
            day = LA_TODAY - timedelta(days=back)
            _day(session, worsening, day, "10", "30", conversions=1 if back <= 3 else 2)
    rule = dict(
        SCALE_WINNERS,
        conditions={"metric": "cpa", "window": "last_3d", "op": "<",
                    "value": {"metric": "cpa", "window": "last_30d", "times": 0.8}},
    )  # fmt: skip
    (candidate,) = _run(rule).candidates
    # 30 spent for 3 purchases (10.00); the baseline 0.8 × 300 / 57 = 4.21
    assert candidate.conditions[0].reason == (
        "cost per purchase over the last 3 days is 10.00 USD, not below 0.8 × its cost per "
        "purchase over the last 30 days (4.21 USD)"
    )
