"""Signing in to the app, and what each person's roles open, under AppTest on both
databases: the form, wrong and right passwords, pages refused to whoever lacks the
permission, a user without grants told so, and an admin setting up a team on the Users
page — each change on the audit log, downloadable as CSV."""

from __future__ import annotations

import time

from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from core.access.roles import Role
from tests.signed import PASSWORD, ROOT, person, signed_page


def test_the_app_asks_to_sign_in_and_refuses_a_wrong_password(db: Engine) -> None:
    person("bo@example.com")  # a user, with PASSWORD
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    app.run()
    assert not app.exception
    assert [t.value for t in app.title] == ["Sign in to Rex"]
    app.text_input(key="sign_in_email").input("bo@example.com")
    app.text_input(key="sign_in_password").input("not the password")
    app.button(key="sign_in_submit").click().run()
    assert [e.value for e in app.error] == ["wrong e-mail or password"]
    assert "rex_token" not in app.session_state

    def attempt() -> None:
        app.text_input(key="sign_in_email").input("bo@example.com")
        app.text_input(key="sign_in_password").input(PASSWORD)
        app.button(key="sign_in_submit").click().run()

    attempt()  # at once: a wrong password makes the next one wait a second
    assert [e.value for e in app.error] == ["wait 1 second(s) before trying again"]
    time.sleep(1.1)
    attempt()
    assert not app.exception, [e.value for e in app.exception]
    assert "rex_token" in app.session_state
    assert [t.value for t in app.title] == ["No access yet"]  # bo holds no grant yet
    assert "bo@example.com" in app.info[0].value and "users grant" in app.info[0].value


def test_admin_pages_refuse_who_is_not_an_admin(worked) -> None:  # type: ignore[no-untyped-def]
    person("vi@example.com", roles={"act_2001": [Role.VIEWER]})
    for page, words in (("pages/users.py", "may not manage users"),
                        ("pages/audit.py", "may not read the audit log"),
                        ("pages/accounts.py", "may not manage accounts")):  # fmt: skip
        app = signed_page(page, email="vi@example.com")
        app.run()
        assert not app.exception, page
        assert [e.value for e in app.error] == [f"vi@example.com {words}"], page
        assert not app.title, page  # nothing of the page drawn
    overview = signed_page("pages/overview.py", email="vi@example.com")
    overview.run()
    assert not overview.exception and overview.title[0].value != "Sign in to Rex"


def test_an_admin_sets_up_a_team_on_the_users_page_on_the_record(worked) -> None:  # type: ignore[no-untyped-def]
    app = signed_page("pages/users.py")  # the admin
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    app.text_input(key="user_email").input("Mia@Example.com")
    app.text_input(key="user_name").input("Mia")
    app.button(key="user_add").click().run()
    assert [s.value for s in app.success] == ["mia@example.com added"]
    (shown,) = [i.value for i in app.info if "shown once" in i.value]
    password = shown.rsplit("`", 2)[1]
    assert len(password) >= 12

    app.selectbox(key="grant_user").select("mia@example.com")
    app.selectbox(key="grant_account").select("act_2001")
    app.multiselect(key="grant_roles").select("marketer").select("approver")
    app.button(key="grant").click().run()
    assert [s.value for s in app.success] == ["mia@example.com on act_2001: approver, marketer"]
    users = app.dataframe[0].value
    mia = users[users["E-mail"] == "mia@example.com"].iloc[0]
    assert mia["Roles"] == "act_2001: approver, marketer" and mia["State"] == "active"

    from core.access.signin import sign_in

    signed = sign_in("mia@example.com", password)  # the generated password works
    assert {r.value for r in next(iter(signed.actor.grants.values()))} == {"marketer", "approver"}

    audit = signed_page("pages/audit.py")
    audit.run()
    assert not audit.exception, [e.value for e in audit.exception]
    entries = audit.dataframe[0].value
    decided = entries[~entries["Action"].str.startswith("session.")]
    assert list(decided["Action"])[:2] == ["user.grant", "user.add"]  # newest first
    assert set(decided["Who"][:2]) == {"admin@rex.local"}
    grant_row = decided.iloc[0]
    assert grant_row["Account"] == "act_2001" and '"approver", "marketer"' in grant_row["After"]
    signed_in = entries[entries["Action"] == "session.sign_in"]
    assert "mia@example.com" in set(signed_in["Who"])
    (download,) = audit.get("download_button")
    assert not download.proto.disabled
