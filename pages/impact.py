"""Impact: what the applied changes did — against what would have happened anyway."""

import plotly.graph_objects as go
import streamlit as st

from core.access.roles import Permission
from core.outcomes.record import HEADLINE, SETTLE_DAYS
from core.settings import get_settings
from core.views.breakdowns import PLOTLY_OFFLINE_CONFIG
from core.views.outcomes import MIN_RULE_OUTCOMES, effect_words, impact
from pages._notices import connected_accounts, show_notices
from pages._signin import signed_in

actor = signed_in(Permission.READ)
st.title("Impact")
show_notices()
accounts = connected_accounts(actor)
labels = {"": "All accounts", **{a.external_id: f"{a.name} · {a.external_id}" for a in accounts}}
account = st.selectbox("Ad account", list(labels), format_func=labels.get, key="impact_account")
view = impact(actor=actor, account=account or None)

st.caption(
    f"Every applied suggestion and every rule action that changed delivery is measured "
    f"{', '.join(map(str, get_settings().checkpoint_days))} days after it, once those days' "
    "conversions have "
    f"settled ({SETTLE_DAYS} more days), against the account's ad sets that were not "
    "changed over the same days (difference in differences). The figures here are the "
    f"{HEADLINE}-day checkpoint's, with their 90 % intervals; an interval that spans zero "
    "is not enough evidence either way."
)
if not view.outcomes:
    st.info(
        "Nothing measured yet: outcomes start when a suggestion is applied or a rule acts, "
        f"and the first checkpoint comes {1 + SETTLE_DAYS} days later. On the sandbox, move "
        "its clock on from the **Accounts** page, sync, and run `python -m core outcomes "
        "update` (the scheduler does it daily)."
    )
    st.stop()

st.subheader("By kind of change")
rows = []
for k in view.kinds:
    learned = "—"
    if k.learned is not None:
        rate, low, high, n = k.learned
        learned = f"{rate:.0%} ({low:.0%}–{high:.0%}, {n} outcomes; prior {k.prior:.0%})"
    rows.append({
        "Kind": k.kind, "From": k.source, "Measured": k.measured, "Improved": k.improving,
        "Did not": k.not_improving, "Not enough evidence": k.unclear,
        "No estimate": k.without_estimate, "Waiting": k.waiting,
        "Win rate": f"{k.improving / k.measured:.0%}" if k.measured else "—",
        f"Profit effect, {HEADLINE} days (90 %)": effect_words(k.profit, k.currency),
        "Confidence learned": learned,
    })  # fmt: skip
st.dataframe(rows, hide_index=True, width="stretch")

if view.rules:
    st.subheader("By rule")
    by_rule = []
    for r in view.rules:
        chance = f"after {MIN_RULE_OUTCOMES} outcomes"
        if r.learned is not None:
            chance = f"{r.learned[0]:.0%} ({r.learned[1]:.0%}–{r.learned[2]:.0%})"
        by_rule.append({
            "Rule": r.rule_name, "Measured": r.measured, "Improved": r.improving,
            "Win rate": f"{r.improving / r.measured:.0%}",
            f"Profit effect, {HEADLINE} days (90 %)": effect_words(r.profit, r.currency),
            "Chance it improves (learned)": chance,
        })  # fmt: skip
    st.dataframe(by_rule, hide_index=True, width="stretch")

for currency in view.currencies:  # one chart per currency: amounts on one axis
    charted = [k for k in view.kinds if k.profit is not None and k.currency == currency]
    if not charted:
        continue
    figure = go.Figure(
        go.Bar(
            x=[f"{k.kind} ({k.source})" for k in charted],
            y=[k.profit[0] for k in charted if k.profit],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [k.profit[2] - k.profit[0] for k in charted if k.profit],
                "arrayminus": [k.profit[0] - k.profit[1] for k in charted if k.profit],
            },
            marker_color=[  # green: credibly up; red: credibly down; grey: unclear
                "#2e7d32" if k.profit[1] > 0 else "#c62828" if k.profit[2] < 0 else "#9e9e9e"
                for k in charted
                if k.profit
            ],
        )  # fmt: skip
    )
    figure.update_layout(
        title=f"Profit effect over the {HEADLINE} days after, summed per kind (90 %) · {currency}",
        yaxis_title=f"effect on profit ({currency})", height=360,
    )  # fmt: skip
    st.plotly_chart(figure, width="stretch", config=PLOTLY_OFFLINE_CONFIG)

st.subheader("Calibration of the stated confidence")
if view.calibration:
    diagram = go.Figure()
    diagram.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                                 line={"dash": "dot", "color": "#9e9e9e"}))  # fmt: skip
    diagram.add_trace(go.Scatter(
        x=[s for s, _, _ in view.calibration], y=[o for _, o, _ in view.calibration],
        mode="markers+lines", name="measured", text=[f"{n} outcomes" for *_, n in view.calibration],
        marker={"size": [8 + 2 * n for *_, n in view.calibration]},
    ))  # fmt: skip
    diagram.update_layout(xaxis_title="confidence stated", yaxis_title="share that improved",
                          xaxis_range=[0, 1], yaxis_range=[0, 1], height=380)  # fmt: skip
    st.plotly_chart(diagram, width="stretch", config=PLOTLY_OFFLINE_CONFIG)
    st.caption(
        f"Expected calibration error {view.calibration_error:.3f} — the gap between the "
        "confidence suggestions stated and the measured probability that they improved "
        "profit, weighted by how many fell in each bin."
    )
else:
    st.info("No applied suggestion has a 7-day outcome yet: calibration needs some.")

st.subheader("Every measured change")
table = []
for o in view.outcomes:
    week = o.checkpoints.get(HEADLINE)
    profit = (week.effects or {}).get("profit") if week else None
    table.append({
        "Changed on": o.changed_on, "Kind": o.kind, "Entity": o.entity_name,
        "Account": o.account_id, "Action": o.action_id, "Suggestion": o.suggestion_id,
        "Checkpoints": ", ".join(f"{d} d" for d in sorted(o.checkpoints)) or "waiting",
        f"{HEADLINE}-day verdict": week.verdict if week else "waiting",
        "Profit effect (90 %)": effect_words(profit, o.currency),
        "Learning phase": "yes" if week and week.learning else "",
        "Compared with": (f"{week.comparison['entities']} unchanged"
                          if week and week.comparison else (week.reason if week else "")),
    })  # fmt: skip
st.dataframe(table, hide_index=True, width="stretch")
