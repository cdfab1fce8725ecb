"""Suggestions: what the breakdowns say to change, by expected weekly impact — the evidence
as a chart, the change proposed (or why Rex cannot make it), Apply or Dismiss by id."""

from typing import Any

import plotly.graph_objects as go
import streamlit as st

from core.access.roles import Permission
from core.db.types import utcnow
from core.enums import SuggestionStatus
from core.errors import InputError, RexError
from core.labels import hour_name
from core.suggestions.apply import apply_suggestion
from core.suggestions.generate import generate
from core.suggestions.records import dismiss
from core.views.suggestions import KINDS, SuggestionView, get_suggestion, list_suggestions
from pages._notices import connected_accounts, notify, show_notices
from pages._signin import session_actor, signed_in

KIND_WORDS = {
    "demographic": "Age and gender",
    "placement": "Placement",
    "geography": "Geography",
    "dayparting": "Hours of day",
    "budget": "Budget",
}
STATUSES = ("open", "applied", "dismissed", "expired", "superseded", "all")
CONFIDENCE = "chance it improves profit over the next 7 days, counting Meta's learning phase"
PER_PAGE = 10  # each card draws a chart: more at once makes the browser slow


def _count(ids: list[int], words: str) -> str | None:
    return f"{len(ids)} {words}" if ids else None


def _find(account: str | None) -> None:
    """Generate with a progress bar, then say in words what changed on the record."""
    bar = st.progress(0.0, text="Reading the breakdowns…")

    def show(done: int, of: int, name: str) -> None:
        bar.progress(done / max(of, 1), text=f"{name}: looking for patterns" if name else "Done")

    try:
        result = generate(
            account,
            by=session_actor(),
            progress=show,
        )
    except RexError as error:
        notify("error", str(error))
        return
    total = result.total
    parts = [
        _count(total.new, "new"),
        _count(total.refreshed, "refreshed"),
        _count(total.superseded, "superseded"),
        _count(total.expired, "expired"),
        _count(total.still_dismissed, "still dismissed"),
        _count(total.already_applied, "already applied"),
    ]
    said = ", ".join(p for p in parts if p) or "nothing found"
    notify("success", f"Looked at {len(result.accounts)} account(s): {said}.")
    for skipped, why in result.skipped.items():
        notify("warning", f"{skipped} was not looked at: {why}")


def _apply(suggestion: SuggestionView) -> None:
    try:
        done = apply_suggestion(suggestion.id, by=session_actor())
    except RexError as error:
        notify("error", f"#{suggestion.id} {suggestion.title}: {error}")
        return
    if done.status == SuggestionStatus.APPLIED:
        notify("success", f"#{suggestion.id} applied: {done.message}")
    elif done.status == SuggestionStatus.QUEUED:
        notify("info", f"#{suggestion.id} {done.message}: decide it on the Approvals page.")
    else:
        notify(
            "warning",
            f"#{suggestion.id} is still open: {done.message}. Try again, or "
            "dismiss it with a reason.",
        )


def _dismiss(suggestion: SuggestionView) -> None:
    reason = st.session_state.get(f"dismiss_reason_{suggestion.id}", "")
    try:
        dismiss(suggestion.id, reason, by=session_actor(), now=utcnow())
    except InputError as error:
        notify("error", f"**Reason** (#{suggestion.id}): {error.problem}")
        return
    except RexError as error:
        notify("error", str(error))
        return
    notify("success", f"#{suggestion.id} dismissed: {reason.strip()}")


def _interval(cost: dict[str, float]) -> dict[str, Any]:
    return {
        "type": "data",
        "symmetric": False,
        "array": [cost["high"] - cost["estimate"]],
        "arrayminus": [cost["estimate"] - cost["low"]],
    }


SEGMENT, REST = "#0068c9", "#83c9ff"  # the segment (or donor) against the rest, everywhere


def _bars(
    figure: go.Figure, name: str, interval: dict[str, float] | None, hover: str, colour: str
) -> None:
    if interval:
        figure.add_bar(
            x=[name],
            y=[interval["estimate"]],
            error_y=_interval(interval),
            name=name,
            marker_color=colour,
            hovertemplate=f"{name}: {hover}<extra></extra>",
        )


def _capital(words: str) -> str:
    return words[:1].upper() + words[1:]


