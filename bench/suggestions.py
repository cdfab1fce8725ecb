"""Suggestion quality: planted patterns found, pattern-free ad sets left alone, and time.

    .venv/bin/python -m bench.suggestions [--quick] [--json] [--workers 2]
                                          [--timing-accounts 1] [--timing-adsets 1000]

Ad sets are generated in the sandbox's market (`core.sandbox`, a scenario world built
in process), each with one pattern planted at random — its kind (an age × gender cell,
an age band, a gender; a platform, a platform's position, a device; a country; a block
of hours), its size (the rate Rex judges × 0.2 … × 3: conversion rate for purchases,
cost per click for hours), its data volume (a daily budget of 30 … 1,000 USD) and its
noise (the market's latent `variation`, 0 / 0.1 / 0.3) — and beside each a twin with no
plant, at the same budget and variation. Sixteen ad sets (eight of each) make an account.
Detection runs as Rex runs it: each of the six breakdowns (age × gender, placement,
country, region, DMA, hour) summed over the last 28 whole days (today left out), its
tables from `expand`, `find_patterns` once per account (the false discovery rate is
controlled per account). Every discovery is then compared with the market's truth
(`World.truth`: each segment's expected numbers before noise).

A plant is **found** when a discovery on its ad set names the planted segment, or a
group that contains it or lies within it, in the planted direction (or its complement
the other way: "men worse" for "women better"). It is **large enough to matter** when
its true difference is one Rex itself calls worth an edit (at least `MIN_DIFFERENCE`),
acting on it is worth at least `MATTERS_PROFIT` a week (the true difference in revenue
per spend × the segment's weekly spend), and the segment's spend would have bought at
least `MATTERS_COUNT` purchases in the window at the rest's rate (hours, judged on
clicks: 20 clicks for a purchase, the guards' rate). A discovery is **backed** when the
truth has its segment at least `BACKED` worse (better) than the rest.

Timing: 50 accounts × 1,000 ad sets cost hours of detection on one core (≈ 0.5 s an ad
set, mostly scipy's `binomtest`), so `--timing-accounts` (1) synthetic accounts of
1,000 ad sets (50 in `--quick`) — segment sums drawn as Poisson counts around a sandbox
profile's expected numbers — are timed whole, in CPU seconds, and the 50 accounts
extrapolated (accounts are independent: the time is linear in them). Baselines on the
same data in the same run: building the tables (`SegmentSums` and `expand`), and one
numpy pass of the first round's arithmetic (guards, rests, binomial p-values, Gamma
quantiles, Benjamini–Hochberg). Quality figures are the same on every run (fixed
seeds); times are measured.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import multiprocessing
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.sandbox import market  # noqa: E402
from core.sandbox.scenario import build_world, load_scenario  # noqa: E402
from core.sandbox.world import (  # noqa: E402
    AGES,
    HOURLY,
    PLACEMENTS,
    Account,
    ProfileSpec,
    World,
    build_profile,
    plant_matches,
    segment_keys,
)
from core.suggestions.detect import (  # noqa: E402
    KIND_OF_DIMENSION,
    MIN_DIFFERENCE,
    ON_META_ONLY,
    Finding,
    Guards,
    SegmentSums,
    Table,
    adset_patterns,
    expand,
    find_patterns,
)

SEED = 20261120
NOW = datetime(2026, 11, 20, 18, 30, tzinfo=UTC)
DAYS = 28
ACCOUNT = "act_4001"
PER_ACCOUNT = 8  # planted ad sets per account, each with its pattern-free twin
MULTIPLIERS = (0.2, 0.5, 0.7, 1.5, 2.0, 3.0)  # × the rate Rex judges (below 1: worse)
BUDGETS = (30, 100, 300, 1000)  # USD a day
VARIATIONS = (0.0, 0.1, 0.3)
# what a plant names, by the suggestion kind it makes
LABELS = (
    ("demographic", "age × gender cell"),
    ("demographic", "age band"),
    ("demographic", "gender"),
    ("placement", "platform"),
    ("placement", "position"),
    ("placement", "device"),
    ("geography", "country"),
    ("dayparting", "hour block"),
)
KINDS = ("demographic", "placement", "geography", "dayparting")
MATTERS_PROFIT = 50.0  # USD a week of acting on it
# enough data: the expected z a test at Rex's bars needs to find it 95 % of the time —
# against no difference, the level the false discovery control asks of one segment in a
# table of three among ten tables (q / 30 = 1 in 600, two-sided: 3.14) plus 1.645; beyond
# the `MIN_DIFFERENCE` bar, the 90 % interval's one-sided 1.645 plus 1.645
MATTERS_Z_ZERO = 4.8
MATTERS_Z_BAR = 3.3
BACKED = 0.1  # a discovery is true when its segment truly differs by this much that way
# Rex's breakdown calls (core/sync/breakdowns.py), named as detect's dimensions
BREAKDOWNS = {
    "age_gender": ("age", "gender"),
    "placement": ("publisher_platform", "platform_position", "impression_device"),
    "country": ("country",),
    "region": ("region",),
    "dma": ("dma",),
    "hour": (HOURLY,),
}
# each table's market dimension and the parts of the market's keys it keeps
CELLS_OF = {
    "age_gender": ("demographic", (0, 1)), "age": ("demographic", (0,)),
    "gender": ("demographic", (1,)), "placement": ("placement", (0, 1, 2)),
    "publisher_platform": ("placement", (0,)), "impression_device": ("placement", (2,)),
    "country": ("country", (0,)), "region": ("region", (0,)), "dma": ("dma", (0,)),
    "hour": ("hour", (0,)),
}  # fmt: skip


# ------------------------------------------------------------------ what is planted


@dataclass(frozen=True)
class Case:
    """One generated ad set: its budget, noise and plant (None: pattern-free)."""

    adset_id: str
    budget: int
    variation: float
    roas: float
    kind: str | None = None
    label: str | None = None
    multiplier: float | None = None
    plant: dict[str, Any] | None = None  # the scenario's plant

    @property
    def direction(self) -> str:
        return "worse" if (self.multiplier or 1) < 1 else "better"


def planted(kind: str, label: str, multiplier: float, rng: random.Random) -> dict[str, Any]:
    """A plant of `label`, the rate Rex judges × `multiplier`."""
    if label == "age × gender cell":
        match: dict[str, Any] = {"age": rng.choice(AGES), "gender": rng.choice(("female", "male"))}
    elif label == "age band":
        start = rng.randrange(len(AGES) - 1)
        match = {"age": list(AGES[start : start + rng.choice((1, 2))])}
    elif label == "gender":
        match = {"gender": rng.choice(("female", "male"))}
    elif label == "platform":
        match = {"platform": rng.choice(sorted({p for p, _, _ in PLACEMENTS}))}
    elif label == "position":
        platform, position, _ = rng.choice(PLACEMENTS)
        match = {"platform": platform, "position": position}
    elif label == "device":
        match = {"device": rng.choice(sorted({d for _, _, d in PLACEMENTS}))}
    elif label == "country":
        match = {"country": rng.choice(("CA", "GB", "AU"))}  # the US is 80 % of delivery
    else:
        length = rng.randint(2, 6)
        start = rng.randrange(24 - length + 1)
        match = {"hour": list(range(start, start + length))}
    dimension = {"demographic": "demographic", "placement": "placement",
                 "geography": "country", "dayparting": "hour"}[kind]  # fmt: skip
    effect = {"cpc": round(1 / multiplier, 4)} if kind == "dayparting" else {"cvr": multiplier}
    return {"dimension": dimension, "match": match, **effect}


def cases(quick: bool) -> list[list[Case]]:
    """The accounts: every (label, multiplier, budget, variation) once (a sample in
    `quick`), shuffled, each with its pattern-free twin; `PER_ACCOUNT` pairs an account."""
    rng = random.Random(SEED)
    grid = list(itertools.product(LABELS, MULTIPLIERS, BUDGETS, VARIATIONS))
    rng.shuffle(grid)
    if quick:
        grid = grid[: 4 * PER_ACCOUNT]
    accounts = []
    for a in range(0, len(grid), PER_ACCOUNT):
        account = []
        for i, ((kind, label), multiplier, budget, variation) in enumerate(
            grid[a : a + PER_ACCOUNT]
        ):
            roas = round(rng.uniform(1.5, 4.0), 2)
            base = f"5{a + i:04}"
            plant = planted(kind, label, multiplier, rng)
            account.append(
                Case(f"{base}1", budget, variation, roas, kind, label, multiplier, plant)
            )
            account.append(Case(f"{base}2", budget, variation, roas))
        accounts.append(account)
    return accounts


def scenario(account: Sequence[Case]) -> dict[str, Any]:
    adsets = [
        {
            "id": c.adset_id, "name": f"Shop · {c.adset_id}", "daily_budget": c.budget * 100,
            "market": {"roas": c.roas, "capacity": str(c.budget * 3),
                       "plants": [c.plant] if c.plant else [], "variation": c.variation,
                       "meta_rates": False},
            "ads": [{"id": f"{c.adset_id}0", "name": "ad"}],
        }
        for c in account
    ]  # fmt: skip
    return {
        "accounts": [{
            "id": ACCOUNT, "name": "Shop", "currency": "USD", "timezone": "America/Los_Angeles",
            "campaigns": [{"id": "4101", "name": "Shop", "adsets": adsets}],
        }],
    }  # fmt: skip


# ----------------------------------------------------------------- what Rex would see


def segment_sums(world: World, adset_id: str, dimension: str) -> list[SegmentSums]:
    """The ad set's segments of one breakdown over the last `DAYS` whole days, as Rex
    stores them: rows with nothing spent or shown are absent, and no purchases where
    Meta reports none."""
    today = world.accounts[ACCOUNT].today(NOW)
    found: dict[tuple[str, ...], list[int]] = {}
    for ad in world.children(adset_id, "ad"):
        for back in range(1, DAYS + 1):
            for key, day in world.segment_days(ad, today - timedelta(days=back),
                                               BREAKDOWNS[dimension]):  # fmt: skip
                total = found.setdefault(key, [0] * 5)
                for i, value in enumerate((day.spend, day.impressions, day.clicks,
                                           day.purchases, day.revenue)):  # fmt: skip
                    total[i] += value
    meta_only = dimension in ON_META_ONLY
    return [
        SegmentSums(
            key,
            spend / 100,
            impressions,
            clicks,
            None if meta_only else purchases,
            None if meta_only else revenue / 100,
        )  # fmt: skip
        for key, (spend, impressions, clicks, purchases, revenue) in found.items()
        if spend or impressions
    ]


# --------------------------------------------------------------------- the truth


class Truth:
    """An ad set's expected numbers per segment, before noise (one day), by market
    dimension: [spend, clicks, purchases, revenue]."""

    def __init__(self, world: World, adset_id: str) -> None:
        day = world.accounts[ACCOUNT].today(NOW) - timedelta(days=1)
        truth = world.truth(world.entities[adset_id], day)
        self.cells = {
            dimension: {
                tuple(row["segment"]): np.array(
                    [row["spend"], row["clicks"], row["purchases"], row["revenue"]]
                )
                for row in rows
            }
            for dimension, rows in truth["segments"].items()
        }

    def split(self, dimension: str, cells: set[tuple[str, ...]]) -> tuple[np.ndarray, np.ndarray]:
        inside = sum((v for k, v in self.cells[dimension].items() if k in cells), np.zeros(4))
        whole = sum(self.cells[dimension].values(), np.zeros(4))
        return inside, whole - inside

    def ratio(self, dimension: str, cells: set[tuple[str, ...]], *, clicks: bool) -> float:
        """The segment's rate (purchases or clicks per spend) over the rest's."""
        seg, rest = self.split(dimension, cells)
        column = 1 if clicks else 2
        if seg[0] <= 0 or rest[0] <= 0 or rest[column] <= 0:
            return 1.0
        return float((seg[column] / seg[0]) / (rest[column] / rest[0]))


KEYS = segment_keys(Account(ACCOUNT, "Shop", "USD", "America/Los_Angeles"))


def cells_of(table: str, key: tuple[str, ...]) -> tuple[str, set[tuple[str, ...]]]:
    """The market cells a table's segment is made of."""
    dimension, parts = CELLS_OF[table]
    return dimension, {c for c in KEYS[dimension] if tuple(c[i] for i in parts) == key}


