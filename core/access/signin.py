"""Signing in: passwords (argon2id), throttling and lock-out, sessions.

* **Passwords** are hashed with argon2id (`argon2-cffi`'s defaults, the RFC 9106 low-
  memory profile); a hash made with older parameters is re-made at the next sign-in.
  Neither passwords nor hashes are logged, shown or put in the audit log.
* **Wrong passwords slow down, then lock out**: after the k-th wrong password in a row
  the next attempt waits 2^(k-1) seconds; after `REX_SIGNIN_MAX_ATTEMPTS` the user is
  locked out for `REX_SIGNIN_LOCKOUT_MINUTES`. The wait is kept in the database
  (`users.locked_until`), so it holds across browsers, processes and replicas. An
  unknown e-mail costs the same hashing time as a known one and gets the same answer.
* **Sessions**: a random 256-bit token (the browser keeps it in a cookie); Rex stores
  only its SHA-256, so the database cannot be used to sign in. A session ends at
  `REX_SESSION_HOURS` after it began, on sign-out, when the password changes and when
  the user is disabled. Sessions and lock-outs keep the wall clock's time, whatever
  the sandbox did to Rex's.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from core.access.actor import Actor, load_actor
from core.access.audit import record
from core.db import read_session, rows_changed, write_session
from core.db.models import User, UserSession
from core.errors import RexError
from core.settings import get_settings

HASHER = PasswordHasher()
_DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(16))  # verified for unknown e-mails
LAST_SEEN_EVERY = timedelta(minutes=1)  # how often a session's last_seen_at is written


class SignInError(RexError):
    """Signing in failed: the message says why in words safe to show anyone."""


class SignInThrottled(SignInError):
    """Too many wrong passwords: no attempt before `until`."""

    def __init__(self, message: str, until: datetime) -> None:
        super().__init__(message)
        self.until = until


@dataclass(frozen=True)
class SignedIn:
    token: str  # for the cookie; never stored
    actor: Actor
    expires_at: datetime


def wall_now() -> datetime:
    """Sessions and lock-outs run on the wall clock, not Rex's (which the sandbox may
    move days ahead: that must not sign anyone out, nor lift a lock-out)."""
    return datetime.now(UTC)


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def sign_in(
    email: str, password: str, *, now: datetime | None = None, engine: Engine | None = None
) -> SignedIn:
    """A new session for the user with this e-mail and password, or SignInError."""
    now = now or wall_now()
    address = email.strip().lower()
    wrong = SignInError("wrong e-mail or password")
    with write_session(engine) as session:
        user = session.scalars(select(User).where(User.email == address)).one_or_none()
        if user is None or user.password_hash is None:
            _verify(_DUMMY_HASH, password)  # the same time as a known e-mail
            raise wrong
        if user.locked_until is not None and user.locked_until > now:
            raise _throttled(user.locked_until, now, locked=_locked_out(user))
        right = _verify(user.password_hash, password)
        if right and user.disabled_at is not None:
            raise SignInError(f"{user.email} is disabled: ask an admin to enable it")
        if right:
            if HASHER.check_needs_rehash(user.password_hash):
                user.password_hash = HASHER.hash(password)
            user.failed_attempts, user.locked_until, user.last_sign_in_at = 0, None, now
            return _start(session, user, "password", now)
        _failed(session, user, now)  # committed: the failure counts
    raise wrong


def sign_in_sso(
    email: str,
    *,
    verified: bool | None = None,
    now: datetime | None = None,
    engine: Engine | None = None,
) -> SignedIn:
    """A new session for the Rex user whose e-mail the identity provider confirmed.

    `verified` is the provider's `email_verified` claim: False (the provider has not
    checked that the address is the person's) is refused, since whoever put a Rex
    user's address on an account there would sign in as them; None (a provider that
    sends no such claim, as Entra ID) trusts the provider's e-mail."""
    now = now or wall_now()
    address = email.strip().lower()
    if verified is False:
        raise SignInError(
            f"your identity provider has not verified {address}: verify it there, then "
            "sign in again"
        )
    with write_session(engine) as session:
        user = session.scalars(select(User).where(User.email == address)).one_or_none()
        if user is None:
            raise SignInError(
                f"{address} has no Rex access yet: ask an admin to add you (Settings → "
                f"Users, or `python -m core users add {address} --sso`)"
            )
        if user.disabled_at is not None:
            raise SignInError(f"{user.email} is disabled: ask an admin to enable it")
        user.last_sign_in_at = now
        return _start(session, user, "sso", now)


