"""Make a slice of a table equal to what Meta reported — and touch nothing else.

`reconcile` loads the rows in scope (an account and a date window), compares them by
natural key with the incoming rows, and inserts, updates or deletes only what differs.
A second sync of unchanged data therefore writes nothing; a day Meta revised is
updated in place; a row Meta no longer reports inside the window is removed — unless
some of Meta's rows for the slice were refused as garbage (`delete_missing=False`): a
stored row may then be the good version of a refused one, so nothing is removed.
It runs on both databases with plain SQLAlchemy (no dialect-specific upsert).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, select, update
from sqlalchemy.orm import Session

from core.db.models import METRIC_COLUMNS, Base

_CHUNK = 500


@dataclass
class ReconcileCounts:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    kept: int = 0  # not reported any more, but kept: some rows of the slice were refused

    def as_dict(self) -> dict[str, int]:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "kept": self.kept,
        }


def merge_rows(rows: Iterable[dict[str, Any]], key: Sequence[str]) -> list[dict[str, Any]]:
    """Sum the metrics of rows that share a natural key (e.g. two regions of one name); a
    metric not available (None) in them stays not available."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        k = tuple(row[name] for name in key)
        if k in merged:
            for column in METRIC_COLUMNS:
                a, b = merged[k][column], row[column]
                merged[k][column] = None if a is None or b is None else a + b
        else:
            merged[k] = dict(row)
    return list(merged.values())


def reconcile(
    session: Session,
    model: type[Base],
    *,
    scope: Sequence[ColumnElement[bool]],
    key: Sequence[str],
    rows: Iterable[dict[str, Any]],
    values: Sequence[str] = METRIC_COLUMNS,
    delete_missing: bool = True,
) -> ReconcileCounts:
    table = model.__table__
    incoming = {tuple(row[name] for name in key): row for row in merge_rows(rows, key)}
    columns = [table.c.id, *(table.c[name] for name in key), *(table.c[name] for name in values)]
    existing = {
        tuple(getattr(row, name) for name in key): row
        for row in session.execute(select(*columns).where(*scope))
    }

    counts = ReconcileCounts()
    to_insert: list[dict[str, Any]] = []
    to_update: list[dict[str, Any]] = []
    for k, row in incoming.items():
        current = existing.pop(k, None)
        if current is None:
            to_insert.append(row)
        elif any(getattr(current, name) != row[name] for name in values):
            to_update.append({"id": current.id, **{name: row[name] for name in values}})
        else:
            counts.unchanged += 1
    stale_ids = [row.id for row in existing.values()] if delete_missing else []
    counts.kept = 0 if delete_missing else len(existing)

    for chunk in _chunks(to_insert):
        session.execute(insert(model), chunk)
    for chunk in _chunks(to_update):
        session.execute(update(model), chunk)
    for chunk in _chunks(stale_ids):
        session.execute(delete(model).where(table.c.id.in_(chunk)))

    counts.inserted, counts.updated, counts.deleted = len(to_insert), len(to_update), len(stale_ids)
    return counts


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
