"""Users (admins): who signs in, their roles per ad account, and their state."""

import streamlit as st

from core.access.roles import Permission, Role
from core.access.users import (
    UserView,
    add_user,
    grant,
    list_users,
    revoke,
    set_disabled,
    set_password,
)
from core.accounts import list_accounts
from core.labels import format_time
from pages._notices import act, notify, show_notices
from pages._signin import signed_in

actor = signed_in(Permission.MANAGE_USERS)
st.title("Users")
show_notices()
users = list_users(by=actor)
accounts = {a.external_id: f"{a.name} · {a.external_id}" for a in list_accounts()}
ROLES = [r.value for r in Role]

st.dataframe(
    [{
        "E-mail": u.email, "Name": u.name, "Admin": "yes" if u.admin else "",
        "State": "disabled" if u.disabled else "active",
        "Signs in with": "password" if u.password else "single sign-on",
        "Roles": "; ".join(f"{a}: {', '.join(r)}" for a, r in u.grants.items()) or "—",
        "Last sign-in": format_time(u.last_sign_in_at),
        "Locked until": format_time(u.locked_until) if u.locked_until else "",
    } for u in users],
    hide_index=True, width="stretch",
)  # fmt: skip


def _add() -> None:
    added = act(
        add_user, st.session_state.get("user_email", ""), by=actor,
        name=st.session_state.get("user_name") or None,
        admin=bool(st.session_state.get("user_admin")), sso=bool(st.session_state.get("user_sso")),
        done=lambda a: f"{a.user.email} added",
    )  # fmt: skip
    if added is not None and added.password:
        notify("info", f"Password for {added.user.email}, shown once — give it to them "
                       f"privately: `{added.password}`")  # fmt: skip


def _change_roles(give: bool) -> None:
    email, account = st.session_state.get("grant_user"), st.session_state.get("grant_account")
    roles = [Role(r) for r in st.session_state.get("grant_roles", [])]
    if not email or not account:
        notify("error", "**User** and **Ad account**: pick both.")
        return
    if give and not roles:
        notify("error", "**Roles**: pick at least one to grant.")
        return

    def said(view: UserView) -> str:
        return f"{view.email} on {account}: {', '.join(view.grants.get(account, [])) or 'no role'}"

    act(grant if give else revoke, email, account, roles if give else (roles or None), by=actor,
        done=said)  # fmt: skip


def _new_password() -> None:
    email = st.session_state.get("manage_user")
    generated = act(set_password, email, by=actor, done=f"new password for {email}; their "
                    "sessions ended")  # fmt: skip
    if generated:
        notify("info", f"Password for {email}, shown once: `{generated}`")


add, roles, manage = st.tabs(["Add a user", "Roles", "Disable · password"])
with add, st.form("add_user", clear_on_submit=True):
    st.text_input("E-mail", key="user_email")
    st.text_input("Name", key="user_name")
    st.checkbox("Admin (every account, users, settings)", key="user_admin")
    st.checkbox("Signs in only through single sign-on (no password)", key="user_sso")
    st.form_submit_button("Add", on_click=_add, type="primary", key="user_add")
with roles:
    st.selectbox("User", [u.email for u in users], key="grant_user", index=None)
    st.selectbox("Ad account", list(accounts), format_func=accounts.get, key="grant_account",
                 index=None)  # fmt: skip
    st.multiselect("Roles", ROLES, key="grant_roles",
                   help="viewer reads; marketer edits rules and applies suggestions; approver "
                        "decides approvals (revoke without roles: every role there)")  # fmt: skip
    left, right = st.columns(2)
    left.button("Grant", on_click=_change_roles, args=(True,), key="grant", type="primary")
    right.button("Revoke", on_click=_change_roles, args=(False,), key="revoke")
with manage:
    st.selectbox("User", [u.email for u in users], key="manage_user", index=None)
    chosen = next((u for u in users if u.email == st.session_state.get("manage_user")), None)
    if chosen is not None:
        cols = st.columns(2)
        cols[0].button(
            "Enable" if chosen.disabled else "Disable", key="toggle_user",
            on_click=act, args=(set_disabled, chosen.email, not chosen.disabled),
            kwargs={"by": actor, "done": f"{chosen.email} "
                                         f"{'enabled' if chosen.disabled else 'disabled'}"},
        )  # fmt: skip
        if chosen.password:
            cols[1].button("Set a new password", key="new_password", on_click=_new_password)