def plant_cells(plant: dict[str, Any]) -> set[tuple[str, ...]]:
    dimension = plant["dimension"]
    return {c for c in KEYS[dimension] if plant_matches(dimension, c, plant["match"])}


@dataclass
class Size:
    """A plant as the market makes it: the true ratio of the rates Rex judges (the
    segment's over the rest's), what acting on it is worth a week, the evidence the
    window holds (purchases the segment's spend buys at the rest's rate), and how far
    that evidence is expected to carry — `z_zero`: the true log ratio over its standard
    error on the window's expected counts (segment and rest); `z_bar`: the same beyond
    Rex's `MIN_DIFFERENCE` bar."""

    ratio: float
    weekly_profit: float
    volume: float
    z_zero: float
    z_bar: float

    @property
    def matters(self) -> bool:
        """Large enough to matter: a difference Rex itself calls worth an edit (at least
        `MIN_DIFFERENCE`), worth `MATTERS_PROFIT` a week — and enough data that a test
        holding Rex's two bars would find it 95 % of the time (`MATTERS_Z_ZERO`,
        `MATTERS_Z_BAR`)."""
        different = self.ratio <= 1 - MIN_DIFFERENCE or self.ratio >= 1 + MIN_DIFFERENCE
        return (
            different
            and self.weekly_profit >= MATTERS_PROFIT
            and self.z_zero >= MATTERS_Z_ZERO
            and self.z_bar >= MATTERS_Z_BAR
        )


