"""Outcome quality: do the effect intervals cover the truth, is the learned confidence
calibrated, and how wrong is a plain before/after comparison — on the sandbox's market,
where each change's true effect is known.

    .venv/bin/python -m bench.outcomes [--quick] [--json] [--workers 2]

Each account is a sandbox world built in process with ten ad sets (ROAS 1–4, budgets
50–400 USD a day, the market's default latent variation), two of them with Audience
Network planted at a random conversion rate (× 0.1 … × 1.4). Five changes are made on
the same day, chosen as Rex's rules and suggestions choose — on the last 7 days' numbers,
noisy as they are:

| kind | the change | chosen |
|---|---|---|
| scale | budget + 25 % | the best ROAS of the last 7 days |
| cut | budget − 25 % | the second-worst ROAS |
| pause | paused | the worst ROAS |
| exclude | Audience Network left out (a targeting edit: learning restarts) | one with the plant |
| nothing | renamed (no effect at all) | the second-best ROAS |

The other ad sets are the comparison group. Each change is estimated over the 7 days
after it (core/outcomes/estimate.py, the rule's 7-day window left out of the baseline
for the chosen-by-ROAS kinds), and its truth is the world with the change against the
world without it (`World.true_effect`), summed over the same days.

Reported, in the same run: the coverage of the 90 % intervals (spend, revenue, profit);
the bias of the estimate and of the plain before/after (the 7 days after − the 7 before)
against the truth, per kind; and calibration — per kind, the confidence learned from the
first 50 outcomes (core/outcomes/learn.py, from a stated prior of 0.7 for every kind)
against what the next ones truly did (profit up or not), with its expected calibration
error, beside the error of the unlearned prior.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.outcomes.estimate import Estimate, Numbers, estimate  # noqa: E402
from core.outcomes.learn import calibration, learned, recalibrated  # noqa: E402
from core.sandbox.scenario import build_world, load_scenario  # noqa: E402
from core.sandbox.world import Change, World  # noqa: E402

SEED = 20261201
NOW = datetime(2026, 11, 20, 18, 30, tzinfo=UTC)
ZONE = ZoneInfo("America/Los_Angeles")
TODAY = NOW.astimezone(ZONE).date()
CHANGED_ON = TODAY - timedelta(days=20)  # seven days after, settled, before today
DAYS = 7
KINDS = ("scale", "cut", "pause", "exclude", "nothing")
STATED_PRIOR = 0.7  # the confidence every kind starts from
TRAIN = 50  # outcomes learned from, per kind
SPEC = {"age_min": 18, "age_max": 65, "geo_locations": {"countries": ["US", "CA", "GB", "AU"]},
        "targeting_automation": {"advantage_audience": 0}}  # fmt: skip
WITHOUT_AN = {**SPEC, "publisher_platforms": ["facebook", "instagram", "messenger"]}


def scenario(index: int) -> dict[str, Any]:
    rng = random.Random(f"{SEED}:{index}")
    adsets = []
    for i in range(10):
        budget = rng.choice((5000, 10000, 20000, 40000))
        plants = []
        if i < 2:
            plants = [{"dimension": "placement", "match": {"platform": "audience_network"},
                       "share": 0.3, "cvr": round(rng.uniform(0.1, 1.4), 2)}]  # fmt: skip
        adsets.append({
            "id": f"6{index:03}{i}", "name": f"Shop · {i}", "daily_budget": budget,
            "targeting": SPEC,
            "market": {"roas": round(rng.uniform(1.0, 4.0), 2),
                       "capacity": str(budget * 3 // 100), "plants": plants},
            "ads": [{"id": f"6{index:03}{i}1", "name": "ad"}],
        })  # fmt: skip
    return {"accounts": [{
        "id": "act_4001", "name": "Shop", "currency": "USD", "timezone": "America/Los_Angeles",
        "campaigns": [{"id": "4101", "name": "Shop", "adsets": adsets}],
    }]}  # fmt: skip


def series(world: World, adset_id: str) -> dict[date, Numbers]:
    """The ad set's last 59 days as the estimate reads them (major units)."""
    days = {}
    for back in range(1, 60):
        day = TODAY - timedelta(days=back)
        d = world.adset_day(adset_id, day)
        days[day] = Numbers(d.spend / 100, d.revenue / 100, d.purchases, d.clicks, d.impressions)
    return days


