"""Health: does automation work, is the scheduler alive, and what has it changed."""

import streamlit as st

from core.health import system_health
from core.money import format_money

st.title("Health")
health = system_health(days=7)


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


st.subheader("Last 7 days")
cols = st.columns(4)
cols[0].metric(
    "Rule success rate",
    percent(health.rule_success_rate),
    help="Runs that succeeded, of runs that were evaluated.",
)
cols[1].metric(
    "Average execution",
    "—" if health.average_execution_ms is None else f"{health.average_execution_ms:.0f} ms",
)
cols[2].metric(
    "Action success rate",
    percent(health.action_success_rate),
    help="Writes Meta confirmed, of writes sent.",
)
cols[3].metric(
    "API error rate",
    percent(health.api_error_rate),
    help="Failed syncs and writes, of all Graph work.",
)

st.subheader("Scheduler")
if not health.schedulers:
    st.warning(
        "No scheduler has ever run against this database: start it with "
        "`python -m core.scheduler` (make run does)."
    )
elif health.scheduler_alive:
    live = [s for s in health.schedulers if s.alive]
    st.success(
        f"{len(live)} scheduler(s) alive · last tick "
        f"{max(s.last_tick_at for s in live):%Y-%m-%d %H:%M:%S} UTC"
    )
else:
    last = health.schedulers[0]
    st.error(
        "No scheduler is alive: rules are not running. Last seen "
        + (f"{last.last_tick_at:%Y-%m-%d %H:%M} UTC" if last.last_tick_at else "never")
        + f" on {last.host} (pid {last.pid}). Start `python -m core.scheduler`."
    )
if health.schedulers:
    st.dataframe(
        [
            {
                "Job": job,
                "Last run": info.get("last_run_at", ""),
                "Outcome": info.get("outcome"),
                "ms": info.get("duration_ms"),
            }
            for job, info in sorted(health.schedulers[0].jobs.items())
        ],
        hide_index=True,
        width="stretch",
    )
if health.events:
    st.caption("Job errors and missed runs")
    st.dataframe(
        [
            {"At (UTC)": f"{at:%Y-%m-%d %H:%M:%S}", "Job": job, "Kind": kind, "Message": message}
            for at, job, kind, message in health.events
        ],
        hide_index=True,
        width="stretch",
    )

st.subheader("Impact")
impact = st.columns(3)
for column, title, amounts in (
    (impact[0], "Daily budget under automation", health.budget_under_automation),
    (impact[1], "Spend saved by pauses", health.spend_saved),
    (impact[2], "Revenue change after scaling (7 days)", health.revenue_change_after_scaling),
):
    column.metric(title, " · ".join(format_money(v, c) for c, v in amounts.items()) or "—")
