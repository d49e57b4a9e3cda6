"""A real Kafka broker that also listens with SASL_PLAINTEXT (tests only): PLAIN and SCRAM-SHA-256.

It is :class:`cryptolab.bus.broker.LocalBroker` with one more listener: ``SASL://`` on its own
port. PLAIN users are set inline through ``listener.name.sasl.plain.sasl.jaas.config``; SCRAM
users are written into the cluster metadata when the storage is formatted (``--add-scram``), as
KRaft brokers keep them. The plain listener stays for the broker's own readiness probe and
inter-broker traffic.
"""

from __future__ import annotations

from pathlib import Path

from cryptolab.bus.broker import LocalBroker, free_port
from cryptolab.settings import Settings


def _jaas_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class SaslBroker(LocalBroker):
    """``users``: name -> password accepted on the SASL listener with PLAIN; ``scram_users``:
    the same with SCRAM-SHA-256 (letters, digits and ``-`` only: the format tool's syntax)."""

    def __init__(
        self,
        settings: Settings,
        users: dict[str, str],
        tls: tuple[Path, Path] | None = None,
        scram_users: dict[str, str] | None = None,
    ) -> None:
        super().__init__(settings)
        self.users = users
        self.scram_users = scram_users or {}
        self.sasl_port = free_port()
        self.tls = tls  # (certificate, key) PEM: also listen with SASL_SSL on sasl_ssl_port
        self.sasl_ssl_port = free_port()

    @property
    def sasl_ssl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_ssl_port}"

    @property
    def sasl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_port}"

    def _write_properties(self, broker: int, controller: int) -> Path:
        while self.sasl_port in (broker, controller):
            self.sasl_port = free_port()
        while self.sasl_ssl_port in (broker, controller, self.sasl_port):
            self.sasl_ssl_port = free_port()
        path = super()._write_properties(broker, controller)
        users = " ".join(f"user_{n}={_jaas_quote(p)}" for n, p in self.users.items())
        jaas = f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
        listeners = [f"PLAINTEXT://127.0.0.1:{broker}", f"SASL://127.0.0.1:{self.sasl_port}"]
        protocols = ["PLAINTEXT:PLAINTEXT", "SASL:SASL_PLAINTEXT", "CONTROLLER:PLAINTEXT"]
        props = {
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256",
            "listener.name.sasl.sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256",
            "listener.name.sasl.plain.sasl.jaas.config": jaas,
            "listener.name.sasl.scram-sha-256.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
        }
        if self.tls is not None:
            keystore = self.dir / "broker-keystore.pem"  # key + certificate, PEM
            keystore.write_text(self.tls[1].read_text() + self.tls[0].read_text())
            listeners.append(f"SASLSSL://127.0.0.1:{self.sasl_ssl_port}")
            protocols.append("SASLSSL:SASL_SSL")
            props.update(
                {
                    "listener.name.saslssl.sasl.enabled.mechanisms": "PLAIN",
                    "listener.name.saslssl.plain.sasl.jaas.config": jaas,
                    "listener.name.saslssl.ssl.keystore.type": "PEM",
                    "listener.name.saslssl.ssl.keystore.location": str(keystore),
                }
            )
        props["listeners"] = ",".join([*listeners, f"CONTROLLER://127.0.0.1:{controller}"])
        props["advertised.listeners"] = ",".join(listeners)
        props["listener.security.protocol.map"] = ",".join(protocols)
        lines = [
            line for line in path.read_text().splitlines() if line.split("=", 1)[0] not in props
        ]
        # a .properties file treats backslashes as escapes: double them
        lines += [f"{k}={v.replace(chr(92), chr(92) * 2)}" for k, v in props.items()]
        path.write_text("\n".join(lines) + "\n")
        return path

    def _format_options(self) -> list[str]:
        return [
            option
            for name, password in self.scram_users.items()
            for option in ("--add-scram", f"SCRAM-SHA-256=[name={name},password={password}]")
        ]
