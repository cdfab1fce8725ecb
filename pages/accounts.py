"""Accounts: connect an ad account, see its token and sync state, sync now, remove."""

import streamlit as st

from core.accounts import (
    connect_account,
    list_accounts,
    public_settings,
    remove_account,
    reset_sandboxes,
    sandbox_urls,
)
from core.errors import InputError
from core.meta import GraphError
from core.sync.runner import sync_accounts

st.title("Accounts")
flash = st.session_state.pop("accounts_flash", None)
if flash:
    st.success(flash)

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
        elif account.last_sync_error and account.last_sync_status == "failed":
            left.warning(f"Last sync failed: {account.last_sync_error}")
        elif account.last_sync_error:  # it succeeded, refusing some of Meta's answers
            left.info(f"Last sync: {account.last_sync_error}")
        if account.rate_limited_until:
            left.info(f"Meta rate-limits calls until {account.rate_limited_until:%H:%M} UTC.")

        if right.button("Sync now", key=f"sync_{account.id}", disabled=account.needs_reconnect):
            bar = right.progress(0.0, text="Starting…")

            def show(event, bar=bar):  # type: ignore[no-untyped-def]
                bar.progress(
                    min(event.done / max(event.total, 1), 1.0),
                    text=f"{event.step} {event.detail}".strip(),
                )

            result = sync_accounts([account.external_id], progress=show)[0]
            if result.ok:  # show the new counts and sync time above: run the page again
                st.session_state["accounts_flash"] = (
                    f"Synced {account.name}: {result.since} … {result.until} "
                    f"({account.timezone_name} dates) in {result.seconds:.1f} s."
                )
                st.rerun()
            else:
                right.error(result.error)
        confirm = right.checkbox(
            "I want to remove this account and its data", key=f"confirm_remove_{account.id}"
        )
        if right.button("Remove", key=f"remove_{account.id}", disabled=not confirm):
            remove_account(account.id)
            st.session_state["accounts_flash"] = f"Removed {account.name} and its synced data."
            st.rerun()

st.subheader("Connect an ad account")
with st.form("connect", clear_on_submit=False):
    account_field = st.text_input(
        "Ad account ID", placeholder="act_1234567890", key="connect_account"
    )
    token_field = st.text_input(
        "Access token",
        type="password",
        key="connect_token",
        help="Checked with a live read before it is stored, then kept "
        "encrypted. It is never shown again.",
    )
    graph_field = st.text_input(
        "Graph API URL (optional)",
        placeholder="https://graph.facebook.com",
        help="Only for the sandbox or a proxy; leave empty for Meta.",
        key="connect_graph_url",
    )
    submitted = st.form_submit_button("Check and connect")
if submitted:
    try:
        view = connect_account(account_field, token_field, graph_url=graph_field or None)
    except InputError as error:
        st.error(f"**{error.field}**: {error.problem}")
    except GraphError as error:
        st.error(f"Meta refused: {error.explain()}")
    else:
        for key in ("connect_account", "connect_token", "connect_graph_url"):
            st.session_state.pop(key, None)  # the token leaves the browser session
        st.session_state["accounts_flash"] = (
            f"Connected {view.name} ({view.external_id}, {view.currency}, {view.timezone_name}). "
            "Use **Sync now** to read its data."
        )
        st.rerun()

urls = sandbox_urls()
if urls:
    st.subheader("Sandbox")
    st.caption(
        "The built-in Graph server at " + ", ".join(urls) + ". Resetting it undoes "
        "every write Rex made there and brings back its generated numbers."
    )
    if st.button("Reset the sandbox and sync", key="reset_sandbox"):
        reset_sandboxes()
        bar = st.progress(0.0, text="Syncing…")
        results = sync_accounts(
            progress=lambda e: bar.progress(
                min(e.done / max(e.total, 1), 1.0), text=f"{e.account}: {e.step}"
            )
        )
        st.session_state["accounts_flash"] = "Sandbox reset; synced " + ", ".join(
            r.account for r in results if r.ok
        )
        st.rerun()

with st.expander("Settings in effect"):
    st.caption("From the environment or `.env` (README: Settings). Secrets are never shown.")
    st.dataframe(
        [{"Setting": k, "Value": v} for k, v in public_settings().items()],
        hide_index=True,
        width="stretch",
    )
