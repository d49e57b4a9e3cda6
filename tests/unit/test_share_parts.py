"""Parts of the store share that need no engine: the endpoint file and finding it, the binding
rule, answers' headers and statuses, error text."""

from __future__ import annotations

import http.server
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cryptolab.access import credentials_ok, require_guarded
from cryptolab.errors import ConfigError, StoreError
from cryptolab.settings import Settings, load_settings
from cryptolab.store.endpoint import (
    Endpoint,
    endpoint_file,
    find_share,
    publish,
    read_endpoint,
    require_store_owner,
    withdraw,
)
from cryptolab.store.readonly import engine_error, escaped
from cryptolab.store.share import HTTP_STATUS, content_type, local_url


def settings_in(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path)


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def pinger() -> Iterator[str]:
    """A local HTTP server that answers /ping like the share does."""

    class Ping(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/ping" else 404)
            self.end_headers()
            self.wfile.write(b"Ok.\n")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Ping)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def write(tmp_path: Path, url: str, pid: int) -> Path:
    store = tmp_path / "clickhouse"
    target = endpoint_file(store)
    target.write_text(Endpoint(url, pid, str(store)).render())
    return target


def test_the_endpoint_file_sits_beside_the_store_and_round_trips(tmp_path: Path) -> None:
    store = tmp_path / "clickhouse"
    assert endpoint_file(store) == tmp_path / "clickhouse.endpoint"
    written = publish(store, "http://127.0.0.1:8123", dashboard="http://127.0.0.1:8050/")
    assert endpoint_file(store).read_text().splitlines()[:3] == [
        "http://127.0.0.1:8123", f"pid={os.getpid()}", f"store={store}"
    ]  # fmt: skip
    assert read_endpoint(store) == written
    withdraw(store, "http://127.0.0.1:9999")  # not ours: stays
    assert endpoint_file(store).exists()
    withdraw(store, "http://127.0.0.1:8123")
    assert not endpoint_file(store).exists()
    endpoint_file(store).write_text("garbage\n")
    with pytest.raises(StoreError, match="not a cryptolab endpoint file"):
        read_endpoint(store)


def test_this_process_and_servers_have_no_share_to_find(tmp_path: Path, pinger: str) -> None:
    write(tmp_path, pinger, os.getpid())
    assert find_share(settings_in(tmp_path)) is None, "its own store opens in-process"
    server = load_settings(data_dir=tmp_path, clickhouse_url="http://127.0.0.1:1/crypto")
    assert find_share(server) is None


def test_a_live_share_is_found_and_writers_are_told(tmp_path: Path, pinger: str) -> None:
    write(tmp_path, pinger, os.getppid())
    found = find_share(settings_in(tmp_path))
    assert found is not None and found.url == pinger
    with pytest.raises(StoreError) as refused:
        require_store_owner(settings_in(tmp_path), "`cryptolab history load` writes trades")
    text = str(refused.value)
    assert f"pid {os.getppid()}" in text and "Stop the pipeline first" in text
    assert "`cryptolab history load` writes trades" in text


def test_a_stale_file_is_ignored_with_one_line_and_removed(
    tmp_path: Path, pinger: str, caplog: pytest.LogCaptureFixture
) -> None:
    pid = dead_pid()
    target = write(tmp_path, pinger, pid)
    with caplog.at_level(logging.WARNING):
        assert find_share(settings_in(tmp_path)) is None
    lines = [r.getMessage() for r in caplog.records if "stale" in r.getMessage()]
    assert lines == [
        f"ignoring stale {target}: process {pid} that wrote it is not running (killed?); "
        "opening the store directly"
    ]
    assert not target.exists()
    require_store_owner(settings_in(tmp_path))  # nothing owns it now

    target = write(tmp_path, "http://127.0.0.1:9", os.getppid())  # alive, but not a share
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert find_share(settings_in(tmp_path)) is None
    assert "is running but does not answer at http://127.0.0.1:9/ping" in caplog.text
    assert target.exists(), "a running process's file is left to it"


def test_binding_rule_is_the_dashboard_s() -> None:
    require_guarded("x", "127.0.0.1", False, False, "fix")
    require_guarded("x", "::1", False, False, "fix")
    require_guarded("x", "0.0.0.0", True, False, "fix")
    with pytest.raises(ConfigError, match=r"the store share would listen on 0\.0\.0\.0 .*: set it"):
        require_guarded("the store share", "0.0.0.0", False, False, "set it")
    assert credentials_ok("Basic ZGVmYXVsdDpzM2NyZXQ=", "default", "s3cret")
    assert not credentials_ok("Basic ZGVmYXVsdDpzM2NyZXQ=", "default", "other")
    assert not credentials_ok("Bearer x", "default", "s3cret")


def test_answers_are_labelled_like_clickhouse_s() -> None:
    assert content_type("TabSeparatedWithNames").startswith("text/tab-separated-values")
    assert content_type("CSVWithNames") == "text/csv; charset=UTF-8; header=present"
    assert content_type("CSV") == "text/csv; charset=UTF-8; header=absent"
    assert content_type("JSONEachRow").startswith("application/json")
    assert content_type("Native") == content_type("ArrowStream") == "application/octet-stream"
    assert local_url("0.0.0.0", 8123) == "http://127.0.0.1:8123"
    assert local_url("::", 8123) == "http://[::1]:8123"
    statuses = {"UNKNOWN_TABLE": 404, "SYNTAX_ERROR": 400, "TIMEOUT_EXCEEDED": 408}
    assert {name: HTTP_STATUS[name] for name in statuses} == statuses
    assert "READONLY" not in HTTP_STATUS, "ClickHouse answers 500 for READONLY"


def test_engine_errors_keep_clickhouse_s_code_and_text() -> None:
    error = engine_error(RuntimeError("Code: 60. DB::Exception: no table. (UNKNOWN_TABLE)"))
    assert (error.code, error.text) == (60, "Code: 60. DB::Exception: no table. (UNKNOWN_TABLE)")
    nested = engine_error(
        RuntimeError("chdb: Code: 164. DB::Exception: ro. (READONLY) (version 26.9.2.1)")
    )
    assert (nested.code, nested.text) == (164, "Code: 164. DB::Exception: ro. (READONLY)")
    assert escaped("a\tb\nc\\d\re") == "a\\tb\\nc\\\\d\\re"
