"""Bad input and broken databases give one line naming the problem and the fix — never a
traceback. `python -m core` as an operator runs it: real processes, real databases.

Exit codes (core/cli/): 2 when the command line itself is wrong, 1 when Rex, the
settings, the database or Meta refused.
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from core.db import read_session
from core.db.models import AutomationRule
from tests.signed import ADMIN, person
from tests.test_cli import rex
from tests.test_engine import SCALE_WINNERS

MAX_ID = 2**63 - 1
RULE = {**SCALE_WINNERS, "scope": {"level": "campaign"}}  # every account: none needed


def refused(result: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """The one `error:` line of a refused command, checked for its exit code and words."""
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert result.returncode == code, (result.returncode, result.stderr)
    for word in words:
        assert word in errors[0], (word, errors[0])
    return errors[0]


# ------------------------------------------------------------- the command line


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("rules", "export", str(2**63)), ("rule_id", str(2**63), f"1 to {MAX_ID}")),
        (("rules", "enable", "99999999999999999999"), ("rule_id", "rule ids")),
        (("rules", "preview", "-3"), ("rule_id", "'-3'")),
        (("rules", "import", "-", "--replace", str(2**64)), ("--replace", "rule ids")),
        (("approvals", "approve", "99999999999999999999"), ("ID", "proposal ids")),
        (("approvals", "reject", "1", str(2**63)), ("ID", "proposal ids")),
        (("actions", "rollback", "99999999999999999999"), ("action_id", "action ids")),
        (("run", "--rule", str(2**63)), ("--rule", "rule ids")),
        (("run", "--rule", "0"), ("--rule", "rule ids")),
        (("sync", "--days", "0"), ("--days", "1 to 90")),
        (("accounts", "add", "--account", "act_1", "--token", ""), ("--token", "empty")),
        (("accounts", "add", "--account", "act_1", "--token-stdin"), ("stdin gave no token",)),
        (("sandbox", "serve", "--token", ""), ("--token", "empty")),
        (("sandbox", "serve", "--fault", "nosuch=0.1"), ("nosuch", "5xx", "transient")),
        (("sandbox", "serve", "--fault", "5xx=7"), ("--fault", "from 0 to 1")),
        (("sandbox", "serve", "--port", "-1"), ("--port", "1 to 65535")),
        (("sandbox", "serve", "--port", "70000"), ("--port", "'70000'")),
        (("sandbox", "serve", "--latency-ms", "-5"), ("--latency-ms",)),
        (("rules", "import", "no-such-rule.json"), ("no-such-rule.json", "does not exist")),
        (("db", "downgrade", "nonsense"), ("'nonsense'", "base", "-1", "0001")),
        (("db", "upgrade", "nonsense"), ("'nonsense'", "head")),
    ],
)
def test_a_wrong_command_line_exits_2_with_the_fix(
    args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    """Refused before the database is opened (the session's default database is not even
    migrated: a check made after opening it would say so instead)."""
    refused(rex(*args, stdin=""), 2, *words)


def test_running_a_rule_that_does_not_exist_says_so(db: Engine) -> None:
    person(ADMIN)
    ran = rex("run", "--rule", "999999", "--as", ADMIN)
    line = refused(ran, 1, "no rule with id 999999", "rules list")
    assert "elsewhere" not in line  # not "running elsewhere": there is no such rule


def test_a_settings_error_names_the_variable(db: Engine) -> None:
    env = dict(os.environ, REX_UI_PORT="many")
    refused(rex("rules", "list", env=env, timeout=60), 1, "REX_UI_PORT", "'many'", ".env")


# ------------------------------------------------------------------ rule files


def rule_count() -> int:
    with read_session() as session:
        return session.scalar(select(func.count(AutomationRule.id))) or 0


def test_a_rule_file_that_is_not_utf8_is_refused(db: Engine, tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(json.dumps({**RULE, "name": "Réussite"}, ensure_ascii=False).encode("latin-1"))
    refused(rex("rules", "import", str(path)), 1, "latin1.json", "not UTF-8", "0xe9")
    piped = rex("rules", "import", "-", stdin=path.read_bytes(), timeout=60)
    piped_text = subprocess.CompletedProcess(
        piped.args, piped.returncode, piped.stdout.decode(), piped.stderr.decode()
    )
    refused(piped_text, 1, "stdin", "not UTF-8")
    assert rule_count() == 0

    bom = tmp_path / "bom.json"  # a UTF-8 byte-order mark is still UTF-8
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(RULE).encode())
    person(ADMIN)
    assert rex("rules", "import", str(bom), "--as", ADMIN).returncode == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "Scale\u0000winners"}, "name:"),
        (
            {"actions": [{"type": "notify", "message": "hi\u0000"}]},
            "actions[0].message:",
        ),
        (
            {
                "scope": {
                    "level": "campaign",
                    "filters": [{"field": "name", "op": "in", "value": ["A", "B\u0000"]}],
                }
            },
            "scope.filters[0].value[1]:",
        ),
    ],
)
def test_a_nul_character_is_refused_with_its_place_on_both_databases(
    db: Engine, change: dict, field: str
) -> None:
    document = json.dumps({**RULE, **change})  # NUL written as the \\u0000 escape
    assert "\\u0000" in document
    refused(rex("rules", "import", "-", stdin=document), 1, field, "NUL")
    assert rule_count() == 0


@pytest.mark.parametrize(
    ("action", "field", "words"),
    [
        ({"type": "change_budget", "by_percent": 10**14}, "actions[0].by_percent", "+1000"),
        ({"type": "change_budget", "by_percent": 400}, "actions[0].by_percent", "max"),
        (
            {"type": "change_budget", "by_percent": 5000, "max": 500},
            "actions[0].by_percent",
            "+1000",
        ),
    ],
)
def test_a_budget_change_that_multiplies_a_budget_is_refused(
    db: Engine, action: dict, field: str, words: str
) -> None:
    document = json.dumps({**RULE, "actions": [action]})
    refused(rex("rules", "import", "-", stdin=document), 1, field, words)
    assert rule_count() == 0


# ------------------------------------------------------------------- databases

# Every command that opens the database, with arguments that get it that far.
DATABASE_COMMANDS = [
    ("db", "upgrade"),
    ("db", "downgrade", "-1"),
    ("db", "current"),
    ("accounts", "add", "--account", "act_1", "--token", "x" * 20),
    ("accounts", "list"),
    ("accounts", "remove", "act_1", "--yes"),
    ("sync",),
    ("rules", "import", "-"),
    ("rules", "export"),
    ("rules", "list"),
    ("rules", "enable", "1"),
    ("rules", "disable", "1"),
    ("rules", "delete", "1"),
    ("rules", "preview"),
    ("rules", "preview", "1"),
    ("run",),
    ("run", "--rule", "1"),
    ("approvals", "list"),
    ("approvals", "approve", "1"),
    ("approvals", "reject", "1"),
    ("actions", "rollback", "1"),
    ("up", "--no-sandbox", "--no-ui", "--no-sync", "--no-scheduler"),
]


def with_database(url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return rex(*args, stdin=stdin, env={**_without_database(), "DATABASE_URL": url})


def _without_database() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REX_DATABASE_URL")}


@pytest.mark.parametrize("args", DATABASE_COMMANDS, ids=" ".join)
def test_every_command_says_postgresql_cannot_be_reached(args: tuple[str, ...]) -> None:
    result = with_database("postgresql://postgres@127.0.0.1:5999/test", *args)
    refused(result, 1, "DATABASE_URL", "PostgreSQL at 127.0.0.1:5999", "connection refused")


@pytest.mark.parametrize("args", DATABASE_COMMANDS, ids=" ".join)
def test_every_command_says_the_sqlite_file_is_corrupt(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    corrupt = tmp_path / "rex.db"
    corrupt.write_bytes(b"these bytes are no database " * 200)
    result = with_database(f"sqlite:///{corrupt}", *args)
    refused(result, 1, "DATABASE_URL", str(corrupt), "not a usable SQLite database", "backup")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("garbage", ("'garbage' is not a database URL", "postgresql+psycopg://")),
        ("mysql://rex@localhost/rex", ("mysql databases are not supported", "sqlite:///")),
        ("postgresql+psycopg2://u@localhost/rex", ("driver 'psycopg2'", "postgresql+psycopg")),
        ("postgres://u:hunter2@localhost:99999/rex", ("99999 is not a port",)),
        ("postgres://postgres@rex-no-such-host.invalid/rex", ("unknown host",)),
        ("sqlite://", ("needs a file",)),
    ],
)
def test_a_database_url_rex_cannot_use_is_named(url: str, words: tuple[str, ...]) -> None:
    for args in (("rules", "list"), ("db", "upgrade")):
        line = refused(with_database(url, *args), 1, "DATABASE_URL", *words)
        assert "hunter2" not in line


def test_a_missing_postgresql_database_is_named(pg_admin: Engine) -> None:
    url = f"{pg_admin.url.set(database='rex_no_such_database').render_as_string(False)}"
    result = with_database(url, "sync")
    refused(result, 1, "has no database 'rex_no_such_database'", "createdb")


def test_an_sqlite_path_that_is_a_folder_is_named(tmp_path: Path) -> None:
    result = with_database(f"sqlite:///{tmp_path}", "rules", "list")
    refused(result, 1, "cannot open the SQLite database", "not a folder")


def migrated_copy(sqlite_db: Engine, folder: Path) -> Path:
    """A migrated SQLite file of its own: the test database copied with SQLite's backup
    API (a live WAL database is not copied by copying its file)."""
    copy = folder / "rex.db"
    source, target = sqlite3.connect(sqlite_db.url.database), sqlite3.connect(copy)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return copy


def test_a_read_only_sqlite_file_is_named(sqlite_db: Engine, tmp_path: Path) -> None:
    person(ADMIN)  # an admin to act as, in the copy
    database = migrated_copy(sqlite_db, tmp_path)
    database.chmod(0o444)
    url = f"sqlite:///{database}"
    if os.geteuid() == 0:  # root writes whatever the mode: have SQLite open it read-only
        url = f"sqlite:///file:{database}?mode=ro&uri=true"
    assert with_database(url, "rules", "list").returncode == 0  # reading is fine
    result = with_database(url, "rules", "import", "-", "--as", ADMIN, stdin=json.dumps(RULE))
    refused(result, 1, "DATABASE_URL", str(database), "read-only", "write access")


def limited_file_size(size: int):  # type: ignore[no-untyped-def]
    """Files of the child may not grow past `size` bytes: its writes fail as on a full
    disk (SQLite answers "database or disk is full" or "disk I/O error"). Python ignores
    SIGXFSZ, so the write fails instead of killing the process."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def test_a_full_disk_is_named(tmp_path: Path) -> None:
    database = tmp_path / "rex.db"
    env = {**_without_database(), "DATABASE_URL": f"sqlite:///{database}"}
    # a first install on a disk with 64 KB left
    run = rex("db", "upgrade", env=env, preexec_fn=limited_file_size(64 * 1024))
    refused(run, 1, "DATABASE_URL", str(database), "could not be written", "free space")

    assert with_database(f"sqlite:///{database}", "db", "upgrade").returncode == 0
    made = with_database(f"sqlite:///{database}", "users", "add", ADMIN, "--admin")
    assert made.returncode == 0, made.stderr  # the first admin, who then acts
    # a write on a disk with no room for it
    rule = rex("rules", "import", "-", "--as", ADMIN, stdin=json.dumps(RULE), env=env,
               preexec_fn=limited_file_size(4096))  # fmt: skip
    refused(rule, 1, "could not be written", "free space")
    listed = with_database(f"sqlite:///{database}", "rules", "list")
    assert listed.returncode == 0 and "no rules yet" in listed.stdout
