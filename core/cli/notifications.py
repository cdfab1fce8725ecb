"""`notifications status|retry|test|catch`: the outbox, from the shell.

notifications status                   channels set up, deliveries of the last 7 days,
                                       and those that failed or may not have arrived
notifications retry [ID …] --as ADMIN  send failed / unknown deliveries again
notifications test --as EMAIL          a test message on that person's channels now
                                       (an admin's: the team's channels too)
notifications catch                    print what Rex sends (SMTP :8025, HTTP :8026)
"""

from __future__ import annotations

import argparse

from core.cli.acting import acting, add_as, reader
from core.cli.args import Parser, days, port, row_id
from core.cli.console import print_table


def register(parser: Parser) -> None:
    actions = parser.add_subparsers(metavar="ACTION")
    status = actions.add_parser("status", help="channels, deliveries, and what failed")
    status.add_argument("--days", type=days, default=7)
    add_as(status)
    status.set_defaults(handler=show_status)
    again = actions.add_parser("retry", help="send failed or unknown deliveries again")
    again.add_argument("delivery_ids", type=row_id("delivery"), nargs="*", metavar="ID",
                       help="default: every failed or unknown one")  # fmt: skip
    add_as(again)
    again.set_defaults(handler=retry, needs_key=True)
    test = actions.add_parser("test", help="send a test message on your channels now")
    add_as(test)
    test.set_defaults(handler=test_channels, needs_key=True)
    catch = actions.add_parser("catch", help="print what Rex sends (a local SMTP + HTTP catcher)")
    catch.add_argument("--smtp-port", type=port, default=8025)
    catch.add_argument("--http-port", type=port, default=8026)
    catch.set_defaults(handler=run_catcher, needs_db=False)


def show_status(args: argparse.Namespace) -> int:
    from core.notify.inbox import outbox_health

    health = outbox_health(actor=reader(args), days=args.days)
    ready = (f"{name} {'set up' if up else 'not set up'}" for name, up in health.channels.items())
    print("channels: " + ", ".join(ready))
    print(f"last {args.days} days: " + ", ".join(f"{n} {s}" for s, n in health.counts.items()))
    if health.troubled:
        rows = [("ID", "CHANNEL", "TO", "NOTIFICATION", "STATE")]
        rows += [(str(d.id), d.channel, d.to, title, d.words) for title, d in health.troubled]
        print_table(rows)
    return 0


def retry(args: argparse.Namespace) -> int:
    from core.notify.deliver import retry as send_again

    count = send_again(args.delivery_ids or None, by=acting(args))
    print(f"{count} deliveries queued again (the scheduler sends them)")
    return 0


def test_channels(args: argparse.Namespace) -> int:
    from core.notify.deliver import send_test

    results = send_test(by=acting(args))
    if not results:
        print("no channel is set up: see the README's Notifications section")
        return 1
    print_table([("CHANNEL", "TO", "RESULT"), *((r.channel, r.to, r.words) for r in results)])
    return 0 if all(r.words == "sent" for r in results) else 1


def run_catcher(args: argparse.Namespace) -> int:
    from core.notify.catcher import catch
    from core.settings import get_settings

    secret = get_settings().webhook_secret
    catch(smtp_port=args.smtp_port, http_port=args.http_port,
          secret=secret.get_secret_value() if secret else None)  # fmt: skip
    return 0
