"""Sync time: a full sync of six small accounts, reports one after another vs at once.

    .venv/bin/python bench/sync.py [--report-seconds S] [--concurrency N] [--runs N]

The sandbox (`SandboxServer`, in a process of its own, as Meta is not in Rex's) serves
six accounts from a scenario (USD, EUR, GBP, JPY, AUD, BRL in their own time zones;
3 campaigns × 2 ad sets × 3 ads each, 60 days of numbers). Each run connects them into
a throwaway SQLite database and times one full sync, `REX_SYNC_DAYS` 30 with breakdowns
— nine async insights reports per account (three metric levels, six breakdown calls),
each polled as Rex polls Meta (from 0.5 s, ×1.5).
`--report-seconds` is how long each report runs at the sandbox before its polls move on
(default 1 s, a small report at Meta; 0: it completes on its second poll, the sandbox's
own behaviour).

The baseline, in the same run, is the same sync with REX_SYNC_ASYNC_CONCURRENCY=1 (the
reports one after another, as before); then the default concurrency (or
`--concurrency`). Each run has its own database and sandbox (its clock set to the same
instant), and all must store the same rows.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.access.actor import SYSTEM

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ACCOUNTS = (
    ("act_3100000001", "USD", "America/Los_Angeles"),
    ("act_3100000002", "EUR", "Europe/Berlin"),
    ("act_3100000003", "GBP", "Europe/London"),
    ("act_3100000004", "JPY", "Asia/Tokyo"),
    ("act_3100000005", "AUD", "Australia/Sydney"),
    ("act_3100000006", "BRL", "America/Sao_Paulo"),
)


def scenario() -> dict[str, Any]:
    """Six small accounts; every ad has numbers on each of the last 60 days."""
    accounts = []
    next_id = 7_000_000
    for a, (account_id, currency, timezone) in enumerate(ACCOUNTS):
        unit = 100 if currency == "JPY" else 1  # money in major units, whole yen
        campaigns = []
        for c in range(3):
            adsets = []
            for s in range(2):
                ads = []
                for d in range(3):
                    n = a * 18 + c * 6 + s * 3 + d
                    days = [
                        {
                            "days_ago": [first, last],
                            "spend": str((12 + n % 7 + k) * unit),
                            "revenue": str((30 + (n * 7) % 40 + 3 * k) * unit),
                            "purchases": 1 + (n + k) % 3,
                            "impressions": 1500 + 37 * n + 100 * k,
                            "clicks": 30 + n % 11 + k,
                            "reach": 1100 + 29 * n + 80 * k,
                        }
                        for k, (first, last) in enumerate(((59, 30), (29, 8), (7, 0)))
                    ]
                    next_id += 1
                    ads.append({"id": str(next_id), "name": f"Ad {c}{s}{d}", "days": days})
                next_id += 1
                adsets.append(
                    {
                        "id": str(next_id),
                        "name": f"Ad set {c}{s}",
                        "daily_budget": (40 + 10 * s) * 100,
                        "ads": ads,
                    }
                )
            next_id += 1
            campaigns.append({"id": str(next_id), "name": f"Campaign {c}", "adsets": adsets})
        accounts.append(
            {
                "id": account_id,
                "name": f"Bench {currency}",
                "currency": currency,
                "timezone": timezone,
                "campaigns": campaigns,
            }
        )
    return {"description": "bench/sync.py: six small accounts", "accounts": accounts}


def serve(conn: Any, report_seconds: float, now: datetime) -> None:
    """The sandbox, in its own process: announces itself, serves until told to stop,
    then says how many async reports it ran and how many ran at once."""
    from core.sandbox import SandboxServer

    with SandboxServer(scenario=scenario(), now=now, report_seconds=report_seconds) as sandbox:
        conn.send({"url": sandbox.url, "token": sandbox.token, "accounts": sandbox.account_ids})
        conn.recv()
        with sandbox.state.lock:
            reports = sum(
                1
                for r in sandbox.state.request_log
                if r["method"] == "POST" and r["path"].endswith("/insights")
            )
            conn.send({"reports": reports, "peak": sandbox.state.reports_peak})


def one_sync(concurrency: int, report_seconds: float, now: datetime) -> dict[str, Any]:
    """A throwaway database and a sandbox whose clock stands at `now`, the six accounts
    connected, one full sync."""
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    server = multiprocessing.get_context("spawn").Process(
        target=serve, args=(theirs, report_seconds, now), daemon=True
    )
    server.start()
    try:
        sandbox = ours.recv()
        run = _timed_sync(sandbox, concurrency, now)
        ours.send("stop")
        run.update(ours.recv())
    finally:
        server.join(10)
        if server.is_alive():
            server.terminate()
    return run


def _timed_sync(sandbox: dict[str, Any], concurrency: int, now: datetime) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(
            REX_DATA_DIR=tmp,
            REX_DATABASE_URL=f"sqlite:///{tmp}/rex.db",
            REX_SYNC_DAYS="30",
            REX_SYNC_ASYNC_CONCURRENCY=str(concurrency),
        )
        os.environ.pop("DATABASE_URL", None)
        from core.accounts import connect_account
        from core.db import migrate
        from core.db.engine import dispose_engines
        from core.settings import reload_settings
        from core.sync.runner import SyncOptions, sync_accounts

        reload_settings()
        dispose_engines()
        migrate.upgrade("head")
        for account in sandbox["accounts"]:
            connect_account(account, sandbox["token"], graph_url=sandbox["url"], by=SYSTEM)
        started = time.monotonic()
        results = sync_accounts(options=SyncOptions(breakdowns=True, now=now))
        seconds = time.monotonic() - started
        stored = _digest()
        dispose_engines()
    failed = [f"{r.account}: {r.error}" for r in results if not r.ok]
    if failed:
        raise SystemExit("sync failed: " + "; ".join(failed))
    return {
        "seconds": seconds,
        "accounts": len(results),
        "counts": {r.account: r.counts for r in results},
        "stored": stored,
        "per_account": [r.seconds for r in results],
    }


def _digest() -> str:
    """A hash of every synced row (ids included, times of the sync left out)."""
    import hashlib

    from sqlalchemy import select

    from core.db import read_session
    from core.db.models import (
        AdDemographicInsight,
        AdEntity,
        AdGeographicInsight,
        AdHourlyInsight,
        AdMetric,
        AdPlacementInsight,
    )

    skip = {"updated_at", "first_seen_at"}
    digest = hashlib.sha256()
    models = (AdEntity, AdMetric, AdDemographicInsight, AdPlacementInsight,
              AdGeographicInsight, AdHourlyInsight)  # fmt: skip
    with read_session() as session:
        for model in models:
            columns = [c for c in model.__table__.columns if c.key not in skip]
            for row in session.execute(select(*columns).order_by(*columns)):
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report-seconds", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, help="default: the setting's default")
    parser.add_argument("--runs", type=int, default=1, help="runs of each; medians")
    args = parser.parse_args()
    from core.settings import Settings

    default = args.concurrency or Settings.model_fields["sync_async_concurrency"].default
    now = datetime.now(UTC).replace(microsecond=0)  # every run sees the same world
    runs: dict[int, list[dict[str, Any]]] = {1: [], default: []}
    for _ in range(args.runs):
        for concurrency in runs:  # the baseline first, then the default
            runs[concurrency].append(one_sync(concurrency, args.report_seconds, now))
    baseline, tuned = runs[1], runs[default]
    for run in baseline + tuned:
        if run["counts"] != baseline[0]["counts"]:
            raise SystemExit(f"the syncs' counts differ: {run['counts']} {baseline[0]['counts']}")
        if run["stored"] != baseline[0]["stored"]:
            raise SystemExit("the syncs did not store the same rows")

    def median(values: list[dict[str, Any]], key: str) -> float:
        return statistics.median(v[key] for v in values)

    first = baseline[0]
    print(
        f"{first['accounts']} accounts, REX_SYNC_DAYS 30 with breakdowns: "
        f"{first['reports']} async reports, each running {args.report_seconds:g} s at the "
        f"sandbox; {args.runs} run(s) of each, medians"
    )
    slow, fast = median(baseline, "seconds"), median(tuned, "seconds")
    for label, values, seconds in (
        ("concurrency 1 (baseline)", baseline, slow),
        (f"concurrency {default}" + ("" if args.concurrency else " (default)"), tuned, fast),
    ):
        per_account = statistics.median(s for v in values for s in v["per_account"])
        print(
            f"{label:>26}: {seconds:6.1f} s  ({per_account:.1f} s per account; "
            f"at most {int(median(values, 'peak'))} reports running at once)"
        )
    print(f"{'ratio':>26}: {slow / fast:6.1f}× faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
