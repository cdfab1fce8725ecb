"""Single sign-on end to end, in a real browser: headless Chromium (Debian's), driven by
Playwright, against `python -m core up` on a throwaway install whose `secrets.toml` has
an `[auth]` section naming a real OpenID Connect provider on loopback (oidc-provider-mock,
which shows a form where the tester types who they are). Nothing of Rex is mocked: the
button calls Streamlit's `st.login`, Authlib talks to the provider over HTTP, and Rex
matches the e-mail the provider confirmed to one of its users."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

import pytest
import requests
import werkzeug.serving

from scripts.screenshots import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DEMO_EMAIL,
    rex,
    settle,
    throwaway_app,
)

with warnings.catch_warnings():  # the mock still uses the parts of Authlib it deprecates
    import authlib.deprecate  # noqa: F401 (it makes its warnings "always": ignored over that)

    warnings.simplefilter("ignore", DeprecationWarning)
    import oidc_provider_mock

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning"),  # the mock's
]
ACCOUNT = "act_1010000001"  # the sandbox's USD account
KNOWN = "dana@example.com"  # a Rex user who signs in only through the provider
STRANGER = "eve@example.com"  # signs in at the provider, but Rex does not know her
IMPOSTOR = "mallory"  # a provider account claiming Dana's address, unverified
NO_EMAIL = "no-email"  # a provider account that sends no e-mail claim at all
# how long the provider's ID tokens last (an hour at Google, Entra ID, Okta): short, so a
# test can outlive one, long enough for each sign-in on a loaded machine
TOKEN_SECONDS = 60


class Rex(NamedTuple):
    base: str  # the app's URL
    env: dict[str, str]  # the install's environment, for `python -m core`


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """oidc-provider-mock on a free loopback port, in a thread; its base URL (the issuer).
    Named `localhost` while Rex is `127.0.0.1`: another site, as a real provider is, so
    the browser keeps their cookies apart and SameSite applies as it would."""
    server = werkzeug.serving.make_server(
        "127.0.0.1",
        0,
        oidc_provider_mock.app(
            require_nonce=True, access_token_max_age=timedelta(seconds=TOKEN_SECONDS)
        ),
        threaded=True,
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture(scope="module")
def rex_install(provider: str) -> Iterator[Rex]:
    assert Path(CHROMIUM).exists(), "install Debian's chromium: apt-get install -y chromium"
    # the provider's claims of its users (the form then asks only for the subject); a
    # subject it has no claims for gets the subject as its e-mail and no email_verified
    # claim at all (as Entra ID sends none)
    for subject, claims in (
        (KNOWN, {"email": KNOWN, "email_verified": True, "name": "Dana at the provider"}),
        (IMPOSTOR, {"email": KNOWN, "email_verified": False, "name": "Mallory"}),
        (NO_EMAIL, {"name": "Nobody"}),
    ):
        answer = requests.put(f"{provider}/users/{quote(subject)}", json=claims, timeout=10)
        assert answer.status_code == 204, answer.text

    def secrets(base: str) -> str:
        return (
            "[auth]\n"
            f'redirect_uri = "{base}/oauth2callback"\n'
            'cookie_secret = "a throwaway cookie secret for the sso test"\n'
            'client_id = "rex"\n'
            'client_secret = "rex-secret"\n'
            f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n'
        )

    envs: list[dict[str, str]] = []

    def prepare(env: dict[str, str]) -> None:  # an admin adds them first, as the README says
        rex(env, "users", "add", KNOWN, "--sso", "--name", "Dana", "--as", DEMO_EMAIL)
        rex(env, "users", "grant", KNOWN, ACCOUNT, "viewer", "--as", DEMO_EMAIL)
        envs.append(env)

    with throwaway_app(sync_days=7, demo=False, secrets=secrets, prepare=prepare) as base:
        yield Rex(base, envs[0])


@pytest.fixture
def app(rex_install: Rex) -> str:
    return rex_install.base


def _sign_in_at_the_provider(page, app: str, subject: str) -> None:  # type: ignore[no-untyped-def]
    """Rex's "Sign in with your company account", then the provider's form."""
    from playwright.sync_api import expect

    page.goto(f"{app}/")
    expect(page.get_by_role("heading", name="Sign in to Rex")).to_be_visible()
    settle(page)
    page.get_by_role("button", name="Sign in with your company account").click()
    page.wait_for_url("**/oauth2/authorize**")  # the provider's own page, off Rex
    expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
    page.get_by_placeholder("sub").fill(subject)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{app}/**")  # back at Rex, through /oauth2callback


def test_a_known_user_signs_in_through_the_provider(app: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # a loaded machine reruns slowly; 5 s is Playwright's
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1680, "height": 1400})
        page.set_default_timeout(60_000)
        _sign_in_at_the_provider(page, app, KNOWN)

        # signed in as the Rex user of that e-mail, with a viewer's pages, not an admin's
        sidebar = page.locator('[data-testid="stSidebar"]')
        expect(sidebar.get_by_text(f"Signed in as Dana · {KNOWN}")).to_be_visible()
        navigation = page.locator('[data-testid="stSidebarNav"]')
        expect(navigation.get_by_text("Overview")).to_be_visible()
        expect(navigation.get_by_text("Rules")).to_be_visible()
        expect(navigation.get_by_text("Users", exact=True)).to_have_count(0)
        expect(navigation.get_by_text("Audit log")).to_have_count(0)
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        settle(page)
        exceptions = page.locator('[data-testid="stException"]')
        assert exceptions.count() == 0, exceptions.first.inner_text()

        # a reload stays signed in (Rex's own session cookie)
        page.reload()
        expect(sidebar.get_by_text(f"Signed in as Dana · {KNOWN}")).to_be_visible()

        # signing out of Rex signs out of the provider too (its end-session page), and
        # comes back to Rex's sign-in page — not signed in again by Streamlit's record of
        # the provider's sign-in
        settle(page)
        page.locator(".st-key-sign_out button").click()
        page.wait_for_url("**/oauth2/end_session**")
        page.get_by_role("button", name="End session").click()
        page.wait_for_url(f"{app}/**")
        expect(page.get_by_role("heading", name="Sign in to Rex")).to_be_visible()
        expect(page.get_by_role("button", name="Sign in with your company account")).to_be_visible()
        page.reload()
        expect(page.get_by_role("heading", name="Sign in to Rex")).to_be_visible()
        expect(page.locator('[data-testid="stSidebarNav"]')).to_have_count(0)
        browser.close()


def test_an_e_mail_unknown_to_rex_gets_no_access(app: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1680, "height": 1400})
        page.set_default_timeout(60_000)
        _sign_in_at_the_provider(page, app, STRANGER)

        refusal = page.locator('[data-testid="stAlert"]').filter(has_text="has no Rex access yet")
        expect(refusal).to_be_visible()
        expect(refusal).to_contain_text(STRANGER)
        expect(page.get_by_role("heading", name="Sign in to Rex")).to_be_visible()
        expect(page.locator('[data-testid="stSidebarNav"]')).to_have_count(0)
        expect(page.get_by_text("Signed in as")).to_have_count(0)
        # still refused after a reload: the provider's sign-in is no Rex session
        page.reload()
        expect(refusal).to_be_visible()
        expect(page.locator('[data-testid="stSidebarNav"]')).to_have_count(0)

        # signing out of the provider leaves the plain sign-in page, the refusal gone
        settle(page)
        page.get_by_role("button", name="Sign out of the identity provider").click()
        page.wait_for_url("**/oauth2/end_session**")
        page.get_by_role("button", name="End session").click()
        page.wait_for_url(f"{app}/**")
        expect(page.get_by_role("button", name="Sign in with your company account")).to_be_visible()
        expect(page.get_by_text("has no Rex access yet")).to_have_count(0)
        browser.close()


@pytest.mark.parametrize(
    ("subject", "refusal_says"),
    [(IMPOSTOR, f"has not verified {KNOWN}"), (NO_EMAIL, "sent no e-mail address")],
    ids=["unverified", "no-email"],
)
def test_a_provider_account_without_a_verified_e_mail_is_refused(
    app: str, subject: str, refusal_says: str
) -> None:
    """A provider account that merely claims a Rex user's address does not sign in as
    them (Rex refuses an `email_verified` of false); one without an e-mail is told why
    (not sent round the provider again)."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1680, "height": 1400})
        page.set_default_timeout(60_000)
        _sign_in_at_the_provider(page, app, subject)

        refusal = page.locator('[data-testid="stAlert"]').filter(has_text=refusal_says)
        expect(refusal).to_be_visible()
        expect(page.get_by_role("button", name="Sign out of the identity provider")).to_be_visible()
        expect(page.locator('[data-testid="stSidebarNav"]')).to_have_count(0)
        expect(page.get_by_text("Signed in as")).to_have_count(0)
        browser.close()