def run_account(index: int) -> list[dict[str, Any]]:
    """Choose and make the five changes (before any day is read: the world keeps the
    days it generated), then estimate each against the unchanged ad sets."""
    world = build_world(load_scenario(copy.deepcopy(scenario(index))), SEED + index, lambda: NOW)
    ids = [e.id for e in world.entities.values() if e.level == "adset"]
    week = [CHANGED_ON - timedelta(days=k) for k in range(1, 8)]
    # the last week's ROAS as a rule would see it: from the expected days plus the noise
    # of counts — read on a copy of the world, so that this world's days stay unread
    twin = build_world(load_scenario(copy.deepcopy(scenario(index))), SEED + index, lambda: NOW)
    seen = {a: series(twin, a) for a in ids}

    def roas(adset_id: str) -> float:
        spend = sum(seen[adset_id][d].spend for d in week)
        return sum(seen[adset_id][d].revenue for d in week) / spend if spend else 0.0

    ranked = sorted(ids[2:], key=roas)  # the plants' ad sets are the exclusions'
    chosen = {"pause": ranked[0], "cut": ranked[1], "nothing": ranked[-2], "scale": ranked[-1],
              "exclude": ids[index % 2]}  # fmt: skip
    at = datetime.combine(CHANGED_ON, clock_time(1), ZONE)
    made: dict[str, Change] = {}
    for kind, adset_id in chosen.items():
        entity = world.entities[adset_id]
        field, new = {
            "scale": ("daily_budget", round((entity.daily_budget or 0) * 1.25)),
            "cut": ("daily_budget", round((entity.daily_budget or 0) * 0.75)),
            "pause": ("status", "PAUSED"),
            "exclude": ("targeting", WITHOUT_AN),
            "nothing": ("name", "renamed"),
        }[kind]
        world.seed_change(entity, field, getattr(entity, field), new, at)
        setattr(entity, field, new)
        made[kind] = next(c for c in world.changes if c.entity_id == adset_id and c.field == field)
    changed = set(chosen.values())
    days = {a: series(world, a) for a in ids}
    comparison = [days[a] for a in ids if a not in changed]
    results = []
    for kind, adset_id in chosen.items():
        leave_out = frozenset(week) if kind != "exclude" else frozenset()
        found = estimate(days[adset_id], comparison, changed_on=CHANGED_ON, days=DAYS,
                         leave_out=leave_out)  # fmt: skip
        if not isinstance(found, Estimate):
            results.append({"kind": kind, "estimate": None, "reason": found.reason})
            continue
        truth = {"spend": 0.0, "revenue": 0.0}
        for k in range(1, DAYS + 1):
            effect = world.true_effect(world.entities[adset_id],
                                       CHANGED_ON + timedelta(days=k), made[kind])  # fmt: skip
            truth["spend"] += effect["spend"]
            truth["revenue"] += effect["revenue"]
        truth["profit"] = truth["revenue"] - truth["spend"]
        results.append({
            "kind": kind,
            "truth": truth,
            "estimate": {m: found.effects[m].estimate for m in ("spend", "revenue", "profit")},
            "covered": {m: found.effects[m].contains(truth[m])
                        for m in ("spend", "revenue", "profit")},
            "width": found.effects["profit"].width,
            "before_after": found.before_after["profit"],
            "probability": found.probability_improving,
            "effect": found.effects["profit"],
            "scale": sum(days[adset_id][d].spend for d in week),  # its last week's spend
            "entities": found.comparison_entities,
        })  # fmt: skip
    return results


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    measured = [r for r in results if r["estimate"] is not None]
    coverage = {m: sum(r["covered"][m] for r in measured) / len(measured)
                for m in ("spend", "revenue", "profit")}  # fmt: skip
    by_kind: dict[str, Any] = {}
    for kind in KINDS:
        mine = [r for r in measured if r["kind"] == kind]
        if not mine:
            continue
        truth = [r["truth"]["profit"] for r in mine]
        by_kind[kind] = {
            "n": len(mine),
            "coverage_profit": sum(r["covered"]["profit"] for r in mine) / len(mine),
            "true_profit": statistics.mean(truth),
            "bias_estimate": statistics.mean(r["estimate"]["profit"] - r["truth"]["profit"]
                                             for r in mine),
            "bias_before_after": statistics.mean(r["before_after"] - r["truth"]["profit"]
                                                 for r in mine),
            "improved": sum(t > 0 for t in truth) / len(mine),
        }  # fmt: skip
        train, test = mine[:TRAIN], mine[TRAIN:]
        if test and kind != "nothing":  # no effect at all: "improved" is false by definition
            kind_learned = learned([STATED_PRIOR] * len(train), [r["effect"] for r in train],
                                   [r["scale"] for r in train])  # fmt: skip
            stated = [recalibrated(STATED_PRIOR, kind_learned)] * len(test)
            truth_test = [float(r["truth"]["profit"] > 0) for r in test]
            by_kind[kind]["learned"] = kind_learned.rate.estimate
            by_kind[kind]["learned_interval"] = (kind_learned.rate.low, kind_learned.rate.high)
            by_kind[kind]["ece_learned"] = calibration(stated, truth_test).error
            by_kind[kind]["ece_prior"] = calibration([STATED_PRIOR] * len(test), truth_test).error
            by_kind[kind]["tested"] = len(test)
    return {"cases": len(results), "measured": len(measured), "coverage": coverage,
            "by_kind": by_kind,
            "no_estimate": [r["reason"] for r in results if r["estimate"] is None]}  # fmt: skip


