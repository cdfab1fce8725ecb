"""The data a rule is judged on, loaded once for any number of rules: a frame.

A frame holds, for one level (campaign, ad set or ad) in a set of accounts, every
entity in a fixed order (account, external id) and the sums of the stored metric
columns over every window the rules ask for — all of it from two queries, whatever the
number of rules:

* the entities (with the campaigns whose budget their ad sets share);
* one aggregate over `ad_metrics`: `SUM(column) FILTER (WHERE date BETWEEN …)` for each
  (window, column) pair the rules use, grouped by entity, on SQLite and PostgreSQL
  alike. Windows are days in each account's own time zone, so accounts are grouped by
  their current local date and each group gets its own aggregate (one or two groups
  for most installs: every row is still read once).

Sums are kept as int64 arrays indexed by the entity's position in the frame; money
columns are in micros of the major unit, as stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import BigInteger, ColumnElement, cast, func, or_, select, text
from sqlalchemy.orm import Session

from core.db.models import AdAccount, AdEntity, AdMetric, Level
from core.rules.windows import Window

HIDDEN_STATUSES = ("ARCHIVED", "DELETED")
FILTER_FIELDS = {  # a rule's scope filter field → the entity attribute it reads
    "id": "external_id",
    "name": "name",
    "effective_status": "effective_status",
    "campaign_id": "meta_campaign_id",
    "adset_id": "meta_adset_id",
}


class AccountInfo(NamedTuple):
    id: int
    external_id: str
    currency: str
    timezone_name: str


class EntityRow(NamedTuple):
    id: int
    external_id: str
    name: str
    account_id: int
    status: str
    effective_status: str
    daily_budget_minor: int | None
    lifetime_budget_minor: int | None
    meta_campaign_id: str | None
    meta_adset_id: str | None


@dataclass
class Frame:
    level: Level
    accounts: dict[int, AccountInfo]
    today: dict[int, date]  # account id → its local date
    entities: list[EntityRow]
    account_of: np.ndarray  # int64 per position
    hidden: np.ndarray  # bool: archived or deleted
    campaign_budget: np.ndarray  # bool: an ad set whose budget lives on its campaign
    sums: dict[tuple[str, str], np.ndarray]  # (window name, column) → int64 per position
    _filters: dict[tuple[str, str, Any], np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.entities)

    def sums_at(self, position: int) -> dict[str, dict[str, int]]:
        """window name → column → sum, for one entity."""
        result: dict[str, dict[str, int]] = {}
        for (window, column), values in self.sums.items():
            result.setdefault(window, {})[column] = int(values[position])
        return result

    def of_accounts(self, account_ids: list[int]) -> np.ndarray:
        """Entities of these accounts (contiguous runs: the frame is ordered by account)."""
        mask = np.zeros(len(self.entities), bool)
        for account_id in account_ids:
            first, last = np.searchsorted(self.account_of, [account_id, account_id + 1])
            mask[first:last] = True
        return mask

    def filter_mask(self, field_name: str, op: str, value: Any) -> np.ndarray:
        """Entities passing one scope filter (cached: rules often share filters)."""
        key = (field_name, op, tuple(value) if isinstance(value, list) else value)
        if key not in self._filters:
            attribute = FILTER_FIELDS[field_name]
            column = [getattr(e, attribute) for e in self.entities]
            self._filters[key] = np.fromiter(
                (_passes(v, op, value) for v in column), dtype=bool, count=len(column)
            )
        return self._filters[key]


def _passes(actual: str | None, op: str, value: Any) -> bool:
    if op == "=":
        return actual == value
    if op == "!=":
        return actual != value
    if op == "in":
        return actual in value
    if op == "not_in":
        return actual not in value
    found = actual is not None and str(value).lower() in actual.lower()
    return found if op == "contains" else not found


def load_frame(
    session: Session,
    level: Level,
    accounts: list[AdAccount],
    today: dict[int, date],
    needs: dict[Window, set[str]],
) -> Frame:
    """The entities of `level` in `accounts` and their sums for `needs` (window →
    stored columns)."""
    ids = sorted(a.id for a in accounts)
    entities = _entities(session, level, ids)
    position = {e.id: i for i, e in enumerate(entities)}
    cbo = _campaigns_with_budget(session, ids) if level == Level.ADSET else set()
    frame = Frame(
        level=level,
        accounts={
            a.id: AccountInfo(a.id, a.external_id, a.currency, a.timezone_name) for a in accounts
        },
        today={i: today[i] for i in ids},
        entities=entities,
        account_of=np.fromiter((e.account_id for e in entities), np.int64, len(entities)),
        hidden=np.fromiter(
            (e.effective_status in HIDDEN_STATUSES for e in entities), bool, len(entities)
        ),
        campaign_budget=np.fromiter(
            ((e.account_id, e.meta_campaign_id) in cbo for e in entities), bool, len(entities)
        ),
        sums={},
    )
    pairs = sorted((w, c) for w, columns in needs.items() for c in columns)
    for window, column in pairs:
        frame.sums[(window.name, column)] = np.zeros(len(entities), np.int64)
    if entities and pairs:
        _load_sums(session, level, frame, pairs, position)
    return frame


def _entities(session: Session, level: Level, account_ids: list[int]) -> list[EntityRow]:
    if not account_ids:
        return []
    query = (
        select(
            AdEntity.id, AdEntity.external_id, AdEntity.name, AdEntity.account_id,
            AdEntity.status, AdEntity.effective_status, AdEntity.daily_budget_minor,
            AdEntity.lifetime_budget_minor, AdEntity.meta_campaign_id, AdEntity.meta_adset_id,
        )
        .where(AdEntity.account_id.in_(account_ids), AdEntity.level == level)
        .order_by(AdEntity.account_id, AdEntity.external_id)
    )  # fmt: skip
    return [EntityRow._make(row) for row in session.connection().execute(query).all()]


def _campaigns_with_budget(session: Session, account_ids: list[int]) -> set[tuple[int, str]]:
    query = select(AdEntity.account_id, AdEntity.external_id).where(
        AdEntity.account_id.in_(account_ids),
        AdEntity.level == Level.CAMPAIGN,
        or_(AdEntity.daily_budget_minor.is_not(None), AdEntity.lifetime_budget_minor.is_not(None)),
    )
    return {(row[0], row[1]) for row in session.execute(query)}


def _load_sums(
    session: Session,
    level: Level,
    frame: Frame,
    pairs: list[tuple[Window, str]],
    position: dict[int, int],
) -> None:
    """One aggregate per group of accounts that share a local date (usually one or two
    groups): within a group every window is a plain date range, the cheapest filter."""
    groups: dict[date, list[int]] = {}
    for account_id, local in sorted(frame.today.items()):
        groups.setdefault(local, []).append(account_id)
    of_level = select(AdEntity.id).where(
        AdEntity.account_id.in_(sorted(frame.accounts)), AdEntity.level == level
    )
    if session.get_bind().dialect.name == "postgresql":
        # compiling this aggregate to machine code costs more than it saves (~0.1 s)
        session.execute(text("SET LOCAL jit = off"))
    for local, account_ids in groups.items():
        columns = []
        for window, column in pairs:
            summed: ColumnElement[Any] = func.sum(getattr(AdMetric, column))
            days = window.days_range(local)
            if days is not None:
                summed = summed.filter(AdMetric.date.between(*days))
            columns.append(func.coalesce(cast(summed, BigInteger), 0))
        query = (
            select(AdMetric.entity_id, *columns)
            .where(AdMetric.account_id.in_(account_ids), AdMetric.entity_id.in_(of_level))
            .group_by(AdMetric.entity_id)
        )
        span = _span({w for w, _ in pairs}, local)
        if span is not None:  # every window is bounded: read only the days they cover
            query = query.where(AdMetric.date.between(*span))
        rows = session.connection().execute(query).all()  # Core: no ORM row handling
        if not rows:
            continue
        table = np.array([tuple(r) for r in rows], dtype=np.int64)  # id, then the pairs
        at = np.fromiter((position.get(i, -1) for i in table[:, 0].tolist()), np.int64)
        known = at >= 0
        for index, (window, column) in enumerate(pairs):
            frame.sums[(window.name, column)][at[known]] = table[known, index + 1]


def _span(windows: set[Window], local: date) -> tuple[date, date] | None:
    ranges = [window.days_range(local) for window in windows]
    bounded = [r for r in ranges if r is not None]
    if not ranges or len(bounded) < len(ranges):
        return None
    return min(r[0] for r in bounded), max(r[1] for r in bounded)
