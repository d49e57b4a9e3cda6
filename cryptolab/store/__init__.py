"""ClickHouse access: embedded chDB (``chdb://``) or a ClickHouse server (``http(s)://``)."""

from cryptolab.store.client import Store
from cryptolab.store.connect import open_store

__all__ = ["Store", "open_store"]
