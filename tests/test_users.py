"""Users, roles and sign-in (core/access), on both databases: passwords hashed and
checked, wrong ones slowed then locked out, sessions that end when they must, roles
that refuse what they must, every change to users on the audit log, and the CLI."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from core.access.actor import SYSTEM, AccessDenied, Actor
from core.access.audit import as_csv, audit_log
from core.access.roles import Permission, Role
from core.access.signin import SignInError, SignInThrottled, resolve, sign_in, sign_out
from core.access.users import (
    actor_for,
    add_user,
    bootstrap_actor,
    grant,
    list_users,
    revoke,
    set_disabled,
    set_password,
)
from core.db import read_session, write_session
from core.db.models import AdAccount, User
from core.errors import InputError
from tests.conftest import NOW
from tests.test_cli import rex

PASSWORD = "correct horse battery"


def admin() -> Actor:
    add_user("ana@example.com", name="Ana", password=PASSWORD, admin=True, by=bootstrap_actor(),
             now=NOW)  # fmt: skip
    return actor_for("ana@example.com")


def test_a_password_is_stored_as_an_argon2_hash_and_checked(db: Engine) -> None:
    by = admin()
    added = add_user("Bo@Example.com ", name="Bo", by=by, now=NOW)
    assert added.user.email == "bo@example.com" and added.password  # generated, shown once
    with read_session() as session:
        stored = session.scalars(select(User).where(User.email == "bo@example.com")).one()
    assert stored.password_hash and stored.password_hash.startswith("$argon2id$")
    assert added.password not in stored.password_hash

    signed = sign_in("BO@example.com", added.password, now=NOW)
    assert signed.actor.email == "bo@example.com" and signed.expires_at == NOW + timedelta(hours=12)
    assert resolve(signed.token, now=NOW + timedelta(minutes=5)) == signed.actor
    with pytest.raises(SignInError, match="wrong e-mail or password"):
        sign_in("bo@example.com", "not the password at all", now=NOW + timedelta(minutes=1))
    with pytest.raises(SignInError, match="wrong e-mail or password"):  # the same answer
        sign_in("nobody@example.com", added.password, now=NOW)


def test_wrong_passwords_slow_down_then_lock_out(db: Engine) -> None:
    admin()
    at = NOW
    for waited in (1, 2, 4, 8):  # each wrong password makes the next wait twice as long
        with pytest.raises(SignInError, match="wrong e-mail or password"):
            sign_in("ana@example.com", "wrong wrong wrong", now=at)
        with pytest.raises(SignInThrottled, match=f"wait {waited} second"):
            sign_in("ana@example.com", PASSWORD, now=at + timedelta(seconds=0.1))
        at += timedelta(seconds=waited)
    with pytest.raises(SignInError, match="wrong e-mail or password"):  # the fifth
        sign_in("ana@example.com", "wrong wrong wrong", now=at)
    with pytest.raises(SignInThrottled, match="locked for 15 more minute"):
        sign_in("ana@example.com", PASSWORD, now=at + timedelta(seconds=30))  # even the right one
    with pytest.raises(SignInThrottled, match="locked for 1 more minute"):
        sign_in("ana@example.com", PASSWORD, now=at + timedelta(minutes=14, seconds=30))
    signed = sign_in("ana@example.com", PASSWORD, now=at + timedelta(minutes=15))
    assert signed.actor.admin
    with read_session() as session:
        user = session.scalars(select(User)).one()
    assert (user.failed_attempts, user.locked_until) == (0, None)  # a success starts over
    failures = audit_log(signed.actor, action="session.sign_in_failed")
    assert len(failures) == 5 and failures[0].new == {
        "failed_attempts": 5, "locked_until": (at + timedelta(minutes=15)).isoformat(),
    }  # fmt: skip


def test_sessions_end_on_sign_out_expiry_a_new_password_and_disabling(db: Engine) -> None:
    by = admin()
    bo = add_user("bo@example.com", password=PASSWORD, by=by, now=NOW)
    first = sign_in("bo@example.com", PASSWORD, now=NOW)
    assert resolve(first.token, now=NOW + timedelta(hours=11, minutes=59)) is not None
    assert resolve(first.token, now=NOW + timedelta(hours=12)) is None  # expired
    second = sign_in("bo@example.com", PASSWORD, now=NOW)
    sign_out(second.token, now=NOW + timedelta(minutes=1))
    assert resolve(second.token, now=NOW + timedelta(minutes=2)) is None
    assert resolve("a token nobody was given", now=NOW) is None

    third = sign_in("bo@example.com", PASSWORD, now=NOW)
    new_password = set_password("bo@example.com", by=by, now=NOW + timedelta(minutes=3))
    assert new_password and resolve(third.token, now=NOW + timedelta(minutes=4)) is None
    with pytest.raises(SignInError):
        sign_in("bo@example.com", PASSWORD, now=NOW + timedelta(minutes=5))
    fourth = sign_in("bo@example.com", new_password, now=NOW + timedelta(minutes=6))

    set_disabled(bo.user.email, True, by=by, now=NOW + timedelta(minutes=6))
    assert resolve(fourth.token, now=NOW + timedelta(minutes=7)) is None
    with pytest.raises(SignInError, match="bo@example.com is disabled: ask an admin"):
        sign_in("bo@example.com", new_password, now=NOW + timedelta(minutes=8))
    with pytest.raises(AccessDenied, match="disabled"):
        actor_for("bo@example.com")  # the CLI's --as refuses them too
    set_disabled(bo.user.email, False, by=by, now=NOW + timedelta(minutes=9))
    assert sign_in("bo@example.com", new_password, now=NOW + timedelta(minutes=10)).actor


def test_roles_give_what_they_name_on_their_accounts_only(worked) -> None:  # type: ignore[no-untyped-def]
    by = admin()
    with write_session() as session:  # another team's account
        account = AdAccount(external_id="act_77", name="Another shop", currency="EUR",
                            timezone_name="Europe/Berlin", account_status=1,
                            token_encrypted="x")  # fmt: skip
        session.add(account)
        session.flush()
        other = account.id
    for email, role in (("vi@example.com", Role.VIEWER), ("ma@example.com", Role.MARKETER),
                        ("ap@example.com", Role.APPROVER)):  # fmt: skip
        add_user(email, password=PASSWORD, by=by, now=NOW)
        grant(email, "act_2001", [role], by=by, now=NOW)
    people = ("vi@example.com", "ma@example.com", "ap@example.com")
    viewer, marketer, approver = (actor_for(e) for e in people)
    (account_id,) = viewer.grants
    assert other != account_id
    assert viewer.can(Permission.READ, account_id) and not viewer.can(Permission.READ, other)
    assert not viewer.can(Permission.DECIDE_APPROVALS, account_id)
    assert not viewer.can(Permission.EDIT_RULES, account_id)
    assert marketer.can(Permission.EDIT_RULES, account_id)
    assert not marketer.can(Permission.DECIDE_APPROVALS, account_id)
    assert approver.can(Permission.DECIDE_APPROVALS, account_id)
    assert not approver.can(Permission.DECIDE_APPROVALS, other)
    assert viewer.account_ids() == frozenset({account_id}) and by.account_ids() is None
    with pytest.raises(AccessDenied, match="ap@example.com may not decide approvals on"):
        approver.require(Permission.DECIDE_APPROVALS, other)
    for person in (viewer, marketer, approver):
        assert not person.can(Permission.MANAGE_USERS)
        with pytest.raises(AccessDenied, match="may not manage users"):
            add_user("new@example.com", by=person, now=NOW)
        with pytest.raises(AccessDenied):
            grant(person.email, "act_2001", [Role.APPROVER], by=person, now=NOW)
    assert SYSTEM.can(Permission.DECIDE_APPROVALS, other)  # Rex's own scheduler

    revoke("ma@example.com", "act_2001", by=by, now=NOW)
    assert actor_for("ma@example.com").grants == {}


def test_admins_manage_users_on_the_record_and_the_last_admin_stays(db: Engine) -> None:
    by = admin()
    with pytest.raises(AccessDenied, match="an admin exists already"):
        bootstrap_actor()
    with pytest.raises(InputError, match="email: 'not-an-address' is not an e-mail"):
        add_user("not-an-address", by=by)
    with pytest.raises(InputError, match="password: at least 12 characters"):
        add_user("bo@example.com", password="short", by=by)
    with pytest.raises(InputError, match="is a user already"):
        add_user("ANA@example.com", password=PASSWORD, by=by)
    with pytest.raises(InputError, match="ana@example.com is the last admin"):
        set_disabled("ana@example.com", True, by=by)
    sso = add_user("sso@example.com", sso=True, by=by, now=NOW)
    assert sso.password is None and not sso.user.password
    with pytest.raises(SignInError, match="wrong e-mail or password"):
        sign_in("sso@example.com", "", now=NOW)  # no password to sign in with

    listed = {v.email: v for v in list_users(by=by)}
    assert set(listed) == {"ana@example.com", "sso@example.com"} and listed["ana@example.com"].admin
    entries = audit_log(by, action="user.")
    assert [(e.actor, e.action, e.target) for e in reversed(entries)] == [
        ("operator", "user.add", f"user {listed['ana@example.com'].id}"),
        ("ana@example.com", "user.add", f"user {listed['sso@example.com'].id}"),
    ]
    assert entries[0].new == {"email": "sso@example.com", "name": "sso", "admin": False,
                              "password": "single sign-on only"}  # fmt: skip
    exported = list(csv.DictReader(io.StringIO(as_csv(entries))))
    assert [(r["Who"], r["Action"]) for r in exported] == [
        ("ana@example.com", "user.add"), ("operator", "user.add"),
    ]  # fmt: skip
    assert json.loads(exported[0]["After"])["email"] == "sso@example.com"
    with pytest.raises(AccessDenied, match="may not read the audit log"):
        audit_log(Actor(user_id=None, email="x@example.com", name="x"))


def test_the_cli_manages_users_as_an_admin(db: Engine) -> None:
    first = rex("users", "add", "ana@example.com", "--name", "Ana", "--admin")
    assert first.returncode == 0, first.stderr
    (generated,) = [line.rsplit(": ", 1)[1] for line in first.stdout.splitlines()
                    if line.startswith("password (shown once")]  # fmt: skip
    assert sign_in("ana@example.com", generated).actor.admin

    nobody = rex("users", "add", "bo@example.com")
    assert nobody.returncode == 1 and "say who acts: --as EMAIL" in nobody.stderr
    typed = rex("users", "add", "bo@example.com", "--password-stdin", "--as", "ana@example.com",
                stdin=PASSWORD + "\n")  # fmt: skip
    assert typed.returncode == 0 and PASSWORD not in typed.stdout and "password" not in typed.stdout
    assert sign_in("bo@example.com", PASSWORD).actor.email == "bo@example.com"
    assert rex("users", "add", "cy@example.com", "--as", "bo@example.com").returncode == 1

    bad = rex("users", "grant", "bo@example.com", "act_1", "boss", "--as", "ana@example.com")
    assert bad.returncode == 1 and "role: 'boss' is not a role: one of viewer" in bad.stderr
    listed = rex("users", "list", "--json", "--as", "ana@example.com")
    rows = {r["email"]: r for r in json.loads(listed.stdout)}
    bo = rows["bo@example.com"]
    assert bo == {
        "email": "bo@example.com", "name": "bo", "admin": False, "disabled": False,
        "password": True, "grants": {}, "last_sign_in_at": bo["last_sign_in_at"],
    }  # fmt: skip
    assert bo["last_sign_in_at"] is not None  # signed in above
    assert "argon2" not in listed.stdout
    assert rex("users", "disable", "bo@example.com", "--as", "ana@example.com").returncode == 0
    with pytest.raises(SignInError, match="disabled"):
        sign_in("bo@example.com", PASSWORD)


def test_a_user_reads_only_the_accounts_granted_to_them(worked) -> None:  # type: ignore[no-untyped-def]
    from core.accounts import readable_accounts
    from core.db.models import ActionHistory, PendingAction
    from core.views.activity import activity_feed, recent_actions
    from core.views.outcomes import list_outcomes

    by = admin()
    with write_session() as session:  # another team's account, with an action and a proposal
        other = AdAccount(
            external_id="act_77",
            name="Another shop",
            currency="EUR",
            timezone_name="Europe/Berlin",
            account_status=1,
            token_encrypted="x",
        )
        session.add(other)
        session.flush()
        mine = session.scalars(select(AdAccount).where(AdAccount.external_id == "act_2001")).one()
        for account in (mine, other):
            session.add(
                ActionHistory(
                    account_id=account.id,
                    entity_name=f"{account.name} ad set",
                    action_type="pause",
                    status="succeeded",
                    created_at=NOW,
                )
            )
            session.add(
                PendingAction(
                    account_id=account.id,
                    action_type="pause",
                    proposal={},
                    status="pending",
                    created_at=NOW,
                    expires_at=NOW + timedelta(days=1),
                )
            )
    add_user("vi@example.com", password=PASSWORD, by=by, now=NOW)
    grant("vi@example.com", "act_2001", [Role.VIEWER], by=by, now=NOW)
    viewer = actor_for("vi@example.com")

    from core.actions.approvals import list_approvals

    assert [a.external_id for a in readable_accounts(viewer)] == ["act_2001"]
    assert {a.external_id for a in readable_accounts(by)} == {"act_2001", "act_77"}
    assert {r.account_external_id for r in activity_feed(actor=viewer).rows} == {"act_2001"}
    assert {r.account_external_id for r in activity_feed(actor=by).rows} == {"act_2001", "act_77"}
    assert {r.account_external_id for r in recent_actions(actor=viewer, hours=10**6,
                                                          now=NOW)} == {"act_2001"}  # fmt: skip
    assert {p.account_external_id for p in list_approvals(actor=viewer)} == {"act_2001"}
    assert list_outcomes(actor=viewer, account="act_77") == []
    nobody = Actor(user_id=None, email="new@example.com", name="New")  # no grant at all
    assert readable_accounts(nobody) == [] and activity_feed(actor=nobody).rows == []
