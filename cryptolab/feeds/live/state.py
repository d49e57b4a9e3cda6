"""The last trade id handed on per symbol, kept across restarts."""

from __future__ import annotations

import json
import os
from collections.abc import Collection
from pathlib import Path

from cryptolab.errors import FeedError

STATE_FILE = Path("feed") / "binance_last_trade_ids.json"


class FeedState:
    """The last trade id handed on per symbol, saved as JSON (atomically replaced) so that a
    restart detects and backfills what happened while the feed was down. Ids are kept per REST
    endpoint: a local replay server's ids never mix with Binance's."""

    def __init__(self, path: Path | None, endpoint: str) -> None:
        self.path = path
        self.endpoint = endpoint.rstrip("/")
        self._saved: dict[str, int] = {}

    def _read(self) -> dict[str, dict[str, int]]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise FeedError(
                f"cannot read the feed state {self.path}: {exc}; delete it to start afresh "
                "(gaps from before this start will then not be backfilled)"
            ) from exc
        endpoints = data.get("endpoints", {}) if isinstance(data, dict) else {}
        return endpoints if isinstance(endpoints, dict) else {}

    def load(self, symbols: Collection[str] | None = None) -> dict[str, int]:
        """The saved ids (of ``symbols`` only, when given: others stay saved, untouched)."""
        ids = self._read().get(self.endpoint, {})
        self._saved = {s: i for s, i in ids.items() if isinstance(i, int)}
        return {s: i for s, i in self._saved.items() if symbols is None or s in symbols}

    def save(self, last_ids: dict[str, int]) -> None:
        if self.path is None or all(self._saved.get(s) == i for s, i in last_ids.items()):
            return
        endpoints = self._read()
        endpoints[self.endpoint] = {**endpoints.get(self.endpoint, {}), **last_ids}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": 1, "endpoints": endpoints}, indent=1))
        os.replace(tmp, self.path)
        self._saved.update(last_ids)
