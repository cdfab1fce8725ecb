"""`python -m core up` (what `make run` runs): Rex and its helpers in one terminal.

1. migrate the database to head, and check that the key decrypts the stored tokens;
2. start the sandbox Graph server (a child process) on its state file
   (<data dir>/sandbox-state.json: what Rex changed there survives a restart, and so
   does its token) and connect its ad accounts — every start, so a new port or a state
   file deleted by hand is picked up; an account removed on the Accounts page stays
   removed;
3. a first sync with progress;
4. start the scheduler sidecar and serve the Streamlit app, as child processes (the UI
   on REX_UI_ADDRESS, 127.0.0.1 by default);
5. wait; Ctrl-C or SIGTERM stops every child (terminate, then kill after a grace period).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from core.access.actor import SYSTEM
from core.accounts import connect_account, list_accounts
from core.cli.console import print_progress
from core.crypto import verify_key
from core.db.migrate import current_revision, upgrade
from core.errors import RexError
from core.settings import Settings, get_settings, is_loopback
from core.sync.runner import sync_accounts

log = logging.getLogger("rex.up")

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 10.0


class LaunchError(RexError):
    """A child process could not be started."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[str]


@dataclass
class Launcher:
    sandbox: bool = True
    ui: bool = True
    first_sync: bool = True
    scheduler: bool = True
    children: list[Child] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _waiting: bool = False

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            self.migrate()
            self.first_admin()
            self.check_key()
            accounts = self.start_sandbox() if self.sandbox else []
            if self.first_sync and not self._stop.is_set():
                self.sync(accounts)
                self.suggest()
            if self.scheduler and not self._stop.is_set():
                self.start_scheduler()
            if self.ui and not self._stop.is_set():
                self.start_ui()
            return self.wait()
        finally:
            self.stop_children()

    # ----------------------------------------------------------------- steps

    def migrate(self) -> None:
        upgrade("head")
        print(f"✓ database migrated to {current_revision()}", flush=True)

    def first_admin(self) -> None:
        """With no user yet, the first admin (`REX_ADMIN_EMAIL`) and a generated password,
        printed once: the app asks everyone to sign in, and there is no default password."""
        from core.access.users import add_user, bootstrap_actor, has_users

        if has_users():
            return
        email = get_settings().admin_email
        added = add_user(email, name="Admin", admin=True, by=bootstrap_actor())
        print(f"✓ first admin {email}, password {added.password} — shown once: sign in with "
              "it, then add your team (Settings → Users)", flush=True)  # fmt: skip

    def check_key(self) -> None:
        """Stop before anything is written when the stored tokens cannot be decrypted."""
        verify_key()

    def start_sandbox(self) -> list[str]:
        settings = get_settings()
        process = self._spawn("sandbox", sandbox_command(settings), capture_stdout=True)
        announcement = self._first_line(process)
        graph_url, token = announcement["graph_url"], announcement["token"]
        removed = {a.external_id for a in list_accounts(include_removed=True) if a.removed}
        accounts = []
        for account in announcement["accounts"]:
            if account in removed:
                print(
                    f"· sandbox account {account} was removed; not connected again "
                    "(connect it on the Accounts page to bring it back)",
                    flush=True,
                )
                continue
            view = connect_account(account, token, by=SYSTEM, graph_url=graph_url)
            accounts.append(account)
            print(f"✓ sandbox account {view.external_id} “{view.name}” connected", flush=True)
        # Keep draining the sandbox's stdout so it never blocks on a full pipe.
        threading.Thread(target=_drain, args=(process,), daemon=True).start()
        print(
            f"✓ sandbox serving {graph_url}, its state kept in {sandbox_state_file(settings)} "
            "(Accounts page → Reset the sandbox to start over)",
            flush=True,
        )
        return accounts

    def sync(self, accounts: list[str]) -> None:
        results = sync_accounts(accounts or None, progress=print_progress)
        for result in results:
            mark = "✓" if result.ok else "✗"
            print(f"{mark} {result.account} synced {result.error or ''}".rstrip(), flush=True)

    def suggest(self) -> None:
        """Suggestions from what was just synced (the scheduler regenerates them daily)."""
        from core.suggestions.generate import generate

        result = generate(by=SYSTEM)
        for account, done in result.accounts.items():
            print(f"✓ {account}: {len(done.new) + len(done.refreshed)} open suggestions "
                  "(Insights → Suggestions)", flush=True)  # fmt: skip
        for account, why in result.skipped.items():
            print(f"✗ {account}: suggestions not generated: {why}", flush=True)

    def start_scheduler(self) -> None:
        self._spawn("scheduler", [sys.executable, "-m", "core.scheduler"])
        print("✓ scheduler running (python -m core.scheduler)", flush=True)

    def start_ui(self) -> None:
        settings = get_settings()
        self._spawn("ui", ui_command(settings))
        print(f"✓ {ui_notice(settings)} — Ctrl-C stops it", flush=True)

    def wait(self) -> int:
        self._waiting = True
        while not self._stop.wait(0.5):
            for child in self.children:
                code = child.process.poll()
                if code is not None:
                    print(f"✗ {child.name} exited with code {code}; stopping", file=sys.stderr)
                    return 1
        return 0

    # -------------------------------------------------------------- children

    def _spawn(
        self, name: str, command: list[str], *, capture_stdout: bool = False
    ) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE if capture_stdout else None,
            text=True,
            env=os.environ.copy(),
            start_new_session=True,  # our signal handler decides when children stop
        )
        self.children.append(Child(name, process))
        return process

    def _first_line(self, process: subprocess.Popen[str]) -> dict:
        stdout = process.stdout
        assert stdout is not None
        line_holder: list[str] = []
        reader = threading.Thread(
            target=lambda: line_holder.append(stdout.readline()),
            daemon=True,
        )
        reader.start()
        reader.join(STARTUP_TIMEOUT_SECONDS)
        line = line_holder[0] if line_holder else ""
        if not line.strip():
            code = process.poll()
            raise LaunchError(
                f"the sandbox did not start (exit code {code}); its own message is above — "
                f"if it names the port ({get_settings().sandbox_port}), set REX_SANDBOX_PORT "
                "to a free one"
            )
        return json.loads(line)

    def stop_children(self) -> None:
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in reversed(self.children):
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        self.children.clear()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        print(f"\nstopping ({signal.Signals(signum).name})…", file=sys.stderr, flush=True)
        self._stop.set()
        if not self._waiting:  # still starting up: abandon the step in hand
            raise KeyboardInterrupt


