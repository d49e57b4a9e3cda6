"""The market page's treemap: one tile per symbol, size = quote volume over 24 h, colour =
change over 24 h. Plain figure dicts (like :mod:`cryptolab.dashboard.figures`) so a tick can
``Patch`` single tiles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import Patch

from cryptolab.dashboard.figures import DOWN, PAPER, TEXT, UP, Figure, empty_figure
from cryptolab.store.overview import MarketRow

MAX_TILES = 120
"""The busiest symbols get a tile; thousands of slivers would show nothing."""
COLOR_RANGE = 5.0
"""Changes beyond +-5 % get the strongest colour."""
HEIGHT = 420
NEUTRAL = "#2a3142"


def tiles(rows: Sequence[MarketRow], limit: int = MAX_TILES) -> list[MarketRow]:
    """The rows that get a tile: the ``limit`` busiest by quote volume (ties by name), in
    alphabetical order, so a tick that only reorders them patches tiles instead of redrawing
    (Plotly sorts the tiles by size itself)."""
    busy = [r for r in rows if r.quote_volume_24h > 0]
    top = sorted(busy, key=lambda r: (-r.quote_volume_24h, r.symbol))[:limit]
    return sorted(top, key=lambda r: r.symbol)


def _color(row: dict[str, Any]) -> float:
    change = row["chg_24h"] if row["chg_24h"] is not None else 0.0
    return max(-COLOR_RANGE, min(COLOR_RANGE, float(change)))


def _text(row: dict[str, Any]) -> str:
    change = row["chg_24h"]
    return "n/a" if change is None else f"{change:+.2f} %"


def treemap(shown: Sequence[dict[str, Any]], count: int, note: str = "") -> Figure:
    """The treemap of ``shown`` (table rows of :func:`tiles`) out of ``count`` symbols."""
    if not shown:
        return empty_figure(note or "No quote volume in the last 24 h")
    names = [r["name"] for r in shown]
    data = {
        "type": "treemap",
        "labels": names,
        "parents": [""] * len(shown),
        "values": [r["vol_24h"] for r in shown],
        "text": [_text(r) for r in shown],
        "marker": {
            "colors": [_color(r) for r in shown],
            "colorscale": [[0.0, DOWN], [0.5, NEUTRAL], [1.0, UP]],
            "cmin": -COLOR_RANGE,
            "cmid": 0.0,
            "cmax": COLOR_RANGE,
            "line": {"color": PAPER, "width": 1},
            "pad": {"t": 0, "l": 0, "r": 0, "b": 0},
        },
        "texttemplate": "<b>%{label}</b><br>%{text}",
        "hovertemplate": "%{label}<br>24 h change %{text}<br>quote volume %{value:,.0f}"
        "<extra></extra>",
        "sort": True,
        "tiling": {"pad": 1},
        "root": {"color": PAPER},
        "pathbar": {"visible": False},
        "textfont": {"color": "#f4f6fa"},
    }
    title = (
        f"{len(shown)} busiest of {count} symbols · size = quote volume 24 h · colour = 24 h change"
    )
    return {
        "data": [data],
        "layout": {
            "height": HEIGHT,
            "paper_bgcolor": PAPER,
            "plot_bgcolor": PAPER,
            "font": {"color": TEXT, "family": "Inter, Segoe UI, Helvetica, Arial, sans-serif"},
            "margin": {"l": 8, "r": 8, "t": 30, "b": 8},
            "title": {"text": title, "font": {"size": 12}, "x": 0.01},
            "uirevision": "market",
            "meta": {"tiles": names},
        },
    }


def treemap_patch(
    old: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]], count: int
) -> Patch | Figure | None:
    """Turn the treemap of ``old`` tiles into ``new`` tile by tile: the whole figure when the
    symbols differ or most tiles changed (it is smaller then); None when no tile changed."""
    if [r["name"] for r in old] != [r["name"] for r in new]:
        return treemap(new, count)
    sizes = [
        i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a["vol_24h"] != b["vol_24h"]
    ]
    colors = [
        i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a["chg_24h"] != b["chg_24h"]
    ]
    if not sizes and not colors:
        return None
    if len(sizes) + 2 * len(colors) > len(new):
        return treemap(new, count)
    patch = Patch()
    for index in sizes:
        patch["data"][0]["values"][index] = new[index]["vol_24h"]
    for index in colors:
        patch["data"][0]["marker"]["colors"][index] = _color(new[index])
        patch["data"][0]["text"][index] = _text(new[index])
    return patch
