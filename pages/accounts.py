"""Accounts: connect an ad account, see its token and sync state, sync now, remove."""

import streamlit as st

from core import clock
from core.access.roles import Permission
from core.accounts import (
    advance_sandboxes,
    connect_account,
    list_accounts,
    public_settings,
    remove_account,
    reset_sandboxes,
    sandbox_urls,
    set_four_eyes,
)
from core.enums import SyncStatus
from core.errors import InputError, RexError
from core.meta import GraphError
from core.sync.runner import sync_accounts
from pages._notices import act, notify, show_notices
from pages._signin import session_actor, signed_in

FIELDS = {"account": "Ad account ID", "token": "Access token", "graph_url": "Graph API URL"}
CONNECT_KEYS = ("connect_account", "connect_token", "connect_graph_url")


def _progress(text: str):  # type: ignore[no-untyped-def]
    bar = st.progress(0.0, text=text)

    def show(event) -> None:  # type: ignore[no-untyped-def]
        bar.progress(
            min(event.done / max(event.total, 1), 1.0),
            text=f"{event.account}: {event.step} {event.detail}".strip(),
        )

    return show


def sync_now(external_id: str, name: str, timezone_name: str) -> None:
    try:
        result = sync_accounts([external_id], progress=_progress("Starting…"))[0]
    except RexError as error:
        notify("error", str(error))
        return
    if result.ok:
        notify(
            "success",
            f"Synced {name}: {result.since} … {result.until} ({timezone_name} dates) "
            f"in {result.seconds:.1f} s.",
        )
    else:
        notify("error", f"Sync of {name} failed: {result.error}")


def _remove(account_id: int, done: str) -> None:
    act(lambda: remove_account(account_id, by=session_actor()), done=done)


def _four_eyes(account_id: int) -> None:
    on = bool(st.session_state[f"four_eyes_{account_id}"])
    act(lambda: set_four_eyes(account_id, on, by=session_actor()),
        done=lambda v: f"Four eyes is {'on' if v.four_eyes else 'off'} for {v.name}")  # fmt: skip


def connect() -> None:
    state = st.session_state
    try:
        view = connect_account(
            state.get("connect_account", ""),
            state.get("connect_token", ""),
            by=session_actor(),
            graph_url=state.get("connect_graph_url") or None,
        )
    except InputError as error:
        notify("error", f"**{FIELDS.get(error.field, error.field)}**: {error.problem}")
        return
    except GraphError as error:
        notify("error", f"{error.hint}  \nAnswer: {error.describe()}")
        return
    except RexError as error:  # e.g. no key to encrypt the token with
        notify("error", f"{error}  \n{error.hint}".strip())
        return
    for key in CONNECT_KEYS:
        state.pop(key, None)  # the token leaves the browser session
    notify(
        "success",
        f"Connected {view.name} ({view.external_id}, {view.currency}, {view.timezone_name}). "
        "Use **Sync now** to read its data.",
    )


def sync_and_report(accounts: list[str], text: str, done: str) -> None:
    """Sync `accounts` with a progress bar, then say `done` and which ones synced."""
    results = sync_accounts(accounts, progress=_progress(text))
    notify("success", done + "; synced " + (", ".join(r.account for r in results if r.ok)
                                              or "nothing"))  # fmt: skip
    for result in results:
        if not result.ok:
            notify("error", f"Sync of {result.account} failed: {result.error}")


def reset_and_sync() -> None:
    try:
        accounts = reset_sandboxes(by=session_actor())
    except RexError as error:
        notify("error", str(error))
        return
    sync_and_report(accounts, "Syncing…", "Sandbox reset")


def advance_and_sync() -> None:
    try:
        moved = advance_sandboxes(int(st.session_state["advance_days"]), by=session_actor())
    except RexError as error:
        notify("error", str(error))
        return
    days = ", ".join(f"{account} is on {day}" for account, day in moved.today.items())
    sync_and_report(
        moved.accounts,
        "Syncing the new days…",
        f"The sandbox moved on: {days} ({moved.ahead_days} day(s) ahead of the wall clock, "
        "Rex with it)",
    )


actor = signed_in(Permission.MANAGE_ACCOUNTS)
st.title("Accounts")
show_notices()

accounts = list_accounts()
if not accounts:
    st.info(
        "No ad account is connected. Connect one below with an access token that has "
        "`ads_management` — or run `make run` to try Rex on the built-in sandbox."
    )

