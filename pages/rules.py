"""Rules: the list (enable, disable, duplicate, delete, run now, export) and a builder that
writes RULES.md documents without typing JSON, with a live preview."""

import copy
import json

import streamlit as st

from core.accounts import list_accounts
from core.engine.run import RuleBusyError, preview_rule, run_rule_now
from core.errors import InputError, RexError
from core.rules.builder import (
    OPERATORS,
    TEMPLATES,
    WINDOWS,
    default_condition,
    duplicate_rule,
    metric_choices,
    page_of_rules,
    problems_by_section,
    rules_with_activity,
    template,
)
from core.rules.document import RuleDocumentError, parse_rule
from core.rules.evaluate import trace_value
from core.rules.metrics import METRICS
from core.rules.store import delete_rule, get_rule, save_rule, set_status

st.title("Rules")
for message in st.session_state.pop("rules_flash", []):
    st.success(message)

state = st.session_state
state.setdefault("builder_draft", template("Scale winners"))
state.setdefault("builder_version", 0)
state.setdefault("builder_rule_id", None)


def load(document: dict, rule_id: int | None = None) -> None:
    state["builder_draft"] = copy.deepcopy(document)
    state["builder_version"] += 1  # new widget keys: widgets take the loaded values
    state["builder_rule_id"] = rule_id


def flash(message: str) -> None:
    state["rules_flash"] = [*state.get("rules_flash", []), message]
    st.rerun()


list_tab, builder_tab = st.tabs(["Rules", "Builder"])

# ------------------------------------------------------------------------- the list
with list_tab:
    rows = rules_with_activity()
    if not rows:
        st.info(
            "No rules yet. Open the **Builder** tab, start from a template, preview it and save it."
        )
    else:
        find, status_col, page_col = st.columns([3, 2, 1])
        text = find.text_input("Find", key="rules_find", placeholder="part of a rule's name")
        statuses = status_col.multiselect(
            "Status", ["active", "paused", "draft"], key="rules_statuses"
        )
        page = page_col.number_input("Page", min_value=1, step=1, key="rules_page")
        rows, found, pages = page_of_rules(rows, text=text, statuses=statuses, page=int(page))
        st.caption(
            f"{found} rule(s)"
            + (f" · page {min(int(page), pages)} of {pages}" if pages > 1 else "")
        )
    for row in rows:
        rule = row.rule
        with st.container(border=True):
            last = (
                f"last run {rule.last_execution_at:%Y-%m-%d %H:%M} UTC"
                if rule.last_execution_at
                else "never run"
            )
            st.markdown(
                f"**{rule.name}** · {rule.level} · {rule.status} · v{rule.version}  \n{last}"
            )
            st.caption(
                (
                    "next run " + f"{rule.next_execution_at:%Y-%m-%d %H:%M} UTC"
                    if rule.next_execution_at
                    else "not scheduled"
                )
                + f" · {row.actions_7d} actions in 7 days"
            )
            active = rule.status == "active"
            buttons = st.columns(6)
            if buttons[0].button("Disable" if active else "Enable", key=f"toggle_{rule.id}"):
                set_status(rule.id, "paused" if active else "active")
                flash(f"{rule.name} is {'paused' if active else 'active'}")
            if buttons[1].button("Edit", key=f"edit_{rule.id}"):
                load(rule.document, rule.id)
                flash(f"Loaded {rule.name} into the builder")
            if buttons[2].button("Duplicate", key=f"duplicate_{rule.id}"):
                copy_view = duplicate_rule(rule.id)
                flash(f"Duplicated as “{copy_view.name}” (a draft)")
            if buttons[3].button("Run now", key=f"run_{rule.id}"):
                try:
                    result = run_rule_now(rule.id)
                except RuleBusyError as busy:
                    st.error(str(busy))
                else:
                    flash(
                        f"{rule.name}: {result.status} — {result.entities_matched} matched, "
                        f"{result.actions_taken} acted, {result.actions_skipped} skipped"
                    )
            buttons[4].download_button(
                "Export",
                json.dumps(rule.document, indent=2),
                f"rule-{rule.id}.json",
                key=f"export_{rule.id}",
            )
            if buttons[5].button("Delete", key=f"delete_{rule.id}"):
                delete_rule(rule.id)
                flash(f"Deleted {rule.name}; its executions and actions stay on the record")

