"""Breakdowns: who, where and when — age × gender, placement × device, geography, hours."""

from datetime import timedelta

import plotly.graph_objects as go
import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from core.access.roles import Permission
from core.db.types import utcnow
from core.errors import InputError
from core.labels import DIMENSIONS, hour_name, hover_value, metric_title, number_format
from core.labels import WEEKDAY_NAMES as WEEKDAYS
from core.money import from_micros
from core.rules.metrics import METRICS
from core.rules.windows import local_today
from core.views.breakdowns import (
    CHARTABLE,
    ON_META_CHARTABLE,
    ON_META_DEFAULT,
    PLOTLY_OFFLINE_CONFIG,
    breakdown_view,
    country_map,
    segments_csv,
)
from core.views.suggestions import list_suggestions
from pages._notices import connected_accounts, show_notices
from pages._signin import signed_in

actor = signed_in(Permission.READ)
st.title("Breakdowns")
show_notices()
accounts = connected_accounts(actor)

labels = {a.id: f"{a.name} · {a.external_id} · {a.currency} · {a.timezone_name}" for a in accounts}
top = st.columns([3, 2, 2, 2])
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
on_meta_metric = None
if METRICS[metric].off_meta:  # Meta gives no purchases or revenue by region, DMA or hour
    on_meta_metric = top[3].selectbox(
        "Regions, DMAs and hours in",
        ON_META_CHARTABLE,
        index=ON_META_CHARTABLE.index(ON_META_DEFAULT),
        format_func=lambda m: METRICS[m].label,
        key="breakdowns_on_meta_metric",
        help="Meta's Insights API reports no purchases or revenue (so no ROAS, CPA or "
        "profit) by region, DMA or hour of day: only on-Meta numbers such as spend, "
        "clicks and impressions.",
    )
try:
    view = breakdown_view(
        account_id,
        actor=actor,
        metric=metric,
        since=period[0],
        until=period[1],
        on_meta_metric=on_meta_metric,
    )
except InputError as error:
    st.error(f"**{error.field}**: {error.problem}")
    st.stop()

currency = account.currency
axis = metric_title(metric, currency)  # "CTR (%)", "CPA (USD)", "ROAS"
hover = hover_value(metric, currency)
spend = f"Spend ({currency})"
st.caption(
    f"{METRICS[metric].label} by segment, {view.since:%b %d} – {view.until:%b %d, %Y} "
    f"({account.timezone_name} dates), from the sums of the range"
    + (f", money in {currency}" if METRICS[metric].unit == "money" else "")
    + " · undefined values (nothing spent, no clicks …) are left out"
)
open_suggestions = len(list_suggestions(actor=actor, account=account.external_id))
try:  # a link needs the app's navigation (app.py); the page run on its own has none
    st.page_link(
        "pages/suggestions.py",
        label=f"Suggestions: {open_suggestions} open for this account come from these breakdowns"
        if open_suggestions
        else "Suggestions: none open for this account yet — find them from these breakdowns",
        icon=":material/lightbulb:",
    )
except StreamlitPageNotFoundError:
    st.caption(f"{open_suggestions} open suggestion(s) come from these breakdowns.")
if view.empty:
    st.info("No breakdown data in this range yet: sync the account (Accounts page).")
    st.stop()


def defined(segments):  # type: ignore[no-untyped-def]
    return [s for s in segments if s.value is not None]


def bars(segments, x: str, colour: str) -> go.Figure:  # type: ignore[no-untyped-def]
    figure = go.Figure()
    for name in dict.fromkeys(s.name(colour) for s in defined(segments)):
        shown = [s for s in defined(segments) if s.name(colour) == name]
        figure.add_bar(
            x=[s.name(x) for s in shown],
            y=[float(s.value) for s in shown],
            name=name,
            hovertemplate=f"%{{x}} · {name}: {hover}<extra></extra>",
        )
    figure.update_layout(
        barmode="group",
        height=340,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"title": DIMENSIONS[x]},
        yaxis={"title": axis},
        legend={"title": DIMENSIONS[colour]},
    )
    return figure


