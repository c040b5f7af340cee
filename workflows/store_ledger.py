"""StoreLedger: the high-volume path, micro-batching one store's sales for one business day.

Workflow id `ledger:{store_id}:{business_day}`. Sales arrive by signal-with-start (`add_sale`),
are flushed to Odoo by count or age in one `post_sales_batch` call (each sale still its own
entry, claimed by draft, so exactly once), and stock leaves in one picking per batch, for the
sales whose entry this batch posted (docs/architecture.md, "Exactly-once stock"). A sale the
batch cannot post (invalid, unknown SKU, ...) is handed to its own SalePosting workflow, where it
is rejected or waits for ops, visible like any other exception; it never holds back the rest.
A batch whose stock Odoo refuses is parked in the ledger (RetailStatus NeedsAttention) until ops
send `retry_stock` or `dismiss_stock`; the ledger goes on posting meanwhile and never fails.
Before history grows large the ledger continues as new, carrying what it must remember.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.customers import CustomerSalesInput, CustomerSyncActivities
    from activities.odoo.sales import OdooSalesActivities, PostSalesBatchInput, SaleOutcome
    from activities.odoo.stock import DecrementStockInput, OdooStockActivities
    from activities.odoo.summary import (
        OdooSummaryActivities,
        PostSummaryInput,
        SummaryIndexInput,
        SummaryTrace,
    )
    from domain.ids import business_id
    from domain.posting import StockLine, stock_lines_for, summary_ref
    from domain.sale import Sale, parse_sale, raw_sale_identity
    from workflows.inventory_publisher import stock_moved
    from workflows.policies import ODOO_WRITE, TEMPORAL_READ, odoo_batch_write
    from workflows.sale_posting import (
        CUSTOMER_SYNC,
        OpsDecision,
        SalePosting,
        SalePostingInput,
        sale_workflow_id,
    )
    from workflows.search_attributes import BUSINESS_DAY, RETAIL_STATUS, STORE_ID


COLON_IDS = "colon-joined-ids"

# How a ledger books its batches: `batched`, one entry per sale, posted in bulk; `summary`,
# one entry per batch (per account, tax rate and tender) listing its sales.
BATCHED, SUMMARY = "batched", "summary"
LEDGER_MODES = (BATCHED, SUMMARY)


def legacy_ledger_workflow_id(store_id: str, business_day: date) -> str:
    """The id ledgers had before ids were joined by `:`: still found while they run."""
    return f"ledger-{store_id}-{business_day.isoformat()}"


def ledger_workflow_id(store_id: str, business_day: date) -> str:
    """`ledger:{store}:{day}`. Ledgers started under the old `ledger-{store}-{day}` id run to
    their idle close; lookups find ledgers by their StoreId search attribute, not by id."""
    return business_id("ledger", store_id, business_day.isoformat())


# The error type of sales whose batch failed as a whole (their own workflow says why).
BATCH_FAILED = "BatchFailed"


class LedgerSubmission(BaseModel):
    sale: dict[str, Any]
    # Set when a batch failed as a whole: entries it posted before failing name its stock key,
    # and the sale's own workflow takes over their stock (nobody else would move it).
    stock_origin: str | None = None


class LedgerSubmissions(BaseModel):
    """Many sales in one signal (`add_sales`): what a bulk submission sends per chunk."""

    submissions: list[LedgerSubmission]


class ParkedStock(BaseModel):
    """A batch's goods Odoo would not move: kept, with why, until ops retry or dismiss it."""

    origin: str
    lines: list[StockLine]
    txn_ids: list[str]
    reason: str


class LedgerCarry(BaseModel):
    """What a ledger remembers across continue-as-new."""

    pending: list[Sale] = []
    handoffs: list[LedgerSubmission] = []
    posted: list[str] = []  # txn ids
    exceptions: dict[str, str] = {}  # txn id -> why it was handed to its own workflow
    # Txn ids handed off because the sale was invalid: a corrected sale may replace them.
    rejected: list[str] = []
    # Corrected sales for a rejected txn: each starts a new run of the sale's own workflow.
    corrections: list[LedgerSubmission] = []
    stock_problems: list[ParkedStock] = []
    stock_retries: list[ParkedStock] = []
    # What ops decided about parked stock, and who: "origin: retried/dismissed by whom, why",
    # and decisions ignored because they named nobody.
    stock_dismissed: list[str] = []
    # Summary mode: the summaries this store-day has, with the txn ids each holds (read from
    # Odoo when a run starts after an earlier run closed, so no sale is summarised twice).
    summaries: list[SummaryTrace] = []
    summaries_loaded: bool = False
    received: int = 0
    duplicates: int = 0
    batches: int = 0
    runs: int = 1


