"""A fault run: the rule engine against a sandbox that fails, lies and loses answers, with
runners killed at random moments — then the record is compared with what Meta applied.

    run_faults(engine, slots=12, seed=1)  → FaultRunReport

Each slot, the due rules run in a child process (`python -c …`, the same code the
scheduler runs) on a clock of their own; a seeded coin decides whether the child is
SIGKILLed part-way through. Then recovery runs, as the scheduler's job would, and the
clock moves on. The sandbox keeps the same clock, so its change history, its day and
its "4 budget changes an hour" limit follow the run.

Faults: the sandbox's own (5xx and transient errors that apply nothing; writes applied
and then answered 502 / `"success": "true"` / a `null` batch item; `null` batch items
that apply nothing; rate limits), and the hostile proxy's (connections dropped after a
write was applied, batch answers of the wrong length, a change history that shows
changes only four minutes late).

At the end, with faults off, recovery settles what is left; the report counts every
write the sandbox applied, every action on Rex's record, and the mismatches between
them — and whether any rule's cooldown or daily cap was exceeded by what Meta applied.

Run a bigger one and print its figures: `.venv/bin/python -m tests.fault_run --slots 40`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select

from core.access.actor import SYSTEM
from core.accounts import connect_account
from core.actions.changes import change_of
from core.db import read_session
from core.db.models import ActionHistory, AdAccount, AutomationRule
from core.meta.objects import parse_meta_time
from core.rules.store import save_rule
from core.sandbox import FaultConfig, SandboxServer
from core.scheduler.recovery import recover
from core.sync.runner import SyncOptions, sync_accounts
from tests.hostile import Behaviour, Hostile, drop, edge, rewrite, writes

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "act_1010000001"  # the sandbox's USD account (Los Angeles)
SLOT = timedelta(minutes=11)  # longer than a runner's lease (10 min)
HISTORY_LAG = timedelta(minutes=4)  # Meta's change history shows a change this late
NIGHT = timedelta(hours=7)

RULES = [
    {
        "name": "Raise spenders",
        "scope": {"level": "adset", "account_ids": [ACCOUNT]},
        "conditions": {"metric": "spend", "window": "last_7d", "op": ">", "value": 0},
        "actions": [{"type": "change_budget", "by_percent": 10, "max": 1000}],
        "schedule": {"every_minutes": 10},
        "safety": {"max_daily_actions": 12, "cooldown_minutes": 30},
    },
    {
        "name": "Trim low ROAS",
        "scope": {"level": "adset", "account_ids": [ACCOUNT]},
        "conditions": {"metric": "roas", "window": "last_7d", "op": "<", "value": 3},
        "actions": [{"type": "change_budget", "by_percent": -8, "min": 5}],
        "schedule": {"every_minutes": 10},
        "safety": {"max_daily_actions": 10, "cooldown_minutes": 20},
    },
    {
        "name": "Pause weak ads",
        "scope": {"level": "ad", "account_ids": [ACCOUNT]},
        "conditions": {"metric": "ctr", "window": "last_7d", "op": "<", "value": 1.6},
        "actions": [{"type": "pause"}],
        "schedule": {"every_minutes": 10},
        "safety": {"max_daily_actions": 15, "cooldown_minutes": 0},
    },
    {
        "name": "Resume ads that spent",
        "scope": {"level": "ad", "account_ids": [ACCOUNT]},
        "conditions": {"metric": "spend", "window": "last_30d", "op": ">", "value": 0},
        "actions": [{"type": "resume"}],
        "schedule": {"every_minutes": 10},
        "safety": {"max_daily_actions": 15, "cooldown_minutes": 0},
    },
    {
        "name": "Copy the best ad set",
        "scope": {"level": "adset", "account_ids": [ACCOUNT]},
        "conditions": {"metric": "roas", "window": "last_7d", "op": ">", "value": 4},
        "actions": [{"type": "duplicate", "name_suffix": " (Rex copy)"}],
        "schedule": {"every_minutes": 10},
        "safety": {"max_daily_actions": 3, "cooldown_minutes": 60},
    },
]

SANDBOX_FAULTS = {
    "5xx": 0.06,
    "transient": 0.04,
    "lost_5xx": 0.06,
    "lost_success": 0.04,
    "lost_item": 0.05,
    "batch_null": 0.04,
}  # no rate limits: their regain time is on the real clock, which this run does not move

CHILD = """
import sys
from datetime import datetime
from core.engine.run import run_due_rules
print("ready", flush=True)
sys.stdin.readline()
run_due_rules(datetime.fromisoformat(sys.argv[1]), runner=sys.argv[2])
print("done", flush=True)
"""


@dataclass
class FaultRunReport:
    slots: int = 0
    kills: int = 0
    writes_applied: int = 0  # what the sandbox's write log holds
    actions_recorded: int = 0  # rows of action_history that carry a write
    by_status: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    settled_by: Counter[str] = field(default_factory=Counter)
    mismatches: list[str] = field(default_factory=list)  # the record says what did not happen
    unsettled: list[str] = field(default_factory=list)  # left pending / sending / unknown
    cap_violations: list[str] = field(default_factory=list)
    needs_person: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "slots": self.slots,
            "runners killed": self.kills,
            "writes Meta applied": self.writes_applied,
            "actions on the record": self.actions_recorded,
            "by status": dict(self.by_status),
            "faults injected": sum(self.faults.values()),
            "faults by kind": dict(self.faults),
            "settled by": dict(self.settled_by),
            "left for a person": self.needs_person,
            "mismatches": len(self.mismatches),
            "left unsettled": len(self.unsettled),
            "cap or cooldown violations": len(self.cap_violations),
        }


class _Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def _one_answer_short(answer: Any) -> Any:
    """A batch answer one item short (a copy's answer loses its id)."""
    return answer[:-1] if isinstance(answer, list) else {}


def _lagging_history(clock: _Clock):  # type: ignore[no-untyped-def]
    """Meta's change history, showing only changes older than HISTORY_LAG."""

    def hide_recent(page: Any) -> Any:
        if not isinstance(page, dict) or not isinstance(page.get("data"), list):
            return page
        shown = []
        for item in page["data"]:
            when = parse_meta_time(item.get("event_time"))
            if when is None or when <= clock.now - HISTORY_LAG:
                shown.append(item)
        return {**page, "data": shown}

    return rewrite(hide_recent)


def run_faults(
    engine: Engine, *, slots: int = 12, seed: int = 1, kill_rate: float = 0.5
) -> FaultRunReport:
    rng = random.Random(seed)
    start = (datetime.now(UTC) + timedelta(days=1)).replace(second=0, microsecond=0)
    clock = _Clock(start)
    report = FaultRunReport(slots=slots)
    with SandboxServer(seed=seed, now=clock) as server, Hostile(server.url, seed=seed) as proxy:
        connect_account(ACCOUNT, server.token, graph_url=proxy.url, by=SYSTEM)
        sync_accounts([ACCOUNT], options=SyncOptions(days=8, breakdowns=False, now=clock.now))
        rule_ids = [save_rule(rule, now=clock.now, by=SYSTEM).id for rule in RULES]
        proxy.add(Behaviour(edge("activities"), _lagging_history(clock)))
        lies = [
            proxy.add(Behaviour(writes, drop, rate=0.04)),
            proxy.add(Behaviour(writes, rewrite(_one_answer_short), rate=0.03)),
        ]
        lasts = 0.5  # how long a whole run took last: kills land inside a run's time
        for slot in range(slots):
            server.set_faults(FaultConfig(rates=SANDBOX_FAULTS, seed=seed * 1000 + slot,
                                          latency_ms=rng.choice((0, 20, 60))))  # fmt: skip
            kill_after = rng.uniform(0.02, 0.6 * lasts) if rng.random() < kill_rate else None
            killed, took = _run_slot(clock.now, f"child-{slot}", kill_after)
            report.kills += killed
            lasts = lasts if killed else max(0.1, took)
            report.faults.update(server.faults.injected)
            clock.now += SLOT
            server.set_faults(FaultConfig())
            recover(clock.now, timedelta(minutes=10), engine=engine)
            if slot % 8 == 7:  # on to later in the day, or the next day: caps start over
                clock.now += NIGHT
            if slot % 4 == 3:  # the numbers move on: a recent sync, as the scheduler does
                sync_accounts([ACCOUNT], options=SyncOptions(days=2, breakdowns=False,
                                                             now=clock.now))  # fmt: skip
        for lie in lies:
            report.faults[f"proxy:{lie.act.__qualname__.split('.')[0]}"] += lie.used
        for _ in range(3):  # faults off: what is left is settled
            clock.now += SLOT
            recover(clock.now, timedelta(minutes=10), engine=engine)
        _compare(server, rule_ids, report, engine)
    return report


def _run_slot(now: datetime, runner: str, kill_after: float | None) -> tuple[bool, float]:
    """One runner process for the slot, SIGKILLed `kill_after` seconds into its run
    (when given and it is still running then); (killed?, seconds the run took)."""
    with tempfile.TemporaryFile("w+") as errors:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, now.isoformat(), runner],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,  # a file: the child's log lines never fill a pipe and block it
            text=True,
            env=dict(os.environ),
        )
        assert child.stdout is not None and child.stdin is not None
        if child.stdout.readline().strip() != "ready":
            child.wait(30)
            errors.seek(0)
            raise RuntimeError(f"the runner did not start: {errors.read()[-2000:]}")
        child.stdin.write("go\n")
        child.stdin.flush()
        started = time.monotonic()
        if kill_after is not None:
            time.sleep(kill_after)
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
                child.wait(30)
                time.sleep(0.5)  # a call in flight is answered (Meta does not wait minutes)
                return True, time.monotonic() - started
        child.communicate(timeout=300)
        took = time.monotonic() - started
        if child.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"the runner failed: {errors.read()[-2000:]}")
    return False, took


