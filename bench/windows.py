"""Window sums without scanning the daily rows per window: the candidates, measured.

    .venv/bin/python bench/windows.py [--accounts 50] [--adsets 1000] [--days 30]
                                      [--rules 1000]

Rule evaluation needs, per ad set, sums of metric columns over windows of the account's
local days (yesterday, last_3d … last_30d). Today `core.rules.frame._load_sums` runs one
`SUM(col) FILTER (WHERE date BETWEEN …)` aggregate per group of accounts sharing a local
date. This builds bench/engine.py's data (`populate`, in schema `rex_bench_windows`,
dropped at the end) and measures, in one run, each read the median of 3 after a warm-up:

  (c) the floor, as bench/engine.py computes it: one plain GROUP BY over the same rows;
  (2) `_load_sums` as it is, into the frame's numpy arrays; (2′) its aggregates with the
      rows packed as A3 packs them (the transfer's share); `load_frame` whole;
  (a) `preview_rules` (every rule, one pass) as it is, and with `_load_sums` replaced
      by A3 (patched in this process only), verdicts and sums checked equal;
  A   running totals in a side table `ad_metric_running(entity_id, date, account_id,
      level, is_last, cum_<column>…)`, primary key (entity_id, date): per entity one row
      per local date from its first metric day to its last, gaps filled (the writer's
      invariant), its last row flagged. A window [d0, d1] is cum(≤ d1) − cum(≤ d0 − 1):
      the rows on the bound dates (`date = ANY(…)`), plus the entity's last row when a
      bound is past it; no row and not past the last row: before the first, 0. Read as
      A1 SQLAlchemy rows → numpy; A2 binary COPY (one message per row) → numpy; A3 the
      rows packed server-side into one value → numpy; A4 the differences taken in SQL
      (one row per entity); A5 LATERAL "latest row ≤ bound" (needs no invariant);
  B   a covering index on ad_metrics (account_id, date) INCLUDE (entity_id, the rules'
      columns), under the current `_load_sums` query (index-only scan);
and the writers' cost: after a sync rewrote the last 28 days of every entity of one
account (and, account by account, of all of them), the running totals recomputed from
the first rewritten day (stale days deleted, an upsert from a window function, last-row
flags moved); B's: that rewrite's time with and without the covering index.

Every candidate's sums are checked equal to (2)'s, entity by entity and window by window,
before it is timed; again after the writers ran; and at the end on sparse data (random
holes, heads and tails cut, entities without rows; then a restatement that deletes and
adds days, written incrementally and compared with a rebuild from scratch) with more
windows (today, last_3d_with_today, this_month).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from core.access.actor import SYSTEM

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCHEMA = "rex_bench_windows"
REPEAT = 3  # every read: the median of three runs, after a warm-up
RESTATED = 28  # days a sync rewrites (Meta's attribution look-back)
EPOCH = date(1970, 1, 1)
RUNNING = "ad_metric_running"
COVER = "ix_bench_ad_metrics_cover"
Sums = dict[tuple[str, str], np.ndarray]


# ------------------------------------------------------------------------- the setup


@dataclass
class Group:
    """Accounts sharing a local date, and the bound dates their windows need."""

    local: date
    account_ids: list[int]
    positions: np.ndarray  # frame positions of their entities
    bounds: list[date]  # distinct, sorted: every window's d1 and d0 − 1
    slots: list[tuple[int, int]]  # per (window, column) pair: (slot of d1, slot of d0 − 1)


@dataclass
class Setup:
    level: Any
    needs: dict[Any, set[str]]
    pairs: list[tuple[Any, str]]  # (window, column), sorted, as load_frame orders them
    columns: list[str]  # the stored columns the pairs read
    frame: Any  # core.rules.frame.Frame, sums as (2) computed them
    position: dict[int, int]  # entity id → frame position (for `_load_sums`)
    pos_of: np.ndarray  # entity id → frame position, −1 if not in the frame
    group_of: np.ndarray  # frame position → group index
    groups: list[Group]


def make_setup(engine, needs: dict[Any, set[str]], now) -> Setup:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from core.db import read_session
    from core.db.models import AdAccount, Level
    from core.rules.frame import load_frame
    from core.rules.windows import local_today

    with read_session(engine) as session:
        query = select(AdAccount).where(AdAccount.platform == "meta", AdAccount.connected)
        accounts = list(session.scalars(query.order_by(AdAccount.id)))
        today = {a.id: local_today(a.timezone_name, now) for a in accounts}
        frame = load_frame(session, Level.ADSET, accounts, today, needs)
    setup = setup_of(frame, Level.ADSET, needs)
    setup.position = {e.id: i for i, e in enumerate(frame.entities)}
    return setup


def setup_of(frame, level, needs: dict[Any, set[str]]) -> Setup:  # type: ignore[no-untyped-def]
    """The groups of accounts sharing a local date, their bound dates, the lookups."""
    pairs = sorted((w, c) for w, cs in needs.items() for c in cs)
    ids = np.fromiter((e.id for e in frame.entities), np.int64, len(frame.entities))
    pos_of = np.full(int(ids.max()) + 1, -1, np.int64)
    pos_of[ids] = np.arange(len(ids))
    by_date: dict[date, list[int]] = {}
    for account_id, local in sorted(frame.today.items()):
        by_date.setdefault(local, []).append(account_id)
    account_group = np.full(max(frame.today) + 1, -1, np.int64)
    for g, members in enumerate(by_date.values()):
        account_group[members] = g
    group_of = account_group[frame.account_of]
    groups = []
    for g, (local, account_ids) in enumerate(by_date.items()):
        edges = []
        for window, _ in pairs:
            days = window.days_range(local)
            if days is None:
                raise SystemExit(f"{window.name}: lifetime windows are not measured here")
            edges.append((days[1], days[0] - timedelta(days=1)))
        bounds = sorted({d for edge in edges for d in edge})
        slots = [(bounds.index(hi), bounds.index(lo)) for hi, lo in edges]
        groups.append(Group(local, account_ids, np.flatnonzero(group_of == g), bounds, slots))
    return Setup(
        level=level,
        needs=needs,
        pairs=pairs,
        columns=sorted({c for _, c in pairs}),
        frame=frame,
        position={},
        pos_of=pos_of,
        group_of=group_of,
        groups=groups,
    )


def load_sums_a3(session, level, frame, pairs, position) -> None:  # type: ignore[no-untyped-def]
    """`core.rules.frame._load_sums` as A3 would replace it (patched in for (a) with A3)."""
    from sqlalchemy import text

    needs: dict[Any, set[str]] = {}
    for window, column in pairs:
        needs.setdefault(window, set()).add(column)
    setup = setup_of(frame, level, needs)
    sql, params = bound_rows_sql(setup)
    session.execute(text("SET LOCAL jit = off"))
    cursor = session.connection().connection.driver_connection.cursor()
    frame.sums.update(
        sums_from_bounds(setup, copy_packed(cursor, sql, params, 3 + len(setup.columns)))
    )


def timed(read: Callable[[], Any]) -> tuple[float, Any]:
    """The median of REPEAT runs after a warm-up, and the last run's answer."""
    result = read()
    times = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        result = read()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def same_sums(setup: Setup, expected: Sums, got: Sums, what: str) -> None:
    assert set(expected) == set(got), what
    for key, values in expected.items():
        if not np.array_equal(values, got[key]):
            wrong = np.flatnonzero(values != got[key])
            entity = setup.frame.entities[int(wrong[0])]
            raise AssertionError(
                f"{what}: {key} differs for {len(wrong)} entities, e.g. entity {entity.id} "
                f"(account {entity.account_id}): {values[wrong[0]]} ≠ {got[key][wrong[0]]}"
            )


