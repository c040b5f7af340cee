"""StoreLedger: the high-volume path, micro-batching one store's sales for one business day.

Workflow id `ledger-{store_id}-{business_day}`. Sales arrive by signal-with-start (`add_sale`),
are flushed to Odoo by count or age in one `post_sales_batch` call (each sale still its own
entry, claimed by draft, so exactly once), and stock leaves in one picking per batch. A sale the
batch cannot post (invalid, unknown SKU, ...) is handed to its own SalePosting workflow, where it
is rejected or waits for ops, visible like any other exception; it never holds back the rest.
Before history grows large the ledger continues as new, carrying what it must remember.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.odoo.sales import OdooSalesActivities, PostSalesBatchInput, SaleOutcome
    from activities.odoo.stock import DecrementStockInput, OdooStockActivities
    from domain.posting import stock_lines_for
    from domain.sale import Sale, SaleRejected, parse_sale, raw_sale_identity
    from workflows.policies import odoo_batch_write
    from workflows.sale_posting import SalePosting, SalePostingInput, sale_workflow_id
    from workflows.search_attributes import BUSINESS_DAY, RETAIL_STATUS, STORE_ID


def ledger_workflow_id(store_id: str, business_day: date) -> str:
    return f"ledger-{store_id}-{business_day.isoformat()}"


class LedgerSubmission(BaseModel):
    sale: dict[str, Any]


class LedgerCarry(BaseModel):
    """What a ledger remembers across continue-as-new."""

    pending: list[Sale] = []
    handoffs: list[LedgerSubmission] = []
    posted: list[str] = []  # txn ids
    exceptions: dict[str, str] = {}  # txn id -> why it was handed to its own workflow
    received: int = 0
    duplicates: int = 0
    batches: int = 0
    runs: int = 1


class LedgerInput(BaseModel):
    store_id: str
    business_day: date
    batch_size: int = 100
    max_batch_age: timedelta = timedelta(seconds=2)
    # Close after this long without a sale; a later sale starts a new run of the same id.
    idle_close_after: timedelta = timedelta(minutes=30)
    # Continue as new past this many history events (or when the server suggests it).
    max_history_events: int = 10_000
    carry: LedgerCarry = LedgerCarry()


class LedgerProgress(BaseModel):
    store_id: str
    business_day: date
    received: int
    posted: int
    pending: int
    duplicates: int
    batches: int
    runs: int
    exceptions: dict[str, str]


@workflow.defn
class StoreLedger:
    @workflow.init
    def __init__(self, input: LedgerInput) -> None:
        # Signal-with-start delivers the first sale before `run` starts: state is ready here.
        self._input = input
        self._c = input.carry
        self._posted: set[str] = set(input.carry.posted)
        self._in_flight: set[str] = set()
        self._closing = False

    @workflow.run
    async def run(self, input: LedgerInput) -> LedgerProgress:
        workflow.upsert_search_attributes(
            [
                STORE_ID.value_set(input.store_id),
                BUSINESS_DAY.value_set(input.business_day.isoformat()),
                RETAIL_STATUS.value_set("Open"),
            ]
        )
        while True:
            if not self._c.pending and not self._c.handoffs:
                try:
                    await workflow.wait_condition(
                        lambda: bool(self._c.pending or self._c.handoffs or self._closing),
                        timeout=input.idle_close_after,
                    )
                except TimeoutError:
                    self._closing = True
                if self._closing and not self._c.pending and not self._c.handoffs:
                    break
            if 0 < len(self._c.pending) < input.batch_size and not self._closing:
                # Let the batch fill, up to its age limit.
                try:
                    await workflow.wait_condition(
                        lambda: len(self._c.pending) >= input.batch_size or self._closing,
                        timeout=input.max_batch_age,
                    )
                except TimeoutError:
                    pass
            await self._flush(input)
            if self._history_is_large(input):
                await workflow.wait_condition(workflow.all_handlers_finished)
                self._c.posted = sorted(self._posted)
                self._c.runs += 1
                workflow.continue_as_new(input.model_copy(update={"carry": self._c}))
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.upsert_search_attributes([RETAIL_STATUS.value_set("Closed")])
        return self.progress()

    # -- messages -------------------------------------------------------------------------------

    @workflow.signal
    def add_sale(self, submission: LedgerSubmission) -> None:
        self._c.received += 1
        try:
            sale = parse_sale(submission.sale)
        except SaleRejected:
            identity = raw_sale_identity(submission.sale)
            if identity and identity[1] in self._c.exceptions:
                self._c.duplicates += 1
            else:
                self._c.handoffs.append(submission)
            return
        if self._knows(sale.txn_id):
            self._c.duplicates += 1
            return
        self._c.pending.append(sale)
        self._update_details()

    @workflow.signal
    def close(self) -> None:
        """Flush what is pending and end this run (e.g. at end of day)."""
        self._closing = True

    @workflow.query
    def progress(self) -> LedgerProgress:
        return LedgerProgress(
            store_id=self._input.store_id,
            business_day=self._input.business_day,
            received=self._c.received,
            posted=len(self._posted),
            pending=len(self._c.pending) + len(self._in_flight),
            duplicates=self._c.duplicates,
            batches=self._c.batches,
            runs=self._c.runs,
            exceptions=dict(self._c.exceptions),
        )

    @workflow.query
    def sale_statuses(self, txn_ids: list[str]) -> dict[str, str]:
        """Per txn: posted, pending, exception (its SalePosting workflow says more), or unknown."""
        pending = {s.txn_id for s in self._c.pending} | self._in_flight
        handoff = {raw_sale_identity(h.sale) for h in self._c.handoffs}
        out = {}
        for txn in txn_ids:
            if txn in self._posted:
                out[txn] = "posted"
            elif txn in self._c.exceptions:
                out[txn] = "exception"
            elif txn in pending or any(i and i[1] == txn for i in handoff):
                out[txn] = "pending"
            else:
                out[txn] = "unknown"
        return out

    # -- batches --------------------------------------------------------------------------------

    def _knows(self, txn_id: str) -> bool:
        return (
            txn_id in self._posted
            or txn_id in self._in_flight
            or txn_id in self._c.exceptions
            or any(s.txn_id == txn_id for s in self._c.pending)
        )

    async def _flush(self, input: LedgerInput) -> None:
        batch = self._c.pending[: input.batch_size]
        del self._c.pending[: input.batch_size]
        handoffs, self._c.handoffs = self._c.handoffs, []
        if batch:
            self._in_flight = {s.txn_id for s in batch}
            outcomes = await self._post(batch)
            by_key = {s.key: s for s in batch}
            posted_sales = []
            for o in outcomes:
                if o.posted:
                    self._posted.add(o.txn_id)
                    posted_sales.append(by_key[o.key])
                    if o.already_posted:
                        self._c.duplicates += 1
                else:
                    self._c.exceptions[o.txn_id] = f"{o.error_type}: {o.reason}"
                    handoffs.append(LedgerSubmission(sale=by_key[o.key].model_dump(mode="json")))
            self._in_flight = set()
            self._c.batches += 1
            if posted_sales:
                await self._move_stock(input, posted_sales)
        for h in handoffs:
            await self._hand_off(h)
        self._update_details()

    async def _post(self, batch: list[Sale]) -> list[SaleOutcome]:
        try:
            result = await workflow.execute_activity_method(
                OdooSalesActivities.post_sales_batch,
                PostSalesBatchInput(sales=batch),
                summary=f"{len(batch)} sales",
                **odoo_batch_write(len(batch)),
            )
            return result.outcomes
        except ActivityError as e:
            # Odoo refused the whole batch (e.g. a posting-profile account is missing): every
            # sale goes to its own workflow, where ops see it and can retry once it is fixed.
            if not isinstance(e.cause, ApplicationError) or not e.cause.non_retryable:
                raise
            return [
                SaleOutcome(
                    key=s.key,
                    txn_id=s.txn_id,
                    posted=False,
                    error_type=e.cause.type,
                    reason=e.cause.message,
                )
                for s in batch
            ]

    async def _move_stock(self, input: LedgerInput, sales: list[Sale]) -> None:
        keys = sorted(s.key for s in sales)
        digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
        origin = f"POS:{input.store_id}:{input.business_day.isoformat()}:batch-{digest}"
        await workflow.execute_activity_method(
            OdooStockActivities.decrement_stock,
            DecrementStockInput(origin=origin, lines=stock_lines_for(sales)),
            summary=f"stock for {len(sales)} sales",
            **odoo_batch_write(len(sales)),
        )

    async def _hand_off(self, submission: LedgerSubmission) -> None:
        identity = raw_sale_identity(submission.sale)
        if identity:
            self._c.exceptions.setdefault(identity[1], "rejected: see its SalePosting workflow")
        try:
            await workflow.start_child_workflow(
                SalePosting.run,
                SalePostingInput(sale=submission.sale, source=workflow.info().workflow_id),
                id=sale_workflow_id(submission.sale),
                parent_close_policy=ParentClosePolicy.ABANDON,
            )
        except WorkflowAlreadyStartedError:
            pass  # that sale already has its own workflow: nothing is lost

    def _history_is_large(self, input: LedgerInput) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > input.max_history_events
        )

    def _update_details(self) -> None:
        p = self.progress()
        workflow.set_current_details(
            f"**{p.posted}** posted, {p.pending} pending, {p.duplicates} duplicates absorbed, "
            f"{len(p.exceptions)} exceptions, {p.batches} batches (run {p.runs})"
        )
