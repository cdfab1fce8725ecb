"""Pages as a signed-in person: AppTests that carry a Rex session's token (the app asks
everyone to sign in; pages/_signin.py)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.access.actor import SYSTEM, Actor
from core.access.roles import Role
from core.access.signin import sign_in
from core.access.users import add_user, grant
from core.db import read_session
from core.db.models import User

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
ADMIN = "admin@rex.local"


def person(email: str = ADMIN, *, admin: bool | None = None,
           roles: dict[str, list[Role]] | None = None) -> str:  # fmt: skip
    """A user (made when missing, with `PASSWORD`; `ADMIN` is an admin) with these roles
    per account (act_…), signed in: the session's token."""
    with read_session() as session:
        known = session.query(User.id).filter(User.email == email).first() is not None
    if not known:
        add_user(email, password=PASSWORD, admin=email == ADMIN if admin is None else admin,
                 by=SYSTEM)  # fmt: skip
    for account, held in (roles or {}).items():
        grant(email, account, held, by=SYSTEM)
    return sign_in(email, PASSWORD).token


def signed_page(path: str, *, email: str = ADMIN, timeout: float = 60) -> AppTest:
    """An AppTest of `path` (app.py or a page, from the project root), signed in."""
    app = AppTest.from_file(str(ROOT / path), default_timeout=timeout)
    app.session_state["rex_token"] = person(email)
    return app


def _in_memory(name: str) -> Actor:
    """A decider for tests about something else than access: an admin known only by
    name (no user row; the record names them by e-mail)."""
    return Actor(user_id=None, email=f"{name}@example.com", name=name.capitalize(), admin=True)


ANA, BO, CY, BEN = (_in_memory(n) for n in ("ana", "bo", "cy", "ben"))
