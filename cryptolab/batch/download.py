"""Files from data.binance.vision (or a mirror), downloaded once into a verified local cache.

Every file is published with ``<file>.CHECKSUM`` (``<sha256 hex>  <file name>``). A download goes
to ``<file>.part`` (resumed with an HTTP ``Range`` request after an interruption), is hashed,
and becomes ``<file>`` only when its hash is the published one. A mismatch is downloaded again
from scratch once; a second mismatch refuses the file (both hashes reported, nothing kept). A
file already in the cache is hashed again against its cached checksum, so a re-run works
offline. The cache mirrors the URL: ``<cache>/<host>/<path>``.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal
from urllib.parse import urlsplit

from cryptolab.errors import HistoryError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
Status = Literal["downloaded", "cached", "missing", "refused"]
_CHECKSUM = re.compile(r"([0-9a-fA-F]{64})\s+\*?(\S+)\s*")


@dataclass(frozen=True)
class Fetched:
    """The outcome of :meth:`Archive.fetch` for one published file."""

    name: str
    status: Status
    path: Path | None = None  # the verified local file ("downloaded" or "cached")
    sha256: str = ""
    size: int = 0
    reason: str = ""  # why it is missing or refused

    @property
    def ok(self) -> bool:
        return self.path is not None


class _NotFound(Exception):
    pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


class Archive:
    """``base_url`` (e.g. ``https://data.binance.vision``) with a cache under ``cache_dir``.

    ``on_bytes(n)`` is called as bytes arrive (progress)."""

    def __init__(
        self,
        base_url: str,
        cache_dir: Path,
        timeout: float = 30.0,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise HistoryError(
                f"base URL {base_url!r} must be http(s)://host[/path], like "
                "https://data.binance.vision (--base-url or CRYPTOLAB_BINANCE_DATA_URL)"
            )
        self.base_url = base_url.rstrip("/")
        self.root = Path(cache_dir).expanduser().resolve() / parts.netloc.replace(":", "_")
        self.timeout = timeout
        self.on_bytes = on_bytes or (lambda n: None)

    def local(self, path: str) -> Path:
        return self.root / path

    # -- HTTP --------------------------------------------------------------------------------
    def _open(self, path: str, offset: int = 0) -> IO[bytes]:
        url = f"{self.base_url}/{path}"
        headers = {"User-Agent": "cryptolab"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            return urllib.request.urlopen(
                urllib.request.Request(url, headers=headers), timeout=self.timeout
            )
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise _NotFound(url) from None
            if exc.code == 416 and offset:  # the part file is complete already
                raise
            raise HistoryError(f"GET {url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise HistoryError(
                f"cannot reach {self.base_url} ({reason}): check the address "
                "(--base-url or CRYPTOLAB_BINANCE_DATA_URL) and the network"
            ) from None

    def _published_checksum(self, path: str) -> str:
        """The published sha256 of ``path`` (cached next to it); _NotFound when unpublished."""
        local = self.local(path + ".CHECKSUM")
        try:
            with self._open(path + ".CHECKSUM") as response:
                text = response.read(4096).decode("utf-8", "replace")
        except _NotFound:
            raise
        match = _CHECKSUM.fullmatch(text.strip() + "\n")
        name = path.rsplit("/", 1)[-1]
        if match is None or match.group(2) != name:
            raise HistoryError(f"{name}.CHECKSUM is not '<sha256>  {name}': {text.strip()[:120]!r}")
        _write_small(local, text)
        return match.group(1).lower()

    # -- fetch -------------------------------------------------------------------------------
    def fetch(self, path: str) -> Fetched:
        """The verified local copy of ``path``: from the cache, or downloaded (see the module
        docstring). Raises HistoryError when the server is unreachable or the disk is full."""
        name = path.rsplit("/", 1)[-1]
        local = self.local(path)
        cached = self._cached(path)
        if cached is not None:
            return cached
        try:
            expected = self._published_checksum(path)
        except _NotFound:
            return Fetched(name, "missing", reason="not published (404)")
        got = ""
        for attempt in (1, 2):
            part = local.with_name(local.name + ".part")
            if attempt == 2:
                part.unlink(missing_ok=True)
            try:
                self._download(path, part)
            except _NotFound:
                return Fetched(name, "missing", reason="checksum published but file 404")
            got = sha256_of(part)
            if got == expected:
                os.replace(part, local)
                log.info("downloaded file=%s bytes=%d sha256=%s", name, local.stat().st_size, got)
                return Fetched(name, "downloaded", local, got, local.stat().st_size)
            part.unlink(missing_ok=True)
            log.warning(
                "checksum mismatch file=%s attempt=%d expected=%s got=%s", name, attempt,
                expected, got,
            )  # fmt: skip
        return Fetched(
            name, "refused", sha256=got,
            reason=f"checksum mismatch twice: published {expected}, downloaded {got}",
        )  # fmt: skip

    def _cached(self, path: str) -> Fetched | None:
        local = self.local(path)
        checksum = self.local(path + ".CHECKSUM")
        if not (local.is_file() and checksum.is_file()):
            return None
        match = _CHECKSUM.fullmatch(checksum.read_text("utf-8", "replace").strip() + "\n")
        if match is None:
            return None
        got = sha256_of(local)
        if got != match.group(1).lower():
            log.warning("cached file changed, fetching it again file=%s", local)
            local.unlink()
            return None
        return Fetched(local.name, "cached", local, got, local.stat().st_size)

    def _download(self, path: str, part: Path) -> None:
        """``path`` into ``part``, continuing a previous partial download when possible."""
        offset = part.stat().st_size if part.is_file() else 0
        try:
            response = self._open(path, offset)
        except urllib.error.HTTPError:  # 416: nothing left to fetch
            return
        with response:
            resumed = offset > 0 and getattr(response, "status", 200) == 206
            try:
                part.parent.mkdir(parents=True, exist_ok=True)
                out = open(part, "ab" if resumed else "wb")  # noqa: SIM115 - closed below
            except OSError as exc:
                raise disk_error(part, exc) from None
            with out:
                while True:
                    try:
                        block = response.read(CHUNK)
                    except (OSError, http.client.HTTPException) as exc:
                        raise HistoryError(
                            f"download of {path} from {self.base_url} broke off ({exc!r}); "
                            "run the command again to continue it"
                        ) from None
                    if not block:
                        break
                    try:
                        out.write(block)
                    except OSError as exc:
                        raise disk_error(part, exc) from None
                    self.on_bytes(len(block))


def disk_error(path: Path, exc: OSError) -> HistoryError:
    """A clear error for a file cryptolab could not write (full disk above all)."""
    if exc.errno == errno.ENOSPC:
        return HistoryError(
            f"no space left on the device of {path.parent}: free space there or point "
            "CRYPTOLAB_CACHE_DIR elsewhere; the files loaded so far are complete, the rest can "
            "be loaded by running the command again"
        )
    return HistoryError(f"cannot write {path}: {exc.strerror or exc}")


def _write_small(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise disk_error(path, exc) from None
