"""A real ClickHouse server on 127.0.0.1: Debian's ``clickhouse-server`` package.

Debian (bookworm) ships ClickHouse 18.16.1 only, and no registry this project can reach has a
newer server build, so this is the one real server the tests can run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from cryptolab.bus.broker import free_port

PASSWORD = "s3cret-Test_pw"  # pragma: allowlist secret (test server)
START_TIMEOUT_S = 60.0

CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{dir}/server.log</log>
    <errorlog>{dir}/server.err.log</errorlog><console>0</console></logger>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{dir}/data/</path>
  <tmp_path>{dir}/tmp/</tmp_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
{tls}</yandex>
"""

TLS = """  <https_port>{https_port}</https_port>
  <openSSL><server><certificateFile>{cert}</certificateFile><privateKeyFile>{key}</privateKeyFile>
    <verificationMode>none</verificationMode><loadDefaultCAFile>false</loadDefaultCAFile>
    <cacheSessions>true</cacheSessions><preferServerCiphers>true</preferServerCiphers>
  </server></openSSL>
"""

USER = """<{name}><password>{password}</password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></{name}>"""

USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users>{users}</users>
  <quotas><default></default></quotas>
</yandex>
"""


@dataclass
class ClickHouseServer:
    executable: str
    directory: Path
    http_port: int = field(default_factory=free_port)
    tcp_port: int = field(default_factory=free_port)
    users: dict[str, str] = field(default_factory=dict)  # more users: name -> password
    tls: tuple[Path, Path] | None = None  # (certificate, private key) PEM: serve https too
    https_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def url(self, password: str | None = PASSWORD, database: str = "crypto") -> str:
        auth = "default" + (f":{password}" if password is not None else "")
        return f"http://{auth}@127.0.0.1:{self.http_port}/{database}"

    def start(self) -> ClickHouseServer:
        d = self.directory
        for sub in ("data", "tmp"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        tls = ""
        if self.tls is not None:
            tls = TLS.format(https_port=self.https_port, cert=self.tls[0], key=self.tls[1])
        (d / "config.xml").write_text(
            CONFIG.format(dir=d, http_port=self.http_port, tcp_port=self.tcp_port, tls=tls)
        )
        users = {"default": PASSWORD, **self.users}
        (d / "users.xml").write_text(
            USERS.format(
                users="".join(USER.format(name=n, password=escape(p)) for n, p in users.items())
            )
        )
        out = open(d / "stdout.log", "wb")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [self.executable, f"--config-file={d / 'config.xml'}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        out.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.logs()
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.http_port}/ping", timeout=2
                ) as response:
                    if response.read().strip() == b"Ok.":
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"ClickHouse did not answer in {START_TIMEOUT_S:.0f} s\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-2000:] for p in sorted(self.directory.glob("*.log"))
        )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
