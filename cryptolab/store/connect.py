"""One factory for both backends; the rest of cryptolab only sees :class:`Store`.

``chdb:///abs/path``  embedded ClickHouse engine (chDB) in this process, data on disk;
``http(s)://user:password@host:8123/db``  a ClickHouse server.

chDB allows one data directory per process, and one process per data directory.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptolab.errors import StoreError
from cryptolab.redact import redact
from cryptolab.settings import Settings, require_writable_dir
from cryptolab.store.client import Store
from cryptolab.store.schema import ensure_schema
from cryptolab.store.server import http_target, require_supported, server_version


def _locked_by_another_process(path: Path) -> bool:
    """True when another process holds ClickHouse's lock on ``path/status`` (chDB 4.x reports
    only "Error initializing EmbeddedServer" then)."""
    import fcntl

    try:
        with open(path / "status", "rb") as status:
            try:
                fcntl.flock(status, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(status, fcntl.LOCK_UN)
    except OSError:
        return False
    return False


def _connect_chdb(path: str) -> Any:
    import clickhouse_connect

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
        if "lock" in text.lower() or _locked_by_another_process(Path(path)):
            raise StoreError(
                f"the ClickHouse data dir {path} is in use by another process (is "
                "`cryptolab up` or a notebook running?). Stop it, or set CRYPTOLAB_DATA_DIR / "
                "CRYPTOLAB_CLICKHOUSE_URL to another location."
            ) from exc
        raise StoreError(f"cannot open embedded ClickHouse at {path}: {text}") from exc


def _connect_http(url: str, settings: Settings) -> tuple[Any, str]:
    import clickhouse_connect

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
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
        raise StoreError(f"database name {database!r} must be letters, digits and underscores")
    store = Store(client, database, url)
    if create:
        ensure_schema(store, settings.trades_ttl_days, settings.candles_ttl_days)
    return store
