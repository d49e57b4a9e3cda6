"""The store share on real chDB: clickhouse-connect's own HTTP client, raw HTTP (urllib and
curl), writes refused by the engine, limits, passwords, and other processes finding it.

This test process owns a store (a tape loaded in batch) and shares it; readers are HTTP
clients here and other processes (the CLI). Expected values come from tests.reference (plain
pandas over the tape), or from an in-process read of the same engine.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import clickhouse_connect
import pyarrow as pa
import pytest

from cryptolab.batch.load import load_tape
from cryptolab.errors import ConfigError
from cryptolab.feeds.tapes.synth import synth_frames
from cryptolab.feeds.tapes.tape import write_frames
from cryptolab.settings import Settings, load_settings
from cryptolab.store import Store, open_store, queries
from cryptolab.store.endpoint import endpoint_file, read_endpoint
from cryptolab.store.share import StoreShare, listen
from tests.reference import assert_candles_equal, parse_candles_csv, reference_candles, tape_trades
from tests.tools import need

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@dataclass
class Shared:
    settings: Settings
    store: Store  # the owner's in-process store
    share: StoreShare
    tape: Path

    @property
    def db(self) -> str:
        return self.settings.clickhouse_database

    @property
    def port(self) -> int:
        return int(urllib.parse.urlsplit(self.share.url).port or 0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def shared(chdb_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    tape = tmp_path_factory.mktemp("share") / "two.jsonl"
    write_frames(tape, synth_frames(SYMBOLS, 120, 20, seed=31))
    settings = load_settings(
        data_dir=chdb_root,
        clickhouse_database=f"share_{uuid.uuid4().hex[:8]}",
        store_share_port=free_port(),
        store_share_threads=2,
        store_share_max_seconds=2,
        store_share_max_rows=100_000,
    )
    store = open_store(settings)
    load_tape(store, tape)
    share = StoreShare.start(settings)
    assert share is not None
    yield Shared(settings, store, share, tape)
    share.stop()
    assert not endpoint_file(chdb_root / "clickhouse").exists(), "a clean stop removes the file"


def http(
    share: Shared,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    path: str = "/",
    extra: dict[str, str] | None = None,
    **params: str,
) -> tuple[int, dict[str, str], bytes]:
    """One request, as curl would send it; (status, headers, body) whatever the status.
    URL parameters: ``params`` and ``extra``."""
    url = f"{share.share.url}{path}"
    params.update(extra or {})
    if params:
        url += "?" + urllib.parse.urlencode(params)
    request = urllib.request.Request(url, data=body.encode() if body is not None else None)
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def reference_totals(tape: Path) -> dict[str, tuple[int, Decimal]]:
    trades = tape_trades(tape)
    return {
        str(s): (len(g), sum(g["qty"], Decimal(0))) for s, g in trades.groupby("symbol", sort=True)
    }


# -- clickhouse-connect, unchanged ---------------------------------------------------------------
def test_clickhouse_connect_reads_what_an_in_process_read_returns(shared: Shared) -> None:
    client = clickhouse_connect.get_client(host="127.0.0.1", port=shared.port)
    assert client.ping()
    sql = (
        f"SELECT symbol, trade_id, price, qty, trade_time, is_buyer_maker FROM {shared.db}.trades "
        "FINAL WHERE symbol = {s:String} AND trade_id >= {lo:UInt64} ORDER BY trade_id"
    )
    params = {"s": "BTCUSDT", "lo": 5}
    native = client.query(sql, parameters=params).result_rows  # Native format
    assert native and native == shared.store.query_rows(sql, params)
    arrow = client.query_arrow(sql, parameters=params)  # ArrowStream format
    assert arrow.equals(shared.store.query_arrow(sql, params))
    assert arrow.schema.field("symbol").type == pa.string()

    # cryptolab's own queries over the HTTP client equal them over the in-process one
    over_http = Store(client, shared.db, shared.share.url)
    for interval in ("10s", "1m"):
        got = queries.candles(over_http, "ETHUSDT", interval)
        assert got.equals(queries.candles(shared.store, "ETHUSDT", interval))
    totals = client.query(
        f"SELECT symbol, count(), sum(qty) FROM {shared.db}.trades FINAL GROUP BY symbol "
        "ORDER BY symbol"
    ).result_rows
    assert {s: (n, q) for s, n, q in totals} == reference_totals(shared.tape)

    with pytest.raises(clickhouse_connect.driver.exceptions.DatabaseError, match="code: 60"):
        client.query(f"SELECT * FROM {shared.db}.no_such_table")
    assert client.command("SELECT 1 + 1") == 2, "the client goes on after an error"


# -- raw HTTP ----------------------------------------------------------------------------------
def test_raw_http_speaks_the_clickhouse_interface(shared: Shared) -> None:
    totals = reference_totals(shared.tape)
    assert http(shared, path="/ping")[2] == b"Ok.\n"
    assert http(shared)[2] == b"Ok.\n"

    status, headers, body = http(shared, query=f"SELECT count() FROM {shared.db}.trades FINAL")
    assert status == 200 and body == f"{sum(n for n, _ in totals.values())}\n".encode()
    assert headers["X-ClickHouse-Format"] == "TabSeparated"
    assert json.loads(headers["X-ClickHouse-Summary"])["read_rows"] != "0"
    assert headers["X-ClickHouse-Query-Id"] and headers["X-ClickHouse-Timezone"]

    # query in the body, bound parameter, default_format; then the URL's part + the body
    status, headers, body = http(
        shared,
        f"SELECT symbol, count() AS n, sum(qty) AS q FROM {shared.db}.trades FINAL "
        "WHERE symbol = {s:String} GROUP BY symbol",
        param_s="ETHUSDT",
        default_format="CSVWithNames",
    )
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    lines = body.decode().splitlines()
    assert lines[0] == '"symbol","n","q"'
    symbol, count, qty = lines[1].split(",")
    assert (int(count), Decimal(qty)) == totals["ETHUSDT"] and symbol == '"ETHUSDT"'
    status, _, body = http(
        shared,
        f"FROM {shared.db}.trades FINAL WHERE symbol = {{s:String}}",
        query="SELECT count()",
        param_s="BTCUSDT",
    )
    assert (status, body) == (200, f"{totals['BTCUSDT'][0]}\n".encode())

    # the database parameter (USE on the reader's session), ClickHouse's default otherwise
    status, _, body = http(shared, "SELECT count() FROM trades FINAL", database=shared.db)
    assert (status, body) == (200, f"{sum(n for n, _ in totals.values())}\n".encode())
    assert http(shared, "SELECT currentDatabase()")[2] == b"default\n"
    status, headers, _ = http(shared, "SELECT 1", database="no_such_db")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (404, "81")

    # a FORMAT clause, JSONEachRow
    status, headers, body = http(
        shared,
        f"SELECT symbol, count() AS n FROM {shared.db}.trades FINAL GROUP BY symbol "
        "ORDER BY symbol FORMAT JSONEachRow",
    )
    assert headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert headers["Content-Type"].startswith("application/json")
    rows = [json.loads(line) for line in body.decode().splitlines()]
    assert {r["symbol"]: int(r["n"]) for r in rows} == {s: n for s, (n, _) in totals.items()}

    # binary formats come from the engine itself: Arrow equals the in-process Arrow read
    sql = (
        f"SELECT * EXCEPT (stored_at) FROM {shared.db}.candles_10s FINAL "
        "ORDER BY symbol, window_start"
    )
    status, headers, body = http(shared, sql, default_format="ArrowStream")
    assert status == 200 and headers["Content-Type"] == "application/octet-stream"
    table = pa.ipc.open_stream(io.BytesIO(body)).read_all()
    assert table.num_rows == len(reference_candles(tape_trades(shared.tape)))
    status, _, native = http(shared, sql, default_format="Native")
    assert status == 200 and native[:1] != b"" and b"window_start" in native

    status, headers, body = http(shared, f"SELECT * FROM {shared.db}.no_such_table")
    assert status == 404 and headers["X-ClickHouse-Exception-Code"] == "60"
    assert body.startswith(b"Code: 60. DB::Exception:")
    status, headers, _ = http(shared, "SELEKT 1")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (400, "62")
    assert http(shared, path="/nowhere")[0] == 404


def test_curl_reads_the_share(shared: Shared) -> None:
    curl = need("curl")
    query = urllib.parse.quote(f"SELECT count() FROM {shared.db}.trades FINAL")
    done = subprocess.run(
        [curl, "-sS", "--fail-with-body", f"{shared.share.url}/?query={query}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    expected = sum(n for n, _ in reference_totals(shared.tape).values())
    assert (done.returncode, done.stdout) == (0, f"{expected}\n"), done.stderr
    done = subprocess.run(
        [curl, "-sS", "-w", "%{http_code}", "--data-binary", "DROP TABLE " + shared.db + ".trades",
         f"{shared.share.url}/"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.stdout.endswith("500") and "(READONLY)" in done.stdout


# -- read-only, enforced by the engine -----------------------------------------------------------
def checksums(shared: Shared) -> dict[str, Any]:
    """Every table of the database: rows, a hash of every row, and its parts' file hashes."""
    db = shared.db
    tables = [r[0] for r in shared.store.query_rows(f"SHOW TABLES FROM {db}")]
    result: dict[str, Any] = {"databases": shared.store.query_rows("SHOW DATABASES")}
    for table in tables:
        result[table] = shared.store.query_rows(
            f"SELECT count(), sum(cityHash64(*)) FROM {db}.`{table}`"
        ) + shared.store.query_rows(
            "SELECT name, hash_of_all_files FROM system.parts WHERE database = {d:String} "
            "AND table = {t:String} AND active ORDER BY name",
            {"d": db, "t": table},
        )
    return result