def report(f: dict[str, Any]) -> str:
    out = [f"{f['measured']} changes measured of {f['cases']} (7 days after, against the "
           "unchanged ad sets of each account)", "",
           "Coverage of the 90 % intervals (target 85–95 %): " + ", ".join(
               f"{m} {100 * v:.1f} %" for m, v in f["coverage"].items()), "",
           "| kind | n | true profit effect, mean (USD / 7 days) | share truly improved | "
           "coverage (profit) | bias: estimate | bias: plain before/after | learned "
           "confidence (from 50) | ECE learned | ECE of the 0.7 prior |",
           "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for kind, k in f["by_kind"].items():
        low, high = k.get("learned_interval", (float("nan"), float("nan")))
        out.append(
            f"| {kind} | {k['n']} | {k['true_profit']:,.1f} | {100 * k['improved']:.0f} % | "
            f"{100 * k['coverage_profit']:.1f} % | {k['bias_estimate']:+,.1f} | "
            f"{k['bias_before_after']:+,.1f} | "
            + (f"{k['learned']:.2f} ({low:.2f}–{high:.2f}) | {k['ece_learned']:.3f} | "
               f"{k['ece_prior']:.3f} |" if "learned" in k else "— | — | — |")
        )  # fmt: skip
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="24 accounts (no calibration)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--accounts", type=int, default=None)
    args = parser.parse_args()
    accounts = args.accounts or (24 if args.quick else 120)
    started = time.perf_counter()
    with multiprocessing.Pool(args.workers) as pool:
        results = [r for batch in pool.map(run_account, range(accounts)) for r in batch]
    figures = summarise(results)
    elapsed = time.perf_counter() - started
    if args.json:
        json.dump({"figures": figures, "seconds": elapsed}, sys.stdout, indent=1, default=str)
        print()
    else:
        print(f"{accounts} accounts, {elapsed:.0f} s\n")
        print(report(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
