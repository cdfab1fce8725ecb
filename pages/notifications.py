"""Notifications (everyone signed in): what Rex told you, where it went, and what you
want to hear, on which channels and when."""

from datetime import time

import streamlit as st

from core.errors import InputError, RexError
from core.labels import format_time
from core.notify.inbox import InboxItem, inbox, mark_read
from core.notify.preferences import (
    EVENT_CHOICES,
    KEEP,
    PERSONAL_CHANNELS,
    my_preferences,
    save_preferences,
    time_zones,
)
from core.settings import get_settings
from pages._notices import act, notify, show_notices
from pages._signin import session_actor, signed_in

# core's field → the label on screen, for the messages of a refused save
FIELDS = {
    "muted": "Tell me about", "channels": "Where", "digest_hour": "Daily digest · At",
    "time_zone": "Time zone", "quiet_start": "Quiet hours · From",
    "quiet_end": "Quiet hours · Until", "slack_url": "Slack URL", "webhook_url": "Webhook URL",
}  # fmt: skip
URLS = {"slack": "https://hooks.slack.com/services/…", "webhook": "https://example.com/rex-hook"}


def _mark(receipt_ids: list[int] | None, unread: bool = False) -> None:
    act(mark_read, receipt_ids, actor=session_actor(), unread=unread,
        done=lambda n: f"{n} marked {'unread' if unread else 'read'}")  # fmt: skip


def _plain(text: str) -> str:
    """Text from rules and Meta, shown as written (no markdown, no $…$ formulas)."""
    return "".join(f"\\{c}" if c in "\\`*_[]<>$~|#" else c for c in text)


def _item(item: InboxItem) -> None:
    """One notification: what, when, about which account, its lines and facts, where it
    went — and Open, Mark read / unread."""
    with st.container(border=True):
        text, buttons = st.columns([5, 1])
        text.markdown(f"**{_plain(item.title)}**" + (" :blue-badge[unread]" if item.unread else ""))
        text.caption(" · ".join(filter(None, (format_time(item.created_at), item.event,
                                              item.account))))  # fmt: skip
        if item.body:
            text.markdown(_plain(item.body))
        if item.items:
            text.markdown("\n".join(f"- {_plain(line)}" for line in item.items))
        facts = [f"{_plain(k)}: **{_plain(v)}**" for k, v in item.facts if v != item.account]
        if facts:
            text.caption("  \n".join(facts))
        went = [f"{d.channel} to {d.to} — {_plain(d.words)}" for d in item.deliveries]
        text.caption("Where it went: " + " · ".join(went) if went else "Only here, in your inbox.")
        if item.link:
            buttons.link_button("Open", item.link, icon=":material/open_in_new:")
        buttons.button("Mark unread" if not item.unread else "Mark read",
                       key=f"read_{item.receipt_id}", on_click=_mark,
                       args=([item.receipt_id], not item.unread))  # fmt: skip


def _url(name: str) -> object:
    """What to do with a personal URL: remove it (""), replace it (the typed one), KEEP."""
    if st.session_state.get(f"pref_{name}_remove"):
        return ""
    return (st.session_state.get(f"pref_{name}_url") or "").strip() or KEEP


def _save() -> None:
    state = st.session_state
    quiet = bool(state.get("pref_quiet"))

    def clock(key: str) -> str | None:
        value = state.get(key)
        return f"{value:%H:%M}" if quiet and isinstance(value, time) else None

    if quiet and clock("pref_quiet_start") is None and clock("pref_quiet_end") is None:
        notify("error", f"**{FIELDS['quiet_start']}**: pick when your quiet hours start and "
                        "end, or turn them off")  # fmt: skip
        return
    try:
        saved = save_preferences(
            by=session_actor(),
            muted=[k.event.value for k in EVENT_CHOICES if not state.get(f"pref_event_{k.event}")],
            channels=[c for c in PERSONAL_CHANNELS if state.get(f"pref_channel_{c}")],
            digest=bool(state.get("pref_digest")), digest_hour=int(state["pref_digest_hour"]),
            time_zone=state["pref_time_zone"],
            quiet_start=clock("pref_quiet_start"), quiet_end=clock("pref_quiet_end"),
            slack_url=_url("slack"), webhook_url=_url("webhook"),
        )  # fmt: skip
    except InputError as error:
        notify("error", f"**{FIELDS.get(error.field, error.field)}**: {error.problem}")
        return
    except RexError as error:
        notify("error", str(error))
        return
    for name in ("slack", "webhook"):  # a URL leaves the browser session once stored
        state.pop(f"pref_{name}_url", None)
        state.pop(f"pref_{name}_remove", None)
    where = ", ".join(sorted(saved.channels)) or "only this inbox"
    digest = f"at {saved.digest_hour:02d}:00" if saved.digest else "off"
    notify("success", f"Preferences saved: {where} · daily digest {digest} · quiet hours "
                      f"{saved.quiet_words}")  # fmt: skip


