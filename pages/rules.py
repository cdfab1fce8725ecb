"""Rules: the list (a table with an on/off switch, last run, actions and money moved in
7 days, errors; bulk enable / disable, sorting; a row opens the rule) and a builder that
writes RULES.md documents without typing JSON: the rule in plain language, a visible
mode, scope by picking, schedules in words, and a preview of what it would do."""

import json

import streamlit as st

from core.access.roles import Permission
from core.actions.kinds import ActionType
from core.db.models import RuleStatus
from core.engine.preview import preview_outcomes
from core.engine.run import run_rule_now
from core.enums import Level
from core.errors import RexError
from core.rules.builder import (
    OPERATORS,
    SCOPE_CHOICES_LIMIT,
    TEMPLATES,
    WINDOWS,
    account_choices,
    currency_label,
    duplicate_rule,
    go_live,
    import_rule,
    is_money,
    metric_choices,
    offers_go_live,
    outcome_text,
    problems_by_section,
    rule_currency,
    run_summary,
    save_draft,
    saved_rule,
    scope_choices,
    scope_currencies,
    scope_time_zones,
    set_statuses,
    template,
    window_words,
)
from core.rules.describe import describe_rule, describe_values
from core.rules.document import parse_rule
from core.rules.draft import (
    ACTION_WORDS,
    BUDGET_HOWS,
    COMBINES,
    DAYS,
    FILTER_FIELDS,
    FILTER_OPS,
    MODES,
    SCHEDULES,
    STATUSES,
    ConditionDraft,
    GroupDraft,
    Mode,
    RuleDraft,
    mode_of,
)
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
from pages._signin import session_actor, signed_in

# the statuses a listed rule can have (deleted rules are not listed)
LISTED_STATUSES = [s.value for s in (RuleStatus.ACTIVE, RuleStatus.PAUSED, RuleStatus.DRAFT)]

state = st.session_state
LEVEL_WORDS = {Level.CAMPAIGN: "campaigns", Level.ADSET: "ad sets", Level.AD: "ads"}


# ----------------------------------------------------------------- callbacks


def load(document: dict, rule_id: int | None = None, origin: str = "") -> None:
    """Put a document in the builder; new widget keys, so widgets take its values."""
    draft, note = RuleDraft.of(document)
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
        view = get_rule(rule_id, actor=session_actor())
    except RexError as error:  # deleted meanwhile, in another tab
        notify("error", str(error))
        return
    load(view.document, view.id)
    state["rules_view"] = "Builder"


def duplicate(rule_id: int) -> None:
    copy = act(lambda: duplicate_rule(rule_id, by=session_actor()),
               done=lambda c: f"Duplicated as “{c.name}” (a draft)")  # fmt: skip
    if copy is not None:
        load(copy.document, copy.id)
        state["rules_view"] = "Builder"


def switch(rule_id: int) -> None:
    status = RuleStatus.ACTIVE if state[f"on_{rule_id}"] else RuleStatus.PAUSED
    act(lambda: set_status(rule_id, status, by=session_actor()),
        done=lambda v: f"{v.name} is {v.status}")  # fmt: skip


def bulk(status: RuleStatus) -> None:
    picked = [int(k[5:]) for k in list(state.keys()) if k.startswith("pick_") and state[k]]
    if not picked:
        notify("info", "Tick the rules to change in the first column first.")
        return
    act(lambda: set_statuses(picked, status, by=session_actor()), done=str)
    for rule_id in picked:
        state[f"pick_{rule_id}"] = False


def run_now(rule_id: int) -> None:
    act(lambda: run_rule_now(rule_id, by=session_actor()),
        done=lambda result: run_summary(result, actor=session_actor()))  # fmt: skip


def make_live(rule_id: int) -> None:
    view = act(lambda: go_live(rule_id, by=session_actor()),
               done=lambda v: f"“{v.name}” is live (version {v.version})")  # fmt: skip
    if view is not None and state.get("builder_rule_id") == rule_id:
        load(view.document, rule_id)


def delete(rule_id: int, name: str) -> None:
    act(lambda: delete_rule(rule_id, by=session_actor()),
        done=f"Deleted {name}; its executions and actions stay on the record")  # fmt: skip
    if state.get("builder_rule_id") == rule_id:
        state["builder_rule_id"] = None


def save() -> None:
    view = act(lambda: save_draft(state["builder_draft"], state["builder_rule_id"],
                                  by=session_actor()),
               done=lambda v: f"Saved “{v.name}” (rule {v.id}, version {v.version})")  # fmt: skip
    if view is not None:
        state["builder_rule_id"] = view.id


