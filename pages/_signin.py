"""Signing in to the app: who is using it, or the sign-in form.

`signed_in()` is the first call of `app.py` and of every page: the actor of this
browser's session, or the sign-in form and a stop. The session is Rex's own
(core/access/signin.py): a random token the browser keeps in the `rex_session` cookie
(set by the page's script: SameSite=Strict, Secure on https, for the session's
lifetime), so a reload stays signed in; Rex keeps only the token's hash and ends the
session on sign-out, expiry, a password change or disabling.

With the `[auth]` section of `.streamlit/secrets.toml` configured, a "Sign in with …"
button signs in through the company's identity provider (Streamlit's `st.login`,
OpenID Connect); the provider's e-mail is matched to a Rex user — refused when the
provider sent none or says it is unverified — and a Rex session starts while the
provider's ID token lasts (after that, only a new trip through the provider).
"""

from __future__ import annotations

import json

import streamlit as st

from core.access.actor import AccessDenied, Actor
from core.access.roles import Permission
from core.access.signin import (
    SignedIn,
    SignInError,
    resolve,
    sign_in,
    sign_in_sso,
    sign_out,
    wall_now,
)
from core.settings import get_settings

COOKIE = "rex_session"
_TOKEN = "rex_token"  # the session's token, in st.session_state
_COOKIE_SET = "rex_cookie_set"


def signed_in(permission: Permission | None = None) -> Actor:
    """The signed-in actor (who may do `permission` somewhere, when given), or the
    sign-in form (or a refusal) and `st.stop()`."""
    token = st.session_state.get(_TOKEN) or st.context.cookies.get(COOKIE)
    token = token if isinstance(token, str) else None
    actor = resolve(token) if token else None
    if actor is None:
        st.session_state.pop(_TOKEN, None)
        if token and st.session_state.pop(_COOKIE_SET, None) is not None:
            _write_cookie(None)
        _sign_in_form()
        st.stop()
    st.session_state[_TOKEN] = token
    if st.session_state.get(_COOKIE_SET) != token:
        _write_cookie(token)
        st.session_state[_COOKIE_SET] = token
    if permission is not None and not actor.can(permission):
        st.error(str(AccessDenied(f"{actor.label} may not {permission.value}")))
        st.stop()
    return actor


def session_actor() -> Actor:
    """In a callback: who acts, as their session says now (AccessDenied when it ended
    meanwhile — signed out elsewhere, expired, disabled)."""
    token = st.session_state.get(_TOKEN)
    actor = resolve(token) if isinstance(token, str) else None
    if actor is None:
        raise AccessDenied("your session has ended: sign in again")
    return actor


def sign_out_button(actor: Actor) -> None:
    """The sidebar's "signed in as …" and its Sign out button."""
    with st.sidebar:
        st.caption(f"Signed in as **{actor.name}** · {actor.email}" +
                   (" · admin" if actor.admin else ""))  # fmt: skip
        st.button("Sign out", key="sign_out", on_click=_sign_out, icon=":material/logout:")


def _sign_out() -> None:
    sign_out(st.session_state.pop(_TOKEN, None))
    st.session_state[_COOKIE_SET] = "signed out"  # the next run clears the cookie
    if _sso_configured() and st.user.is_logged_in:
        st.logout()


def _sign_in_form() -> None:
    st.title("Sign in to Rex")
    if _sso_configured():
        if st.user.is_logged_in and _provider_sign_in_current():  # back from the provider
            try:
                signed = _sign_in_sso()
            except SignInError as error:
                st.error(str(error))
                st.button("Sign out of the identity provider", on_click=st.logout)
                return
            st.session_state[_TOKEN] = signed.token
            st.rerun()
        st.button("Sign in with your company account", key="sign_in_sso", on_click=st.login,
                  type="primary", icon=":material/badge:")  # fmt: skip
        st.caption("Or with a Rex password:")
    with st.form("sign_in", enter_to_submit=True, clear_on_submit=True):  # no password kept
        email = st.text_input("E-mail", key="sign_in_email", autocomplete="username")
        password = st.text_input("Password", type="password", key="sign_in_password",
                                 autocomplete="current-password")  # fmt: skip
        submitted = st.form_submit_button("Sign in", type="primary", key="sign_in_submit")
    if submitted:
        try:
            signed = sign_in(email, password)
        except SignInError as error:
            st.error(str(error))
        else:
            st.session_state[_TOKEN] = signed.token
            st.rerun()
    st.caption(
        f"First start: `make run` printed the first admin ({get_settings().admin_email}) and "
        "a password, once. Lost it? `python -m core users passwd EMAIL --as EMAIL` on the "
        "server sets a new one."
    )


def _sign_in_sso() -> SignedIn:
    """A Rex session for the person the identity provider signed in (SignInError when
    it sent no e-mail, an unverified one, or one that is no Rex user's)."""
    email = st.user.get("email")
    if not isinstance(email, str) or not email.strip():
        raise SignInError(
            "your identity provider sent no e-mail address: an admin must have it send the "
            "`email` claim (the `email` scope)"
        )
    return sign_in_sso(email, verified=_claim_true(st.user.get("email_verified")))


def _provider_sign_in_current() -> bool:
    """Whether the provider's sign-in that Streamlit remembers still vouches for the
    person: its ID token has not expired (`exp`; about an hour at the big providers).
    Streamlit keeps that sign-in in its own cookie for 30 days, so without this a Rex
    session that ended (expired, or ended by an admin) would start again from the
    cookie alone, for someone the company may have offboarded since: afterwards only a
    new trip through the provider starts one."""
    expires = st.user.get("exp")
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        return False
    return wall_now().timestamp() < expires


def _claim_true(value: object) -> bool | None:
    """A boolean claim as providers send it: true/false, "true"/"false", or absent."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _write_cookie(token: str | None) -> None:
    """Keep (or, with None, forget) the session's token in the browser's cookie."""
    secure = "; Secure" if str(st.context.url or "").startswith("https:") else ""
    if token:
        age = get_settings().session_hours * 3600
        cookie = f"{COOKIE}={token}; Max-Age={age}; Path=/; SameSite=Strict{secure}"
    else:
        cookie = f"{COOKIE}=; Max-Age=0; Path=/; SameSite=Strict{secure}"
    st.html(f"<script>document.cookie = {json.dumps(cookie)};</script>",
            unsafe_allow_javascript=True)  # fmt: skip


def _sso_configured() -> bool:
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, KeyError):  # no secrets.toml at all
        return False
