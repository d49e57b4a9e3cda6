"""Who may see the dashboard: loopback only by default, HTTP basic auth when exposed.

* ``CRYPTOLAB_DASH_PASSWORD`` set: every request (the page, ``/_dash-layout``,
  ``/_dash-update-component``, ``/assets/...``, component bundles) needs basic auth as
  ``CRYPTOLAB_DASH_USER`` (default ``cryptolab``); anything else gets 401. The one exception is
  Dash's ``/_alive_<token>`` (it answers "Alive", nothing else), which its Jupyter mode polls.
* Binding a non-loopback ``dash_host`` (e.g. ``0.0.0.0``) without a password is refused, unless
  ``CRYPTOLAB_DASH_ALLOW_NO_AUTH=true`` says something in front (a reverse proxy with its own
  login, a container port published on 127.0.0.1 only) already guards it.
"""

from __future__ import annotations

import logging
from typing import Any

from cryptolab.access import credentials_ok, is_loopback, require_guarded
from cryptolab.settings import Settings

log = logging.getLogger(__name__)

REALM = "cryptolab"
ALIVE_PREFIX = "/_alive_"
"""Dash's liveness route (answers only "Alive"): open, so ``show()`` works with a password."""

__all__ = ["credentials_ok", "install_basic_auth", "is_loopback", "require_safe_binding"]


def require_safe_binding(settings: Settings) -> None:
    """Raise ConfigError when the dashboard would be reachable from other machines unguarded."""
    require_guarded(
        "the dashboard",
        settings.dash_host,
        settings.dash_password is not None,
        settings.dash_allow_no_auth,
        "set CRYPTOLAB_DASH_PASSWORD (basic auth, user CRYPTOLAB_DASH_USER), or bind "
        "127.0.0.1, or set CRYPTOLAB_DASH_ALLOW_NO_AUTH=true if a proxy in front already "
        "authenticates",
    )


def install_basic_auth(server: Any, settings: Settings) -> bool:
    """Guard every route of the Flask ``server`` when a password is set; True if installed."""
    if settings.dash_password is None:
        return False
    from flask import Response, request

    user = settings.dash_user
    secret = settings.dash_password

    def check() -> Response | None:
        if request.path.startswith(ALIVE_PREFIX):
            return None  # Dash's Jupyter mode polls it before showing the app; it says "Alive"
        if credentials_ok(request.headers.get("Authorization"), user, secret.get_secret_value()):
            return None
        return Response(
            "authentication required\n",
            status=401,
            headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'},
            mimetype="text/plain",
        )

    server.before_request(check)
    log.info("dashboard basic auth on user=%s", user)
    return True
