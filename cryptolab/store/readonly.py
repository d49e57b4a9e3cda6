"""Read-only handles on this process's chDB engine: what the share runs its queries on.

chDB allows any number of connection handles to the one engine a process hosts, each with its
own session. Every handle here gets the share's limits and then ``SET readonly = 1`` on its
session, so ClickHouse itself refuses writes (INSERT, ALTER, DROP, CREATE, TRUNCATE, OPTIMIZE,
most SYSTEM statements, table functions that reach files or URLs) and any change of a setting,
``readonly`` and the limits included, whatever the SQL says.

``readonly = 1`` still lets a few statements through that write or disturb the pipeline without
changing a table: ``SYSTEM STOP MERGES`` (and TTL MERGES, MOVES, FETCHES, VIEWS...), ``KILL
QUERY``, and ``SELECT ... INTO OUTFILE`` (which writes a file). So before running a query the
share asks the engine's own parser what it is (``formatQuerySingleLine``, with the query as a
bound parameter; no SQL is parsed in Python): one statement (ClickHouse's HTTP rule, "Multi-
statements are not allowed"), a SELECT, WITH, SHOW, DESCRIBE, EXISTS or EXPLAIN, and no INTO
OUTFILE. Anything else is refused with ClickHouse's READONLY code.

A handle that failed a query is closed and replaced: chDB can keep the partial output of a
failed statement and hand it to the handle's next query.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from cryptolab.errors import StoreError

log = logging.getLogger(__name__)

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CODE = re.compile(r"Code: (\d+)\.")
_VERSION_TRAILER = re.compile(r"\s*\(version [0-9.]+\)\s*$")
_OUR_SCOPE = ": In scope SELECT formatQuerySingleLine("
MAX_RESULT_BYTES = 1 << 30
"""An answer is held in memory before it is sent: at most 1 GiB of it."""
READS = ("SELECT ", "WITH ", "SHOW ", "DESCRIBE ", "EXISTS ", "EXPLAIN ")
"""How the engine's canonical form of a query the share runs begins."""


@dataclass(frozen=True)
class Limits:
    """What one shared query may use. ``max_threads`` is 1: the pipeline keeps the other
    cores, and cryptolab's own queries pin ``SETTINGS max_threads = 1`` (equal, so allowed)."""

    max_seconds: float
    max_rows: int

    def session(self) -> list[tuple[str, str]]:
        """``SET`` statements of a handle, ``readonly`` last (after it nothing can change)."""
        return [
            ("max_threads", "1"),
            ("max_execution_time", f"{self.max_seconds:g}"),
            ("max_result_rows", str(int(self.max_rows))),
            ("max_result_bytes", str(MAX_RESULT_BYTES)),
            ("result_overflow_mode", "'throw'"),
            # what clickhouse-connect's in-process client sets, so reads match it exactly
            ("output_format_arrow_string_as_string", "1"),
            ("date_time_input_format", "'best_effort'"),
            ("readonly", "1"),
        ]


@dataclass(frozen=True)
class Query:
    """One shared query as the HTTP interface received it."""

    sql: str
    fmt: str = "TabSeparated"
    params: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    database: str | None = None


@dataclass(frozen=True)
class Answer:
    body: bytes
    rows_read: int
    bytes_read: int
    elapsed_s: float


class QueryError(Exception):
    """ClickHouse's own error for a shared query: its code and text."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def engine_error(exc: BaseException) -> QueryError:
    """A chDB exception as ClickHouse's ``Code: N. DB::Exception: ...`` text and code."""
    text = str(exc).strip()
    start = text.find("Code: ")
    if start > 0:
        text = text[start:]
    match = _CODE.search(text)
    return QueryError(int(match.group(1)) if match else 1002, _VERSION_TRAILER.sub("", text))


def escaped(text: str) -> str:
    """``text`` as a query parameter value (ClickHouse's escaped text format)."""
    for raw, escape in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"), ("\0", "\\0")):
        text = text.replace(raw, escape)
    return text


def statement_kind(conn: Any, sql: str) -> str:
    """The engine's canonical one-line form of ``sql``; QueryError unless it is one read
    statement (see the module docstring)."""
    try:
        canonical = (
            conn.query(
                "SELECT formatQuerySingleLine({q:String})",
                "TabSeparatedRaw",
                params={"q": escaped(sql)},
            )
            .bytes()
            .decode()
            .strip()
        )
    except Exception as exc:
        error = engine_error(exc)
        cut = error.text.find(_OUR_SCOPE)  # the engine names our wrapper: say only the query
        text = error.text[:cut] + ". (SYNTAX_ERROR)" if cut > 0 else error.text
        raise QueryError(error.code, text) from None
    if not canonical.startswith(READS) or " INTO OUTFILE " in canonical:
        kind = " ".join(canonical.split()[:2])[:40]
        raise QueryError(
            164,
            "Code: 164. DB::Exception: default: Cannot execute query in readonly mode: the "
            "cryptolab store share runs one SELECT, WITH, SHOW, DESCRIBE, EXISTS or EXPLAIN "
            f"statement without INTO OUTFILE, not {kind}. (READONLY)",
        )
    return canonical


