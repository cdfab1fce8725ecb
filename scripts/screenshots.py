"""Screenshots of every page, in headless Chromium.

    .venv/bin/python scripts/screenshots.py [--current-database] [--out docs/screenshots]
                                            [--only suggestions …]

By default a throwaway install (`python -m core up` on a temporary SQLite file with its
own sandbox, connected and synced; no effect on yours); with `--current-database`,
`streamlit run app.py` against the database the current settings name (DATABASE_URL /
REX_DATABASE_URL). The app is served on a free port; each page is opened with Playwright
driving Debian's chromium, and saved as a PNG once the app has finished running.
Exits non-zero if a page shows an exception. Needs /usr/bin/chromium
(`apt-get install -y chromium`).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGES = {
    "overview": ("/", "Overview"),
    "rules": ("/rules", "Rules"),
    "executions": ("/executions", "Executions"),
    "approvals": ("/approvals", "Approvals"),
    "breakdowns": ("/breakdowns", "Breakdowns"),
    "suggestions": ("/suggestions", "Suggestions"),
    "impact": ("/impact", "Impact"),
    "accounts": ("/accounts", "Accounts"),
    "health": ("/health", "Health"),
    "users": ("/users", "Users"),
    "audit": ("/audit", "Audit log"),
    "notifications": ("/notifications", "Notifications"),
}
ACCOUNTS_BOX = '[class*="st-key-b"][class*="_accounts"] input'  # the builder's accounts
DEMO_RULE = {
    "name": "Scale winners (demo)",
    "scope": {"level": "adset", "account_ids": ["act_1010000001"]},
    "conditions": {"all": [{"metric": "roas", "window": "last_7d", "op": ">", "value": 3}]},
    "actions": [{"type": "change_budget", "by_percent": 20, "max": 500}],
    "safety": {"require_approval": True, "max_daily_actions": 5},
}
# the throwaway install's first admin, with a password set for the browser to sign in
DEMO_EMAIL = "admin@rex.local"
DEMO_PASSWORD = "throwaway demo password"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument(
        "--current-database",
        action="store_true",
        help="serve the database of the current settings instead of a throwaway sandbox",
    )
    parser.add_argument(
        "--email",
        default=DEMO_EMAIL,
        help="with --current-database: who signs in (the password from the environment's "
        "REX_SCREENSHOT_PASSWORD)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[*PAGES, "builder"],
        help="these pages only (default: every page and the builder)",
    )
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: apt-get install -y chromium", file=sys.stderr)
        return 2

    if args.current_database:
        port = str(free_port())
        command = [
            *(sys.executable, str(ROOT / "scripts" / "serve_ui.py"), "run", str(ROOT / "app.py")),
            *("--server.port", port, "--server.headless", "true"),
            *("--browser.gatherUsageStats", "false"),
        ]
        server = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ))
        try:
            wait_for(f"http://127.0.0.1:{port}/_stcore/health", server)
            password = os.environ.get("REX_SCREENSHOT_PASSWORD", "")
            return shoot(f"http://127.0.0.1:{port}", out, args.only, (args.email, password))
        finally:
            server.terminate()
            server.wait(30)
    with throwaway_app() as base:
        return shoot(base, out, args.only)


@contextmanager
def throwaway_app(
    sync_days: int = 60,
    *,
    demo: bool = True,
    secrets: Callable[[str], str] | None = None,
    prepare: Callable[[dict[str, str]], None] | None = None,
) -> Iterator[str]:
    """`python -m core up` on a temporary SQLite file with its own sandbox, plus a demo
    rule that has run (`demo=False`: none, only the first admin's password set); yields
    the app's base URL and stops everything afterwards.

    `secrets`, given the app's base URL, returns the text of the app's `secrets.toml`
    (e.g. an `[auth]` section whose redirect_uri names that URL): written into the
    throwaway install and the only secrets file Streamlit reads there (its
    `secrets.files` option, as STREAMLIT_SECRETS_FILES), so none of the checkout's or the
    home's `.streamlit/secrets.toml` is used. `prepare` is called with the install's
    environment once it is up and seeded (e.g. `rex(env, "users", "add", …)`)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, REX_DATA_DIR=tmp, REX_DATABASE_URL=f"sqlite:///{tmp}/rex.db")
        env.pop("DATABASE_URL", None)
        env["REX_SANDBOX_PORT"] = str(free_port())
        env["REX_UI_PORT"] = port = str(free_port())
        if secrets is not None:
            secrets_file = Path(tmp) / "secrets.toml"
            secrets_file.write_text(secrets(f"http://127.0.0.1:{port}"), encoding="utf-8")
            secrets_file.chmod(0o600)
            env["STREAMLIT_SECRETS_FILES"] = str(secrets_file)
        env["REX_ADMIN_EMAIL"] = DEMO_EMAIL
        env["REX_SYNC_DAYS"] = str(sync_days)  # 60: the KPIs show "vs previous 30 days"
        env.pop("REX_SECRET_KEY", None)  # its own key file in the temporary data dir
        server = subprocess.Popen([sys.executable, "-m", "core", "up"], cwd=ROOT, env=env)
        try:
            wait_for(f"http://127.0.0.1:{port}/_stcore/health", server)
            seed_demo_rule(env, rule=demo)
            if prepare is not None:
                prepare(env)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(30)


