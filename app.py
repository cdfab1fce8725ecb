"""Rex: the Streamlit app. It signs people in and routes; each page is a thin file in
pages/. Each person sees the pages their roles open (core/access/roles.py)."""

import streamlit as st

from core.access.roles import Permission
from core.notify.inbox import unread_count
from pages._signin import sign_out_button, signed_in

st.set_page_config(page_title="Rex", page_icon=":material/trending_up:", layout="wide")

actor = signed_in()
sign_out_button(actor)
reads = actor.can(Permission.READ)
unread = unread_count(actor=actor)
sections = {
    "Automation": [
        st.Page("pages/rules.py", title="Rules", icon=":material/rule:"),
        st.Page("pages/executions.py", title="Executions", icon=":material/history:"),
        st.Page("pages/approvals.py", title="Approvals", icon=":material/fact_check:"),
    ]
    if reads
    else [],
    "Insights": [
        st.Page("pages/overview.py", title="Overview", icon=":material/monitoring:", default=True),
        st.Page("pages/breakdowns.py", title="Breakdowns", icon=":material/pie_chart:"),
        st.Page("pages/suggestions.py", title="Suggestions", icon=":material/lightbulb:"),
        st.Page("pages/impact.py", title="Impact", icon=":material/insights:"),
    ]
    if reads
    else [st.Page("pages/no_access.py", title="No access yet", icon=":material/lock:")],
    "Settings": [
        *([st.Page("pages/accounts.py", title="Accounts", icon=":material/key:")]
          if actor.can(Permission.MANAGE_ACCOUNTS) else []),
        *([st.Page("pages/health.py", title="Health", icon=":material/monitor_heart:")]
          if reads else []),
        *([st.Page("pages/users.py", title="Users", icon=":material/group:"),
           st.Page("pages/audit.py", title="Audit log", icon=":material/receipt_long:")]
          if actor.can(Permission.MANAGE_USERS) else []),
        st.Page("pages/notifications.py", title=f"Notifications ({unread})" if unread
                else "Notifications", icon=":material/notifications:"),
    ],
}  # fmt: skip
st.navigation({name: pages for name, pages in sections.items() if pages}).run()
