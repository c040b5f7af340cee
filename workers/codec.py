"""Payload encryption: an AES-256-GCM `PayloadCodec` with key ids, so keys rotate.

Every payload a retailflow client or worker writes (workflow and activity inputs and results,
signals, updates, queries, memos, user metadata, failure messages and stack traces) is stored
by Temporal as `encoding=binary/encrypted`, `encryption-key-id=<kid>`, data = 12-byte nonce +
AES-GCM ciphertext of the serialized original Payload (the shape of Temporal's encryption
sample, so other codec servers can read it). Search attributes are not encrypted by Temporal:
they carry store ids, days and statuses only (docs/security.md).

Keys come from the environment, never the repository: `RETAILFLOW_ENCRYPTION_KEYS`
(`kid:base64key[,kid:base64key...]`) or `RETAILFLOW_ENCRYPTION_KEYS_FILE` (the same text, or
one `kid:base64key` per line). The first key encrypts; every listed key decrypts. Rotation:
prepend a new key (`retailflow keys new`), keep the old ones until the histories they
encrypted are past retention.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_SIZE = 12
KEY_SIZE = 32
TAG_SIZE = 16
ENV_KEYS = "RETAILFLOW_ENCRYPTION_KEYS"
ENV_KEYS_FILE = "RETAILFLOW_ENCRYPTION_KEYS_FILE"
_KID = re.compile(r"[A-Za-z0-9._-]{1,64}")
HOW_TO_SET = (
    f"set {ENV_KEYS}=kid:base64key (or {ENV_KEYS_FILE}=a file holding it); "
    "make a key with `retailflow keys new`"
)


class EncryptionKeyError(ValueError):
    """The configured keys are missing or malformed (one line, naming the setting)."""


class PayloadDecryptionError(Exception):
    """A payload that cannot be decrypted with the configured keys (one line, naming the kid)."""


@dataclass(frozen=True)
class KeyRing:
    """Keys by id, newest first: the first encrypts, all of them decrypt."""

    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise EncryptionKeyError(f"no payload encryption key: {HOW_TO_SET}")
        seen: set[str] = set()
        for kid, key in self.keys:
            if not _KID.fullmatch(kid):
                raise EncryptionKeyError(
                    f"key id {kid[:70]!r}: use 1-64 letters, digits, '.', '_' or '-'"
                )
            if len(key) != KEY_SIZE:
                raise EncryptionKeyError(f"key {kid!r}: must be {KEY_SIZE} bytes, not {len(key)}")
            if kid in seen:
                raise EncryptionKeyError(f"key id {kid!r} is listed twice")
            seen.add(kid)

    @property
    def current(self) -> str:
        return self.keys[0][0]

    @property
    def kids(self) -> list[str]:
        return [kid for kid, _ in self.keys]

    @classmethod
    def parse(cls, text: str, source: str = ENV_KEYS) -> KeyRing:
        """`kid:base64key` entries separated by commas or lines (`#` starts a comment line).
        Errors name `source` and the entry, never the key material."""
        entries = [
            e.strip()
            for line in text.splitlines()
            if not line.strip().startswith("#")
            for e in line.split(",")
            if e.strip()
        ]
        if not entries:
            raise EncryptionKeyError(f"{source}: holds no key: {HOW_TO_SET}")
        keys = []
        for n, entry in enumerate(entries, 1):
            kid, sep, b64 = entry.partition(":")
            if not sep or not kid.strip() or not b64.strip():
                raise EncryptionKeyError(f"{source}: entry {n} is not kid:base64key")
            try:
                key = base64.b64decode(b64.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise EncryptionKeyError(
                    f"{source}: key {kid.strip()[:70]!r} is not valid base64"
                ) from None
            keys.append((kid.strip(), key))
        try:
            return cls(tuple(keys))
        except EncryptionKeyError as e:
            raise EncryptionKeyError(f"{source}: {e}") from None


class EncryptionSettings(BaseSettings):
    """Where the keys are: the env var itself, or a file (the `*_FILE` convention)."""

    model_config = SettingsConfigDict(env_prefix="RETAILFLOW_", env_file=".env", extra="ignore")

    encryption_keys: SecretStr | None = None
    encryption_keys_file: str | None = None


def load_key_ring(settings: EncryptionSettings | None = None) -> KeyRing:
    """The configured keys; EncryptionKeyError (one line, how to fix it) when there are none."""
    s = settings or EncryptionSettings()
    inline = s.encryption_keys.get_secret_value() if s.encryption_keys else ""
    if inline.strip() and s.encryption_keys_file:
        raise EncryptionKeyError(f"set {ENV_KEYS} or {ENV_KEYS_FILE}, not both")
    if s.encryption_keys_file:
        path = Path(s.encryption_keys_file)
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
            raise EncryptionKeyError(f"{ENV_KEYS_FILE}: cannot read {path}: {reason}") from None
        return KeyRing.parse(text, f"{ENV_KEYS_FILE} ({path})")
    if not inline.strip():
        raise EncryptionKeyError(f"no payload encryption key: {HOW_TO_SET}")
    return KeyRing.parse(inline, ENV_KEYS)


def new_key() -> bytes:
    return os.urandom(KEY_SIZE)


def generate_key_line(kid: str | None = None) -> str:
    """A new `kid:base64key` line (kid: `k` + the UTC time, unless given)."""
    kid = kid or datetime.now(UTC).strftime("k%Y%m%dT%H%M%S")
    KeyRing(((kid, new_key()),))  # validates the kid
    return f"{kid}:{base64.b64encode(new_key()).decode()}"


def write_key_file(path: Path, kid: str | None = None) -> Path:
    """A key file of one new key, readable by its owner only (0600), unless it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w") as f:
        f.write(generate_key_line(kid) + "\n")
    return path


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM, one fresh random nonce per payload; payloads not encrypted pass through
    decode unchanged (histories written before encryption, recorded test histories)."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self._aead = {kid: AESGCM(key) for kid, key in ring.keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") == ENCODING:
            return payload  # already encrypted (e.g. a memo read back and written again)
        kid = self.ring.current
        nonce = os.urandom(NONCE_SIZE)
        sealed = self._aead[kid].encrypt(nonce, payload.SerializeToString(), None)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: kid.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        kid = payload.metadata.get(KEY_ID, b"").decode("utf-8", "replace")[:70]
        aead = self._aead.get(kid)
        if aead is None:
            raise PayloadDecryptionError(
                f"payload encrypted with key id {kid!r}, which is not configured (keys: "
                f"{', '.join(self.ring.kids)}): add it to {ENV_KEYS} or {ENV_KEYS_FILE}"
            )
        data = payload.data
        try:
            if len(data) < NONCE_SIZE + TAG_SIZE:
                raise InvalidTag
            return Payload.FromString(aead.decrypt(data[:NONCE_SIZE], data[NONCE_SIZE:], None))
        except (InvalidTag, DecodeError):
            raise PayloadDecryptionError(
                f"payload with key id {kid!r} does not decrypt: the key configured as {kid!r} "
                "is not the one it was encrypted with, or the payload was altered"
            ) from None


def data_converter(ring: KeyRing) -> DataConverter:
    """The project's converter (pydantic) with encryption; failure messages and stack traces
    are moved into an encrypted payload too."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(ring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def decode_message(message: Message, codec: PayloadCodec) -> None:
    """Decode, in place, every Payload anywhere in a protobuf message (a history, an event):
    for reading or saving a history in clear. Payloads not encrypted are left as they are."""
    for field, value in message.ListFields():
        entry = field.message_type
        if entry is None:
            continue
        kind: Descriptor | None = entry
        if not field.is_repeated:
            children = [value]
        elif entry.GetOptions().map_entry:
            kind = entry.fields_by_name["value"].message_type
            children = list(value.values())
        else:
            children = list(value)
        if kind is None:
            continue
        if kind.full_name != Payload.DESCRIPTOR.full_name:
            for child in children:
                await decode_message(child, codec)
        elif children:
            for child, new in zip(children, await codec.decode(children), strict=True):
                if new is not child:
                    child.CopyFrom(new)