def shoot(
    base: str,
    out: Path,
    only: list[str] | None = None,
    credentials: tuple[str, str] = (DEMO_EMAIL, DEMO_PASSWORD),
) -> int:
    from playwright.sync_api import sync_playwright

    failures = 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1680, "height": 1700})
        sign_in(page, base, *credentials)
        for name, (path, heading) in PAGES.items():
            if only and name not in only:
                continue
            page.goto(base + path)
            page.get_by_role("heading", name=heading).first.wait_for(timeout=120_000)  # loaded CI
            page.wait_for_timeout(6000)  # data grids render a moment after the page
            for grid in page.locator('[data-testid="stDataFrame"]').all():
                if not grid.is_visible():
                    continue  # in a tab not shown
                grid.locator("canvas").first.wait_for(timeout=30_000)
                grid.scroll_into_view_if_needed()  # the grid paints once it is seen
            page.wait_for_timeout(2500)  # let charts and tables draw
            settle(page)
            if page.locator('[data-testid="stException"]').count():
                print(f"✗ {name}: the page shows an exception", file=sys.stderr)
                failures += 1
            page.screenshot(path=str(out / f"{name}.png"))  # the viewport: grids draw only there
            print(f"✓ {name} → {out / f'{name}.png'}")
        if not only or "builder" in only:
            failures += shoot_builder(page, base, out)
        browser.close()
    return 1 if failures else 0


def sign_in(page, base: str, email: str, password: str) -> None:  # type: ignore[no-untyped-def]
    """Sign in through the app's form; the session's cookie then carries every page. A
    wrong password just before makes the next attempt wait (Rex's throttle: 1 s after
    the first): then wait as long as the page says, as a person would, and again."""
    import re

    navigation = page.locator('[data-testid="stSidebarNav"]')
    throttled = page.locator('[data-testid="stAlert"]').filter(has_text="before trying again")
    for _attempt in range(3):
        page.goto(base + "/")  # a fresh form, no notice left from an attempt before
        page.get_by_role("heading", name="Sign in to Rex").wait_for(timeout=60_000)
        page.get_by_role("textbox", name="E-mail").fill(email)
        page.get_by_role("textbox", name="Password").fill(password)
        page.get_by_role("button", name="Sign in", exact=True).click()
        navigation.or_(throttled).first.wait_for(timeout=60_000)
        if not throttled.count():
            break
        wait = re.search(r"wait (\d+) second", throttled.first.inner_text())
        time.sleep((int(wait.group(1)) if wait else 1) + 0.5)
    navigation.wait_for(timeout=60_000)
    settle(page)


def settle(page) -> None:  # type: ignore[no-untyped-def]
    """Wait until the app has finished running (Streamlit's running indicator is gone)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000
    )


def pick_option(page, box: str, text: str) -> None:  # type: ignore[no-untyped-def]
    """Choose the option saying `text` in the select box `box` (a CSS selector). A rerun
    that lands while the list is open redraws the box and closes the list: try again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(4):
        settle(page)
        page.locator(box).first.click()
        try:
            page.get_by_role("option").filter(has_text=text).first.click(timeout=10_000)
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            if attempt == 3:
                raise
            continue
        page.keyboard.press("Escape")
        settle(page)
        widget = page.locator(box.removesuffix(" input")).first  # the box's chosen tags
        if text in (widget.text_content() or ""):
            return  # chosen (a rerun landing on the click can drop it: then again)
    raise AssertionError(f"could not choose {text!r} in {box}")


def shoot_builder(page, base: str, out: Path) -> int:  # type: ignore[no-untyped-def]
    """The builder opened on a template, with its mode and the preview of its outcome."""
    page.goto(base + "/rules")
    page.locator(".st-key-rules_view").get_by_text("Builder").click()
    page.locator(".st-key-builder_use_template button").first.click()
    pick_option(page, ACCOUNTS_BOX, "act_1010000001")
    page.get_by_text("Preview: what it would do now").first.wait_for(timeout=60_000)
    page.wait_for_timeout(4000)
    if page.locator('[data-testid="stException"]').count():
        print("✗ builder: the page shows an exception", file=sys.stderr)
        return 1
    page.set_viewport_size({"width": 1680, "height": 4400})  # the page scrolls inside
    page.wait_for_timeout(3000)
    page.screenshot(
        path=str(out / "builder.png"), clip={"x": 0, "y": 0, "width": 1680, "height": 3100}
    )
    print(f"✓ builder → {out / 'builder.png'}")
    return 0


def seed_demo_rule(env: dict[str, str], *, rule: bool = True) -> None:
    """The first admin's password set (for the browser to sign in); unless not `rule`, a
    rule that queues approvals, run once, and one of them approved: the Automation pages
    have something to show; suggestions found from the synced breakdowns."""
    import json

    rex(env, "users", "passwd", DEMO_EMAIL, "--password-stdin", "--as", DEMO_EMAIL,
        stdin=DEMO_PASSWORD + "\n")  # fmt: skip
    if not rule:
        return
    admin = ("--as", DEMO_EMAIL)  # rules are made and run by a Rex user
    rule_id = rex(env, "rules", "import", "-", *admin, stdin=json.dumps(DEMO_RULE)).strip()
    rex(env, "run", "--rule", rule_id, *admin)  # queues its proposals (ids 1, 2, …)
    rex(env, "approvals", "approve", "1", "--as", DEMO_EMAIL)  # one applied change, undoable
    rex(env, "suggestions", "generate")  # the Suggestions page: what the breakdowns say


def rex(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    """`python -m core ARGS` on the install of `env`; its output (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        error = subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)
        error.add_note(f"its stderr: {done.stderr.strip()}")  # what went wrong, in the report
        raise error
    return done.stdout


def wait_for(url: str, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{' '.join(process.args[1:4])} exited with {process.returncode}")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise SystemExit(f"the app did not answer at {url} within {timeout:.0f} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    raise SystemExit(main())