def evidence_chart(s: SuggestionView) -> go.Figure | None:
    """The segment against the rest with their 90 % intervals — cost per purchase (click)
    in the currency; each left-out hour for dayparting; marginal ROAS for a budget shift."""
    evidence, figure = s.evidence, go.Figure()
    if s.kind == "budget":
        names = [step.get("entity_name") for step in (s.action or {}).get("steps", [])]
        donor, recipient = ([*names, None, None])[:2]
        roas = "%{y:.2f} per unit spent"
        _bars(
            figure,
            f"From: {donor or 'donor'}",
            (evidence.get("donor") or {}).get("marginal_roas"),
            roas,
            SEGMENT,
        )
        _bars(
            figure,
            f"To: {recipient or 'recipient'}",
            (evidence.get("recipient") or {}).get("marginal_roas"),
            roas,
            REST,
        )
        figure.add_hline(y=1, line_dash="dot", annotation_text="break-even")
        title = f"Revenue of the next 1 {s.currency} spent (marginal ROAS)"
    else:
        money = f"%{{y:,.2f}} {s.currency}"
        hourly = evidence.get("hourly") or []
        for number, hour in enumerate(hourly, start=1):  # each left-out hour, in order
            label = hour_name(hour["hour"]) if "hour" in hour else f"left-out hour {number}"
            _bars(figure, label, (hour.get("segment") or {}).get("cost"), money, SEGMENT)
        if not hourly:
            _bars(
                figure,
                _capital(s.segment_words) or "Segment",
                (evidence.get("segment") or {}).get("cost"),
                money,
                SEGMENT,
            )
        rest = ((hourly[0] if hourly else evidence).get("rest") or {}).get("cost")
        _bars(figure, "Other hours" if hourly else "Rest of the ad set", rest, money, REST)
        title = f"{_capital(str(evidence.get('measure') or 'cost'))} ({s.currency})"
    if not figure.data:
        return None
    figure.update_layout(
        height=280,
        showlegend=False,
        yaxis={"title": title, "rangemode": "tozero"},
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
    return figure


def _numbers(s: SuggestionView) -> str:
    """The sums behind the chart, in words."""
    if s.kind == "budget":
        return " · ".join(
            f"{k}: {v.get('days') or 0} days, {v.get('purchases') or 0} purchases, "
            f"spends {v.get('spend_now') or 0:,.2f} {s.currency} a day"
            for k in ("donor", "recipient")
            if (v := s.evidence.get(k) or {})
        )
    counted = "purchases" if s.evidence.get("basis") == "purchases" else "clicks"
    hours = s.kind == "dayparting"
    segment = "Hours left out" if hours else _capital(s.segment_words) or "The segment"
    sides = [("segment", segment), ("rest", "other hours" if hours else "the rest of the ad set")]
    said = [
        f"{name}: {s.money(side.get('spend_minor'))} spent, {side.get(counted)} {counted}"
        for key, name in sides
        if (side := s.evidence.get(key))
    ]
    return " · ".join([*said, f"{(s.evidence.get('period') or {}).get('days', '?')} days"])


def _record(s: SuggestionView) -> None:
    if s.status == SuggestionStatus.APPLIED and (s.action or {}).get("type") == "create_rules":
        st.success(f"Applied: {s.reason}")  # the rules it made, in Test first mode
        st.page_link("pages/rules.py", label="Open Rules", icon=":material/rule:")
    elif s.status == SuggestionStatus.APPLIED and s.action_id:
        st.success(
            f"Applied as action #{s.action_id}. Its record, and the rollback to the "
            "previous setting, are on the Executions page."
        )
        if s.measured:
            st.info(f"What it did: {s.measured}.")
        st.page_link("pages/executions.py", label="Open Executions", icon=":material/history:")
    elif s.status == SuggestionStatus.QUEUED:
        st.info(f"Waiting in the approval queue (proposal #{s.approval_id}).")
        st.page_link("pages/approvals.py", label="Open Approvals", icon=":material/fact_check:")
    elif s.reason and s.status != SuggestionStatus.NEW:
        st.caption(f"{s.status.value.capitalize()}: {s.reason}")
    events = get_suggestion(s.id, actor=actor).events
    if events:
        st.dataframe(
            [
                {
                    "At (UTC)": f"{e.at:%Y-%m-%d %H:%M}",
                    "From": e.previous or "—",
                    "To": e.status,
                    "By": e.by,
                    "Reason": e.reason or "",
                }
                for e in events
            ],
            hide_index=True,
            width="stretch",
            key=f"events_{s.id}",
        )


def card(s: SuggestionView, first: bool) -> None:
    with st.expander(f"**{s.title}** · {s.weekly_words}", expanded=first):
        st.caption(
            f"#{s.id} · {KIND_WORDS.get(s.kind, s.kind)} · ad set {s.entity_name or '—'} "
            f"({s.entity_id or '—'}) · {s.account} · {s.status.value}"
        )
        profit, confidence, payback = st.columns(3)
        estimate = s.weekly_profit_minor[0] if s.weekly_profit_minor else None
        profit.metric("Expected weekly profit", s.money(estimate))
        if s.weekly_profit_minor:
            low, high = (s.money(m) for m in s.weekly_profit_minor[1:])
            profit.caption(f"90 % interval: {low} to {high}")
        confidence.metric("Confidence", "—" if s.confidence is None else f"{s.confidence:.0%}")
        longer = s.confidence_28_days
        confidence.caption(CONFIDENCE + ("" if longer is None else f"; over 4 weeks: {longer:.0%}"))
        if s.payback_days is not None:
            payback.metric("Pays back in", f"{s.payback_days:.0f} days")
            payback.caption(f"the learning phase costs about {s.money(s.learning_cost_minor)}")
        st.markdown(s.why)
        chart = evidence_chart(s)
        if chart is not None:
            st.plotly_chart(chart, width="stretch", key=f"evidence_{s.id}")
            st.caption(f"90 % intervals · {_numbers(s)}")
        if s.action:
            st.markdown(
                f"**Proposed change:** {s.action.get('summary')}  \n"
                f"{s.action.get('old') or '—'} → **{s.action.get('new') or '—'}**"
            )
        elif s.not_applicable:
            st.info(f"Cannot be applied from Rex: {s.not_applicable}")
        if s.status == SuggestionStatus.NEW:
            apply_col, reason_col, dismiss_col = st.columns([1, 4, 1], vertical_alignment="bottom")
            if s.can_apply:
                apply_col.button(
                    "Apply", key=f"apply_{s.id}", type="primary", on_click=_apply, args=(s,)
                )
            reason_col.text_input(
                "Reason to dismiss",
                key=f"dismiss_reason_{s.id}",
                placeholder="e.g. we sell to 55+ in store",
            )
            dismiss_col.button("Dismiss", key=f"dismiss_{s.id}", on_click=_dismiss, args=(s,))
        _record(s)


actor = signed_in(Permission.READ)
st.title("Suggestions")
show_notices()
accounts = connected_accounts(actor)

names = {a.external_id: f"{a.name} · {a.external_id} · {a.currency}" for a in accounts}
top = st.columns([3, 2, 2])
account = top[0].selectbox(
    "Ad account",
    [None, *names],
    key="suggestions_account",
    format_func=lambda a: "All accounts" if a is None else names[a],
)
kind = top[1].selectbox(
    "Kind",
    [None, *KINDS],
    key="suggestions_kind",
    format_func=lambda k: "All kinds" if k is None else KIND_WORDS[k],
)
status = top[2].selectbox("Status", STATUSES, key="suggestions_status", format_func=str.capitalize)
st.button(
    "Find suggestions now",
    key="suggestions_find",
    on_click=_find,
    args=(account,),
    help="Reads the synced breakdowns of the last 28 whole days (all accounts, or the "
    "one chosen) and brings the list up to date.",
)

found = list_suggestions(actor=actor, status=status, account=account, kind=kind)
if not found:
    st.info(
        f"No {'' if status == 'all' else status + ' '}suggestions here. Rex looks at the "
        "synced breakdowns once a day; **Find suggestions now** looks at them at once "
        "(sync the account first on the Accounts page)."
    )
    st.stop()
pages = -(-len(found) // PER_PAGE)
page = 1
if pages > 1:
    page = int(
        st.columns(6)[0].number_input(f"Page (of {pages})", 1, pages, key="suggestions_page")
    )
st.caption(
    f"{len(found)} suggestion(s), by expected weekly profit (highest first within each "
    "currency: Rex keeps no exchange rates)."
)
for index, suggestion in enumerate(found[(page - 1) * PER_PAGE : page * PER_PAGE]):
    card(suggestion, first=index == 0 and page == 1)
