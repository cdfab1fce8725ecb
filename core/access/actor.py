"""Who is acting: a signed-in user with their grants, or Rex itself (the scheduler).

Every core service that reads or changes an account's data takes an `Actor` and checks
it itself (`require`, `account_ids`): a page that forgot to hide a button still cannot
act for someone without the grant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.access.roles import ADMIN_ONLY, ROLE_PERMISSIONS, Permission, Role
from core.db.models import AdAccount, User, UserGrant
from core.errors import RexError


class AccessDenied(RexError):
    """The acting user may not do this (or may not see this account)."""

    hint = "An admin grants roles: Settings → Users, or `python -m core users grant`."


@dataclass(frozen=True)
class Actor:
    """The acting person (or Rex). `grants`: account id → the roles held there."""

    user_id: int | None
    email: str
    name: str
    admin: bool = False
    grants: Mapping[int, frozenset[Role]] = field(default_factory=dict)
    session_id: int | None = None
    via: str = "ui"  # "ui", "cli", "scheduler"

    @property
    def label(self) -> str:
        """How the record names them: their e-mail (Rex itself: "rex")."""
        return self.email

    def can(self, permission: Permission, account_id: int | None = None) -> bool:
        """May they do this — on this account, or (None) on at least one account?"""
        if self.admin:
            return True
        if permission in ADMIN_ONLY:
            return False
        if account_id is None:
            return any(permission in _permissions(r) for r in self.grants.values())
        return permission in _permissions(self.grants.get(account_id, frozenset()))

    def require(self, permission: Permission, account_id: int | None = None,
                account_name: str | None = None) -> None:  # fmt: skip
        """Raise AccessDenied unless `can`."""
        if self.can(permission, account_id):
            return
        where = f" on {account_name or f'account {account_id}'}" if account_id else ""
        raise AccessDenied(f"{self.label} may not {permission.value}{where}")

    def account_ids(self, permission: Permission = Permission.READ) -> frozenset[int] | None:
        """The accounts they may do this on; None: every account (an admin)."""
        if self.admin:
            return None
        return frozenset(a for a, roles in self.grants.items() if permission in _permissions(roles))


SYSTEM = Actor(user_id=None, email="rex", name="Rex", admin=True, via="scheduler")


def _permissions(roles: frozenset[Role]) -> frozenset[Permission]:
    return frozenset().union(*(ROLE_PERMISSIONS[r] for r in roles)) if roles else frozenset()


def load_actor(
    session: Session, user_id: int, *, session_id: int | None = None, via: str = "ui"
) -> Actor:
    """The user with their grants as they are now (on accounts still connected)."""
    user = session.get_one(User, user_id)
    grants: dict[int, set[Role]] = {}
    for account_id, role in session.execute(
        select(UserGrant.account_id, UserGrant.role)
        .join(AdAccount, AdAccount.id == UserGrant.account_id)
        .where(UserGrant.user_id == user_id, AdAccount.connected)
    ):
        grants.setdefault(account_id, set()).add(Role(role))
    return Actor(
        user_id=user.id, email=user.email, name=user.name, admin=user.is_admin,
        grants={a: frozenset(r) for a, r in grants.items()}, session_id=session_id, via=via,
    )  # fmt: skip
