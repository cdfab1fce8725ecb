"""Money: the one place that knows how currencies map to Meta's integer units.

Three representations meet here:

* **minor units** (`int`) — what Meta's budgets and bids use: cents for USD, yen for
  JPY. The offset is per currency (100, or 1 for currencies without a minor unit).
* **major units** (`Decimal`) — what people, rule documents and the UI speak.
* **micros** (`int`) — what Rex stores for reported metrics (spend, revenue):
  major units × 1,000,000. Insights arrive as decimal strings in major units; micros
  keep them exact and summable in SQL on both databases, independent of the currency.

Floats never carry money.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from core.errors import RexError

MICROS_PER_UNIT = 1_000_000

# Currencies without a minor unit in Meta's ads APIs (offset 1).
_ZERO_DECIMAL_CURRENCIES = frozenset(
    {"CLP", "COP", "CRC", "HUF", "ISK", "IDR", "JPY", "KRW", "PYG", "TWD", "VND"}
)
# Every currency an ad account can have, from Meta's "Currency codes" table (Marketing API
# reference): offset 100 unless listed above — also for BHD and JOD, whose ISO 4217 minor
# unit is 1/1000 but whose Meta offset is 100. Facebook credits (FBZ) are not money. A
# currency outside this set has no known offset, so Rex refuses it instead of guessing.
# fmt: off
META_CURRENCIES = _ZERO_DECIMAL_CURRENCIES | frozenset({
    "AED", "ARS", "AUD", "BDT", "BGN", "BHD", "BOB", "BRL", "CAD", "CHF", "CNY", "CZK",
    "DKK", "DZD", "EGP", "EUR", "GBP", "GTQ", "HKD", "HNL", "HRK", "ILS", "INR", "JOD",
    "KES", "LTL", "LVL", "MOP", "MXN", "MYR", "NGN", "NIO", "NOK", "NZD", "PEN", "PHP",
    "PKR", "PLN", "QAR", "RON", "RSD", "RUB", "SAR", "SEK", "SGD", "SKK", "THB", "TRY",
    "UAH", "USD", "UYU", "VEF", "VES", "ZAR",
})
# fmt: on


class MoneyError(RexError, ValueError):
    """A value that cannot be money in the given currency. Also a ValueError, so that a
    pydantic validator raising it gives a validation error naming the field."""


def offset(currency: str) -> int:
    """Minor units per major unit for `currency` (100 for USD, 1 for JPY)."""
    code = _currency_code(currency)  # refuses a currency whose offset Rex does not know
    return 1 if code in _ZERO_DECIMAL_CURRENCIES else 100


def decimals(currency: str) -> int:
    """Digits after the decimal point in `currency`'s major unit (2 for USD, 0 for JPY)."""
    return 0 if offset(currency) == 1 else 2


def to_minor(amount: Decimal | int | str, currency: str, *, exact: bool = True) -> int:
    """Major units → minor units.

    With `exact=True` (default) an amount finer than the currency's unit is an error
    (`12.345` USD, `100.5` JPY); with `exact=False` it is rounded half-to-even.
    """
    value = parse_decimal(amount)
    scaled = value * offset(currency)
    rounded = scaled.to_integral_value(rounding=ROUND_HALF_EVEN)
    if exact and rounded != scaled:
        raise MoneyError(
            f"{value} {currency} is finer than the currency's smallest unit "
            f"(1/{offset(currency)}); round it to {decimals(currency)} decimals"
        )
    return int(rounded)


def from_minor(minor: int, currency: str) -> Decimal:
    """Minor units → major units, quantised to the currency's decimals."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise MoneyError(f"minor units must be an integer, got {minor!r}")
    return (Decimal(minor) / offset(currency)).quantize(_quantum(currency))


def parse_minor(text: str | int | None) -> int | None:
    """Meta's budget fields ("2000", sometimes absent or "0") → int or None."""
    if text is None or text == "":
        return None
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    try:
        return int(str(text))
    except ValueError:
        raise MoneyError(f"expected an integer amount in minor units, got {text!r}") from None


def to_micros(amount: Decimal | int | str | None) -> int:
    """A major-unit decimal (Meta's insights `spend`, `action_values`) → micros."""
    if amount is None or amount == "":
        return 0
    value = parse_decimal(amount) * MICROS_PER_UNIT
    return int(value.to_integral_value(rounding=ROUND_HALF_EVEN))


def from_micros(micros: int, currency: str | None = None) -> Decimal:
    """Micros → major units; quantised to the currency's decimals when one is given."""
    value = Decimal(micros) / MICROS_PER_UNIT
    return value.quantize(_quantum(currency)) if currency else value


def format_money(amount: Decimal | None, currency: str) -> str:
    """`Decimal("1234.5"), "USD"` → `"1,234.50 USD"`; None → "—"."""
    if amount is None:
        return "—"
    return f"{amount.quantize(_quantum(currency)):,} {_currency_code(currency)}"


def format_minor(minor: int, currency: str) -> str:
    """An amount in the currency's minor unit as people read it: `6250, "USD"` →
    `"62.50 USD"`; `6250, "JPY"` → `"6,250 JPY"`."""
    return format_money(from_minor(minor, currency), currency)


def parse_decimal(amount: Decimal | int | str) -> Decimal:
    if isinstance(amount, (bool, float)):
        raise MoneyError(f"money must be a Decimal, int or decimal string, not {amount!r}")
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount).strip())
    except InvalidOperation:
        raise MoneyError(f"{amount!r} is not a decimal number") from None
    if not value.is_finite():
        raise MoneyError(f"{amount!r} is not a finite amount")
    return value


def _quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-decimals(currency))


def check_currency(currency: str) -> str:
    """The upper-case code of a currency Rex can do money in, or MoneyError saying why not."""
    return _currency_code(currency)


def _currency_code(currency: object) -> str:
    code = currency.strip().upper() if isinstance(currency, str) else ""
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise MoneyError(f"{currency!r} is not an ISO 4217 currency code (e.g. USD, JPY)")
    if code not in META_CURRENCIES:
        import pycountry  # loads its tables on first use

        if pycountry.currencies.get(alpha_3=code) is None:
            raise MoneyError(f"{currency!r} is not an ISO 4217 currency code (e.g. USD, JPY)")
        raise MoneyError(
            f"{code} is an ISO 4217 currency that Meta's ad accounts do not use, so Rex does "
            "not know its minor unit; an ad account's currency is one of Meta's "
            "(USD, EUR, JPY …, see Meta's currency codes)"
        )
    return code
