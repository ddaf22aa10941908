"""Forgetting the widgets a browser session no longer draws.

Streamlit (1.67) keeps, for the life of a session, the metadata of every widget id the session
ever drew (its callback, and its options with their labels: ``WStates.widget_metadata``) and
the mapping of its key; of a widget no longer drawn it drops only the value. The app draws
widgets under new keys by design: a run picker whose listed runs changed
(:func:`app.run_info.pick_run`), a button after its press (:mod:`app.clicks`). So every page
kept a run picker's worth of labels for each change of any run it listed, and a workshop
server grew with every run made (BENCHMARKS.md, "Workshop load": 0.15 MB a run, 20 pages).

:func:`forget` is called at the start of every full script run: the metadata and key of each
widget that holds no value any more (Streamlit dropped it when the widget was not drawn) are
dropped too. A widget drawn again registers both anew.
"""

from __future__ import annotations

import logging

from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx
from streamlit.runtime.state.common import is_element_id

log = logging.getLogger(__name__)


def forget() -> int:
    """Drop the metadata and key of every widget of this session without a value; returns how
    many. Nothing (0) outside a script run, or where Streamlit's session state is laid out
    otherwise (logged once)."""
    ctx = get_script_run_ctx()
    if ctx is None:
        return 0
    try:
        safe = ctx.session_state
        with safe._lock:
            state = safe._state
            widgets, keys = state._new_widget_state, state._key_id_mapper
            live = set(widgets.states) | {k for k in state._old_state if is_element_id(k)}
            gone = [wid for wid in widgets.widget_metadata if wid not in live]
            for wid in gone:
                del widgets.widget_metadata[wid]
                key = keys.id_key_mapping.pop(wid, None)
                if key is not None and keys.get_id_from_key(key) == wid:
                    del keys._key_id_mapping[key]
        return len(gone)
    except AttributeError as exc:  # another Streamlit: its session state is its own business
        if not getattr(forget, "warned", False):
            forget.warned = True  # type: ignore[attr-defined]
            log.warning("stale widgets are not forgotten with this Streamlit: %s", exc)
        return 0
