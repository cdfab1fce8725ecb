"""Meta's answers are validated at the boundary: garbage is refused with the field named.

At connect the whole answer is refused and nothing is stored. In a sync, the account's
own answer must be usable whole; of the objects and rows it lists, only the bad ones are
refused — counted, with reasons, in the run — and the rest is stored. The lies come from
`tests.hostile`, a proxy in front of the sandbox, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from core.access.actor import SYSTEM
from core.accounts import connect_account, get_account
from core.db import read_session
from core.db.models import AdAccount, AdEntity, AdHourlyInsight, AdMetric, SyncRun
from core.meta.errors import UnexpectedResponseError
from core.meta.objects import AccountInfo, CopyResult, EntityInfo, InsightRow, InvalidAnswerError
from tests.hostile import Behaviour, Hostile, Request, edge, rewrite, rewrite_items
from tests.test_cli import rex
from tests.test_sync import USD, count, snapshot, sync

OTHER_ACCOUNT = "9000000038"


def account_read(request: Request) -> bool:
    """GET of the USD ad account itself."""
    return request.method == "GET" and request.node == [USD]


def batch(request: Request) -> bool:
    return request.method == "POST" and not request.node and bool(request.batch_items)


def lie(field: str, value: Any):  # type: ignore[no-untyped-def]
    """The account answer with one field changed (an id change is consistent with itself)."""

    def change(body: dict) -> dict:
        changed = {**body, field: value}
        if field == "id":
            changed["account_id"] = value.removeprefix("act_")
        return changed

    return rewrite(change)


def stored(model: Any, *columns: Any) -> list[tuple]:
    with read_session() as session:
        return [tuple(row) for row in session.execute(select(*columns).select_from(model))]


# ------------------------------------------------------------- the typed objects


ENTITY = {"id": "120000000000014", "name": "Broad", "status": "ACTIVE", "daily_budget": "15000"}
ROW = {"date_start": "2026-11-19", "date_stop": "2026-11-19", "ad_id": "5", "spend": "1.50"}
RANGE = {"since": date(2026, 11, 18), "until": date(2026, 11, 20)}
ACCOUNT = {"id": "act_1", "currency": "USD", "timezone_name": "America/Los_Angeles"}


def parse(kind: str, changes: dict[str, Any], **options: Any) -> object:
    """Parse one of the examples above with `changes` applied."""
    if kind in ("campaign", "adset", "ad"):
        return EntityInfo.from_graph(kind, {**ENTITY, **changes})
    if kind == "row":
        return InsightRow.from_graph({**ROW, **changes}, **options)
    if kind == "account":
        return AccountInfo.from_graph({**ACCOUNT, **changes})
    return CopyResult.from_graph("ad", changes)


@pytest.mark.parametrize(
    ("kind", "changes", "field"),
    [
        ("adset", {"daily_budget": "-500"}, "daily_budget"),
        ("adset", {"daily_budget": "12.5"}, "daily_budget"),
        ("adset", {"lifetime_budget": 2**63}, "lifetime_budget"),
        ("adset", {"id": None}, "id"),
        ("adset", {"id": "None"}, "id"),
        ("ad", {"adset_id": "act_1"}, "adset_id"),
        ("adset", {"status": ["ACTIVE"]}, "status"),
        ("adset", {"status": "RUNNING"}, "status"),
        ("adset", {"effective_status": ["ACTIVE"]}, "effective_status"),
        ("adset", {"created_time": "yesterday"}, "created_time"),
        ("row", {"spend": "-3.50"}, "spend"),
        ("row", {"spend": "NaN"}, "spend"),
        ("row", {"spend": "1e12"}, "spend"),
        ("row", {"spend": 1.5}, "spend"),  # a float is no money
        ("row", {"impressions": "-1"}, "impressions"),
        ("row", {"impressions": str(10**30)}, "impressions"),
        ("row", {"clicks": "1e400"}, "clicks"),
        ("row", {"date_start": "19/11/2026"}, "date_start"),
        ("row", {"ad_id": None, "campaign_id": "x1"}, "campaign_id"),
        ("account", {"currency": ""}, "currency"),
        ("account", {"currency": "US"}, "currency"),
        ("account", {"currency": "XYZ"}, "currency"),
        ("account", {"currency": "KWD"}, "currency"),  # ISO 4217, but not one of Meta's
        ("account", {"timezone_name": "Mars/Olympus"}, "timezone_name"),
        ("account", {"timezone_name": None}, "timezone_name"),
        ("account", {"account_id": "2"}, "account_id"),
        ("account", {"min_daily_budget": 10**30}, "min_daily_budget"),
        ("copy", {"copied_ad_id": "null"}, "copied_ad_id"),
    ],
)
def test_values_rex_must_not_keep_are_refused_naming_the_field(
    kind: str, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidAnswerError) as raised:
        parse(kind, changes)
    assert isinstance(raised.value, UnexpectedResponseError)  # a GraphError like Meta's own
    assert raised.value.field == field
    assert f"[field {field}]" in raised.value.explain()


@pytest.mark.parametrize(
    ("changes", "breakdowns", "field"),
    [
        ({"date_start": "1900-01-01"}, (), "date_start"),
        ({"date_stop": "2026-11-21"}, (), "date_stop"),
        ({"age": None}, ("age",), "age"),
    ],
)
def test_an_insights_row_outside_the_range_asked_or_without_its_segment_is_refused(
    changes: dict[str, Any], breakdowns: tuple[str, ...], field: str
) -> None:
    with pytest.raises(InvalidAnswerError) as raised:
        parse("row", changes, breakdowns=breakdowns, **RANGE)
    assert raised.value.field == field


def test_well_formed_values_are_kept_and_converted() -> None:
    entity = EntityInfo.from_graph(
        "adset", {**ENTITY, "effective_status": "SOME_NEW_STATE", "lifetime_budget": "0"}
    )
    assert entity.effective_status == "SOME_NEW_STATE"  # Meta adds statuses: kept as text
    assert (entity.daily_budget_minor, entity.lifetime_budget_minor) == (15000, None)
    row = parse("row", {"impressions": "12.0", "spend": "0.1"}, **RANGE)
    assert (row.impressions, row.spend_micros) == (12, 100_000)
    account = AccountInfo.from_graph({**ACCOUNT, "currency": "jpy", "min_daily_budget": 100})
    assert (account.currency, account.min_daily_budget_minor) == ("JPY", 100)


# ------------------------------------------------------------------- connect


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("currency", ""),
        ("currency", "US"),
        ("currency", "XYZ"),
        ("timezone_name", "Mars/Olympus"),
        ("id", f"act_{OTHER_ACCOUNT}"),
        ("min_daily_budget", 10**30),
    ],
)
def test_connect_refuses_an_answer_rex_cannot_use_and_stores_nothing(
    db: Engine, sandbox, field: str, value: Any
) -> None:  # type: ignore[no-untyped-def]
    with Hostile(sandbox.url) as hostile:
        hostile.add(Behaviour(account_read, lie(field, value)))
        with pytest.raises(InvalidAnswerError) as raised:
            connect_account(USD, sandbox.token, graph_url=hostile.url, by=SYSTEM)

    assert raised.value.field == field
    assert count(AdAccount) == 0


def test_accounts_add_names_the_field_of_an_overflowing_answer(
    db: Engine, cli_admin: str, sandbox
) -> None:  # type: ignore[no-untyped-def]
    with Hostile(sandbox.url) as hostile:
        hostile.add(Behaviour(account_read, lie("min_daily_budget", 10**30)))
        added = rex(
            "accounts", "add", "--account", USD, "--graph-url", hostile.url, "--token-stdin",
            stdin=sandbox.token + "\n",
        )  # fmt: skip

    assert added.returncode == 1
    assert "Traceback" not in added.stderr
    assert "min_daily_budget" in added.stderr
    assert count(AdAccount) == 0


# ---------------------------------------------------------------------- sync


@pytest.mark.parametrize(
    ("field", "value"),
    [("timezone_name", "Mars/Olympus"), ("id", f"act_{OTHER_ACCOUNT}"), ("currency", "JPY")],
)
def test_a_sync_refuses_an_account_answer_rex_cannot_use_and_keeps_what_is_stored(
    db: Engine, sandbox, field: str, value: str
) -> None:  # type: ignore[no-untyped-def]
    with Hostile(sandbox.url) as hostile:
        connect_account(USD, sandbox.token, graph_url=hostile.url, by=SYSTEM)
        before = get_account(USD)
        hostile.add(Behaviour(account_read, lie(field, value)))
        result = sync(USD, breakdowns=False)[0]

    assert not result.ok
    assert f"[field {field}]" in result.error
    after = get_account(USD)
    assert (after.external_id, after.currency, after.timezone_name) == (
        before.external_id, before.currency, before.timezone_name,
    )  # fmt: skip
    assert stored(SyncRun, SyncRun.status) == [("failed",)]
    assert count(AdEntity) == 0  # the sync stopped before reading anything else


def test_garbage_entities_are_refused_one_by_one_and_the_rest_is_stored(
    db: Engine, sandbox
) -> None:  # type: ignore[no-untyped-def]
    sent: dict[str, Any] = {}

    def spoil(page: dict) -> dict:
        data = page["data"]
        sent["ids"] = [item["id"] for item in data]
        sent["new_status"] = data[3]["id"]
        return {
            **page,
            "data": [
                {**data[0], "daily_budget": "-500"},
                {**data[1], "id": None},
                {**data[2], "status": ["ACTIVE"]},
                {**data[3], "effective_status": "SOME_NEW_STATE"},
                *data[4:],
            ],
        }

    with Hostile(sandbox.url) as hostile:
        connect_account(USD, sandbox.token, graph_url=hostile.url, by=SYSTEM)
        hostile.add(Behaviour(edge("adsets"), rewrite(spoil)))
        result = sync(USD, breakdowns=False)[0]

    assert result.ok, result.error
    rejected = result.counts["rejected"]
    assert (rejected["adset"], rejected["total"]) == (3, 3)
    for reason, field in zip(rejected["reasons"], ("daily_budget", "id", "status"), strict=True):
        assert reason.endswith(f"[field {field}]"), reason
    assert result.error.startswith("warning: refused 3")
    view = get_account(USD)
    assert (view.last_sync_status, view.last_sync_error) == ("succeeded", result.error)
    with read_session() as session:
        run = session.scalars(select(SyncRun)).one()
        adsets = dict(
            session.execute(
                select(AdEntity.external_id, AdEntity.effective_status).where(
                    AdEntity.level == "adset"
                )
            ).all()
        )
        lowest = session.scalar(select(func.min(AdEntity.daily_budget_minor)))
        statuses = set(session.scalars(select(AdEntity.status).distinct()))
    assert (run.status, run.error, run.counts["rejected"]["total"]) == (
        "succeeded",
        result.error,
        3,
    )
    assert set(adsets) == set(sent["ids"][3:])  # the three refused ones are not stored
    assert adsets[sent["new_status"]] == "SOME_NEW_STATE"
    assert lowest > 0 and statuses <= {"ACTIVE", "PAUSED", "ARCHIVED", "DELETED"}


def test_a_refused_entity_keeps_the_row_already_stored(db: Engine, sandbox) -> None:  # type: ignore[no-untyped-def]
    with Hostile(sandbox.url) as hostile:
        connect_account(USD, sandbox.token, graph_url=hostile.url, by=SYSTEM)
        assert sync(USD, breakdowns=False)[0].ok
        with read_session() as session:
            adset = session.scalars(
                select(AdEntity).where(
                    AdEntity.level == "adset", AdEntity.daily_budget_minor.is_not(None)
                )
            ).first()
        before = snapshot()["ad_entities"]

        def spoil(item: dict) -> dict:
            return {**item, "daily_budget": "-500"} if item.get("id") == adset.external_id else item

        # garbage for it on the edge, and again when Rex reads it by id
        hostile.add(
            Behaviour(
                edge("adsets"), rewrite(lambda p: {**p, "data": [spoil(i) for i in p["data"]]})
            )
        )
        hostile.add(Behaviour(batch, rewrite_items(spoil)))
        result = sync(USD, breakdowns=False)[0]

    assert result.ok, result.error
    assert result.counts["rejected"]["adset"] == 2  # listed, then read by id
    assert snapshot()["ad_entities"] == before  # not changed, not marked deleted


def test_garbage_insights_rows_are_refused_and_every_later_sync_still_works(
    db: Engine, sandbox
) -> None:  # type: ignore[no-untyped-def]
    sent: dict[str, int] = {}

    def spoil(page: dict) -> dict:
        data = page["data"]
        sent["rows"] = len(data)
        return {
            **page,
            "data": [
                {**data[0], "date_start": "1900-01-01", "date_stop": "1900-01-01"},
                {**data[1], "spend": "-3.50"},
                {**data[2], "impressions": str(10**30)},
                {**data[3], "account_id": OTHER_ACCOUNT},
                *data[4:],
            ],
        }

    def garbage_once() -> Behaviour:  # the first insights read: campaign level
        return Behaviour(edge("insights"), rewrite(spoil), times=1)

    campaigns = select(AdEntity.id).where(AdEntity.level == "campaign")
    with Hostile(sandbox.url) as hostile:
        connect_account(USD, sandbox.token, graph_url=hostile.url, by=SYSTEM)
        hostile.add(garbage_once())
        first = sync(USD, breakdowns=False)[0]

        assert first.ok, first.error
        assert first.counts["rejected"] == {
            "total": 4, "metrics": 4, "reasons": first.counts["rejected"]["reasons"],
        }  # fmt: skip
        reasons = " ".join(first.counts["rejected"]["reasons"])
        for field in ("date_start", "spend", "impressions", "account_id"):
            assert field in reasons
        with read_session() as session:
            kept = session.scalar(
                select(func.count()).select_from(AdMetric).where(AdMetric.entity_id.in_(campaigns))
            )
            days = session.execute(select(func.min(AdMetric.date), func.max(AdMetric.date))).one()
            least = session.execute(
                select(func.min(AdMetric.spend_micros), func.max(AdMetric.impressions))
            ).one()
        assert kept == sent["rows"] - 4
        assert (days[0], days[1]) == (first.since, first.until)
        assert least[0] >= 0 and least[1] < 10**15

        hostile.add(garbage_once())
        assert sync(USD, breakdowns=False)[0].ok  # no IntegrityError from a stored 1900 row

        assert sync(USD, breakdowns=False)[0].ok  # Meta answers sensibly again: all stored
        complete = snapshot()["ad_metrics"]
        hostile.add(garbage_once())
        again = sync(USD, breakdowns=False)[0]

    assert again.ok, again.error
    assert snapshot()["ad_metrics"] == complete  # the good rows of the refused ones are kept
    assert (again.counts["metrics"]["kept"], again.counts["metrics"]["deleted"]) == (4, 0)


def test_a_breakdown_value_that_is_no_hour_is_refused(db: Engine, sandbox) -> None:  # type: ignore[no-untyped-def]
    hourly = "hourly_stats_aggregated_by_advertiser_time_zone"

    def spoil(page: dict) -> dict:
        data = page["data"]
        return {
            **page,
            "data": [{**data[0], hourly: "25:00:00 - 25:59:59"}, {**data[1], hourly: "lunch"},
                     *data[2:]],
        }  # fmt: skip

    def hourly_read(request: Request) -> bool:
        return edge("insights")(request) and hourly in request.query.get("breakdowns", "")

    with Hostile(sandbox.url) as hostile:
        connect_account(USD, sandbox.token, graph_url=hostile.url, by=SYSTEM)
        hostile.add(Behaviour(hourly_read, rewrite(spoil), times=1))
        result = sync(USD, days=1)[0]

    assert result.ok, result.error
    assert result.counts["rejected"]["hourly"] == 2
    hours = {hour for (hour,) in stored(AdHourlyInsight, AdHourlyInsight.hour)}
    assert hours and hours <= set(range(24))