def table(segments, key: str, shown: str = metric):  # type: ignore[no-untyped-def]
    title = metric_title(shown, currency)
    rows = [
        {
            DIMENSIONS[key]: s.name(key),
            title: float(s.value),
            spend: float(from_micros(s.sums["spend_micros"], currency)),
        }
        for s in defined(segments)
    ]
    return {
        "data": rows,
        "hide_index": True,
        "width": "stretch",
        "column_config": {
            title: st.column_config.NumberColumn(format=number_format(shown, currency)),
            spend: st.column_config.NumberColumn(format=number_format("spend", currency)),
        },
    }


def csv_button(where, segments, name: str, shown: str = metric) -> None:  # type: ignore[no-untyped-def]
    where.download_button(
        "CSV", segments_csv(segments, shown, currency), f"{name}.csv", key=f"csv_{name}"
    )


def not_reported(where) -> None:  # type: ignore[no-untyped-def]
    if view.substituted:
        where.caption(
            f"Meta reports no purchases or revenue here, so no {METRICS[metric].label}: "
            f"shown in {METRICS[view.on_meta_metric].label} (choose above)."
        )


left, right = st.columns(2)
left.subheader("Age × gender")
left.plotly_chart(bars(view.demographics, "age", "gender"), width="stretch")
csv_button(left, view.demographics, "demographics")
right.subheader("Placement × device")
right.plotly_chart(bars(view.placements, "platform", "device"), width="stretch")
csv_button(right, view.placements, "placements")

st.subheader("Countries")
shapes = country_map(view.countries)
world = go.Figure()
world.add_choropleth(  # every other country, grey behind the ones with a value
    geojson=shapes.background,
    featureidkey="id",
    locations=[f["id"] for f in shapes.background["features"]],
    z=[0] * len(shapes.background["features"]),
    text=[f["properties"]["name"] for f in shapes.background["features"]],
    colorscale=[[0, "#e5e7eb"], [1, "#e5e7eb"]],
    showscale=False,
    marker_line_color="#ffffff",
    hovertemplate="%{text}: no data<extra></extra>",
)
world.add_choropleth(
    geojson=shapes.shapes,
    featureidkey="id",
    locations=shapes.codes,
    z=shapes.values,
    text=shapes.names,
    colorscale="Blues",
    marker_line_color="#ffffff",
    colorbar={"title": axis},
    hovertemplate=f"%{{text}}: {hover_value(metric, currency, 'z')}<extra></extra>",
)
world.update_geos(visible=False, projection_type="natural earth", lataxis_range=[-58, 85])
world.update_layout(height=380, margin={"l": 0, "r": 0, "t": 0, "b": 0})
mapped, listed = st.columns([3, 2])
mapped.plotly_chart(world, width="stretch", config=PLOTLY_OFFLINE_CONFIG)
listed.dataframe(**table(view.countries, "country"))
if shapes.unmapped:
    listed.caption("Not on the map: " + ", ".join(shapes.unmapped))
csv_button(listed, view.countries, "countries")

shown = view.on_meta_metric  # regions, DMAs and hours: an on-Meta metric
regions, dmas = st.columns(2)
regions.subheader("Regions")
not_reported(regions)
regions.dataframe(**table(view.regions, "region", shown))
csv_button(regions, view.regions, "regions", shown)
dmas.subheader("DMAs")
not_reported(dmas)
dmas.dataframe(**table(view.dmas, "dma", shown))
csv_button(dmas, view.dmas, "dmas", shown)

st.subheader(f"Hour of day × weekday ({account.timezone_name})")
not_reported(st)
hour_axis = metric_title(shown, currency)
hours = [f"{h:02d}" for h in range(24)]
heat = go.Figure(
    go.Heatmap(
        z=view.heatmap(),
        x=hours,
        y=list(WEEKDAYS),
        customdata=[[hour_name(h) for h in range(24)] for _ in WEEKDAYS],
        colorbar={"title": hour_axis},
        hovertemplate=f"%{{y}} %{{customdata}}: {hover_value(shown, currency, 'z')}<extra></extra>",
    )
)
heat.update_layout(
    height=320,
    margin={"l": 10, "r": 10, "t": 10, "b": 10},
    xaxis={"title": "hour", "type": "category"},
    yaxis={"autorange": "reversed"},
)
st.plotly_chart(heat, width="stretch")
csv_button(st, view.hours, "hours", shown)
