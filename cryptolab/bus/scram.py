"""The client side of a SCRAM login (RFC 5802, SHA-256/512 as RFC 7677 and Kafka use them), for
the login probe: the two messages a client sends, computed with the standard library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}


def _saslname(user: str) -> str:
    return user.replace("=", "=3D").replace(",", "=2C")


@dataclass(frozen=True)
class ScramClient:
    mechanism: str
    user: str
    password: str
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    @property
    def _bare(self) -> str:
        return f"n={_saslname(self.user)},r={self.nonce}"

    def first(self) -> bytes:
        """client-first-message: no channel binding, no authorization identity."""
        return f"n,,{self._bare}".encode()

    def final(self, server_first: bytes) -> bytes:
        """client-final-message answering the server's nonce, salt and iteration count.
        Raises ValueError when the server's message is not SCRAM or its nonce is not ours."""
        text = server_first.decode()
        fields = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
        nonce, salt, iterations = fields.get("r", ""), fields.get("s"), fields.get("i", "")
        if not nonce.startswith(self.nonce) or salt is None or not iterations.isdigit():
            raise ValueError(f"not a SCRAM server-first-message: {text[:80]!r}")
        digest = HASHES[self.mechanism]
        salted = hashlib.pbkdf2_hmac(
            digest, self.password.encode(), base64.b64decode(salt), int(iterations)
        )
        client_key = hmac.new(salted, b"Client Key", digest).digest()
        stored_key = hashlib.new(digest, client_key).digest()
        without_proof = f"c=biws,r={nonce}"  # biws = base64("n,,")
        auth_message = f"{self._bare},{text},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, digest).digest()
        proof = bytes(k ^ s for k, s in zip(client_key, signature, strict=True))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()
