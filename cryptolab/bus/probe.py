"""Whether the TLS/SASL settings work: one bare SASL exchange with the first broker.

kafka-python retries a refused login until its bootstrap timeout and then reports only
"Unable to bootstrap" (the broker closes the socket right after its error response, and the
client often sees the close first). So before its first secured client (and again when a client
fails) cryptolab asks the broker itself, by hand, over one socket: TLS handshake (SSL
protocols), ``SaslHandshake`` v1 and ``SaslAuthenticate`` v1 (one round trip for PLAIN, two
for SCRAM: :mod:`cryptolab.bus.scram`), and reports the broker's own answer, e.g.
"Authentication failed: Invalid username or password". The password is sent to the broker
(SCRAM: only a proof of it), never into the answer.
"""

from __future__ import annotations

import socket
import ssl
import struct

from cryptolab.bus.scram import ScramClient
from cryptolab.settings import Settings

TIMEOUT_S = 5.0
CLIENT_ID = b"cryptolab-probe"
SASL_HANDSHAKE, SASL_AUTHENTICATE = 17, 36
UNREACHABLE = "cannot connect to"


def _request(api_key: int, version: int, correlation: int, body: bytes) -> bytes:
    header = struct.pack(">hhih", api_key, version, correlation, len(CLIENT_ID)) + CLIENT_ID
    return struct.pack(">i", len(header) + len(body)) + header + body


def _read_response(sock: socket.socket) -> bytes:
    size = struct.unpack(">i", _read_exactly(sock, 4))[0]
    return _read_exactly(sock, size)[4:]  # without the correlation id


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        data += chunk
    return data


def _string(value: str) -> bytes:
    raw = value.encode()
    return struct.pack(">h", len(raw)) + raw


def _open(settings: Settings, host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=TIMEOUT_S)
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        context = ssl.create_default_context(cafile=cafile)
        try:
            return context.wrap_socket(sock, server_hostname=host)
        except ssl.SSLError:
            sock.close()
            raise
    return sock


def sasl_probe(settings: Settings, bootstrap: str) -> str | None:
    """What the first broker of ``bootstrap`` says about the TLS and SASL settings: a sentence
    naming the problem, or None when the login works (or nothing could be learned)."""
    address = bootstrap.split(",")[0].strip()
    host, _, port_text = address.rpartition(":")
    mechanism = str(settings.kafka_sasl_mechanism)
    try:
        sock = _open(settings, host.strip("[]"), int(port_text))
    except ssl.SSLCertVerificationError as exc:
        return (
            f"presented a certificate that does not verify ({exc.verify_message}): set "
            "CRYPTOLAB_KAFKA_SSL_CAFILE to the PEM CA that signed the brokers' certificates"
        )
    except ssl.SSLError as exc:
        return (
            f"could not complete a TLS handshake ({exc}): is this an SSL listener, and is "
            "CRYPTOLAB_KAFKA_SECURITY_PROTOCOL right?"
        )
    except (OSError, ValueError) as exc:
        return f"{UNREACHABLE} {address} ({exc})"
    with sock:
        if not settings.kafka_security_protocol.startswith("SASL_"):
            return None  # TLS alone worked
        try:
            sock.sendall(_request(SASL_HANDSHAKE, 1, 1, _string(mechanism)))
            body = _read_response(sock)
            error = _error_code(body)
            if error != 0:
                offered = _strings(body[2:])
                return (
                    f"the broker does not accept SASL mechanism {mechanism} (it offers "
                    f"{', '.join(offered) or 'none'}); fix CRYPTOLAB_KAFKA_SASL_MECHANISM"
                )
            user = str(settings.kafka_sasl_username)
            secret = settings.kafka_sasl_password
            password = secret.get_secret_value() if secret is not None else ""
            if mechanism == "PLAIN":
                body = _authenticate(sock, 2, f"\0{user}\0{password}".encode())
            else:  # SCRAM: the broker may refuse at either step
                scram = ScramClient(mechanism, user, password)
                body = _authenticate(sock, 2, scram.first())
                if _error_code(body) == 0:
                    body = _authenticate(sock, 3, scram.final(_auth_bytes(body)))
        except (OSError, struct.error) as exc:
            return f"closed the connection during SASL authentication ({exc})"
        except ValueError as exc:
            return f"answered the {mechanism} login unexpectedly ({exc})"
    error = _error_code(body)
    if error == 0:
        return None
    length = struct.unpack(">h", body[2:4])[0]
    message = body[4 : 4 + length].decode(errors="replace") if length > 0 else f"error {error}"
    return (
        f"refused the credentials of user {settings.kafka_sasl_username!r} "
        f"({settings.kafka_security_protocol}/{mechanism}): {message}; check "
        "CRYPTOLAB_KAFKA_SASL_USERNAME and CRYPTOLAB_KAFKA_SASL_PASSWORD"
    )


def _error_code(body: bytes) -> int:
    """The error code a SaslHandshake or SaslAuthenticate response body starts with."""
    return int(struct.unpack(">h", body[:2])[0])


def _authenticate(sock: socket.socket, correlation: int, token: bytes) -> bytes:
    """One SaslAuthenticate v1 round trip: the response body (error code first)."""
    sock.sendall(_request(SASL_AUTHENTICATE, 1, correlation, struct.pack(">i", len(token)) + token))
    return _read_response(sock)


def _auth_bytes(body: bytes) -> bytes:
    """The auth_bytes of a SaslAuthenticate v1 response (after the error code and message)."""
    length = struct.unpack(">h", body[2:4])[0]
    offset = 4 + max(length, 0)
    size = struct.unpack(">i", body[offset : offset + 4])[0]
    return body[offset + 4 : offset + 4 + size]


def _strings(data: bytes) -> list[str]:
    count = struct.unpack(">i", data[:4])[0]
    items, offset = [], 4
    for _ in range(max(count, 0)):
        length = struct.unpack(">h", data[offset : offset + 2])[0]
        items.append(data[offset + 2 : offset + 2 + length].decode(errors="replace"))
        offset += 2 + length
    return items
