"""Identity: who may request and decide refunds, and the assertions that prove it.

An issuer holds an Ed25519 private key (`RETAILFLOW_IDENTITY_KEY_FILE`; only the identity
service has it: the approvals inbox, or an ops' own key for the CLI) and signs assertions
(domain/approval.py) for the people of the users file (`RETAILFLOW_USERS_FILE`, TOML: subject,
display name, roles, a salted scrypt password hash). Workflows get only public keys
(`RETAILFLOW_APPROVAL_PUBLIC_KEYS`, or `_FILE`: lines `kid=key`, or an identity provider's
JWKS JSON), so they verify and never sign.

    retailflow identity new-key --kid inbox-1 --out inbox.key   # prints `inbox-1=<public key>`
    retailflow identity add-user lee --name "Lee Park" --role store_manager
    retailflow identity assert --refund RF-1 --action approve    # a token for the Web UI
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.approval import (
    Action,
    ApprovalTrust,
    keys_from_jwks,
    load_public_key,
    public_key_text,
    sign_assertion,
)
from domain.refund import RefundPolicy
from workers.settings import Settings

# scrypt at n=2**14, r=8: ~16 MiB and tens of milliseconds per check.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


class IdentityError(ValueError):
    """A configuration problem of the identity source, in one line."""


# -- passwords ---------------------------------------------------------------------------------


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """`scrypt$n$r$p$salt$hash` (base64): what the users file keeps, never the password."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(stored: str, password: str) -> bool:
    """Whether `password` matches the stored hash (compared in constant time)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest, validate=True)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt, validate=True),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(want),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


# A hash to check against when the user does not exist, so both cases take as long.
_NOBODY = hash_password("", salt=b"\0" * 16)


# -- users -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    subject: str
    name: str
    roles: tuple[str, ...]
    password_hash: str = ""


def load_users(path: str | Path) -> dict[str, User]:
    """The users file: `[users.<subject>]` tables with name, roles and password_hash."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as e:
        raise IdentityError(f"users file {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise IdentityError(f"users file {path}: not valid TOML ({e})") from None
    users: dict[str, User] = {}
    for subject, entry in (data.get("users") or {}).items():
        if not isinstance(entry, dict):
            raise IdentityError(f"users file {path}: users.{subject} must be a table")
        name, roles, pw = entry.get("name"), entry.get("roles", []), entry.get("password_hash", "")
        if not isinstance(name, str) or not name.strip():
            raise IdentityError(f"users file {path}: users.{subject}.name: a display name needed")
        if not isinstance(roles, list) or not all(isinstance(x, str) and x for x in roles):
            raise IdentityError(f"users file {path}: users.{subject}.roles: a list of roles")
        if not isinstance(pw, str):
            raise IdentityError(f"users file {path}: users.{subject}.password_hash: a string")
        users[subject] = User(
            subject=subject, name=name.strip(), roles=tuple(roles), password_hash=pw
        )
    return users


def _toml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def save_users(path: str | Path, users: dict[str, User]) -> None:
    lines = ["# retailflow users: subject, display name, roles, scrypt password hash", ""]
    for u in sorted(users.values(), key=lambda u: u.subject):
        lines += [
            f"[users.{_toml_str(u.subject)}]",
            f"name = {_toml_str(u.name)}",
            f"roles = [{', '.join(_toml_str(r) for r in u.roles)}]",
            f"password_hash = {_toml_str(u.password_hash)}",
            "",
        ]
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text("\n".join(lines))
    tmp.chmod(0o600)
    tmp.replace(target)


def add_user(
    path: str | Path, subject: str, name: str, roles: list[str], password: str | None
) -> User:
    """Add or replace one user of the users file (created if missing)."""
    if not subject.strip() or not name.strip():
        raise IdentityError("a user needs a subject and a display name")
    users = load_users(path) if Path(path).exists() else {}
    user = User(
        subject=subject.strip(),
        name=name.strip(),
        roles=tuple(roles),
        password_hash=hash_password(password) if password else "",
    )
    users[user.subject] = user
    save_users(path, users)
    return user


def authenticate(users: dict[str, User], subject: str, password: str) -> User | None:
    """The user if the password is theirs; as slow for an unknown subject as for a known one."""
    user = users.get(subject)
    stored = user.password_hash if user is not None and user.password_hash else _NOBODY
    ok = check_password(stored, password)
    return user if ok and user is not None and user.password_hash else None


# -- keys and issuers --------------------------------------------------------------------------


def new_key(path: str | Path, kid: str) -> str:
    """Write a new Ed25519 private key (mode 0600) with its kid; return the public key line
    for `RETAILFLOW_APPROVAL_PUBLIC_KEYS` (`kid=key`)."""
    if not kid or any(c in kid for c in "=,\n \t"):
        raise IdentityError("--kid: a key id without spaces, '=' or ','")
    target = Path(path)
    if target.exists():
        raise IdentityError(f"{path} exists: a key is never overwritten")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"kid: {kid}\n{pem}")
    return f"{kid}={public_key_text(key.public_key())}"


