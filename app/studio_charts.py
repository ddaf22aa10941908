"""Plotly figures of the augmentation studio: invariance profiles (runs overlaid), a view cloud
on the map, and a sweep's pair grid."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from app.charts import FONT, PALETTE, colour_of

METRICS = {"cosine": "mean cosine, image vs augmented copy (h)",
           "knn": "kNN top-1 of augmented test images"}


def profile_bars(profiles: dict[str, dict[str, Any]], metric: str, level: str,
                 height: int = 380) -> go.Figure:
    """Grouped bars, one group per op and one bar per run (``profiles``: run label ->
    profile dict); ops a run trained with are marked with a dot above its bar. ``level``:
    ``run`` | ``weaker`` | ``stronger`` (ops without a strength show their one level)."""
    ops: list[str] = []
    for profile in profiles.values():
        for r in profile["rows"]:
            if r["op"] not in ops:
                ops.append(r["op"])
    fig = go.Figure()
    for i, (label, profile) in enumerate(profiles.items()):
        by_op: dict[str, dict[str, Any]] = {}
        for r in profile["rows"]:
            if r["level"] == level or (r["op"] not in by_op and r["level"] == "run"):
                by_op[r["op"]] = r
        values = [by_op[o][metric] if o in by_op else None for o in ops]
        marks = ["●" if o in by_op and by_op[o]["in_run"] else "" for o in ops]
        fig.add_trace(go.Bar(x=ops, y=values, name=label, text=marks, textposition="outside",
                             marker_color=PALETTE[i % len(PALETTE)],
                             hovertemplate="%{x}: %{y:.3f}<extra>" + label + "</extra>"))
        if metric == "knn" and profile.get("clean_knn") is not None:
            fig.add_hline(y=profile["clean_knn"], line_dash="dash",
                          line_color=PALETTE[i % len(PALETTE)],
                          annotation_text=f"clean kNN {profile['clean_knn']:.2f}")
    fig.update_layout(barmode="group", height=height, font=FONT,
                      margin={"l": 10, "r": 10, "t": 90, "b": 10},
                      title={"text": f"{METRICS[metric]} · {level} strength · ● = trained with",
                             "font": {"size": 16}, "y": 0.98, "yanchor": "top"},
                      yaxis_range=[min(0.0, _low(fig)), 1.12],
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0})
    return fig


def _low(fig: go.Figure) -> float:
    ys = [y for t in fig.data for y in (t.y or ()) if y is not None]
    return float(min(ys)) - 0.05 if ys else 0.0


def view_cloud_map(xy: np.ndarray, codes: np.ndarray, names: Sequence[str], source: int,
                   views_xy: np.ndarray, cosine: np.ndarray, height: int = 520) -> go.Figure:
    """The map's points (faint, by class), the source image (a star) and its views (diamonds,
    coloured by cosine to the source), each joined to the source."""
    fig = go.Figure()
    for code in np.unique(codes):
        sel = codes == code
        name = names[code] if 0 <= code < len(names) else "unlabelled"
        fig.add_trace(go.Scattergl(x=xy[sel, 0], y=xy[sel, 1], mode="markers", name=str(name),
                                   marker={"size": 5, "color": colour_of(int(code)),
                                           "opacity": 0.35}, hoverinfo="skip"))
    sx, sy = float(xy[source, 0]), float(xy[source, 1])
    lx: list[float | None] = []
    ly: list[float | None] = []
    for x, y in views_xy:
        lx += [sx, float(x), None]
        ly += [sy, float(y), None]
    fig.add_trace(go.Scatter(x=lx, y=ly, mode="lines", line={"width": 1, "color": "#555"},
                             hoverinfo="skip", showlegend=False))
    fig.add_trace(go.Scatter(
        x=views_xy[:, 0], y=views_xy[:, 1], mode="markers", name="views",
        marker={"size": 11, "symbol": "diamond", "color": cosine, "colorscale": "Viridis",
                "cmin": min(0.0, float(cosine.min())), "cmax": 1.0,
                "colorbar": {"title": "cos"}, "line": {"width": 1, "color": "#222"}},
        text=[f"view {i}: cos {c:.3f}" for i, c in enumerate(cosine)], hoverinfo="text"))
    fig.add_trace(go.Scatter(x=[sx], y=[sy], mode="markers", name="source image",
                             marker={"size": 22, "symbol": "star", "color": "#e15759",
                                     "line": {"width": 2, "color": "#222"}}))
    fig.update_layout(height=height, font=FONT, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      xaxis={"visible": False}, yaxis={"visible": False},
                      legend={"orientation": "h", "y": -0.05})
    return fig


def pair_grid(rows: list[dict[str, Any]], height: int = 420) -> go.Figure:
    """Heatmap of a pair sweep's kNN: row op x column op (symmetric; the diagonal one op
    alone); empty cells are runs still going."""
    ops = list(dict.fromkeys(r["row"] for r in rows))
    z = np.full((len(ops), len(ops)), np.nan)
    for r in rows:
        i, j = ops.index(r["row"]), ops.index(r["col"])
        if r["knn"] is not None:
            z[i, j] = z[j, i] = r["knn"]
    text = [["" if np.isnan(v) else f"{v:.2f}" for v in row] for row in z]
    fig = go.Figure(go.Heatmap(z=z, x=ops, y=ops, text=text, texttemplate="%{text}",
                               colorscale="Viridis", colorbar={"title": "kNN"}))
    fig.update_layout(height=height, font=FONT, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      yaxis={"autorange": "reversed"},
                      title={"text": "kNN top-1: row op + column op (diagonal: one op alone)",
                             "font": {"size": 15}})
    return fig
