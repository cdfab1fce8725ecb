"""Every page in a real browser: headless Chromium (Debian's), driven by Playwright,
against `python -m core up` on a throwaway install with its own sandbox — and the
marketer's flow walked through: a rule built from a template, its outcomes previewed, a
dry run, going live, a proposal approved on its own row, the change undone from the
activity feed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.screenshots import (
    ACCOUNTS_BOX,
    CHROMIUM,
    CHROMIUM_ARGS,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    PAGES,
    pick_option,
    settle,
    shoot,
    sign_in,
    throwaway_app,
)

pytestmark = pytest.mark.browser
ACCOUNT = "act_1010000001"  # the sandbox's USD account


@pytest.fixture(scope="module")
def app() -> Iterator[str]:
    assert Path(CHROMIUM).exists(), "install Debian's chromium: apt-get install -y chromium"
    with throwaway_app(sync_days=7) as base:
        yield base


def test_the_marketer_s_flow_from_template_to_undo(app: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # a loaded machine reruns slowly; 5 s is Playwright's
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1680, "height": 1400})
        page.set_default_timeout(60_000)
        # a deep link asks to sign in first; a wrong password is refused in words
        page.goto(f"{app}/rules")
        expect(page.get_by_role("heading", name="Sign in to Rex")).to_be_visible()
        page.get_by_role("textbox", name="E-mail").fill(DEMO_EMAIL)
        page.get_by_role("textbox", name="Password").fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("wrong e-mail or password")).to_be_visible()
        sign_in(page, app, DEMO_EMAIL, DEMO_PASSWORD)

        def notice(text: str) -> None:  # a notice (st.success / st.info / …) saying `text`
            alerts = page.locator('[data-testid="stAlert"]').filter(has_text=text)
            expect(alerts.first).to_be_visible()

        def click(key: str) -> None:  # once the app is idle: a rerun redraws the button
            settle(page)
            page.locator(f".st-key-{key} button").first.click()

        # a deep link as the first request the app serves (this test runs first): the
        # app's own navigation, not Streamlit's list of the files in pages/
        page.goto(f"{app}/rules")
        settle(page)
        navigation = page.locator('[data-testid="stSidebarNav"]')
        expect(navigation.get_by_text("Automation")).to_be_visible()
        expect(navigation.get_by_text("notices")).to_have_count(0)

        # a rule from a template, in Test first mode, on one account
        page.locator(".st-key-rules_view").get_by_text("Builder").click()
        click("builder_use_template")
        notice("in Test first")
        pick_option(page, ACCOUNTS_BOX, ACCOUNT)
        # the preview says what it would do, before anything is saved
        expect(page.get_by_text("Preview: what it would do now")).to_be_visible()
        expect(page.get_by_text("candidates match; nothing is changed or saved")).to_be_visible()
        click("builder_save")
        notice("Saved “")
        expect(page.locator(".st-key-builder_run")).to_be_visible()  # still in the builder

        # a dry run, then live in one click
        click("builder_run")
        notice("would act (dry run)")
        click("builder_go_live")
        notice("is live (version")

        # a proposal (the demo rule asks first) approved on its own row
        page.goto(f"{app}/approvals")
        settle(page)
        page.locator('[class*="st-key-approve_"] button').first.click()
        notice("approved:")

        # and undone from the activity feed
        page.goto(f"{app}/executions")
        page.get_by_role("tab", name="Activity").click()
        settle(page)
        page.locator('[class*="st-key-undo_"] button').first.click()
        notice("Rolled back")
        assert page.locator('[data-testid="stException"]').count() == 0

        # a reload stays signed in (the session's cookie); signing out ends it for good
        page.reload()
        expect(page.locator('[data-testid="stSidebarNav"]')).to_be_visible()
        click("sign_out")
        expect(page.get_by_role("heading", name="Sign in to Rex")).to_be_visible()
        page.reload()
        expect(page.get_by_role("heading", name="Sign in to Rex")).to_be_visible()
        browser.close()


def test_every_page_renders_in_chromium_without_an_exception(app: str, tmp_path: Path) -> None:
    assert shoot(app, tmp_path) == 0
    for name in PAGES:
        shot = tmp_path / f"{name}.png"
        assert shot.exists() and shot.stat().st_size > 20_000, name  # a drawn page, not blank
