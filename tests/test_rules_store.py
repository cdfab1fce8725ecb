"""Saved rules: versions kept, status changes, scope checked against connected accounts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from core.access.actor import SYSTEM
from core.access.roles import Role
from core.db import write_session
from core.db.models import AdAccount
from core.errors import InputError, NotFoundError
from core.rules.store import delete_rule, get_rule, list_rules, rule_versions, save_rule, set_status
from tests.signed import ADMIN, person

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

RULE = {
    "name": "Stop losers",
    "scope": {"level": "adset", "account_ids": ["act_42"]},
    "conditions": {"metric": "roas", "window": "last_7d", "op": "<", "value": 1},
    "actions": [{"type": "pause"}],
}


@pytest.fixture
def account(db: Engine) -> str:
    with write_session() as session:
        session.add(
            AdAccount(
                external_id="act_42",
                name="Shop",
                currency="USD",
                timezone_name="America/Los_Angeles",
                account_status=1,
                token_encrypted="x",
            )
        )
    return "act_42"


def test_a_new_rule_is_version_1_and_due_now(account: str) -> None:
    view = save_rule(RULE, now=NOW, by=SYSTEM)
    assert (view.version, view.status, view.level) == (1, "active", "adset")
    assert view.check_frequency_minutes == 60
    assert view.next_execution_at == NOW
    assert view.document["actions"] == [{"type": "pause"}]


def test_every_change_is_a_new_version_and_the_old_document_is_kept(account: str) -> None:
    first = save_rule(RULE, now=NOW, by=SYSTEM)
    changed = dict(RULE, conditions={**RULE["conditions"], "value": 0.8})
    second = save_rule(changed, rule_id=first.id, now=NOW, by=SYSTEM)
    same = save_rule(changed, rule_id=first.id, now=NOW, by=SYSTEM)

    assert second.version == 2 and same.version == 2  # saving an identical document: no bump
    versions = rule_versions(first.id, actor=SYSTEM)
    assert [v for v, _ in versions] == [1, 2]
    assert versions[0][1]["conditions"]["value"] == 1
    assert versions[1][1]["conditions"]["value"] == 0.8


def test_disable_and_enable(account: str) -> None:
    rule = save_rule(RULE, now=NOW, by=SYSTEM)
    paused = set_status(rule.id, "paused", now=NOW, by=SYSTEM)
    assert (paused.status, paused.version, paused.next_execution_at) == ("paused", 2, None)
    active = set_status(rule.id, "active", now=NOW, by=SYSTEM)
    assert (active.status, active.next_execution_at) == ("active", NOW)
    with pytest.raises(InputError, match="active, paused or draft"):
        set_status(rule.id, "on", by=SYSTEM)


def test_scope_must_name_connected_accounts(account: str) -> None:
    unknown = dict(RULE, scope={"level": "adset", "account_ids": ["act_42", "act_77"]})
    with pytest.raises(InputError) as caught:
        save_rule(unknown, by=SYSTEM)
    assert caught.value.field == "scope.account_ids[1]"
    assert "act_77 is not connected" in caught.value.problem
    assert list_rules(actor=SYSTEM) == []


def test_delete_and_unknown_ids(account: str) -> None:
    rule = save_rule(RULE, by=SYSTEM)
    deleted = delete_rule(rule.id, now=NOW, by=SYSTEM)
    assert (deleted.status, deleted.deleted_at, deleted.next_execution_at) == ("deleted", NOW, None)
    with pytest.raises(NotFoundError, match=f"rule {rule.id} “Stop losers” was deleted"):
        get_rule(rule.id, actor=SYSTEM)
    with pytest.raises(NotFoundError, match="was deleted"):
        set_status(rule.id, "active", by=SYSTEM)
    with pytest.raises(NotFoundError, match=r"no rule with id 999 \(0 rules you can see"):
        get_rule(999, actor=SYSTEM)
    assert (
        list_rules(actor=SYSTEM) == [] and len(list_rules(include_deleted=True, actor=SYSTEM)) == 1
    )


def test_cli_import_list_export_disable(account: str, tmp_path: Path) -> None:
    person(ADMIN)
    person("vi@example.com", roles={account: [Role.VIEWER]})

    def rex(*args: str, stdin: str | None = None, who: str = ADMIN) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "core", "rules", *args],
            cwd=ROOT,
            input=stdin,
            capture_output=True,
            text=True,
            env={**os.environ, "REX_AS": who},
        )

    imported = rex("import", "-", stdin=json.dumps(RULE))
    assert imported.returncode == 0, imported.stderr
    rule_id = int(imported.stdout.strip())

    assert "Stop losers" in rex("list").stdout
    exported = json.loads(rex("export", str(rule_id)).stdout)
    assert exported["conditions"] == {**RULE["conditions"], "value": 1}

    refused = rex("disable", str(rule_id), who="vi@example.com")  # a viewer reads only
    assert refused.returncode == 1 and "vi@example.com may not edit rules" in refused.stderr
    assert "Stop losers" in rex("list", who="vi@example.com").stdout
    disabled = rex("disable", str(rule_id))
    assert "paused" in disabled.stdout

    bad = rex("import", "-", stdin=json.dumps(dict(RULE, actions=[{"type": "explode"}])))
    assert bad.returncode == 1
    assert "actions[0]: unknown action type" in bad.stderr