def fresh_widgets() -> None:
    """Rows below a removed one move up: new widget keys, so they show their own values."""
    state["builder_version"] += 1


def remove_filter_row(index: int) -> None:
    state["builder_draft"].scope.remove_filter(index)
    fresh_widgets()


def remove_item(group: GroupDraft, index: int) -> None:
    group.remove(index)
    fresh_widgets()


def remove_action(index: int) -> None:
    state["builder_draft"].remove_action(index)
    fresh_widgets()


def optional_number(place, label: str, value: object, key: str, **options: object):  # type: ignore[no-untyped-def]
    """A number that may be left empty (None): the widget's default is None, so clearing
    it gives None; its start value is seeded once into its state."""
    if key not in state:
        state[key] = value
    return place.number_input(label, value=None, key=key, **options)


# ---------------------------------------------------------------------- page

actor = signed_in(Permission.READ)
st.title("Rules")
show_notices()
# the buttons that change rules: off for a viewer (core checks each rule's accounts too)
can_edit, can_run = actor.can(Permission.EDIT_RULES), actor.can(Permission.RUN_RULES)
if not can_edit:
    st.caption("You can read these rules; changing them takes the marketer role on their "
               "accounts (an admin grants it).")  # fmt: skip
if "builder_draft" not in state:
    load(template("Scale winners"), origin="Started from the template “Scale winners”")
state.setdefault("rules_view", "Rules")
view = st.segmented_control(
    "View", ["Rules", "Builder"], key="rules_view", required=True, label_visibility="collapsed"
)

