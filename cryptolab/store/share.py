"""The store, shared read-only over ClickHouse's HTTP interface by the process that owns it.

chDB allows one process per data directory, so the process that owns an embedded store (``up``,
``stream``, a notebook running the pipeline) serves it on ``127.0.0.1:8123`` (a free port when
taken; ``CRYPTOLAB_STORE_SHARE_PORT``, 0 = off) and writes the URL to
``<data_dir>/clickhouse.endpoint`` (:mod:`cryptolab.store.endpoint`). Other cryptolab processes,
``clickhouse_connect.get_client(host=..., port=...)``, curl and any ClickHouse client read the
live store through it.

It speaks the part of the HTTP interface those clients use: the query in the body and/or
``query=``, ``database``, ``param_*`` bound parameters (also as multipart form fields),
``default_format`` / ``X-ClickHouse-Format`` or a ``FORMAT`` clause (every output format the
engine has: Native, ArrowStream, CSVWithNames, JSONEachRow, TabSeparated, ...), settings as URL
parameters, the ``X-ClickHouse-*`` response headers, ClickHouse's error text with its HTTP
status and ``X-ClickHouse-Exception-Code``, and ``/ping``.

Queries run on :class:`~cryptolab.store.readonly.ReadOnlyEngine` handles (``readonly = 1``
enforced by the engine, one thread per query, ``store_share_threads`` at once, time and row
limits): the pipeline stays first. Query text and parameters are logged at DEBUG only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cryptolab.access import basic_credentials, require_guarded, same_secret
from cryptolab.settings import Settings
from cryptolab.store import endpoint as endpoints
from cryptolab.store.readonly import Limits, Query, QueryError, ReadOnlyEngine

log = logging.getLogger(__name__)

USER = "default"
MAX_BODY = 16 * 1024 * 1024
PENDING_PER_WORKER = 16
TRANSPORT = frozenset(
    {
        "query", "database", "default_format", "query_id", "user", "password", "quota_key",
        "session_id", "session_timeout", "session_check", "compress", "decompress",
        "enable_http_compression", "http_zlib_compression_level", "wait_end_of_query",
        "buffer_size", "send_progress_in_http_headers", "http_headers_progress_interval_ms",
        "client_protocol_version", "role", "http_response_buffer_size",
    }
)  # fmt: skip
"""URL parameters the HTTP layer consumes; every other one (not ``param_*``) is a setting."""

_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_STATUS_BY_NAME = {
    401: ("REQUIRED_PASSWORD",),
    403: ("UNKNOWN_USER", "WRONG_PASSWORD", "AUTHENTICATION_FAILED", "SET_NON_GRANTED_ROLE",
          "ACCESS_DENIED"),
    400: ("BAD_ARGUMENTS", "CANNOT_COMPILE_REGEXP", "CANNOT_PARSE_TEXT",
          "CANNOT_PARSE_ESCAPE_SEQUENCE", "CANNOT_PARSE_QUOTED_STRING", "CANNOT_PARSE_DATE",
          "CANNOT_PARSE_DATETIME", "CANNOT_PARSE_NUMBER", "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING",
          "CANNOT_PARSE_IPV4", "CANNOT_PARSE_IPV6", "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
          "CANNOT_PARSE_UUID", "DUPLICATE_COLUMN", "ILLEGAL_COLUMN", "UNKNOWN_ELEMENT_IN_AST",
          "UNKNOWN_TYPE_OF_AST_NODE", "THERE_IS_NO_COLUMN", "TOO_DEEP_AST", "TOO_BIG_AST",
          "UNEXPECTED_AST_STRUCTURE", "SYNTAX_ERROR", "INCORRECT_DATA", "TYPE_MISMATCH",
          "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE"),
    404: ("UNKNOWN_TABLE", "UNKNOWN_FUNCTION", "UNKNOWN_IDENTIFIER", "UNKNOWN_TYPE",
          "UNKNOWN_STORAGE", "UNKNOWN_DATABASE", "UNKNOWN_SETTING", "UNKNOWN_DIRECTION_OF_SORTING",
          "UNKNOWN_AGGREGATE_FUNCTION", "UNKNOWN_FORMAT", "UNKNOWN_DATABASE_ENGINE",
          "UNKNOWN_TYPE_OF_QUERY", "UNKNOWN_ROLE"),
    413: ("QUERY_IS_TOO_LARGE",),
    501: ("NOT_IMPLEMENTED",),
    503: ("SOCKET_TIMEOUT", "CANNOT_OPEN_FILE", "CANNOT_SCHEDULE_TASK"),
    411: ("HTTP_LENGTH_REQUIRED",),
    408: ("TIMEOUT_EXCEEDED",),
    415: ("UNSUPPORTED_MEDIA_TYPE",),
}  # fmt: skip
"""ClickHouse's exceptionCodeToHTTPStatus (src/Server/HTTP), by error name; 500 otherwise."""
HTTP_STATUS = {name: status for status, names in _STATUS_BY_NAME.items() for name in names}


