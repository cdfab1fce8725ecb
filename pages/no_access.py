"""What a signed-in user without any grant sees."""

import streamlit as st

from pages._signin import signed_in

actor = signed_in()
st.title("No access yet")
st.info(
    f"You are signed in as {actor.email}, but no ad account has been shared with you yet. "
    "Ask an admin to grant you a role on your team's accounts (Settings → Users, or "
    f"`python -m core users grant {actor.email} ACCOUNT ROLE`)."
)
