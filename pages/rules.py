"""Rules: the list (a table with an on/off switch, last run, actions and money moved in
7 days, errors; bulk enable / disable, sorting; a row opens the rule) and a builder that
writes RULES.md documents without typing JSON: the rule in plain language, a visible
mode, scope by picking, schedules in words, and a preview of what it would do."""

import json

import streamlit as st

from core.actions.kinds import ActionType
from core.db.models import RuleStatus
from core.engine.preview import preview_outcomes
from core.engine.run import run_rule_now
from core.enums import Level
from core.errors import RexError
from core.rules.builder import (
    ACTION_WORDS,
    MODES,
    OPERATORS,
    SCHEDULES,
    SCOPE_CHOICES_LIMIT,
    TEMPLATES,
    WINDOWS,
    ScopeParts,
    account_choices,
    add_filter,
    apply_schedule,
    builder_draft,
    currency_label,
    default_condition,
    duplicate_rule,
    go_live,
    import_rule,
    is_money,
    join_filters,
    metric_choices,
    mode_of,
    offers_go_live,
    outcome_text,
    problems_by_section,
    remove_filter,
    rule_currency,
    run_summary,
    save_draft,
    saved_rule,
    schedule_choice,
    scope_choices,
    scope_currencies,
    scope_time_zones,
    set_mode,
    set_statuses,
    split_filters,
    template,
    window_words,
)
from core.rules.describe import describe_rule, describe_values
from core.rules.document import parse_rule
from core.rules.metrics import METRICS
from core.rules.store import delete_rule, get_rule, set_status
from core.views.rules import (
    SORTS,
    last_run_text,
    money_moved_text,
    page_of_rules,
    rules_with_activity,
)
from pages._notices import act, notify, show_notices

# the statuses a listed rule can have (deleted rules are not listed)
LISTED_STATUSES = [s.value for s in (RuleStatus.ACTIVE, RuleStatus.PAUSED, RuleStatus.DRAFT)]

state = st.session_state
LEVEL_WORDS = {Level.CAMPAIGN: "campaigns", Level.ADSET: "ad sets", Level.AD: "ads"}


# ----------------------------------------------------------------- callbacks


def load(document: dict, rule_id: int | None = None, origin: str = "") -> None:
    """Put a document in the builder; new widget keys, so widgets take its values."""
    draft, note = builder_draft(document)
    state["builder_draft"] = draft
    state["builder_version"] = state.get("builder_version", -1) + 1
    state["builder_rule_id"] = rule_id
    state["builder_origin"] = origin
    state["builder_note"] = note


def start_template() -> None:
    name = state["builder_template"]
    load(template(name), origin=f"Started from the template “{name}”")


def import_document() -> None:
    document = act(import_rule, state.get("builder_import_text", ""),
                   done="Loaded the document into the builder")  # fmt: skip
    if document is not None:
        load(document, origin="Loaded from an imported document")


def edit(rule_id: int) -> None:
    try:
        view = get_rule(rule_id)
    except RexError as error:  # deleted meanwhile, in another tab
        notify("error", str(error))
        return
    load(view.document, view.id)
    state["rules_view"] = "Builder"


def duplicate(rule_id: int) -> None:
    copy = act(duplicate_rule, rule_id, done=lambda c: f"Duplicated as “{c.name}” (a draft)")
    if copy is not None:
        load(copy.document, copy.id)
        state["rules_view"] = "Builder"


def switch(rule_id: int) -> None:
    status = RuleStatus.ACTIVE if state[f"on_{rule_id}"] else RuleStatus.PAUSED
    act(set_status, rule_id, status, done=lambda v: f"{v.name} is {v.status}")


def bulk(status: RuleStatus) -> None:
    picked = [int(k[5:]) for k in list(state.keys()) if k.startswith("pick_") and state[k]]
    if not picked:
        notify("info", "Tick the rules to change in the first column first.")
        return
    act(set_statuses, picked, status, done=str)
    for rule_id in picked:
        state[f"pick_{rule_id}"] = False


def run_now(rule_id: int) -> None:
    act(run_rule_now, rule_id, done=run_summary)