def run_sql(engine, sql: str, params: dict[str, Any] | None = None) -> float:  # type: ignore[no-untyped-def]
    """One statement in its own transaction; its time."""
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.exec_driver_sql(sql, params or {})
    return time.perf_counter() - started


def vacuum(engine, table: str) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - started


def scalar(engine, sql: str) -> Any:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return connection.exec_driver_sql(sql).scalar()


def size(engine, table: str) -> str:  # type: ignore[no-untyped-def]
    total = scalar(engine, f"SELECT pg_total_relation_size('{table}')")
    return f"{total / 2**20:.0f} MB"


# ----------------------------------------------------------------- (c) and (2) as they are


def floor_query(documents):  # type: ignore[no-untyped-def]
    """(c) exactly as bench/engine.py builds it."""
    from sqlalchemy import func, select

    from bench.engine import NOW, ZONES
    from core.db.models import AdEntity, AdMetric
    from core.rules.evaluate import _needs
    from core.rules.windows import local_today

    columns = sorted({c for d in documents for cs in _needs(d).values() for c in cs})
    windows = {w for d in documents for w in _needs(d)}
    local_days = {local_today(tz, NOW) for tz in {z for _, z in ZONES}}
    spans = [w.days_range(day) for w in windows for day in local_days]
    return (
        select(AdMetric.entity_id, *(func.sum(getattr(AdMetric, c)) for c in columns))
        .where(
            AdMetric.entity_id.in_(select(AdEntity.id).where(AdEntity.level == "adset")),
            AdMetric.date.between(min(s[0] for s in spans), max(s[1] for s in spans)),
        )
        .group_by(AdMetric.entity_id)
    )


def read_floor(engine, query) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    from core.db import read_session

    with read_session(engine) as session:
        session.execute(text("SET LOCAL jit = off"))
        return len(session.execute(query).all())


def read_current(engine, setup: Setup) -> Sums:  # type: ignore[no-untyped-def]
    """(2): `_load_sums` itself, into a frame's zeroed arrays."""
    from core.db import read_session
    from core.rules.frame import _load_sums

    n = len(setup.frame.entities)
    frame = replace(setup.frame, sums={(w.name, c): np.zeros(n, np.int64) for w, c in setup.pairs})
    with read_session(engine) as session:
        _load_sums(session, setup.level, frame, setup.pairs, setup.position)
    return frame.sums


def read_load_frame(engine, setup: Setup, now) -> int:  # type: ignore[no-untyped-def]
    """`load_frame` whole (accounts, entities, campaigns with budgets, sums)."""
    from sqlalchemy import select

    from core.db import read_session
    from core.db.models import AdAccount
    from core.rules.frame import load_frame
    from core.rules.windows import local_today

    with read_session(engine) as session:
        query = select(AdAccount).where(AdAccount.platform == "meta", AdAccount.connected)
        accounts = list(session.scalars(query.order_by(AdAccount.id)))
        today = {a.id: local_today(a.timezone_name, now) for a in accounts}
        return len(load_frame(session, setup.level, accounts, today, setup.needs))


def aggregates_of(engine, read: Callable[[], Any]) -> list[tuple[str, Any]]:  # type: ignore[no-untyped-def]
    """The FILTER aggregates over ad_metrics that `read` runs, with their parameters."""
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "FILTER" in statement and "ad_metrics" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        read()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def read_current_packed(engine, setup: Setup, statements: list[tuple[str, Any]]) -> Sums:  # type: ignore[no-untyped-def]
    """(2′): `_load_sums`' own aggregates, their rows fetched packed into one value."""
    from sqlalchemy import text

    from core.db import read_session

    width = 1 + len(setup.pairs)
    with read_session(engine) as session:
        session.execute(text("SET LOCAL jit = off"))
        cursor = session.connection().connection.driver_connection.cursor()
        tables = [copy_packed(cursor, sql, params, width) for sql, params in statements]
    table = np.concatenate(tables)
    pos = setup.pos_of[table[:, 0]]
    sums: Sums = {}
    for j, (window, column) in enumerate(setup.pairs):
        values = np.zeros(len(setup.frame.entities), np.int64)
        values[pos] = table[:, j + 1]
        sums[(window.name, column)] = values
    return sums