def resolve(token: str | None, *, now: datetime | None = None,
            engine: Engine | None = None) -> Actor | None:  # fmt: skip
    """The signed-in actor of a session token, or None (unknown, ended, expired, or the
    user disabled)."""
    if not token:
        return None
    now = now or wall_now()
    with write_session(engine) as session:
        row = _open_session(session, token)
        if row is None:
            return None
        if row.expires_at <= now:
            row.ended_at, row.ended_reason = now, "expired"
            return None
        user = session.get_one(User, row.user_id)
        if user.disabled_at is not None:
            row.ended_at, row.ended_reason = now, "user disabled"
            return None
        if now - row.last_seen_at >= LAST_SEEN_EVERY:
            row.last_seen_at = now
        return load_actor(session, user.id, session_id=row.id)


def sign_out(
    token: str | None, *, now: datetime | None = None, engine: Engine | None = None
) -> None:
    """End the session of this token (nothing when it has none)."""
    if not token:
        return
    now = now or wall_now()
    with write_session(engine) as session:
        row = _open_session(session, token)
        if row is None:
            return
        row.ended_at, row.ended_reason = now, "signed out"
        record(session, load_actor(session, row.user_id, session_id=row.id), "session.sign_out",
               "session", row.id, at=now)  # fmt: skip


def end_sessions(session: Session, user_id: int, reason: str, now: datetime) -> int:
    """End every open session of a user (a password change, disabling); how many."""
    return rows_changed(session, update(UserSession)
                        .where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
                        .values(ended_at=now, ended_reason=reason))  # fmt: skip


# ---------------------------------------------------------------------- helpers


def _start(session: Session, user: User, via: str, now: datetime) -> SignedIn:
    token = secrets.token_urlsafe(32)
    expires = now + timedelta(hours=get_settings().session_hours)
    row = UserSession(user_id=user.id, token_hash=_digest(token), via=via, created_at=now,
                      last_seen_at=now, expires_at=expires)  # fmt: skip
    session.add(row)
    session.flush()
    actor = load_actor(session, user.id, session_id=row.id)
    record(session, actor, "session.sign_in", "session", row.id, new={"via": via}, at=now)
    return SignedIn(token, actor, expires)


def _open_session(session: Session, token: str) -> UserSession | None:
    """The session of this token, unless there is none or it has ended."""
    row = session.scalars(
        select(UserSession).where(UserSession.token_hash == _digest(token))
    ).one_or_none()
    return row if row is not None and row.ended_at is None else None


def _failed(session: Session, user: User, now: datetime) -> None:
    """Count a wrong password, atomically (two attempts at once both count), and set
    when the next may come."""
    settings = get_settings()
    count = session.execute(
        update(User)
        .where(User.id == user.id)
        .values(failed_attempts=User.failed_attempts + 1)
        .returning(User.failed_attempts)
    ).scalar_one()
    if count >= settings.signin_max_attempts:
        until = now + timedelta(minutes=settings.signin_lockout_minutes)
    else:
        until = now + timedelta(seconds=2 ** (count - 1))
    session.execute(update(User).where(User.id == user.id).values(locked_until=until))
    record(session, Actor(user_id=user.id, email=user.email, name=user.name),
           "session.sign_in_failed", "user", user.id,
           new={"failed_attempts": count, "locked_until": until.isoformat()}, at=now)  # fmt: skip


def _locked_out(user: User) -> bool:
    return user.failed_attempts >= get_settings().signin_max_attempts


def _throttled(until: datetime, now: datetime, *, locked: bool) -> SignInThrottled:
    seconds = max(1, int((until - now).total_seconds() + 0.999))
    if locked:
        minutes = max(1, (seconds + 59) // 60)
        return SignInThrottled(
            f"too many wrong passwords: locked for {minutes} more minute(s); try again "
            "later, or ask an admin to set a new password", until
        )  # fmt: skip
    return SignInThrottled(f"wait {seconds} second(s) before trying again", until)


def _verify(hashed: str, password: str) -> bool:
    try:
        return HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_rows(user_id: int, engine: Engine | None = None) -> list[UserSession]:
    """A user's sessions, newest first (for the admin's user page)."""
    with read_session(engine) as session:
        return list(session.scalars(
            select(UserSession).where(UserSession.user_id == user_id)
            .order_by(UserSession.created_at.desc())
        ))  # fmt: skip
