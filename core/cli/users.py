"""`users add|list|grant|revoke|passwd|disable|enable`: the people who sign in to Rex.

Every command acts as a Rex user: `--as ADMIN_EMAIL`, checked like the app (the shell
account running the command is not an identity). The one exception is the first admin
of an install: while no admin exists, `users add EMAIL --admin` needs no `--as`.

A password is read from stdin with `--password-stdin` (never from the command line,
where `ps` and the shell history would keep it); without it one is generated and
printed once. `--sso` makes a user who signs in only through single sign-on.

    users add ana@example.com --name "Ana" --admin
    users grant bo@example.com act_123 marketer approver --as ana@example.com
    users revoke bo@example.com act_123 approver --as ana@example.com
    users list [--json] --as ana@example.com
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING

from core.cli.acting import acting, add_as
from core.cli.args import Parser
from core.cli.console import print_table

if TYPE_CHECKING:
    from core.access.actor import Actor


def register(parser: Parser) -> None:
    actions = parser.add_subparsers(metavar="ACTION")

    def command(name: str, help_text: str, handler: object) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_text)
        add_as(sub)
        sub.set_defaults(handler=handler)
        return sub

    add = command("add", "add a user (a generated password is printed once)", add_user)
    add.add_argument("email")
    add.add_argument("--name")
    add.add_argument("--admin", action="store_true", help="every permission on every account")
    how = add.add_mutually_exclusive_group()
    how.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    how.add_argument("--sso", action="store_true", help="signs in only through single sign-on")
    listing = command("list", "every user with their grants", list_users)
    listing.add_argument("--json", action="store_true")
    give = command("grant", "give a user roles on an ad account", grant)
    give.add_argument("email")
    give.add_argument("account", help="act_… or Rex's id")
    give.add_argument("roles", nargs="+", metavar="ROLE", help="viewer, marketer, approver")
    take = command("revoke", "take roles (or every role) on an account from a user", revoke)
    take.add_argument("email")
    take.add_argument("account", help="act_… or Rex's id")
    take.add_argument("roles", nargs="*", metavar="ROLE", help="default: every role there")
    password = command("passwd", "set a user's password (generated without --password-stdin)",
                       passwd)  # fmt: skip
    password.add_argument("email")
    password.add_argument("--password-stdin", action="store_true")
    for name, handler in (("disable", disable), ("enable", enable)):
        sub = command(name, f"{name} a user (disabling ends their sessions)", handler)
        sub.add_argument("email")


def _acting(args: argparse.Namespace, *, bootstrap: bool = False) -> Actor:
    """The admin acting; while no admin exists, the operator making the first one."""
    from core.access.users import bootstrap_actor

    if bootstrap and not (args.acting or os.environ.get("REX_AS")):
        return bootstrap_actor()
    return acting(args)


def _password(args: argparse.Namespace) -> str | None:
    if not args.password_stdin:
        return None
    return sys.stdin.readline().rstrip("\n")


def add_user(args: argparse.Namespace) -> int:
    from core.access.users import add_user as add

    by = _acting(args, bootstrap=args.admin)
    added = add(args.email, by=by, name=args.name, password=_password(args), admin=args.admin,
                sso=args.sso)  # fmt: skip
    print(f"user {added.user.email} added" + (" (admin)" if added.user.admin else ""))
    if added.password:
        print(f"password (shown once, give it to them privately): {added.password}")
    return 0


def list_users(args: argparse.Namespace) -> int:
    from core.access.users import list_users as listed

    views = listed(by=_acting(args))
    if args.json:
        print(json.dumps([{
            "email": v.email, "name": v.name, "admin": v.admin, "disabled": v.disabled,
            "password": v.password, "grants": v.grants,
            "last_sign_in_at": v.last_sign_in_at.isoformat() if v.last_sign_in_at else None,
        } for v in views], indent=2))  # fmt: skip
        return 0
    rows = [("EMAIL", "NAME", "ADMIN", "STATE", "GRANTS")]
    for v in views:
        grants = "; ".join(f"{a}: {', '.join(r)}" for a, r in v.grants.items()) or "—"
        state = "disabled" if v.disabled else "active"
        rows.append((v.email, v.name, "yes" if v.admin else "", state, grants))
    print_table(rows)
    return 0


def grant(args: argparse.Namespace) -> int:
    from core.access.roles import role_of
    from core.access.users import grant as give

    view = give(args.email, args.account, [role_of(r) for r in args.roles], by=_acting(args))
    print(f"{view.email} on {args.account}: {', '.join(view.grants.get(args.account, []))}")
    return 0


def revoke(args: argparse.Namespace) -> int:
    from core.access.roles import role_of
    from core.access.users import revoke as take

    roles = [role_of(r) for r in args.roles] or None
    view = take(args.email, args.account, roles, by=_acting(args))
    left = ", ".join(view.grants.get(args.account, [])) or "no role"
    print(f"{view.email} on {args.account}: {left}")
    return 0


def passwd(args: argparse.Namespace) -> int:
    from core.access.users import set_password

    generated = set_password(args.email, _password(args), by=_acting(args))
    print(f"password of {args.email.strip().lower()} changed; their sessions ended")
    if generated:
        print(f"password (shown once, give it to them privately): {generated}")
    return 0


def disable(args: argparse.Namespace) -> int:
    from core.access.users import set_disabled

    view = set_disabled(args.email, True, by=_acting(args))
    print(f"{view.email} disabled; their sessions ended")
    return 0


def enable(args: argparse.Namespace) -> int:
    from core.access.users import set_disabled

    view = set_disabled(args.email, False, by=_acting(args))
    print(f"{view.email} enabled")
    return 0
