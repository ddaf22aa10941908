"""SSL Studio: the router. Page config and navigation only; each page lives in app/pages/."""

import streamlit as st

from app import heap, participants, run_info, stale_widgets
from app.state import map_cache

st.set_page_config(page_title="SSL Studio", page_icon=":material/hub:", layout="wide")
heap.freeze_imports()  # once per process: full collections skip what lives as long as it
map_cache()  # once per process: starts compiling UMAP in the background
run_info.forget_drawn_statuses()  # each full run: the statuses it draws are read anew
stale_widgets.forget()  # each full run: what Streamlit keeps of widgets this page no longer draws
# A widget drawn with a new key (a run picker whose list changed, a button after its press) takes
# the old one's place, but the browser retains the old one beside it until a run completes; after
# a run ended by st.rerun() neither reads as stale, and two pickers or two Train buttons show.
st.html("<style>[data-retained] {display: none}</style>")

# One line per page; the first is the landing page.
PAGES = [
    st.Page("app/pages/train.py", title="Train", icon=":material/model_training:", default=True),
    st.Page("app/pages/explore.py", title="Explore", icon=":material/scatter_plot:"),
    st.Page("app/pages/compare.py", title="Compare", icon=":material/compare:"),
    st.Page("app/pages/lessons.py", title="Lessons", icon=":material/school:"),
    st.Page("app/pages/runs.py", title="Runs", icon=":material/folder_open:"),
]

page = st.navigation(PAGES)
participants.require_name()  # a first visit asks for the participant's name (kept in ?who=)
participants.sidebar()
page.run()