def scans_of(engine, statements: list[tuple[str, Any]]) -> str:  # type: ignore[no-untyped-def]
    """The scans PostgreSQL plans on ad_metrics for these statements."""
    found: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if node.get("Relation Name") == "ad_metrics":
            parallel = "Parallel " if node.get("Parallel Aware") else ""
            index = f" {node['Index Name']}" if "Index Name" in node else ""
            found.append(parallel + node["Node Type"] + index)
        for child in node.get("Plans", []):
            walk(child)

    with engine.connect() as connection:
        cursor = connection.connection.driver_connection.cursor()
        cursor.execute("SET jit = off")
        for statement, parameters in statements:
            cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
            walk(cursor.fetchone()[0][0]["Plan"])
        cursor.execute("RESET jit")
    return " + ".join(found)


# --------------------------------------------------------------- A: the running totals

# the stored metric columns (core.db.models.METRIC_COLUMNS): the side table keeps them all
CUMS = ("spend_micros", "impressions", "clicks", "reach", "conversions", "revenue_micros")


def create_running(engine, table: str = RUNNING) -> None:  # type: ignore[no-untyped-def]
    cums = ", ".join(f"cum_{c} BIGINT NOT NULL" for c in CUMS)
    run_sql(engine, f"DROP TABLE IF EXISTS {table}")
    run_sql(
        engine,
        f"CREATE TABLE {table} (entity_id INTEGER NOT NULL, date DATE NOT NULL, "
        f"account_id INTEGER NOT NULL, level VARCHAR(20) NOT NULL, is_last BOOLEAN NOT NULL, "
        f"{cums}, PRIMARY KEY (entity_id, date))",
    )


def index_running(engine, table: str = RUNNING) -> None:  # type: ignore[no-untyped-def]
    # the reader's bound rows and the writer's row before the rewritten days
    run_sql(engine, f"CREATE INDEX ix_{table}_bounds ON {table} (account_id, date, level)")
    # the reader's "past the last row" and the writer's old last rows
    run_sql(
        engine,
        f"CREATE INDEX ix_{table}_last ON {table} (account_id, date, level) WHERE is_last",
    )
    vacuum(engine, table)


def fill_running(engine, table: str = RUNNING) -> float:  # type: ignore[no-untyped-def]
    """From scratch: every entity's days from its first metric day to its last, gaps filled
    with the day before's totals; stored in date order, as daily syncs append them."""
    cums = ", ".join(f"SUM(COALESCE(m.{c}, 0)) OVER w" for c in CUMS)
    # days as integers from the entity's first: generate_series over dates would go
    # through timestamptz, and so through the session's time zone
    return run_sql(
        engine,
        f"INSERT INTO {table} SELECT s.entity_id, s.lo + g.i, s.account_id, s.level, "
        f"s.lo + g.i = s.hi, {cums} FROM (SELECT m.entity_id, m.account_id, e.level, "
        "MIN(m.date) AS lo, MAX(m.date) AS hi FROM ad_metrics m JOIN ad_entities e "
        "ON e.id = m.entity_id GROUP BY m.entity_id, m.account_id, e.level) s "
        "CROSS JOIN LATERAL generate_series(0, s.hi - s.lo) AS g(i) "
        "LEFT JOIN ad_metrics m ON m.entity_id = s.entity_id AND m.date = s.lo + g.i "
        "WINDOW w AS (PARTITION BY s.entity_id ORDER BY g.i ROWS UNBOUNDED PRECEDING) "
        "ORDER BY 2, 3, 1",
    )


