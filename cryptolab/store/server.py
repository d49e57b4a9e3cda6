"""A ClickHouse *server* over HTTP: where it is, whether it answers, whether it is new enough.

Used by :func:`cryptolab.store.connect.open_store` to explain a failed connection and by
``cryptolab doctor``. Plain HTTP (``urllib``), no driver: it must work against any server,
even one too old for clickhouse-connect.
"""

from __future__ import annotations

import base64
import re
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cryptolab.errors import StoreError
from cryptolab.redact import mask_url, redact
from cryptolab.settings import Settings

MIN_VERSION = (22, 8)
"""Oldest release line cryptolab accepts: the schema and queries need DateTime64, Bool, query
parameters (``{name:Type}``) and Arrow input, and clickhouse-connect's handshake reads
``system.settings.readonly``. docker-compose.yml runs 25.8 LTS."""


@dataclass(frozen=True)
class HttpTarget:
    """Where a ``http(s)://user:password@host:port/database`` URL points."""

    scheme: str
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str
    verify: bool = True
    ca_cert: str | None = None

    @property
    def secure(self) -> bool:
        return self.scheme == "https"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}/"

    @property
    def masked(self) -> str:
        """The URL with the password hidden, safe to print."""
        auth = f"{self.user}:***@" if self.password else f"{self.user}@"
        return f"{self.scheme}://{auth}{self.host}:{self.port}/{self.database}"


def http_target(url: str, settings: Settings) -> HttpTarget:
    """Parse a server URL. The user comes from the URL, else CRYPTOLAB_CLICKHOUSE_USER, else
    ``default``; the password from the URL or CRYPTOLAB_CLICKHOUSE_PASSWORD; TLS options (https)
    from CRYPTOLAB_CLICKHOUSE_VERIFY and CRYPTOLAB_CLICKHOUSE_CA_CERT."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise StoreError(f"not a ClickHouse server URL (http:// or https://): {mask_url(url)}")
    password = unquote(parts.password) if parts.password else None
    if password is None and settings.clickhouse_password is not None:
        password = settings.clickhouse_password.get_secret_value()
    try:
        port = parts.port or (8443 if parts.scheme == "https" else 8123)
    except ValueError as exc:
        raise StoreError(f"bad port in ClickHouse URL {mask_url(url)}: {exc}") from exc
    database = unquote(parts.path.strip("/")) or settings.clickhouse_database
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
        raise StoreError(
            f"database {database[:40]!r} in the ClickHouse URL must be letters, digits and "
            "underscores"
        )
    return HttpTarget(
        scheme=parts.scheme,
        host=parts.hostname or "localhost",
        port=port,
        user=unquote(parts.username) if parts.username else settings.clickhouse_user or "default",
        password=password or "",
        database=database,
        verify=settings.clickhouse_verify,
        ca_cert=str(settings.clickhouse_ca_cert.resolve()) if settings.clickhouse_ca_cert else None,
    )


def tls_context(target: HttpTarget) -> ssl.SSLContext | None:
    """The TLS context for an https target (None for http): the CA file when given, else the
    system's CAs; no verification at all only when CRYPTOLAB_CLICKHOUSE_VERIFY=false."""
    if not target.secure:
        return None
    if target.ca_cert is not None and not Path(target.ca_cert).is_file():
        raise StoreError(
            f"CRYPTOLAB_CLICKHOUSE_CA_CERT={target.ca_cert} is not a file (a PEM CA certificate)"
        )
    context = ssl.create_default_context(cafile=target.ca_cert)
    if not target.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def parse_version(text: str) -> tuple[int, ...]:
    """``'25.8.3.66'`` -> ``(25, 8, 3, 66)``."""
    numbers = re.findall(r"\d+", text)
    if not numbers:
        raise StoreError(f"cannot read a ClickHouse version from {text[:80]!r}")
    return tuple(int(n) for n in numbers)


def server_version(target: HttpTarget, timeout: float = 10.0) -> str:
    """``SELECT version()`` on the server; StoreError says what is wrong and what to do."""
    request = urllib.request.Request(target.base_url, data=b"SELECT version()", method="POST")
    token = base64.b64encode(f"{target.user}:{target.password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    context = tls_context(target)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return str(response.read().decode().strip())
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        if exc.code in (401, 403) or "password" in body.lower() or "authenticat" in body.lower():
            raise StoreError(
                f"ClickHouse at {target.masked} refused user {target.user!r} (HTTP {exc.code}): "
                "check the user and password in CRYPTOLAB_CLICKHOUSE_URL or "
                "CRYPTOLAB_CLICKHOUSE_PASSWORD"
            ) from exc
        raise StoreError(
            f"ClickHouse at {target.masked} answered HTTP {exc.code}: {redact(body.strip()[:300])}"
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise StoreError(
                f"ClickHouse at {target.masked}: TLS certificate not trusted "
                f"({reason.verify_message}): set CRYPTOLAB_CLICKHOUSE_CA_CERT to the PEM CA "
                "that signed it (or, on a test server only, CRYPTOLAB_CLICKHOUSE_VERIFY=false)"
            ) from exc
        raise StoreError(
            f"cannot reach ClickHouse at {target.masked} ({reason}): is the server running and "
            "is CRYPTOLAB_CLICKHOUSE_URL right (host, HTTP port 8123, http vs https)?"
        ) from exc


def require_supported(target: HttpTarget, version: str) -> None:
    """Raise StoreError when ``version`` is older than :data:`MIN_VERSION`."""
    if parse_version(version)[:2] < MIN_VERSION:
        floor = ".".join(map(str, MIN_VERSION))
        raise StoreError(
            f"ClickHouse {version} at {target.masked} is too old: cryptolab needs {floor} or "
            "newer (DateTime64, Bool, query parameters, Arrow input). Upgrade the server, e.g. "
            "the clickhouse/clickhouse-server image pinned in docker-compose.yml"
        )
