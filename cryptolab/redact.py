"""Keep secrets out of everything cryptolab prints or logs.

Secrets are :class:`pydantic.SecretStr` settings (masked in ``repr``) and never formatted into
messages on purpose. As a second line of defence, :func:`load_settings` registers every secret
value it loads here; :class:`RedactingFilter` (installed by the CLI on its log handlers) and
:func:`redact` (applied to the CLI's error messages) replace any registered value, and the
password of any ``scheme://user:password@host`` URL, with ``***``.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import quote

MASK = "***"
MIN_SECRET_CHARS = 4  # shorter values are too common as substrings to replace blindly

_lock = threading.Lock()
_secrets: set[str] = set()
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*):(?P<pw>[^\s@/]+)@")


def register(*values: str | None) -> None:
    """Remember secret values (and their URL-quoted forms) so they can be masked."""
    with _lock:
        for value in values:
            if value and len(value) >= MIN_SECRET_CHARS:
                _secrets.add(value)
                _secrets.add(quote(value, safe=""))
                _secrets.add(repr(value.encode())[2:-1])  # as in a logged bytes repr
                _secrets.add(repr(value)[1:-1])


def redact(text: str) -> str:
    """``text`` with every registered secret and every URL password replaced by ``***``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_url(url: str) -> str:
    """``scheme://user:secret@host/...`` -> ``scheme://user:***@host/...``."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", url)


class RedactingFilter(logging.Filter):
    """A handler filter that masks secrets in the final message (arguments included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
