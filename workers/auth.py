"""Who may call the ingress, and what for: callers, their scopes and their credentials.

The callers file (TOML, `RETAILFLOW_CALLERS_FILE`; docs/security.md, "Callers and scopes"):

    [[callers]]
    id = "pos-main"
    scopes = ["sales:write", "sales:read", "confirmations:write"]
    stores = ["S001", "S002"]          # optional: the only stores this caller speaks for

    [[callers.credentials]]            # a bearer token: only its sha256 is stored
    token_sha256 = "9f86d081884c7d65..."
    not_after = 2026-12-31T00:00:00Z   # optional: refused from then on

    [[callers.credentials]]            # HMAC-signed requests (X-POS-Platform = the caller id)
    hmac_secret_file = "/run/secrets/pos-main"   # or hmac_secret_env = "VAR", or hmac_secret

A caller may hold several credentials at once, so a secret rotates without downtime: add the
new one, move the caller over, let the old one expire (`not_after`) or remove it. The ingress
re-reads the file when it changes. Each platform of `RETAILFLOW_POS_SECRETS` is also a caller,
with the scope `confirmations:write` and its secret as HMAC credential.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from activities.pos_signing import verify
from domain.limits import MAX_ID_LENGTH
from domain.validation import load_settings_file

log = logging.getLogger("retailflow.auth")


class Scope(StrEnum):
    SALES_WRITE = "sales:write"
    SALES_READ = "sales:read"
    CONFIRMATIONS_WRITE = "confirmations:write"
    APPROVALS_WRITE = "approvals:write"
    REFUNDS_WRITE = "refunds:write"
    CUSTOMERS_ERASE = "customers:erase"


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_CALLER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def token_sha256(token: str) -> str:
    """What the callers file stores of a bearer token."""
    return hashlib.sha256(token.encode()).hexdigest()


class CredentialSpec(BaseModel):
    """One credential of a caller, as the file gives it: a token's hash, or an HMAC secret
    (inline, from a file or from an environment variable)."""

    model_config = ConfigDict(extra="forbid")

    token_sha256: str | None = None
    hmac_secret: SecretStr | None = None
    hmac_secret_file: Path | None = None
    hmac_secret_env: str | None = None
    not_after: AwareDatetime | None = None

    @field_validator("token_sha256")
    @classmethod
    def _hex(cls, v: str | None) -> str | None:
        if v is not None and not _SHA256_HEX.fullmatch(v.lower()):
            raise ValueError("must be 64 hex digits (the sha256 of the token)")
        return v.lower() if v is not None else None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        given = [
            name
            for name in ("token_sha256", "hmac_secret", "hmac_secret_file", "hmac_secret_env")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of token_sha256, hmac_secret, hmac_secret_file, "
                f"hmac_secret_env (got {', '.join(given) or 'none'})"
            )
        return self

    def resolve(self) -> Credential:
        """The credential with its secret read (file or environment); ValueError naming what
        is missing. The secret itself never appears in a message."""
        secret: str | None = None
        if self.hmac_secret is not None:
            secret = self.hmac_secret.get_secret_value()
        elif self.hmac_secret_file is not None:
            try:
                secret = self.hmac_secret_file.read_text().strip()
            except OSError as e:
                raise ValueError(
                    f"hmac_secret_file {self.hmac_secret_file}: cannot read: {e.strerror}"
                ) from e
        elif self.hmac_secret_env is not None:
            secret = os.environ.get(self.hmac_secret_env, "").strip()
            if not secret:
                raise ValueError(f"hmac_secret_env: ${self.hmac_secret_env} is not set")
        if secret is not None and not secret:
            raise ValueError("the HMAC secret is empty")
        return Credential(
            token_sha256=self.token_sha256,
            hmac_secret=SecretStr(secret) if secret is not None else None,
            not_after=self.not_after,
        )


class CallerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    scopes: list[Scope] = Field(min_length=1)
    stores: list[str] | None = None
    credentials: list[CredentialSpec] = Field(min_length=1)
    # Its rate limit on sales (a token bucket: `rate_per_s` sustained, `burst` at once,
    # default one second's worth); unset: none.
    rate_per_s: float | None = Field(default=None, gt=0, le=1_000_000)
    burst: int | None = Field(default=None, ge=1, le=1_000_000)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _CALLER_ID.fullmatch(v):
            raise ValueError("letters, digits, '.', '_' and '-' only")
        return v

    @model_validator(mode="after")
    def _burst_needs_rate(self) -> Self:
        if self.burst is not None and self.rate_per_s is None:
            raise ValueError("burst: needs rate_per_s")
        return self


class CallersFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    callers: list[CallerSpec] = Field(default_factory=list)


@dataclass(frozen=True)
class Credential:
    token_sha256: str | None = None
    hmac_secret: SecretStr | None = None
    not_after: datetime | None = None

    def valid_at(self, now: datetime) -> bool:
        return self.not_after is None or now < self.not_after


@dataclass(frozen=True)
class Caller:
    id: str
    scopes: frozenset[Scope]
    credentials: tuple[Credential, ...]
    # None: any store.
    stores: frozenset[str] | None = None
    # Sales rate limit (None: none): tokens per second, bucket size.
    rate_per_s: float | None = None
    burst: int | None = None

    def may_speak_for(self, store_id: object) -> bool:
        return self.stores is None or (isinstance(store_id, str) and store_id in self.stores)


class Refusal(StrEnum):
    """Why a request was not authenticated (logged; the caller only hears 401)."""

    MISSING = "no credentials"
    MALFORMED = "malformed Authorization header"
    UNKNOWN_TOKEN = "unknown token"
    UNKNOWN_CALLER = "unknown caller"
    BAD_SIGNATURE = "bad or stale signature"
    EXPIRED = "expired credential"


@dataclass(frozen=True)
class Authenticated:
    caller: Caller


@dataclass(frozen=True)
class Refused:
    reason: Refusal
    claimed: str = "-"  # the caller id the request named, if any (for the log)


@dataclass
class Callers:
    """Every known caller, by id; credentials checked in constant time."""

    by_id: dict[str, Caller] = field(default_factory=dict)

    def bearer(self, token: str, now: datetime | None = None) -> Authenticated | Refused:
        now = now or datetime.now(UTC)
        digest = token_sha256(token).encode()
        # Every credential is compared, so the time taken says nothing about which matched.
        valid: Caller | None = None
        expired: Caller | None = None
        for caller in self.by_id.values():
            for cred in caller.credentials:
                if cred.token_sha256 is not None and hmac.compare_digest(
                    cred.token_sha256.encode(), digest
                ):
                    if cred.valid_at(now):
                        valid = caller
                    else:
                        expired = caller
        if valid is not None:
            return Authenticated(valid)
        if expired is not None:
            return Refused(Refusal.EXPIRED, expired.id)
        return Refused(Refusal.UNKNOWN_TOKEN)

    def signed(
        self,
        caller_id: str,
        timestamp: str | None,
        body: bytes,
        signature: str | None,
        now: datetime | None = None,
    ) -> Authenticated | Refused:
        now = now or datetime.now(UTC)
        claimed = caller_id[:MAX_ID_LENGTH]
        caller = self.by_id.get(caller_id)
        if caller is None:
            return Refused(Refusal.UNKNOWN_CALLER, claimed)
        expired = False
        for cred in caller.credentials:
            if cred.hmac_secret is None:
                continue
            if verify(
                cred.hmac_secret.get_secret_value(),
                timestamp,
                body,
                signature,
                now=now.timestamp(),
            ):
                if cred.valid_at(now):
                    return Authenticated(caller)
                expired = True
        return Refused(Refusal.EXPIRED if expired else Refusal.BAD_SIGNATURE, claimed)


def caller_from_spec(spec: CallerSpec) -> Caller:
    return Caller(
        id=spec.id,
        scopes=frozenset(spec.scopes),
        credentials=tuple(c.resolve() for c in spec.credentials),
        stores=frozenset(spec.stores) if spec.stores is not None else None,
        rate_per_s=spec.rate_per_s,
        burst=spec.burst,
    )


def build_callers(specs: list[CallerSpec], pos_secrets: dict[str, SecretStr]) -> Callers:
    """The callers of the file and those of `RETAILFLOW_POS_SECRETS` (confirmations only).
    ValueError naming the problem: a caller twice, a token shared by two callers."""
    callers = Callers()
    for i, spec in enumerate(specs):
        if spec.id in callers.by_id:
            raise ValueError(f"callers[{i}].id: {spec.id!r} is listed twice")
        try:
            callers.by_id[spec.id] = caller_from_spec(spec)
        except ValueError as e:
            raise ValueError(f"callers[{i}] ({spec.id}): {e}") from e
    for platform, secret in pos_secrets.items():
        if platform in callers.by_id:
            raise ValueError(
                f"caller {platform!r} is in both RETAILFLOW_CALLERS_FILE and "
                "RETAILFLOW_POS_SECRETS: keep it in one place"
            )
        callers.by_id[platform] = Caller(
            id=platform,
            scopes=frozenset({Scope.CONFIRMATIONS_WRITE}),
            credentials=(Credential(hmac_secret=secret),),
        )
    hashes: dict[str, str] = {}
    for caller in callers.by_id.values():
        for cred in caller.credentials:
            if cred.token_sha256 is None:
                continue
            other = hashes.setdefault(cred.token_sha256, caller.id)
            if other != caller.id:
                raise ValueError(f"callers {other!r} and {caller.id!r} share a token")
    return callers


def load_callers(path: str | Path | None, pos_secrets: dict[str, SecretStr]) -> Callers:
    """The callers from the file (if any) and `RETAILFLOW_POS_SECRETS`; ValueError naming the
    file and the key on any problem."""
    specs: list[CallerSpec] = []
    if path is not None:
        specs = load_settings_file(CallersFile, path, "callers file").callers
    try:
        return build_callers(specs, pos_secrets)
    except ValueError as e:
        raise ValueError(f"callers file {path}: {e}" if path else f"callers: {e}") from e


class CallerRegistry:
    """The callers, re-read when their file changes, so credentials rotate without a restart.
    A file that no longer loads is logged and the callers known so far stay in force."""

    def __init__(self, path: str | Path | None, pos_secrets: dict[str, SecretStr]) -> None:
        self._path = Path(path) if path is not None else None
        self._pos_secrets = pos_secrets
        self._stamp = self._file_stamp()
        self._callers = load_callers(self._path, pos_secrets)

    def _file_stamp(self) -> tuple[int, int] | None:
        if self._path is None:
            return None
        try:
            st = self._path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def current(self) -> Callers:
        stamp = self._file_stamp()
        if stamp != self._stamp and stamp is not None:
            self._stamp = stamp
            try:
                self._callers = load_callers(self._path, self._pos_secrets)
                count = len(self._callers.by_id)
                log.info("callers file %s re-read: %d callers", self._path, count)
            except ValueError as e:
                log.error("callers file changed but was not loaded, keeping the previous: %s", e)
        return self._callers
