"""ClickHouse access: embedded chDB (``chdb://``) or a ClickHouse server (``http(s)://``)."""

from cryptolab.store.client import Store, open_store

__all__ = ["Store", "open_store"]
