"""One factory for both backends; the rest of cryptolab only sees :class:`Store`.

``chdb:///abs/path``  embedded ClickHouse engine (chDB) in this process, data on disk;
``http(s)://user:password@host:8123/db``  a ClickHouse server.

chDB allows one data directory per process, and one process per data directory.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptolab.errors import StoreError
from cryptolab.redact import redact
from cryptolab.settings import Settings, require_writable_dir
from cryptolab.store.client import Store
from cryptolab.store.endpoint import Endpoint, find_share, require_store_owner
from cryptolab.store.schema import ensure_schema
from cryptolab.store.server import http_target, require_supported, server_version

log = logging.getLogger(__name__)

SHARE_USER = "default"
SHARE_WAIT_S = 5.0
"""How long a reader waits for the share of a pipeline that holds the store but is starting."""


class StoreLockedError(StoreError):
    """Another process holds the embedded store's lock."""


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
            raise StoreLockedError(
                f"the ClickHouse data dir {path} is in use by another process (`cryptolab up`, "
                "`stream` or a notebook running the pipeline) that does not share it (started "
                "with CRYPTOLAB_STORE_SHARE_PORT=0, or still starting). Stop it, or set "
                "CRYPTOLAB_DATA_DIR / CRYPTOLAB_CLICKHOUSE_URL to another location."
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


def _connect_share(share: Endpoint, settings: Settings) -> Any:
    """A clickhouse-connect HTTP client on another process's read-only share."""
    import clickhouse_connect

    parts = urlsplit(share.url)
    password = settings.store_share_password
    try:
        return clickhouse_connect.get_client(
            host=parts.hostname,
            port=parts.port,
            username=SHARE_USER,
            password=password.get_secret_value() if password is not None else "",
            connect_timeout=10,
            send_receive_timeout=int(settings.store_share_max_seconds) + 30,
            autogenerate_session_id=False,
            compress=False,
        )
    except Exception as exc:
        raise StoreError(
            f"the running pipeline shares the store at {share.url} ({share.describe()}) but it "
            f"refused this reader: {redact(str(exc)).splitlines()[0][:300]} (a password is "
            "needed when the pipeline set CRYPTOLAB_STORE_SHARE_PASSWORD: set the same here)"
        ) from exc


def _wait_for_share(settings: Settings) -> Endpoint | None:
    """The share of a pipeline that has just locked the store, once it serves (or None)."""
    deadline = time.monotonic() + SHARE_WAIT_S
    while time.monotonic() < deadline:
        time.sleep(0.25)
        share = find_share(settings)
        if share is not None:
            return share
    return None


def open_store(settings: Settings, create: bool = True, read_only: bool = False) -> Store:
    """Open the store named by ``settings.store_url``; ``create`` makes the database and tables.

    ``read_only``: the caller only reads. When the store is embedded (``chdb://``) and another
    running cryptolab process owns it, the store is read through that process's read-only share
    (:mod:`cryptolab.store.share`), said in one log line. Without ``read_only`` (a writer) that
    case is a StoreError saying which process owns the store and what to do.
    """
    url = settings.store_url
    scheme = urlsplit(url).scheme
    if scheme == "chdb":
        path = url[len("chdb://") :] or None
        if not path:
            raise StoreError("chdb:// URL needs an absolute path, e.g. chdb:///home/me/data/ch")
        share = find_share(settings)
        if share is not None and not read_only:
            require_store_owner(settings)
        if share is None:
            try:
                client = _connect_chdb(path)
            except StoreLockedError:
                share = _wait_for_share(settings) if read_only else None
                if share is None:
                    raise
        if share is not None:
            log.info(
                "reading the live store through the running pipeline's read-only share at %s "
                "(pid %d)", share.url, share.pid,
            )  # fmt: skip
            client = _connect_share(share, settings)
            return Store(client, settings.clickhouse_database, share.url, shared=share)
        database = settings.clickhouse_database
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


def second_connection(store: Store) -> Store:
    """Another connection to ``store``'s data, for background work whose queries should run
    beside this one's instead of queueing behind them (a :class:`Store` serialises its calls).

    For chDB a second client on the same data directory (chDB runs queries of different
    connections concurrently); for a server the same store (its HTTP client is already shared,
    and the server answers concurrent clients; a second login would need the password again).
    """
    if not store.embedded:
        return store
    import clickhouse_connect

    path = store.url[len("chdb://") :]
    return Store(clickhouse_connect.get_client(dsn=f"chdb://{path}"), store.database, store.url)
