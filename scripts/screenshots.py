"""Screenshots of every page, in headless Chromium.

    .venv/bin/python scripts/screenshots.py [--current-database] [--out docs/screenshots]

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
    parser.add_argument(
        "--current-database",
        action="store_true",
        help="serve the database of the current settings instead of a throwaway sandbox",
    )
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: apt-get install -y chromium", file=sys.stderr)
        return 2

    port = str(_free_port())
    with tempfile.TemporaryDirectory() as tmp:
        if not args.current_database:
            env = dict(os.environ, REX_DATA_DIR=tmp, REX_DATABASE_URL=f"sqlite:///{tmp}/rex.db")
            env.pop("DATABASE_URL", None)
            env["REX_SANDBOX_PORT"] = str(_free_port())
            env["REX_UI_PORT"] = port
            env["REX_SYNC_DAYS"] = "60"  # two periods: the KPIs show "vs previous 30 days"
            command = [sys.executable, "-m", "core", "up"]
        else:
            env = dict(os.environ)
            command = [
                *(sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py")),
                *("--server.port", port, "--server.headless", "true"),
                *("--browser.gatherUsageStats", "false"),
            ]
        server = subprocess.Popen(command, cwd=ROOT, env=env)
        try:
            _wait_for(f"http://127.0.0.1:{port}/_stcore/health", server)
            return _shoot(f"http://127.0.0.1:{port}", out)
        finally:
            server.terminate()
            server.wait(30)


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
            raise SystemExit(f"{' '.join(process.args[1:4])} exited with {process.returncode}")
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
