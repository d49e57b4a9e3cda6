"""Notebook set-up: how figures and tables render, and (only when asked) logging."""

from __future__ import annotations

import logging

MIMETYPE_RENDERER = "plotly_mimetype"
"""Figures travel as Plotly JSON (``application/vnd.plotly.v1+json``): JupyterLab renders them
with the extension that ships with plotly, the HTML report embeds them with plotly.js inlined
(:mod:`cryptolab.report`), and nbval compares the figure data itself."""


def setup(log_level: str | None = "WARNING") -> None:
    """Make a notebook render figures and tables the cryptolab way.

    ``log_level`` sends cryptolab's log records at that level and above to the cell output
    (None leaves logging alone).
    """
    import pandas as pd
    import plotly.io as pio

    from cryptolab.redact import RedactingFilter

    pio.renderers.default = MIMETYPE_RENDERER
    pio.templates.default = "plotly_white"
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.width", 140)
    pd.set_option("display.max_colwidth", 160)
    if log_level is not None:
        logger = logging.getLogger("cryptolab")
        logger.setLevel(log_level.upper())
        if not any(getattr(h, "_cryptolab_lab", False) for h in logger.handlers):
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
            handler.addFilter(RedactingFilter())  # no secret reaches a notebook's output
            handler._cryptolab_lab = True  # type: ignore[attr-defined]
            logger.addHandler(handler)
