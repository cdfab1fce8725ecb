"""Overview: an account's numbers over the picked range and its campaigns, ad sets and ads."""

from datetime import datetime, time, timedelta

import plotly.graph_objects as go
import streamlit as st

from core.access.roles import Permission
from core.enums import Level
from core.money import decimals
from core.views.activity import recent_actions
from core.views.health import system_health
from core.views.overview import account_overview, entity_table
from pages._notices import connected_accounts, show_notices
from pages._signin import signed_in

actor = signed_in(Permission.READ)
st.title("Overview")
show_notices()

accounts = connected_accounts(actor)

labels = {a.id: f"{a.name} · {a.external_id} · {a.currency} · {a.timezone_name}" for a in accounts}
account_id = st.selectbox(
    "Ad account", list(labels), format_func=labels.get, key="overview_account"
)
days = (
    st.segmented_control(
        "Range",
        [7, 14, 30, 60],
        default=30,
        key="overview_days",
        format_func=lambda d: f"Last {d} days",
    )
    or 30
)
overview = account_overview(account_id, actor=actor, days=days)
account = overview.account
currency = account.currency
span = f"{overview.first_day:%b %d} – {overview.today:%b %d, %Y}"

if account.needs_reconnect:
    st.warning(
        "Meta rejected this account's access token, so its numbers are not being updated. "
        "Reconnect it on the Accounts page with a new token."
    )
elif account.last_sync_at is None:
    st.info("This account has not been synced yet: use **Sync now** on the Accounts page.")

st.caption(
    f"Last {days} days, {span} ({account.timezone_name} dates), money in {currency} · "
    "last sync "
    + (f"{account.last_sync_at:%Y-%m-%d %H:%M} UTC" if account.last_sync_at else "never")
)
coverage = overview.coverage() if overview.data_starts else None
if coverage:
    st.info(coverage[0].upper() + coverage[1:] + ".")


def delta(name: str, money: bool = True) -> str | None:
    change = overview.change(name)
    if change is None:  # the period before was not synced in full: no comparison
        return None
    shown = overview.money(change) if money else f"{change:.2f}"
    return ("+" if change > 0 else "") + shown + f" vs previous {days} days"


current = overview.current
counted = f"over {span}, all campaigns of the account, in {currency}"
columns = st.columns(4)
columns[0].metric(
    "Spend",
    overview.money(current.spend),
    delta("spend"),
    delta_color="off",
    help=f"Amount spent {counted}.",
)
columns[1].metric(
    "Revenue",
    overview.money(current.revenue),
    delta("revenue"),
    help=f"Purchase value Meta attributed {counted}.",
)
columns[2].metric(
    "Profit", overview.money(current.profit), delta("profit"), help=f"Revenue − spend {counted}."
)
columns[3].metric(
    "ROAS",
    f"{current.roas:.2f}" if current.roas is not None else "—",
    delta("roas", money=False),
    help=f"Revenue ÷ spend over {span} (— when nothing was spent).",
)

glance = system_health(actor=actor, days=1, impact=False)
st.subheader("Automation")
automation = st.columns(5)
automation[0].metric("Active rules", glance.active_rules, help="Rules switched on, now.")
automation[1].metric(
    "Actions (24 h)", glance.actions_today, help="Changes Meta confirmed, last 24 hours."
)
automation[2].metric("Pending approvals", glance.pending_approvals, help="Proposals waiting, now.")
automation[3].metric(
    "Failures (24 h)", glance.failures_today, help="Writes that failed, last 24 hours."
)
automation[4].metric("Scheduler", "alive" if glance.scheduler_alive else "not running")
if not glance.scheduler_alive:
    st.caption("Rules run only while `python -m core.scheduler` is running (make run starts it).")

