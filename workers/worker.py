"""The worker: real clients built from settings, activities bound to them, workflows registered."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    PollerBehaviorSimpleMaximum,
    Worker,
)

from activities.audit_trail import AuditTrailActivities
from activities.availability import AvailabilityActivities
from activities.catalog import CatalogActivities
from activities.customers import CustomerSyncActivities
from activities.day_close import DayCloseActivities
from activities.gateway_client import GatewayClient
from activities.inventory import InventoryActivities
from activities.odoo import odoo_activities
from activities.odoo.client import OdooClient
from activities.payments import PaymentActivities
from activities.pos import BatchedPosActivities, PosActivities
from activities.pos_client import PosClient, PosJournalReader
from activities.recon import ReconActivities
from activities.sale_refunds import SaleRefundsActivities
from activities.settlement import SettlementActivities
from domain.customer import load_loyalty_policy
from domain.posting import PostingProfile, load_profile
from workers.business_metrics import run_collector
from workers.client import connect, ensure_search_attributes, sdk_metrics_runtime
from workers.metrics import metrics, record_retry, serve_metrics
from workers.settings import Settings, refuse_unsafe_credentials
from workers.telemetry import setup_tracing
from workflows.audit_trail import AuditTrail
from workflows.catalog_sync import CatalogSync
from workflows.customer_sync import CustomerSync
from workflows.gateway_settlement import GatewaySettlement
from workflows.inventory_audit import InventoryAudit, InventoryAuditRun
from workflows.inventory_publisher import InventoryPublisher
from workflows.price_rollout import PriceRollout, StorePriceCommand
from workflows.reconciliation import Reconciliation
from workflows.refund import Refund
from workflows.sale_posting import SalePosting
from workflows.sale_refunds import SaleRefunds
from workflows.settlement import DailySettlement, StoreDayClose
from workflows.store_ledger import StoreLedger

log = logging.getLogger("retailflow.worker")

WORKFLOWS = [
    SalePosting,
    StoreLedger,
    PriceRollout,
    StorePriceCommand,
    Refund,
    SaleRefunds,
    StoreDayClose,
    DailySettlement,
    GatewaySettlement,
    Reconciliation,
    AuditTrail,
    CatalogSync,
    CustomerSync,
    InventoryAudit,
    InventoryAuditRun,
    InventoryPublisher,
]


# The module an activity is defined in -> the system it talks to (first prefix that matches).
_SYSTEMS: tuple[tuple[str, str], ...] = (
    ("activities.odoo", "odoo"),
    ("activities.pos", "pos"),
    ("activities.payments", "gateway"),
    ("activities.settlement", "gateway"),
)


def activity_system(fn: Any) -> str:
    """odoo, pos, gateway, or internal (Temporal, the audit store, several systems)."""
    module = getattr(fn, "__module__", None) or ""
    for prefix, system in _SYSTEMS:
        if module == prefix or module.startswith(prefix + ".") or module.startswith(prefix + "_"):
            return system
    return "internal"


class _CountRetries(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        if info.attempt > 1:
            try:
                record_retry(info.activity_type, activity_system(input.fn))
            except Exception:  # a metric never fails the activity
                pass
        return await self.next.execute_activity(input)


class RetryCounter(Interceptor):
    """Counts every activity attempt after the first (retailflow_activity_retries_total)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CountRetries(next)


def activity_slots(settings: Settings) -> int:
    """The worker's activity slots (and threads): Odoo RPCs take at most
    odoo_concurrency_max slots running and odoo_max_waiting waiting (the limiter refuses the
    rest at once, retryable), so max_concurrent_activities slots stay for POS, gateway and
    other work however slow Odoo gets (docs/observability.md, "Back-pressure")."""
    return (
        settings.max_concurrent_activities
        + settings.odoo_concurrency_max
        + settings.odoo_max_waiting
    )


