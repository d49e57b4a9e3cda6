"""The store's http:// path against a real ClickHouse server, as far as one can be had here.

The only server available to this project (Debian's ``clickhouse-server``) is 18.16.1, older
than what cryptolab needs (DateTime64, Bool, query parameters, Arrow input; clickhouse-connect
cannot even finish its handshake with it). So these tests prove what such a server allows:
cryptolab reaches it over HTTP, authenticates with the password from the URL or from
CRYPTOLAB_CLICKHOUSE_PASSWORD, and refuses it with an error that names the version and says
what to do, never leaking the password. Schema, deduplication and queries over http:// are
*not* verified against a server here (they are on chDB, the same ClickHouse engine).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cryptolab.bus.broker import free_port
from cryptolab.errors import StoreError
from cryptolab.store import open_store
from cryptolab.store.server import http_target, server_version
from tests.clickhouse_server import PASSWORD, ClickHouseServer
from tests.e2e.helpers import environment
from tests.tools import need


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    executable = need("clickhouse-server")
    running = ClickHouseServer(executable, tmp_path_factory.mktemp("clickhouse-server")).start()
    yield running
    running.stop()


def test_server_answers_over_http_with_the_password_from_the_url(
    server: ClickHouseServer, make_settings: Any
) -> None:
    target = http_target(server.url(), make_settings())
    assert target.database == "crypto" and target.port == server.http_port
    assert server_version(target) == "18.16.1"


def test_password_setting_is_used_when_the_url_has_none(
    server: ClickHouseServer, make_settings: Any
) -> None:
    settings = make_settings(clickhouse_url=server.url(password=None))
    with pytest.raises(StoreError, match="refused user 'default'"):
        open_store(settings)
    settings = make_settings(clickhouse_url=server.url(password=None), clickhouse_password=PASSWORD)
    with pytest.raises(StoreError, match=r"ClickHouse 18\.16\.1 .* is too old"):
        open_store(settings)  # authenticated: only the version stops it


def test_an_old_server_is_refused_with_its_version_and_the_fix(
    server: ClickHouseServer, make_settings: Any
) -> None:
    with pytest.raises(StoreError) as caught:
        open_store(make_settings(clickhouse_url=server.url()))
    message = str(caught.value)
    assert "ClickHouse 18.16.1" in message and "needs 22.8 or newer" in message
    assert "docker-compose.yml" in message
    assert PASSWORD not in message and f"default:***@127.0.0.1:{server.http_port}" in message


def test_wrong_password_and_unreachable_server_are_clear_errors(
    server: ClickHouseServer, make_settings: Any
) -> None:
    wrong = server.url(password="not-the-password")  # pragma: allowlist secret
    with pytest.raises(StoreError, match=r"refused user 'default'.*CRYPTOLAB_CLICKHOUSE_PASSWORD"):
        open_store(make_settings(clickhouse_url=wrong))
    nobody = f"http://default:{PASSWORD}@127.0.0.1:{free_port()}/crypto"
    with pytest.raises(StoreError, match="cannot reach ClickHouse") as caught:
        open_store(make_settings(clickhouse_url=nobody))
    assert PASSWORD not in str(caught.value)


def test_cli_query_and_doctor_explain_the_old_server(
    server: ClickHouseServer, tmp_path: Path
) -> None:
    env = environment(tmp_path, CRYPTOLAB_CLICKHOUSE_URL=server.url())
    query = subprocess.run(
        [sys.executable, "-m", "cryptolab", "query", "candles", "--symbol", "BTCUSDT"],
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert query.returncode == 2 and "Traceback" not in query.stderr
    assert "ClickHouse 18.16.1" in query.stderr and "too old" in query.stderr
    doctor = subprocess.run(
        [sys.executable, "-m", "cryptolab", "doctor"],
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert doctor.returncode == 1
    line = next(x for x in doctor.stdout.splitlines() if "clickhouse" in x)
    assert line.startswith("FAIL") and "18.16.1" in line and "too old" in line
    assert PASSWORD not in doctor.stdout + doctor.stderr
