"""How a POS platform signs what it sends us (confirmation callbacks), and how we check it.

`X-POS-Signature: sha256=<hex HMAC-SHA256 of "<X-POS-Timestamp>.<raw body>">` with the shared
secret of the platform named in `X-POS-Platform`. A timestamp older than five minutes is
refused, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time

_UNIX_SECONDS = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")


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
    # Unix seconds in plain digits: `nan`, `inf`, `1e999` or `-5` never pass the age check.
    if not _UNIX_SECONDS.fullmatch(timestamp):
        return False
    age = (time.time() if now is None else now) - float(timestamp)
    if not math.isfinite(age) or abs(age) > max_age_s:
        return False
    # As bytes: compare_digest refuses str with non-ASCII characters (a header can carry them).
    expected = sign(secret, timestamp, body).encode()
    return hmac.compare_digest(expected, signature.encode(errors="replace"))
