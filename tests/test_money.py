"""Money crosses Meta's boundary as integers in the currency's minor unit."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.money import (
    META_CURRENCIES,
    MoneyError,
    check_currency,
    format_money,
    from_micros,
    from_minor,
    offset,
    parse_minor,
    to_micros,
    to_minor,
)


@pytest.mark.parametrize(
    ("currency", "expected"), [("USD", 100), ("EUR", 100), ("JPY", 1), ("KRW", 1), ("jpy", 1)]
)
def test_offsets_follow_the_currency(currency: str, expected: int) -> None:
    assert offset(currency) == expected


def test_major_to_minor_in_usd_and_jpy() -> None:
    assert to_minor("500", "USD") == 50_000
    assert to_minor(Decimal("12.34"), "USD") == 1234
    assert to_minor("5000", "JPY") == 5000


def test_amounts_finer_than_the_currency_are_refused_unless_rounding_is_asked() -> None:
    with pytest.raises(MoneyError, match="2 decimals"):
        to_minor("12.345", "USD")
    with pytest.raises(MoneyError, match="0 decimals"):
        to_minor("100.5", "JPY")
    assert to_minor("12.345", "USD", exact=False) == 1234  # half to even
    assert to_minor("12.355", "USD", exact=False) == 1236


def test_floats_and_garbage_are_not_money() -> None:
    with pytest.raises(MoneyError):
        to_minor(12.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(MoneyError, match="not a decimal"):
        to_minor("12,50", "USD")
    with pytest.raises(MoneyError, match="ISO 4217"):
        offset("dollars")


# Meta's currency table (Marketing API, "Currency codes"): these have offset 1.
META_OFFSET_1 = {"CLP", "COP", "CRC", "HUF", "ISK", "IDR", "JPY", "KRW", "PYG", "TWD", "VND"}


def test_every_currency_rex_accepts_has_meta_s_offset() -> None:
    assert META_OFFSET_1 <= META_CURRENCIES
    for code in META_CURRENCIES:
        assert check_currency(code.lower()) == code
        assert offset(code) == (1 if code in META_OFFSET_1 else 100), code
    # ISO 4217 gives BHD and JOD three decimals; Meta's offset for them is 100
    assert offset("BHD") == offset("JOD") == 100


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("XYZ", "not an ISO 4217"),
        ("FBZ", "not an ISO 4217"),  # Facebook credits: in Meta's table, not money
        ("KWD", "do not use"),  # ISO 4217 with 3 decimals; no Meta ad account has it
        ("XOF", "do not use"),  # ISO 4217 without decimals: a guessed 100 would be 100× off
    ],
)
def test_a_currency_without_a_known_offset_is_refused(code: str, why: str) -> None:
    with pytest.raises(MoneyError, match=why):
        offset(code)
    with pytest.raises(MoneyError, match=why):
        check_currency(code)


def test_meta_budget_strings() -> None:
    assert parse_minor("2000") == 2000
    assert parse_minor(None) is None
    assert parse_minor("") is None
    with pytest.raises(MoneyError):
        parse_minor("20.00")


def test_insight_spend_as_micros_is_exact() -> None:
    assert to_micros("0.01") == 10_000
    assert to_micros("1234") == 1_234_000_000
    assert sum(to_micros("0.1") for _ in range(10)) == to_micros("1")
    assert from_micros(1_234_560_000, "USD") == Decimal("1234.56")
    assert from_micros(1_234_560_000, "JPY") == Decimal("1235")


def test_formatting_carries_the_currency() -> None:
    assert format_money(Decimal("1234.5"), "USD") == "1,234.50 USD"
    assert format_money(Decimal("5000"), "JPY") == "5,000 JPY"
    assert format_money(None, "USD") == "—"


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(["USD", "JPY", "EUR", "KRW"]))
def test_minor_units_round_trip_exactly(minor: int, currency: str) -> None:
    assert to_minor(from_minor(minor, currency), currency) == minor