def worker_activities(
    client: Client,
    settings: Settings,
    odoo: OdooClient,
    profile: PostingProfile,
    pos: PosClient,
    gateway: GatewayClient | None = None,
) -> list[Callable[..., Any]]:
    """Every activity the worker runs (domain/audit_log.py classifies each: a write is audited)."""
    pos_activities = PosActivities(pos)
    pos_batches = BatchedPosActivities(pos)
    gateway = gateway or GatewayClient(settings.gateway())
    payments = PaymentActivities(gateway)
    settlement = SettlementActivities(gateway)
    day_close = DayCloseActivities(client)
    recon = ReconActivities(odoo, profile, PosJournalReader(settings.pos()), gateway)
    audit = AuditTrailActivities(settings.audit_db)
    catalog = CatalogActivities(pos)
    customers = CustomerSyncActivities(load_loyalty_policy(settings.loyalty_policy))
    inventory = InventoryActivities(pos)
    return [
        *odoo_activities(odoo, profile),
        payments.payment_status,
        payments.refund_payment,
        payments.refund_state,
        settlement.list_payouts,
        settlement.payout_totals,
        SaleRefundsActivities().request_reservation,
        customers.request_customer_sync,
        customers.request_loyalty_reversal,
        pos_activities.list_stores,
        pos_activities.send_price_command,
        pos_activities.price_command_status,
        pos_batches.send_price_commands,
        pos_batches.price_command_statuses,
        day_close.close_ledgers,
        day_close.open_work,
        day_close.close_result,
        day_close.last_reconciliation,
        recon.reconcile_store_day,
        recon.odoo_day_totals,
        recon.pos_sale,
        audit.collect_audit_events,
        catalog.publish_catalog,
        catalog.catalog_command_statuses,
        catalog.catalog_versions,
        catalog.store_catalog_page,
        inventory.store_counts,
        inventory.publish_availability,
        AvailabilityActivities(client).inventory_changed,
    ]


def build_worker(
    client: Client,
    settings: Settings,
    odoo: OdooClient,
    profile: PostingProfile,
    executor: ThreadPoolExecutor,
    pos: PosClient,
    gateway: GatewayClient | None = None,
    task_queue: str | None = None,
    max_concurrent_activities: int | None = None,
) -> Worker:
    """The worker; `max_concurrent_activities` defaults to the setting (run_worker passes
    activity_slots, with an executor as large)."""
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=WORKFLOWS,
        activities=worker_activities(client, settings, odoo, profile, pos, gateway),
        activity_executor=executor,
        interceptors=[RetryCounter()],
        max_concurrent_activities=max_concurrent_activities or settings.max_concurrent_activities,
        workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(settings.workflow_pollers),
        activity_task_poller_behavior=PollerBehaviorSimpleMaximum(settings.workflow_pollers),
    )


async def run_worker(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM. Raises UnsafeCredentials (a ValueError), before connecting
    to anything, for default or live credentials where they must not be used."""
    refuse_unsafe_credentials(settings)
    setup_tracing("retailflow-worker")
    runtime = None
    if settings.sdk_metrics_port:
        runtime = sdk_metrics_runtime(settings.metrics_host, settings.sdk_metrics_port)
    client = await connect(settings.temporal, runtime=runtime)
    metrics_server = None
    if settings.metrics_port:
        metrics_server = serve_metrics(settings.metrics_host, settings.metrics_port)
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
    added = await ensure_search_attributes(client)
    if added:
        log.info("registered search attributes %s", ", ".join(added))
    profile = load_profile(settings.posting_profile)
    odoo = OdooClient(settings.odoo())
    metrics().odoo_limit = lambda: odoo.limiter.limit
    pos = PosClient(settings.pos())
    gateway = GatewayClient(settings.gateway())
    slots = activity_slots(settings)
    with ThreadPoolExecutor(max_workers=slots) as executor:
        worker = build_worker(
            client, settings, odoo, profile, executor, pos, gateway, max_concurrent_activities=slots
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info(
            "worker polling %s on %s (namespace %s), Odoo %s db %s, %d activity slots "
            "(Odoo RPCs %d..%d, %d waiting)",
            settings.task_queue,
            settings.temporal.address,
            settings.temporal.namespace,
            settings.odoo_url,
            settings.odoo_db,
            slots,
            settings.odoo_concurrency_min,
            settings.odoo_concurrency_max,
            settings.odoo_max_waiting,
        )
        # Business gauges are read from visibility only where they are served.
        collector = (
            asyncio.create_task(run_collector(client, settings.business_metrics_interval_s))
            if metrics_server is not None
            else None
        )
        try:
            async with worker:
                await stop.wait()
        finally:
            if collector is not None:
                collector.cancel()
            if metrics_server is not None:
                metrics_server.shutdown()
        await pos.aclose()
        gateway.close()
        log.info("worker stopped")
