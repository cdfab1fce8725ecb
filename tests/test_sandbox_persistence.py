"""The sandbox keeps its state across restarts in a state file: what was written through
the Graph API (budgets, pauses, copies), the write log, the change history and overrides
are there after a restart, and so is the token; a reset goes back to the generated world;
a state file that cannot be used stops the sandbox with the file's name and the fix."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from core.sandbox import SandboxServer
from core.sandbox.server import SandboxStateError
from tests.conftest import NOW

USD = "act_1010000001"
ROOT = Path(__file__).resolve().parent.parent


def graph(server: SandboxServer, method: str, path: str, **params: str) -> dict:
    answer = requests.request(
        method,
        f"{server.url}/v26.0/{path}",
        headers={"Authorization": f"Bearer {server.token}"},
        **({"params": params} if method == "GET" else {"data": params}),
        timeout=10,
    )
    return answer.json()


def admin(server: SandboxServer, method: str, action: str, body: dict | None = None) -> object:
    answer = requests.request(method, f"{server.url}/__sandbox/{action}", json=body, timeout=10)
    return answer.json()


def _adset_with_budget(server: SandboxServer) -> dict:
    return next(
        e
        for e in admin(server, "GET", "state")["entities"]  # type: ignore[index]
        if e["level"] == "adset" and e["daily_budget"] and e["status"] == "ACTIVE"
    )


def _ad(server: SandboxServer, status: str = "ACTIVE") -> dict:
    return next(
        e
        for e in admin(server, "GET", "state")["entities"]  # type: ignore[index]
        if e["level"] == "ad" and e["account_id"] == USD and e["status"] == status
    )


def _changes(server: SandboxServer, state: Path) -> dict:
    """A budget, a pause, a copy, a person's edit in Ads Manager and an override."""
    adset, ad = _adset_with_budget(server), _ad(server)
    budget = str(adset["daily_budget"] + 1234)
    assert graph(server, "POST", adset["id"], daily_budget=budget) == {"success": True}
    assert graph(server, "POST", ad["id"], status="PAUSED") == {"success": True}
    copied = graph(server, "POST", f"{ad['id']}/copies")["copied_ad_id"]
    kept = json.loads(state.read_text(encoding="utf-8"))["world"]  # on disk before the answer
    assert [w["path"] for w in kept["write_log"]] == [adset["id"], ad["id"], f"{ad['id']}/copies"]
    admin(server, "POST", "edit", {"object_id": adset["id"], "name": "Renamed by a person"})
    admin(
        server,
        "POST",
        "insights",
        {"ad_id": ad["id"], "date": "2026-11-10", "spend": "99.99", "impressions": 5000},
    )
    return {"adset": adset["id"], "budget": budget, "ad": ad["id"], "copy": copied}


def test_a_restart_keeps_what_was_written(tmp_path: Path) -> None:
    state = tmp_path / "var" / "sandbox-state.json"
    with SandboxServer(port=0, seed=7, now=NOW, state_file=state) as first:
        done = _changes(first, state)
        token = first.token
        entities = admin(first, "GET", "state")
        writes = admin(first, "GET", "writes")
        activities = admin(first, "GET", "activities")
    assert state.exists() and state.stat().st_mode & 0o777 == 0o600  # it holds the token

    with SandboxServer(port=0, seed=7, now=NOW, state_file=state) as second:
        assert second.token == token  # tokens Rex stored keep working
        assert admin(second, "GET", "state") == entities  # statuses, budgets, the copy
        assert admin(second, "GET", "writes") == writes and len(writes) == 3  # type: ignore[arg-type]
        assert admin(second, "GET", "activities") == activities
        adset = graph(second, "GET", done["adset"], fields="daily_budget,name")
        assert (adset["daily_budget"], adset["name"]) == (done["budget"], "Renamed by a person")
        assert graph(second, "GET", done["ad"], fields="status")["status"] == "PAUSED"
        assert graph(second, "GET", done["copy"], fields="status")["status"] == "PAUSED"
        history = graph(second, "GET", f"{USD}/activities", since=str(int(NOW.timestamp()) - 60))
        assert {a["event_type"] for a in history["data"]} >= {
            "update_ad_set_budget",
            "update_ad_run_status",
            "create_ad",
            "update_ad_set_name",
        }
        day = graph(
            second,
            "GET",
            f"{done['ad']}/insights",
            fields="spend",
            time_range=json.dumps({"since": "2026-11-10", "until": "2026-11-10"}),
        )["data"][0]
        assert day["spend"] == "99.99"  # the override
        again = graph(second, "POST", f"{done['ad']}/copies")["copied_ad_id"]
        assert again != done["copy"]  # new ids go on from where the first run stopped


