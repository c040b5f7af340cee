"""The ingress's load shedding: per-caller rate limits and the posting backlog.

A sale is answered 429 with `Retry-After` (nothing started) when its caller is over its rate
(a token bucket per caller, from the callers file) or when too many sales are still Posting,
overall or for its store. The backlog is read from Temporal visibility and cached, so the
ingress asks at most once per cache period per count, never per request
(docs/observability.md, "Back-pressure").
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from temporalio.client import Client

from domain.limits import visibility_literal
from workers.auth import Caller

log = logging.getLogger("retailflow.ingress")

POSTING_QUERY = (
    'WorkflowType = "SalePosting" AND ExecutionStatus = "Running" AND RetailStatus = "Posting"'
)


def store_query(store_id: object) -> str | None:
    """The per-store backlog query; None for a store id that cannot be quoted in a visibility
    query (not counted per store: submit_sale keeps such a sale as rejected anyway)."""
    if not isinstance(store_id, str):
        return None
    try:
        return f"{POSTING_QUERY} AND StoreId = {visibility_literal(store_id, 'store_id')}"
    except ValueError:
        return None


@dataclass(frozen=True)
class Busy:
    """Why a request is shed, and when to try again (whole seconds, at least 1)."""

    reason: str
    retry_after_s: int


class RateLimiter:
    """A token bucket per caller (its `rate_per_s` and `burst`); callers without a rate pass."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # caller id -> (tokens, at)

    def check(self, caller: Caller) -> Busy | None:
        rate = caller.rate_per_s
        if rate is None:
            return None
        size = float(caller.burst or max(1, math.ceil(rate)))
        now = self._clock()
        tokens, at = self._buckets.get(caller.id, (size, now))
        tokens = min(size, tokens + (now - at) * rate)
        if tokens >= 1.0:
            self._buckets[caller.id] = (tokens - 1.0, now)
            return None
        self._buckets[caller.id] = (tokens, now)
        wait = (1.0 - tokens) / rate
        return Busy(f"caller {caller.id} over its rate of {rate:g}/s", max(1, math.ceil(wait)))

    def give_back(self, caller: Caller) -> None:
        """Return the token a request took: it was shed for the backlog, not for the caller's
        rate, and its retry should not find the caller over its rate."""
        rate = caller.rate_per_s
        held = self._buckets.get(caller.id)
        if rate is None or held is None:
            return
        size = float(caller.burst or max(1, math.ceil(rate)))
        tokens, at = held
        self._buckets[caller.id] = (min(size, tokens + 1.0), at)


class BacklogGauge:
    """Sales Posting, overall and per store, each count read at most once per `ttl_s`
    (concurrent requests share one query). A count that cannot be read sheds nothing."""

    def __init__(
        self,
        count: Callable[[str], Awaitable[int]],
        max_total: int,
        max_per_store: int,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._count = count
        self.max_total = max_total
        self.max_per_store = max_per_store
        self.ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[int | None, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.queries = 0

    @property
    def retry_after_s(self) -> int:
        return max(1, math.ceil(self.ttl_s))

    async def _cached(self, query: str) -> int | None:
        hit = self._cache.get(query)
        if hit is not None and self._clock() - hit[1] < self.ttl_s:
            return hit[0]
        lock = self._locks.setdefault(query, asyncio.Lock())
        async with lock:
            hit = self._cache.get(query)
            if hit is not None and self._clock() - hit[1] < self.ttl_s:
                return hit[0]
            self.queries += 1
            value: int | None
            try:
                value = await self._count(query)
            except Exception as e:  # Temporal unreachable: the start will say so itself
                log.warning("backlog count failed (%s): not shedding", type(e).__name__)
                value = None
            self._cache[query] = (value, self._clock())
            if len(self._cache) > 10_000:  # stores come and go: forget the stale ones
                now = self._clock()
                for key, (_, at) in list(self._cache.items()):
                    if now - at >= self.ttl_s:
                        del self._cache[key]
                        self._locks.pop(key, None)
            return value

    async def check(self, store_id: object) -> Busy | None:
        if self.max_total:
            total = await self._cached(POSTING_QUERY)
            if total is not None and total >= self.max_total:
                return Busy(
                    f"{total} sales awaiting posting (limit {self.max_total})", self.retry_after_s
                )
        query = store_query(store_id) if self.max_per_store else None
        if query is not None:
            mine = await self._cached(query)
            if mine is not None and mine >= self.max_per_store:
                return Busy(
                    f"{mine} sales of store {store_id} awaiting posting "
                    f"(limit {self.max_per_store})",
                    self.retry_after_s,
                )
        return None


def visibility_count(client: Callable[[], Client]) -> Callable[[str], Awaitable[int]]:
    async def count(query: str) -> int:
        return (await client().count_workflows(query)).count

    return count
