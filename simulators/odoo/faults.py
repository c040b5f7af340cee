"""Fault injection settings and the per-call draw.

Kinds, applied to ``object`` service calls only:

* ``transport``: the connection is closed without any response, before the work is done;
* ``http_500``: an HTTP 500 answer, before the work is done;
* ``lost_response``: the work is done and committed, then the connection is closed without a
  response (a client that retries creates a duplicate).

``latency_ms`` is added to every ``/jsonrpc`` call.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

from simulators.serving import FAULT_KINDS, FaultSettings

__all__ = ["FAULT_KINDS", "Faults"]


@dataclass
class Faults(FaultSettings):
    """What to inject; ``fault_mix`` weighs the kinds (equal weights when omitted)."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    fault_mix: dict[str, float] | None = None
    methods: tuple[str, ...] | None = None
    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _lock: threading.Lock = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.kinds = tuple(self.kinds)
        if self.fault_mix:
            self.kinds = tuple(k for k, w in self.fault_mix.items() if w > 0)
        if self.methods is not None:
            self.methods = tuple(self.methods)
        self._check_and_seed()

    def draw(self, method: str, target: str | None = None) -> str | None:
        """The fault to inject on an object call, or None.

        ``methods`` may name a method (``create``) or a model method (``account.move.create``).
        """
        if self.error_rate <= 0 or not self.kinds:
            return None
        if self.methods is not None and method not in self.methods and target not in self.methods:
            return None
        weights = [(self.fault_mix or {}).get(k, 1.0) for k in self.kinds]
        with self._lock:
            if self._rng.random() >= self.error_rate:
                return None
            return self._rng.choices(self.kinds, weights=weights)[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "error_rate": self.error_rate,
            "kinds": list(self.kinds),
            "fault_mix": self.fault_mix,
            "methods": list(self.methods) if self.methods is not None else None,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Faults:
        allowed = {"latency_ms", "error_rate", "kinds", "fault_mix", "methods", "seed"}
        values = cls._known_settings(data, allowed)
        if values.get("kinds") is not None:
            values["kinds"] = tuple(values["kinds"])
        else:
            values.pop("kinds", None)
        if values.get("methods") is not None:
            values["methods"] = tuple(values["methods"])
        return cls(**values)