def size_of(truth: Truth, case: Case) -> Size:
    assert case.plant is not None
    dimension = case.plant["dimension"]
    cells = plant_cells(case.plant)
    seg, rest = truth.split(dimension, cells)
    clicks = dimension == "hour"
    profit = abs(seg[3] / seg[0] - rest[3] / rest[0]) * seg[0] * 7
    count = rest[1] / 20 if clicks else rest[2]
    volume = seg[0] * DAYS * count / rest[0]
    ratio = truth.ratio(dimension, cells, clicks=clicks)
    column = 1 if clicks else 2
    error = math.sqrt(1 / max(seg[column] * DAYS, 1e-9) + 1 / max(rest[column] * DAYS, 1e-9))
    bar = -math.log(1 - MIN_DIFFERENCE) if ratio < 1 else math.log(1 + MIN_DIFFERENCE)
    distance = abs(math.log(ratio)) if ratio > 0 else math.inf
    return Size(ratio, profit, volume, distance / error, (distance - bar) / error)


def latent_difference(truth: Truth, tables: Sequence[Table]) -> float:
    """The largest true difference (|log ratio| of the rate Rex judges, against the rest
    of its table) among an ad set's segments with the data to be tested (the guards'
    `segment_expected` at the rest's rate): what an ad set without a plant still holds
    from the market's latent variation."""
    largest = 0.0
    expected = Guards().segment_expected
    for table, segments in tables:
        clicks = table in ON_META_ONLY
        for segment in segments:
            dimension, cells = cells_of(table, segment.key)
            seg, rest = truth.split(dimension, cells)
            column = 1 if clicks else 2
            if rest[0] <= 0 or seg[0] * DAYS * rest[column] / rest[0] < expected:
                continue
            largest = max(largest, abs(math.log(truth.ratio(dimension, cells, clicks=clicks))))
    return largest


