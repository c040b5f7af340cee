"""Business gauges from Temporal visibility, read by the worker every 30 s (never from
histories): how many workflows are in each RetailStatus that needs someone, and how long the
oldest has waited. The last values read are cached in workers/metrics.py; a scrape only reads
the cache.

Visibility counts by one search attribute at a time (GROUP BY works for ExecutionStatus only,
and ORDER BY not at all on the standard stores), so each watched (workflow type, status) pair
is one `count_workflows`, and the oldest age is the smallest start time of a listing capped
at OLDEST_SCAN executions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from temporalio.client import Client

from domain.limits import visibility_literal
from workers.metrics import (
    COLLECTOR_LAST_SUCCESS,
    INVENTORY_DRIFT,
    OLDEST_AGE,
    ROLLOUT_UNCONFIRMED,
    UNRECONCILED_AMOUNT,
    WORKFLOWS_BY_STATUS,
    metrics,
)

log = logging.getLogger("retailflow.business_metrics")

# (workflow type, RetailStatus) pairs watched while the workflow runs.
OPEN_STATUSES: tuple[tuple[str, str], ...] = (
    ("SalePosting", "Posting"),
    ("SalePosting", "NeedsAttention"),
    ("StoreLedger", "NeedsAttention"),
    ("Refund", "AwaitingApproval"),
    ("Refund", "PaidPostingPending"),
    ("Refund", "NeedsAttention"),
    ("GatewaySettlement", "NeedsAttention"),
    ("DailySettlement", "NeedsAttention"),
)
# Statuses a workflow ends in: counted over the workflows started in the last RECENT window.
RECENT_STATUSES: tuple[tuple[str, str], ...] = (
    ("SalePosting", "Rejected"),
    ("Refund", "Rejected"),
    ("Reconciliation", "Unreconciled"),
)
RECENT = timedelta(hours=24)
# The statuses whose oldest age is a gauge (someone has to act on them).
AGED_STATUSES = ("NeedsAttention", "AwaitingApproval", "PaidPostingPending")
OLDEST_SCAN = 5000

Labels = tuple[tuple[str, str], ...]


async def collect(client: Client, now: datetime | None = None) -> dict[str, dict[Labels, float]]:
    """Read the gauges once from visibility; the values by metric name."""
    now = now or datetime.now(UTC)
    by_status: dict[Labels, float] = {}
    since = (now - RECENT).strftime("%Y-%m-%dT%H:%M:%SZ")
    watched = [(t, s, 'ExecutionStatus = "Running"') for t, s in OPEN_STATUSES] + [
        (t, s, f'StartTime > "{since}"') for t, s in RECENT_STATUSES
    ]
    for wf_type, status, scope in watched:
        query = (
            f"WorkflowType = {visibility_literal(wf_type)} "
            f"AND RetailStatus = {visibility_literal(status)} AND {scope}"
        )
        count = await client.count_workflows(query)
        by_status[(("workflow_type", wf_type), ("status", status))] = float(count.count)

    oldest: dict[Labels, float] = {}
    for status in AGED_STATUSES:
        query = f'RetailStatus = {visibility_literal(status)} AND ExecutionStatus = "Running"'
        first: datetime | None = None
        async for wf in client.list_workflows(query, limit=OLDEST_SCAN, page_size=1000):
            if first is None or wf.start_time < first:
                first = wf.start_time
        age = (now - first).total_seconds() if first is not None else 0.0
        oldest[(("status", status),)] = max(age, 0.0)

    return {
        WORKFLOWS_BY_STATUS: by_status,
        OLDEST_AGE: oldest,
        # Defined now, measured once settlement data can be read cheaply: 0 until then.
        UNRECONCILED_AMOUNT: {(): 0.0},
        ROLLOUT_UNCONFIRMED: {(): 0.0},
        # Defined now; the inventory audit (issue 12) fills it per store.
        INVENTORY_DRIFT: {(): 0.0},
        COLLECTOR_LAST_SUCCESS: {(): time.time()},
    }


async def run_collector(client: Client, interval_s: float = 30.0) -> None:
    """Refresh the gauges every `interval_s` until cancelled. A failed read is logged and the
    last values stay (the last-success timestamp shows their age)."""
    gauges = metrics().gauges
    while True:
        try:
            for name, values in (await collect(client)).items():
                gauges.set(name, values)
        except Exception as e:  # visibility down: keep the last values, try again later
            log.warning("business metrics: visibility read failed: %s", e)
        await asyncio.sleep(interval_s)
