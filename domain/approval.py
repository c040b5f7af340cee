"""Signed approval assertions: who requested, approved or rejected a refund, as a compact JWS.

An assertion is a JWT signed with Ed25519 (`alg` EdDSA, header `kid`) by an identity service
that authenticated the person: the approvals inbox, an ops' own key for the CLI, or the
retailer's identity provider. Its claims name the authenticated subject (`sub`), a display name,
one role, the refund and the action (`approve`, `reject` or `request`), with `iat`, `exp` and a
`jti`. Only public keys are needed to verify one, so the Refund workflow verifies them itself,
deterministically (the time is given, `workflow.now()` there): a forged, altered, expired or
misdirected assertion is refused with one reason.

An identity provider's EdDSA tokens verify with the same code: trust its OKP JWKS keys
(`keys_from_jwks`) and have it put these claims in the token.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

Action = Literal["approve", "reject", "request"]
ACTIONS: tuple[Action, ...] = ("approve", "reject", "request")
# A token is a few hundred bytes; anything far larger is not one.
MAX_TOKEN_CHARS = 4096
# Clocks of the issuer and of the workflow may differ a little.
DEFAULT_LEEWAY = timedelta(seconds=30)

Claim = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class AssertionRefused(ValueError):
    """An assertion that proves nothing: the one reason why."""


class ApprovalClaims(BaseModel):
    """What a verified assertion says."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    iss: Claim
    sub: Claim
    name: Claim
    role: Claim
    refund_id: Claim
    action: Action
    iat: int
    exp: int
    jti: Claim


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not text or any(c not in _B64URL for c in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def public_key_text(key: Ed25519PublicKey) -> str:
    """The raw 32-byte public key, base64url: the form the trusted-keys setting holds."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return b64url(raw)


def load_public_key(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM, or its 32 raw bytes in base64 / base64url."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode("ascii"))
        except (ValueError, UnicodeEncodeError) as e:
            raise ValueError(f"not a PEM public key ({e})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key
    try:
        raw = b64url_decode(text.replace("+", "-").replace("/", "_").rstrip("="))
    except (ValueError, binascii.Error):
        raise ValueError("not base64 (32 raw bytes) nor PEM") from None
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, this one {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def keys_from_jwks(jwks: Mapping[str, Any]) -> dict[str, str]:
    """The Ed25519 keys (kty OKP, crv Ed25519) of a JWKS, by kid; other keys are skipped."""
    keys: dict[str, str] = {}
    for jwk in jwks.get("keys", []):
        if not isinstance(jwk, dict):
            continue
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        kid, x = jwk.get("kid"), jwk.get("x")
        if isinstance(kid, str) and kid and isinstance(x, str):
            keys[kid] = public_key_text(load_public_key(x))
    return keys


def sign_assertion(
    private_key: Ed25519PrivateKey,
    kid: str,
    *,
    issuer: str,
    subject: str,
    name: str,
    role: str,
    refund_id: str,
    action: Action,
    issued_at: datetime,
    lifetime: timedelta,
    jti: str | None = None,
) -> str:
    """A compact JWS of these claims (the identity service's side)."""
    iat = int(issued_at.timestamp())
    claims = {
        "iss": issuer,
        "sub": subject,
        "name": name,
        "role": role,
        "refund_id": refund_id,
        "action": action,
        "iat": iat,
        "exp": iat + int(lifetime.total_seconds()),
        "jti": jti or uuid.uuid4().hex,
    }
    return encode_jws({"alg": "EdDSA", "typ": "JWT", "kid": kid}, claims, private_key)


def encode_jws(
    header: Mapping[str, Any], claims: Mapping[str, Any], private_key: Ed25519PrivateKey
) -> str:
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    return f"{signing_input}.{b64url(private_key.sign(signing_input.encode('ascii')))}"


def _json_part(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(text))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise AssertionRefused(f"malformed assertion: its {what} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise AssertionRefused(f"malformed assertion: its {what} is not a JSON object")
    return value


def verify_assertion(
    token: object,
    trusted: Mapping[str, str],
    *,
    now: datetime,
    refund_id: str,
    action: Action,
    max_lifetime: timedelta,
    leeway: timedelta = DEFAULT_LEEWAY,
) -> ApprovalClaims:
    """The claims of `token` if a trusted key signed it for this refund and action and it is
    valid at `now`; else AssertionRefused with the reason. `trusted` maps kid to public key."""
    if not isinstance(token, str) or not token.strip():
        raise AssertionRefused("malformed assertion: it is empty")
    token = token.strip()
    if len(token) > MAX_TOKEN_CHARS:
        raise AssertionRefused(f"malformed assertion: longer than {MAX_TOKEN_CHARS} characters")
    parts = token.split(".")
    if len(parts) != 3:
        raise AssertionRefused("malformed assertion: a compact JWS has three parts (a.b.c)")
    header = _json_part(parts[0], "header")
    alg = header.get("alg")
    if alg != "EdDSA":
        raise AssertionRefused(f"assertion signed with alg {alg!r}: only EdDSA (Ed25519) is taken")
    kid = header.get("kid")
    if not isinstance(kid, str) or kid not in trusted:
        raise AssertionRefused(f"assertion signed by an unknown key (kid {kid!r})")
    try:
        signature = b64url_decode(parts[2])
        key = load_public_key(trusted[kid])
        key.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"))
    except (InvalidSignature, ValueError, binascii.Error):
        raise AssertionRefused(
            f"forged assertion: its signature does not verify with key {kid!r}"
        ) from None
    try:
        claims = ApprovalClaims.model_validate(_json_part(parts[1], "claims"))
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()
        )
        raise AssertionRefused(f"malformed assertion: {problems}") from None
    at = int(now.astimezone(UTC).timestamp())
    slack = int(leeway.total_seconds())
    if claims.exp <= claims.iat:
        raise AssertionRefused("assertion expires before it is issued")
    if claims.exp - claims.iat > max_lifetime.total_seconds():
        raise AssertionRefused(
            f"assertion valid for {timedelta(seconds=claims.exp - claims.iat)}: more than the "
            f"{max_lifetime} allowed"
        )
    if at + slack < claims.iat:
        raise AssertionRefused(f"assertion not yet valid (issued at {_iso(claims.iat)})")
    if at - slack >= claims.exp:
        raise AssertionRefused(f"assertion expired at {_iso(claims.exp)}")
    if claims.refund_id != refund_id:
        raise AssertionRefused(
            f"assertion is for refund {claims.refund_id}, not for refund {refund_id}"
        )
    if claims.action != action:
        raise AssertionRefused(f"assertion is to {claims.action}, not to {action}")
    return claims


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


class ApprovalTrust(BaseModel):
    """What a refund trusts to say who acts: public keys by kid (never private keys) and the
    longest an assertion may be valid. Travels in the refund's input, so verification replays."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: dict[str, str] = {}
    max_lifetime: timedelta = timedelta(minutes=15)
    leeway: timedelta = DEFAULT_LEEWAY

    def verify(
        self, token: object, now: datetime, refund_id: str, action: Action
    ) -> ApprovalClaims:
        if not self.keys:
            raise AssertionRefused(
                "no approval keys are trusted (RETAILFLOW_APPROVAL_PUBLIC_KEYS): nobody can be "
                "verified"
            )
        return verify_assertion(
            token,
            self.keys,
            now=now,
            refund_id=refund_id,
            action=action,
            max_lifetime=self.max_lifetime,
            leeway=self.leeway,
        )