# ------------------------------------------------------------------- one account


@dataclass
class Seen:
    """One discovery, judged against the plant and the truth."""

    dimension: str
    key: tuple[str, ...]
    direction: str
    kind: str
    planted: bool  # names the plant (or a group containing it or within it), its way
    backed: bool  # the truth differs by at least `BACKED` in its direction


@dataclass
class Outcome:
    case: Case
    size: Size | None
    seen: list[Seen] = field(default_factory=list)
    latent: float = 0.0  # pattern-free ad sets: their largest true difference (log ratio)

    @property
    def pattern_free(self) -> bool:
        """No plant, and no segment that truly differs by Rex's `MIN_DIFFERENCE`."""
        return self.case.plant is None and self.latent < math.log(1 + MIN_DIFFERENCE)

    @property
    def found(self) -> bool:
        return any(s.planted for s in self.seen)


def judge(finding: Finding, case: Case, truth: Truth, others: Sequence[Finding] = ()) -> Seen:
    """A discovery names the plant when its cells lie within the plant's or contain them
    all, in the planted direction — or when, with the ad set's other discoveries of its
    table the other way (`others`), it covers the plant's complement (all of the rest but
    segments with under 5 % of the spend: "men worse" for "women better"; "Android worse"
    and "desktop worse" for "iPhone better" — the same edits)."""
    dimension, cells = cells_of(finding.dimension, finding.key)
    ratio = truth.ratio(dimension, cells, clicks=finding.basis == "clicks")
    backed = ratio <= 1 - BACKED if finding.direction == "worse" else ratio >= 1 + BACKED
    planted = False
    if case.plant is not None and case.plant["dimension"] == dimension:
        plant = plant_cells(case.plant)
        inside = cells & plant
        if finding.direction == case.direction:
            planted = bool(inside) and inside in (cells, plant)
        elif not inside:
            together = set(cells)
            for other in others:
                if other.dimension == finding.dimension and other.direction == finding.direction:
                    together |= cells_of(other.dimension, other.key)[1]
            covered, _ = truth.split(dimension, (together - plant) | plant)
            whole = sum(truth.cells[dimension].values())
            planted = not (together & plant) and covered[0] >= 0.95 * whole[0]
    return Seen(finding.dimension, finding.key, finding.direction,
                KIND_OF_DIMENSION[finding.dimension], planted, backed)  # fmt: skip


@dataclass
class Built:
    """One account as detection sees it: each ad set's tables, and the truth."""

    cases: list[Case]
    tables: dict[str, list[Table]]  # ad set id → its tables
    truths: dict[str, Truth]


