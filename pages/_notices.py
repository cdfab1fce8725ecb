"""Notices: what a button's callback tells the person, drawn at the top of the page.

A page draws `show_notices()` first; a widget's `on_click` runs `act(...)`, which calls
core and leaves a typed notice — success, or the error in words — for the rerun that
follows the click. No flash keys of a page's own, no `st.rerun()`, no "✗" prefixes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import streamlit as st

from core.access.actor import Actor
from core.accounts import AccountView, readable_accounts
from core.errors import RexError

Kind = Literal["success", "info", "warning", "error"]
_KEY = "rex_notices"


@dataclass(frozen=True)
class Notice:
    kind: Kind
    text: str


def notify(kind: Kind, text: str) -> None:
    st.session_state.setdefault(_KEY, []).append(Notice(kind, text))


def show_notices() -> None:
    for notice in st.session_state.pop(_KEY, []):
        getattr(st, notice.kind)(notice.text)


def act(
    call: Callable[..., Any], *args: Any, done: Callable[[Any], str] | str, **kwargs: Any
) -> Any:
    """Run a core call for a callback: a success notice (`done`, or `done(result)`), or the
    RexError's words as an error notice. Returns the result (None when it failed)."""
    try:
        result = call(*args, **kwargs)
    except RexError as error:
        notify("error", str(error))
        return None
    notify("success", done(result) if callable(done) else done)
    return result


def connected_accounts(actor: Actor) -> list[AccountView]:
    """The connected accounts `actor` may read; with none, the page says how to connect
    one and stops."""
    accounts = readable_accounts(actor)
    if not accounts:
        st.info(
            "No ad account is connected yet. Connect one on the **Accounts** page — or run "
            "`make run`, which starts the built-in sandbox and connects its demo accounts."
        )
        st.stop()
    return accounts
