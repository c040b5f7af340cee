"""An adaptive limit on concurrent Odoo RPCs, shared by every Odoo activity of a worker.

AIMD, as TCP does it: each finished call reports how long it took and whether Odoo showed
strain (a transport fault, an HTTP 5xx, a database serialization failure: anything retryable).
A strained or slow call (over the latency target) cuts the limit to 70 %, at most once per
cool-down window (a burst of failures from one episode counts once); every other call adds
1/limit, so the limit grows by one per `limit` good calls. The limit stays within [min, max].

odoorpc blocks, so callers are activity threads: `acquire` blocks, heartbeating while it waits,
and gives up with `OdooBusy` (retryable: Temporal tries the activity again after its backoff)
when the wait is too long or when too many threads already wait, so Odoo activities can never
hold more than `max + max_waiting` activity threads (docs/observability.md, "Back-pressure").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

DECREASE_FACTOR = 0.7


class OdooBusy(Exception):
    """No Odoo slot in time: nothing was sent to Odoo; retry the attempt later."""


@dataclass(frozen=True)
class LimiterSettings:
    min_limit: int = 2
    max_limit: int = 16
    # A call slower than this counts as strain.
    latency_target_s: float = 5.0
    # At most one decrease per window: the calls in flight when Odoo struggled report late.
    cooldown_s: float = 2.0
    # How long a call may wait for a slot, and how many may wait at once.
    wait_timeout_s: float = 20.0
    max_waiting: int = 8
    # How often a waiting call heartbeats.
    heartbeat_every_s: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_limit <= self.max_limit:
            raise ValueError(
                f"Odoo concurrency: need 1 <= min <= max, got min {self.min_limit}, "
                f"max {self.max_limit}"
            )
        for name in ("latency_target_s", "wait_timeout_s", "heartbeat_every_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Odoo concurrency: {name} must be > 0")
        if self.cooldown_s < 0 or self.max_waiting < 0:
            raise ValueError("Odoo concurrency: cooldown_s and max_waiting must be >= 0")


class OdooLimiter:
    """Thread-safe AIMD concurrency limit. `limit` and `in_flight` are for metrics."""

    def __init__(
        self,
        settings: LimiterSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = s = settings or LimiterSettings()
        self._clock = clock
        self._cond = threading.Condition()
        # Start wide open (what the worker did before there was a limiter); strain narrows it.
        self._limit = float(s.max_limit)
        self._in_flight = 0
        self._waiting = 0
        self._last_decrease: float | None = None
        self.decreases = 0
        self.rejections = 0

    @property
    def limit(self) -> int:
        with self._cond:
            return int(self._limit)

    @property
    def in_flight(self) -> int:
        with self._cond:
            return self._in_flight

    @property
    def waiting(self) -> int:
        with self._cond:
            return self._waiting

    def acquire(self, what: str, heartbeat: Callable[[str], None] | None = None) -> None:
        """Take a slot, waiting at most wait_timeout_s (heartbeating every heartbeat_every_s).
        Raises OdooBusy when too many already wait or the wait runs out; whatever `heartbeat`
        raises (an attempt Temporal has abandoned) goes through, the slot not taken."""
        s = self.settings
        with self._cond:
            if self._in_flight < int(self._limit):
                self._in_flight += 1
                return
            if self._waiting >= s.max_waiting:
                self.rejections += 1
                raise OdooBusy(
                    f"Odoo busy before {what}: {self._in_flight} calls in flight (limit "
                    f"{int(self._limit)}) and {self._waiting} waiting"
                )
            self._waiting += 1
        try:
            deadline = self._clock() + s.wait_timeout_s
            while True:
                if heartbeat is not None:
                    heartbeat(f"waiting for an Odoo slot before {what}")
                with self._cond:
                    if self._in_flight < int(self._limit):
                        self._in_flight += 1
                        return
                    left = deadline - self._clock()
                    if left <= 0:
                        self.rejections += 1
                        raise OdooBusy(
                            f"Odoo busy before {what}: no slot within {s.wait_timeout_s:g} s "
                            f"(limit {int(self._limit)})"
                        )
                    self._cond.wait(min(left, s.heartbeat_every_s))
        finally:
            with self._cond:
                self._waiting -= 1

    def release(self, latency_s: float, strained: bool) -> None:
        """Give the slot back and adapt the limit to how the call went."""
        s = self.settings
        with self._cond:
            self._in_flight = max(0, self._in_flight - 1)
            if strained or latency_s > s.latency_target_s:
                now = self._clock()
                if self._last_decrease is None or now - self._last_decrease >= s.cooldown_s:
                    self._limit = max(float(s.min_limit), self._limit * DECREASE_FACTOR)
                    self._last_decrease = now
                    self.decreases += 1
            else:
                self._limit = min(float(s.max_limit), self._limit + 1.0 / self._limit)
            self._cond.notify_all()
