"""Page render time, server-side, on a large install.

    .venv/bin/python bench/pages.py [--ads 2000] [--days 90] [--repeat 5]

Builds a throwaway SQLite database with two accounts of `--ads` ads each (plus their ad
sets and campaigns), `--days` of daily metrics at all three levels, 30 days of the four
breakdown tables at ad-set level, 50 rules with 1,000 executions and 2,000 actions —
then runs every page under Streamlit's AppTest and reports the median time of a full
script run. The baseline, measured in the same run, is the same page on an empty
database: the ratio is what the data costs.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This file is `pages.py`: its own folder first on sys.path would shadow the app's pages/
# package (`from pages._notices import …`), so the project root takes its place.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]
PAGES = ("overview", "rules", "executions", "approvals", "breakdowns", "accounts", "health")


def populate(url: str, ads: int, days: int) -> dict[str, int]:
    from sqlalchemy import insert

    from core.db import migrate, write_session
    from core.db.engine import get_engine
    from core.db.models import (
        ActionHistory,
        AdAccount,
        AdDemographicInsight,
        AdEntity,
        AdGeographicInsight,
        AdHourlyInsight,
        AdMetric,
        AdPlacementInsight,
        AutomationRule,
        RuleExecution,
    )

    migrate.upgrade("head", url=url)
    engine = get_engine(url)
    rng = random.Random(1)
    today = date.today()
    now = datetime.now(UTC)
    counts = {"metrics": 0, "breakdowns": 0}
    with write_session(engine) as session:
        for a, (currency, tz) in enumerate((("USD", "America/Los_Angeles"), ("JPY", "Asia/Tokyo"))):
            account = AdAccount(
                external_id=f"act_{9000 + a}",
                name=f"Bench {currency}",
                currency=currency,
                timezone_name=tz,
                account_status=1,
                token_encrypted="x",
                last_sync_at=now,
            )
            session.add(account)
            session.flush()
            entities = []
            for c in range(max(1, ads // 100)):
                campaign = AdEntity(
                    account_id=account.id,
                    level="campaign",
                    external_id=f"{a}c{c}",
                    name=f"Campaign {c}",
                    status="ACTIVE",
                    effective_status="ACTIVE",
                    daily_budget_minor=50_000,
                )
                session.add(campaign)
                session.flush()
                entities.append(campaign)
                for s in range(10):
                    adset = AdEntity(
                        account_id=account.id,
                        level="adset",
                        parent_id=campaign.id,
                        external_id=f"{a}c{c}s{s}",
                        name=f"Ad set {c}.{s}",
                        status="ACTIVE",
                        effective_status="ACTIVE",
                        meta_campaign_id=campaign.external_id,
                    )
                    session.add(adset)
                    session.flush()
                    entities.append(adset)
                    for d in range(10):
                        ad = AdEntity(
                            account_id=account.id,
                            level="ad",
                            parent_id=adset.id,
                            external_id=f"{a}c{c}s{s}a{d}",
                            name=f"Ad {c}.{s}.{d}",
                            status="ACTIVE",
                            effective_status="ACTIVE",
                            meta_campaign_id=campaign.external_id,
                            meta_adset_id=adset.external_id,
                        )
                        session.add(ad)
                        entities.append(ad)
            session.flush()
            metric_rows, breakdown_rows = [], {m: [] for m in ("demo", "place", "geo", "hour")}
            for entity in entities:
                for back in range(days):
                    spend = rng.randint(1, 90_000_000)
                    metric_rows.append(
                        dict(
                            account_id=account.id,
                            entity_id=entity.id,
                            date=today - timedelta(days=back),
                            spend_micros=spend,
                            revenue_micros=int(spend * rng.uniform(0.3, 5)),
                            impressions=rng.randint(100, 90_000),
                            clicks=rng.randint(1, 900),
                            reach=rng.randint(50, 50_000),
                            conversions=rng.randint(0, 30),
                        )
                    )
                if entity.level == "adset":
                    for back in range(30):
                        day = today - timedelta(days=back)
                        base = dict(
                            account_id=account.id,
                            entity_id=entity.id,
                            date=day,
                            spend_micros=rng.randint(1, 9_000_000),
                            revenue_micros=rng.randint(0, 20_000_000),
                            impressions=100,
                            clicks=5,
                            reach=80,
                            conversions=1,
                        )
                        for age in ("18-24", "25-34", "35-44", "45-54", "55-64", "65+"):
                            for gender in ("female", "male", "unknown"):
                                breakdown_rows["demo"].append(
                                    {**base, "age": age, "gender": gender}
                                )
                        for platform, device in (
                            ("facebook", "iphone"),
                            ("instagram", "iphone"),
                            ("facebook", "desktop"),
                            ("audience_network", "android_smartphone"),
                        ):
                            breakdown_rows["place"].append(
                                {
                                    **base,
                                    "publisher_platform": platform,
                                    "platform_position": "feed",
                                    "impression_device": device,
                                }
                            )
                        for geo_type, value in (
                            ("country", "US"),
                            ("country", "CA"),
                            ("region", "Texas"),
                            ("dma", "Houston"),
                        ):
                            breakdown_rows["geo"].append(
                                {**base, "geo_type": geo_type, "geo_value": value}
                            )
                        for hour in range(24):
                            breakdown_rows["hour"].append({**base, "hour": hour})
            session.execute(insert(AdMetric), metric_rows)
            for model, key in (
                (AdDemographicInsight, "demo"),
                (AdPlacementInsight, "place"),
                (AdGeographicInsight, "geo"),
                (AdHourlyInsight, "hour"),
            ):
                session.execute(insert(model), breakdown_rows[key])
                counts["breakdowns"] += len(breakdown_rows[key])
            counts["metrics"] += len(metric_rows)
        rules = []
        for r in range(50):
            document = {
                "schema_version": 1,
                "name": f"Bench rule {r}",
                "status": "active",
                "scope": {"account_ids": [], "level": "adset", "filters": []},
                "conditions": {"metric": "roas", "window": "last_7d", "op": ">", "value": 3},
                "actions": [{"type": "pause"}],
                "schedule": {"every_minutes": 60},
                "safety": {
                    "max_daily_actions": 10,
                    "cooldown_minutes": 1440,
                    "dry_run": False,
                    "require_approval": False,
                },
            }
            rule = AutomationRule(
                name=document["name"],
                level="adset",
                document=document,
                status="active",
                next_execution_at=now,
            )
            session.add(rule)
            rules.append(rule)
        session.flush()
        for e in range(1000):
            execution = RuleExecution(
                rule_id=rules[e % 50].id,
                started_at=now - timedelta(minutes=e * 7),
                status="succeeded",
                entities_checked=100,
                entities_matched=2,
                actions_taken=2,
                duration_ms=40,
                trace={"candidates": []},
            )
            session.add(execution)
            session.flush()
            for k in range(2):
                session.add(
                    ActionHistory(
                        rule_id=execution.rule_id,
                        execution_id=execution.id,
                        account_id=1,
                        entity_name=f"Ad set {e}.{k}",
                        action_type="pause",
                        old_value="ACTIVE",
                        new_value="PAUSED",
                        status="succeeded",
                        created_at=execution.started_at,
                    )
                )
    return counts


def _signed_in_admin() -> str:
    """A session token of the benchmark's admin (made when missing)."""
    from core.access.actor import SYSTEM
    from core.access.signin import sign_in
    from core.access.users import add_user, has_users

    email, password = "bench@rex.local", "benchmark password"
    if not has_users():
        add_user(email, password=password, admin=True, by=SYSTEM)
    return sign_in(email, password).token


