"""Approvals: what rules proposed and a person must decide — by id, one or many."""

import streamlit as st

from core.actions.approvals import (
    ApprovalError,
    approve_many,
    expire_approvals,
    list_approvals,
    reject,
)
from core.errors import RexError

st.title("Approvals")
for message in st.session_state.pop("approvals_flash", []):
    if message.startswith("✗"):
        st.error(message)
    else:
        st.success(message)

expire_approvals()
pending = list_approvals()
queue_tab, history_tab = st.tabs([f"Queue ({len(pending)})", "History"])
with queue_tab:
    if not pending:
        st.info(
            "Nothing awaits approval. Rules with `require_approval` put their proposed "
            "changes here instead of sending them to Meta."
        )
    else:
        st.dataframe(
            [
                {
                    "ID": p.id,
                    "Entity": p.entity_name,
                    "Rule": p.rule_name,
                    "Action": p.action_type,
                    "Current → proposed": f"{p.old or '—'} → {p.new or '—'}",
                    "Why": ", ".join(
                        f"{k} {v}" for k, v in (p.justification or {}).get("values", {}).items()
                    ),
                    "Proposed (UTC)": f"{p.created_at:%Y-%m-%d %H:%M}",
                    "Expires (UTC)": f"{p.expires_at:%Y-%m-%d %H:%M}",
                }
                for p in pending
            ],
            hide_index=True,
            width="stretch",
        )
        labels = {p.id: f"#{p.id} · {p.entity_name} · {p.old} → {p.new}" for p in pending}
        chosen = st.multiselect(
            "Proposals", list(labels), format_func=labels.get, key="approvals_chosen"
        )
        who = st.text_input("Your name", key="approvals_by")
        reason = st.text_input("Reason (optional)", key="approvals_reason")
        approve_col, reject_col = st.columns(2)
        decide = None
        if approve_col.button("Approve selected", key="approvals_approve", disabled=not chosen):
            decide = "approve"
        if reject_col.button("Reject selected", key="approvals_reject", disabled=not chosen):
            decide = "reject"
        if decide:
            if not who.strip():
                st.error("**Your name**: say who decides — it is kept with the decision.")
            else:
                messages = []
                if decide == "approve":  # by id: the queue may have changed meanwhile
                    with st.spinner(f"Checking {len(chosen)} proposal(s) with Meta and applying…"):
                        decisions = approve_many(chosen, by=who, reason=reason or None)
                    for decision in decisions:
                        messages.append(
                            f"✗ #{decision.approval_id}: {decision.error}"
                            if decision.error
                            else f"#{decision.approval_id} {decision.view.status}"
                        )
                for approval_id in chosen if decide == "reject" else ():
                    try:
                        view = reject(approval_id, by=who, reason=reason or None)
                        messages.append(f"#{approval_id} {view.status}")
                    except (ApprovalError, RexError) as error:
                        messages.append(f"✗ #{approval_id}: {error}")
                st.session_state["approvals_flash"] = messages
                st.session_state.pop("approvals_chosen", None)
                st.rerun()
with history_tab:
    decided = [p for p in list_approvals(None) if p.status != "pending"]
    if not decided:
        st.info("No decisions yet.")
    else:
        st.dataframe(
            [
                {
                    "ID": p.id,
                    "Entity": p.entity_name,
                    "Action": p.action_type,
                    "Change": f"{p.old or '—'} → {p.new or '—'}",
                    "Status": p.status,
                    "By": p.decided_by,
                    "Reason": p.decision_reason or "",
                    "Decided (UTC)": f"{p.decided_at:%Y-%m-%d %H:%M}" if p.decided_at else "",
                }
                for p in decided
            ],
            hide_index=True,
            width="stretch",
        )
