"""The dashboard listens on 127.0.0.1 by default; with CRYPTOLAB_DASH_PASSWORD every route
(page, Dash's JSON endpoints, callbacks, assets, component bundles) wants basic auth; a public
address without a password is refused. All over real HTTP."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from cryptolab.bus.broker import free_port, port_in_use
from cryptolab.dashboard.server import DashServer
from cryptolab.errors import ConfigError
from cryptolab.settings import load_settings
from cryptolab.store import open_store
from tests.dash_http import chart_request
from tests.e2e.helpers import environment
from tests.reliability.results import record

USER = "viewer"
PASSWORD = "Dash-pw-x7Qz"  # pragma: allowlist secret (a test fixture)


def _get(url: str, auth: tuple[str, str] | None, data: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    if data:
        request.add_header("Content-Type", "application/json")
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers


@pytest.mark.row("security", "dashboard basic auth")
def test_every_route_needs_the_password(make_settings: Any) -> None:
    settings = make_settings(dash_port=free_port(), dash_user=USER, dash_password=PASSWORD)
    assert settings.dash_host == "127.0.0.1"  # the default
    store = open_store(settings)
    server = DashServer.start(store, settings)
    try:
        base = server.url
        assert base.startswith("http://127.0.0.1:")
        code, page = _get(base, (USER, PASSWORD))
        assert code == 200
        bundles = re.findall(r'src="(/_dash-component-suites/[^"]+)"', page.decode())
        assert bundles, "the page links Dash's component bundles"
        callback = chart_request("BTCUSDT")
        routes = [
            ("/", None),
            ("/_dash-layout", None),
            ("/_dash-dependencies", None),
            ("/assets/cryptolab.css", None),
            (bundles[0], None),
            ("/_dash-update-component", json.dumps(callback).encode()),
        ]
        statuses: dict[str, list[int]] = {"none": [], "wrong password": [], "wrong user": []}
        right: list[int] = []
        for path, body in routes:
            url = base.rstrip("/") + path
            for label, auth in (
                ("none", None),
                ("wrong password", (USER, PASSWORD + "!")),
                ("wrong user", ("admin", PASSWORD)),
            ):
                code, headers = _get(url, auth, body)
                statuses[label].append(code)
                assert code == 401, (path, label, code)
                assert headers["WWW-Authenticate"].startswith("Basic realm=")
            code, _ = _get(url, (USER, PASSWORD), body)
            right.append(code)
            assert code == 200, (path, code)
        assert _get(base, ("", ""))[0] == 401
    finally:
        server.stop()
        store.close()
    record(
        "security",
        "dashboard basic auth",
        attempted="real HTTP to /, /_dash-layout, /_dash-dependencies, /assets/..., a component "
        "bundle and POST /_dash-update-component; no / wrong / right credentials",
        cases=len(routes) * 4,
        observed=f"{len(routes)} routes: no credentials {statuses['none'].count(401)}x401, wrong "
        f"password {statuses['wrong password'].count(401)}x401, wrong user "
        f"{statuses['wrong user'].count(401)}x401, right {right.count(200)}x200",
    )


@pytest.mark.row("security", "dashboard binding")
def test_a_public_address_needs_a_password_or_an_explicit_opt_out(
    make_settings: Any, tmp_path: Path
) -> None:
    assert load_settings().dash_host == "127.0.0.1"
    port = free_port()
    exposed = make_settings(dash_host="0.0.0.0", dash_port=port)
    store = open_store(exposed)
    try:
        with pytest.raises(ConfigError, match="CRYPTOLAB_DASH_PASSWORD"):
            DashServer.start(store, exposed)
        assert not port_in_use(port)
        guarded = make_settings(dash_host="0.0.0.0", dash_port=port, dash_password=PASSWORD)
        server = DashServer.start(store, guarded)
        try:
            assert _get(f"http://127.0.0.1:{port}/", None)[0] == 401
        finally:
            server.stop()
        opted = make_settings(dash_host="0.0.0.0", dash_port=port, dash_allow_no_auth=True)
        server = DashServer.start(store, opted)
        try:
            assert _get(f"http://127.0.0.1:{port}/", None)[0] == 200
        finally:
            server.stop()
    finally:
        store.close()

    refusals = {}
    for args in (["dash", "--host", "0.0.0.0"], ["up", "--source", "replay", "--host", "0.0.0.0"]):
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "cryptolab", *args],
            env=environment(tmp_path / args[0], CRYPTOLAB_DASH_PORT=str(free_port())),
            text=True,
            capture_output=True,
            timeout=120,
            check=False,
        )
        refusals[args[0]] = round(time.monotonic() - started, 1)
        assert done.returncode == 2, done.stderr[-500:]
        assert "without a password" in done.stderr and "CRYPTOLAB_DASH_PASSWORD" in done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "up" / "kafka").exists()  # refused before starting the broker
    record(
        "security",
        "dashboard binding",
        attempted="default host; 0.0.0.0 without a password (library, `cryptolab dash`, "
        "`cryptolab up`), with a password, with CRYPTOLAB_DASH_ALLOW_NO_AUTH=true",
        cases=5,
        observed="default 127.0.0.1; 0.0.0.0 without a password refused (library ConfigError, "
        f"`dash` exit 2 in {refusals['dash']} s, `up` exit 2 in {refusals['up']} s before the "
        "broker), port not opened; with a password 401; with the opt-out 200",
    )


NOTEBOOK_CHECK = """
import urllib.error, urllib.request, base64
def status(auth):
    request = urllib.request.Request("http://127.0.0.1:{port}/_dash-layout")
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        return urllib.request.urlopen(request, timeout=30).status
    except urllib.error.HTTPError as exc:
        return exc.code
print("statuses", status(None), status("{user}:" + settings.dash_password.get_secret_value()))
"""


@pytest.mark.row("security", "dashboard basic auth in a notebook")
def test_the_notebook_dashboard_shows_with_a_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dash's Jupyter mode polls its /_alive_ route before showing the app: that one stays
    open, everything else still wants the password."""
    import textwrap

    import nbformat
    from nbclient import NotebookClient

    from tests.integration.test_dashboard_notebook import SETUP

    port = free_port()
    monkeypatch.setenv("CRYPTOLAB_DASH_USER", USER)
    monkeypatch.setenv("CRYPTOLAB_DASH_PASSWORD", PASSWORD)  # the kernel inherits it
    setup = SETUP.format(data_dir=str(tmp_path / "nb"), port=port)
    check = NOTEBOOK_CHECK.format(port=port, user=USER)
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(textwrap.dedent(setup)),
            nbformat.v4.new_code_cell(textwrap.dedent(check)),
        ]
    )
    NotebookClient(notebook, timeout=180, kernel_name="python3").execute()
    shown = " ".join(str(o.get("data", {}).get("text/html", "")) for o in notebook.cells[0].outputs)
    assert "<iframe" in shown, notebook.cells[0].outputs
    printed = "".join(o.get("text", "") for o in notebook.cells[1].outputs)
    assert "statuses 401 200" in printed, printed
    assert PASSWORD not in shown + printed
    record(
        "security",
        "dashboard basic auth in a notebook",
        attempted="cryptolab.dashboard.show() in a real Jupyter kernel with "
        "CRYPTOLAB_DASH_PASSWORD set",
        cases=2,
        observed="iframe shown (Dash's /_alive_ poll answered); /_dash-layout "
        + printed.strip().removeprefix("statuses ").replace(" ", " without, ", 1)
        + " with credentials",
    )