def test_writes_are_refused_by_the_engine_and_tables_stay_unchanged(
    shared: Shared, tmp_path: Path
) -> None:
    db = shared.db
    outfile = tmp_path / "evil.csv"
    before = checksums(shared)
    attempts = [
        f"INSERT INTO {db}.trades (symbol, trade_id) VALUES ('BTCUSDT', 999999)",
        f"INSERT INTO {db}.trades SELECT * FROM {db}.trades",
        f"DROP TABLE {db}.trades",
        f"TRUNCATE TABLE {db}.candles_10s",
        f"ALTER TABLE {db}.trades DELETE WHERE 1",
        f"ALTER TABLE {db}.trades ADD COLUMN evil UInt8",
        f"CREATE TABLE {db}.evil (a UInt8) ENGINE = Memory",
        "CREATE DATABASE evil",
        f"RENAME TABLE {db}.trades TO {db}.gone",
        f"OPTIMIZE TABLE {db}.trades FINAL",
        "SYSTEM FLUSH LOGS",
        "SET readonly = 0",
        "SELECT 1 SETTINGS readonly = 0",
        "SELECT 1 SETTINGS max_execution_time = 0",
        "INSERT INTO FUNCTION file('evil.csv', 'CSV', 'a UInt8') VALUES (1)",
        "SELECT * FROM file('/etc/hostname', 'LineAsString')",
        # readonly = 1 alone lets these through; the share refuses them too
        "SYSTEM STOP MERGES",
        f"SYSTEM STOP TTL MERGES {db}.trades",
        "KILL QUERY WHERE 1",
        f"SELECT 1 INTO OUTFILE '{outfile}'",
    ]
    for sql in attempts:
        status, headers, body = http(shared, sql)
        assert status == 500, (sql, status, body)
        assert headers["X-ClickHouse-Exception-Code"] == "164", (sql, body)
        assert b"readonly mode" in body, (sql, body)
    for sql in (f"SELECT 1; DROP TABLE {db}.trades", "SELECT 1;\nSYSTEM STOP MERGES"):
        status, headers, body = http(shared, sql)
        assert (status, headers["X-ClickHouse-Exception-Code"]) == (400, "62"), (sql, body)
        assert b"Multi-statements are not allowed" in body and b"formatQuery" not in body
    for name, value in (("readonly", "0"), ("max_result_rows", "0"), ("max_threads", "8")):
        status, headers, _ = http(shared, "SELECT 1", extra={name: value})
        assert headers.get("X-ClickHouse-Exception-Code") == "164", name
    assert http(shared, "SELECT 1", readonly="1")[2] == b"1\n", "an unchanged setting passes"
    assert checksums(shared) == before
    assert not outfile.exists()
    # a failed body leaves nothing behind for the next query on any handle
    for _ in range(2 * shared.settings.store_share_threads):
        assert http(shared, "SELECT 42")[2] == b"42\n"