@dataclass(frozen=True)
class Issuer:
    """Signs assertions for authenticated people."""

    kid: str
    key: Ed25519PrivateKey
    issuer: str = "retailflow"
    lifetime: timedelta = timedelta(minutes=5)

    def assertion(
        self,
        user: User,
        role: str,
        refund_id: str,
        action: Action,
        now: datetime | None = None,
    ) -> str:
        return sign_assertion(
            self.key,
            self.kid,
            issuer=self.issuer,
            subject=user.subject,
            name=user.name,
            role=role,
            refund_id=refund_id,
            action=action,
            issued_at=now or datetime.now(UTC),
            lifetime=self.lifetime,
        )

    def public_line(self) -> str:
        return f"{self.kid}={public_key_text(self.key.public_key())}"


def load_issuer(
    path: str | Path, issuer: str = "retailflow", lifetime: timedelta = timedelta(minutes=5)
) -> Issuer:
    """The issuer of a key file written by `new_key` (`kid: ...` then the PEM key)."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise IdentityError(f"identity key file {path}: {e.strerror or e}") from None
    kid = Path(path).stem
    for line in text.splitlines():
        if line.startswith("kid:"):
            kid = line.removeprefix("kid:").strip()
    start = text.find("-----BEGIN")
    try:
        key = serialization.load_pem_private_key(text[start:].encode(), password=None)
    except (ValueError, TypeError) as e:
        raise IdentityError(f"identity key file {path}: not a PEM private key ({e})") from None
    if start < 0 or not isinstance(key, Ed25519PrivateKey):
        raise IdentityError(f"identity key file {path}: not an Ed25519 private key")
    return Issuer(kid=kid, key=key, issuer=issuer, lifetime=lifetime)


def parse_trusted_keys(text: str, where: str) -> dict[str, str]:
    """Trusted public keys from `kid=key` entries (by line or comma; `#` comments), or from
    an identity provider's JWKS JSON (its OKP Ed25519 keys)."""
    text = text.strip()
    if text.startswith("{"):
        try:
            jwks = json.loads(text)
        except json.JSONDecodeError as e:
            raise IdentityError(f"{where}: not valid JWKS JSON ({e})") from None
        if not isinstance(jwks, dict):
            raise IdentityError(f"{where}: a JWKS is a JSON object with `keys`")
        try:
            return keys_from_jwks(jwks)
        except ValueError as e:
            raise IdentityError(f"{where}: {e}") from None
    keys: dict[str, str] = {}
    for entry in text.replace(",", "\n").splitlines():
        entry = entry.split("#", 1)[0].strip()
        if not entry:
            continue
        kid, sep, key = entry.partition("=")
        if not sep or not kid.strip():
            raise IdentityError(f"{where}: {entry[:20]!r}: entries are kid=public-key")
        try:
            keys[kid.strip()] = public_key_text(load_public_key(key))
        except ValueError as e:
            raise IdentityError(f"{where}: key {kid.strip()!r}: {e}") from None
    return keys


def approval_trust(
    keys: str | None,
    keys_file: str | None,
    max_lifetime: timedelta,
    leeway: timedelta = timedelta(seconds=30),
) -> ApprovalTrust:
    """The public keys a refund trusts, from the setting and / or its file."""
    found: dict[str, str] = {}
    if keys:
        found |= parse_trusted_keys(keys, "RETAILFLOW_APPROVAL_PUBLIC_KEYS")
    if keys_file:
        try:
            text = Path(keys_file).read_text()
        except OSError as e:
            raise IdentityError(
                f"RETAILFLOW_APPROVAL_PUBLIC_KEYS_FILE {keys_file}: {e.strerror or e}"
            ) from None
        found |= parse_trusted_keys(text, f"RETAILFLOW_APPROVAL_PUBLIC_KEYS_FILE {keys_file}")
    return ApprovalTrust(keys=found, max_lifetime=max_lifetime, leeway=leeway)


def decision_role(user: User, policy: RefundPolicy) -> str:
    """The role a user decides refunds in: their first approver role, else their first role
    (which the workflow will refuse, saying so)."""
    for role in user.roles:
        if role in policy.approver_roles:
            return role
    if not user.roles:
        raise IdentityError(f"user {user.subject} has no role")
    return user.roles[0]


# -- from the settings -------------------------------------------------------------------------


def trust_from(settings: Settings) -> ApprovalTrust:
    return approval_trust(
        settings.approval_public_keys,
        settings.approval_public_keys_file,
        timedelta(seconds=settings.approval_max_lifetime_s),
        timedelta(seconds=settings.approval_clock_skew_s),
    )


def issuer_from(settings: Settings) -> Issuer:
    if not settings.identity_key_file:
        raise IdentityError(
            "no identity source: set RETAILFLOW_IDENTITY_KEY_FILE (an issuer's key), or give "
            "--assertion / --assertion-file (a token from your identity provider)"
        )
    return load_issuer(
        settings.identity_key_file,
        settings.identity_issuer,
        timedelta(seconds=settings.assertion_lifetime_s),
    )


def users_from(settings: Settings) -> dict[str, User]:
    if not settings.users_file:
        raise IdentityError("no users file: set RETAILFLOW_USERS_FILE")
    return load_users(settings.users_file)


def configured_user(settings: Settings) -> User:
    """Who the CLI acts for: RETAILFLOW_IDENTITY_SUBJECT, looked up in the users file."""
    if not settings.identity_subject:
        raise IdentityError("set RETAILFLOW_IDENTITY_SUBJECT: who the assertion is for")
    user = users_from(settings).get(settings.identity_subject)
    if user is None:
        raise IdentityError(
            f"RETAILFLOW_IDENTITY_SUBJECT {settings.identity_subject}: not in the users file"
        )
    return user
