"""Every page in a real browser: headless Chromium (Debian's), driven by Playwright,
against `python -m core up` on a throwaway install with its own sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.screenshots import CHROMIUM, PAGES, shoot, throwaway_app

pytestmark = pytest.mark.browser


def test_every_page_renders_in_chromium_without_an_exception(tmp_path: Path) -> None:
    assert Path(CHROMIUM).exists(), "install Debian's chromium: apt-get install -y chromium"
    with throwaway_app(sync_days=7) as base:
        failures = shoot(base, tmp_path)
    assert failures == 0
    for name in PAGES:
        shot = tmp_path / f"{name}.png"
        assert shot.exists() and shot.stat().st_size > 20_000, name  # a drawn page, not blank