def time_pages(url: str, repeat: int) -> dict[str, float]:
    from streamlit.testing.v1 import AppTest

    from core.db.engine import dispose_engines
    from core.settings import reload_settings

    os.environ["REX_DATABASE_URL"] = url
    reload_settings()
    dispose_engines()
    token = _signed_in_admin()  # every page asks who is signed in: an admin sees it all
    results = {}
    for page in PAGES:
        samples = []
        for _ in range(repeat + 1):  # the first run warms imports and caches: not counted
            app = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=120)
            app.session_state["rex_token"] = token
            started = time.perf_counter()
            app.run()
            samples.append(time.perf_counter() - started)
            if app.exception:
                raise SystemExit(f"{page}: {app.exception[0].value}")
        results[page] = statistics.median(samples[1:])
    return results


def engine_data(repeat: int) -> int:
    """The pages on bench/engine.py's data in PostgreSQL, against an empty schema."""
    from bench.engine import pg_schema
    from bench.engine import populate as populate_engine_data
    from core.db.engine import get_engine

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(
            REX_DATA_DIR=tmp, REX_SECRET_KEY="q8JvFRk0yO2Tz7Zsq4bfbJ1lQbEPs1v6wTJ7p2mWc9Q="
        )
        with pg_schema("rex_bench_pages_empty") as empty:
            baseline = time_pages(empty, repeat)
        with pg_schema("rex_bench_pages") as full:
            rows = populate_engine_data(get_engine(full), 50, 1000, 30, 1000)
            print(f"data: {rows:,} metric rows, 50 accounts, 50,500 entities, 1,000 rules")
            loaded = time_pages(full, repeat)
    _table(baseline, loaded)
    return 0


def _table(baseline: dict[str, float], loaded: dict[str, float]) -> None:
    print("| page | empty database (baseline) | benchmark data | ratio |")
    print("|---|---|---|---|")
    for page in PAGES:
        print(
            f"| {page} | {baseline[page] * 1000:.0f} ms | {loaded[page] * 1000:.0f} ms | "
            f"{loaded[page] / baseline[page]:.1f}× |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ads", type=int, default=2000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--engine-data",
        action="store_true",
        help="instead: the rule-engine benchmark's data (50 accounts × 1,000 ad sets, "
        "1,000 rules) on PostgreSQL",
    )
    args = parser.parse_args()
    if args.engine_data:
        return engine_data(args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(
            REX_DATA_DIR=tmp, REX_SECRET_KEY="q8JvFRk0yO2Tz7Zsq4bfbJ1lQbEPs1v6wTJ7p2mWc9Q="
        )
        empty, full = f"sqlite:///{tmp}/empty.db", f"sqlite:///{tmp}/bench.db"
        from core.db import migrate

        migrate.upgrade("head", url=empty)
        started = time.perf_counter()
        counts = populate(full, args.ads, args.days)
        print(
            f"data: {counts['metrics']:,} metric rows, {counts['breakdowns']:,} breakdown rows, "
            f"50 rules, 1,000 executions, 2,000 actions ({time.perf_counter() - started:.0f} s)"
        )
        baseline = time_pages(empty, args.repeat)
        loaded = time_pages(full, args.repeat)
    _table(baseline, loaded)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