# ---------------------------------------------------------------------- the builder
with builder_tab:
    start = st.columns([2, 1, 3])
    chosen = start[0].selectbox("Template", list(TEMPLATES), key="builder_template")
    if start[1].button("Start from template", key="builder_use_template"):
        load(template(chosen))
        st.rerun()
    with start[2].popover("Import JSON"):
        pasted = st.text_area("Rule document", key="builder_import_text", height=200)
        if st.button("Load", key="builder_import"):
            try:
                load(parse_rule(pasted).to_json())
                st.rerun()
            except RuleDocumentError as error:
                st.error(str(error))

    v = state["builder_version"]
    draft = state["builder_draft"]

    def show(section: str) -> None:
        """The section's validation problems, beside its fields (as filled in so far)."""
        for problem in problems_by_section(draft).get(section, []):
            st.error(problem)

    draft["name"] = st.text_input("Name", draft.get("name", ""), key=f"b{v}_name")
    show("name")
    draft["status"] = st.radio(
        "Status",
        ["draft", "active", "paused"],
        horizontal=True,
        index=["draft", "active", "paused"].index(draft.get("status", "draft")),
        key=f"b{v}_status",
    )

    st.subheader("Scope")
    scope = draft.setdefault("scope", {"level": "campaign", "account_ids": [], "filters": []})
    accounts = {a.external_id: f"{a.name} ({a.external_id})" for a in list_accounts()}
    scope["account_ids"] = st.multiselect(
        "Accounts (none: all)",
        list(accounts),
        default=[a for a in scope.get("account_ids", []) if a in accounts],
        format_func=accounts.get,
        key=f"b{v}_accounts",
    )
    levels = ["campaign", "adset", "ad"]
    scope["level"] = st.radio(
        "Level",
        levels,
        index=levels.index(scope.get("level", "campaign")),
        horizontal=True,
        key=f"b{v}_level",
    )
    filters = scope.setdefault("filters", [])
    for i, item in enumerate(filters):
        cols = st.columns([2, 2, 3, 1])
        fields = ["name", "effective_status", "id", "campaign_id", "adset_id"]
        item["field"] = cols[0].selectbox(
            "Field", fields, index=fields.index(item["field"]), key=f"b{v}_f{i}_field"
        )
        ops = ["contains", "not_contains", "=", "!=", "in", "not_in"]
        item["op"] = cols[1].selectbox("Op", ops, index=ops.index(item["op"]), key=f"b{v}_f{i}_op")
        raw = ", ".join(item["value"]) if isinstance(item["value"], list) else item["value"]
        text = cols[2].text_input("Value (comma-separated for in)", raw, key=f"b{v}_f{i}_value")
        item["value"] = (
            [t.strip() for t in text.split(",") if t.strip()]
            if item["op"] in ("in", "not_in")
            else text
        )
        if cols[3].button("✕", key=f"b{v}_f{i}_remove"):
            filters.pop(i)
            st.rerun()
    if st.button("Add filter", key=f"b{v}_add_filter"):
        filters.append({"field": "name", "op": "contains", "value": ""})
        st.rerun()
    show("scope")

    st.subheader("Conditions")

    def condition_widgets(node: dict, key: str) -> None:
        cols = st.columns([2, 2, 1, 3])
        windowed = metric_choices(windowed=False)
        node["metric"] = cols[0].selectbox(
            "Metric",
            windowed,
            index=windowed.index(node["metric"]),
            format_func=lambda m: METRICS[m].label,
            key=f"{key}_metric",
        )
        if METRICS[node["metric"]].needs_window:
            window = node.get("window") or "last_7d"
            options = list(WINDOWS) if window in WINDOWS else [window, *WINDOWS]
            node["window"] = cols[1].selectbox(
                "Window", options, index=options.index(window), key=f"{key}_window"
            )
        else:
            node.pop("window", None)
            cols[1].caption("current value")
        node["op"] = cols[2].selectbox(
            "Op", OPERATORS, index=OPERATORS.index(node["op"]), key=f"{key}_op"
        )
        value = node.get("value")
        if node["op"] in ("between", "not_between"):
            lo, hi = value if isinstance(value, list) and len(value) == 2 else [0, 1]
            pair = cols[3].columns(2)
            node["value"] = [
                pair[0].number_input("From", value=float(lo), key=f"{key}_lo"),
                pair[1].number_input("To", value=float(hi), key=f"{key}_hi"),
            ]
        else:
            baseline = cols[3].toggle(
                "vs its own baseline", isinstance(value, dict), key=f"{key}_ref"
            )
            if baseline:
                ref = (
                    value
                    if isinstance(value, dict)
                    else {"metric": node["metric"], "window": "last_30d", "times": 1}
                )
                inner = cols[3].columns(2)
                ref["window"] = inner[0].selectbox(
                    "Baseline window",
                    WINDOWS,
                    index=WINDOWS.index(ref.get("window", "last_30d"))
                    if ref.get("window") in WINDOWS
                    else 0,
                    key=f"{key}_ref_window",
                )
                ref["times"] = inner[1].number_input(
                    "× factor", value=float(ref.get("times", 1)), key=f"{key}_ref_times"
                )
                ref["metric"] = node["metric"] if METRICS[node["metric"]].needs_window else "spend"
                node["value"] = ref
            else:
                number = value if isinstance(value, (int, float)) else 0
                node["value"] = cols[3].number_input(
                    "Value", value=float(number), key=f"{key}_value"
                )

    def group_widgets(group: dict, key: str, depth: int) -> None:
        mode = "all" if "all" in group else "any"
        items = group[mode]
        label = {"all": "ALL of these hold", "any": "ANY of these holds"}
        new_mode = st.radio(
            "Combine",
            ["all", "any"],
            index=["all", "any"].index(mode),
            format_func=label.get,
            horizontal=True,
            key=f"{key}_mode",
        )
        if new_mode != mode:
            group[new_mode] = group.pop(mode)
            items = group[new_mode]
        for i, child in enumerate(items):
            with st.container(border=True):
                if "all" in child or "any" in child:
                    group_widgets(child, f"{key}_{i}", depth + 1)
                else:
                    condition_widgets(child, f"{key}_{i}")
                if st.button("Remove", key=f"{key}_{i}_remove"):
                    items.pop(i)
                    st.rerun()
        buttons = st.columns(4)
        if buttons[0].button("Add condition", key=f"{key}_add"):
            items.append(default_condition())
            st.rerun()
        if depth == 0 and buttons[1].button("Add group", key=f"{key}_add_group"):
            items.append({"any" if new_mode == "all" else "all": [default_condition()]})
            st.rerun()

    conditions = draft.get("conditions") or {"all": [default_condition()]}
    if "all" not in conditions and "any" not in conditions:
        conditions = {"all": [conditions]}
    draft["conditions"] = conditions
    group_widgets(conditions, f"b{v}_c", 0)
    show("conditions")

    st.subheader("Actions")
    types = ["change_budget", "pause", "resume", "duplicate", "notify"]
    actions = draft.setdefault("actions", [])
    for i, action in enumerate(actions):
        with st.container(border=True):
            cols = st.columns([2, 2, 2, 2, 2])
            kind = cols[0].selectbox(
                "Action", types, index=types.index(action["type"]), key=f"b{v}_a{i}_type"
            )
            if kind != action["type"]:
                action.clear()
                action["type"] = kind
            if kind == "change_budget":
                modes = {"by_percent": "by %", "by_amount": "by amount", "to": "set to"}
                current = next((m for m in modes if m in action), "by_percent")
                mode = cols[1].selectbox(
                    "How",
                    list(modes),
                    index=list(modes).index(current),
                    format_func=modes.get,
                    key=f"b{v}_a{i}_mode",
                )
                amount = cols[2].number_input(
                    "Amount", value=float(action.get(current, 10)), key=f"b{v}_a{i}_amount"
                )
                for m in modes:
                    action.pop(m, None)
                action[mode] = amount
                low = cols[3].number_input(
                    "Min (0: none)",
                    value=float(action.get("min") or 0),
                    min_value=0.0,
                    key=f"b{v}_a{i}_min",
                )
                high = cols[4].number_input(
                    "Max (0: none)",
                    value=float(action.get("max") or 0),
                    min_value=0.0,
                    key=f"b{v}_a{i}_max",
                )
                action.pop("min", None)
                action.pop("max", None)
                if low:
                    action["min"] = low
                if high:
                    action["max"] = high
            elif kind == "duplicate":
                action["name_suffix"] = cols[1].text_input(
                    "Name suffix", action.get("name_suffix", " - Copy"), key=f"b{v}_a{i}_suffix"
                )
            elif kind == "notify":
                action["message"] = cols[1].text_input(
                    "Message", action.get("message", ""), key=f"b{v}_a{i}_message"
                )
            if cols[4].button("Remove", key=f"b{v}_a{i}_remove"):
                actions.pop(i)
                st.rerun()
    if st.button("Add action", key=f"b{v}_add_action"):
        actions.append({"type": "pause"})
        st.rerun()
    show("actions")

    st.subheader("Schedule and safety")
    schedule = draft.setdefault("schedule", {"every_minutes": 60})
    safety = draft.setdefault("safety", {})
    cols = st.columns(4)
    schedule["every_minutes"] = int(
        cols[0].number_input(
            "Every (minutes)",
            min_value=1,
            value=int(schedule.get("every_minutes", 60)),
            key=f"b{v}_every",
        )
    )
    safety["max_daily_actions"] = int(
        cols[1].number_input(
            "Max actions a day",
            min_value=1,
            value=int(safety.get("max_daily_actions", 10)),
            key=f"b{v}_cap",
        )
    )
    safety["cooldown_minutes"] = int(
        cols[2].number_input(
            "Cooldown (minutes)",
            min_value=0,
            value=int(safety.get("cooldown_minutes", 1440)),
            key=f"b{v}_cooldown",
        )
    )
    safety["dry_run"] = cols[3].toggle(
        "Dry run", bool(safety.get("dry_run", False)), key=f"b{v}_dry"
    )
    safety["require_approval"] = cols[3].toggle(
        "Require approval", bool(safety.get("require_approval", False)), key=f"b{v}_approval"
    )
    cols = st.columns(4)
    days = cols[0].multiselect(
        "Only on these days (account's time zone; none = every day)",
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        default=schedule.get("days") or [],
        key=f"b{v}_days",
    )
    schedule["days"] = days or None
    limited = cols[1].toggle(
        "Only between these hours", schedule.get("hours") is not None, key=f"b{v}_limit_hours"
    )
    if limited:
        start, end = cols[1].slider(
            "Hours [from, to)", 0, 24, tuple(schedule.get("hours") or (8, 20)), key=f"b{v}_hours"
        )
        schedule["hours"] = [start, end]
    else:
        schedule["hours"] = None
    min_spend = cols[2].number_input(
        "Min spend in the window (0 = none)",
        min_value=0.0,
        value=float(safety.get("min_spend") or 0),
        key=f"b{v}_min_spend",
        help="Thin data never matches: the first windowed condition's window is used.",
    )
    safety["min_spend"] = min_spend or None
    min_impressions = cols[3].number_input(
        "Min impressions (0 = none)",
        min_value=0,
        value=int(safety.get("min_impressions") or 0),
        key=f"b{v}_min_impressions",
    )
    safety["min_impressions"] = int(min_impressions) or None
    for section, field in (
        ("schedule", "days"),
        ("schedule", "hours"),
        ("safety", "min_spend"),
        ("safety", "min_impressions"),
    ):
        if draft[section].get(field) is None:
            draft[section].pop(field, None)  # absent, as RULES.md writes the default
    show("schedule")
    show("safety")

    problems = problems_by_section(draft)
    st.divider()
    if problems:
        st.warning("Fix the problems marked above to preview or save.")
    else:
        st.subheader("Preview: what matches now")
        evaluation = preview_rule(parse_rule(draft))
        st.caption(
            f"{len(evaluation.matched)} of {len(evaluation.candidates)} candidates match "
            "(nothing is changed)"
        )
        st.dataframe(
            [
                {
                    "Entity": c.name,
                    "Account": c.account,
                    "Matches": c.matched,
                    **{k: trace_value(val) or "—" for k, val in c.values.items()},
                }
                for c in evaluation.candidates
            ],
            hide_index=True,
            width="stretch",
        )
    save_cols = st.columns(3)
    editing = state["builder_rule_id"]
    if save_cols[0].button(
        "Save as new rule" if editing is None else "Save new version",
        key="builder_save",
        disabled=bool(problems),
        type="primary",
    ):
        try:
            view = save_rule(draft, rule_id=editing)
        except InputError as error:
            st.error(f"**{error.field}**: {error.problem}")
        else:
            state["builder_rule_id"] = view.id
            flash(f"Saved “{view.name}” (rule {view.id}, version {view.version})")
    if editing is not None and save_cols[1].button("Run now", key="builder_run"):
        try:
            result = run_rule_now(editing)
            flash(f"Ran rule {editing}: {result.status}, {result.actions_taken} acted")
        except RexError as error:
            st.error(str(error))
    save_cols[2].download_button(
        "Export JSON", json.dumps(draft, indent=2, default=str), "rule.json", key="builder_export"
    )
    if editing is not None:
        st.caption(
            f"Editing rule {editing} (saved as a new version); "
            f"current version {get_rule(editing).version}"
        )
