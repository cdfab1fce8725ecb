"""Executions: the activity feed across rules (undo, settle, Ads Manager), what each rule
run saw and did, failures, and why a rule did not run."""

from datetime import timedelta

import streamlit as st

from core.access.roles import Permission
from core.accounts import readable_accounts
from core.actions.rollback import rollback
from core.actions.settle import settle_by_person
from core.db.types import utcnow
from core.enums import ActionStatus, ExecutionStatus
from core.rules.store import list_rules
from core.views.activity import (
    ActionRow,
    activity_feed,
    execution_detail,
    list_executions,
    recent_actions,
    trace_rows,
    why_not,
)
from pages._notices import act, show_notices
from pages._signin import session_actor, signed_in

PAGE = "activity_page"


def _settle(action_id: int, applied: bool) -> None:
    verdict = "applied" if applied else "not applied"
    act(lambda: settle_by_person(action_id, applied=applied, by=session_actor()),
        done=f"Action #{action_id}: {verdict}")  # fmt: skip


def _undo(action: ActionRow) -> None:
    act(lambda: rollback(action.id, by=session_actor()),
        done=lambda undo: f"Rolled back {action.entity_name} ({action.account}): "
        f"{undo.old_value} → {undo.new_value}")  # fmt: skip


def _first_page() -> None:
    st.session_state[PAGE] = 1


def _action(action: ActionRow, keys: str) -> None:
    """One action: when, where, what, its outcome in words, and what a person can do —
    "It was applied / It was not applied" for an outcome only a person can tell, and
    undo where possible. `keys`: "run" (rollback_{id}, settle_{id}_…) or "feed"
    (undo_{id}, feed_settle_{id}_…), so one action can be shown in both places."""
    entity = action.entity_name or "—"
    if action.ads_manager_url:
        entity = f"[{entity}]({action.ads_manager_url})"
    line = (
        f"{action.created_at:%Y-%m-%d %H:%M} UTC · {action.account} · "
        f"{action.rule_name or 'no rule'} · **{entity}** · {action.action} "
        f"{action.old_value or '—'} → {action.new_value or '—'} · {action.outcome}"
    )
    text, buttons = st.columns([5, 1])
    (text.warning if action.status == ActionStatus.UNKNOWN else text.markdown)(line)
    if action.error_message:
        text.error(action.error_message)
    if action.settled:
        text.caption(f"Settled by reading Meta — {action.settled}")
    if action.measured:
        text.caption(f"What it did: {action.measured} (against what would have happened "
                     "anyway — Insights → Impact)")  # fmt: skip
    if action.needs_person:
        text.caption(
            "Rex cannot tell whether Meta applied this change and holds further changes to "
            "the entity. Check it in Ads Manager, then say what you found."
        )
        settle_key = "settle" if keys == "run" else "feed_settle"
        for applied, label in ((True, "It was applied"), (False, "It was not applied")):
            buttons.button(label, key=f"{settle_key}_{action.id}_{int(applied)}",
                           on_click=_settle, args=(action.id, applied))  # fmt: skip
    if action.can_rollback:
        buttons.button(
            "Roll back" if keys == "run" else "Undo",
            key=f"{'rollback' if keys == 'run' else 'undo'}_{action.id}",
            on_click=_undo,
            args=(action,),
        )


actor = signed_in(Permission.READ)
st.title("Executions")
show_notices()

rules = {rule.id: rule.name for rule in list_rules(actor=actor, include_deleted=True)}
if not rules:
    st.info("No rule has been saved yet, so nothing has run.")
    st.page_link("pages/rules.py", label="Build one in the Rules page's Builder",
                 icon=":material/rule:")  # fmt: skip
    st.stop()

rule_col, account_col = st.columns(2)
accounts = {a.external_id: f"{a.name} ({a.external_id})" for a in readable_accounts(actor)}
rule_id = rule_col.selectbox(
    "Rule",
    [None, *rules],
    format_func=lambda i: rules.get(i, "All rules"),
    key="executions_rule",
    on_change=_first_page,
)
account = account_col.selectbox(
    "Account",
    [None, *accounts],
    format_func=lambda a: accounts.get(a, a or "All accounts"),
    key="executions_account",
    on_change=_first_page,
)