def content_type(fmt: str) -> str:
    """The Content-Type ClickHouse sends with output format ``fmt``."""
    lower = fmt.lower()
    if lower.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if lower.startswith("csv"):
        header = "present" if "withnames" in lower else "absent"
        return f"text/csv; charset=UTF-8; header={header}"
    if lower.startswith("json"):
        return "application/json; charset=UTF-8"
    if lower.startswith(("pretty", "vertical", "markdown", "values", "template", "raw")):
        return "text/plain; charset=UTF-8"
    return "application/octet-stream"


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or on a free port when ``port`` is taken."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        log.info("store share port %s:%d is taken (%s): using a free port", host, port, exc)
        sock.bind((address[0], 0, *address[2:]))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def local_url(host: str, port: int) -> str:
    """The URL this machine's processes use: a wildcard bind is reached on loopback."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class StoreShare:
    """A running share: an aiohttp server on its own thread, queries on a bounded pool."""

    def __init__(self, engine: ReadOnlyEngine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        password = settings.store_share_password
        self._password = password.get_secret_value() if password is not None else None
        self._pool = ThreadPoolExecutor(engine.workers, thread_name_prefix="store-share")
        self._max_pending = engine.workers * PENDING_PER_WORKER
        self._pending = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self.url = ""
        self.store_dir: Path | None = None
        self.queries = 0

    # -- lifecycle ---------------------------------------------------------------------------
    @classmethod
    def start(cls, settings: Settings) -> StoreShare | None:
        """Share this process's embedded store (already open) as the settings say and publish
        the endpoint file; None when the store is a server or ``CRYPTOLAB_STORE_SHARE_PORT=0``."""
        store = endpoints.store_dir(settings)
        if store is None or settings.store_share_port == 0:
            return None
        require_share_guarded(settings)
        share = cls.serve(
            str(store), settings, listen(settings.store_share_host, settings.store_share_port)
        )
        share.store_dir = store
        endpoints.publish(store, share.url)
        log.info(
            "store shared read-only at %s (%s; %d queries at once, %g s, %d rows max)",
            share.url, endpoints.endpoint_file(store), share.engine.workers,
            share.engine.limits.max_seconds, share.engine.limits.max_rows,
        )  # fmt: skip
        return share

    @classmethod
    def serve(cls, store: str, settings: Settings, sock: socket.socket) -> StoreShare:
        """Serve the chDB store at ``store`` (this process's engine) on ``sock``, without
        publishing an endpoint file."""
        limits = Limits(settings.store_share_max_seconds, settings.store_share_max_rows)
        share = cls(ReadOnlyEngine(store, settings.store_share_threads, limits), settings)
        try:
            share._serve(sock)
        except BaseException:
            share.stop()
            raise
        return share

    def announce(self, **extra: str) -> None:
        """Add ``key=value`` lines (e.g. ``dashboard=...``) to the endpoint file."""
        if self.store_dir is not None:
            endpoints.publish(self.store_dir, self.url, **extra)

    def _serve(self, sock: socket.socket) -> None:
        port = sock.getsockname()[1]
        self.url = local_url(self.settings.store_share_host, port)
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name="store-share", daemon=True
        )
        self._thread.start()
        self._ready.wait(30)
        if self._failed is not None:
            raise self._failed

    def _run(self, sock: socket.socket) -> None:
        from aiohttp import web

        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        try:
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.SockSite(runner, sock, shutdown_timeout=1.0).start())
        except BaseException as exc:
            self._failed = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    def stop(self) -> None:
        """Stop serving (running queries finish first), close the handles, remove the file."""
        if self.store_dir is not None:
            endpoints.withdraw(self.store_dir, self.url)
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.engine.close()
        log.info("store share stopped queries=%d", self.queries)

    # -- requests ----------------------------------------------------------------------------
    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        path = request.path
        plain_get = request.method in ("GET", "HEAD") and "query" not in request.query
        if path in ("/ping", "/replicas_status") or (path == "/" and plain_get):
            return web.Response(text="Ok.\n")  # health checks need no password
        if path != "/":
            return self._error(404, f"There is no handle {path[:80]}\n\nUse / or /ping.\n")
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        try:
            query, query_id = await self._parse(request)
        except QueryError as exc:
            return self._failure(exc, "")
        if query is None:
            return web.Response(text="Ok.\n")
        if self._pending >= self._max_pending:
            return self._failure(
                QueryError(202, "Code: 202. DB::Exception: Too many simultaneous queries to "
                                "the cryptolab store share. (TOO_MANY_SIMULTANEOUS_QUERIES)"),
                query_id,
            )  # fmt: skip
        self._pending += 1
        try:
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(self._pool, self.engine.run, query)
        except QueryError as exc:
            log.debug("share query failed id=%s code=%d", query_id, exc.code)
            return self._failure(exc, query_id)
        finally:
            self._pending -= 1
        self.queries += 1
        fmt = _trailing_format(query.sql) or query.fmt
        log.debug("share query id=%s rows_read=%d ms=%.1f", query_id, answer.rows_read,
                  answer.elapsed_s * 1000)  # fmt: skip
        summary = {
            "read_rows": str(answer.rows_read),
            "read_bytes": str(answer.bytes_read),
            "written_rows": "0",
            "written_bytes": "0",
            "total_rows_to_read": "0",
            "result_bytes": str(len(answer.body)),
            "elapsed_ns": str(int(answer.elapsed_s * 1e9)),
        }
        headers = {
            **self._common_headers(query_id),
            "Content-Type": content_type(fmt),
            "X-ClickHouse-Format": fmt,
            "X-ClickHouse-Summary": json.dumps(summary, separators=(",", ":")),
        }
        return web.Response(body=answer.body, headers=headers)

    async def _parse(self, request: Any) -> tuple[Query | None, str]:
        """The Query a request carries (None for a plain ``GET /``) and its query id."""
        params: dict[str, str] = dict(request.query)
        text = ""
        if request.content_type == "multipart/form-data":
            async for part in await request.multipart():
                if part.filename:
                    raise QueryError(
                        48,
                        "Code: 48. DB::Exception: External tables are not supported by the "
                        "cryptolab store share. (NOT_IMPLEMENTED)",
                    )
                params[str(part.name)] = await part.text()
        elif request.can_read_body:
            try:
                text = (await request.read()).decode("utf-8")
            except UnicodeDecodeError:
                raise QueryError(
                    27, "Code: 27. DB::Exception: the query is not UTF-8. (CANNOT_PARSE_INPUT)"
                ) from None
        query_id = params.get("query_id") or str(uuid.uuid4())
        url_query = params.get("query", "")
        if not url_query and not text:
            if request.method in ("GET", "HEAD"):
                return None, query_id
            raise QueryError(62, "Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)")
        sql = f"{url_query}\n{text}" if url_query and text else url_query or text
        fmt = params.get("default_format") or request.headers.get("X-ClickHouse-Format")
        query = Query(
            sql=sql,
            fmt=fmt or "TabSeparated",
            params={k[6:]: v for k, v in params.items() if k.startswith("param_")},
            settings={
                k: v for k, v in params.items() if k not in TRANSPORT and not k.startswith("param_")
            },
            database=params.get("database") or request.headers.get("X-ClickHouse-Database"),
        )
        return query, query_id

    def _authenticate(self, request: Any) -> Any:
        """None when the request may query; else ClickHouse's 401/403 answer."""
        from aiohttp import web

        if self._password is None:
            return None
        given = basic_credentials(request.headers.get("Authorization"))
        if given is None and "X-ClickHouse-User" in request.headers:
            given = (
                request.headers["X-ClickHouse-User"],
                request.headers.get("X-ClickHouse-Key", ""),
            )
        if given is None and "user" in request.query:
            given = (request.query["user"], request.query.get("password", ""))
        if given is None:
            response = self._error(
                401,
                "Code: 194. DB::Exception: default: the cryptolab store share needs a password "
                "(user default, password CRYPTOLAB_STORE_SHARE_PASSWORD). (REQUIRED_PASSWORD)\n",
                194,
            )
            response.headers["WWW-Authenticate"] = 'Basic realm="ClickHouse server HTTP API"'
            return response
        user, password = given
        user_ok = same_secret(user, USER)
        if same_secret(password, self._password) and user_ok:
            return None
        log.warning("store share refused a login user=%s from %s", user[:40], request.remote)
        return web.Response(
            status=403,
            text=f"Code: 516. DB::Exception: {user[:40]}: Authentication failed: password is "
            "incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)\n",
            headers={"X-ClickHouse-Exception-Code": "516"},
        )

    def _common_headers(self, query_id: str) -> dict[str, str]:
        return {
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": self.engine.timezone.decode(),
            "X-ClickHouse-Server-Display-Name": "cryptolab-store-share",
        }

    def _failure(self, exc: QueryError, query_id: str) -> Any:
        status = HTTP_STATUS.get(self.engine.error_names.get(exc.code, ""), 500)
        response = self._error(status, exc.text.rstrip() + "\n", exc.code)
        if query_id:
            response.headers.update(self._common_headers(query_id))
        return response

    @staticmethod
    def _error(status: int, text: str, code: int | None = None) -> Any:
        from aiohttp import web

        headers = {"X-ClickHouse-Exception-Code": str(code)} if code is not None else {}
        return web.Response(status=status, text=text, headers=headers)


def require_share_guarded(settings: Settings) -> None:
    """Refuse to share the store beyond this machine without a password (the dashboard's rule)."""
    require_guarded(
        "the store share",
        settings.store_share_host,
        settings.store_share_password is not None,
        False,
        "set CRYPTOLAB_STORE_SHARE_PASSWORD (clients log in as user default), or bind "
        "CRYPTOLAB_STORE_SHARE_HOST=127.0.0.1, or turn sharing off with "
        "CRYPTOLAB_STORE_SHARE_PORT=0",
    )


def _trailing_format(sql: str) -> str | None:
    """A trailing ``FORMAT name`` of the query: only to label the answer (headers); the engine
    reads the query itself."""
    match = _TRAILING_FORMAT.search(sql)
    return match.group(1) if match else None
