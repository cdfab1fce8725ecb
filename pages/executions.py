"""Executions: what each rule run saw and did — the trace, the actions, rollbacks."""

from datetime import timedelta

import streamlit as st

from core.accounts import list_accounts
from core.actions.rollback import RollbackRefused, rollback
from core.actions.settle import settle_by_person
from core.activity import (
    execution_detail,
    list_executions,
    recent_actions,
    trace_rows,
    why_not,
)
from core.db.types import utcnow
from core.errors import RexError
from core.rules.store import list_rules

st.title("Executions")
flash = st.session_state.pop("executions_flash", None)
if flash:
    st.success(flash)

rules = {rule.id: rule.name for rule in list_rules()}
if not rules:
    st.info(
        "No rule has been saved yet, so nothing has run. Import one with "
        "`python -m core rules import FILE` — or run `make run` and add a rule to the sandbox."
    )
    st.stop()

left, account_col, middle, right = st.columns(4)
account_ids = [a.external_id for a in list_accounts()]
account = account_col.selectbox(
    "Account",
    [None, *account_ids],
    format_func=lambda a: a or "All accounts",
    key="executions_account",
)
rule_id = left.selectbox(
    "Rule", [None, *rules], format_func=lambda i: rules.get(i, "All rules"), key="executions_rule"
)
status = middle.selectbox(
    "Status",
    [None, "succeeded", "partial", "failed", "skipped", "running"],
    format_func=lambda s: s or "Any status",
    key="executions_status",
)
days = right.number_input("Days back", min_value=1, max_value=90, value=7, key="executions_days")
runs = list_executions(
    rule_id=rule_id, account=account, status=status, since=utcnow() - timedelta(days=days)
)

runs_tab, history_tab, failures_tab, why_tab = st.tabs(
    ["Runs", "Actions (24 h)", "Failures (7 days)", "Why didn't my rule run?"]
)
with runs_tab:
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
                    "Checked": r.entities_checked,
                    "Matched": r.entities_matched,
                    "Acted": r.actions_taken,
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
            r.id: f"#{r.id} · {r.rule_name} · {r.started_at:%Y-%m-%d %H:%M} · {r.status}"
            for r in runs
        }
        chosen = st.selectbox(
            "Open run", list(labels), format_func=labels.get, key="executions_open"
        )
        detail = execution_detail(chosen)
        for reason in detail.stale.values():
            st.warning(reason)
        st.subheader("Trace")
        st.dataframe(trace_rows(detail.candidates), hide_index=True, width="stretch")
        st.subheader("Actions")
        skipped = [s for s in detail.steps if s.get("reason")]
        if skipped:
            st.dataframe(
                [
                    {"Entity": s["name"], "Action": s["action"], "Skipped because": s["reason"]}
                    for s in skipped
                ],
                hide_index=True,
                width="stretch",
            )
        for action in detail.actions:
            line = (
                f"**{action.entity_name}** · {action.action_type} · "
                f"{action.old_value or '—'} → {action.new_value or '—'} · {action.status}"
            )
            cols = st.columns([5, 1])
            cols[0].markdown(line)
            if action.error_message:
                cols[0].error(action.error_message)
            if action.settled:
                cols[0].caption(f"Settled by reading Meta — {action.settled}")
            if action.needs_person:
                cols[0].caption(
                    "Rex cannot tell whether Meta applied this change and holds further changes "
                    "to the entity. Check it in Ads Manager, then say what you found."
                )
                for applied, label in ((True, "It was applied"), (False, "It was not applied")):
                    if cols[1].button(label, key=f"settle_{action.id}_{int(applied)}"):
                        settle_by_person(action.id, applied=applied, by="ui")
                        verdict = "applied" if applied else "not applied"
                        st.session_state["executions_flash"] = f"Action #{action.id}: {verdict}"
                        st.rerun()
            if action.can_rollback and cols[1].button("Roll back", key=f"rollback_{action.id}"):
                try:
                    undo = rollback(action.id, by="ui")
                except RollbackRefused as refusal:
                    st.error(f"Not rolled back: {refusal}")
                except RexError as error:
                    st.error(str(error))
                else:
                    st.session_state["executions_flash"] = (
                        f"Rolled back {action.entity_name}: {undo.old_value} → {undo.new_value}"
                    )
                    st.rerun()
with history_tab:
    actions = recent_actions(hours=24)
    st.dataframe(
        [
            {
                "Time (UTC)": f"{a.created_at:%Y-%m-%d %H:%M}",
                "Rule": a.rule_name,
                "Entity": a.entity_name,
                "Action": a.action_type,
                "Old": a.old_value,
                "New": a.new_value,
                "Status": a.status,
            }
            for a in actions
        ],
        hide_index=True,
        width="stretch",
    )
with failures_tab:
    failures = recent_actions(hours=24 * 7, status="failed")
    if not failures:
        st.success("No failed actions in the last 7 days.")
    for a in failures:
        st.error(
            f"{a.created_at:%Y-%m-%d %H:%M} UTC · {a.rule_name} · {a.entity_name} · "
            f"{a.action_type}: {a.error_message}"
        )
with why_tab:
    asked = st.selectbox("Rule", list(rules), format_func=rules.get, key="executions_why")
    for reason in why_not(asked):
        st.markdown(f"- {reason}")
