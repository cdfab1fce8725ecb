"""Roles and what each may do: the one catalogue of permissions.

A user holds roles per ad account (`user_grants`); an admin holds every permission on
every account. Any role on an account lets its holder read that account's data.

* viewer: reads the account's rules, executions, approvals, suggestions, outcomes,
  breakdowns and health figures;
* marketer: the viewer's, and edits and runs rules, applies and dismisses suggestions,
  rolls back actions;
* approver: the viewer's, and decides the account's approvals, rolls back actions;
* admin (a user flag, not a grant): everything on every account — users and grants,
  connecting and removing accounts, settings, the audit log.
"""

from __future__ import annotations

from enum import StrEnum

from core.errors import InputError


class Role(StrEnum):
    VIEWER = "viewer"
    MARKETER = "marketer"
    APPROVER = "approver"


class Permission(StrEnum):
    READ = "read"
    EDIT_RULES = "edit rules"
    RUN_RULES = "run rules"
    APPLY_SUGGESTIONS = "apply suggestions"
    DECIDE_APPROVALS = "decide approvals"
    ROLL_BACK = "roll back actions"
    MANAGE_ACCOUNTS = "manage accounts"  # admins only
    MANAGE_USERS = "manage users"  # admins only
    READ_AUDIT = "read the audit log"  # admins only


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.MARKETER: frozenset(
        {
            Permission.READ,
            Permission.EDIT_RULES,
            Permission.RUN_RULES,
            Permission.APPLY_SUGGESTIONS,
            Permission.ROLL_BACK,
        }
    ),  # fmt: skip
    Role.APPROVER: frozenset({Permission.READ, Permission.DECIDE_APPROVALS, Permission.ROLL_BACK}),
}
ADMIN_ONLY = frozenset({Permission.MANAGE_ACCOUNTS, Permission.MANAGE_USERS, Permission.READ_AUDIT})


def role_of(word: str) -> Role:
    """A role from its name, or InputError naming the roles there are."""
    try:
        return Role(word.strip().lower())
    except ValueError:
        raise InputError(
            "role",
            f"{word!r} is not a role: one of {', '.join(r.value for r in Role)} (admin is a "
            "user flag: `users add --admin`)",
        ) from None
