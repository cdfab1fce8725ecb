"""Rex: the Streamlit app. It only routes; each page is a thin file in pages/."""

import streamlit as st

st.set_page_config(page_title="Rex", page_icon=":material/trending_up:", layout="wide")

navigation = st.navigation(
    {
        "Automation": [
            st.Page("pages/rules.py", title="Rules", icon=":material/rule:"),
            st.Page("pages/executions.py", title="Executions", icon=":material/history:"),
            st.Page("pages/approvals.py", title="Approvals", icon=":material/fact_check:"),
        ],
        "Insights": [
            st.Page(
                "pages/overview.py", title="Overview", icon=":material/monitoring:", default=True
            ),
            st.Page("pages/breakdowns.py", title="Breakdowns", icon=":material/pie_chart:"),
            st.Page("pages/suggestions.py", title="Suggestions", icon=":material/lightbulb:"),
            st.Page("pages/impact.py", title="Impact", icon=":material/insights:"),
        ],
        "Settings": [
            st.Page("pages/accounts.py", title="Accounts", icon=":material/key:"),
            st.Page("pages/health.py", title="Health", icon=":material/monitor_heart:"),
        ],
    }
)
navigation.run()
