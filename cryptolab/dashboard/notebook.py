"""The dashboard inside JupyterLab / Jupyter notebooks, through Dash's own ``jupyter_mode``
(no jupyter-dash package)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptolab.errors import CryptolabError
from cryptolab.settings import Settings, load_settings

if TYPE_CHECKING:
    import dash

    from cryptolab.dashboard.app import StatusFn
    from cryptolab.store import Store

MODES = ("inline", "external", "tab", "jupyterlab")


def show(
    store: Store,
    settings: Settings | None = None,
    status: StatusFn | None = None,
    *,
    mode: str = "inline",
    port: int | None = None,
    height: int = 860,
    refresh_ms: int = 1000,
) -> dash.Dash:
    """Serve the dashboard from this kernel and display it: ``inline`` in the output cell,
    ``external`` as a link, ``tab`` in a browser tab, ``jupyterlab`` in a JupyterLab tab.

    With a running pipeline pass its state too::

        show(stack.store, stack.settings, stack.snapshot)

    Re-running the cell replaces the server on the same port.
    """
    from dash import jupyter_dash

    from cryptolab.dashboard.app import create_app
    from cryptolab.dashboard.auth import require_safe_binding

    settings = settings or load_settings()
    require_safe_binding(settings)  # first: an unguarded public dashboard is never served
    if mode not in MODES:
        raise CryptolabError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    if not jupyter_dash.in_ipython:
        raise CryptolabError(
            "show() displays the dashboard in a Jupyter notebook; from a terminal run "
            "`cryptolab dash` (or cryptolab.dashboard.server.DashServer.start)"
        )
    app = create_app(store, settings, status, refresh_ms=refresh_ms)
    chosen = port or settings.dash_port
    try:
        app.run(
            jupyter_mode=mode,  # type: ignore[arg-type]
            jupyter_height=height,
            host=settings.dash_host,
            port=chosen,
            debug=False,
        )
    except OSError as exc:
        raise CryptolabError(
            f"dashboard cannot listen on {settings.dash_host}:{chosen} ({exc}): pass port=..."
        ) from exc
    return app
