"""Audit log (admins): who did what, when, from which session — filtered, and as CSV."""

from datetime import UTC, datetime, time, timedelta

import streamlit as st

from core.access.audit import LIMIT, as_csv, audit_log
from core.access.roles import Permission
from pages._notices import show_notices
from pages._signin import signed_in

actor = signed_in(Permission.READ_AUDIT)
st.title("Audit log")
show_notices()
cols = st.columns(4)
user = cols[0].text_input("User (e-mail)", key="audit_user")
action = cols[1].text_input("Action starts with", key="audit_action", help="e.g. user., rule.")
account = cols[2].text_input("Ad account (act_…)", key="audit_account")
days = cols[3].date_input("Days", value=(), key="audit_days")
since = until = None
if isinstance(days, tuple) and len(days) == 2:
    since = datetime.combine(days[0], time(), UTC)
    until = datetime.combine(days[1], time(), UTC) + timedelta(days=1)
rows = audit_log(actor, user=user or None, action=action or None, account=account or None,
                 since=since, until=until)  # fmt: skip
st.caption(f"{len(rows)} entries, newest first" + (f" (the newest {LIMIT:,})"
                                                    if len(rows) == LIMIT else ""))  # fmt: skip
st.dataframe([r.as_row() for r in rows], hide_index=True, width="stretch")
st.download_button("Download CSV", as_csv(rows), file_name="rex-audit.csv", mime="text/csv",
                   disabled=not rows)  # fmt: skip