def test_a_reset_goes_back_to_the_generated_world_and_keeps_the_token(tmp_path: Path) -> None:
    state = tmp_path / "sandbox-state.json"
    with SandboxServer(port=0, seed=7, now=NOW) as plain:
        generated = admin(plain, "GET", "state")
    with SandboxServer(port=0, seed=7, now=NOW, state_file=state) as first:
        _changes(first, state)
        assert admin(first, "GET", "state") != generated
        token = first.token
        assert admin(first, "POST", "reset")["reset"] is True  # type: ignore[index]

    with SandboxServer(port=0, seed=7, now=NOW, state_file=state) as second:
        assert admin(second, "GET", "state") == generated
        assert admin(second, "GET", "writes") == [] and admin(second, "GET", "activities") == []
        assert second.token == token


def test_a_damaged_state_file_stops_the_sandbox_naming_the_file_and_the_fix(
    tmp_path: Path,
) -> None:
    state = tmp_path / "sandbox-state.json"
    state.write_text('{"format": 1, "world": ', encoding="utf-8")
    with pytest.raises(SandboxStateError) as caught:
        SandboxServer(port=0, seed=7, now=NOW, state_file=state)
    message = str(caught.value)
    assert str(state) in message and "damaged" in message
    assert "delete it" in message and "sync Rex afterwards" in message
    assert state.read_text(encoding="utf-8") == '{"format": 1, "world": '  # left as it was


def test_a_state_file_of_another_seed_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "sandbox-state.json"
    with SandboxServer(port=0, seed=7, now=NOW, state_file=state):
        pass
    with pytest.raises(SandboxStateError) as caught:
        SandboxServer(port=0, seed=3, now=NOW, state_file=state)
    message = str(caught.value)
    assert "made from seed 7, not from seed 3" in message and str(state) in message
    assert "REX_SANDBOX_SEED" in message


def test_a_write_that_cannot_be_kept_is_not_answered_as_a_success(tmp_path: Path) -> None:
    state = tmp_path / "sandbox-state.json"
    with SandboxServer(port=0, seed=7, now=NOW, state_file=state) as server:
        state.unlink()
        state.mkdir()  # the file cannot be replaced any more
        ad = _ad(server)
        answer = graph(server, "POST", ad["id"], status="PAUSED")
    assert answer["error"]["code"] == 2 and answer["error"]["is_transient"] is True
    assert str(state) in answer["error"]["message"]


def test_run_server_keeps_its_token_and_state_across_restarts(tmp_path: Path) -> None:
    state = tmp_path / "sandbox-state.json"
    code = (
        "import sys; from core.sandbox import run_server; "
        "run_server(port=0, seed=3, state_file=sys.argv[1])"
    )

    def serve() -> tuple[subprocess.Popen[str], dict]:
        process = subprocess.Popen(
            [sys.executable, "-c", code, str(state)], stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        return process, json.loads(process.stdout.readline())  # type: ignore[union-attr]

    process, first = serve()
    try:
        ad = next(
            e
            for e in requests.get(f"{first['admin_url']}/state", timeout=5).json()["entities"]
            if e["level"] == "ad" and e["status"] == "ACTIVE"
        )
        paused = requests.post(
            f"{first['graph_url']}/v26.0/{ad['id']}",
            data={"access_token": first["token"], "status": "PAUSED"},
            timeout=5,
        )
        assert paused.json() == {"success": True}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0

    process, second = serve()
    try:
        assert second["token"] == first["token"]
        answer = requests.get(
            f"{second['graph_url']}/v26.0/{ad['id']}",
            params={"access_token": second["token"], "fields": "status"},
            timeout=5,
        )
        assert answer.json()["status"] == "PAUSED"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