def string_literal(value: str) -> str:
    """A ClickHouse string literal: backslashes and quotes escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class _Handle:
    def __init__(self, path: str, limits: Limits) -> None:
        import chdb

        self.conn: Any = chdb.connect(path)
        self.database: str | None = None
        for name, value in limits.session():
            self.conn.query(f"SET {name} = {value}")
        readonly = self.conn.query("SELECT getSetting('readonly')", "TabSeparated").bytes()
        if readonly.strip() != b"1":  # never serve a handle that could write
            self.close()
            raise StoreError(f"a shared chDB handle did not turn read-only ({readonly!r})")

    def run(self, query: Query) -> Answer:
        started = time.perf_counter()
        statement_kind(self.conn, query.sql)
        self._use(query.database)
        for name, value in query.settings.items():
            if not IDENTIFIER.fullmatch(name):
                raise QueryError(115, f"Code: 115. DB::Exception: Unknown setting '{name[:60]}'.")
            # readonly = 1: the engine refuses any value that differs from the session's
            self.conn.query(f"SET {name} = {string_literal(value)}")
        result = self.conn.query(query.sql, query.fmt, params=query.params)
        return Answer(
            bytes(result.bytes() or b""),
            int(result.rows_read()),
            int(result.bytes_read()),
            time.perf_counter() - started,
        )

    def _use(self, database: str | None) -> None:
        wanted = database or "default"
        if wanted == self.database:
            return
        if not IDENTIFIER.fullmatch(wanted):
            raise QueryError(
                81,
                f"Code: 81. DB::Exception: Database {wanted[:60]!r} is not a name of letters, "
                "digits and underscores. (UNKNOWN_DATABASE)",
            )
        self.conn.query(f"USE `{wanted}`")
        self.database = wanted

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception as exc:  # the engine is going away anyway
            log.debug("closing a shared chDB handle failed error=%r", exc)


class ReadOnlyEngine:
    """``workers`` read-only handles on the chDB engine at ``path`` (this process's)."""

    def __init__(self, path: str, workers: int, limits: Limits) -> None:
        self.path = os.path.realpath(path)
        self.limits = limits
        self.workers = workers
        self._idle: queue.Queue[_Handle | None] = queue.Queue()
        self._closed = threading.Event()
        first = _Handle(self.path, limits)
        self.timezone = first.conn.query("SELECT timezone()", "TabSeparated").bytes().strip()
        names = first.conn.query(
            "SELECT number, errorCodeToName(number) FROM system.numbers "
            "WHERE number < 2000 AND errorCodeToName(number) != ''",
            "TabSeparated",
        )
        self.error_names: dict[int, str] = {
            int(code): name
            for code, name in (line.split("\t") for line in names.bytes().decode().splitlines())
        }
        self._idle.put(first)
        for _ in range(workers - 1):
            self._idle.put(_Handle(self.path, limits))

    def run(self, query: Query) -> Answer:
        """Run ``query`` on an idle handle (waits for one); QueryError on ClickHouse's error."""
        handle = self._idle.get()
        try:
            if self._closed.is_set():
                raise QueryError(210, "Code: 210. DB::Exception: the share is stopping.")
            if handle is None:
                handle = _Handle(self.path, self.limits)
            return handle.run(query)
        except QueryError:
            handle = self._replace(handle)
            raise
        except Exception as exc:
            handle = self._replace(handle)
            raise engine_error(exc) from None
        finally:
            self._idle.put(handle)

    def _replace(self, handle: _Handle | None) -> _Handle | None:
        """A fresh handle for one that failed (chDB may hold the failed query's output)."""
        if handle is not None:
            handle.close()
        if self._closed.is_set():
            return None
        try:
            return _Handle(self.path, self.limits)
        except Exception as exc:  # retried on the next query
            log.warning("cannot reopen a shared chDB handle error=%r", exc)
            return None

    def close(self) -> None:
        """Close every handle (waits for running queries to end)."""
        self._closed.set()
        for _ in range(self.workers):
            handle = self._idle.get()
            if handle is not None:
                handle.close()