def build_account(index_and_cases: tuple[int, list[Case]]) -> Built:
    """The account's world, its ad sets' tables as Rex would build them, their truth."""
    index, account = index_and_cases
    world = build_world(load_scenario(copy.deepcopy(scenario(account))), SEED + index,
                        lambda: NOW)  # fmt: skip
    tables = {
        case.adset_id: [table for dimension in BREAKDOWNS
                        for table in expand(dimension, segment_sums(world, case.adset_id,
                                                                    dimension))]
        for case in account
    }  # fmt: skip
    return Built(account, tables, {c.adset_id: Truth(world, c.adset_id) for c in account})


def judge_account(built: Built) -> list[Outcome]:
    """Detect as Rex does (each ad set on its own), judge every discovery."""
    outcomes = []
    for case in built.cases:
        truth = built.truths[case.adset_id]
        tables = built.tables[case.adset_id]
        size = size_of(truth, case) if case.plant else None
        latent = 0.0 if case.plant else latent_difference(truth, tables)
        outcome = Outcome(case, size, latent=latent)
        found = adset_patterns(tables, days=DAYS)
        outcome.seen.extend(judge(finding, case, truth, found) for finding in found)
        outcomes.append(outcome)
    return outcomes


def run_account(index_and_cases: tuple[int, list[Case]]) -> list[Outcome]:
    return judge_account(build_account(index_and_cases))


# --------------------------------------------------------------------- the timing


MARKET_DIMENSION = {"age_gender": "demographic", "placement": "placement", "country": "country",
                    "region": "region", "dma": "dma", "hour": "hour"}  # fmt: skip
Columns = dict[str, np.ndarray]  # spend, impressions, clicks, purchases, revenue per segment


def synthetic_account(index: int, adsets: int) -> list[list[tuple[str, list, Columns]]]:
    """An account of `adsets` ad sets' segment sums per breakdown over `DAYS` days:
    Poisson counts around a sandbox profile's expected numbers (its own latent variation,
    budgets 30 … 1,000 USD a day in turn)."""
    rng = np.random.default_rng([SEED, index])
    account = Account(ACCOUNT, "Shop", "USD", "America/Los_Angeles")
    made = []
    for a in range(adsets):
        budget = float(BUDGETS[a % len(BUDGETS)])
        spec = ProfileSpec(roas=round(float(rng.uniform(1.5, 4.0)), 2),
                           capacity=Decimal(str(budget * 3)))  # fmt: skip
        profile = build_profile(SEED + index, f"9{a:06}", spec, account)
        state = market.State(budget)
        day = market.expected(profile, state)
        breakdowns = []
        for dimension, name in MARKET_DIMENSION.items():
            weights = market.column_weights(profile, state, name)

            def part(column: str, total: float, w: dict[str, list[float]] = weights) -> np.ndarray:
                shares = np.array(w[column])
                return total * DAYS * shares / shares.sum()

            purchases = rng.poisson(part("purchases", day.purchases))
            order_value = part("revenue", day.revenue) / np.maximum(
                part("purchases", day.purchases), 1e-12
            )
            columns = {
                "spend": np.round(part("spend", day.spend), 2),
                "impressions": rng.poisson(part("impressions", day.impressions)),
                "clicks": rng.poisson(part("clicks", day.clicks)),
                "purchases": purchases,
                "revenue": np.round(purchases * order_value, 2),
            }
            breakdowns.append((dimension, list(profile.segments[name]), columns))
        made.append(breakdowns)
    return made


def tables_of(made: list[list[tuple[str, list, Columns]]]) -> list[list[Table]]:
    """Each ad set's tables, as `build_account` makes them from the sandbox's rows."""
    adsets: list[list[Table]] = []
    for breakdowns in made:
        tables: list[Table] = []
        for dimension, keys, c in breakdowns:
            meta_only = dimension in ON_META_ONLY
            segments = [
                SegmentSums(
                    key,
                    float(c["spend"][i]),
                    int(c["impressions"][i]),
                    int(c["clicks"][i]),
                    None if meta_only else int(c["purchases"][i]),
                    None if meta_only else float(c["revenue"][i]),
                )  # fmt: skip
                for i, key in enumerate(keys)
                if c["spend"][i] > 0
            ]
            tables.extend(expand(dimension, segments))
        adsets.append(tables)
    return adsets


def flat(tables: Sequence[Table]) -> tuple[np.ndarray, ...]:
    """Every table's segments in flat arrays: spend, count (purchases or clicks), the
    table's index, and per table whether it is judged on clicks."""
    spend, count, table_of = [], [], []
    for t, (dimension, segments) in enumerate(tables):
        clicks = dimension in ON_META_ONLY
        for s in segments:
            spend.append(s.spend)
            count.append(s.clicks if clicks else (s.purchases or 0))
            table_of.append(t)
    on_clicks = np.array([dimension in ON_META_ONLY for dimension, _ in tables])
    return np.array(spend), np.array(count, dtype=float), np.array(table_of), on_clicks