def rewrite_running(engine, account_ids: list[int], since: date) -> float:  # type: ignore[no-untyped-def]
    """The writer: after a sync rewrote (updated, inserted, deleted) `ad_metrics` rows of
    these accounts from `since` on, the running totals made exact again. One transaction
    (in Rex: the sync's own, after reconcile)."""
    bases = ", ".join(f"COALESCE(p.cum_{c}, 0) AS base_{c}" for c in CUMS)
    sums = ", ".join(f"s.base_{c} + SUM(COALESCE(m.{c}, 0)) OVER w" for c in CUMS)
    sets = ", ".join(f"cum_{c} = EXCLUDED.cum_{c}" for c in CUMS)
    old = ", ".join(f"{RUNNING}.{c}" for c in ("is_last", *(f"cum_{c}" for c in CUMS)))
    new = ", ".join(f"EXCLUDED.{c}" for c in ("is_last", *(f"cum_{c}" for c in CUMS)))
    params = {"accounts": account_ids, "since": since}
    # each entity's days to (re)write: from the day after its row answering since − 1 (its
    # row that day, or its last row before: a gap to fill), else from its first new day,
    # to its new last day
    spans = (
        "WITH fresh AS (SELECT m.entity_id, MIN(m.date) AS lo, MAX(m.date) AS hi "
        "FROM ad_metrics m WHERE m.account_id = ANY(%(accounts)s) AND m.date >= %(since)s "
        "GROUP BY m.entity_id), "
        f"spans AS (SELECT f.entity_id, e.account_id, e.level, "
        f"COALESCE(p.date + 1, f.lo) AS lo, f.hi, {bases} FROM fresh f "
        "JOIN ad_entities e ON e.id = f.entity_id "
        f"LEFT JOIN (SELECT * FROM {RUNNING} WHERE account_id = ANY(%(accounts)s) "
        "AND (date = %(since)s - 1 OR (is_last AND date < %(since)s - 1))) p "
        "ON p.entity_id = f.entity_id) "
    )
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.exec_driver_sql("SET LOCAL jit = off")  # compiling costs more than it saves
        # 1. days from `since` outside the spans: the sync deleted them
        connection.exec_driver_sql(
            f"{spans} DELETE FROM {RUNNING} r WHERE r.account_id = ANY(%(accounts)s) "
            "AND r.date >= %(since)s AND NOT EXISTS (SELECT 1 FROM spans s "
            "WHERE s.entity_id = r.entity_id AND r.date BETWEEN s.lo AND s.hi)",
            params,
        )
        # 2. the spans' days, from a window function over the new rows (a day without a
        #    row keeps the day before's totals)
        connection.exec_driver_sql(
            f"{spans} INSERT INTO {RUNNING} SELECT s.entity_id, s.lo + g.i, s.account_id, "
            f"s.level, s.lo + g.i = s.hi, {sums} FROM spans s "
            "CROSS JOIN LATERAL generate_series(0, s.hi - s.lo) AS g(i) "
            "LEFT JOIN ad_metrics m ON m.entity_id = s.entity_id AND m.date = s.lo + g.i "
            "AND m.account_id = ANY(%(accounts)s) AND m.date >= %(since)s "
            "WINDOW w AS (PARTITION BY s.entity_id ORDER BY g.i ROWS UNBOUNDED PRECEDING) "
            "ORDER BY 2, 1 "
            f"ON CONFLICT (entity_id, date) DO UPDATE SET is_last = EXCLUDED.is_last, {sets} "
            f"WHERE ({old}) IS DISTINCT FROM ({new})",  # unchanged rows are not rewritten
            params,
        )
        # 3. entities left with no day from `since` on: their filled days past their
        #    (new) last metric day go too, and that day is flagged last
        connection.exec_driver_sql(
            f"WITH gone AS (SELECT p.entity_id, COALESCE((SELECT MAX(m.date) FROM ad_metrics m "
            "WHERE m.entity_id = p.entity_id), DATE '-infinity') AS hi "
            f"FROM {RUNNING} p WHERE p.account_id = ANY(%(accounts)s) "
            "AND p.date = %(since)s - 1 AND NOT EXISTS (SELECT 1 FROM ad_metrics m "
            "WHERE m.entity_id = p.entity_id AND m.date >= %(since)s)), "
            f"cut AS (DELETE FROM {RUNNING} r USING gone WHERE r.entity_id = gone.entity_id "
            "AND r.date > gone.hi) "
            f"UPDATE {RUNNING} r SET is_last = true FROM gone "
            "WHERE r.entity_id = gone.entity_id AND r.date = gone.hi AND NOT r.is_last",
            params,
        )
        # 4. an old last row before `since` that now has a next day is last no more
        connection.exec_driver_sql(
            f"UPDATE {RUNNING} r SET is_last = false WHERE r.account_id = ANY(%(accounts)s) "
            f"AND r.is_last AND r.date < %(since)s AND EXISTS (SELECT 1 FROM {RUNNING} n "
            "WHERE n.entity_id = r.entity_id AND n.date = r.date + 1)",
            params,
        )
    return time.perf_counter() - started


def restate(engine, account_ids: list[int], since: date) -> float:  # type: ignore[no-untyped-def]
    """A sync's rewrite of the days from `since`: Meta revised every number."""
    return run_sql(
        engine,
        "UPDATE ad_metrics SET spend_micros = spend_micros + 1000, impressions = impressions"
        " + 3, clicks = clicks + 1, conversions = conversions + 1, revenue_micros ="
        " revenue_micros + 7000 WHERE account_id = ANY(%(accounts)s) AND date >= %(since)s",
        {"accounts": account_ids, "since": since},
    )