# ----------------------------------------------------------------------- comparing


def _compare(
    server: SandboxServer, rule_ids: list[int], report: FaultRunReport, engine: Engine
) -> None:
    with server.state.lock:
        applied = [w for w in server.state.write_log]
    report.writes_applied = len(applied)
    with read_session(engine) as session:
        rows = [
            r
            for r in session.scalars(select(ActionHistory).order_by(ActionHistory.id))
            if (change := change_of(r)) is not None and change.write is not None
        ]
        rules = {r.id: r for r in session.scalars(select(AutomationRule))}
        zone = ZoneInfo(session.scalars(select(AdAccount.timezone_name)).first() or "UTC")
    report.actions_recorded = len(rows)
    report.by_status = Counter(r.status for r in rows)
    report.settled_by = Counter(
        (r.details or {}).get("settle", {}).get("evidence", "answer") for r in rows
        if r.status in ("succeeded", "failed")
    )  # fmt: skip
    report.needs_person = sum(
        1 for r in rows if ((r.details or {}).get("settle") or {}).get("needs_person")
    )

    # Each applied write is the intent of its slot that asked for exactly that change.
    def key(path: str, params: dict[str, Any], at: datetime) -> tuple:
        change = {k: str(v) for k, v in params.items() if k in ("status", "daily_budget",
                                                                  "lifetime_budget")}  # fmt: skip
        return (path, json.dumps(change, sort_keys=True), at.replace(microsecond=0))

    # an update that set what the object already had changed nothing: either verdict holds
    truth: Counter[tuple] = Counter(key(w.path, w.params, w.at) for w in applied if w.changed)
    no_ops = {key(w.path, w.params, w.at) for w in applied if not w.changed}
    claimed: dict[tuple, list[ActionHistory]] = defaultdict(list)
    for row in rows:
        write = change_of(row).write
        claimed[key(write.path, write.params, row.created_at)].append(row)
    for k, count in truth.items():
        if count > 1:
            report.mismatches.append(f"{k} applied {count} times (sent twice)")
        owners = claimed.get(k, [])
        succeeded = [r for r in owners if r.status == "succeeded"]
        for_person = [r for r in owners if (r.details.get("settle") or {}).get("needs_person")]
        if len(succeeded) != 1 and not for_person:
            report.mismatches.append(
                f"{k} applied, recorded {[r.status for r in owners] or 'nowhere'}"
            )
    for k, owners in claimed.items():
        for row in owners:
            if row.status == "succeeded" and k not in truth and k not in no_ops:
                report.mismatches.append(f"action {row.id} recorded succeeded, never applied")
            if row.status in ("pending", "sending") or (
                row.status == "unknown"
                and not (row.details.get("settle") or {}).get("needs_person")
            ):
                report.mismatches.append(f"action {row.id} left {row.status}")

    # What Meta applied, per rule: within the cooldown and the daily cap.
    applied_by_rule: dict[tuple[int, int], list[datetime]] = defaultdict(list)
    per_day: Counter[tuple[int, str]] = Counter()
    for row in rows:
        if row.status == "succeeded" and row.rule_id:
            applied_by_rule[(row.rule_id, row.entity_id or 0)].append(row.created_at)
            per_day[(row.rule_id, row.created_at.astimezone(zone).date().isoformat())] += 1
    for (rule_id, entity_id), times in applied_by_rule.items():
        cooldown = timedelta(minutes=rules[rule_id].document["safety"].get("cooldown_minutes", 0))
        times.sort()
        for earlier, later in zip(times, times[1:], strict=False):
            if cooldown and later - earlier < cooldown:
                report.cap_violations.append(
                    f"rule {rule_id} changed entity {entity_id} at {earlier} and {later}"
                )
    for (rule_id, day), count in per_day.items():
        cap = rules[rule_id].document["safety"].get("max_daily_actions", 10)
        if count > cap:
            report.cap_violations.append(
                f"rule {rule_id} made {count} changes on {day} (cap {cap})"
            )


def main() -> int:  # pragma: no cover - a command for people
    import argparse

    from core.db import migrate
    from core.db.engine import get_engine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--database", help="an empty database (default: a new SQLite file in a temporary "
        "directory); the run compares everything on its record with what Meta applied"
    )  # fmt: skip
    args = parser.parse_args()
    database = args.database or f"sqlite:///{tempfile.mkdtemp()}/fault-run.db"
    os.environ["REX_DATABASE_URL"] = database
    os.environ.setdefault("REX_GRAPH_TIMEOUT_SECONDS", "10")
    from core.settings import reload_settings

    reload_settings()
    migrate.upgrade("head", url=database)
    engine = get_engine(database)
    with read_session(engine) as session:
        if session.scalar(select(func.count(AutomationRule.id))):
            print(
                f"{database} already holds rules and actions: a fault run needs an empty "
                "database (leave out --database for a new SQLite file)",
                file=sys.stderr,
            )
            return 2  # fmt: skip
    report = run_faults(engine, slots=args.slots, seed=args.seed)
    print(json.dumps(report.as_dict(), indent=2))
    for line in report.mismatches + report.unsettled + report.cap_violations:
        print(line)
    return 1 if report.mismatches or report.unsettled or report.cap_violations else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
