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

import base64
import binascii
import hmac
import ipaddress
import logging
from typing import Any

from cryptolab.errors import ConfigError
from cryptolab.settings import Settings

log = logging.getLogger(__name__)

REALM = "cryptolab"
ALIVE_PREFIX = "/_alive_"
"""Dash's liveness route (answers only "Alive"): open, so ``show()`` works with a password."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def require_safe_binding(settings: Settings) -> None:
    """Raise ConfigError when the dashboard would be reachable from other machines unguarded."""
    host = settings.dash_host
    if is_loopback(host) or settings.dash_password is not None or settings.dash_allow_no_auth:
        return
    raise ConfigError(
        f"the dashboard would listen on {host} (reachable from other machines) without a "
        "password: set CRYPTOLAB_DASH_PASSWORD (basic auth, user CRYPTOLAB_DASH_USER), or bind "
        "127.0.0.1, or set CRYPTOLAB_DASH_ALLOW_NO_AUTH=true if a proxy in front already "
        "authenticates"
    )


def credentials_ok(header: str | None, user: str, password: str) -> bool:
    """Whether an ``Authorization`` header carries exactly ``user:password`` (basic)."""
    if not header or not header.lower().startswith("basic "):
        return False
    try:
        given = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    given_user, sep, given_password = given.partition(":")
    # compare both, always, in constant time
    user_ok = hmac.compare_digest(given_user.encode(), user.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    return bool(sep) and user_ok and password_ok


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