def sandbox_state_file(settings: Settings) -> Path:
    """Where the sandbox `make run` starts keeps its state across restarts."""
    return settings.data_dir / "sandbox-state.json"


def sandbox_command(settings: Settings) -> list[str]:
    """The sandbox's command line: on the state file, so that budgets and pauses Rex made
    there are still there after a restart (and its token still works)."""
    return [
        sys.executable, "-m", "core", "sandbox", "serve",
        "--host", settings.sandbox_host,
        "--port", str(settings.sandbox_port),
        "--seed", str(settings.sandbox_seed),
        "--state-file", str(sandbox_state_file(settings)),
    ]  # fmt: skip


def ui_command(settings: Settings) -> list[str]:
    """The Streamlit command line. The address is always given: Streamlit's own default
    listens on every interface, and until Rex has sign-in whoever reaches the port can
    approve budget changes, so REX_UI_ADDRESS defaults to this machine only."""
    return [
        sys.executable, str(ROOT / "scripts" / "serve_ui.py"), "run", str(ROOT / "app.py"),
        "--server.address", settings.ui_address,
        "--server.port", str(settings.ui_port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip


def ui_notice(settings: Settings) -> str:
    """Where the UI is, and who can reach it."""
    address, port = settings.ui_address, settings.ui_port
    if is_loopback(address):
        return (
            f"UI on http://{address}:{port} (this machine only; set REX_UI_ADDRESS=0.0.0.0 "
            "to expose it, behind TLS)"
        )
    shown = "localhost" if address in ("0.0.0.0", "::") else address
    return (
        f"UI on http://{shown}:{port}, listening on {address}: anyone who reaches this port "
        "can try to sign in, and the session cookie is only as private as the connection — "
        "serve it behind TLS; set REX_UI_ADDRESS=127.0.0.1 to keep it to this machine"
    )


def _drain(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    for _line in process.stdout:
        pass
