"""Who may reach what cryptolab serves: one rule for every listening socket.

The dashboard (``CRYPTOLAB_DASH_*``) and the store's read-only share
(``CRYPTOLAB_STORE_SHARE_*``) both follow it: loopback only by default; a non-loopback address
needs a password (HTTP basic auth), unless the caller says something in front already guards
it. A bottom-layer module so that the store and the dashboard use the same rule without
importing each other.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress

from cryptolab.errors import ConfigError


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def require_guarded(
    what: str, host: str, has_password: bool, allow_no_auth: bool, fix: str
) -> None:
    """Raise ConfigError when ``what`` would listen on ``host`` (reachable from other machines)
    without a password and nothing says it is guarded otherwise; ``fix`` says what to set."""
    if is_loopback(host) or has_password or allow_no_auth:
        return
    raise ConfigError(
        f"{what} would listen on {host} (reachable from other machines) without a password: {fix}"
    )


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``(user, password)`` of a basic ``Authorization`` header; None when absent or malformed."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        given = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = given.partition(":")
    return (user, password) if sep else None


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of two strings."""
    return hmac.compare_digest(given.encode(), expected.encode())


def credentials_ok(header: str | None, user: str, password: str) -> bool:
    """Whether an ``Authorization`` header carries exactly ``user:password`` (basic)."""
    given = basic_credentials(header)
    given_user, given_password = given or ("", "")
    # compare both, always, in constant time
    user_ok = same_secret(given_user, user)
    password_ok = same_secret(given_password, password)
    return given is not None and user_ok and password_ok