chart_days = [p.day for p in overview.series]
figure = go.Figure()
money_hover = f"%{{y:,.{decimals(currency)}f}} {currency}"
figure.add_bar(
    x=chart_days,
    y=[float(p.spend) for p in overview.series],
    name="Spend",
    marker_color="#94a3b8",
    hovertemplate=f"%{{x|%b %d}} spend: {money_hover}<extra></extra>",
)
figure.add_bar(
    x=chart_days,
    y=[float(p.revenue) for p in overview.series],
    name="Revenue",
    marker_color="#2563eb",
    hovertemplate=f"%{{x|%b %d}} revenue: {money_hover}<extra></extra>",
)
figure.add_scatter(
    x=chart_days,
    y=[float(p.roas) if p.roas is not None else None for p in overview.series],
    name="ROAS",
    yaxis="y2",
    mode="lines+markers",
    line={"color": "#f97316"},
    hovertemplate="%{x|%b %d} ROAS: %{y:.2f}<extra></extra>",
)
if overview.starts_late:  # the days before the synced data: say so on the chart
    half_a_day = timedelta(hours=12)  # bars are centred on their day
    figure.add_vrect(
        x0=datetime.combine(overview.first_day, time()) - half_a_day,
        x1=datetime.combine(overview.data_starts, time()) - half_a_day,
        fillcolor="#e5e7eb",
        opacity=0.5,
        line_width=0,
        annotation_text="not synced",
        annotation_position="top left",
    )
figure.update_layout(
    barmode="group",
    height=380,
    margin={"l": 10, "r": 10, "t": 30, "b": 10},
    yaxis={"title": f"Spend and revenue ({currency})"},
    yaxis2={
        "title": "ROAS",
        "overlaying": "y",
        "side": "right",
        "rangemode": "tozero",
        "tickformat": ".1f",
        "showgrid": False,
    },
    legend={"orientation": "h", "y": 1.12},
)
st.plotly_chart(figure, width="stretch")

st.subheader("Campaigns, ad sets and ads")
level = st.segmented_control(
    "Level",
    list(Level),
    default=Level.CAMPAIGN,
    key="overview_level",
    format_func={Level.CAMPAIGN: "Campaigns", Level.ADSET: "Ad sets", Level.AD: "Ads"}.get,
)
rows = entity_table(account_id, actor=actor, level=level, days=days, today=overview.today)
if not rows:
    st.info("Nothing synced at this level yet.")
else:
    st.caption(f"Spend, revenue and ROAS over {span}, the range picked above.")
    money_format = f"%.{decimals(currency)}f"
    spend, revenue, roas = (
        f"Spend {days}d ({currency})",
        f"Revenue {days}d ({currency})",
        f"ROAS {days}d",
    )
    st.dataframe(
        [
            {
                **({"Level": r.level} if level is None else {}),  # the choice was cleared
                "Name": r.name,
                **({"Campaign": r.campaign or ""} if level != Level.CAMPAIGN else {}),
                **({"Ad set": r.adset or ""} if level in (None, Level.AD) else {}),
                "Status": r.status,
                "Effective status": r.effective_status,
                "Budget": r.budget,
                spend: float(r.spend),
                revenue: float(r.revenue),
                roas: f"{r.roas:.2f}" if r.roas is not None else "—",
                "ID": r.external_id,
            }
            for r in rows
        ],
        hide_index=True,
        width="stretch",
        column_config={
            spend: st.column_config.NumberColumn(format=money_format),
            revenue: st.column_config.NumberColumn(format=money_format),
            "Budget": st.column_config.TextColumn(width="medium"),
        },
    )

st.subheader("Recent activity")
activity = recent_actions(actor=actor, hours=24 * 7)[:10]
if not activity:
    st.caption("No automated actions in the last 7 days.")
for action in activity:
    st.markdown(
        f"- {action.created_at:%Y-%m-%d %H:%M} UTC · **{action.rule_name or 'manual'}** · "
        f"{action.action_type} {action.entity_name}: {action.old_value or '—'} → "
        f"{action.new_value or '—'} · {action.status}"
    )
