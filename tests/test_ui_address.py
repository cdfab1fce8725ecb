"""Until Rex has sign-in, whoever reaches the UI's port can approve budget changes: `make
run` (`python -m core up`) serves it on 127.0.0.1 unless REX_UI_ADDRESS says otherwise,
and says so. The real launcher and the real Streamlit child; the kernel's socket table."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from core.launcher import ui_command, ui_notice
from core.settings import reload_settings

ROOT = Path(__file__).resolve().parent.parent
LISTEN = "0A"


def listening_addresses(port: int) -> set[str]:
    """The local addresses (as /proc/net shows them, hex) that listen on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if int(hex_port, 16) == port and fields[3] == LISTEN:
                found.add(address)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_ui_command_binds_the_configured_address(monkeypatch: pytest.MonkeyPatch) -> None:
    command = ui_command(reload_settings())
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    assert "this machine only" in ui_notice(reload_settings())

    monkeypatch.setenv("REX_UI_ADDRESS", "0.0.0.0")
    exposed = reload_settings()
    assert ui_command(exposed)[ui_command(exposed).index("--server.address") + 1] == "0.0.0.0"
    assert "anyone who reaches this port can try to sign in" in ui_notice(exposed)
    monkeypatch.undo()
    reload_settings()


def test_make_run_serves_the_ui_on_loopback_only(sqlite_db: Engine) -> None:
    port = free_port()
    launcher = subprocess.Popen(
        [sys.executable, "-m", "core", "up", "--no-sandbox", "--no-sync", "--no-scheduler"],
        cwd=ROOT,
        env={**os.environ, "REX_UI_PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(launcher.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        deadline = time.monotonic() + 90
        while not listening_addresses(port) and time.monotonic() < deadline:
            assert launcher.poll() is None, "".join(lines)
            time.sleep(0.2)
        time.sleep(1)  # every socket the UI opens is open by now
        addresses = listening_addresses(port)
        assert addresses == {"0100007F"}, f"the UI listens on {addresses} (want 127.0.0.1 only)"
        notice = next(line for line in lines if "UI on" in line)
        assert f"http://127.0.0.1:{port}" in notice and "REX_UI_ADDRESS=0.0.0.0" in notice
        assert "behind TLS" in notice
    finally:
        launcher.send_signal(signal.SIGTERM)
        code = launcher.wait(timeout=30)
        reader.join(timeout=5)
    assert code == 0, "".join(lines)
