"""The confirmation signature: HMAC-SHA256 of "<timestamp>.<raw body>", checked in constant
time, with a bounded age. Pure functions, no server."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from simulators.pos import sign, verify
from simulators.pos.confirmations import ConfirmationSender

BODY = b'{"platform_id":"pos-main","store_id":"S001","command_id":"c-1","status":"applied"}'
NOW = 1_767_225_600


def test_sign_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(b"s3cret", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign("s3cret", NOW, BODY) == f"sha256={expected}"
    assert sign(b"s3cret", str(NOW), BODY.decode()) == sign("s3cret", NOW, BODY)


def test_verify_accepts_the_signature_of_the_exact_body() -> None:
    signature = sign("s3cret", NOW, BODY)
    assert verify("s3cret", str(NOW), BODY, signature, now=NOW + 10)


@pytest.mark.parametrize(
    ("secret", "timestamp", "body", "why"),
    [
        ("other", NOW, BODY, "wrong secret"),
        ("s3cret", NOW + 1, BODY, "another timestamp"),
        ("s3cret", NOW, BODY.replace(b"applied", b"rejected"), "tampered body"),
        ("s3cret", NOW, BODY + b" ", "one byte more"),
    ],
)
def test_verify_refuses_anything_else(secret: str, timestamp: int, body: bytes, why: str) -> None:
    signature = sign("s3cret", NOW, BODY)
    assert not verify(secret, timestamp, body, signature, now=NOW), why


def test_verify_refuses_malformed_signatures_and_timestamps() -> None:
    signature = sign("s3cret", NOW, BODY)
    assert not verify("s3cret", NOW, BODY, signature.removeprefix("sha256="), now=NOW)
    assert not verify("s3cret", NOW, BODY, signature.upper(), now=NOW)
    assert not verify("s3cret", NOW, BODY, "", now=NOW)
    assert not verify("s3cret", "yesterday", BODY, signature, now=NOW)


def test_verify_refuses_a_stale_or_future_timestamp() -> None:
    signature = sign("s3cret", NOW, BODY)
    assert verify("s3cret", NOW, BODY, signature, max_age_s=300, now=NOW + 300)
    assert not verify("s3cret", NOW, BODY, signature, max_age_s=300, now=NOW + 301)
    assert not verify("s3cret", NOW, BODY, signature, max_age_s=300, now=NOW - 301)
    assert verify("s3cret", NOW, BODY, signature, max_age_s=3600, now=NOW + 301)


def test_the_sender_signs_the_headers_it_sends() -> None:
    sender = ConfirmationSender("s3cret", "pos-main", on_done=lambda _c, _d: None)
    headers = sender.headers(BODY, NOW)
    assert headers["X-POS-Platform"] == "pos-main"
    assert headers["X-POS-Timestamp"] == str(NOW)
    assert verify("s3cret", headers["X-POS-Timestamp"], BODY, headers["X-POS-Signature"], now=NOW)