def copy_int64(cursor, sql: str, params: dict[str, Any], width: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A query's rows (`width` non-null BIGINT columns) as an int64 array, through binary
    COPY: fixed-size records, decoded by numpy at once."""
    buffer = bytearray()
    with cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)", params) as copy:
        for chunk in copy:
            buffer += chunk
    assert buffer[:11] == b"PGCOPY\n\xff\r\n\x00" and buffer[15:19] == b"\0\0\0\0"
    fields = [("n", ">i2")] + [
        x for i in range(width) for x in ((f"l{i}", ">i4"), (f"v{i}", ">i8"))
    ]
    records = np.frombuffer(memoryview(buffer)[19 : len(buffer) - 2], np.dtype(fields))
    assert (records["n"] == width).all() and all(
        (records[f"l{i}"] == 8).all() for i in range(width)
    )
    return np.stack([records[f"v{i}"] for i in range(width)], axis=1).astype(np.int64)


def copy_packed(cursor, sql: str, params: dict[str, Any], width: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The same, the rows packed by the server into one value: each row's `width` BIGINTs
    as 8 big-endian bytes each (`int8send`), concatenated (`string_agg`); one COPY message
    instead of one per row, decoded by numpy at once."""
    names = ", ".join(f"c{i}" for i in range(width))
    row = " || ".join(f"int8send(t.c{i}::int8)" for i in range(width))
    buffer = bytearray()
    statement = (
        f"COPY (SELECT string_agg({row}, ''::bytea) FROM ({sql}) AS t({names})) "
        "TO STDOUT (FORMAT BINARY)"
    )
    with cursor.copy(statement, params) as copy:
        for chunk in copy:
            buffer += chunk
    assert buffer[:11] == b"PGCOPY\n\xff\r\n\x00" and buffer[15:19] == b"\0\0\0\0"
    assert int.from_bytes(buffer[19:21], "big") == 1
    length = int.from_bytes(buffer[21:25], "big", signed=True)
    if length < 0:  # no rows: string_agg gives NULL
        return np.zeros((0, width), np.int64)
    assert length % (8 * width) == 0 and len(buffer) == 25 + length + 2
    values = np.frombuffer(buffer, ">i8", length // 8, 25)
    return values.astype(np.int64).reshape(-1, width)


def group_params(g: int, group: Any) -> dict[str, Any]:
    """The query parameters of local-date group `g`: its accounts and bound dates."""
    return {
        f"a{g}": group.account_ids,
        f"b{g}": group.bounds,
        f"lo{g}": group.bounds[0],
        f"hi{g}": group.bounds[-1],
    }


def bound_rows_sql(setup: Setup) -> tuple[str, dict[str, Any]]:
    """The rows on each group's bound dates, and the last rows a bound is past."""
    params: dict[str, Any] = {"level": setup.level.value}
    arms = []
    for g, group in enumerate(setup.groups):
        params.update(group_params(g, group))
        arms.append(
            f"(r.account_id = ANY(%(a{g})s) AND r.date = ANY(%(b{g})s) AND r.level = %(level)s)"
        )
        arms.append(
            f"(r.is_last AND r.account_id = ANY(%(a{g})s) AND r.date >= %(lo{g})s "
            f"AND r.date < %(hi{g})s AND r.level = %(level)s)"
        )
    cums = ", ".join(f"r.cum_{c}" for c in setup.columns)
    sql = (
        "SELECT r.entity_id::int8, (r.date - DATE '1970-01-01')::int8, r.is_last::int::int8, "
        f"{cums} FROM {RUNNING} r WHERE {' OR '.join(arms)}"
    )
    return sql, params


def sums_from_bounds(setup: Setup, table: np.ndarray) -> Sums:
    """Rows (entity id, day, is last, cum…) → every (window, column)'s sums, in numpy."""
    n, groups = len(setup.frame.entities), setup.groups
    ids = table[:, 0]
    known = ids < len(setup.pos_of)
    pos = np.full(len(ids), -1, np.int64)
    pos[known] = setup.pos_of[ids[known]]
    table, pos = table[pos >= 0], pos[pos >= 0]
    days, cums, group = table[:, 1], table[:, 3:], setup.group_of[pos]
    width = max(len(g.bounds) for g in groups)
    bound_days = np.full((len(groups), width), np.iinfo(np.int64).min, np.int64)
    for g, bounds in enumerate(g.bounds for g in groups):
        bound_days[g, : len(bounds)] = [(d - EPOCH).days for d in bounds]
    first = int(bound_days[bound_days > np.iinfo(np.int64).min].min())
    span = int(bound_days.max()) - first + 1
    slot_of = np.full((len(groups), span), -1, np.int64)  # (group, day − first) → slot
    for g, bounds in enumerate(g.bounds for g in groups):
        slot_of[g, [(d - EPOCH).days - first for d in bounds]] = range(len(bounds))
    offset = days - first
    inside = (offset >= 0) & (offset < span)
    slot = np.full(len(days), -1, np.int64)
    slot[inside] = slot_of[group[inside], offset[inside]]
    at = np.zeros((n, width, cums.shape[1]), np.int64)  # cum(≤ bound), per entity and slot
    hit = slot >= 0
    at[pos[hit], slot[hit]] = cums[hit]
    last = np.flatnonzero(table[:, 2] == 1)  # a bound past the entity's last row: its totals
    rows, slots = np.nonzero(bound_days[group[last]] > days[last, None])
    at[pos[last[rows]], slots] = cums[last[rows]]
    sums: Sums = {}
    for j, (window, column) in enumerate(setup.pairs):
        c, values = setup.columns.index(column), np.zeros(n, np.int64)
        for group_ in groups:
            hi, lo = group_.slots[j]
            p = group_.positions
            values[p] = at[p, hi, c] - at[p, lo, c]
        sums[(window.name, column)] = values
    return sums


def read_a_rows(engine, setup: Setup) -> Sums:  # type: ignore[no-untyped-def]
    """A1: the bound rows through SQLAlchemy's Core rows, as `_load_sums` fetches."""
    from sqlalchemy import text

    from core.db import read_session

    sql, params = bound_rows_sql(setup)
    with read_session(engine) as session:
        session.execute(text("SET LOCAL jit = off"))
        rows = session.connection().exec_driver_sql(sql, params).all()
        table = np.array([tuple(r) for r in rows], dtype=np.int64)
    return sums_from_bounds(setup, table.reshape(-1, 3 + len(setup.columns)))


def read_a_copy(engine, setup: Setup, transfer=copy_int64) -> Sums:  # type: ignore[no-untyped-def]
    """A2: the bound rows through binary COPY (A3: packed into one value)."""
    from sqlalchemy import text

    from core.db import read_session

    sql, params = bound_rows_sql(setup)
    with read_session(engine) as session:
        session.execute(text("SET LOCAL jit = off"))
        cursor = session.connection().connection.driver_connection.cursor()
        table = transfer(cursor, sql, params, 3 + len(setup.columns))
    return sums_from_bounds(setup, table)


def read_a_packed(engine, setup: Setup) -> Sums:  # type: ignore[no-untyped-def]
    return read_a_copy(engine, setup, copy_packed)


def read_a_sql(engine, setup: Setup) -> Sums:  # type: ignore[no-untyped-def]
    """A3: the same rows, the differences taken in SQL: one row per entity."""
    from sqlalchemy import text

    from core.db import read_session

    params: dict[str, Any] = {"level": setup.level.value}
    parts = []
    for g, group in enumerate(setup.groups):
        params.update(group_params(g, group))
        for s, bound in enumerate(group.bounds):
            params[f"d{g}_{s}"] = bound

        def at(column: str, slot: int, g: int = g) -> str:
            d = f"%(d{g}_{slot})s"
            return (
                f"COALESCE(MAX(r.cum_{column}) FILTER (WHERE r.date = {d}), "
                f"MAX(r.cum_{column}) FILTER (WHERE r.is_last AND r.date < {d}), 0)"
            )

        values = ", ".join(
            f"{at(c, hi)} - {at(c, lo)}"
            for (_, c), (hi, lo) in zip(setup.pairs, group.slots, strict=True)
        )
        parts.append(
            f"SELECT r.entity_id::int8, {values} FROM {RUNNING} r WHERE "
            f"(r.account_id = ANY(%(a{g})s) AND r.date = ANY(%(b{g})s) AND r.level = %(level)s)"
            f" OR (r.is_last AND r.account_id = ANY(%(a{g})s) AND r.date >= %(lo{g})s "
            f"AND r.date < %(hi{g})s AND r.level = %(level)s) GROUP BY r.entity_id"
        )
    with read_session(engine) as session:
        session.execute(text("SET LOCAL jit = off"))
        cursor = session.connection().connection.driver_connection.cursor()
        table = copy_packed(cursor, " UNION ALL ".join(parts), params, 1 + len(setup.pairs))
    n = len(setup.frame.entities)
    pos = setup.pos_of[table[:, 0]]
    sums: Sums = {}
    for j, (window, column) in enumerate(setup.pairs):
        values = np.zeros(n, np.int64)
        values[pos] = table[:, j + 1]
        sums[(window.name, column)] = values
    return sums


def read_a_lateral(engine, setup: Setup) -> Sums:  # type: ignore[no-untyped-def]
    """A4: per entity and bound, its latest row on or before the bound (an index probe
    each): right whatever the rows' density, no gap filling nor last-row flag needed."""
    from sqlalchemy import text

    from core.db import read_session

    params: dict[str, Any] = {"level": setup.level.value}
    cums = ", ".join(f"x.cum_{c}" for c in setup.columns)
    inner = ", ".join(f"r.cum_{c}" for c in setup.columns)
    parts = []
    for g, group in enumerate(setup.groups):
        params.update({f"a{g}": group.account_ids, f"b{g}": group.bounds})
        parts.append(
            f"SELECT e.id::int8, (b.d - DATE '1970-01-01')::int8, 0::int8, {cums} "
            f"FROM ad_entities e CROSS JOIN unnest(%(b{g})s::date[]) AS b(d) "
            f"CROSS JOIN LATERAL (SELECT {inner} FROM {RUNNING} r WHERE r.entity_id = e.id "
            "AND r.date <= b.d ORDER BY r.date DESC LIMIT 1) x "
            f"WHERE e.level = %(level)s AND e.account_id = ANY(%(a{g})s)"
        )
    with read_session(engine) as session:
        session.execute(text("SET LOCAL jit = off"))
        cursor = session.connection().connection.driver_connection.cursor()
        table = copy_packed(cursor, " UNION ALL ".join(parts), params, 3 + len(setup.columns))
    return sums_from_bounds(setup, table)


def running_matches_rebuild(engine) -> None:  # type: ignore[no-untyped-def]
    """The incrementally written table equals one rebuilt from scratch, row for row."""
    create_running(engine, "ad_metric_running_check")
    fill_running(engine, "ad_metric_running_check")
    for a, b in ((RUNNING, "ad_metric_running_check"), ("ad_metric_running_check", RUNNING)):
        with engine.connect() as connection:
            extra = connection.exec_driver_sql(
                f"SELECT * FROM (TABLE {a} EXCEPT TABLE {b}) x ORDER BY 1, 2"
            ).all()
        assert not extra, f"{len(extra)} rows of {a} not in {b}, e.g. {extra[:3]}"
    run_sql(engine, "DROP TABLE ad_metric_running_check")


# ------------------------------------------------------------------------------ main


def make_sparse(engine, account_ids: list[int], first: date, last: date) -> None:  # type: ignore[no-untyped-def]
    """Holes, cut heads and tails, entities with no rows at all (both levels)."""
    params = {
        "accounts": account_ids,
        "head": first + timedelta(days=9),
        "tail": last - timedelta(days=9),
    }
    with engine.begin() as connection:
        connection.exec_driver_sql("SELECT setseed(0.25)")
        connection.exec_driver_sql(
            "DELETE FROM ad_metrics WHERE account_id = ANY(%(accounts)s) AND (random() < 0.3 "
            "OR mod(entity_id, 97) = 0 OR (mod(entity_id, 7) = 1 AND date < %(head)s) "
            "OR (mod(entity_id, 7) = 2 AND date > %(tail)s))",
            params,
        )


def sparse_restatement(engine, account_ids: list[int], since: date, last: date) -> None:  # type: ignore[no-untyped-def]
    """A sync that deletes days, adds days in gaps (and to entities that had none), cuts
    whole entities' recent days, and revises the rest."""
    params = {"accounts": account_ids, "since": since, "last": last}
    with engine.begin() as connection:
        connection.exec_driver_sql("SELECT setseed(0.5)")
        connection.exec_driver_sql(
            "DELETE FROM ad_metrics WHERE account_id = ANY(%(accounts)s) AND date >= %(since)s"
            " AND (random() < 0.2 OR mod(entity_id, 11) = 3)",
            params,
        )
        connection.exec_driver_sql(
            "INSERT INTO ad_metrics (account_id, entity_id, date, spend_micros, impressions, "
            "clicks, reach, conversions, revenue_micros) SELECT e.account_id, e.id, d.date, "
            "1000000 + e.id, 100, 3, 70, 1, 2500000 FROM ad_entities e CROSS JOIN LATERAL "
            "(SELECT %(since)s + g.i AS date FROM generate_series(0, %(last)s - %(since)s) "
            "AS g(i)) d WHERE e.account_id = ANY(%(accounts)s) AND mod(e.id, 3) = 0 "
            "AND mod(e.id, 11) <> 3 AND mod(e.id + (d.date - DATE '1970-01-01'), 5) = 0 "
            "ON CONFLICT (entity_id, date) DO NOTHING",
            params,
        )
    restate(engine, account_ids, since)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--adsets", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rules", type=int, default=1000)
    args = parser.parse_args()

    from sqlalchemy import func, select

    from bench.engine import NOW, pg_schema, populate
    from core.db import read_session
    from core.db.engine import get_engine
    from core.db.models import METRIC_COLUMNS, AdMetric, AutomationRule
    from core.rules.document import parse_rule
    from core.rules.evaluate import _needs
    from core.rules.windows import Window

    assert tuple(METRIC_COLUMNS) == CUMS
    table: list[tuple[str, float, str, str]] = []  # candidate, read, writers' cost, notes

    def say(line: str) -> None:
        print(line, flush=True)

    with pg_schema(SCHEMA) as url:
        engine = get_engine(url)
        started = time.perf_counter()
        rows = populate(engine, args.accounts, args.adsets, args.days, args.rules)
        elapsed = time.perf_counter() - started
        say(f"loaded {rows:,} metric rows, {args.rules} rules in {elapsed:.0f} s")
        with read_session(engine) as session:
            rules = session.scalars(select(AutomationRule).order_by(AutomationRule.id))
            documents = [parse_rule(r.document) for r in rules]
            session.execute(select(func.count()).select_from(AdMetric)).scalar_one()  # warm
        needs: dict[Any, set[str]] = {}
        for document in documents:
            for window, columns in _needs(document).items():
                needs.setdefault(window, set()).update(columns)
        setup = make_setup(engine, needs, NOW)
        expected = setup.frame.sums
        first_day, last_day = NOW.date() - timedelta(days=args.days), NOW.date()
        since = last_day - timedelta(days=RESTATED - 1)
        account_ids = sorted(setup.frame.accounts)
        for g in setup.groups:
            say(
                f"{len(g.account_ids)} accounts on {g.local}: bound dates "
                f"{', '.join(d.isoformat() for d in g.bounds)}"
            )

        # (c) and (2), as they are
        query = floor_query(documents)
        floor, floor_rows = timed(lambda: read_floor(engine, query))
        assert floor_rows == len(setup.frame)
        table.append(
            (
                "(c) floor: one GROUP BY over the same rows (bench/engine.py)",
                floor,
                "—",
                f"{floor_rows:,} rows fetched, {len(setup.columns)} plain sums",
            )
        )
        current, sums = timed(lambda: read_current(engine, setup))
        same_sums(setup, expected, sums, "(2)")
        statements = aggregates_of(engine, lambda: read_current(engine, setup))
        table.append(
            (
                "(2) `_load_sums` now: a FILTER aggregate per local date → numpy",
                current,
                "—",
                f"{len(statements)} aggregates of {len(setup.pairs)} FILTER sums; "
                f"scans: {scans_of(engine, statements)}",
            )
        )
        packed, sums = timed(lambda: read_current_packed(engine, setup, statements))
        same_sums(setup, expected, sums, "(2′)")
        table.append(
            (
                "(2′) the same aggregates, rows packed into one value (as A3)",
                packed,
                "—",
                "the transfer's share of (2)",
            )
        )
        whole, _ = timed(lambda: read_load_frame(engine, setup, NOW))
        table.append(
            (
                "(2) `load_frame` whole (entities + sums), for reference",
                whole,
                "—",
                "what (a) spends on data",
            )
        )
        say(
            f"(c) {floor:.3f} s, (2) {current:.3f} s, (2′) {packed:.3f} s, load_frame {whole:.3f} s"
        )

        # A: the running totals built, checked, read
        create_running(engine)
        backfill = fill_running(engine)
        index_running(engine)
        running_size, metrics_size = size(engine, RUNNING), size(engine, "ad_metrics")
        running_rows = scalar(engine, f"SELECT count(*) FROM {RUNNING}")
        bound_rows = count_bound_rows(engine, setup)
        say(
            f"running totals: {running_rows:,} rows, {running_size} with indexes (ad_metrics "
            f"{metrics_size}), backfill {backfill:.1f} s; {bound_rows:,} bound rows read"
        )
        readers = (
            (
                "A1 bound rows → SQLAlchemy rows → numpy",
                read_a_rows,
                f"{bound_rows:,} rows fetched as `_load_sums` fetches",
            ),
            (
                "A2 bound rows → binary COPY, a message per row → numpy",
                read_a_copy,
                "psycopg's per-message cost is most of it",
            ),
            (
                "A3 bound rows → packed into one value → numpy",
                read_a_packed,
                "`string_agg(int8send(…))` server-side: one COPY message, decoded by numpy at once",
            ),
            (
                "A4 differences in SQL, one row per entity → packed",
                read_a_sql,
                f"{len(setup.frame):,} rows of {len(setup.pairs)} sums",
            ),
            (
                "A5 LATERAL latest row ≤ bound (no invariant) → packed",
                read_a_lateral,
                f"{len(setup.frame) * len(setup.groups[0].bounds):,} index probes; would work "
                "on a plain sparse running table too",
            ),
        )
        for name, reader, _ in readers:
            same_sums(setup, expected, reader(engine, setup), name)
        read_times = {}
        for name, reader, _ in readers:
            read_times[name], _ = timed(lambda reader=reader: reader(engine, setup))
            say(f"{name}: {read_times[name]:.3f} s")

        # (a) itself, as it is and with `_load_sums` replaced by A3
        from core.rules import frame as frame_module
        from core.rules.preview import preview_rules

        full, results = timed(lambda: preview_rules(NOW, engine=engine, actor=SYSTEM))
        original, frame_module._load_sums = frame_module._load_sums, load_sums_a3
        try:
            full_a3, results_a3 = timed(lambda: preview_rules(NOW, engine=engine, actor=SYSTEM))
        finally:
            frame_module._load_sums = original
        for (_, now_), (_, a3) in zip(results, results_a3, strict=True):
            assert np.array_equal(now_.matched_mask, a3.matched_mask)
            same_sums(setup, now_.frame.sums, a3.frame.sums, "(a) with A3")
        matched = sum(int(e.matched_mask.sum()) for _, e in results)
        table.append(
            (
                "(a) every rule, one pass (`preview_rules`), as it is",
                full,
                "—",
                f"{len(results)} rules, {matched:,} matches",
            )
        )
        table.append(
            (
                "(a) the same, `_load_sums` replaced by A3",
                full_a3,
                "as A1",
                "same verdicts, same sums",
            )
        )
        say(f"(a) {full:.3f} s; with A3 {full_a3:.3f} s")

        # B: the covering index, under today's query; its cost to the sync's rewrite
        one = account_ids[:1]
        plain = statistics.median([restate(engine, one, since) for _ in range(REPEAT + 1)][1:])
        started = time.perf_counter()
        run_sql(
            engine,
            f"CREATE INDEX {COVER} ON ad_metrics (account_id, date) INCLUDE "
            f"(entity_id, {', '.join(setup.columns)})",
        )
        vacuum(engine, "ad_metrics")  # index-only scans need the visibility map
        cover_build = time.perf_counter() - started
        expected_now = read_current(engine, setup)  # the rewrites changed one account's sums
        covered, sums = timed(lambda: read_current(engine, setup))
        same_sums(setup, expected_now, sums, "B")
        plan = scans_of(engine, aggregates_of(engine, lambda: read_current(engine, setup)))
        with_cover = statistics.median([restate(engine, one, since) for _ in range(REPEAT + 1)][1:])
        cover_size = scalar(engine, f"SELECT pg_relation_size('{COVER}')") / 2**20
        run_sql(engine, f"DROP INDEX {COVER}")
        vacuum(engine, "ad_metrics")
        say(f"B: {covered:.3f} s; a 1-account rewrite {plain:.3f} s → {with_cover:.3f} s")

        # A's writers: one account (median of 3 after a warm-up), then each account in turn
        writes, syncs = [], []
        for _ in range(REPEAT + 1):
            syncs.append(restate(engine, one, since))
            writes.append(rewrite_running(engine, one, since))
        a_one, sync_one = statistics.median(writes[1:]), statistics.median(syncs[1:])
        expected = read_current(engine, setup)
        for name, reader, _ in readers:
            same_sums(setup, expected, reader(engine, setup), f"{name}, after the writer")
        a_all = sync_all = 0.0
        for account_id in account_ids:
            sync_all += restate(engine, [account_id], since)
            a_all += rewrite_running(engine, [account_id], since)
        expected = read_current(engine, setup)
        for name, reader, _ in readers:
            same_sums(setup, expected, reader(engine, setup), f"{name}, after all accounts")
        running_matches_rebuild(engine)
        after, _ = timed(lambda: read_a_packed(engine, setup))
        running_after = size(engine, RUNNING)
        say(
            f"A's writer: 1 account {a_one:.3f} s (its rewrite {sync_one:.3f} s); all "
            f"{a_all:.1f} s (rewrites {sync_all:.1f} s); A3 after {after:.3f} s"
        )

        writer = (
            f"{a_one:.2f} s per account (the sync's own rewrite: {sync_one:.2f} s); "
            f"{len(account_ids)} accounts in turn: {a_all:.1f} s ({sync_all:.1f} s)"
        )
        for i, (name, _, note) in enumerate(readers):
            if i == 0:
                note += (
                    f"; the table: {running_rows:,} rows, {running_size} with its 3 "
                    f"indexes (ad_metrics {metrics_size}), backfill {backfill:.1f} s"
                )
            table.append((name, read_times[name], writer if i == 0 else "as A1", note))
        table.append(
            (
                "A3 after every account's 28 days were rewritten (no VACUUM yet)",
                after,
                "—",
                f"table and indexes now {running_after}",
            )
        )
        table.append(
            (
                f"B covering index INCLUDE ({', '.join(setup.columns)}), today's query",
                covered,
                f"1-account rewrite {plain:.2f} s → {with_cover:.2f} s",
                f"index {cover_size:.0f} MB, {cover_build:.1f} s to build; scans: {plan}",
            )
        )

        # sparse rows, more windows; then a restatement that deletes and adds days,
        # written incrementally and compared with a rebuild
        few = account_ids[: min(5, len(account_ids))]
        make_sparse(engine, few, first_day, last_day)
        create_running(engine)
        fill_running(engine)
        index_running(engine)
        wider = {w: set(cs) for w, cs in needs.items()}
        for name in ("today", "last_3d_with_today", "this_month"):
            wider.setdefault(Window.parse(name), set()).update(("spend_micros", "clicks"))
        sparse = make_setup(engine, wider, NOW)
        for name, reader, _ in readers:
            same_sums(sparse, sparse.frame.sums, reader(engine, sparse), f"{name}, sparse")
        sparse_restatement(engine, few, since, last_day)
        rewrite_running(engine, few, since)
        running_matches_rebuild(engine)
        expected = read_current(engine, sparse)
        for name, reader, _ in readers:
            same_sums(sparse, expected, reader(engine, sparse), f"{name}, sparse restated")
        in_few = f"WHERE account_id IN ({', '.join(map(str, few))})"
        density = scalar(engine, f"SELECT count(*) FROM {RUNNING} {in_few}") / scalar(
            engine, f"SELECT count(*) FROM ad_metrics {in_few}"
        )
        say(
            f"sparse checks passed ({len(few)} accounts; running rows / metric rows there: "
            f"{density:.2f})"
        )

    say(
        f"\n{len(setup.frame):,} ad sets × {args.days + 1} days, {rows:,} metric rows; "
        f"{len(setup.pairs)} (window, column) pairs; every candidate's sums equal (2)'s on "
        "these rows, after the writers, and on sparse rows\n"
    )
    say("| candidate | read | vs (c) | writers' cost | notes |")
    say("|---|---:|---:|---|---|")
    for name, seconds, writers, note in table:
        say(f"| {name} | {seconds:.3f} s | {seconds / floor:.2f}× | {writers} | {note} |")
    return 0


def count_bound_rows(engine, setup: Setup) -> int:  # type: ignore[no-untyped-def]
    sql, params = bound_rows_sql(setup)
    with engine.connect() as connection:
        cursor = connection.connection.driver_connection.cursor()
        return len(copy_packed(cursor, sql, params, 3 + len(setup.columns)))


if __name__ == "__main__":
    sys.exit(main())
