"""The dashboard inside JupyterLab / Jupyter notebooks: the server of ``cryptolab dash`` (same
binding and password rules), shown in the output cell. Needs no JupyterLab extension."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptolab.errors import CryptolabError
from cryptolab.settings import Settings, load_settings

if TYPE_CHECKING:
    from cryptolab.dashboard.app import StatusFn
    from cryptolab.dashboard.server import DashServer
    from cryptolab.store import Store

MODES = ("inline", "external", "tab")

_shown: dict[tuple[str, int], DashServer] = {}
"""The servers this kernel shows, by (host, port): re-running a cell replaces its server."""


def _ipython() -> object | None:
    try:
        from IPython import get_ipython
    except ImportError:  # not in a notebook at all
        return None
    return get_ipython()


def show(
    store: Store,
    settings: Settings | None = None,
    status: StatusFn | None = None,
    *,
    mode: str = "inline",
    port: int | None = None,
    height: int = 860,
    refresh_ms: int = 1000,
) -> DashServer:
    """Serve the dashboard from this kernel and display it: ``inline`` in the output cell,
    ``external`` as a link, ``tab`` in a new browser tab. Returns the server (``.url``,
    ``.stop()``).

    With a running pipeline pass its state too::

        show(stack.store, stack.settings, stack.snapshot)

    Re-running the cell replaces the server on the same port.
    """
    from cryptolab.dashboard.auth import require_safe_binding
    from cryptolab.dashboard.server import DashServer

    settings = settings or load_settings()
    require_safe_binding(settings)  # first: an unguarded public dashboard is never served
    if mode not in MODES:
        raise CryptolabError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    if _ipython() is None:
        raise CryptolabError(
            "show() displays the dashboard in a Jupyter notebook; from a terminal run "
            "`cryptolab dash` (or cryptolab.dashboard.server.DashServer.start)"
        )
    from IPython.display import IFrame, Javascript, display

    chosen = port or settings.dash_port
    previous = _shown.pop((settings.dash_host, chosen), None)
    if previous is not None:
        previous.stop()
    settings = settings.model_copy(update={"dash_port": chosen})
    server = DashServer.start(store, settings, status, refresh_ms=refresh_ms)
    _shown[(settings.dash_host, chosen)] = server
    if mode == "inline":
        display(IFrame(server.url, "100%", height))
    else:
        print(f"dashboard: {server.url}")
        if mode == "tab":
            display(Javascript(f"window.open({server.url!r})"))
    return server


def stop(server: DashServer) -> None:
    """Stop a dashboard :func:`show` started."""
    _shown.pop((server.server.host, server.server.port), None)
    server.stop()
