"""`python -m core.scheduler`: run Rex's scheduler until SIGTERM / SIGINT (exit 0).

The signal handlers are installed before anything else is imported or checked, so a stop
that comes during start-up (a process manager that changes its mind, a Ctrl-C while the
database is checked) ends the process cleanly with exit 0 instead of killing it (-15).
Before these first lines run the kernel's default applies, as for any program.
"""

import signal
import sys
import threading

stop_requested = threading.Event()


def _request_stop(_signum: int, _frame: object) -> None:
    stop_requested.set()


signal.signal(signal.SIGTERM, _request_stop)
signal.signal(signal.SIGINT, _request_stop)


def main() -> int:
    from pydantic import ValidationError

    from core.errors import RexError
    from core.logs import configure_logging
    from core.settings import get_settings

    if stop_requested.is_set():
        return 0
    try:
        configure_logging(get_settings().log_level)
        from core.db.migrate import require_current_schema

        if stop_requested.is_set():
            return 0
        require_current_schema()
        from core.scheduler.service import Scheduler

        if stop_requested.is_set():
            return 0
        return Scheduler(stop_event=stop_requested).run_forever()
    except RexError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ValidationError as error:  # a setting that does not validate
        from core.cli.console import settings_problem

        print(f"error: {settings_problem(error)}", file=sys.stderr)
        return 1
    except Exception as error:
        from core.db.errors import database_error

        translated = database_error(error)
        if translated is None:
            raise  # a bug: its traceback is what a report needs
        print(f"error: {translated}", file=sys.stderr)
        return 1


sys.exit(main())
