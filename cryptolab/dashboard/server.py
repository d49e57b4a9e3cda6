"""Serve a Dash app from a background thread, stoppably (werkzeug's threaded server)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from cryptolab.errors import CryptolabError
from cryptolab.settings import Settings
from cryptolab.store import Store

log = logging.getLogger(__name__)


@dataclass
class DashServer:
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}/"

    @classmethod
    def start(
        cls, store: Store, settings: Settings, status: Callable[[], dict[str, Any]] | None = None
    ) -> DashServer:
        """Serve the dashboard on ``settings.dash_host:dash_port``.

        ``status`` returns the pipeline state (``Stack.snapshot``, see
        :mod:`cryptolab.dashboard.panel`); None serves the store alone.
        """
        from cryptolab.dashboard.app import create_app
        from cryptolab.dashboard.auth import require_safe_binding

        require_safe_binding(settings)
        app = create_app(store, settings, status)
        try:
            server = make_server(settings.dash_host, settings.dash_port, app.server, threaded=True)
        except OSError as exc:
            raise CryptolabError(
                f"dashboard cannot listen on {settings.dash_host}:{settings.dash_port} ({exc}): "
                "pass --port or set CRYPTOLAB_DASH_PORT"
            ) from exc
        thread = threading.Thread(target=server.serve_forever, name="dash", daemon=True)
        thread.start()
        self = cls(server, thread)
        log.info("dashboard on %s", self.url)
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
