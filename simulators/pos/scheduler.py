"""One thread that hands due work to the platform in batches: a heap of (due time, key).

Commands are not given a thread or a timer each; whatever is due when the thread wakes is
handed over as one batch, so a burst of commands with no apply delay is applied (and
written) together.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

MAX_BATCH = 2000


class DueScheduler(Generic[K]):
    """Calls ``handler(keys)`` from its own thread once each key's delay has passed."""

    def __init__(self, handler: Callable[[list[K]], None], name: str = "pos-scheduler") -> None:
        self._handler = handler
        self._name = name
        self._heap: list[tuple[float, int, K]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def schedule(self, delay_s: float, key: K) -> None:
        due = time.monotonic() + max(0.0, delay_s)
        with self._cond:
            heapq.heappush(self._heap, (due, next(self._seq), key))
            self._cond.notify()

    def __len__(self) -> int:
        with self._cond:
            return len(self._heap)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None

    def clear(self) -> None:
        with self._cond:
            self._heap.clear()

    def _take_due(self) -> list[K] | None:
        """Wait for due keys; None when stopping."""
        with self._cond:
            while True:
                if self._stopping:
                    return None
                now = time.monotonic()
                if self._heap and self._heap[0][0] <= now:
                    batch: list[K] = []
                    while self._heap and self._heap[0][0] <= now and len(batch) < MAX_BATCH:
                        batch.append(heapq.heappop(self._heap)[2])
                    return batch
                self._cond.wait(timeout=self._heap[0][0] - now if self._heap else None)

    def _run(self) -> None:
        while (batch := self._take_due()) is not None:
            try:
                self._handler(batch)
            except Exception:  # the scheduler must outlive a bad batch
                logger.exception("applying a batch of %d due items failed", len(batch))