# ------------------------------------------------------------------ the list
if view == "Rules":
    rows = rules_with_activity(actor=actor)
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
            "Enable selected", key="rules_enable", on_click=bulk, args=(RuleStatus.ACTIVE,),
            disabled=not can_edit,
        )  # fmt: skip
        bulk_cols[1].button("Disable selected", key="rules_disable", on_click=bulk,
                            args=(RuleStatus.PAUSED,), disabled=not can_edit)  # fmt: skip
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
                       label_visibility="collapsed", disabled=not can_edit)  # fmt: skip
        cols[2].button(f"**{rule.name}**", key=f"open_{rule.id}", type="tertiary", on_click=edit,
                       args=(rule.id,), help="Open in the builder")  # fmt: skip
        cols[2].caption(describe_rule(rule.rule, row.currency))
        cols[3].markdown(f"{rule.status} · {rule.level} · v{rule.version}")
        if rule.changed_by:
            cols[3].caption(f"changed by {rule.changed_by}")
        if row.can_go_live and can_edit:
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
                      args=(rule.id,), disabled=not can_edit)  # fmt: skip
            st.button("Run now", key=f"run_{rule.id}", on_click=run_now, args=(rule.id,),
                      disabled=not can_run)  # fmt: skip
            st.download_button("Export", json.dumps(rule.document, indent=2),
                               f"rule-{rule.id}.json", key=f"export_{rule.id}",
                               on_click="ignore")  # fmt: skip
            sure = st.checkbox("I understand: the rule stops and leaves the list",
                               key=f"confirm_delete_{rule.id}")  # fmt: skip
            st.button("Delete", key=f"delete_{rule.id}", disabled=not (sure and can_edit),
                      on_click=delete,
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
    draft: RuleDraft = state["builder_draft"]
    editing = saved_rule(state["builder_rule_id"], actor=actor)
    accounts = account_choices(actor=actor)
    if editing is None and state["builder_rule_id"] is not None:
        st.warning(f"Rule {state['builder_rule_id']} was deleted: saving makes a new rule.")
        state["builder_rule_id"] = None
    if editing is not None:
        st.info(
            f"Editing rule {editing.id} “{editing.name}” (version {editing.version}"
            + (f", saved by {editing.changed_by}" if editing.changed_by else "")
            + "): saving makes a new version."
        )
    elif state["builder_origin"]:
        st.info(
            f"{state['builder_origin']}, in **{MODES[draft.mode][0]}** mode (see Mode "
            "below). Nothing is saved until you press Save."
        )
    if state["builder_note"]:
        st.warning(state["builder_note"])
    words = st.container()  # the rule in plain language, once the draft is complete
    slots: dict[str, object] = {}

    draft.name = st.text_input("Name", draft.name, key=f"b{v}_name")
    slots["name"] = st.container()
    draft.status = st.radio(
        "Status", STATUSES, horizontal=True, index=STATUSES.index(draft.status),
        key=f"b{v}_status", help="Only active rules run on their schedule.",
    )  # fmt: skip
    modes = list(MODES)
    draft.mode = st.radio(
        "Mode", modes, index=modes.index(draft.mode), format_func=lambda m: MODES[m][0],
        captions=[MODES[m][1] for m in modes], key=f"b{v}_mode",
    )  # fmt: skip
    if draft.mode == Mode.LIVE and draft.status == RuleStatus.ACTIVE:
        st.warning("Saved like this, the rule changes Meta as soon as its conditions hold.")
    slots["status"] = st.container()

    # ------------------------------------------------------------- scope
    st.subheader("Scope")
    scope = draft.scope
    scope.account_ids = st.multiselect(
        "Accounts (none: all)", list(accounts),
        default=[a for a in scope.account_ids if a in accounts],
        format_func=lambda a: accounts[a].label, key=f"b{v}_accounts",
    )  # fmt: skip
    levels = list(Level)
    scope.level = st.radio(
        "Level", levels, index=levels.index(scope.level), horizontal=True,
        format_func=lambda level: LEVEL_WORDS[level].capitalize(), key=f"b{v}_level",
    )  # fmt: skip
    entities = LEVEL_WORDS[scope.level]
    scope.active_only = st.toggle(
        f"Only active {entities} (effective status ACTIVE), as Meta's rules do",
        scope.active_only, key=f"b{v}_active_only",
        help="Off: paused ones are judged too (archived and deleted ones never are).",
    )  # fmt: skip
    choices = scope_choices(scope.account_ids, scope.level, active_only=scope.active_only,
                            actor=actor)  # fmt: skip
    labels = {c.external_id: c.label for c in choices}
    missing = [i for i in scope.picked if i not in labels]
    scope.picked = st.multiselect(
        f"Pick {entities} (none: every one the filters let through)",
        [*labels, *missing], default=scope.picked,
        format_func=lambda i: labels.get(i, f"{i} · not among the synced {entities}"),
        key=f"b{v}_pick", placeholder="type to search by name, status, account or id",
    )  # fmt: skip
    if missing:
        st.warning(
            f"{len(missing)} picked id(s) are not among the synced {entities} of these "
            "accounts"
            + (" that are active" if scope.active_only else "")
            + ": they match nothing until they are. Remove them, or sync."
        )
    if len(choices) >= SCOPE_CHOICES_LIMIT:
        st.caption(f"The first {SCOPE_CHOICES_LIMIT} are listed: narrow with a name filter.")
    for i, item in enumerate(scope.filters):
        cols = st.columns([2, 2, 3, 1], vertical_alignment="bottom")
        item.field = cols[0].selectbox(
            f"Filter {i + 1} · Field", FILTER_FIELDS, index=FILTER_FIELDS.index(item.field),
            key=f"b{v}_f{i}_field",
        )  # fmt: skip
        item.op = cols[1].selectbox(
            "Op", FILTER_OPS, index=FILTER_OPS.index(item.op), key=f"b{v}_f{i}_op"
        )
        item.set_text(
            cols[2].text_input("Value (comma-separated for in)", item.text, key=f"b{v}_f{i}_value")
        )
        cols[3].button("✕", key=f"b{v}_f{i}_remove", on_click=remove_filter_row, args=(i,))
    st.button("Add a name or status filter", key=f"b{v}_add_filter", on_click=scope.add_filter)
    stated = draft.currency or ""
    currencies = ["", *sorted({a.currency for a in accounts.values()} | ({stated} - {""}))]
    shared = ", ".join(scope_currencies(draft, accounts)) or "none connected"
    draft.currency = st.selectbox(
        "Money values in", currencies, index=currencies.index(stated),
        format_func=lambda c: c or "the currency the accounts bill in", key=f"b{v}_currency",
        help="The currency of every amount in the rule (thresholds, budget amounts and bounds, "
        "min spend). Accounts billing in another currency are left out.",
    ) or None  # fmt: skip
    st.caption(f"The accounts in scope bill in {shared}.")
    slots["scope"] = st.container()
    money = currency_label(draft, accounts)

    # -------------------------------------------------------- conditions
    st.subheader("Conditions")

    def condition_widgets(node: ConditionDraft, key: str, number: str) -> None:
        st.markdown(f"**Condition {number}**")
        cols = st.columns([2, 2, 1, 3])
        names = metric_choices(windowed=False)
        node.set_metric(
            cols[0].selectbox(
                "Metric", names, index=names.index(node.metric),
                format_func=lambda m: METRICS[m].label, key=f"{key}_metric",
            )
        )  # fmt: skip
        if node.window is not None:
            options = list(WINDOWS) if node.window in WINDOWS else [node.window, *WINDOWS]
            node.window = cols[1].selectbox(
                "Window", options, index=options.index(node.window), format_func=window_words,
                key=f"{key}_window",
            )  # fmt: skip
        else:
            cols[1].caption("current value")
        node.op = cols[2].selectbox(
            "Op", OPERATORS, index=OPERATORS.index(node.op), key=f"{key}_op"
        )
        unit = f" ({money})" if is_money(node.metric) else ""
        if node.is_range:
            pair = cols[3].columns(2)
            node.low = pair[0].number_input(f"From{unit}", value=node.low, key=f"{key}_lo")
            node.high = pair[1].number_input(f"To{unit}", value=node.high, key=f"{key}_hi")
            return
        if node.windowed:
            node.set_baseline(
                cols[3].toggle("vs its own baseline", node.baseline is not None, key=f"{key}_ref")
            )
        if node.baseline is not None:
            baseline = node.baseline
            inner = cols[3].columns(2)
            baseline.window = inner[0].selectbox(
                "Baseline window", WINDOWS, format_func=window_words,
                index=WINDOWS.index(baseline.window) if baseline.window in WINDOWS else 0,
                key=f"{key}_ref_window",
            )  # fmt: skip
            baseline.times = inner[1].number_input(
                "× factor", value=baseline.times, key=f"{key}_ref_times"
            )
        else:
            node.value = cols[3].number_input(
                f"Value{unit}", value=node.value if node.value is not None else 0.0,
                key=f"{key}_value",
            )  # fmt: skip

    def group_widgets(group: GroupDraft, key: str, prefix: str) -> None:
        group.combine = st.radio(
            "Combine", list(COMBINES), index=list(COMBINES).index(group.combine),
            format_func=COMBINES.get, horizontal=True, key=f"{key}_mode",
        )  # fmt: skip
        for i, child in enumerate(group.items):
            number = f"{prefix}{i + 1}"
            with st.container(border=True):
                if isinstance(child, GroupDraft):
                    st.markdown(f"**Group {number}**")
                    group_widgets(child, f"{key}_{i}", f"{number}.")
                else:
                    condition_widgets(child, f"{key}_{i}", number)
                st.button("Remove", key=f"{key}_{i}_remove", on_click=remove_item,
                          args=(group, i))  # fmt: skip
        buttons = st.columns(4)
        buttons[0].button("Add condition", key=f"{key}_add", on_click=group.add_condition)
        if not prefix:
            buttons[1].button("Add group", key=f"{key}_add_group", on_click=group.add_group)

    group_widgets(draft.conditions, f"b{v}_c", "")
    slots["conditions"] = st.container()

    # ----------------------------------------------------------- actions
    st.subheader("Actions")
    types = list(ACTION_WORDS)  # the catalogue's kinds, in its order
    hows = list(BUDGET_HOWS)
    for i, action in enumerate(draft.actions):
        with st.container(border=True):
            st.markdown(f"**Action {i + 1}**")
            cols = st.columns([2, 2, 2, 2, 2], vertical_alignment="bottom")
            action.type = cols[0].selectbox(
                "Action", types, index=types.index(action.type), format_func=ACTION_WORDS.get,
                key=f"b{v}_a{i}_type",
            )  # fmt: skip
            if action.type == ActionType.CHANGE_BUDGET:
                action.how = cols[1].selectbox(
                    "How", hows, index=hows.index(action.how), format_func=BUDGET_HOWS.get,
                    key=f"b{v}_a{i}_mode",
                )  # fmt: skip
                action.amount = cols[2].number_input(
                    "Amount (%)" if action.how == "by_percent" else f"Amount ({money})",
                    value=action.amount, key=f"b{v}_a{i}_amount",
                )  # fmt: skip
                action.min = optional_number(
                    cols[3], f"Min ({money}, empty: none)", action.min, f"b{v}_a{i}_min"
                )
                action.max = optional_number(
                    cols[4], f"Max ({money}, empty: none)", action.max, f"b{v}_a{i}_max"
                )
            elif action.type == ActionType.DUPLICATE:
                action.name_suffix = cols[1].text_input(
                    "Name suffix", action.name_suffix, key=f"b{v}_a{i}_suffix"
                )
            elif action.type == ActionType.NOTIFY:
                action.message = cols[1].text_input(
                    "Message", action.message, key=f"b{v}_a{i}_message"
                )
            st.button("Remove", key=f"b{v}_a{i}_remove", on_click=remove_action, args=(i,))
    st.button("Add action", key=f"b{v}_add_action", on_click=draft.add_action)
    slots["actions"] = st.container()

    # -------------------------------------------------- schedule, safety
    st.subheader("Schedule")
    schedule, safety = draft.schedule, draft.safety
    cols = st.columns(3)
    presets = list(SCHEDULES)
    schedule.preset = cols[0].selectbox(
        "Runs", presets, index=presets.index(schedule.preset),
        format_func=lambda p: SCHEDULES[p][0], key=f"b{v}_schedule",
    )  # fmt: skip
    if schedule.preset == "custom":
        schedule.every_minutes = cols[1].number_input(
            "Every (minutes)", value=schedule.every_minutes, step=1, key=f"b{v}_every",
        )  # fmt: skip
    elif schedule.preset == "daily":
        schedule.hour = cols[1].selectbox(
            "At", list(range(24)), index=schedule.hour, format_func=lambda h: f"{h:02}:00",
            key=f"b{v}_daily_at",
        )  # fmt: skip
        cols[1].caption(
            "In each account's time zone ("
            + "; ".join(scope_time_zones(draft, accounts))
            + "): Rex checks hourly and acts only in that hour."
        )
    schedule.days = cols[2].multiselect(
        "Only on these days (account's time zone; none = every day)", DAYS,
        default=schedule.days, key=f"b{v}_days",
    )  # fmt: skip
    if schedule.preset != "daily":
        limited = cols[1].toggle(
            "Only between these hours", schedule.hours is not None, key=f"b{v}_limit_hours"
        )
        schedule.hours = (
            cols[1].slider("Hours [from, to)", 0, 24, schedule.hours or (8, 20), key=f"b{v}_hours")
            if limited
            else None
        )
    slots["schedule"] = st.container()

    st.subheader("Safety")
    cols = st.columns(4)
    safety.max_daily_actions = cols[0].number_input(
        "Max actions a day", value=safety.max_daily_actions, step=1, key=f"b{v}_cap",
    )  # fmt: skip
    safety.cooldown_minutes = cols[1].number_input(
        "Cooldown (minutes)", value=safety.cooldown_minutes, step=1, key=f"b{v}_cooldown",
        help="An entity acted on is left alone this long.",
    )  # fmt: skip
    safety.min_spend = optional_number(
        cols[2], f"Min spend in the window ({money}, empty: none)", safety.min_spend,
        f"b{v}_min_spend",
        help="Thin data never matches: the first windowed condition's window is used.",
    )  # fmt: skip
    safety.min_impressions = optional_number(
        cols[3], "Min impressions (empty: none)", safety.min_impressions,
        f"b{v}_min_impressions", step=1,
    )  # fmt: skip
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
        rule = parse_rule(draft.to_document())
        words.markdown(
            f"**In plain language:** {describe_rule(rule, rule_currency(draft, accounts))}"
        )
        preview = preview_outcomes(rule, actor=actor, rule_id=editing.id if editing else None)
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
        disabled=bool(problems) or not can_edit, type="primary", on_click=save,
    )  # fmt: skip
    if editing is not None:
        buttons[1].button("Run now", key="builder_run", on_click=run_now, args=(editing.id,),
                          disabled=not can_run)  # fmt: skip
        if offers_go_live(editing) and can_edit:
            buttons[2].button("Go live", key="builder_go_live", on_click=make_live,
                              args=(editing.id,), type="primary")  # fmt: skip
    buttons[3].download_button(
        "Export JSON", json.dumps(draft.to_document(), indent=2, default=str), "rule.json",
        key="builder_export", on_click="ignore",
    )  # fmt: skip
    if editing is not None and offers_go_live(editing):
        st.caption(
            f"Its dry run ran at {editing.last_execution_at:%Y-%m-%d %H:%M} UTC: review what it "
            "would have done on the Executions page, then **Go live** saves the saved version "
            f"(v{editing.version}) with dry run off and active."
        )
    elif editing is not None and mode_of(editing.document) == Mode.DRY_RUN:
        st.caption("Saved in Test first mode: **Run now** to see what it would do.")
