"""The rule engine under pressure: concurrent runners and approvers, Meta failing,
rate limits, JPY money, notifications, the operators' SQL, and the CLI."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from core.access.actor import SYSTEM, Actor
from core.accounts import connect_account, get_account
from core.actions.approvals import ApprovalError, approve, approve_many, list_approvals
from core.actions.changes import change_of
from core.db import read_session, write_session
from core.db.models import AdAccount, Notification
from core.db.types import utcnow
from core.engine.run import run_due_rules, run_rule_now
from core.errors import InputError
from core.rules.store import save_rule
from core.sandbox import FaultConfig, SandboxServer
from core.scheduler.recovery import recover
from core.sync.runner import SyncOptions, sync_accounts
from tests.conftest import NOW
from tests.conftest import WORKED_EXAMPLE as SCENARIO
from tests.signed import ANA, BO, CY, person
from tests.test_engine import SCALE_WINNERS, actions, budgets

ROOT = Path(__file__).resolve().parent.parent


def test_two_runners_at_once_write_once(worked, db: Engine) -> None:  # type: ignore[no-untyped-def]
    save_rule(SCALE_WINNERS, now=NOW, by=SYSTEM)
    results: list[list] = []
    barrier = threading.Barrier(4)

    def runner(name: str) -> None:
        barrier.wait()
        results.append(run_due_rules(NOW + timedelta(seconds=1), runner=name))

    threads = [threading.Thread(target=runner, args=(f"runner-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(len(r) for r in results) == [0, 0, 0, 1]  # exactly one claimed the rule
    assert sorted(w.params["daily_budget"] for w in worked.state.write_log) == ["25000", "40000"]


def test_two_people_approving_at_once_execute_once(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule({**SCALE_WINNERS, "safety": {"require_approval": True}}, now=NOW, by=SYSTEM)
    run_rule_now(rule.id, NOW, by=SYSTEM)
    target = list_approvals(actor=ANA)[0]
    outcomes: list[str] = []
    barrier = threading.Barrier(3)

    def decide(who: Actor) -> None:
        barrier.wait()
        try:
            outcomes.append(approve(target.id, by=who, now=NOW).status)
        except ApprovalError as error:
            outcomes.append(f"refused: {error}")

    threads = [threading.Thread(target=decide, args=(who,)) for who in (ANA, BO, CY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(o.split(":")[0] for o in outcomes) == ["approved", "refused", "refused"]
    assert len(worked.state.write_log) == 1


def test_approving_many_sends_n_writes_in_n_over_50_requests(db: Engine, tmp_path: Path) -> None:
    n = 120
    day = {"days_ago": [1, 7], "spend": "10", "revenue": "5", "purchases": 1}
    ads = [{"id": str(6000 + i), "name": f"ad {i}", "days": [day]} for i in range(n)]
    scenario = tmp_path / "many.json"
    scenario.write_text(json.dumps({"accounts": [{
        "id": "act_3001", "name": "Many ads", "currency": "USD", "timezone": "America/New_York",
        "campaigns": [{"id": "3101", "name": "All", "daily_budget": 100000,
                       "adsets": [{"id": "4101", "name": "All", "ads": ads}]}],
    }]}))  # fmt: skip
    with SandboxServer(scenario=scenario, now=NOW) as server:
        connect_account("act_3001", server.token, graph_url=server.url, by=SYSTEM)
        sync_accounts(options=SyncOptions(days=8, breakdowns=False, now=NOW))
        rule = save_rule(
            {
                "name": "Pause losers, with approval",
                "scope": {"level": "ad", "account_ids": ["act_3001"]},
                "conditions": {"metric": "roas", "window": "last_7d", "op": "<", "value": 1},
                "actions": [{"type": "pause"}],
                "safety": {"require_approval": True, "max_daily_actions": 500},
            },
            now=NOW,
            by=SYSTEM,
        )
        run_rule_now(rule.id, NOW, by=SYSTEM)
        queued = list_approvals(actor=ANA)
        assert len(queued) == n and server.state.write_log == []
        with server.state.lock:
            server.state.request_log.clear()

        decisions = approve_many([q.id for q in queued], by=ANA, now=NOW + timedelta(minutes=1))

        assert [d.view.status for d in decisions if d.view] == ["approved"] * n
        with server.state.lock:
            log = list(server.state.request_log)
            writes = list(server.state.write_log)
    assert len(writes) == n
    carrying_writes = [r for r in log if "POST" in r.get("batch", [])]
    assert len(carrying_writes) == -(-n // 50)  # ⌈n/50⌉ = 3
    assert all(len(r["batch"]) <= 50 for r in log if "batch" in r)
    # the re-reads before (stale check) and after (refresh) are batched the same way
    assert len(log) == 3 * -(-n // 50)


def test_with_faults_on_nothing_runs_twice_and_everything_has_an_outcome(db: Engine) -> None:
    with SandboxServer(seed=5, now=NOW, faults=FaultConfig(seed=3)) as server:
        account = server.account_ids[0]
        connect_account(account, server.token, graph_url=server.url, by=SYSTEM)
        sync_accounts(
            options=SyncOptions(
                days=8, breakdowns=False, now=NOW, client_options={"poll_seconds": 0.01}
            )
        )
        rule = save_rule(
            {
                "name": "Trim spenders",
                "scope": {
                    "level": "ad",
                    "account_ids": [account],
                    "filters": [{"field": "effective_status", "op": "=", "value": "ACTIVE"}],
                },
                "conditions": {"metric": "spend", "window": "last_7d", "op": ">", "value": 0},
                "actions": [{"type": "pause"}],
                "safety": {"max_daily_actions": 50, "cooldown_minutes": 0},
            },
            now=NOW,
            by=SYSTEM,
        )
        server.set_faults(FaultConfig(rates={"5xx": 0.3, "transient": 0.2}, seed=11))
        result = run_rule_now(rule.id, NOW, by=SYSTEM)

        recorded = actions()
        assert result.entities_matched >= 10
        # a write answered 5xx / transient may have been applied: unknown, never re-sent
        assert {a.status for a in recorded} == {"succeeded", "unknown"}
        written = [w.object_id for w in server.state.write_log]
        assert len(written) == len(set(written))  # no entity written twice

        # settled by reading Meta's change history once it has had time to show them
        server.set_faults(FaultConfig())
        recover(utcnow() + timedelta(minutes=10), timedelta(minutes=10))
        recorded = actions()
        assert {a.status for a in recorded} == {"succeeded", "failed"}
        succeeded = {change_of(a).entity for a in recorded if a.status == "succeeded"}
        assert succeeded == set(written)  # Rex's record and Meta's state agree
        failed = [a for a in recorded if a.status == "failed"]
        assert all(a.error_message.startswith("not applied") for a in failed)
        assert len(server.state.write_log) == len(written)  # settling sent nothing


def test_a_rate_limit_defers_the_account_until_the_regain_time(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(SCALE_WINNERS, now=NOW, by=SYSTEM)
    worked.set_faults(FaultConfig(rates={"buc": 1.0}, regain_minutes=30))
    run_rule_now(rule.id, NOW, by=SYSTEM)
    assert {a.status for a in actions()} == {"failed"}
    assert get_account("act_2001").rate_limited_until is not None

    worked.set_faults(FaultConfig())
    later = run_rule_now(rule.id, NOW + timedelta(minutes=10), by=SYSTEM)
    assert all("rate-limits the account" in s.reason for s in later.steps)
    assert worked.state.write_log == []


def test_jpy_budgets_in_whole_yen(db: Engine) -> None:
    with SandboxServer(seed=2, now=NOW) as server:
        account = server.account_ids[1]  # JPY, Asia/Tokyo
        connect_account(account, server.token, graph_url=server.url, by=SYSTEM)
        sync_accounts(
            options=SyncOptions(
                days=8, breakdowns=False, now=NOW, client_options={"poll_seconds": 0.01}
            )
        )
        rule = save_rule(
            {
                "name": "Raise Tokyo ad sets by ¥500",
                "scope": {
                    "level": "adset",
                    "account_ids": [account],
                    "filters": [{"field": "name", "op": "contains", "value": "Prospecting"}],
                },
                "conditions": {"metric": "spend", "window": "last_3d", "op": ">", "value": 0},
                "actions": [{"type": "change_budget", "by_amount": 500}],
            },
            now=NOW,
            by=SYSTEM,
        )
        before = {e.id: e.daily_budget for e in server.state.entities.values() if e.daily_budget}
        run_rule_now(rule.id, NOW, by=SYSTEM)
        changed = {w.object_id: int(w.params["daily_budget"]) for w in server.state.write_log}
        assert changed and all(new == before[i] + 500 for i, new in changed.items())
        assert all(a.new_value.endswith(" JPY") and "." not in a.new_value for a in actions())


def test_notify_creates_an_in_app_notification(worked) -> None:  # type: ignore[no-untyped-def]
    rule = save_rule(
        {**SCALE_WINNERS, "actions": [{"type": "notify", "message": "Scale me"}]},
        now=NOW,
        by=SYSTEM,
    )
    run_rule_now(rule.id, NOW, by=SYSTEM)
    with read_session() as session:
        notes = session.scalars(select(Notification).order_by(Notification.id)).all()
    (note,) = notes  # one per run and account, its entities the lines
    assert note.title == "Scale winners: 2 campaigns matched" and note.body == "Scale me"
    lines = note.details["items"]
    assert [line.split(" (")[0] for line in lines] == ["A", "C"]
    assert all("ROAS, last 7 days" in line for line in lines)
    assert worked.state.write_log == []


def test_a_rule_for_a_platform_rex_cannot_act_on_is_refused(db: Engine) -> None:
    with write_session() as session:
        session.add(
            AdAccount(
                platform="google",
                external_id="act_77",
                name="G",
                currency="USD",
                timezone_name="UTC",
                account_status=1,
                token_encrypted="x",
            )
        )
    with pytest.raises(InputError) as caught:
        save_rule(
            {**SCALE_WINNERS, "scope": {"level": "campaign", "account_ids": ["act_77"]}}, by=SYSTEM
        )
    assert caught.value.field == "scope.account_ids[0]"
    assert "Meta accounts only" in caught.value.problem


def test_the_operators_queries_run_unchanged_on_postgresql(pg_db: Engine) -> None:
    with SandboxServer(scenario=SCENARIO) as server:
        connect_account("act_2001", server.token, graph_url=server.url, by=SYSTEM)
        sync_accounts(options=SyncOptions(days=15, breakdowns=False))
        rule = save_rule(SCALE_WINNERS, by=SYSTEM)
        # both writes refused by Meta (after a 5xx their outcome would be unknown)
        server.set_faults(FaultConfig(fail_next=["ads_rate"] * 10))
        run_rule_now(rule.id, by=SYSTEM)
    queries = [
        q for q in (ROOT / "tests" / "sql" / "operators.sql").read_text().split(";") if q.strip()
    ]  # the seed system's runbook, verbatim
    with pg_db.connect() as connection:
        runs, history, failures = (connection.execute(text(q)).mappings().all() for q in queries)
    assert [(r["name"], r["entities_checked"], r["entities_matched"]) for r in runs] == [
        ("Scale winners", 3, 2)
    ]
    assert {(h["entity_name"], h["action_type"], h["old_value"]) for h in history} == {
        ("A", "change_budget", "200.00 USD"),
        ("C", "change_budget", "320.00 USD"),
    }
    assert len(failures) == 2 and all(f["error_message"] for f in failures)


def test_cli_preview_run_approve_and_rollback(live) -> None:  # type: ignore[no-untyped-def]
    from tests.test_cli import rex

    document = {**SCALE_WINNERS, "safety": {"require_approval": True}}
    person("ana@example.com", admin=True)
    imported = rex("rules", "import", "-", stdin=json.dumps(document))
    assert imported.returncode == 1 and "say who acts: --as EMAIL" in imported.stderr
    assert rex("rules", "list").stdout.startswith("no rules yet")  # nothing saved
    rule_id = rex("rules", "import", "-", "--as", "ana@example.com",
                  stdin=json.dumps(document)).stdout.strip()  # fmt: skip

    preview = rex("rules", "preview", rule_id, "--all")
    assert preview.returncode == 0, preview.stderr
    assert "candidates match now" in preview.stdout and "· 3002 B" in preview.stdout
    every = rex("rules", "preview")  # every active rule, one pass
    assert every.returncode == 0, every.stderr
    assert re.search(rf"^{rule_id}\s+Scale winners\s+campaign\s+3\s+2\s*$", every.stdout, re.M)

    ran = rex("run", "--rule", rule_id, "--as", "ana@example.com")
    assert ran.returncode == 0, ran.stderr
    assert "queued: change_budget A 200.00 USD → 250.00 USD" in ran.stdout

    pending = rex("approvals", "list").stdout
    approval_id = pending.splitlines()[1].split()[0]
    approved = rex("approvals", "approve", approval_id, "999", "--as", "ana@example.com")
    assert approved.returncode == 1  # one of the two could not be decided …
    assert "proposal 999: no pending action with id 999" in approved.stderr
    assert f"proposal {approval_id}: approved" in approved.stdout  # … the other was
    action_id = approved.stdout.split("(action ")[1].rstrip(")\n")

    rolled = rex("actions", "rollback", action_id, "--as", "ana@example.com")
    assert rolled.returncode == 0, rolled.stderr
    assert budgets(live)["A"] == 20_000
