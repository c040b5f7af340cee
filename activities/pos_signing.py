"""How a POS platform signs what it sends us (confirmation callbacks), and how we check it.

`X-POS-Signature: sha256=<hex HMAC-SHA256 of "<X-POS-Timestamp>.<raw body>">` with the shared
secret of the platform named in `X-POS-Platform`. A timestamp older than five minutes is
refused, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(
    secret: str,
    timestamp: str | None,
    body: bytes,
    signature: str | None,
    max_age_s: float = 300,
    now: float | None = None,
) -> bool:
    if not timestamp or not signature:
        return False
    try:
        age = (time.time() if now is None else now) - float(timestamp)
    except ValueError:
        return False
    if abs(age) > max_age_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)
