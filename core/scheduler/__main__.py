"""`python -m core.scheduler`: run Rex's scheduler until SIGTERM / SIGINT (exit 0)."""

import sys

from core.db.migrate import require_current_schema
from core.errors import RexError
from core.logs import configure_logging
from core.scheduler.service import Scheduler
from core.settings import get_settings


def main() -> int:
    configure_logging(get_settings().log_level)
    try:
        require_current_schema()
        return Scheduler().run_forever()
    except RexError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


sys.exit(main())
