"""Image thumbnails on hover over an embedding map.

Plotly's hover labels show text only, so a small custom component (Streamlit components v2:
HTML and JS mounted in the page itself, no iframe) finds the map by its ``layout.meta`` tag,
listens to Plotly's hover events and shows the hovered image from one sprite sheet (all the
map's thumbnails in one PNG, sent once per map) in a floating box next to the pointer.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import streamlit as st
from PIL import Image

from app.images import to_hwc

TILE = 48  # px per thumbnail in the sprite at most; shown enlarged (pixelated) in the box
SHOWN = 112  # px of the box
#: above this many images the sheet is a JPEG (a PNG of 10,000 CIFAR-10 images: 25 MB and 25 s
#: to encode; a JPEG at quality 85: 3.7 MB and 0.04 s)
JPEG_ABOVE = 2000
#: the sheet's pixels at most: 10,000 images of 32 px; more images get smaller tiles
MAX_SHEET_PIXELS = 10_000 * 32 * 32

_JS = """
export default function ({ data, parentElement }) {
  const doc = parentElement.ownerDocument || document;
  let tip = doc.getElementById("ssl-hover-thumb");
  if (!tip) {
    tip = doc.createElement("div");
    tip.id = "ssl-hover-thumb";
    Object.assign(tip.style, {
      position: "fixed", display: "none", pointerEvents: "none", zIndex: 100000,
      border: "2px solid #333", borderRadius: "4px", background: "#fff",
      imageRendering: "pixelated", boxShadow: "0 2px 8px rgba(0,0,0,.3)",
    });
    doc.body.appendChild(tip);
  }
  const { meta, sprite, tile, columns, rows, shown } = data;
  const scale = shown / tile;
  const attach = () => {
    for (const gd of doc.querySelectorAll(".js-plotly-plot")) {
      if (!gd.layout || gd.layout.meta !== meta || gd.__sslHover === meta || !gd.on) continue;
      gd.__sslHover = meta;
      gd.on("plotly_hover", (ev) => {
        const p = ev.points && ev.points[0];
        if (!p || p.curveNumber !== 0) return;
        const i = Number(p.customdata), col = i % columns, row = Math.floor(i / columns);
        Object.assign(tip.style, {
          width: shown + "px", height: shown + "px",
          backgroundImage: "url(" + sprite + ")",
          backgroundSize: (columns * shown) + "px " + (rows * shown) + "px",
          backgroundPosition: (-col * tile * scale) + "px " + (-row * tile * scale) + "px",
          left: (ev.event.clientX + 18) + "px", top: (ev.event.clientY + 18) + "px",
          display: "block",
        });
      });
      gd.on("plotly_unhover", () => { tip.style.display = "none"; });
    }
  };
  attach();
  const timer = setInterval(attach, 500);
  return () => { clearInterval(timer); tip.style.display = "none"; };
}
"""


@st.cache_resource(show_spinner=False)
def _component():  # noqa: ANN202
    return st.components.v2.component("ssl_hover_thumbnails", html="<span></span>", js=_JS)


def tile_size(n: int, side: int) -> int:
    """Pixels per tile for ``n`` images of ``side`` px: never above the images' own size (the
    box enlarges them anyway) nor ``TILE``, and small enough that the sheet stays within
    ``MAX_SHEET_PIXELS`` (50,000 images: 14 px)."""
    return max(8, min(TILE, side, int(math.sqrt(MAX_SHEET_PIXELS / max(n, 1)))))


def sprite_sheet(images: np.ndarray, tile: int | None = None) -> tuple[str, int, int, int]:
    """All images (N, C, H, W) uint8 as one image data URL (PNG, or JPEG above
    ``JPEG_ABOVE`` images), ``columns`` tiles of ``tile`` px (default :func:`tile_size`) to a
    row; returns (data URL, columns, rows, tile)."""
    n = len(images)
    tile = tile or tile_size(n, int(max(images.shape[1:])))  # (N, C, H, W) or (N, H, W, C)
    columns = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / columns))
    sheet = Image.new("RGB", (columns * tile, rows * tile), "white")
    for i, im in enumerate(images):
        pic = Image.fromarray(to_hwc(im)).resize((tile, tile), Image.NEAREST)
        sheet.paste(pic, ((i % columns) * tile, (i // columns) * tile))
    buf = io.BytesIO()
    kind = "jpeg" if n > JPEG_ABOVE else "png"
    sheet.save(buf, format=kind, **({"quality": 85} if kind == "jpeg" else {"optimize": True}))
    url = f"data:image/{kind};base64," + base64.b64encode(buf.getvalue()).decode()
    return url, columns, rows, tile


@st.cache_data(max_entries=8, show_spinner=False)
def _sprite(run_id: str, step: int, _images: np.ndarray) -> tuple[str, int, int, int]:
    return sprite_sheet(_images)


def hover_thumbnails(meta: str, run_id: str, step: int, images: np.ndarray | None) -> None:
    """Show each point's image when the pointer rests on it, on the map whose figure has
    ``layout.meta == meta``; rows of ``images`` (N, C, H, W) are the map's points in order."""
    if images is None or not len(images):
        return
    sprite, columns, rows, tile = _sprite(run_id, step, images)
    _component()(
        data={"meta": meta, "sprite": sprite, "tile": tile, "columns": columns, "rows": rows,
              "shown": SHOWN},
        key=f"hover_{meta}",
    )
