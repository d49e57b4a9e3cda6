"""The :class:`Store`: a ClickHouse client bound to one database, the same for both backends
(opened by :func:`cryptolab.store.connect.open_store`)."""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa

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
