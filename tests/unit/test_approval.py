"""Signed approval assertions: what verifies, and each reason one does not."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.approval import (
    ApprovalClaims,
    ApprovalTrust,
    AssertionRefused,
    b64url,
    b64url_decode,
    encode_jws,
    keys_from_jwks,
    load_public_key,
    public_key_text,
    sign_assertion,
    verify_assertion,
)
from domain.refund import DecisionRefused, RefundPolicy, check_signed_decision

KEY = Ed25519PrivateKey.generate()
KID = "inbox-1"
TRUSTED = {KID: public_key_text(KEY.public_key())}
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
LIFETIME = timedelta(minutes=5)


def token(key: Ed25519PrivateKey = KEY, kid: str = KID, **kw: Any) -> str:
    args: dict[str, Any] = {
        "issuer": "retailflow",
        "subject": "lee",
        "name": "Lee Park",
        "role": "store_manager",
        "refund_id": "RF-1",
        "action": "approve",
        "issued_at": NOW,
        "lifetime": LIFETIME,
    }
    args.update(kw)
    return sign_assertion(key, kid, **args)


def verify(tok: object, **kw: Any) -> ApprovalClaims:
    args: dict[str, Any] = {
        "now": NOW + timedelta(seconds=10),
        "refund_id": "RF-1",
        "action": "approve",
        "max_lifetime": timedelta(minutes=15),
    }
    args.update(kw)
    return verify_assertion(tok, TRUSTED, **args)


def refused(tok: object, **kw: Any) -> str:
    with pytest.raises(AssertionRefused) as e:
        verify(tok, **kw)
    return str(e.value)


def with_claims(tok: str, **claims: Any) -> str:
    head, body, sig = tok.split(".")
    payload = json.loads(b64url_decode(body)) | claims
    return f"{head}.{b64url(json.dumps(payload).encode())}.{sig}"


def test_a_signed_assertion_verifies_to_its_claims() -> None:
    claims = verify(token())
    assert (claims.sub, claims.name, claims.role) == ("lee", "Lee Park", "store_manager")
    assert (claims.refund_id, claims.action, claims.iss) == ("RF-1", "approve", "retailflow")
    assert claims.exp - claims.iat == 300 and claims.jti


def test_signing_is_deterministic_for_the_same_claims() -> None:
    assert token(jti="j1") == token(jti="j1")  # Ed25519 signatures are deterministic


def test_forgeries_are_refused() -> None:
    untrusted = token(key=Ed25519PrivateKey.generate())  # same kid, another key
    assert "forged assertion" in refused(untrusted)
    # A claim changed after signing (the role, the subject, the refund, the expiry).
    for change in ({"role": "finance"}, {"sub": "boss"}, {"refund_id": "RF-2"}, {"exp": 2**40}):
        assert "forged assertion" in refused(with_claims(token(), **change)), change
    head, body, sig = token().split(".")
    assert "forged assertion" in refused(f"{head}.{body}.{sig[:-4]}AAAA")


@pytest.mark.parametrize("alg", ["none", "HS256", "RS256", "ES256", None])
def test_only_eddsa_is_taken(alg: str | None) -> None:
    body = b64url(json.dumps({"sub": "lee", "role": "store_manager"}).encode())
    header = b64url(json.dumps({"alg": alg, "kid": KID}).encode())
    # alg none: no signature; HS256: keyed with the public key (the classic confusion).
    mac = hmac.new(TRUSTED[KID].encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    for tok in (f"{header}.{body}.", f"{header}.{body}.{b64url(mac)}"):
        assert f"alg {alg!r}: only EdDSA" in refused(tok)


def test_unknown_kid_is_refused() -> None:
    assert "unknown key (kid 'other')" in refused(token(kid="other"))
    tok = encode_jws({"alg": "EdDSA"}, {"sub": "x"}, KEY)
    assert "unknown key (kid None)" in refused(tok)


@pytest.mark.parametrize(
    ("tok", "reason"),
    [
        (None, "it is empty"),
        ("", "it is empty"),
        (42, "it is empty"),
        ("a.b", "three parts"),
        ("a.b.c.d", "three parts"),
        ("!!.b.c", "header is not base64url JSON"),
        (f"{b64url(b'[1]')}.b.c", "header is not a JSON object"),
        ("x" * 5000, "longer than 4096"),
    ],
)
def test_malformed_tokens_are_refused_with_one_reason(tok: object, reason: str) -> None:
    assert reason in refused(tok)


def test_signed_but_incomplete_claims_are_malformed() -> None:
    tok = encode_jws({"alg": "EdDSA", "kid": KID}, {"sub": "lee", "action": "approve"}, KEY)
    assert "malformed assertion" in refused(tok) and "refund_id" in refused(tok)
    bad_action = encode_jws(
        {"alg": "EdDSA", "kid": KID},
        json.loads(b64url_decode(token().split(".")[1])) | {"action": "delete"},
        KEY,
    )
    assert "action" in refused(bad_action)


def test_time_bounds() -> None:
    tok = token()
    assert "expired at 2026-11-30T09:05:00+00:00" in refused(tok, now=NOW + timedelta(minutes=6))
    # within the allowed clock skew of the expiry, still good; past it, not
    verify(tok, now=NOW + timedelta(minutes=5, seconds=20))
    assert "expired" in refused(tok, now=NOW + timedelta(minutes=5), leeway=timedelta(0))
    assert "not yet valid" in refused(tok, now=NOW - timedelta(minutes=2))
    long = token(lifetime=timedelta(days=30))
    assert "more than the 0:15:00 allowed" in refused(long)
    backwards = encode_jws(
        {"alg": "EdDSA", "kid": KID},
        json.loads(b64url_decode(tok.split(".")[1])) | {"exp": int(NOW.timestamp()) - 1},
        KEY,
    )
    assert "expires before it is issued" in refused(backwards)


def test_other_refund_or_action_is_refused() -> None:
    assert "for refund RF-1, not for refund RF-2" in refused(token(), refund_id="RF-2")
    assert "is to approve, not to reject" in refused(token(), action="reject")
    assert "is to request, not to approve" in refused(token(action="request"))


def test_trust_without_keys_refuses_everything() -> None:
    with pytest.raises(AssertionRefused, match="no approval keys are trusted"):
        ApprovalTrust().verify(token(), NOW, "RF-1", "approve")
    trust = ApprovalTrust(keys=TRUSTED)
    assert trust.verify(token(), NOW, "RF-1", "approve").sub == "lee"


def test_public_keys_load_from_raw_base64_and_pem_and_jwks() -> None:
    pub = KEY.public_key()
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pem = pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    for text in (b64url(raw), base64.b64encode(raw).decode(), pem):
        assert public_key_text(load_public_key(text)) == TRUSTED[KID]
    jwks = {
        "keys": [
            {"kty": "RSA", "kid": "rsa-1", "n": "x", "e": "AQAB"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "idp-1", "x": b64url(raw)},
        ]
    }
    assert keys_from_jwks(jwks) == {"idp-1": TRUSTED[KID]}
    for bad in (
        "abc",
        b64url(b"short"),
        "-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----",
    ):
        with pytest.raises(ValueError):
            load_public_key(bad)


def test_an_identity_providers_token_verifies_with_the_same_code() -> None:
    """A JWT as an IdP issues it (its own header fields and extra claims, its key from the
    JWKS) verifies, given the claims retailflow needs."""
    idp = Ed25519PrivateKey.generate()
    x = b64url(
        idp.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    trusted = keys_from_jwks({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": x}]})
    iat = int(NOW.timestamp())
    claims = {
        "iss": "https://idp.example.com/",
        "aud": "retailflow",
        "sub": "00u1a2b3c",
        "name": "Mia Chen",
        "role": "finance",
        "refund_id": "RF-1",
        "action": "reject",
        "iat": iat,
        "nbf": iat,
        "exp": iat + 600,
        "jti": "idp-jti-1",
        "email": "mia@example.com",
    }
    tok = encode_jws({"typ": "JWT", "alg": "EdDSA", "kid": "k1"}, claims, idp)
    got = verify_assertion(
        tok, trusted, now=NOW, refund_id="RF-1", action="reject", max_lifetime=LIFETIME * 3
    )
    assert (got.sub, got.role, got.iss) == ("00u1a2b3c", "finance", "https://idp.example.com/")


def test_policy_checks_on_the_verified_subject_and_role() -> None:
    policy = RefundPolicy()
    mgr = verify(token())
    check_signed_decision(policy, "RF-1", "ann", mgr)
    # self-approval: same subject, whatever the display name says
    own = verify(token(subject="ann", name="Someone Else"))
    with pytest.raises(DecisionRefused, match="four eyes: ann requested refund RF-1"):
        check_signed_decision(policy, "RF-1", "ann", own)
    # a requester may reject their own request; another person with their name may approve
    own_reject = verify(token(subject="ann", action="reject"), action="reject")
    check_signed_decision(policy, "RF-1", "ann", own_reject)
    check_signed_decision(policy, "RF-1", "ann", verify(token(subject="ann.b", name="ann")))
    cashier = verify(token(role="cashier"))
    with pytest.raises(DecisionRefused, match="role 'cashier' may not decide refunds"):
        check_signed_decision(policy, "RF-1", "ann", cashier)
    custom = RefundPolicy(approver_roles=frozenset({"regional_director"}))
    with pytest.raises(DecisionRefused, match="allowed: regional_director"):
        check_signed_decision(custom, "RF-1", "ann", mgr)