def test_an_ended_session_starts_again_only_through_the_provider(rex_install: Rex) -> None:
    """Streamlit remembers the provider's sign-in for 30 days; Rex starts a session from
    it only while its ID token lasts. After that, a Rex session that ended (here, an
    admin disabling and re-enabling Dana) needs a new trip through the provider."""
    from playwright.sync_api import expect, sync_playwright

    app = rex_install.base
    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1680, "height": 1400})
        page.set_default_timeout(60_000)
        issued = time.monotonic()  # the ID token is issued a moment after this
        _sign_in_at_the_provider(page, app, KNOWN)
        sidebar = page.locator('[data-testid="stSidebar"]')
        expect(sidebar.get_by_text(f"Signed in as Dana · {KNOWN}")).to_be_visible()

        for change in ("disable", "enable"):  # disabling ends her sessions
            rex(rex_install.env, "users", change, KNOWN, "--as", DEMO_EMAIL)
        time.sleep(max(0.0, issued + TOKEN_SECONDS + 3 - time.monotonic()))  # it expired
        page.reload()
        # the sign-in page drawn to its end (a run starting a session from Streamlit's
        # record would have rerun before the button), with no refusal: just sign in
        expect(page.get_by_role("button", name="Sign in with your company account")).to_be_visible()
        settle(page)
        expect(page.locator('[data-testid="stSidebarNav"]')).to_have_count(0)
        expect(page.get_by_text("Signed in as")).to_have_count(0)
        assert page.locator('[data-testid="stAlert"]').count() == 0

        _sign_in_at_the_provider(page, app, KNOWN)  # a fresh sign-in at the provider
        expect(sidebar.get_by_text(f"Signed in as Dana · {KNOWN}")).to_be_visible()
        browser.close()
