"""Identities for tests: an issuer with a fresh Ed25519 key, the settings that trust it, and
signed assertions for refund requests and decisions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.approval import Action
from workers.identity import Issuer, User, hash_password, save_users
from workflows.refund import Approval


@dataclass(frozen=True)
class Signer:
    issuer: Issuer

    @classmethod
    def new(cls, kid: str = "test-issuer", lifetime: timedelta = timedelta(minutes=5)) -> Signer:
        return cls(Issuer(kid=kid, key=Ed25519PrivateKey.generate(), lifetime=lifetime))

    def trusted(self) -> dict[str, Any]:
        """Settings overrides under which refunds trust this issuer."""
        return {"approval_public_keys": self.issuer.public_line()}

    def sign(
        self,
        sub: str,
        refund_id: str,
        action: Action,
        *,
        role: str = "store_manager",
        name: str | None = None,
        now: datetime | None = None,
    ) -> str:
        user = User(subject=sub, name=name or sub, roles=(role,))
        return self.issuer.assertion(user, role, refund_id, action, now or datetime.now(UTC))

    def request(
        self, raw: dict[str, Any], sub: str = "cashier-ann", name: str | None = None
    ) -> str:
        """The requester's `request` assertion for this refund request."""
        return self.sign(sub, str(raw["refund_id"]), "request", role="cashier", name=name)

    def approval(
        self,
        sub: str,
        refund_id: str,
        *,
        role: str = "store_manager",
        name: str | None = None,
        approve: bool = True,
        comment: str = "",
    ) -> Approval:
        action: Action = "approve" if approve else "reject"
        return Approval(
            assertion=self.sign(sub, refund_id, action, role=role, name=name), comment=comment
        )

    def key_file(self, path: Path) -> Path:
        """This issuer's private key as `retailflow identity new-key` writes one."""
        pem = self.issuer.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        path.write_text(f"kid: {self.issuer.kid}\n{pem}")
        path.chmod(0o600)
        return path

    def identity_env(self, tmp: Path, users: list[User]) -> dict[str, str]:
        """Environment for a `retailflow` process that trusts and signs as this issuer, with
        these users (add RETAILFLOW_IDENTITY_SUBJECT to act as one)."""
        users_file = tmp / "users.toml"
        save_users(users_file, {u.subject: u for u in users})
        return {
            "RETAILFLOW_APPROVAL_PUBLIC_KEYS": self.issuer.public_line(),
            "RETAILFLOW_IDENTITY_KEY_FILE": str(self.key_file(tmp / "issuer.key")),
            "RETAILFLOW_USERS_FILE": str(users_file),
        }


def user(subject: str, name: str, *roles: str, password: str | None = None) -> User:
    return User(
        subject=subject,
        name=name,
        roles=roles,
        password_hash=hash_password(password) if password else "",
    )


# One issuer for a test session: tests that share settings trust it.
ISSUER = Signer.new()
