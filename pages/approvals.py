"""Approvals: what rules proposed and a person must decide — per row, or several at once."""

import streamlit as st

from core.access.roles import Permission
from core.actions.approvals import (
    ApprovalView,
    approve_many,
    expire_approvals,
    list_approvals,
    reject_many,
)
from core.enums import ApprovalStatus
from core.errors import RexError
from core.rules.describe import LEVEL_NOUNS
from pages._notices import notify, show_notices
from pages._signin import session_actor, signed_in

CHOSEN = "approvals_chosen"


def _decide(ids: list[int], approve: bool) -> None:
    """A decision's callback: approve (re-read at Meta, then written) or reject, by id —
    the queue may have changed meanwhile. One notice per proposal, from core's result."""
    decide = approve_many if approve else reject_many
    try:
        result = decide(ids, by=session_actor(),
                        reason=st.session_state.get("approvals_reason") or None)  # fmt: skip
    except RexError as error:
        notify("error", str(error))
        return
    for decision in result:
        if decision.decided and decision.view is not None:
            notify("success", f"#{decision.approval_id} {decision.outcome}: "
                              f"{_proposal(decision.view)}")  # fmt: skip
        else:
            notify("error", f"#{decision.approval_id}: {decision.message}")
    # Keep the bulk selection to what is still undecided (set, never popped: the browser
    # is told, and does not send back a proposal that is gone).
    st.session_state[CHOSEN] = [i for i in st.session_state.get(CHOSEN, []) if i not in ids]


def _decide_chosen(approve: bool) -> None:
    _decide(list(st.session_state.get(CHOSEN, [])), approve)


def _select_all(ids: list[int]) -> None:
    st.session_state[CHOSEN] = ids


def _proposal(p: ApprovalView) -> str:
    change = f"{p.old or '—'} → {p.new or '—'}"
    return f"{p.entity_name or '—'} ({p.account}) · {p.action}: {change}"


def _row(p: ApprovalView) -> None:
    """One proposal: the account, the entity (linked to Ads Manager), current → proposed,
    the numbers that triggered it, and its own Approve / Reject."""
    with st.container(border=True):
        text, approve_col, reject_col = st.columns([6, 1, 1])
        entity = p.entity_name or "—"
        if p.ads_manager_url:
            entity = f"[{entity}]({p.ads_manager_url})"
        level = LEVEL_NOUNS.get(p.level, "entity") if p.level else "entity"
        text.markdown(
            f"**#{p.id} · {entity}** ({level} {p.entity_external_id or ''}) · {p.account}  \n"
            f"{p.action}: **{p.old or '—'} → {p.new or '—'}**"
        )
        text.caption(
            f"Why: {'; '.join(p.why) or 'the rule conditions held'}  \n"
            f"{p.rule_name or 'rule'} · proposed {p.created_at:%Y-%m-%d %H:%M} UTC · "
            f"expires {p.expires_at:%Y-%m-%d %H:%M} UTC"
        )
        approve_col.button("Approve", key=f"approve_{p.id}", on_click=_decide, args=([p.id], True))
        reject_col.button("Reject", key=f"reject_{p.id}", on_click=_decide, args=([p.id], False))


actor = signed_in(Permission.READ)
st.title("Approvals")
show_notices()

expire_approvals()
pending = list_approvals(actor=actor)
queue_tab, history_tab = st.tabs([f"Queue ({len(pending)})", "History"])
with queue_tab:
    if not pending:
        st.info(
            "Nothing awaits approval. Rules with `require_approval` put their proposed "
            "changes here instead of sending them to Meta."
        )
    else:
        st.text_input("Reason (optional)", key="approvals_reason",
                      help=f"Kept with each decision, with your name ({actor.email}).")  # fmt: skip
        for p in pending:
            _row(p)

        st.subheader("Decide several")
        labels = {p.id: f"#{p.id} · {_proposal(p)}" for p in pending}
        # What the browser sends back may name a proposal decided since: keep only those
        # still pending (before the widget is drawn, so this is allowed).
        if CHOSEN in st.session_state:
            st.session_state[CHOSEN] = [i for i in st.session_state[CHOSEN] if i in labels]
        chosen = st.multiselect(
            "Proposals",
            list(labels),
            format_func=lambda i: labels.get(i, str(i)),
            key=CHOSEN,
            select_all=False,  # no "Select all" entry among the proposals: a button below
        )
        all_col, approve_col, reject_col = st.columns(3)
        all_col.button(
            f"Select all {len(pending)}",
            key="approvals_select_all",
            on_click=_select_all,
            args=(list(labels),),
        )
        approve_col.button(
            "Approve selected",
            key="approvals_approve",
            disabled=not chosen,
            on_click=_decide_chosen,
            args=(True,),
        )
        reject_col.button(
            "Reject selected",
            key="approvals_reject",
            disabled=not chosen,
            on_click=_decide_chosen,
            args=(False,),
        )
with history_tab:
    decided = [p for p in list_approvals(None, actor=actor) if p.status != ApprovalStatus.PENDING]
    if not decided:
        st.info("No decisions yet.")
    else:
        st.dataframe(
            [
                {
                    "ID": p.id,
                    "Account": p.account,
                    "Entity": p.entity_name,
                    "Rule": p.rule_name,
                    "Action": p.action,
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
