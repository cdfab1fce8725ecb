"""Breakdowns: who, where and when — age × gender, placement × device, geography, hours."""

from datetime import timedelta

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from core.accounts import list_accounts
from core.breakdown_views import CHARTABLE, ISO3, WEEKDAYS, breakdown_view, segments_csv
from core.db.types import utcnow
from core.errors import InputError
from core.rules.metrics import METRICS
from core.rules.windows import local_today

st.title("Breakdowns")
accounts = list_accounts()
if not accounts:
    st.info(
        "No ad account is connected yet: connect one on the Accounts page, or run "
        "`make run` to try Rex on the sandbox."
    )
    st.stop()

labels = {a.id: f"{a.name} · {a.external_id} · {a.currency} · {a.timezone_name}" for a in accounts}
top = st.columns([3, 2, 2])
account_id = top[0].selectbox(
    "Ad account", list(labels), format_func=labels.get, key="breakdowns_account"
)
account = next(a for a in accounts if a.id == account_id)
metric = top[1].selectbox(
    "Metric",
    CHARTABLE,
    index=CHARTABLE.index("roas"),
    format_func=lambda m: METRICS[m].label,
    key="breakdowns_metric",
)
today = local_today(account.timezone_name, utcnow())
period = top[2].date_input(
    "Dates", (today - timedelta(days=29), today), max_value=today, key="breakdowns_dates"
)
if not isinstance(period, tuple) or len(period) != 2:
    st.info("Pick the last day of the range.")
    st.stop()
try:
    view = breakdown_view(account_id, metric=metric, since=period[0], until=period[1])
except InputError as error:
    st.error(f"**{error.field}**: {error.problem}")
    st.stop()

unit = METRICS[metric].unit
axis = f"{METRICS[metric].label}" + (f" ({account.currency})" if unit == "money" else "")
st.caption(
    f"{view.since:%b %d} – {view.until:%b %d, %Y} · {account.timezone_name} dates · "
    "undefined values (nothing spent, no clicks …) are left out"
)
if view.empty:
    st.info("No breakdown data in this range yet: sync the account (Accounts page).")
    st.stop()


def values(segments, *keys):  # type: ignore[no-untyped-def]
    return [
        {**{k: s.keys[k] for k in keys}, axis: float(s.value)}
        for s in segments
        if s.value is not None
    ]


left, right = st.columns(2)
left.subheader("Age × gender")
left.plotly_chart(
    px.bar(
        values(view.demographics, "age", "gender"),
        x="age",
        y=axis,
        color="gender",
        barmode="group",
        height=340,
    ),
    width="stretch",
)
left.download_button(
    "CSV", segments_csv(view.demographics, metric), "demographics.csv", key="csv_demographics"
)
right.subheader("Placement × device")
right.plotly_chart(
    px.bar(
        values(view.placements, "platform", "device"),
        x="platform",
        y=axis,
        color="device",
        barmode="group",
        height=340,
    ),
    width="stretch",
)
right.download_button(
    "CSV", segments_csv(view.placements, metric), "placements.csv", key="csv_placements"
)

st.subheader("Countries")
countries = [
    {"country": s.keys["country"], "iso3": ISO3.get(s.keys["country"]), axis: float(s.value)}
    for s in view.countries
    if s.value is not None
]
st.plotly_chart(
    px.choropleth(
        [c for c in countries if c["iso3"]],
        locations="iso3",
        color=axis,
        hover_name="country",
        height=380,
    ),
    width="stretch",
)
regions, dmas = st.columns(2)
regions.dataframe(values(view.regions, "region"), hide_index=True, width="stretch")
regions.download_button("CSV", segments_csv(view.regions, metric), "regions.csv", key="csv_regions")
dmas.dataframe(values(view.dmas, "dma"), hide_index=True, width="stretch")
dmas.download_button("CSV", segments_csv(view.dmas, metric), "dmas.csv", key="csv_dmas")

st.subheader(f"Hour of day × weekday ({account.timezone_name})")
heat = go.Figure(
    go.Heatmap(z=view.heatmap(), x=list(range(24)), y=list(WEEKDAYS), colorbar={"title": axis})
)
heat.update_layout(
    height=320,
    margin={"l": 10, "r": 10, "t": 10, "b": 10},
    xaxis={"title": "hour"},
    yaxis={"autorange": "reversed"},
)
st.plotly_chart(heat, width="stretch")
st.download_button("CSV", segments_csv(view.hours, metric), "hours.csv", key="csv_hours")
