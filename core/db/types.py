"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, Enum
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

from core import clock


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always UTC and tz-aware in Python.

    PostgreSQL stores `timestamptz`; SQLite has no time zones, so the value is stored
    as naive UTC and made aware again on the way out. Naive datetimes are refused on
    the way in: a naive timestamp is a bug (whose local time is it?).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: use an aware UTC timestamp")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def string_enum(enum: type[StrEnum], length: int) -> Enum:
    """A status or level column read as `enum` and stored as its members' *values*.

    The column stays the `VARCHAR(length)` it was (no native enum type, no CHECK
    constraint: adding a member needs no migration) and holds the lower-case strings
    Rex always wrote ("active", "needs_reconnect"), never the member names. A string
    that is not a member is refused on the way in (`LookupError`) and, should a row
    hold one anyway, on the way out — a status Rex does not know is a bug to see, not a
    value to pass along.
    """
    return Enum(
        enum,
        native_enum=False,
        length=length,
        values_callable=_values,
        validate_strings=True,
        create_constraint=False,
    )


def _values(enum: type[StrEnum]) -> list[str]:
    return [member.value for member in enum]


# JSON documents: JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """Now, tz-aware UTC: Rex's clock (the wall clock; see core/clock.py for the sandbox's
    simulated days)."""
    return clock.now()