# -- limits: the pipeline stays first -------------------------------------------------------------
def test_limits_hold_and_cannot_be_lifted(shared: Shared) -> None:
    status, headers, _ = http(shared, "SELECT number FROM system.numbers LIMIT 200000")
    assert headers["X-ClickHouse-Exception-Code"] == "396", "max_result_rows"
    started = time.monotonic()
    status, headers, _ = http(shared, "SELECT count() FROM numbers(1000000000000)")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (408, "159"), "max_execution_time"
    assert time.monotonic() - started < 30

    running, peak, lock = [0], [0], threading.Lock()
    run = shared.share.engine.run

    def counted(query: Any) -> Any:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            return run(query)
        finally:
            with lock:
                running[0] -= 1

    shared.share.engine.run = counted  # type: ignore[method-assign]
    try:
        answers: list[bytes] = []
        threads = [
            threading.Thread(
                target=lambda: answers.append(
                    http(shared, "SELECT count() FROM numbers(50000000)")[2]
                )
            )
            for _ in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        shared.share.engine.run = run  # type: ignore[method-assign]
    assert answers == [b"50000000\n"] * 6, "every query waited its turn and ran"
    assert peak[0] == shared.settings.store_share_threads


# -- passwords ---------------------------------------------------------------------------------
def test_a_public_share_needs_a_password(shared: Shared) -> None:
    exposed = shared.settings.model_copy(update={"store_share_host": "0.0.0.0"})
    port = free_port()
    exposed = exposed.model_copy(update={"store_share_port": port})
    with pytest.raises(ConfigError, match="CRYPTOLAB_STORE_SHARE_PASSWORD"):
        StoreShare.start(exposed)
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", port))  # nothing listened


def test_password_guards_every_query(shared: Shared) -> None:
    from pydantic import SecretStr

    settings = shared.settings.model_copy(update={"store_share_password": SecretStr("s3cret!")})
    share = StoreShare.serve(
        str(shared.settings.data_dir / "clickhouse"), settings, listen("127.0.0.1", 0)
    )
    guarded = Shared(settings, shared.store, share, shared.tape)
    try:
        status, headers, _ = http(guarded, "SELECT 1")
        assert (status, headers["X-ClickHouse-Exception-Code"]) == (401, "194")
        assert "Basic" in headers["WWW-Authenticate"]
        wrong = "wrong"  # pragma: allowlist secret
        status, headers, body = http(guarded, "SELECT 1", user="default", password=wrong)
        assert (status, headers["X-ClickHouse-Exception-Code"]) == (403, "516")
        assert b"wrong" not in body
        right = "s3cret!"  # pragma: allowlist secret
        assert http(guarded, "SELECT 1", user="default", password=right)[2] == b"1\n"
        keyed = {"X-ClickHouse-User": "default", "X-ClickHouse-Key": "s3cret!"}
        assert http(guarded, "SELECT 1", keyed)[2] == b"1\n"
        assert http(guarded, path="/ping")[2] == b"Ok.\n", "health checks need no password"
        client = clickhouse_connect.get_client(host="127.0.0.1", port=guarded.port, password=right)
        assert client.command("SELECT 2") == 2
        with pytest.raises(clickhouse_connect.driver.exceptions.DatabaseError):
            nope = "nope"  # pragma: allowlist secret
            clickhouse_connect.get_client(host="127.0.0.1", port=guarded.port, password=nope)
    finally:
        share.stop()


def test_a_taken_port_falls_back_to_a_free_one() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = busy.getsockname()[1]
        sock = listen("127.0.0.1", taken)
        try:
            assert sock.getsockname()[1] not in (taken, 0)
        finally:
            sock.close()


# -- other processes find it -------------------------------------------------------------------
def cli(shared: Shared, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOLAB_")}
    environ.update(
        CRYPTOLAB_DATA_DIR=str(shared.settings.data_dir),
        CRYPTOLAB_CLICKHOUSE_DATABASE=shared.db,
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "cryptolab", *args],
        env=environ, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_the_endpoint_file_names_this_process(shared: Shared) -> None:
    endpoint = read_endpoint(shared.settings.data_dir / "clickhouse")
    assert endpoint is not None
    assert (endpoint.url, endpoint.pid) == (shared.share.url, os.getpid())
    assert endpoint_file(Path(endpoint.store)).read_text().splitlines()[0] == shared.share.url


def test_other_processes_read_through_the_share_and_writers_are_told(shared: Shared) -> None:
    expected = reference_candles(tape_trades(shared.tape))
    got: dict[Any, Any] = {}
    for symbol in SYMBOLS:
        done = cli(shared, "query", "candles", "--symbol", symbol, "--format", "csv")
        assert done.returncode == 0, done.stderr[-2000:]
        assert f"read-only share at {shared.share.url} (pid {os.getpid()})" in done.stderr
        got.update(parse_candles_csv(done.stdout))
    assert_candles_equal(got, expected)

    done = cli(shared, "reconcile")
    assert done.returncode == 2
    assert f"owns the store at {shared.settings.data_dir / 'clickhouse'}" in done.stderr
    assert f"pid {os.getpid()}" in done.stderr and "--dry-run" in done.stderr
    done = cli(shared, "reconcile", "--dry-run")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{len(expected)} windows checked, 0 would change" in done.stdout

    writer = "from cryptolab import load_settings\nfrom cryptolab.store import open_store\n"
    writer += "open_store(load_settings())"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOLAB_")}
    environ["CRYPTOLAB_DATA_DIR"] = str(shared.settings.data_dir)
    done = subprocess.run(
        [sys.executable, "-c", writer],
        env=environ, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0 and "StoreError" in done.stderr
    assert "cannot open it for writing" in done.stderr

    doctor = cli(shared, "doctor")
    assert f"owned by the running pipeline (pid {os.getpid()})" in doctor.stdout, doctor.stdout


# -- the owner stops, cleanly or not -------------------------------------------------------------
def start_owner(tmp_path: Path) -> tuple[subprocess.Popen[str], Path, dict[str, str]]:
    tape = tmp_path / "one.jsonl"
    write_frames(tape, synth_frames(["BTCUSDT"], 60, 20, seed=32))
    data = tmp_path / "data"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOLAB_")}
    environ.update(CRYPTOLAB_DATA_DIR=str(data), CRYPTOLAB_STORE_SHARE_PORT=str(free_port()))
    owner = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.share_owner", str(data), str(tape)],
        env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert owner.stdout is not None
    line = owner.stdout.readline()
    assert line.startswith("READY http://127.0.0.1:"), owner.stderr.read() if owner.stderr else ""
    return owner, tape, environ


def test_a_clean_stop_removes_the_endpoint_file(tmp_path: Path) -> None:
    owner, _, _ = start_owner(tmp_path)
    target = tmp_path / "data" / "clickhouse.endpoint"
    assert target.exists()
    owner.terminate()
    assert owner.wait(timeout=120) == 0
    assert not target.exists()


def test_a_stale_endpoint_after_sigkill_is_ignored_with_a_clear_line(tmp_path: Path) -> None:
    owner, tape, environ = start_owner(tmp_path)
    target = tmp_path / "data" / "clickhouse.endpoint"
    owner.kill()
    owner.wait(timeout=60)
    assert target.exists(), "a killed owner cannot clean up"
    done = subprocess.run(
        [sys.executable, "-m", "cryptolab", "query", "candles", "--symbol", "BTCUSDT",
         "--format", "csv"],
        env=environ, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    stale = [line for line in done.stderr.splitlines() if "stale" in line]
    assert len(stale) == 1 and f"ignoring stale {target}" in stale[0]
    assert f"process {owner.pid} that wrote it is not running" in stale[0]
    assert_candles_equal(parse_candles_csv(done.stdout), reference_candles(tape_trades(tape)))
    assert not target.exists(), "the stale file is removed"