def numpy_pass(spend: np.ndarray, count: np.ndarray, table_of: np.ndarray,
               on_clicks: np.ndarray, q: float = 0.1) -> int:  # fmt: skip
    """The first round's arithmetic in one vectorised pass: each segment against the rest
    of its table, the guards, the conditional binomial test (two-sided by doubling the
    smaller tail), both Gamma posteriors' 90 % quantiles, Benjamini–Hochberg across the
    account. How many pass BH (no profit or `MIN_DIFFERENCE` filter: a cost, not an
    answer)."""
    from scipy import special, stats

    guards = Guards()
    whole_spend = np.bincount(table_of, spend)
    whole_count = np.bincount(table_of, count)
    needed = np.where(on_clicks, guards.adset_purchases * 20, guards.adset_purchases)
    rate = (whole_count / np.maximum(whole_spend, 1e-12))[table_of]
    rest_spend = whole_spend[table_of] - spend
    rest_count = whole_count[table_of] - count
    ok = (
        (whole_count[table_of] >= needed[table_of])
        & (spend * rate >= guards.segment_expected)
        & (rest_spend >= guards.rest_share * whole_spend[table_of])
    )
    s, c, rs, rc = spend[ok], count[ok], rest_spend[ok], rest_count[ok]
    n, share = c + rc, s / (s + rs)
    p_value = np.minimum(1.0, 2 * np.minimum(stats.binom.cdf(c, n, share),
                                             stats.binom.sf(c - 1, n, share)))  # fmt: skip
    prior = np.where(rc > 0, rc / np.maximum(rs, 1e-12), rate[ok])
    prior_spend = 5.0 / prior
    for shape, scale in ((prior * prior_spend + c, prior_spend + s),
                         (prior * prior_spend + rc, prior_spend + rs)):  # fmt: skip
        for level in (0.05, 0.95):
            special.gammaincinv(shape, level) / scale
    ordered = np.sort(p_value)
    m = len(ordered)
    under = np.nonzero(ordered <= np.arange(1, m + 1) * q / m)[0]
    return int(under[-1] + 1) if len(under) else 0


def time_account(index_and_size: tuple[int, int]) -> dict[str, float]:
    """One synthetic account: CPU seconds (of this process, so that other load on the
    machine does not count) to build its tables, to detect, for the numpy pass."""
    index, adsets = index_and_size
    made = synthetic_account(index, adsets)
    started = time.process_time()
    tables = tables_of(made)
    built = time.process_time() - started
    started = time.process_time()
    found = find_patterns(tables, days=DAYS)
    detected = time.process_time() - started
    arrays = flat([t for adset in tables for t in adset])
    started = time.process_time()
    passed = numpy_pass(*arrays)
    vectorised = time.process_time() - started
    return {"adsets": adsets, "segments": len(arrays[0]), "tables": built, "detect": detected,
            "numpy": vectorised, "discoveries": len(found),
            "numpy_passed": passed}  # fmt: skip


# --------------------------------------------------------------------- the figures


def share(hits: int, n: int) -> str:
    return f"{100 * hits / n:.1f} % ({hits}/{n})" if n else "—"


def markdown(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=True)]
    line = "| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)) + " |"
            for r in rows]  # fmt: skip
    return "\n".join([line, rule, *body])


def volume_bin(volume: float) -> str:
    for limit, name in ((10, "< 10"), (30, "10–30"), (100, "30–100"), (300, "100–300")):
        if volume < limit:
            return name
    return "≥ 300"


VOLUME_BINS = ("< 10", "10–30", "30–100", "100–300", "≥ 300")


