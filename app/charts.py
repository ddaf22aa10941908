"""Plotly figures for the pages: training curves and the embedding map (one WebGL trace)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

# Distinct colours readable on a projector (Tableau 10, then a lighter set).
PALETTE = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac", "#1f77b4", "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5", "#c49c94",
]
UNLABELLED = "#c8c8c8"
FONT = {"size": 15}


def colour_of(code: int) -> str:
    return UNLABELLED if code < 0 else PALETTE[code % len(PALETTE)]


def _layout(fig: go.Figure, title: str, height: int, y_title: str = "", x_title: str = "") -> None:
    fig.update_layout(
        title={"text": title, "font": {"size": 17}},
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        font=FONT,
        legend={"orientation": "h", "yanchor": "top", "y": -0.32, "xanchor": "left", "x": 0},
        xaxis_title=x_title,
        yaxis_title=y_title,
        hovermode="x unified",
    )


def curves(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    y_title: str = "",
    x_title: str = "step",
    height: int = 300,
    y_range: tuple[float, float] | None = None,
    dashed: Sequence[str] = (),
    hidden: Sequence[str] = (),
) -> go.Figure:
    """Line chart of named (x, y) series; ``hidden`` ones start switched off (click their
    legend entry to show them)."""
    fig = go.Figure()
    for i, (name, (x, y)) in enumerate(series.items()):
        fig.add_trace(
            go.Scatter(
                x=list(x), y=list(y), name=name, mode="lines+markers" if len(x) < 30 else "lines",
                line={"width": 3, "color": PALETTE[i % len(PALETTE)],
                      "dash": "dash" if name in dashed else "solid"},
                visible="legendonly" if name in hidden else True,
            )
        )
    _layout(fig, title, height, y_title, x_title)
    if len(series) > 1:
        fig.update_layout(showlegend=True, height=height + 50, margin={"b": 60})
    else:
        fig.update_layout(showlegend=False)
    if y_range is not None:
        fig.update_yaxes(range=list(y_range))
    return fig


def small_multiples(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    columns: int = 3,
    row_height: int = 170,
    x_title: str = "step",
) -> go.Figure:
    """One small line chart per named (x, y) series, each on its own y scale (scalars of
    different sizes side by side), ``columns`` to a row."""
    names = list(series)
    columns = max(1, min(columns, len(names)))
    rows = max(1, -(-len(names) // columns))
    specs = [[{} if r * columns + c < len(names) else None for c in range(columns)]
             for r in range(rows)]  # no empty axes after the last chart
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=names, specs=specs,
                        horizontal_spacing=0.08, vertical_spacing=min(0.3, 0.6 / rows))
    for i, (name, (x, y)) in enumerate(series.items()):
        fig.add_trace(
            go.Scatter(x=list(x), y=list(y), name=name, showlegend=False,
                       mode="lines+markers" if len(x) < 30 else "lines",
                       line={"width": 2, "color": PALETTE[i % len(PALETTE)]}),
            row=i // columns + 1, col=i % columns + 1,
        )
    _layout(fig, title, 80 + rows * row_height)
    fig.update_layout(showlegend=False, hovermode="x", margin={"t": 80})
    fig.update_annotations(font={"size": 14})
    for i in range(max(0, len(names) - columns), len(names)):  # under the lowest charts
        fig.update_xaxes(title_text=x_title, title_standoff=2, row=i // columns + 1,
                         col=i % columns + 1)
    return fig


def bars(names: Sequence[str], values: Sequence[float], title: str, height: int = 260) -> go.Figure:
    fig = go.Figure(go.Bar(x=list(names), y=list(values),
                           marker_color=[colour_of(i) for i in range(len(names))]))
    _layout(fig, title, height)
    fig.update_layout(hovermode="closest")
    return fig


def colour_codes(codes: np.ndarray) -> dict[str, Any]:
    """Marker colours as the codes themselves on a stepped colour scale (``colour_of`` for
    each code, grey for -1): one small integer array in the figure instead of a colour string
    per point, which at 50,000 points is most of what a redraw sends and parses."""
    codes = np.asarray(codes, dtype=np.int16)
    top = int(codes.max(initial=0))
    steps = [colour_of(c) for c in range(-1, top + 1)]  # code c -> step c + 1
    scale = []
    for i, colour in enumerate(steps):
        scale += [[i / len(steps), colour], [(i + 1) / len(steps), colour]]
    return {"color": codes, "colorscale": scale, "cmin": -1.5, "cmax": top + 0.5,
            "showscale": False}


def marker_for(n: int) -> tuple[float, float]:
    """Point size (px) and opacity for a map of ``n`` points: 7 px and 0.85 up to 2,000 points;
    above, the area of a point shrinks as 1 / sqrt(n) and its opacity as 1 / n^(1/4), so
    10,000 or 50,000 points do not paint one solid blot: where points pile up the colour
    deepens, and the map reads as a density of each colour (2.5 px and 0.3 at the least)."""
    side = min(1.0, (2000 / max(n, 1)) ** 0.25)  # the square root of the area's shrink
    return max(2.5, 7 * side), max(0.3, 0.85 * side)


def embedding_map(
    coords: np.ndarray,
    codes: np.ndarray,
    names: Sequence[str],
    hover: Sequence[str],
    query: int | None = None,
    neighbours: Sequence[int] = (),
    height: int = 560,
    title: str = "",
    meta: str = "",
) -> go.Figure:
    """The embedding map: every point in ONE Scattergl trace (trace 0, coloured per point),
    then the query (a star) and its neighbours (rings) as small overlay traces. ``meta`` tags
    the figure so the hover thumbnails (``app.hover``) find it in the page.

    Each point's ``customdata`` is its row in ``coords`` so a selection on any trace maps back.
    """
    n = len(coords)
    rows = np.arange(n)
    size, opacity = marker_for(n)
    fig = go.Figure(
        go.Scattergl(
            x=coords[:, 0], y=coords[:, 1], mode="markers",
            marker={**colour_codes(codes), "size": size, "opacity": opacity,
                    "line": {"width": 0}},
            customdata=rows, text=list(hover),
            hovertemplate="%{text}<extra></extra>", name="images", showlegend=False,
            selected={"marker": {"size": 16, "opacity": 1.0}},
            # above 20,000 points the others are not dimmed: restyling every point at a click
            # is what a browser without a GPU spends most of a click on
            unselected={"marker": {"opacity": 0.35}} if n <= 20_000 else None,
        )
    )
    if len(neighbours):
        nb = np.asarray(neighbours, dtype=int)
        fig.add_trace(go.Scattergl(
            x=coords[nb, 0], y=coords[nb, 1], mode="markers", customdata=nb,
            marker={"size": 13, "color": "rgba(0,0,0,0)", "line": {"width": 2, "color": "#222"}},
            hoverinfo="skip", showlegend=False, name="neighbours",
        ))
    if query is not None:
        fig.add_trace(go.Scattergl(
            x=[coords[query, 0]], y=[coords[query, 1]], mode="markers", customdata=[query],
            marker={"size": 20, "symbol": "star", "color": colour_of(int(codes[query])),
                    "line": {"width": 2, "color": "#111"}},
            hoverinfo="skip", showlegend=False, name="query",
        ))
    fig.update_layout(
        title={"text": title, "font": {"size": 17}} if title else None,
        height=height, margin={"l": 0, "r": 0, "t": 36 if title else 8, "b": 0},
        # No dragmode/clickmode: Streamlit sets pan + click-to-select; a lasso dragmode would
        # turn click selection off. The lasso is one click away in the mode bar.
        font=FONT, hovermode="closest",
        plot_bgcolor="#fafafa", meta=meta or None,
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x", scaleratio=1)
    return fig


def selected_rows(event: Any) -> list[int]:
    """Row indices (into the map's points) selected in a ``st.plotly_chart`` event."""
    if not event:
        return []
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return []
    rows: list[int] = []
    for p in points:
        cd = p.get("customdata")
        if isinstance(cd, list):
            cd = cd[0] if cd else None
        if cd is None and p.get("curve_number", 0) == 0:
            cd = p.get("point_index", p.get("point_number"))
        if cd is not None and int(cd) not in rows:
            rows.append(int(cd))
    return rows


def legend_html(names: Sequence[str], counts: Sequence[int] | None = None) -> str:
    """Coloured chips naming each colour of the map (the map is one trace, so it has no
    legend of its own)."""
    chips = []
    for i, name in enumerate(names):
        count = f" <span style='opacity:.6'>({counts[i]})</span>" if counts is not None else ""
        chips.append(
            f"<span style='display:inline-block;margin:2px 10px 2px 0;font-size:1rem'>"
            f"<span style='display:inline-block;width:.9em;height:.9em;border-radius:50%;"
            f"background:{colour_of(i)};margin-right:.35em;vertical-align:-.1em'></span>"
            f"{html.escape(str(name))}{count}</span>"
        )
    return "<div>" + "".join(chips) + "</div>"


def spectrum(series: dict[str, Sequence[float]], title: str, height: int = 260) -> go.Figure:
    """Singular values (each series divided by its largest) against their index, log scale:
    a healthy embedding decays slowly; a collapsed one drops to ~0 after a few values."""
    fig = go.Figure()
    for i, (name, values) in enumerate(series.items()):
        fig.add_trace(go.Scatter(
            x=list(range(1, len(values) + 1)), y=[max(float(v), 1e-6) for v in values],
            name=name, mode="lines", line={"width": 3, "color": PALETTE[i % len(PALETTE)]},
        ))
    _layout(fig, title, height, "σ_k / σ_1", "k")
    fig.update_yaxes(type="log")
    fig.update_layout(showlegend=len(series) > 1, margin={"b": 60 if len(series) > 1 else 10})
    return fig


def histograms(hists: dict[str, dict], title: str, x_title: str = "",
               height: int = 260) -> go.Figure:
    """Overlaid histograms given as ``{"edges": [...], "counts": [...]}`` (the engine's
    :func:`engine.eval.collapse.histogram`), each normalised to a fraction of its values so
    sets of different sizes compare."""
    fig = go.Figure()
    for i, (name, h) in enumerate(hists.items()):
        edges, counts = h["edges"], h["counts"]
        total = max(sum(counts), 1)
        fig.add_trace(go.Bar(
            x=[(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)],
            y=[c / total for c in counts], width=[b - a for a, b in zip(edges[:-1], edges[1:],
                                                                      strict=True)],
            name=name, marker_color=PALETTE[i % len(PALETTE)], opacity=0.6,
        ))
    _layout(fig, title, height, "fraction", x_title)
    fig.update_layout(barmode="overlay", hovermode="closest", showlegend=True,
                      margin={"b": 60})
    return fig
