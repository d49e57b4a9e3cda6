"""One factory for both backends; the rest of cryptolab only sees :class:`Store`.

``chdb:///abs/path``  embedded ClickHouse engine (chDB) in this process, data on disk;
``http(s)://user:password@host:8123/db``  a ClickHouse server.

chDB allows one data directory per process, and one process per data directory.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa

from cryptolab.errors import StoreError
from cryptolab.redact import redact
from cryptolab.settings import Settings

log = logging.getLogger(__name__)


def masked_url(url: str) -> str:
    """``url`` fit for logs and errors: any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return parts._replace(netloc=user + host).geturl()


class Store:
    """A ClickHouse client bound to one database. Thread-safe (calls are serialised)."""

    def __init__(self, client: Any, database: str, url: str) -> None:
        self.client = client
        self.database = database
        self.url = url
        self._lock = threading.RLock()

    @property
    def embedded(self) -> bool:
        return self.url.startswith("chdb:")

    def table(self, name: str) -> str:
        """Qualified table name. ``database`` is validated as an identifier by Settings."""
        return f"`{self.database}`.`{name}`"

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        with self._lock:
            return self.client.command(sql, parameters=parameters)

    def query_rows(
        self, sql: str, parameters: dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self.client.query(sql, parameters=parameters).result_rows)

    def query_arrow(self, sql: str, parameters: dict[str, Any] | None = None) -> pa.Table:
        with self._lock:
            return self.client.query_arrow(sql, parameters=parameters)

    def insert_arrow(
        self, table_name: str, table: pa.Table, settings: dict[str, Any] | None = None
    ) -> None:
        if table.num_rows == 0:
            return
        with self._lock:
            self.client.insert_arrow(self.table(table_name), table, settings=settings)

    def close(self) -> None:
        with self._lock:
            self.client.close()


def _connect_chdb(path: str) -> Any:
    import clickhouse_connect

    from cryptolab.settings import require_writable_dir

    require_writable_dir(
        Path(path), "the ClickHouse data dir (CRYPTOLAB_CLICKHOUSE_URL / _DATA_DIR)"
    )
    try:
        return clickhouse_connect.get_client(dsn=f"chdb://{path}")
    except Exception as exc:  # chDB raises plain RuntimeError/ChdbError for lock conflicts
        text = str(exc)
        if "already initialized" in text:
            raise StoreError(
                f"this process already uses an embedded ClickHouse at another path; chDB allows "
                f"one data directory per process, so {path} cannot be opened here too"
            ) from exc
        if "lock" in text.lower():
            raise StoreError(
                f"the ClickHouse data dir {path} is in use by another process (is "
                "`cryptolab up` or a notebook running?). Stop it, or set CRYPTOLAB_DATA_DIR / "
                "CRYPTOLAB_CLICKHOUSE_URL to another location."
            ) from exc
        raise StoreError(f"cannot open embedded ClickHouse at {path}: {text}") from exc


def _connect_http(url: str, settings: Settings) -> tuple[Any, str]:
    import clickhouse_connect

    from cryptolab.store.server import http_target, require_supported, server_version

    target = http_target(url, settings)
    try:
        client = clickhouse_connect.get_client(
            host=target.host,
            port=target.port,
            username=target.user,
            password=target.password,
            secure=target.secure,
            verify=target.verify,
            ca_cert=target.ca_cert,
            connect_timeout=10,
        )
    except Exception as exc:
        # Say why in terms a user can act on: unreachable, wrong password, or too old.
        require_supported(target, server_version(target))
        raise StoreError(
            f"cannot connect to ClickHouse at {target.masked}: {redact(str(exc))}"
        ) from exc
    require_supported(target, str(client.server_version))
    return client, target.database


def open_store(settings: Settings, create: bool = True) -> Store:
    """Open the store named by ``settings.store_url``; ``create`` makes the database and tables."""
    url = settings.store_url
    scheme = urlsplit(url).scheme
    if scheme == "chdb":
        path = url[len("chdb://") :] or None
        if not path:
            raise StoreError("chdb:// URL needs an absolute path, e.g. chdb:///home/me/data/ch")
        client, database = _connect_chdb(path), settings.clickhouse_database
    elif scheme in ("http", "https"):
        client, database = _connect_http(url, settings)
    else:
        raise StoreError(
            f"unsupported ClickHouse URL scheme {scheme!r}: use chdb:///abs/path or "
            "http(s)://user:password@host:8123/database"
        )
    import re

    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
        raise StoreError(f"database name {database!r} must be letters, digits and underscores")
    store = Store(client, database, url)
    if create:
        from cryptolab.store.schema import ensure_schema

        ensure_schema(store, settings.trades_ttl_days, settings.candles_ttl_days)
    return store
