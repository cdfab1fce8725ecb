"""The sandbox's change history and its applied-then-lost faults, over HTTP."""

from __future__ import annotations

import json
from datetime import timedelta

import requests

from core.meta import GraphClient
from core.sandbox import FaultConfig
from core.sandbox.world import ADS_MANAGER_APP, SANDBOX_APP
from tests.conftest import NOW

USD = "act_1010000001"


def _adset(sandbox):  # type: ignore[no-untyped-def]
    return next(e for e in sandbox.state.entities.values() if e.level == "adset" and e.daily_budget)


def test_the_change_history_lists_api_and_person_changes_newest_first(sandbox) -> None:  # type: ignore[no-untyped-def]
    graph = GraphClient(sandbox.token, account_id=USD, base_url=sandbox.url)
    adset = _adset(sandbox)
    old = adset.daily_budget
    graph.post(adset.id, {"daily_budget": old + 100})
    sandbox.edit_as_person(adset.id, status="PAUSED")

    history = graph.activities(USD, NOW - timedelta(minutes=1))

    assert [(a.event_type, a.object_id) for a in history] == [
        ("update_ad_set_run_status", adset.id),
        ("update_ad_set_budget", adset.id),
    ]
    person, api = history
    assert (api.application_id, api.new_value) == (SANDBOX_APP[0], old + 100)
    assert api.extra["old_value"] == old
    assert person.application_id == ADS_MANAGER_APP[0] and person.new_value == "PAUSED"
    assert graph.app_id() == SANDBOX_APP[0]
    assert len(sandbox.state.write_log) == 1  # the person's edit is not an API write
    assert graph.activities(USD, NOW + timedelta(minutes=1)) == []  # `since` filters


def test_lost_faults_apply_the_write_and_lose_the_answer(sandbox) -> None:  # type: ignore[no-untyped-def]
    adset = _adset(sandbox)
    url = f"{sandbox.url}/v26.0/{adset.id}"
    auth = {"Authorization": f"Bearer {sandbox.token}"}

    sandbox.set_faults(FaultConfig(fail_next=["lost_5xx"]))
    answer = requests.post(url, data={"status": "PAUSED"}, headers=auth, timeout=10)
    assert answer.status_code == 502 and answer.headers["Content-Type"].startswith("text/html")
    assert adset.status == "PAUSED"  # applied all the same

    sandbox.set_faults(FaultConfig(fail_next=["lost_success"]))
    answer = requests.post(url, data={"status": "ACTIVE"}, headers=auth, timeout=10)
    assert answer.json() == {"success": "true"} and adset.status == "ACTIVE"

    sandbox.set_faults(FaultConfig(fail_next=["none", "lost_item"]))
    batch = json.dumps([{"method": "POST", "relative_url": adset.id, "body": "status=PAUSED"}])
    answer = requests.post(f"{sandbox.url}/v26.0/", data={"batch": batch}, headers=auth, timeout=10)
    assert answer.json() == [None] and adset.status == "PAUSED"
    assert len(sandbox.state.write_log) == 3
