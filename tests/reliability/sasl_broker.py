"""A real Kafka broker that also listens with SASL_PLAINTEXT / PLAIN (tests only).

It is :class:`cryptolab.bus.broker.LocalBroker` with one more listener: ``SASL://`` on its own
port, whose users are set inline through ``listener.name.sasl.plain.sasl.jaas.config``. The
plain listener stays for the broker's own readiness probe and inter-broker traffic.
"""

from __future__ import annotations

from pathlib import Path

from cryptolab.bus.broker import LocalBroker, free_port
from cryptolab.settings import Settings


def _jaas_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class SaslBroker(LocalBroker):
    """``users``: name -> password accepted on the SASL listener."""

    def __init__(self, settings: Settings, users: dict[str, str]) -> None:
        super().__init__(settings)
        self.users = users
        self.sasl_port = free_port()

    @property
    def sasl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_port}"

    def _write_properties(self, broker: int, controller: int) -> Path:
        while self.sasl_port in (broker, controller):
            self.sasl_port = free_port()
        path = super()._write_properties(broker, controller)
        users = " ".join(f"user_{n}={_jaas_quote(p)}" for n, p in self.users.items())
        jaas = f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
        props = {
            "listeners": f"PLAINTEXT://127.0.0.1:{broker},SASL://127.0.0.1:{self.sasl_port},"
            f"CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker},"
            f"SASL://127.0.0.1:{self.sasl_port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL:SASL_PLAINTEXT,"
            "CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl.plain.sasl.jaas.config": jaas,
        }
        lines = [
            line for line in path.read_text().splitlines() if line.split("=", 1)[0] not in props
        ]
        # a .properties file treats backslashes as escapes: double them
        lines += [f"{k}={v.replace(chr(92), chr(92) * 2)}" for k, v in props.items()]
        path.write_text("\n".join(lines) + "\n")
        return path