for account in accounts:
    if account.needs_reconnect:
        status = "needs reconnect"
    else:
        status = "token OK" if account.token_readable else "token cannot be decrypted"
    trouble = account.needs_reconnect or not account.token_readable
    icon = ":material/warning:" if trouble else ":material/check_circle:"
    label = f"{account.name} · {account.external_id} · {status}"
    with st.expander(label, expanded=True, icon=icon):
        left, right = st.columns([3, 2])
        left.markdown(
            f"**Currency** {account.currency} · **Time zone** {account.timezone_name} · "
            f"**Status** {account.status_label}  \n"
            f"**Campaigns / ad sets / ads** {account.campaigns} / {account.adsets} / "
            f"{account.ads}  \n"
            f"**Last sync** "
            + (f"{account.last_sync_at:%Y-%m-%d %H:%M} UTC" if account.last_sync_at else "never")
            + (f" ({account.last_sync_status})" if account.last_sync_status else "")
            + (f"  \n**Graph endpoint** {account.graph_url}" if account.graph_url else "")
        )
        if account.needs_reconnect:
            left.error(account.token_error or "Meta rejected this account's access token.")
            left.caption(
                f"To reconnect, enter {account.external_id} and a new token in "
                "**Connect an ad account** below; its data is kept."
            )
        elif not account.token_readable:
            left.error(
                "Rex's key cannot decrypt this account's token (the key file or REX_SECRET_KEY "
                "changed or is missing). Restore the key from where you keep it, or reconnect "
                "the account with a new token below."
            )
        elif account.last_sync_error and account.last_sync_status == SyncStatus.FAILED:
            left.warning(f"Last sync failed: {account.last_sync_error}")
        elif account.last_sync_error:  # it succeeded, refusing some of Meta's answers
            left.info(f"Last sync: {account.last_sync_error}")
        if account.rate_limited_until:
            left.info(f"Meta rate-limits calls until {account.rate_limited_until:%H:%M} UTC.")

        right.button(
            "Sync now",
            key=f"sync_{account.id}",
            disabled=account.needs_reconnect,
            on_click=sync_now,
            args=(account.external_id, account.name, account.timezone_name),
        )
        confirm = right.checkbox(
            "I want to remove this account and its synced data",
            key=f"confirm_remove_{account.id}",
            help="Its campaigns, ad sets, ads and numbers are deleted from Rex; what Rex did "
            "on it (actions, approvals, executions) stays on the record.",
        )
        right.button(
            "Remove",
            key=f"remove_{account.id}",
            disabled=not confirm,
            on_click=_remove,
            args=(account.id, f"Removed {account.name} ({account.external_id}) and its synced "
                  "data; what Rex did on it stays on the record."),
        )  # fmt: skip
        right.toggle(
            "Four eyes",
            value=account.four_eyes,
            key=f"four_eyes_{account.id}",
            on_change=_four_eyes,
            args=(account.id,),
            help="While on, whoever last changed a rule cannot approve its proposals on this "
            "account: another approver must.",
        )

removed = [a for a in list_accounts(include_removed=True) if a.removed]
if removed:
    st.caption(
        "Removed: "
        + "; ".join(f"{a.name} ({a.external_id}) on {a.removed_at:%Y-%m-%d}" for a in removed)
        + ". What Rex did on them stays on the record; connect one again below to bring it back."
    )

st.subheader("Connect an ad account")
with st.form("connect", clear_on_submit=False):
    st.text_input("Ad account ID", placeholder="act_1234567890", key="connect_account")
    st.text_input(
        "Access token",
        type="password",
        key="connect_token",
        help="Checked with a live read before it is stored, then kept "
        "encrypted. It is never shown again.",
    )
    st.text_input(
        "Graph API URL (optional)",
        placeholder="https://graph.facebook.com",
        help="Only for the sandbox or a proxy; leave empty for Meta.",
        key="connect_graph_url",
    )
    st.form_submit_button("Check and connect", on_click=connect)

urls = sandbox_urls()
if urls:
    st.subheader("Sandbox")
    st.caption(
        "The built-in Graph server at " + ", ".join(urls) + ". It keeps what Rex changed "
        "there across restarts; resetting it undoes every write Rex made there and brings "
        "back its generated numbers."
    )
    ahead = clock.ahead_days()
    if ahead:
        st.info(
            f"Simulated days: the sandbox and Rex run **{ahead} day(s) ahead** of the wall "
            "clock. Resetting the sandbox puts both back."
        )
    move = st.columns([1, 2, 2], vertical_alignment="bottom")
    move[0].number_input("Days", min_value=1, max_value=366, value=7, key="advance_days")
    move[1].button(
        "Move the sandbox on and sync", key="advance_sandbox", on_click=advance_and_sync,
        help="The days that pass are generated from the state as it is now (budgets, "
        "pauses, targeting): see the consequences of Rex's changes in the following days.",
    )  # fmt: skip
    move[2].button("Reset the sandbox and sync", key="reset_sandbox", on_click=reset_and_sync)

with st.expander("Settings in effect"):
    st.caption("From the environment or `.env` (README: Settings). Secrets are never shown.")
    st.dataframe(
        [{"Setting": k, "Value": v} for k, v in public_settings().items()],
        hide_index=True,
        width="stretch",
    )
