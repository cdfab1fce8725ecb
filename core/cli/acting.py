"""`--as EMAIL`: the Rex user a command that decides something acts as.

The shell account running a command is not an identity: a decision (an approval, a
rollback, a suggestion applied, a user added) names a Rex user, whose roles are checked
as the app checks them, and the record and the audit log carry their e-mail.
`REX_AS` in the environment stands in for `--as` (a script acting as one user).
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.access.actor import Actor


def add_as(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as", dest="acting", metavar="EMAIL",
        help="the Rex user acting (checked like the app; default: $REX_AS)",
    )  # fmt: skip


def reader(args: argparse.Namespace) -> Actor:
    """Who reads: the user named by `--as` (or `REX_AS`) — seeing their accounts only —
    or, without one, the operator, who sees everything (the server's shell can read its
    database anyway)."""
    from core.access.actor import SYSTEM

    named = getattr(args, "acting", None) or os.environ.get("REX_AS")
    return acting(args) if named else SYSTEM


def acting(args: argparse.Namespace) -> Actor:
    """The user named by `--as` (or `REX_AS`), or AccessDenied saying to name one."""
    from core.access.actor import AccessDenied
    from core.access.users import actor_for

    email = getattr(args, "acting", None) or os.environ.get("REX_AS")
    if not email:
        error = AccessDenied("say who acts: --as EMAIL (a Rex user allowed to do this)")
        error.hint = "`python -m core users list --as ADMIN_EMAIL` shows the users"
        raise error
    return actor_for(email)
