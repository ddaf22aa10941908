"""The Streamlit UI: thin pages over the engine (no science here; see engine/)."""