class LedgerInput(BaseModel):
    store_id: str
    business_day: date
    # `batched` or `summary`, fixed for a run: a sale sent to a running ledger is booked the
    # way that run books.
    mode: str = BATCHED
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
    stock_problems: list[ParkedStock] = []
    stock_decisions: list[str] = []
    mode: str = BATCHED
    summaries: int = 0


class SaleTrace(BaseModel):
    """Where a ledger booked one sale: its summary entry and picking (summary mode)."""

    txn_id: str
    status: str
    summary_ref: str | None = None
    move_name: str | None = None
    picking_name: str | None = None


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
        self._trace: dict[str, SummaryTrace] = {
            txn: t for t in input.carry.summaries for txn in t.txn_ids
        }

    def _has_work(self) -> bool:
        c = self._c
        return bool(c.pending or c.handoffs or c.corrections or c.stock_retries)

    @workflow.run
    async def run(self, input: LedgerInput) -> LedgerProgress:
        workflow.upsert_search_attributes(
            [
                STORE_ID.value_set(input.store_id),
                BUSINESS_DAY.value_set(input.business_day.isoformat()),
                RETAIL_STATUS.value_set("NeedsAttention" if self._c.stock_problems else "Open"),
            ]
        )
        while True:
            if not self._has_work():
                try:
                    await workflow.wait_condition(
                        lambda: self._has_work() or self._closing,
                        timeout=input.idle_close_after,
                    )
                except TimeoutError:
                    self._closing = True
                if self._closing and not self._has_work():
                    if not self._c.stock_problems:
                        break
                    # Parked stock keeps the ledger open: ops must retry or dismiss it.
                    await workflow.wait_condition(
                        lambda: self._has_work() or not self._c.stock_problems
                    )
                    continue
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
        self._take(submission)
        self._update_details()

    @workflow.signal
    def add_sales(self, many: LedgerSubmissions) -> None:
        """Each sale as if it came alone by `add_sale`, in order; the details shown once."""
        for submission in many.submissions:
            self._take(submission)
        self._update_details()

    def _take(self, submission: LedgerSubmission) -> None:
        self._c.received += 1
        try:
            sale = parse_sale(submission.sale)
            identity = raw_sale_identity(submission.sale)
        except Exception:  # SaleRejected, or input too odd to even parse: kept, never raised
            try:
                identity = raw_sale_identity(submission.sale)
            except Exception:
                identity = None
            if identity and identity[1] in self._c.exceptions:
                self._c.duplicates += 1
            else:
                self._c.handoffs.append(submission)
            return
        if sale.txn_id in self._c.rejected:
            # The corrected sale of a rejected one: its own workflow runs again, with it.
            self._c.rejected.remove(sale.txn_id)
            self._c.exceptions[sale.txn_id] = "corrected sale: see its SalePosting workflow"
            self._c.corrections.append(submission)
            return
        if self._knows(sale.txn_id):
            self._c.duplicates += 1
            return
        self._c.pending.append(sale)

    @workflow.signal
    def close(self) -> None:
        """Flush what is pending and end this run (e.g. at end of day)."""
        self._closing = True

    @workflow.signal
    def retry_stock(self, decision: OpsDecision) -> None:
        """Ops fixed the cause in Odoo: move every parked batch's stock again (same origins)."""
        if not self._decided_by_someone("retry_stock", decision):
            return
        for parked in self._c.stock_problems:
            self._c.stock_dismissed.append(
                f"{parked.origin}: retried by {decision.by}: {decision.comment}"
            )
        self._c.stock_retries.extend(self._c.stock_problems)
        self._c.stock_problems = []

    @workflow.signal
    def dismiss_stock(self, decision: OpsDecision) -> None:
        """Ops will move the parked batches' goods by hand: forget them, noting who decided."""
        if not self._decided_by_someone("dismiss_stock", decision):
            return
        for parked in self._c.stock_problems:
            self._c.stock_dismissed.append(
                f"{parked.origin}: dismissed by {decision.by}: {decision.comment}"
            )
        self._c.stock_problems = []
        self._show_status()

    def _decided_by_someone(self, signal: str, decision: OpsDecision) -> bool:
        if decision.by.strip():
            return True
        self._c.stock_dismissed.append(f"{signal} ignored: it must say who decided (`by`)")
        self._update_details()
        return False

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
            stock_problems=list(self._c.stock_problems),
            stock_decisions=list(self._c.stock_dismissed),
            mode=self._input.mode,
            summaries=len(self._c.summaries),
        )

    @workflow.query
    def sale_traces(self, txn_ids: list[str]) -> dict[str, SaleTrace]:
        """Per txn: its status (as `sale_statuses`) and, when a summary holds it, which one."""
        statuses = self.sale_statuses(txn_ids)
        out = {}
        for txn, status in statuses.items():
            t = self._trace.get(txn)
            out[txn] = SaleTrace(
                txn_id=txn,
                status=status,
                summary_ref=t.ref if t else None,
                move_name=t.move_name if t else None,
                picking_name=t.picking_name if t else None,
            )
        return out

    @workflow.query
    def sale_statuses(self, txn_ids: list[str]) -> dict[str, str]:
        """Per txn: posted, pending, exception (its SalePosting workflow says more), or unknown."""
        pending = {s.txn_id for s in self._c.pending} | self._in_flight
        waiting = [*self._c.handoffs, *self._c.corrections]
        handoff = {raw_sale_identity(h.sale) for h in waiting}
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
        if input.mode == SUMMARY and not self._c.summaries_loaded:
            await self._load_summaries(input)
        batch = self._c.pending[: input.batch_size]
        del self._c.pending[: input.batch_size]
        handoffs, self._c.handoffs = self._c.handoffs, []
        corrections, self._c.corrections = self._c.corrections, []
        retries, self._c.stock_retries = self._c.stock_retries, []
        if batch:
            # The batch's stock key, made once here (replay gives the same one): every sale
            # whose entry this batch posts names it, so only this batch moves their goods.
            if input.mode == SUMMARY:
                origin = summary_ref(input.store_id, input.business_day, workflow.uuid4().hex[:16])
            else:
                origin = business_id(
                    "batch", input.store_id, input.business_day.isoformat(), workflow.uuid4().hex
                )
            self._in_flight = {s.txn_id for s in batch}
            if input.mode == SUMMARY:
                outcomes = await self._post_summary(input, batch, origin)
            else:
                outcomes = await self._post(batch, origin)
            by_key = {s.key: s for s in batch}
            posted_sales, booked = [], []
            for o in outcomes:
                if o.posted:
                    booked.append(o.txn_id)
                    if o.owns_stock:
                        posted_sales.append(by_key[o.key])
                    if o.already_posted:
                        self._c.duplicates += 1
                else:
                    self._c.exceptions[o.txn_id] = f"{o.error_type}: {o.reason}"
                    handoffs.append(
                        LedgerSubmission(
                            sale=by_key[o.key].model_dump(mode="json"),
                            stock_origin=origin if o.error_type == BATCH_FAILED else None,
                        )
                    )
            # Booked, but reported posted only once their goods have moved (or are parked).
            self._in_flight = set(booked)
            self._c.batches += 1
            if posted_sales:
                picking = await self._move_stock(
                    ParkedStock(
                        origin=origin,
                        lines=stock_lines_for(posted_sales),
                        txn_ids=[s.txn_id for s in posted_sales],
                        reason="",
                    )
                )
                trace = self._trace.get(posted_sales[0].txn_id)
                if picking and trace and trace.ref == origin:
                    trace.picking_name = picking
            self._posted.update(booked)
            self._in_flight = set()
            customers = [by_key[o.key] for o in outcomes if o.posted and by_key[o.key].customer]
            if customers and workflow.patched(CUSTOMER_SYNC):
                # Their customers, consent and points, to each customer's CustomerSync.
                await workflow.execute_activity_method(
                    CustomerSyncActivities.request_customer_sync,
                    CustomerSalesInput(sales=customers),
                    summary=f"customers of {len(customers)} sales",
                    **TEMPORAL_READ,
                )
        for parked in retries:
            await self._move_stock(parked)
        if retries:
            self._show_status()
        for h in handoffs:
            await self._hand_off(h)
        for h in corrections:
            await self._hand_off(h, correction=True)
        self._update_details()

    async def _post(self, batch: list[Sale], origin: str) -> list[SaleOutcome]:
        try:
            result = await workflow.execute_activity_method(
                OdooSalesActivities.post_sales_batch,
                PostSalesBatchInput(sales=batch, stock_origin=origin),
                summary=f"{len(batch)} sales",
                **odoo_batch_write(len(batch)),
            )
            return result.outcomes
        except ActivityError as e:
            return self._batch_failed(batch, e, BATCH_FAILED)

    async def _post_summary(
        self, input: LedgerInput, batch: list[Sale], ref: str
    ) -> list[SaleOutcome]:
        """One summary entry for the batch; the sales it cannot hold come back refused."""
        try:
            result = await workflow.execute_activity_method(
                OdooSummaryActivities.post_summary,
                PostSummaryInput(
                    store_id=input.store_id, business_day=input.business_day, ref=ref, sales=batch
                ),
                summary=f"summary of {len(batch)} sales",
                **odoo_batch_write(len(batch)),
            )
        except ActivityError as e:
            # Nothing names these sales' stock: each goes on alone, from scratch.
            return self._batch_failed(batch, e, "SummaryFailed")
        if result.included:
            trace = SummaryTrace(
                ref=ref,
                move_id=result.move_id,
                move_name=result.move_name,
                txn_ids=[s.txn_id for s in result.included],
            )
            self._c.summaries.append(trace)
            for txn in trace.txn_ids:
                self._trace[txn] = trace
        return result.outcomes

    async def _load_summaries(self, input: LedgerInput) -> None:
        """What earlier runs of this store-day summarised (a run starts knowing nothing after
        an idle close): those sales are posted, and a resubmission of one is a duplicate."""
        index = await workflow.execute_activity_method(
            OdooSummaryActivities.summarised_sales,
            SummaryIndexInput(store_id=input.store_id, business_day=input.business_day),
            summary="summaries already posted for this store-day",
            **ODOO_WRITE,
        )
        known = {t.ref for t in self._c.summaries}
        for trace in index.summaries:
            if trace.ref in known:
                continue
            self._c.summaries.append(trace)
            for txn in trace.txn_ids:
                self._posted.add(txn)
                self._trace[txn] = trace
        self._c.summaries_loaded = True
        fresh = [s for s in self._c.pending if s.txn_id not in self._posted]
        self._c.duplicates += len(self._c.pending) - len(fresh)
        self._c.pending = fresh

    @staticmethod
    def _batch_failed(batch: list[Sale], e: ActivityError, error_type: str) -> list[SaleOutcome]:
        # Odoo refused the whole batch (e.g. a posting-profile account is missing): every
        # sale goes to its own workflow, where ops see it and can retry once it is fixed.
        cause = e.cause
        why = cause.type if isinstance(cause, ApplicationError) else type(cause or e).__name__
        return [
            SaleOutcome(
                key=s.key,
                txn_id=s.txn_id,
                posted=False,
                error_type=error_type,
                reason=f"{why}: {cause or e}",
            )
            for s in batch
        ]

    async def _move_stock(self, stock: ParkedStock) -> str | None:
        """Move a batch's goods (the picking's name); a refusal is parked for ops, never fails
        the ledger."""
        try:
            result = await workflow.execute_activity_method(
                OdooStockActivities.decrement_stock,
                DecrementStockInput(origin=stock.origin, lines=stock.lines),
                summary=f"stock for {len(stock.txn_ids)} sales",
                **odoo_batch_write(len(stock.txn_ids)),
            )
            await stock_moved(result)
            return result.picking_name
        except ActivityError as e:
            cause = e.cause
            why = (
                f"{cause.type}: {cause.message}"
                if isinstance(cause, ApplicationError)
                else str(cause or e)
            )
            self._c.stock_problems.append(
                stock.model_copy(update={"reason": f"move the stock: {why}"})
            )
            self._show_status()
            return None

    async def _hand_off(self, submission: LedgerSubmission, correction: bool = False) -> None:
        identity = raw_sale_identity(submission.sale)
        if identity and not correction and identity[1] not in self._c.exceptions:
            # Not refused by Odoo (that reason is already recorded): invalid, so rejected.
            self._c.rejected.append(identity[1])
            self._c.exceptions[identity[1]] = "rejected: see its SalePosting workflow"
        # Ledgers that handed sales off before ids were joined by `:` replay with the old id.
        legacy = not workflow.patched(COLON_IDS)
        try:
            await workflow.start_child_workflow(
                SalePosting.run,
                SalePostingInput(
                    sale=submission.sale,
                    source=workflow.info().workflow_id,
                    stock_origin=submission.stock_origin,
                ),
                id=sale_workflow_id(submission.sale, legacy=legacy),
                parent_close_policy=ParentClosePolicy.ABANDON,
                # A sale id runs once, except a rejected sale's corrected one (a new run).
                id_reuse_policy=(
                    WorkflowIDReusePolicy.ALLOW_DUPLICATE
                    if correction
                    else WorkflowIDReusePolicy.REJECT_DUPLICATE
                ),
            )
        except WorkflowAlreadyStartedError:
            pass  # that sale already has its own workflow: nothing is lost
        except Exception as e:  # e.g. an id Temporal refuses: kept in exceptions, never raised
            key = identity[1] if identity else sale_workflow_id(submission.sale)
            self._c.exceptions[key] = f"could not start its own workflow: {e}"

    def _history_is_large(self, input: LedgerInput) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > input.max_history_events
        )

    def _show_status(self) -> None:
        workflow.upsert_search_attributes(
            [RETAIL_STATUS.value_set("NeedsAttention" if self._c.stock_problems else "Open")]
        )
        self._update_details()

    def _update_details(self) -> None:
        p = self.progress()
        stock = (
            f", **{len(p.stock_problems)} batches' stock needs attention** "
            f"({p.stock_problems[0].reason})"
            if p.stock_problems
            else ""
        )
        workflow.set_current_details(
            f"**{p.posted}** posted, {p.pending} pending, {p.duplicates} duplicates absorbed, "
            f"{len(p.exceptions)} exceptions, {p.batches} batches (run {p.runs}){stock}"
        )