def make_live(rule_id: int) -> None:
    view = act(go_live, rule_id, done=lambda v: f"“{v.name}” is live (version {v.version})")
    if view is not None and state.get("builder_rule_id") == rule_id:
        load(view.document, rule_id)


def delete(rule_id: int, name: str) -> None:
    act(delete_rule, rule_id, done=f"Deleted {name}; its executions and actions stay on the record")
    if state.get("builder_rule_id") == rule_id:
        state["builder_rule_id"] = None


def save() -> None:
    view = act(save_draft, state["builder_draft"], state["builder_rule_id"],
               done=lambda v: f"Saved “{v.name}” (rule {v.id}, version {v.version})")  # fmt: skip
    if view is not None:
        state["builder_rule_id"] = view.id


def add_filter_row() -> None:
    add_filter(state["builder_draft"])


def remove_filter_row(index: int) -> None:
    remove_filter(state["builder_draft"], index)
    state["builder_version"] += 1


def start_value(value: object, cast: type = float) -> float | int | None:
    """A stored number as a widget's start value (empty when there is none)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return cast(value) if ok else None


def optional_number(place, label: str, value: object, key: str, **options: object):  # type: ignore[no-untyped-def]
    """A number that may be left empty (None): the widget's default is None, so clearing
    it gives None; its start value is seeded once into its state."""
    if key not in state:
        state[key] = value
    return place.number_input(label, value=None, key=key, **options)


def add_to(items: list, item: dict) -> None:
    items.append(item)


def remove_from(items: list, index: int) -> None:
    if 0 <= index < len(items):
        items.pop(index)
    state["builder_version"] += 1  # the rows below it move up: fresh widgets


# ---------------------------------------------------------------------- page

st.title("Rules")
show_notices()
if "builder_draft" not in state:
    load(template("Scale winners"), origin="Started from the template “Scale winners”")
state.setdefault("rules_view", "Rules")
view = st.segmented_control(
    "View", ["Rules", "Builder"], key="rules_view", required=True, label_visibility="collapsed"
)

# ------------------------------------------------------------------ the list
if view == "Rules":
    rows = rules_with_activity()
    if not rows:
        st.info(
            "No rules yet. Open the **Builder**, start from a template, preview it and save it."
        )
    else:
        find, status_col, sort_col, page_col = st.columns([3, 2, 2, 1])
        text = find.text_input("Find", key="rules_find", placeholder="part of a rule's name")
        statuses = status_col.multiselect("Status", LISTED_STATUSES, key="rules_statuses")
        sort = sort_col.selectbox("Sort by", list(SORTS), format_func=SORTS.get, key="rules_sort")
        page = page_col.number_input("Page", min_value=1, step=1, key="rules_page")
        rows, found, pages = page_of_rules(
            rows, text=text, statuses=statuses, page=int(page), sort=sort
        )
        st.caption(
            f"{found} rule(s)"
            + (f" · page {min(int(page), pages)} of {pages}" if pages > 1 else "")
        )
        bulk_cols = st.columns([1, 1, 4])
        bulk_cols[0].button(
            "Enable selected", key="rules_enable", on_click=bulk, args=(RuleStatus.ACTIVE,)
        )
        bulk_cols[1].button("Disable selected", key="rules_disable", on_click=bulk,
                            args=(RuleStatus.PAUSED,))  # fmt: skip
        widths = [0.3, 0.5, 4, 1.4, 2.6, 0.8, 1.6, 0.8, 0.9]
        titles = ["", "On", "Rule", "Status", "Last run", "Actions 7 d", "Money moved 7 d",
                  "Errors 7 d", ""]  # fmt: skip
        for column, title in zip(st.columns(widths), titles, strict=True):
            column.markdown(f"**{title}**" if title else "")
    for row in rows:
        rule = row.rule
        cols = st.columns(widths, vertical_alignment="center")
        cols[0].checkbox("Select", key=f"pick_{rule.id}", label_visibility="collapsed")
        state[f"on_{rule.id}"] = rule.status == RuleStatus.ACTIVE  # the stored status, always
        cols[1].toggle("On", key=f"on_{rule.id}", on_change=switch, args=(rule.id,),
                       label_visibility="collapsed")  # fmt: skip
        cols[2].button(f"**{rule.name}**", key=f"open_{rule.id}", type="tertiary", on_click=edit,
                       args=(rule.id,), help="Open in the builder")  # fmt: skip
        cols[2].caption(describe_rule(rule.rule, row.currency))
        cols[3].markdown(f"{rule.status} · {rule.level} · v{rule.version}")
        if row.can_go_live:
            cols[3].button("Go live", key=f"golive_{rule.id}", on_click=make_live,
                           args=(rule.id,), help="Save it with dry run off, active")  # fmt: skip
        cols[4].markdown(last_run_text(row.last_run))
        if row.last_run and row.last_run.error:
            cols[4].caption(row.last_run.error)
        cols[5].markdown(str(row.actions_7d))
        cols[6].markdown(money_moved_text(row.money_moved))
        cols[7].markdown(str(row.errors_7d))
        with cols[8].popover("More", key=f"more_{rule.id}"):
            st.button("Edit", key=f"edit_{rule.id}", on_click=edit, args=(rule.id,))
            st.button("Duplicate", key=f"duplicate_{rule.id}", on_click=duplicate,
                      args=(rule.id,))  # fmt: skip
            st.button("Run now", key=f"run_{rule.id}", on_click=run_now, args=(rule.id,))
            st.download_button("Export", json.dumps(rule.document, indent=2),
                               f"rule-{rule.id}.json", key=f"export_{rule.id}",
                               on_click="ignore")  # fmt: skip
            sure = st.checkbox("I understand: the rule stops and leaves the list",
                               key=f"confirm_delete_{rule.id}")  # fmt: skip
            st.button("Delete", key=f"delete_{rule.id}", disabled=not sure, on_click=delete,
                      args=(rule.id, rule.name))  # fmt: skip

# --------------------------------------------------------------- the builder
else:
    start = st.columns([2, 1, 2], vertical_alignment="bottom")
    start[0].selectbox("Template", list(TEMPLATES), key="builder_template")
    start[1].button("Start from template", key="builder_use_template", on_click=start_template)
    with start[2].popover("Import JSON"):
        st.text_area("Rule document", key="builder_import_text", height=200)
        st.button("Load", key="builder_import", on_click=import_document)

    v = state["builder_version"]
    draft = state["builder_draft"]
    editing = saved_rule(state["builder_rule_id"])
    accounts = account_choices()
    if editing is None and state["builder_rule_id"] is not None:
        st.warning(f"Rule {state['builder_rule_id']} was deleted: saving makes a new rule.")
        state["builder_rule_id"] = None
    if editing is not None:
        st.info(
            f"Editing rule {editing.id} “{editing.name}” (version {editing.version}): saving "
            "makes a new version."
        )
    elif state["builder_origin"]:
        st.info(
            f"{state['builder_origin']}, in **{MODES[mode_of(draft)][0]}** mode (see Mode "
            "below). Nothing is saved until you press Save."
        )
    if state["builder_note"]:
        st.warning(state["builder_note"])
    words = st.container()  # the rule in plain language, once the draft is complete
    slots: dict[str, object] = {}

    draft["name"] = st.text_input("Name", draft.get("name", ""), key=f"b{v}_name")
    slots["name"] = st.container()
    statuses = [s.value for s in (RuleStatus.DRAFT, RuleStatus.ACTIVE, RuleStatus.PAUSED)]
    draft["status"] = st.radio(
        "Status", statuses, horizontal=True, index=statuses.index(draft.get("status", "draft")),
        key=f"b{v}_status", help="Only active rules run on their schedule.",
    )  # fmt: skip
    mode = st.radio(
        "Mode", list(MODES), index=list(MODES).index(mode_of(draft)),
        format_func=lambda m: MODES[m][0], captions=[MODES[m][1] for m in MODES],
        key=f"b{v}_mode",
    )  # fmt: skip
    set_mode(draft, mode)
    if mode == "live" and draft["status"] == RuleStatus.ACTIVE:
        st.warning("Saved like this, the rule changes Meta as soon as its conditions hold.")
    slots["status"] = st.container()

    # ------------------------------------------------------------- scope
    st.subheader("Scope")
    scope = draft["scope"]
    scope["account_ids"] = st.multiselect(
        "Accounts (none: all)", list(accounts),
        default=[a for a in scope.get("account_ids", []) if a in accounts],
        format_func=lambda a: accounts[a].label, key=f"b{v}_accounts",
    )  # fmt: skip
    levels = [level.value for level in Level]
    scope["level"] = st.radio(
        "Level", levels, index=levels.index(scope.get("level", Level.CAMPAIGN)), horizontal=True,
        format_func=lambda level: LEVEL_WORDS[level].capitalize(), key=f"b{v}_level",
    )  # fmt: skip
    level = scope["level"]
    parts = split_filters(scope.get("filters", []))
    active_only = st.toggle(
        f"Only active {LEVEL_WORDS[level]} (effective status ACTIVE), as Meta's rules do",
        parts.active_only, key=f"b{v}_active_only",
        help="Off: paused ones are judged too (archived and deleted ones never are).",
    )  # fmt: skip
    choices = scope_choices(scope["account_ids"], level, active_only=active_only)
    labels = {c.external_id: c.label for c in choices}
    missing = [i for i in parts.picked if i not in labels]
    picked = st.multiselect(
        f"Pick {LEVEL_WORDS[level]} (none: every one the filters let through)",
        [*labels, *missing], default=parts.picked,
        format_func=lambda i: labels.get(i, f"{i} · not among the synced {LEVEL_WORDS[level]}"),
        key=f"b{v}_pick", placeholder="type to search by name, status, account or id",
    )  # fmt: skip
    if missing:
        st.warning(
            f"{len(missing)} picked id(s) are not among the synced {LEVEL_WORDS[level]} of "
            "these accounts"
            + (" that are active" if active_only else "")
            + ": they match nothing until they are. Remove them, or sync."
        )
    if len(choices) >= SCOPE_CHOICES_LIMIT:
        st.caption(f"The first {SCOPE_CHOICES_LIMIT} are listed: narrow with a name filter.")
    others = parts.others
    fields = ["name", "effective_status", "id", "campaign_id", "adset_id"]
    ops = ["contains", "not_contains", "=", "!=", "in", "not_in"]
    for i, item in enumerate(others):
        cols = st.columns([2, 2, 3, 1], vertical_alignment="bottom")
        item["field"] = cols[0].selectbox(
            f"Filter {i + 1} · Field", fields, index=fields.index(item["field"]),
            key=f"b{v}_f{i}_field",
        )  # fmt: skip
        item["op"] = cols[1].selectbox("Op", ops, index=ops.index(item["op"]), key=f"b{v}_f{i}_op")
        raw = ", ".join(item["value"]) if isinstance(item["value"], list) else item["value"]
        typed = cols[2].text_input("Value (comma-separated for in)", raw, key=f"b{v}_f{i}_value")
        item["value"] = (
            [t.strip() for t in typed.split(",") if t.strip()]
            if item["op"] in ("in", "not_in")
            else typed
        )
        cols[3].button("✕", key=f"b{v}_f{i}_remove", on_click=remove_filter_row, args=(i,))
    scope["filters"] = join_filters(ScopeParts(active_only, picked, others))
    st.button("Add a name or status filter", key=f"b{v}_add_filter", on_click=add_filter_row)
    stated = draft.get("currency") or ""
    currencies = sorted({a.currency for a in accounts.values()} | ({stated} - {""}))
    shared = ", ".join(scope_currencies(draft, accounts)) or "none connected"
    stated = st.selectbox(
        "Money values in", ["", *currencies], index=["", *currencies].index(stated),
        format_func=lambda c: c or "the currency the accounts bill in", key=f"b{v}_currency",
        help="The currency of every amount in the rule (thresholds, budget amounts and bounds, "
        "min spend). Accounts billing in another currency are left out.",
    )  # fmt: skip
    st.caption(f"The accounts in scope bill in {shared}.")
    draft["currency"] = stated
    if not stated:
        draft.pop("currency")
    slots["scope"] = st.container()
    money = currency_label(draft, accounts)

    # -------------------------------------------------------- conditions
    st.subheader("Conditions")

    def condition_widgets(node: dict, key: str, number: str) -> None:
        st.markdown(f"**Condition {number}**")
        cols = st.columns([2, 2, 1, 3])
        names = metric_choices(windowed=False)
        node["metric"] = cols[0].selectbox(
            "Metric", names, index=names.index(node["metric"]),
            format_func=lambda m: METRICS[m].label, key=f"{key}_metric",
        )  # fmt: skip
        if METRICS[node["metric"]].needs_window:
            window = node.get("window") or "last_7d"
            options = list(WINDOWS) if window in WINDOWS else [window, *WINDOWS]
            node["window"] = cols[1].selectbox(
                "Window", options, index=options.index(window), format_func=window_words,
                key=f"{key}_window",
            )  # fmt: skip
        else:
            node.pop("window", None)
            cols[1].caption("current value")
        node["op"] = cols[2].selectbox(
            "Op", OPERATORS, index=OPERATORS.index(node["op"]), key=f"{key}_op"
        )
        unit = f" ({money})" if is_money(node["metric"]) else ""
        value = node.get("value")
        if node["op"] in ("between", "not_between"):
            lo, hi = value if isinstance(value, list) and len(value) == 2 else [0, 1]
            pair = cols[3].columns(2)
            node["value"] = [
                pair[0].number_input(f"From{unit}", value=start_value(lo), key=f"{key}_lo"),
                pair[1].number_input(f"To{unit}", value=start_value(hi), key=f"{key}_hi"),
            ]
            return
        baseline = cols[3].toggle("vs its own baseline", isinstance(value, dict), key=f"{key}_ref")
        if baseline:
            ref = value if isinstance(value, dict) else {"window": "last_30d", "times": 1}
            inner = cols[3].columns(2)
            ref["window"] = inner[0].selectbox(
                "Baseline window", WINDOWS, format_func=window_words,
                index=WINDOWS.index(ref["window"]) if ref.get("window") in WINDOWS else 0,
                key=f"{key}_ref_window",
            )  # fmt: skip
            ref["times"] = inner[1].number_input(
                "× factor", value=start_value(ref.get("times", 1)), key=f"{key}_ref_times"
            )
            ref["metric"] = node["metric"] if METRICS[node["metric"]].needs_window else "spend"
            node["value"] = ref
        else:
            node["value"] = cols[3].number_input(
                f"Value{unit}", value=start_value(value if value is not None else 0),
                key=f"{key}_value",
            )  # fmt: skip

    def group_widgets(group: dict, key: str, prefix: str) -> None:
        mode_name = "all" if "all" in group else "any"
        combine = {"all": "ALL of these hold", "any": "ANY of these holds"}
        chosen = st.radio(
            "Combine", ["all", "any"], index=["all", "any"].index(mode_name),
            format_func=combine.get, horizontal=True, key=f"{key}_mode",
        )  # fmt: skip
        if chosen != mode_name:
            group[chosen] = group.pop(mode_name)
        items = group[chosen]
        for i, child in enumerate(items):
            number = f"{prefix}{i + 1}"
            with st.container(border=True):
                if "all" in child or "any" in child:
                    st.markdown(f"**Group {number}**")
                    group_widgets(child, f"{key}_{i}", f"{number}.")
                else:
                    condition_widgets(child, f"{key}_{i}", number)
                st.button("Remove", key=f"{key}_{i}_remove", on_click=remove_from,
                          args=(items, i))  # fmt: skip
        buttons = st.columns(4)
        buttons[0].button("Add condition", key=f"{key}_add", on_click=add_to,
                          args=(items, default_condition()))  # fmt: skip
        if not prefix:
            other = "any" if chosen == "all" else "all"
            buttons[1].button("Add group", key=f"{key}_add_group", on_click=add_to,
                              args=(items, {other: [default_condition()]}))  # fmt: skip

    group_widgets(draft["conditions"], f"b{v}_c", "")
    slots["conditions"] = st.container()

    # ----------------------------------------------------------- actions
    st.subheader("Actions")
    types = list(ACTION_WORDS)  # the catalogue's kinds, in its order
    actions = draft.setdefault("actions", [])
    for i, action in enumerate(actions):
        with st.container(border=True):
            st.markdown(f"**Action {i + 1}**")
            cols = st.columns([2, 2, 2, 2, 2], vertical_alignment="bottom")
            kind = cols[0].selectbox(
                "Action", types, index=types.index(action["type"]), format_func=ACTION_WORDS.get,
                key=f"b{v}_a{i}_type",
            )  # fmt: skip
            if kind != action["type"]:
                action.clear()
                action["type"] = kind
            if kind == ActionType.CHANGE_BUDGET:
                modes = {"by_percent": "by %", "by_amount": "by amount", "to": "set to"}
                current = next((m for m in modes if m in action), "by_percent")
                how = cols[1].selectbox(
                    "How", list(modes), index=list(modes).index(current), format_func=modes.get,
                    key=f"b{v}_a{i}_mode",
                )  # fmt: skip
                amount = cols[2].number_input(
                    "Amount (%)" if how == "by_percent" else f"Amount ({money})",
                    value=start_value(action.get(current, 10)), key=f"b{v}_a{i}_amount",
                )  # fmt: skip
                bounds = {
                    bound: optional_number(
                        cols[3 + n],
                        f"{bound.capitalize()} ({money}, empty: none)",
                        start_value(action.get(bound)),
                        f"b{v}_a{i}_{bound}",
                    )
                    for n, bound in enumerate(("min", "max"))
                }
                action.clear()
                action.update(type=kind, **{how: amount})
                action.update({b: x for b, x in bounds.items() if x is not None})
            elif kind == ActionType.DUPLICATE:
                action["name_suffix"] = cols[1].text_input(
                    "Name suffix", action.get("name_suffix", " - Copy"), key=f"b{v}_a{i}_suffix"
                )
            elif kind == ActionType.NOTIFY:
                action["message"] = cols[1].text_input(
                    "Message", action.get("message", ""), key=f"b{v}_a{i}_message"
                )
            st.button("Remove", key=f"b{v}_a{i}_remove", on_click=remove_from, args=(actions, i))
    st.button(
        "Add action",
        key=f"b{v}_add_action",
        on_click=add_to,
        args=(actions, {"type": ActionType.PAUSE.value}),
    )
    slots["actions"] = st.container()

    # -------------------------------------------------- schedule, safety
    st.subheader("Schedule")
    schedule, safety = draft["schedule"], draft["safety"]
    preset, hour = schedule_choice(schedule)
    cols = st.columns(3)
    preset = cols[0].selectbox(
        "Runs", list(SCHEDULES), index=list(SCHEDULES).index(preset),
        format_func=lambda p: SCHEDULES[p][0], key=f"b{v}_schedule",
    )  # fmt: skip
    minutes = None
    if preset == "custom":
        minutes = cols[1].number_input(
            "Every (minutes)", value=start_value(schedule.get("every_minutes", 60), int), step=1,
            key=f"b{v}_every",
        )  # fmt: skip
    elif preset == "daily":
        hour = cols[1].selectbox(
            "At", list(range(24)), index=hour, format_func=lambda h: f"{h:02}:00",
            key=f"b{v}_daily_at",
        )  # fmt: skip
        cols[1].caption(
            "In each account's time zone ("
            + "; ".join(scope_time_zones(draft, accounts))
            + "): Rex checks hourly and acts only in that hour."
        )
    apply_schedule(schedule, preset, minutes=minutes, hour=hour)
    days = cols[2].multiselect(
        "Only on these days (account's time zone; none = every day)",
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        default=schedule.get("days") or [], key=f"b{v}_days",
    )  # fmt: skip
    schedule["days"] = days or None
    if preset != "daily":
        limited = cols[1].toggle(
            "Only between these hours", schedule.get("hours") is not None,
            key=f"b{v}_limit_hours",
        )  # fmt: skip
        schedule["hours"] = None
        if limited:
            start_hour, end_hour = cols[1].slider(
                "Hours [from, to)", 0, 24, tuple(schedule.get("hours") or (8, 20)),
                key=f"b{v}_hours",
            )  # fmt: skip
            schedule["hours"] = [start_hour, end_hour]
    slots["schedule"] = st.container()

    st.subheader("Safety")
    cols = st.columns(4)
    safety["max_daily_actions"] = cols[0].number_input(
        "Max actions a day", value=start_value(safety.get("max_daily_actions", 10), int), step=1,
        key=f"b{v}_cap",
    )  # fmt: skip
    safety["cooldown_minutes"] = cols[1].number_input(
        "Cooldown (minutes)", value=start_value(safety.get("cooldown_minutes", 1440), int), step=1,
        key=f"b{v}_cooldown", help="An entity acted on is left alone this long.",
    )  # fmt: skip
    safety["min_spend"] = optional_number(
        cols[2], f"Min spend in the window ({money}, empty: none)",
        start_value(safety.get("min_spend")), f"b{v}_min_spend",
        help="Thin data never matches: the first windowed condition's window is used.",
    )  # fmt: skip
    safety["min_impressions"] = optional_number(
        cols[3], "Min impressions (empty: none)", start_value(safety.get("min_impressions"), int),
        f"b{v}_min_impressions", step=1,
    )  # fmt: skip
    for part, name in (("schedule", "days"), ("schedule", "hours"), ("safety", "min_spend"),
                       ("safety", "min_impressions")):  # fmt: skip
        if draft[part].get(name) is None:
            draft[part].pop(name, None)  # absent, as RULES.md writes the default
    slots["safety"] = st.container()

    # ------------------------------------------- problems, words, preview
    problems = problems_by_section(draft, accounts)
    for section, messages in problems.items():
        slot = slots.get(section) or slots["name"]
        for message in messages:
            slot.error(message)  # type: ignore[attr-defined]
    st.divider()
    if problems:
        words.warning("Fix the problems marked below to see the rule in words, preview or save.")
        st.warning("Fix the problems marked above to preview or save.")
    else:
        rule = parse_rule(draft)
        words.markdown(
            f"**In plain language:** {describe_rule(rule, rule_currency(draft, accounts))}"
        )
        preview = preview_outcomes(rule, rule_id=editing.id if editing else None)
        evaluation = preview.evaluation
        st.subheader("Preview: what it would do now")
        st.caption(
            f"{len(evaluation.matched)} of {len(evaluation.candidates)} candidates match; "
            "nothing is changed or saved."
        )
        for why in preview.skipped_accounts.values():
            st.info(why)
        if preview.steps:
            st.dataframe(
                [
                    {
                        "Entity": s.name,
                        "Account": s.account,
                        "Action": ACTION_WORDS.get(s.action, s.action),
                        "Outcome": outcome_text(s),
                        "Note": s.note or "",
                    }
                    for s in preview.steps
                ],
                hide_index=True, width="stretch",
            )  # fmt: skip
        with st.expander("The values of every candidate"):
            st.dataframe(
                [
                    {
                        "Entity": c.name,
                        "Account": c.account,
                        "Matches": c.matched,
                        **describe_values(c.values, rule.currency or c.currency),
                    }
                    for c in evaluation.candidates
                ],
                hide_index=True, width="stretch",
            )  # fmt: skip

    buttons = st.columns(4)
    buttons[0].button(
        "Save as new rule" if editing is None else "Save new version", key="builder_save",
        disabled=bool(problems), type="primary", on_click=save,
    )  # fmt: skip
    if editing is not None:
        buttons[1].button("Run now", key="builder_run", on_click=run_now, args=(editing.id,))
        if offers_go_live(editing):
            buttons[2].button("Go live", key="builder_go_live", on_click=make_live,
                              args=(editing.id,), type="primary")  # fmt: skip
    buttons[3].download_button(
        "Export JSON", json.dumps(draft, indent=2, default=str), "rule.json",
        key="builder_export", on_click="ignore",
    )  # fmt: skip
    if editing is not None and offers_go_live(editing):
        st.caption(
            f"Its dry run ran at {editing.last_execution_at:%Y-%m-%d %H:%M} UTC: review what it "
            "would have done on the Executions page, then **Go live** saves the saved version "
            f"(v{editing.version}) with dry run off and active."
        )
    elif editing is not None and mode_of(editing.document) == "dry_run":
        st.caption("Saved in Test first mode: **Run now** to see what it would do.")
