"""Who may do what: users, roles per ad account, sign-in, sessions, the audit log."""
