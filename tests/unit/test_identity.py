"""The identity source: password hashes, the users file, issuer keys and the trusted keys."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.approval import b64url_decode, verify_assertion
from domain.refund import RefundPolicy
from workers.identity import (
    IdentityError,
    User,
    add_user,
    approval_trust,
    authenticate,
    check_password,
    decision_role,
    hash_password,
    load_issuer,
    load_users,
    new_key,
    parse_trusted_keys,
)


def test_passwords_are_salted_scrypt_hashes() -> None:
    a, b = hash_password("s3cret-pass"), hash_password("s3cret-pass")
    assert a != b and a.startswith("scrypt$16384$8$1$")  # a fresh salt each time
    assert check_password(a, "s3cret-pass") and not check_password(a, "s3cret-pasS")
    for broken in ("", "scrypt$x", "pbkdf2$1$2$3$4$5", "scrypt$16384$8$1$!!$!!"):
        assert not check_password(broken, "s3cret-pass")


def test_users_file_round_trip_and_login(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    add_user(path, "lee", 'Lee "the manager" Park', ["store_manager", "finance"], "pw-123456")
    add_user(path, "sam", "Sam", ["cashier"], None)
    users = load_users(path)
    assert users["lee"].name == 'Lee "the manager" Park'
    assert users["lee"].roles == ("store_manager", "finance")
    assert "pw-123456" not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert authenticate(users, "lee", "pw-123456") == users["lee"]
    assert authenticate(users, "lee", "wrong") is None
    assert authenticate(users, "nobody", "pw-123456") is None
    assert authenticate(users, "sam", "") is None  # no password: never logs in


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("users = [", "not valid TOML"),
        ("[users.ann]\nroles = []", "users.ann.name"),
        ('[users.ann]\nname = "Ann"\nroles = "boss"', "users.ann.roles"),
    ],
)
def test_a_bad_users_file_is_one_clear_error(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "users.toml"
    path.write_text(text)
    with pytest.raises(IdentityError, match=problem):
        load_users(path)


def test_new_key_signs_what_its_public_line_verifies(tmp_path: Path) -> None:
    line = new_key(tmp_path / "inbox.key", "inbox-1")
    assert stat.S_IMODE((tmp_path / "inbox.key").stat().st_mode) == 0o600
    with pytest.raises(IdentityError, match="never overwritten"):
        new_key(tmp_path / "inbox.key", "inbox-1")
    issuer = load_issuer(tmp_path / "inbox.key")
    assert issuer.kid == "inbox-1" and issuer.public_line() == line
    lee = User(subject="lee", name="Lee", roles=("finance",))
    now = datetime(2026, 11, 30, tzinfo=UTC)
    token = issuer.assertion(lee, "finance", "RF-1", "reject", now)
    header = json.loads(b64url_decode(token.split(".")[0]))
    assert header == {"alg": "EdDSA", "typ": "JWT", "kid": "inbox-1"}
    claims = verify_assertion(
        token,
        parse_trusted_keys(line, "test"),
        now=now,
        refund_id="RF-1",
        action="reject",
        max_lifetime=timedelta(minutes=15),
    )
    assert (claims.sub, claims.role, claims.iss) == ("lee", "finance", "retailflow")


def test_trusted_keys_from_lines_files_and_jwks(tmp_path: Path) -> None:
    one = new_key(tmp_path / "a.key", "a")
    two = new_key(tmp_path / "b.key", "b")
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text(f"# the inbox\n{two}\n")
    trust = approval_trust(one, str(keys_file), timedelta(minutes=5))
    assert sorted(trust.keys) == ["a", "b"] and trust.max_lifetime == timedelta(minutes=5)
    x = two.split("=", 1)[1]
    jwks = {"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "idp", "x": x}]}
    assert parse_trusted_keys(json.dumps(jwks), "jwks") == {"idp": x}
    for bad, problem in (("just-a-key", "entries are kid=public-key"), ("k=abc", "key 'k'")):
        with pytest.raises(IdentityError, match=problem):
            parse_trusted_keys(bad, "RETAILFLOW_APPROVAL_PUBLIC_KEYS")
    with pytest.raises(IdentityError, match="RETAILFLOW_APPROVAL_PUBLIC_KEYS_FILE"):
        approval_trust(None, str(tmp_path / "missing"), timedelta(minutes=5))


def test_the_role_a_user_decides_in() -> None:
    policy = RefundPolicy()
    assert decision_role(User("a", "A", ("cashier", "finance")), policy) == "finance"
    assert decision_role(User("b", "B", ("cashier",)), policy) == "cashier"  # refused later
    with pytest.raises(IdentityError, match="no role"):
        decision_role(User("c", "C", ()), policy)
