"""Users and their grants, managed by admins: add, list, grant, revoke, set a password,
disable, enable. Each change is checked against the acting user and written to the
audit log in the same transaction.

The first admin of an install is made by the operator (`python -m core users add EMAIL
--admin`, or `make run` on the sandbox): `bootstrap_actor` acts for them only while no
admin exists.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.access.actor import AccessDenied, Actor, load_actor
from core.access.audit import record
from core.access.roles import Permission, Role
from core.access.signin import end_sessions, hash_password, wall_now
from core.db import read_session, write_session
from core.db.models import AdAccount, User, UserGrant
from core.errors import InputError, NotFoundError

MIN_PASSWORD = 12
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class UserView:
    id: int
    email: str
    name: str
    admin: bool
    disabled: bool
    password: bool  # has a password (False: single sign-on only)
    grants: dict[str, list[str]]  # act_… → roles
    last_sign_in_at: datetime | None
    locked_until: datetime | None


@dataclass(frozen=True)
class Added:
    user: UserView
    password: str | None  # the generated password, shown once; None when one was given


def has_users(engine: Engine | None = None) -> bool:
    with read_session(engine) as session:
        return session.scalar(select(User.id).limit(1)) is not None


def bootstrap_actor(engine: Engine | None = None) -> Actor:
    """The operator making the first admin: allowed only while no admin exists."""
    with read_session(engine) as session:
        admins = session.scalar(select(func.count()).select_from(User).where(User.is_admin))
    if admins:
        raise AccessDenied(
            "an admin exists already: act as one (`--as ADMIN_EMAIL`) to manage users"
        )
    return Actor(user_id=None, email="operator", name="Operator", admin=True, via="cli")


def add_user(
    email: str,
    *,
    by: Actor,
    name: str | None = None,
    password: str | None = None,
    admin: bool = False,
    sso: bool = False,
    now: datetime | None = None,
    engine: Engine | None = None,
) -> Added:
    """A new user. Without `password` (and not `sso`, single sign-on only) one is
    generated and returned once."""
    by.require(Permission.MANAGE_USERS)
    address = normalise_email(email)
    generated = None
    if password is None and not sso:
        password = generated = secrets.token_urlsafe(15)
    if password is not None:
        check_password(password)
    now = now or wall_now()
    with write_session(engine) as session:
        if session.scalars(select(User).where(User.email == address)).first():
            raise InputError("email", f"{address} is a user already (`users list`)")
        user = User(email=address, name=(name or address.split("@")[0]).strip()[:200],
                    is_admin=admin, created_at=now,
                    password_hash=hash_password(password) if password else None,
                    password_changed_at=now if password else None)  # fmt: skip
        session.add(user)
        session.flush()
        record(session, by, "user.add", "user", user.id, at=now,
               new={"email": address, "name": user.name, "admin": admin,
                    "password": "set" if password else "single sign-on only"})  # fmt: skip
        view = _view(session, user)
    return Added(view, generated)


def set_password(
    email: str,
    password: str | None = None,
    *,
    by: Actor,
    now: datetime | None = None,
    engine: Engine | None = None,
) -> str | None:
    """Set (or, without `password`, generate and return) a user's password: an admin for
    anyone, a user for themself. Their open sessions end; a lock-out is lifted."""
    now = now or wall_now()
    if password is None:
        password = generated = secrets.token_urlsafe(15)
    else:
        generated = None
    check_password(password)
    with write_session(engine) as session:
        user = _user(session, email)
        if by.user_id != user.id:
            by.require(Permission.MANAGE_USERS)
        user.password_hash = hash_password(password)
        user.password_changed_at = now
        user.failed_attempts, user.locked_until = 0, None
        ended = end_sessions(session, user.id, "password changed", now)
        record(session, by, "user.password", "user", user.id, at=now,
               new={"password": "changed", "sessions_ended": ended})  # fmt: skip
    return generated


def set_disabled(
    email: str,
    disabled: bool,
    *,
    by: Actor,
    now: datetime | None = None,
    engine: Engine | None = None,
) -> UserView:
    """Disable a user (their sessions end; they cannot sign in) or enable them again.
    The last enabled admin cannot be disabled."""
    by.require(Permission.MANAGE_USERS)
    now = now or wall_now()
    with write_session(engine) as session:
        user = _user(session, email)
        before = user.disabled_at is not None
        if disabled and user.is_admin and not before:
            others = session.scalar(
                select(func.count()).select_from(User)
                .where(User.is_admin, User.disabled_at.is_(None), User.id != user.id)
            )  # fmt: skip
            if not others:
                raise InputError("email", f"{user.email} is the last admin: make another "
                                          "admin first (`users add EMAIL --admin`)")  # fmt: skip
        user.disabled_at = now if disabled else None
        if disabled:
            end_sessions(session, user.id, "user disabled", now)
        record(session, by, "user.disable" if disabled else "user.enable", "user", user.id,
               old={"disabled": before}, new={"disabled": disabled}, at=now)  # fmt: skip
        return _view(session, user)


def grant(
    email: str,
    account: str,
    roles: list[Role],
    *,
    by: Actor,
    now: datetime | None = None,
    engine: Engine | None = None,
) -> UserView:
    """Give a user roles on an ad account (act_… or Rex's id); held roles stay."""
    return _change_roles(email, account, lambda held: held | set(roles), "user.grant", by,
                         now, engine)  # fmt: skip


def revoke(
    email: str,
    account: str,
    roles: list[Role] | None = None,
    *,
    by: Actor,
    now: datetime | None = None,
    engine: Engine | None = None,
) -> UserView:
    """Take roles (all, without `roles`) on an ad account from a user."""
    return _change_roles(email, account,
                         lambda held: set() if roles is None else held - set(roles),
                         "user.revoke", by, now, engine)  # fmt: skip


def _change_roles(
    email: str,
    account: str,
    change: Callable[[set[Role]], set[Role]],
    action: str,
    by: Actor,
    now: datetime | None,
    engine: Engine | None,
) -> UserView:
    """Set a user's roles on an account to `change(held)`, on the audit log."""
    by.require(Permission.MANAGE_USERS)
    now = now or wall_now()
    with write_session(engine) as session:
        user = _user(session, email)
        target = _account(session, account)
        held = _roles(session, user.id, target.id)
        wanted = change(held)
        for role in sorted(wanted - held):
            session.add(UserGrant(user_id=user.id, account_id=target.id, role=role.value,
                                  granted_at=now, granted_by_id=by.user_id))  # fmt: skip
        for row in session.scalars(
            select(UserGrant).where(UserGrant.user_id == user.id,
                                    UserGrant.account_id == target.id,
                                    UserGrant.role.in_([r.value for r in held - wanted]))
        ):  # fmt: skip
            session.delete(row)
        record(session, by, action, "user", user.id, account_id=target.id, at=now,
               old={"roles": sorted(held)}, new={"roles": sorted(wanted)})  # fmt: skip
        session.flush()
        return _view(session, user)


def list_users(*, by: Actor, engine: Engine | None = None) -> list[UserView]:
    by.require(Permission.MANAGE_USERS)
    with read_session(engine) as session:
        return [_view(session, u) for u in session.scalars(select(User).order_by(User.email))]


def actor_for(email: str, *, via: str = "cli", engine: Engine | None = None) -> Actor:
    """The actor a CLI command runs as (`--as EMAIL`): an enabled user, with their grants
    checked like the app's."""
    with read_session(engine) as session:
        user = _user(session, email)
        if user.disabled_at is not None:
            raise AccessDenied(f"{user.email} is disabled: an admin can enable it")
        return load_actor(session, user.id, via=via)


# ---------------------------------------------------------------------- checks


def normalise_email(email: str) -> str:
    address = (email or "").strip().lower()
    if not EMAIL.match(address) or len(address) > 320:
        raise InputError("email", f"{email!r} is not an e-mail address; write e.g. ana@example.com")
    return address


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InputError("password", f"at least {MIN_PASSWORD} characters, please (a phrase "
                                     "of a few words is easiest to remember)")  # fmt: skip
    if len(set(password)) < 4:
        raise InputError("password", "use more than a few different characters")


# ---------------------------------------------------------------------- helpers


def _user(session: Session, email: str) -> User:
    address = (email or "").strip().lower()
    user = session.scalars(select(User).where(User.email == address)).one_or_none()
    if user is None:
        raise NotFoundError(f"no user {address!r} (`python -m core users list`)")
    return user


def _account(session: Session, account: str) -> AdAccount:
    number = int(account) if account.isdigit() else None
    found = session.scalars(
        select(AdAccount).where(AdAccount.connected,
                                (AdAccount.external_id == account) | (AdAccount.id == number))
    ).first()  # fmt: skip
    if found is None:
        raise NotFoundError(f"no connected ad account {account!r} (`python -m core accounts list`)")
    return found


def _roles(session: Session, user_id: int, account_id: int) -> set[Role]:
    return {
        Role(r) for r in session.scalars(
            select(UserGrant.role).where(UserGrant.user_id == user_id,
                                         UserGrant.account_id == account_id)
        )
    }  # fmt: skip


def _view(session: Session, user: User) -> UserView:
    grants: dict[str, list[str]] = {}
    for external_id, role in session.execute(
        select(AdAccount.external_id, UserGrant.role)
        .join(AdAccount, AdAccount.id == UserGrant.account_id)
        .where(UserGrant.user_id == user.id)
        .order_by(AdAccount.external_id, UserGrant.role)
    ):
        grants.setdefault(external_id, []).append(role)
    return UserView(user.id, user.email, user.name, user.is_admin, user.disabled_at is not None,
                    user.password_hash is not None, grants, user.last_sign_in_at,
                    user.locked_until)  # fmt: skip
