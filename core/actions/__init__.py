"""Actions: the only code that writes to Meta (execute), approvals and rollback."""
