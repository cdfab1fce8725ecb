"""`streamlit run`, with the app's own navigation from the very first request.

Streamlit still supports its first multipage scheme, where every file in `pages/` is a
page of its own. It decides per process, from whether a `pages/` folder sits beside the
entry script, and only unlearns it once some session has run `st.navigation`. So the
first browser to open a deep link after a start (a bookmark of /rules, a tab left open
across a restart) got that scheme: `app.py` never ran, the sidebar listed file names
("notices" among them) and the page lost its wide layout. Rex's pages live in `pages/`
and are routed by `app.py` alone, so this tells Streamlit so before it serves anything.
"""

from __future__ import annotations

import sys

from streamlit.runtime.pages_manager import PagesManager
from streamlit.web.cli import main

if __name__ == "__main__":
    PagesManager.uses_pages_directory = False  # app.py's st.navigation routes every page
    sys.argv = ["streamlit", *sys.argv[1:]]
    sys.exit(main())
