"""Test data masking: customer fields replaced by stable pseudonyms that keep their shape.

Copies of production data go to test only masked. A `Masker` replaces a customer's email,
phone, name and address with HMAC-sha256 pseudonyms under a masking key: the same value gives
the same pseudonym within one key (joins and duplicates survive), a different key gives
unrelated ones, and nobody without the key can go back. Formats are kept, so the copy passes
the same validation: an email stays `local@domain`, a phone keeps its length, `+` and
separators, a name or address keeps its words, case and digits' places.

Every retailflow tool that exports data masks with this module when asked to (`--mask`);
the key comes from RETAILFLOW_MASKING_KEY(_FILE), or is a random one per export.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterator, Mapping
from typing import Any

# Keys that hold a customer's data (any key under a `customer` object too).
CUSTOMER_KEYS = frozenset(
    {
        "email",
        "phone",
        "mobile",
        "name",
        "first_name",
        "last_name",
        "full_name",
        "address",
        "street",
        "street2",
        "city",
        "zip",
        "postcode",
        "billing_address",
        "shipping_address",
    }
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_CONSONANTS = "bcdfghjklmnprstvz"
_VOWELS = "aeiou"


def is_customer_key(key: str) -> bool:
    k = key.lower()
    return k in CUSTOMER_KEYS or k.startswith("customer_")


class Masker:
    """Pseudonyms under one key; `Masker()` draws a random key (one export's own)."""

    def __init__(self, key: bytes | None = None) -> None:
        if key is not None and len(key) < 16:
            raise ValueError("masking key: at least 16 bytes")
        self._key = key if key is not None else secrets.token_bytes(32)

    def _mac(self, kind: str, value: str) -> bytes:
        return hmac.new(self._key, f"{kind}\0{value}".encode(), hashlib.sha256).digest()

    def token(self, kind: str, value: str, length: int = 16) -> str:
        """A hex pseudonym of `value` (for ids and digests)."""
        return self._mac(kind, value).hex()[:length]

    def email(self, value: str) -> str:
        mac = self._mac("email", value.strip().lower()).hex()
        return f"user-{mac[:10]}@mask-{mac[10:16]}.example"

    def phone(self, value: str) -> str:
        """Each digit replaced, everything else (+, spaces, dashes) where it was."""
        stream = _digits(self._mac("phone", re.sub(r"\D", "", value)))
        return "".join(next(stream) if c.isdigit() else c for c in value)

    def words(self, value: str, kind: str = "name") -> str:
        """A name or an address: each word a pronounceable pseudo-word of its length and case,
        each digit a digit; spaces and punctuation kept."""
        mac = self._mac(kind, value.strip().lower())
        letters, digits = _letters(mac), _digits(mac)
        out = []
        for c in value:
            if c.isdigit():
                out.append(next(digits))
            elif c.isalpha():
                ch = next(letters)
                out.append(ch.upper() if c.isupper() else ch)
            else:
                out.append(c)
        return "".join(out)

    def value(self, key: str, value: str) -> str:
        """A customer field's pseudonym, by what the field holds."""
        k = key.lower()
        if "email" in k or _EMAIL.match(value.strip()):
            return self.email(value)
        if "phone" in k or "mobile" in k:
            return self.phone(value)
        return self.words(value, "name" if "name" in k else "address")

    def mask(self, data: Any, under_customer: bool = False) -> Any:
        """A copy of JSON-like data with every customer field pseudonymised."""
        if isinstance(data, Mapping):
            out: dict[Any, Any] = {}
            for k, v in data.items():
                customer = under_customer or (isinstance(k, str) and k.lower() == "customer")
                if (
                    isinstance(k, str)
                    and isinstance(v, str)
                    and v
                    and (customer or is_customer_key(k))
                ):
                    out[k] = self.value(k, v)
                else:
                    out[k] = self.mask(v, customer)
            return out
        if isinstance(data, list):
            return [self.mask(v, under_customer) for v in data]
        return data


def _stream(mac: bytes) -> Iterator[int]:
    """Bytes derived from `mac`, endless (a counter-mode HMAC of it)."""
    n = 0
    while True:
        yield from hashlib.sha256(mac + n.to_bytes(4, "big")).digest()
        n += 1


def _digits(mac: bytes) -> Iterator[str]:
    for b in _stream(mac):
        if b < 250:  # unbiased
            yield str(b % 10)


def _letters(mac: bytes) -> Iterator[str]:
    vowel = False
    for b in _stream(mac):
        alphabet = _VOWELS if vowel else _CONSONANTS
        yield alphabet[b % len(alphabet)]
        vowel = not vowel
