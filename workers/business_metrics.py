"""Business gauges from Temporal visibility, read by the worker every 30 s (never from
histories): how many workflows are in each RetailStatus that needs someone, and how long the
oldest has waited. The last values read are cached in workers/metrics.py; a scrape only reads
the cache.

Visibility counts by one search attribute at a time (GROUP BY works for ExecutionStatus only,
and ORDER BY not at all on the standard stores), so each watched (workflow type, status) pair
is one `count_workflows`, and the oldest age is the smallest start time of a listing capped
at OLDEST_SCAN executions. Amounts and store counts come from the memos the workflows keep
(a listing returns them; the client decodes them): the unreconciled amount of each recent
Unreconciled store-day (Reconciliation), and the stores of running price rollouts that have
not confirmed past their deadline (PriceRollout).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from temporalio.client import Client, WorkflowExecution

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
from workflows.inventory_audit import DRIFT_MEMO
from workflows.price_rollout import CONFIRM_BY_MEMO, UNCONFIRMED_MEMO
from workflows.reconciliation import UNRECONCILED_MEMO
from workflows.search_attributes import BUSINESS_DAY, STORE_ID

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
# Unreconciled store-days are read over the reconciliations started in this window (a store-day
# waits 7 days for ops by default, then ends Unreconciled).
RECON_WINDOW = timedelta(days=8)

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
        # One series per unreconciled store-day; a single 0 when there is none.
        UNRECONCILED_AMOUNT: await unreconciled_amounts(client, now) or {(): 0.0},
        ROLLOUT_UNCONFIRMED: {(): float(sum((await unconfirmed_rollouts(client, now)).values()))},
        # Products still in drift per store, from its latest audit; a single 0 when none.
        INVENTORY_DRIFT: await inventory_drift(client, now) or {(): 0.0},
        COLLECTOR_LAST_SUCCESS: {(): time.time()},
    }


async def _memo(wf: WorkflowExecution) -> dict[str, object]:
    """The execution's memo, decoded; empty when it cannot be (an older key, a bad value)."""
    try:
        return dict(await wf.memo())
    except Exception as e:
        log.warning("business metrics: memo of %s unreadable: %s", wf.id, type(e).__name__)
        return {}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return float(value)
    except ValueError:
        return None


async def unreconciled_amounts(client: Client, now: datetime) -> dict[Labels, float]:
    """The unreconciled amount of each store-day whose reconciliation (started within
    RECON_WINDOW) is Unreconciled, by store_id and day. Reconciliations started before the
    amount was kept in the memo are not counted (their status still is)."""
    since = (now - RECON_WINDOW).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = (
        'WorkflowType = "Reconciliation" AND RetailStatus = "Unreconciled" '
        f'AND StartTime > "{since}"'
    )
    latest: dict[Labels, tuple[datetime, float]] = {}
    async for wf in client.list_workflows(query, limit=OLDEST_SCAN, page_size=1000):
        amount = _number((await _memo(wf)).get(UNRECONCILED_MEMO))
        store = wf.typed_search_attributes.get(STORE_ID)
        day = wf.typed_search_attributes.get(BUSINESS_DAY)
        if amount is None or not store or not day:
            continue
        key: Labels = (("store_id", store), ("day", day))
        if key not in latest or latest[key][0] < wf.start_time:  # a store-day run again
            latest[key] = (wf.start_time, amount)
    return {key: amount for key, (_, amount) in latest.items()}


async def inventory_drift(client: Client, now: datetime) -> dict[Labels, float]:
    """Products left in drift by each store's latest InventoryAudit started within
    RECON_WINDOW (the `inventory_drift` memo the audit keeps: adjusted ones no longer count),
    by store_id."""
    since = (now - RECON_WINDOW).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = f'WorkflowType = "InventoryAudit" AND StartTime > "{since}"'
    latest: dict[Labels, tuple[datetime, float]] = {}
    async for wf in client.list_workflows(query, limit=OLDEST_SCAN, page_size=1000):
        count = _number((await _memo(wf)).get(DRIFT_MEMO))
        store = wf.typed_search_attributes.get(STORE_ID)
        if count is None or not store:
            continue
        key: Labels = (("store_id", store),)
        if key not in latest or latest[key][0] < wf.start_time:
            latest[key] = (wf.start_time, count)
    return {key: count for key, (_, count) in latest.items()}


async def unconfirmed_rollouts(client: Client, now: datetime) -> dict[str, int]:
    """Running price rollouts with stores unconfirmed past their deadline: workflow id ->
    how many stores (from the memo the rollout keeps)."""
    query = 'WorkflowType = "PriceRollout" AND ExecutionStatus = "Running"'
    late: dict[str, int] = {}
    async for wf in client.list_workflows(query, limit=OLDEST_SCAN, page_size=1000):
        memo = await _memo(wf)
        count = _number(memo.get(UNCONFIRMED_MEMO))
        confirm_by = memo.get(CONFIRM_BY_MEMO)
        if count is None or count <= 0 or not isinstance(confirm_by, str):
            continue
        try:
            deadline = datetime.fromisoformat(confirm_by)
        except ValueError:
            continue
        if deadline.tzinfo is None:
            deadline = deadline.replace(tzinfo=UTC)
        if deadline <= now:
            late[wf.id] = int(count)
    return late


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
