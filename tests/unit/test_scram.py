"""The SCRAM client messages of the Kafka login probe, against the RFC's own example."""

from __future__ import annotations

import pytest

from cryptolab.bus.scram import ScramClient

# RFC 7677 section 3: SCRAM-SHA-256, user "user", password "pencil"
NONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="  # pragma: allowlist secret (RFC 7677 example)
)


def test_messages_match_rfc_7677_example() -> None:
    client = ScramClient("SCRAM-SHA-256", "user", "pencil", nonce=NONCE)
    assert client.first() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    assert client.final(SERVER_FIRST) == CLIENT_FINAL


def test_a_wrong_password_gives_a_different_proof() -> None:
    wrong = ScramClient("SCRAM-SHA-256", "user", "pencil!", nonce=NONCE).final(SERVER_FIRST)
    assert wrong.split(b",p=")[0] == CLIENT_FINAL.split(b",p=")[0]
    assert wrong != CLIENT_FINAL


def test_user_names_are_escaped_and_nonces_fresh() -> None:
    a, b = ScramClient("SCRAM-SHA-512", "a=b,c", "x"), ScramClient("SCRAM-SHA-512", "a", "x")
    assert a.first().startswith(b"n,,n=a=3Db=2Cc,r=")
    assert a.nonce != b.nonce and len(a.nonce) >= 24


@pytest.mark.parametrize(
    "server_first",
    [
        b"r=someone-else,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        b"r=rOprNGfwEbeRWgbNEkqOx,i=4096",
        b"e=other-error",
    ],
)
def test_a_server_message_that_is_not_ours_is_refused(server_first: bytes) -> None:
    with pytest.raises(ValueError, match="not a SCRAM server-first-message"):
        ScramClient("SCRAM-SHA-256", "user", "pencil", nonce=NONCE).final(server_first)
