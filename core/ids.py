"""Meta's ids as Rex reads them: one definition of each shape, importing nothing but
`core.errors` (so a rule document, a page or the CLI can check an id without loading
the Graph client).

* An **ad account id** is `act_` and its digits; Rex stores it so (`AdAccount.external_id`)
  and accepts it with or without the prefix. What a person types or a rule names may
  have up to 20 digits; what Meta answers must fit a 64-bit integer, 19 digits at most.
* An **object id** (campaign, ad set, ad, a copy's new id) is digits only, 19 at most —
  callers that store it also check it fits a BIGINT.
"""

from __future__ import annotations

import re

from core.errors import InputError

MAX_DIGITS = 19  # Meta's ids are 64-bit integers
OBJECT_ID = re.compile(rf"\d{{1,{MAX_DIGITS}}}")
ACCOUNT_ID = re.compile(r"(?:act_)?(\d{1,20})")
_ACCOUNT_EXAMPLE = "e.g. act_1234567890 (Ads Manager shows it in the account menu)"


def account_id(text: str) -> str | None:
    """`act_123` or `123` → "act_123"; None when the whole text is not an account id."""
    match = ACCOUNT_ID.fullmatch(text)
    return f"act_{match.group(1)}" if match else None


def account_digits(external_id: str) -> str:
    """`act_123` → "123": Ads Manager's links and Meta's own records use the digits."""
    return external_id.removeprefix("act_")


def normalise_account_id(value: str) -> str:
    """What a person typed (or a rule names) as "act_…"; InputError names the fix."""
    text = (value or "").strip()
    if not text:
        raise InputError(
            "account", f"an ad account id is required: act_ followed by digits, {_ACCOUNT_EXAMPLE}"
        )
    found = account_id(text)
    if found is None:
        raise InputError(
            "account",
            f"{value!r} is not an ad account id; use act_ followed by digits, {_ACCOUNT_EXAMPLE}",
        )
    return found
