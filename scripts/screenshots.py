"""Screenshots of every page, in headless Chromium, against a sandbox install.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Uses a throwaway SQLite database and its own sandbox (no effect on your install):
migrates, connects and syncs the sandbox's accounts, serves the app on a free port,
opens each page with Playwright driving Debian's chromium, and saves full-page PNGs.
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
PAGES = {"overview": ("/", "Overview"), "accounts": ("/accounts", "Accounts")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: apt-get install -y chromium", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, REX_DATA_DIR=tmp, REX_DATABASE_URL=f"sqlite:///{tmp}/rex.db")
        env.pop("DATABASE_URL", None)
        env["REX_SANDBOX_PORT"] = str(_free_port())
        env["REX_UI_PORT"] = port = str(_free_port())
        env["REX_SYNC_DAYS"] = "30"
        launcher = subprocess.Popen([sys.executable, "-m", "core", "up"], cwd=ROOT, env=env)
        try:
            _wait_for(f"http://127.0.0.1:{port}/_stcore/health", launcher)
            return _shoot(f"http://127.0.0.1:{port}", out)
        finally:
            launcher.terminate()
            launcher.wait(30)


def _shoot(base: str, out: Path) -> int:
    from playwright.sync_api import sync_playwright

    failures = 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1700})
        for name, (path, heading) in PAGES.items():
            page.goto(base + path)
            page.get_by_role("heading", name=heading).first.wait_for(timeout=60_000)
            page.wait_for_timeout(6000)  # data grids render a moment after the page
            for grid in page.locator('[data-testid="stDataFrame"]').all():
                grid.locator("canvas").first.wait_for(timeout=30_000)
                grid.scroll_into_view_if_needed()  # the grid paints once it is seen
            page.wait_for_timeout(2500)  # let charts and tables draw
            page.wait_for_function(
                "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                timeout=60_000,
            )
            if page.locator('[data-testid="stException"]').count():
                print(f"✗ {name}: the page shows an exception", file=sys.stderr)
                failures += 1
            page.screenshot(path=str(out / f"{name}.png"))  # the viewport: grids draw only there
            print(f"✓ {name} → {out / f'{name}.png'}")
        browser.close()
    return 1 if failures else 0


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"`python -m core up` exited with {process.returncode}")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise SystemExit(f"the app did not answer at {url} within {timeout:.0f} s")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    raise SystemExit(main())
