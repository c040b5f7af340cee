"""Fault injection on the Stripe API routes (never on ``/_sim``), switchable at run time.

Kinds:

* ``transport``: the request is read, then the connection is closed without a response,
  before any work (the SDK raises ``APIConnectionError`` and retries when it may);
* ``http_500``: a Stripe ``api_error`` answered with HTTP 500, before any work;
* ``lost_response``: the work is done and committed (and its idempotent result stored), then
  the connection is closed without a response: "refund made, response lost".

``methods`` (``POST``) and ``paths`` (``/v1/refunds``, which also covers
``/v1/refunds/re_...``) narrow which requests may draw a fault or get ``latency_ms``;
``max_faults`` stops injecting after that many faults (``1``: fail once, then let the retry
through).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

from simulators.serving import FAULT_KINDS, FaultSettings

__all__ = ["FAULT_KINDS", "GatewayFaults"]


@dataclass
class GatewayFaults(FaultSettings):
    latency_ms: float = 0.0
    error_rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    methods: tuple[str, ...] | None = None
    paths: tuple[str, ...] | None = None
    seed: int | None = None
    max_faults: int | None = None
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _lock: threading.Lock = field(init=False, repr=False, compare=False)
    _injected: int = field(init=False, default=0, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.kinds = tuple(self.kinds)
        if self.methods is not None:
            self.methods = tuple(m.upper() for m in self.methods)
        if self.paths is not None:
            self.paths = tuple(p.rstrip("/") for p in self.paths)
        self._check_and_seed()
        if self.max_faults is not None and self.max_faults < 0:
            raise ValueError("max_faults must be >= 0")

    def applies(self, method: str, path: str) -> bool:
        if self.methods is not None and method.upper() not in self.methods:
            return False
        if self.paths is None:
            return True
        return any(path == p or path.startswith(p + "/") for p in self.paths)

    def draw(self, method: str, path: str) -> str | None:
        """The fault to inject on this request, or None."""
        if self.error_rate <= 0 or not self.kinds or not self.applies(method, path):
            return None
        with self._lock:
            if self.max_faults is not None and self._injected >= self.max_faults:
                return None
            if self._rng.random() >= self.error_rate:
                return None
            self._injected += 1
            return self._rng.choice(self.kinds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "error_rate": self.error_rate,
            "kinds": list(self.kinds),
            "methods": list(self.methods) if self.methods is not None else None,
            "paths": list(self.paths) if self.paths is not None else None,
            "seed": self.seed,
            "max_faults": self.max_faults,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GatewayFaults:
        allowed = {"latency_ms", "error_rate", "kinds", "methods", "paths", "seed", "max_faults"}
        values = cls._known_settings(data, allowed)
        for key in ("kinds", "methods", "paths"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
            elif key == "kinds":
                values.pop(key, None)
        return cls(**values)
