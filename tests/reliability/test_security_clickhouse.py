"""ClickHouse credentials and TLS reach the server: a real clickhouse-server (18.16, the one
Debian ships) with a password-protected user and an https port signed by a throwaway CA.

18.16 is older than cryptolab supports, so "authenticated and TLS-verified" shows up as the
version refusal ("ClickHouse 18.16.1 ... too old"), which cryptolab only reaches after the
server has accepted the user, password and (over https) the certificate check; a wrong password
or an untrusted certificate stop it earlier with their own message.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cryptolab.errors import StoreError
from cryptolab.store import open_store
from cryptolab.store.server import http_target, server_version
from tests.clickhouse_server import ClickHouseServer
from tests.e2e.helpers import environment
from tests.reliability.results import record
from tests.reliability.tls_certs import Certificates, make_certificates
from tests.tools import need

USER = "reader"
PASSWORD = "R3ader-pw<&>:@/%"  # pragma: allowlist secret (XML/URL/basic-auth specials)
WRONG = "wrong-R3ader-pw"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, certs: Certificates
) -> Iterator[ClickHouseServer]:
    running = ClickHouseServer(
        need("clickhouse-server"),
        tmp_path_factory.mktemp("clickhouse-tls"),
        users={USER: PASSWORD},
        tls=(certs.cert, certs.key),
    ).start()
    yield running
    running.stop()


def cli(tmp_path: Path, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cryptolab", *args],
        env=environment(tmp_path, **env),
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.mark.row("security", "clickhouse user/password")
def test_user_and_password_from_settings_reach_the_server(
    server: ClickHouseServer, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{server.http_port}/crypto"
    runs = 0
    for password, expected in ((PASSWORD, "is too old"), (WRONG, f"refused user '{USER}'")):
        env = {
            "CRYPTOLAB_CLICKHOUSE_URL": url,
            "CRYPTOLAB_CLICKHOUSE_USER": USER,
            "CRYPTOLAB_CLICKHOUSE_PASSWORD": password,
        }
        for args in (["doctor"], ["query", "candles", "--symbol", "BTCUSDT"]):
            done = cli(tmp_path, args, **env)
            runs += 1
            output = done.stdout + done.stderr
            assert done.returncode in (1, 2) and "Traceback" not in output, output
            assert expected in output, output
            assert f"http://{USER}:***@127.0.0.1:{server.http_port}/crypto" in output, output
            assert password not in output and WRONG not in output and PASSWORD not in output
    record(
        "security",
        "clickhouse user/password",
        attempted=f"clickhouse-server 18.16.1, user {USER!r} with a password; `cryptolab doctor` "
        "and `query` with CRYPTOLAB_CLICKHOUSE_USER/_PASSWORD, right then wrong",
        cases=runs,
        observed=f"{runs} CLI runs: right password accepted (then 'too old'), wrong one "
        f"'refused user {USER!r}'; password in output: 0 times",
    )


@pytest.mark.row("security", "clickhouse TLS")
def test_https_is_verified_against_the_configured_ca(
    server: ClickHouseServer, certs: Certificates, make_settings: Any
) -> None:
    url = f"https://{USER}@127.0.0.1:{server.https_port}/crypto"
    trusted = make_settings(
        clickhouse_url=url, clickhouse_password=PASSWORD, clickhouse_ca_cert=certs.ca
    )
    assert server_version(http_target(url, trusted)) == "18.16.1"
    with pytest.raises(StoreError, match=r"ClickHouse 18\.16\.1 .* is too old"):
        open_store(trusted)  # TLS and login passed: only the version stops it

    untrusted = make_settings(clickhouse_url=url, clickhouse_password=PASSWORD)
    with pytest.raises(StoreError) as caught:
        open_store(untrusted)
    message = str(caught.value)
    assert "TLS certificate not trusted" in message and "CRYPTOLAB_CLICKHOUSE_CA_CERT" in message
    assert PASSWORD not in message

    unverified = make_settings(
        clickhouse_url=url, clickhouse_password=PASSWORD, clickhouse_verify=False
    )
    assert server_version(http_target(url, unverified)) == "18.16.1"
    wrong = make_settings(
        clickhouse_url=url, clickhouse_password=WRONG, clickhouse_ca_cert=certs.ca
    )
    with pytest.raises(StoreError, match=f"refused user '{USER}'"):
        open_store(wrong)
    record(
        "security",
        "clickhouse TLS",
        attempted="https port with a certificate from a throwaway CA; CRYPTOLAB_CLICKHOUSE_CA_CERT "
        "set, unset, and CRYPTOLAB_CLICKHOUSE_VERIFY=false",
        cases=4,
        observed="with the CA: verified and logged in; without: 'TLS certificate not trusted'; "
        f"VERIFY=false: connects; wrong password over TLS: 'refused user {USER!r}'",
    )
