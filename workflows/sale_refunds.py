"""SaleRefunds: the one place where a sale's refund reservations are decided, one at a time.

Workflow id `sale-refunds:{store}:{txn}`. Concurrent refunds of one sale must never together
exceed what it paid; Odoo cannot decide that (PostgreSQL makes commits visible out of id order,
and a retried attempt may find a draft it never checked). Each Refund workflow therefore asks
this workflow, through the activity `SaleRefundsActivities.reserve_in_sale_lock` (an
update-with-start: a workflow cannot send an Update itself), and this workflow runs the reserve
activity under a lock: every decision reads every other refund of the sale after the previous
decision has finished. It ends after a quiet period; the next request starts a new run.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.odoo.refunds import OdooRefundActivities, Reservation, ReserveRefundInput
    from domain.ids import business_id
    from workflows.policies import ODOO_WRITE

# A run ends when no reservation was asked for this long (and none is running).
QUIET = timedelta(minutes=10)


def sale_refunds_workflow_id(store_id: str, txn_id: str) -> str:
    return business_id("sale-refunds", store_id, txn_id)


class SaleRefundsInput(BaseModel):
    store_id: str
    txn_id: str


class ReserveAnswer(BaseModel):
    """The reservation, or why the refund does not fit (`RefundExceedsSale: ...`)."""

    reservation: Reservation | None = None
    refused: str | None = None


@workflow.defn
class SaleRefunds:
    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._sale: SaleRefundsInput | None = None
        self._decided = 0

    @workflow.run
    async def run(self, input: SaleRefundsInput) -> int:
        self._sale = input
        while True:
            seen = self._decided
            try:
                await workflow.wait_condition(
                    lambda seen=seen: self._decided != seen,  # type: ignore[misc]
                    timeout=QUIET,
                )
            except TimeoutError:
                if workflow.all_handlers_finished():
                    break
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(input)
        return self._decided

    @workflow.update
    async def reserve(self, input: ReserveRefundInput) -> ReserveAnswer:
        async with self._lock:
            try:
                reservation = await workflow.execute_activity_method(
                    OdooRefundActivities.reserve_refund, input, **ODOO_WRITE
                )
            except ActivityError as e:
                cause = e.cause
                if isinstance(cause, ApplicationError) and cause.non_retryable:
                    return ReserveAnswer(refused=f"{cause.type}: {cause.message}")
                raise
            finally:
                self._decided += 1
            return ReserveAnswer(reservation=reservation)

    @reserve.validator
    def _validate_reserve(self, input: ReserveRefundInput) -> None:
        sale = self._sale
        if sale is not None and (input.request.store_id, input.request.txn_id) != (
            sale.store_id,
            sale.txn_id,
        ):
            raise ValueError(
                f"refund {input.request.refund_id} is of sale {input.request.sale_key}, "
                f"not of {sale.store_id}:{sale.txn_id}"
            )