actor = signed_in()
st.title("Notifications")
show_notices()
unread_only = bool(st.session_state.get("inbox_unread_only"))
mine = inbox(actor=actor, unread_only=unread_only)
prefs = my_preferences(actor=actor)

inbox_tab, preferences_tab = st.tabs([f"Inbox ({mine.unread} unread)", "Preferences"])
with inbox_tab:
    top = st.columns([2, 2, 3])
    top[0].toggle("Unread only", key="inbox_unread_only")
    top[1].button("Mark all read", key="inbox_mark_all", on_click=_mark, args=(None,),
                  disabled=not mine.unread, icon=":material/done_all:")  # fmt: skip
    listed = mine.unread if unread_only else mine.total
    cut = f" (the newest {len(mine.items)})" if len(mine.items) < listed else ""
    top[2].caption(f"{mine.unread} unread of {mine.total}, newest first{cut}")
    if not mine.items:
        st.info(
            "Nothing unread." if mine.total else
            "Nothing yet. Rex tells you here when a rule's notify action matches, an action "
            "fails, proposals wait for approval or an account needs reconnecting — on the "
            "accounts you have a role on — and on the channels you choose under Preferences."
        )  # fmt: skip
    for item in mine.items:
        _item(item)

with preferences_tab, st.form("preferences"):
    st.caption("Your inbox here keeps everything, whatever you choose below.")
    st.markdown("**Tell me about**")
    for kind in EVENT_CHOICES:
        st.checkbox(kind.label, value=kind.event not in prefs.muted, help=kind.explains,
                    key=f"pref_event_{kind.event}")  # fmt: skip

    st.markdown("**Where**")
    mail = bool(get_settings().smtp_host)
    st.checkbox(f"E-mail to {actor.email}", value="email" in prefs.channels, disabled=not mail,
                key="pref_channel_email")  # fmt: skip
    if not mail:
        st.caption("Rex cannot send e-mail yet: an admin sets up SMTP (REX_SMTP_HOST). Your "
                   "choice is kept for then.")  # fmt: skip
    for name, label, has_url in (("slack", "Slack", prefs.has_slack_url),
                                 ("webhook", "Webhook", prefs.has_webhook_url)):  # fmt: skip
        st.checkbox(label, value=name in prefs.channels, key=f"pref_channel_{name}")
        st.text_input(
            f"{label} URL", type="password", key=f"pref_{name}_url", placeholder=URLS[name],
            help="Your own incoming webhook, stored encrypted and never shown back. "
            + ("Requests are signed with REX_WEBHOOK_SECRET." if name == "webhook" else ""),
        )  # fmt: skip
        if has_url:
            st.caption(f"A {label} URL is set (not shown): type another to replace it.")
            st.checkbox(f"Remove the {label} URL", key=f"pref_{name}_remove")

    st.markdown("**When**")
    digest, hour = st.columns(2)
    digest.toggle("Daily digest", value=prefs.digest, key="pref_digest",
                  help="Once a day: actions and money moved, approvals waiting, new "
                  "suggestions, outcomes measured.")  # fmt: skip
    hour.selectbox("Daily digest · At", range(24), index=prefs.digest_hour,
                   format_func=lambda h: f"{h:02d}:00", key="pref_digest_hour")  # fmt: skip
    zones = time_zones()
    st.selectbox("Time zone", zones, key="pref_time_zone",
                 index=zones.index(prefs.time_zone if prefs.time_zone in zones else "UTC"),
                 help="Your digest's hour and your quiet hours are in this time zone.")  # fmt: skip
    quiet, start, end = st.columns(3)
    quiet.toggle("Quiet hours", value=prefs.quiet_start is not None, key="pref_quiet",
                 help="Nothing goes to your channels then; it is sent when they end.")  # fmt: skip
    start.time_input("Quiet hours · From", value=prefs.quiet_start, key="pref_quiet_start")
    end.time_input("Quiet hours · Until", value=prefs.quiet_end, key="pref_quiet_end")
    st.form_submit_button("Save", type="primary", on_click=_save, key="pref_save")