def summarise(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """The figures, as plain data (what --json prints, what the tables show)."""
    plants = [o for o in outcomes if o.case.plant]
    free = [o for o in outcomes if not o.case.plant]

    def recall(group: Sequence[Outcome]) -> dict[str, Any]:
        hits = sum(o.found for o in group)
        return {"found": hits, "n": len(group), "share": hits / len(group) if group else None}

    by_kind: dict[str, Any] = {}
    for kind in (*KINDS, "total"):
        mine = [o for o in plants if kind in ("total", o.case.kind)]
        by_kind[kind] = {
            "matters": recall([o for o in mine if o.size and o.size.matters]),
            "others": recall([o for o in mine if o.size and not o.size.matters]),
            "all": recall(mine),
        }
    by_label = {
        label: {
            "matters": recall([o for o in plants if o.case.label == label and o.size.matters]),
            "all": recall([o for o in plants if o.case.label == label]),
        }
        for label in dict.fromkeys(label for _, label in LABELS)
    }
    grid = {
        f"×{m:g}": {
            b: recall(
                [o for o in plants if o.case.multiplier == m and volume_bin(o.size.volume) == b]
            )
            for b in VOLUME_BINS
        }
        for m in MULTIPLIERS
    }
    by_multiplier = {
        f"×{m:g}": {
            "matters": recall([o for o in plants if o.case.multiplier == m and o.size.matters]),
            "all": recall([o for o in plants if o.case.multiplier == m]),
        }
        for m in MULTIPLIERS
    }
    by_noise = {
        f"{v:g}": recall([o for o in plants if o.case.variation == v and o.size.matters])
        for v in VARIATIONS
    }
    missed = [
        {"adset": o.case.adset_id, "label": o.case.label, "match": o.case.plant["match"],
         "multiplier": o.case.multiplier, "budget": o.case.budget,
         "variation": o.case.variation, "ratio": round(o.size.ratio, 3),
         "weekly_profit": round(o.size.weekly_profit, 1), "volume": round(o.size.volume, 1),
         "z_zero": round(o.size.z_zero, 2), "z_bar": round(o.size.z_bar, 2)}
        for o in plants if o.size.matters and not o.found
    ]  # fmt: skip

    def suggested(group: Sequence[Outcome], kind: str, *, unbacked: bool) -> dict[str, Any]:
        hits = sum(
            any(kind in ("total", s.kind) and not (unbacked and s.backed) for s in o.seen)
            for o in group
        )
        return {"with": hits, "n": len(group), "share": hits / len(group) if group else None}

    pattern_free: dict[str, Any] = {}
    groups: list[tuple[str, list[Outcome]]] = [
        *((f"{v:g}", [o for o in free if o.case.variation == v and o.pattern_free])
          for v in VARIATIONS),
        ("all pattern-free", [o for o in free if o.pattern_free]),
        ("latent ≥ 20 %", [o for o in free if not o.pattern_free]),
        ("all without a plant", list(free)),
    ]  # fmt: skip
    for name, group in groups:
        pattern_free[name] = {
            kind: {"any": suggested(group, kind, unbacked=False),
                   "unbacked": suggested(group, kind, unbacked=True)}
            for kind in (*KINDS, "total")
        }  # fmt: skip
    seen = [s for o in plants for s in o.seen]
    innocent = [s for s in seen if not s.planted]
    on_planted = {
        "discoveries": len(seen),
        "innocent": len(innocent),
        "innocent_unbacked": sum(not s.backed for s in innocent),
        "adsets": len(plants),
        "adsets_with_innocent": sum(any(not s.planted for s in o.seen) for o in plants),
        "adsets_with_unbacked": sum(
            any(not s.planted and not s.backed for s in o.seen) for o in plants
        ),  # fmt: skip
    }
    return {"recall_by_kind": by_kind, "recall_by_label": by_label,
            "recall_by_multiplier": by_multiplier, "recall_grid": grid,
            "recall_by_noise": by_noise, "missed_that_matter": missed,
            "pattern_free": pattern_free, "planted_adsets": on_planted}  # fmt: skip


def report(figures: dict[str, Any], timing: dict[str, Any]) -> str:
    def r(x: dict[str, Any]) -> str:
        return share(x["found"], x["n"])

    out = [f"Recall of planted patterns (found / planted); large enough to matter: a true "
           f"difference ≥ {MIN_DIFFERENCE:.0%}, weekly profit of acting ≥ "
           f"{MATTERS_PROFIT:g} USD, and the data to show it: expected z ≥ "
           f"{MATTERS_Z_ZERO:g} against no difference and ≥ {MATTERS_Z_BAR:g} beyond the "
           f"{MIN_DIFFERENCE:.0%} bar in the {DAYS}-day window", ""]  # fmt: skip
    rows = [(k, r(v["matters"]), r(v["others"]), r(v["all"]))
            for k, v in figures["recall_by_kind"].items()]  # fmt: skip
    out += [markdown(("kind", "large enough", "the others", "all"), rows), ""]
    rows = [(k, r(v["matters"]), r(v["all"])) for k, v in figures["recall_by_label"].items()]
    out += [markdown(("planted segment", "large enough", "all"), rows), ""]
    rows = [(k, r(v["matters"]), r(v["all"])) for k, v in figures["recall_by_multiplier"].items()]
    out += [markdown(("rate ×", "large enough", "all"), rows), ""]
    out += ["Recall by size × data volume (expected purchases in the window at the rest's "
            "rate; hours: clicks ÷ 20)", ""]  # fmt: skip
    rows = [(m, *(r(v[b]) for b in VOLUME_BINS)) for m, v in figures["recall_grid"].items()]
    out += [markdown(("rate ×", *VOLUME_BINS), rows), ""]
    rows = [(k, r(v)) for k, v in figures["recall_by_noise"].items()]
    out += [markdown(("variation", "recall, large enough"), rows), ""]
    out += ["Ad sets without a plant, with any discovery (in brackets: with one the "
            "market's truth does not back). Pattern-free: no segment with the data to be "
            f"tested truly differs by {MIN_DIFFERENCE:.0%}, by variation; latent ≥ 20 %: "
            "the market's latent variation made one that does (a real pattern, not planted)",
            ""]  # fmt: skip
    rows = []
    for v, kinds in figures["pattern_free"].items():
        rows.append((v, *(f"{share(x['any']['with'], x['any']['n'])} "
                          f"[{100 * x['unbacked']['share']:.1f} %]"
                          for x in kinds.values())))  # fmt: skip
    out += [markdown(("ad sets", *KINDS, "total"), rows), ""]
    p = figures["planted_adsets"]
    out += [f"Planted ad sets: {p['discoveries']} discoveries, {p['innocent']} innocent "
            f"(not the plant; {p['innocent_unbacked']} of them not backed by the truth); "
            f"{share(p['adsets_with_innocent'], p['adsets'])} of planted ad sets have an "
            f"innocent one, {share(p['adsets_with_unbacked'], p['adsets'])} an unbacked one",
            ""]  # fmt: skip
    if timing:
        t = timing
        out += [f"Detection time: {t['accounts_timed']} synthetic account(s) of {t['adsets']:,} "
                f"ad sets timed ({t['segments']:,} segments each), scaled to "
                f"{t['accounts']} accounts of 1,000", ""]  # fmt: skip
        rows = [
            ("build the tables (SegmentSums, expand)", f"{t['tables']:.1f}",
             f"{t['tables_50']:,.0f}", "—"),
            ("one numpy pass of the first round", f"{t['numpy']:.2f}", f"{t['numpy_50']:,.0f}",
             "—"),
            ("find_patterns", f"{t['detect']:.1f}", f"{t['detect_50']:,.0f}",
             f"{t['detect'] / t['tables']:.0f} × tables, {t['detect'] / t['numpy']:.0f} × numpy"),
        ]  # fmt: skip
        headers = ("step", f"s per account of {t['adsets']:,}",
                   f"s, {t['accounts']} accounts × 1,000 (1 core)", "ratio")  # fmt: skip
        out += [markdown(headers, rows), ""]
        out += [f"discoveries per account: find_patterns {t['discoveries']}, numpy pass "
                f"(BH only) {t['numpy_passed']}"]  # fmt: skip
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (under a minute)")
    parser.add_argument("--json", action="store_true", help="the figures as JSON on stdout")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timing-accounts", type=int, default=None)
    parser.add_argument("--timing-adsets", type=int, default=None, help="per timed account")
    args = parser.parse_args()
    accounts = cases(args.quick)
    timed = args.timing_accounts or 1
    size = args.timing_adsets or (50 if args.quick else 1000)
    started = time.perf_counter()
    with multiprocessing.Pool(args.workers) as pool:
        # the timed accounts first: each has a core while the quality accounts queue
        timing_jobs = pool.map_async(time_account, [(i, size) for i in range(timed)])
        outcomes = [o for batch in pool.imap(run_account, enumerate(accounts)) for o in batch]
        times = timing_jobs.get()
    elapsed = time.perf_counter() - started
    figures = summarise(outcomes)
    total = {k: sum(t[k] for t in times) for k in ("tables", "detect", "numpy")}
    scale = 50 / timed * 1000 / size
    timing = {
        "accounts": 50, "accounts_timed": timed, "adsets": size,
        "segments": times[0]["segments"], "discoveries": times[0]["discoveries"],
        "numpy_passed": times[0]["numpy_passed"],
        **{k: v / timed for k, v in total.items()},
        **{f"{k}_50": v * scale for k, v in total.items()},
    }  # fmt: skip
    if args.json:
        definition = {
            "weekly_profit": MATTERS_PROFIT,
            "z_zero": MATTERS_Z_ZERO,
            "z_bar": MATTERS_Z_BAR,
            "min_difference": MIN_DIFFERENCE,
            "days": DAYS,
            "backed": BACKED,
        }
        json.dump({"figures": figures, "timing": timing, "seconds": elapsed,
                   "large_enough": definition,
                   "adsets": len(outcomes)}, sys.stdout, indent=1, default=str)  # fmt: skip
        print()
    else:
        print(f"{len(outcomes)} ad sets in {len(accounts)} accounts, {elapsed:.0f} s\n")
        print(report(figures, timing))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
