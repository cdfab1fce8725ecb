"""Health: does automation work, is the scheduler alive, and what has it changed."""

import streamlit as st

from core.access.roles import Permission
from core.enums import DeliveryStatus
from core.labels import format_duration, format_share, format_time
from core.notify.deliver import retry
from core.notify.inbox import outbox_health
from core.outcomes.record import HEADLINE
from core.views.health import IMPACT_DAYS, amounts, effects, system_health
from pages._notices import act, show_notices
from pages._signin import session_actor, signed_in

actor = signed_in(Permission.READ)
st.title("Health")
show_notices()
health = system_health(actor=actor, days=7)

st.subheader("Last 7 days")
cols = st.columns(4)
cols[0].metric(
    "Rule success rate",
    format_share(health.rule_success_rate),
    help="Runs that succeeded, of the runs of the last 7 days that were evaluated.",
)
cols[1].metric(
    "Average execution",
    format_duration(health.average_execution_ms),
    help="Average time of a rule's run (evaluation and actions), last 7 days.",
)
cols[2].metric(
    "Action success rate",
    format_share(health.action_success_rate),
    help="Writes Meta confirmed, of the writes sent in the last 7 days.",
)
cols[3].metric(
    "API error rate",
    format_share(health.api_error_rate),
    help="Failed syncs and writes, of all Graph work of the last 7 days.",
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
        f"{format_time(max(s.last_tick_at for s in live))}"
    )
else:
    last = health.schedulers[0]
    st.error(
        "No scheduler is alive: rules are not running. Last seen "
        + (format_time(last.last_tick_at) if last.last_tick_at else "never")
        + f" on {last.host} (pid {last.pid}). Start `python -m core.scheduler`."
    )
if health.schedulers:
    st.dataframe(
        [
            {
                "Job": run.job,
                "Last run": format_time(run.last_run_at),
                "Outcome": run.outcome,
                "Took": format_duration(run.duration_ms),
            }
            for run in health.schedulers[0].job_runs
        ],
        hide_index=True,
        width="stretch",
    )
if health.events:
    st.caption("Job errors and missed runs")
    st.dataframe(
        [
            {"At": format_time(e.at), "Job": e.job, "Kind": e.kind, "Message": e.message}
            for e in health.events
        ],
        hide_index=True,
        width="stretch",
    )


st.subheader("Impact")
impact = st.columns(3)
impact[0].metric(
    "Daily budget under automation",
    amounts(health.budget_under_automation) or "none",
    help="Now, per currency: the daily budgets of the delivering campaigns and ad sets "
    "that an active rule (not in dry run) can pause, resume or re-budget — the entities "
    "in its scope, as a run chooses them.",
)
impact[0].caption(
    f"{health.entities_under_automation} delivering entities with a daily budget"
    if health.entities_under_automation
    else "No active rule can change a delivering entity's budget or status."
)


def measured(column, label: str, effect, profit, counted, nothing: str, what: str, help: str):  # type: ignore[no-untyped-def]
    """A measured impact figure: the summed effect, its interval, the profit effect, and
    what it counts."""
    column.metric(label, effects(effect) or counted.empty_words(nothing), help=help)
    if effect:
        column.caption(f"90 %: {effects(effect, interval=True)}")
        column.caption(f"Profit effect: {effects(profit, interval=True)}")
    if counted.words(what):
        column.caption(counted.words(what))


measured(
    impact[1], f"Spend saved by pauses ({IMPACT_DAYS} days)", health.spend_saved,
    health.profit_after_pauses, health.pauses, "no pauses", "pause(s)",
    help=f"For each pause Rex made in the last {IMPACT_DAYS} days: its estimated effect on "
    f"the entity's spend over the {HEADLINE} days after it, against what it would have "
    "spent anyway (from the account's entities Rex did not change), summed; 90 % interval "
    "below, with the effect on profit (a pause also loses the revenue it bought).",
)  # fmt: skip
measured(
    impact[2], f"Revenue change after budget raises ({IMPACT_DAYS} days)",
    health.revenue_change_after_scaling, health.profit_after_scaling, health.raises,
    "no budget raises", "raise(s)",
    help=f"For each budget raise Rex made in the last {IMPACT_DAYS} days: its estimated "
    f"effect on the entity's revenue over the {HEADLINE} days after it, against what it "
    "would have done anyway (from the account's entities Rex did not change), summed; 90 % "
    "interval below, with the effect on profit.",
)  # fmt: skip


STATUS_WORDS = {  # a delivery's status on screen, and what it counts
    DeliveryStatus.SENT: ("Sent", "that the receiver accepted"),
    DeliveryStatus.PENDING: ("Waiting", "waiting for quiet hours to end or for a retry"),
    DeliveryStatus.SENDING: ("Sending", "being sent now"),
    DeliveryStatus.FAILED: ("Failed", "refused for good, or failing after the last retry"),
    DeliveryStatus.UNKNOWN: ("May not have arrived", "whose sender stopped mid-send"),
    DeliveryStatus.SKIPPED: ("Skipped", "not sent: the person lost access or turned it off"),
}


def _send_again(delivery_ids: list[int]) -> None:
    act(retry, delivery_ids, by=session_actor(),
        done=lambda n: f"{n} deliveries queued to be sent again")  # fmt: skip


if actor.can(Permission.MANAGE_ACCOUNTS):
    st.subheader("Notifications")
    outbox = outbox_health(actor=actor, days=7)
    st.markdown(" · ".join(f"{label}: **{'set up' if ready else 'not set up'}**"
                           for label, ready in outbox.channels.items()))  # fmt: skip
    st.caption("E-mail: REX_SMTP_HOST; the team's Slack and webhook: REX_SLACK_WEBHOOK_URL "
               "and REX_WEBHOOK_URL. People add their own under Notifications.")  # fmt: skip
    counted = st.columns(len(outbox.counts))
    for column, (status, count) in zip(counted, outbox.counts.items(), strict=True):
        label, explains = STATUS_WORDS.get(status, (status.capitalize(), f"now {status}"))
        column.metric(label, count, help=f"Deliveries of the last 7 days {explains}.")
    if not outbox.troubled:
        st.caption("No delivery failed or was left unsure in the last 7 days.")
    else:
        st.dataframe(
            [{"Notification": title, "Channel": d.channel, "To": d.to, "Tries": d.attempts,
              "What happened": d.words} for title, d in outbox.troubled],
            hide_index=True, width="stretch",
        )  # fmt: skip
        st.button(
            f"Send again ({len(outbox.troubled)})", key="notify_send_again",
            on_click=_send_again, args=([d.id for _, d in outbox.troubled],),
            help="Queues these again at once. One that may have arrived can then arrive twice.",
        )  # fmt: skip
