"""SalePosting: one POS sale becomes exactly one posted Odoo entry, then its stock moves.

Workflow id `sale:{store_id}:{txn_id}` (domain/ids.py): a resubmitted sale is absorbed by
Temporal itself.
Outcomes are visible in the Web UI through the `RetailStatus` search attribute:
Posted, Rejected (invalid input, kept with its reasons), NeedsAttention (Odoo refused it: ops
fix the cause and send `retry`, or `dismiss`), Failed (dismissed or left unattended).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.customers import CustomerSalesInput, CustomerSyncActivities
    from activities.odoo.sales import OdooSalesActivities, PostSaleInput, PostSaleResult
    from activities.odoo.stock import (
        DecrementStockInput,
        DecrementStockResult,
        OdooStockActivities,
    )
    from domain.ids import business_id
    from domain.posting import stock_lines_for
    from domain.sale import (
        Sale,
        SaleRejected,
        parse_sale,
        raw_business_day,
        raw_sale_identity,
        sale_key,
        unidentified_key,
    )
    from workflows.inventory_publisher import stock_moved
    from workflows.policies import ODOO_WRITE, TEMPORAL_READ
    from workflows.search_attributes import BUSINESS_DAY, STORE_ID, show_status

T = TypeVar("T")

# Patch: a rejected sale carries the BusinessDay its raw `occurred_at` says.
REJECTED_SALE_DAY = "rejected-sale-business-day"
# Patch: a posted sale that names a customer hands it to the customer's CustomerSync.
CUSTOMER_SYNC = "customer-sync"


class SaleStatus(StrEnum):
    POSTING = "Posting"
    POSTED = "Posted"
    REJECTED = "Rejected"
    NEEDS_ATTENTION = "NeedsAttention"
    FAILED = "Failed"


EXCEPTION_STATES = (SaleStatus.REJECTED, SaleStatus.NEEDS_ATTENTION, SaleStatus.FAILED)


def posting_workflow_id(store_id: str, txn_id: str) -> str:
    """`sale:{store}:{txn}`: unambiguous whatever `-` the ids contain."""
    return business_id("sale", store_id, txn_id)


def legacy_posting_workflow_id(store_id: str, txn_id: str) -> str:
    """The id sales were started under before ids were joined by `:` (ambiguous: store `A-1`
    txn `2` and store `A` txn `1-2` share it). Only status lookups still read it."""
    return f"sale-{store_id}-{txn_id}"


def sale_workflow_id(raw: dict[str, Any] | str, legacy: bool = False) -> str:
    """The workflow id of a sale as received, even an invalid one (it is kept, rejected).
    `legacy`: the id it had before ids were joined by `:` (replaying older ledgers only)."""
    identity = raw_sale_identity(raw)
    if identity is None:
        if legacy:
            return f"sale-unidentified-{unidentified_key(raw)}"
        return business_id("sale-unidentified", unidentified_key(raw))
    if legacy:
        return legacy_posting_workflow_id(*identity)
    return posting_workflow_id(*identity)


class SalePostingInput(BaseModel):
    # The sale as received: a JSON object, or the text of a line that was not one. Validation
    # happens in the workflow so that a rejected sale is kept, with its reasons, in history.
    sale: dict[str, Any] | str
    source: str = "api"
    # How long a sale Odoo refused waits for ops (`retry` / `dismiss`) before it is Failed.
    attention_timeout: timedelta = timedelta(days=7)
    # The stock key of the path that handed this sale over (a ledger batch that failed as a
    # whole): an entry that batch posted names it, and this workflow moves its goods.
    stock_origin: str | None = None


class OpsDecision(BaseModel):
    by: str
    comment: str = ""


class SalePostingResult(BaseModel):
    key: str | None
    status: SaleStatus
    reasons: list[str] = []
    move_id: int | None = None
    move_name: str | None = None
    already_posted: bool = False
    picking_name: str | None = None
    picking_id: int | None = None
    # Set when another path's picking (e.g. a ledger batch) carries this sale's goods.
    stock_origin: str | None = None
    # Set when a summary entry holds the sale (summary mode): its ref, `SUM:{store}:{day}:{batch}`.
    summary_ref: str | None = None
    decided_by: str | None = None


@workflow.defn
class SalePosting:
    def __init__(self) -> None:
        self._result = SalePostingResult(key=None, status=SaleStatus.POSTING)
        self._decision: tuple[str, OpsDecision] | None = None

    @workflow.run
    async def run(self, input: SalePostingInput) -> SalePostingResult:
        identity = raw_sale_identity(input.sale)
        if identity:
            self._result.key = sale_key(*identity)
            workflow.upsert_search_attributes([STORE_ID.value_set(identity[0])])
        try:
            sale = parse_sale(input.sale)
        except SaleRejected as e:
            self._result.reasons = [str(err) for err in e.errors]
            day = raw_business_day(input.sale)
            if day and workflow.patched(REJECTED_SALE_DAY):
                # Found in its day's exception inbox, and counted by that day's close.
                workflow.upsert_search_attributes([BUSINESS_DAY.value_set(day.isoformat())])
            return self._finish(SaleStatus.REJECTED)
        workflow.upsert_search_attributes([BUSINESS_DAY.value_set(sale.business_day.isoformat())])
        self._set_status(SaleStatus.POSTING)

        posted = await self._until_done(
            "post the journal entry",
            input.attention_timeout,
            lambda: workflow.execute_activity_method(
                OdooSalesActivities.post_sale,
                PostSaleInput(sale=sale, stock_origin=input.stock_origin),
                **ODOO_WRITE,
            ),
        )
        if posted is None:
            return self._finish(SaleStatus.FAILED)
        self._record_posting(posted)
        if not posted.owns_stock:
            # Another path posted this sale's entry and moves its goods (docs/architecture.md,
            # "Exactly-once stock"): moving them here too would take them out twice.
            self._result.stock_origin = posted.stock_origin
            await self._sync_customer(sale)
            return self._finish(SaleStatus.POSTED)

        # The entry was posted by this run for the first time: no picking of the sale can exist
        # yet, so the first try skips the claim's read (activities/odoo/stock.py). Any later
        # try (after ops retried a refusal) claims.
        first_try = [not posted.already_posted]

        def move_stock() -> Awaitable[DecrementStockResult]:
            new_origin, first_try[0] = first_try[0], False
            return workflow.execute_activity_method(
                OdooStockActivities.decrement_stock,
                DecrementStockInput(
                    origin=sale.key, lines=stock_lines_for([sale]), new_origin=new_origin
                ),
                **ODOO_WRITE,
            )

        stock = await self._until_done("move the stock", input.attention_timeout, move_stock)
        if stock is None:
            return self._finish(SaleStatus.FAILED)
        self._result.picking_id = stock.picking_id
        self._result.picking_name = stock.picking_name
        await stock_moved(stock)
        await self._sync_customer(sale)
        return self._finish(SaleStatus.POSTED)

    @workflow.signal
    def retry(self, decision: OpsDecision) -> None:
        """Ops fixed the cause in Odoo (e.g. created the SKU): try again."""
        self._decision = ("retry", decision)

    @workflow.signal
    def dismiss(self, decision: OpsDecision) -> None:
        """Ops will handle this sale outside retailflow: end it as Failed."""
        self._decision = ("dismiss", decision)

    @workflow.query
    def status(self) -> SalePostingResult:
        return self._result

    # -- steps ----------------------------------------------------------------------------------

    async def _sync_customer(self, sale: Sale) -> None:
        """The sale's customer, its consent and points, to its CustomerSync (docs/customers.md)."""
        if sale.customer is not None and workflow.patched(CUSTOMER_SYNC):
            await workflow.execute_activity_method(
                CustomerSyncActivities.request_customer_sync,
                CustomerSalesInput(sales=[sale]),
                **TEMPORAL_READ,
            )

    async def _until_done(
        self, step: str, attention_timeout: timedelta, attempt: Callable[[], Awaitable[T]]
    ) -> T | None:
        """Run a step; when Odoo refuses it, wait for ops to retry or dismiss. None = given up."""
        while True:
            try:
                return await attempt()
            except ActivityError as e:
                cause = e.cause
                if not isinstance(cause, ApplicationError) or not cause.non_retryable:
                    raise
                self._result.reasons = [f"{step}: {cause.type}: {cause.message}"]
            self._set_status(SaleStatus.NEEDS_ATTENTION)
            self._decision = None
            try:
                await workflow.wait_condition(
                    lambda: self._decision is not None, timeout=attention_timeout
                )
            except TimeoutError:
                self._result.reasons.append(f"no ops decision within {attention_timeout}")
                return None
            assert self._decision is not None
            action, decision = self._decision
            self._result.decided_by = decision.by
            if action == "dismiss":
                self._result.reasons.append(f"dismissed by {decision.by}: {decision.comment}")
                return None
            self._set_status(SaleStatus.POSTING)

    def _record_posting(self, posted: PostSaleResult) -> None:
        self._result.move_id = posted.move_id
        self._result.move_name = posted.move_name
        self._result.already_posted = posted.already_posted
        self._result.reasons = []

    def _set_status(self, status: SaleStatus) -> None:
        self._result.status = status
        move = self._result.move_name or (
            f"entry {self._result.move_id}" if self._result.move_id else None
        )
        show_status(status.value, f"`{move}`" if move else "", reasons=self._result.reasons)

    def _finish(self, status: SaleStatus) -> SalePostingResult:
        self._set_status(status)
        return self._result
