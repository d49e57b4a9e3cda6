"""Where a running pipeline shares its embedded store, and how other processes find it.

chDB allows one process per data directory. The process that owns an embedded store (``up``,
``stream``, a notebook kernel running the pipeline) serves it read-only over ClickHouse's HTTP
interface (:mod:`cryptolab.store.share`) and writes ``<data_dir>/clickhouse.endpoint`` (the
store directory's name + ``.endpoint``) while it does::

    http://127.0.0.1:8123
    pid=41872
    store=/home/me/cryptolab/data/clickhouse

The first line is the URL (``curl "$(head -1 data/clickhouse.endpoint)/?query=SELECT+1"``). Other
cryptolab processes read it in :func:`find_share`; a file left by a killed process (its pid is
gone) is ignored with one warning line and removed. A running process that does not answer
``/ping`` keeps its file (it may be busy) but is not used.
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptolab.errors import StoreError
from cryptolab.pids import pid_alive
from cryptolab.settings import Settings

log = logging.getLogger(__name__)

SUFFIX = ".endpoint"
PING_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Endpoint:
    """One line of URL, then ``key=value`` lines."""

    url: str
    pid: int
    store: str
    extra: dict[str, str] = field(default_factory=dict)

    def render(self) -> str:
        lines = [self.url, f"pid={self.pid}", f"store={self.store}"]
        lines += [f"{k}={v}" for k, v in sorted(self.extra.items())]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str, where: Path) -> Endpoint:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        values = dict(line.partition("=")[::2] for line in lines[1:])
        try:
            url, pid, store = lines[0], int(values.pop("pid")), values.pop("store")
        except (IndexError, KeyError, ValueError):
            raise StoreError(
                f"{where} is not a cryptolab endpoint file (URL line, pid=, store=): delete it"
            ) from None
        if urlsplit(url).scheme != "http":
            raise StoreError(f"{where}: first line must be an http:// URL: delete the file")
        return cls(url, pid, store, values)

    def describe(self) -> str:
        return f"pid {self.pid}, read-only at {self.url}"


def store_dir(settings: Settings) -> Path | None:
    """The embedded store's directory, or None when the store is a ClickHouse server."""
    url = settings.store_url
    if not url.startswith("chdb://") or len(url) <= len("chdb://"):
        return None
    return Path(url[len("chdb://") :])


def endpoint_file(store: Path) -> Path:
    """``<data_dir>/clickhouse`` -> ``<data_dir>/clickhouse.endpoint``."""
    return store.with_name(store.name + SUFFIX)


def publish(store: Path, url: str, **extra: str) -> Endpoint:
    """Write (atomically) the endpoint file of ``store``, owned by this process."""
    endpoint = Endpoint(url, os.getpid(), str(store), dict(extra))
    target = endpoint_file(store)
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    partial.write_text(endpoint.render())
    os.replace(partial, target)
    return endpoint


def withdraw(store: Path, url: str) -> None:
    """Remove the endpoint file if it is still this process's (same pid and URL)."""
    target = endpoint_file(store)
    try:
        current = Endpoint.parse(target.read_text(), target)
    except (OSError, StoreError):
        return
    if current.pid == os.getpid() and current.url == url:
        target.unlink(missing_ok=True)


def answers(url: str, timeout: float = PING_TIMEOUT_S) -> bool:
    """Whether the share at ``url`` answers ``GET /ping`` with ``Ok.`` (no auth needed)."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/ping", timeout=timeout) as response:
            return bool(response.read().strip() == b"Ok.")
    except (urllib.error.URLError, OSError):
        return False


def read_endpoint(store: Path) -> Endpoint | None:
    target = endpoint_file(store)
    try:
        text = target.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read {target}: {exc.strerror or exc}") from exc
    return Endpoint.parse(text, target)


def find_share(settings: Settings) -> Endpoint | None:
    """The live share of this settings' embedded store when another process owns it; None when
    there is none (or the store is a server, or this process owns it). A stale file is ignored
    with one warning line and removed."""
    store = store_dir(settings)
    if store is None:
        return None
    endpoint = read_endpoint(store)
    if endpoint is None or endpoint.pid == os.getpid():
        return None
    target = endpoint_file(store)
    if pid_alive(endpoint.pid):
        if answers(endpoint.url):
            return endpoint
        # busy, or the pid now belongs to another program: leave the file to its owner
        log.warning(
            "%s names process %d, which is running but does not answer at %s/ping; opening the "
            "store directly", target, endpoint.pid, endpoint.url,
        )  # fmt: skip
        return None
    log.warning(
        "ignoring stale %s: process %d that wrote it is not running (killed?); opening the store "
        "directly", target, endpoint.pid,
    )  # fmt: skip
    try:  # remove it unless a new owner rewrote it meanwhile
        if read_endpoint(store) == endpoint:
            target.unlink(missing_ok=True)
    except (OSError, StoreError):
        pass
    return None


def require_store_owner(settings: Settings, action: str = "cannot open it for writing") -> None:
    """Raise StoreError when another running process owns (and shares) the embedded store, so
    this process cannot write to it: say which process and what to do. Commands that write
    (``reconcile``, ``history load``) call it first; :func:`~cryptolab.store.open_store` without
    ``read_only`` does too. ``action`` completes "the store ...: <action>"."""
    endpoint = find_share(settings)
    if endpoint is None:
        return
    raise StoreError(
        f"a running cryptolab pipeline owns the store at {endpoint.store} "
        f"({endpoint.describe()}) and chDB allows one process to write it: {action}. Stop the "
        "pipeline first (Ctrl-C in its terminal, or stop_pipeline() in its notebook), then run "
        "this again; reading works while it runs (query, dash, doctor, report, notebooks with "
        "tape=None)"
    )
