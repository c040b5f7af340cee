"""Signing of the POS platform's confirmation callbacks (pure functions, no I/O, no clock).

The platform signs ``"<timestamp>.<raw body>"`` with HMAC-SHA256 and the shared secret and
sends ``X-POS-Timestamp: <unix seconds>`` and ``X-POS-Signature: sha256=<hex>``. A receiver
recomputes the signature over the exact bytes it received, compares in constant time and
refuses a stale timestamp, so a captured callback cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SCHEME = "sha256="


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def sign(secret: str | bytes, timestamp: int | str, body: str | bytes) -> str:
    """The ``X-POS-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    message = _bytes(str(timestamp)) + b"." + _bytes(body)
    return SCHEME + hmac.new(_bytes(secret), message, hashlib.sha256).hexdigest()


def verify(
    secret: str | bytes,
    timestamp: int | str,
    body: str | bytes,
    signature: str,
    max_age_s: float = 300,
    now: float | None = None,
) -> bool:
    """True if ``signature`` signs ``body`` at ``timestamp`` and the timestamp is within
    ``max_age_s`` of ``now`` (either side; clock skew). ``now`` defaults to the wall clock."""
    stamp = str(timestamp).strip()
    try:
        sent_at = int(stamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > max_age_s:
        return False
    expected = sign(secret, stamp, body)
    return hmac.compare_digest(expected.encode(), _bytes(signature.strip()))