feed_tab, runs_tab, failures_tab, why_tab = st.tabs(
    ["Activity", "Runs", "Failures (7 days)", "Why didn't my rule run?"]
)
with feed_tab:
    recent = st.toggle("Last 24 hours only", key="activity_24h", on_change=_first_page)
    feed = activity_feed(
        actor=actor,
        account=account,
        rule_id=rule_id,
        since=utcnow() - timedelta(hours=24) if recent else None,
        page=st.session_state.get(PAGE, 1),
    )
    if not feed.rows:
        st.info("No actions yet for these filters: they appear here as rules act.")
    else:
        st.caption(
            f"{feed.total} action(s), newest first · page {feed.page} of {feed.pages}. "
            "Entity names open the entity in Ads Manager (not for sandbox accounts)."
        )
        for action in feed.rows:
            _action(action, "feed")
    if feed.pages > 1:
        st.session_state[PAGE] = feed.page  # within range when the filters narrowed it
        st.number_input("Page", min_value=1, max_value=feed.pages, key=PAGE)

with runs_tab:
    status_col, days_col = st.columns(2)
    status = status_col.selectbox(
        "Status",
        [None, *ExecutionStatus],
        format_func=lambda s: s or "Any status",
        key="executions_status",
    )
    days = days_col.number_input(
        "Days back", min_value=1, max_value=90, value=7, key="executions_days"
    )
    runs = list_executions(
        actor=actor,
        rule_id=rule_id,
        account=account,
        status=status,
        since=utcnow() - timedelta(days=days),
    )
    if not runs:
        st.info("No runs match these filters.")
    else:
        st.dataframe(
            [
                {
                    "ID": r.id,
                    "Rule": r.rule_name,
                    "Started (UTC)": f"{r.started_at:%Y-%m-%d %H:%M}",
                    "Status": r.status,
                    "Outcome": r.outcome,
                    "Checked": r.entities_checked,
                    "Matched": r.entities_matched,
                    "Acted": r.actions_taken,
                    "Queued for approval": r.actions_queued,
                    "Would act (dry run)": r.actions_would,
                    "Skipped": r.actions_skipped,
                    "ms": r.duration_ms,
                    "Error": r.error or "",
                }
                for r in runs
            ],
            hide_index=True,
            width="stretch",
        )
        labels = {
            r.id: f"#{r.id} · {r.rule_name} · {r.started_at:%Y-%m-%d %H:%M} · {r.outcome}"
            for r in runs
        }
        chosen = st.selectbox(
            "Open run", list(labels), format_func=labels.get, key="executions_open"
        )
        detail = execution_detail(chosen, actor=actor)
        for reason in detail.stale.values():
            st.warning(reason)
        st.subheader("Trace")
        st.dataframe(trace_rows(detail.candidates), hide_index=True, width="stretch")
        if detail.not_kept:
            st.caption(
                f"{detail.not_kept:,} more candidates are not shown: a run keeps the entities "
                "it planned on and a sample of the others."
            )
        st.subheader("Actions")
        if detail.skipped:
            st.dataframe(
                [
                    {
                        "Account": s.account,
                        "Entity": s.entity_name,
                        "Action": s.action,
                        "Skipped because": s.reason,
                    }
                    for s in detail.skipped
                ],
                hide_index=True,
                width="stretch",
            )
        for action in detail.actions:
            _action(action, "run")

with failures_tab:
    failures = recent_actions(actor=actor, hours=24 * 7, status=ActionStatus.FAILED)
    if not failures:
        st.success("No failed actions in the last 7 days.")
    for a in failures:
        st.error(
            f"{a.created_at:%Y-%m-%d %H:%M} UTC · {a.account} · {a.rule_name} · "
            f"{a.entity_name} · {a.action}: {a.error_message}"
        )

with why_tab:
    asked = st.selectbox("Rule", list(rules), format_func=rules.get, key="executions_why")
    for reason in why_not(asked, actor=actor):
        st.markdown(f"- {reason}")
