"""SaleRefunds: the one place where a sale's refund reservations are decided, one at a time.

Workflow id `sale-refunds:{store}:{txn}`. Concurrent refunds of one sale must never together
exceed what it paid; Odoo cannot decide that (PostgreSQL makes commits visible out of id order,
and a retried attempt may find a draft it never checked). Each Refund workflow therefore asks
this workflow, by signal-with-start from the activity `SaleRefundsActivities.request_reservation`
(a workflow cannot signal-with-start itself), and waits for the answer as a signal
(`Refund.reservation_decided`). This workflow runs the reserve activity for one request at a
time, in arrival order: every decision reads every other refund of the sale after the previous
decision has finished.

Nothing waits while holding a worker slot: the asking activity returns once its request is
delivered, so a burst of refunds cannot starve the reserve activity it is waiting for. A request
repeated (an activity retry, a Refund that asks again after a long wait) is answered once: a
queued one is not queued twice, a decided one gets the same answer again. The run ends after a
quiet period; the next request starts a new run (and the reserve activity, idempotent by refund
key, finds the draft a decided refund already holds).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.odoo.refunds import OdooRefundActivities, Reservation, ReserveRefundInput
    from domain.ids import business_id
    from workflows.policies import ODOO_WRITE

# A run ends when no reservation was asked for this long (and none is waiting).
QUIET = timedelta(minutes=10)
# Answers a run keeps to repeat to a Refund that asks again.
KEEP_ANSWERS = 200


def sale_refunds_workflow_id(store_id: str, txn_id: str) -> str:
    return business_id("sale-refunds", store_id, txn_id)


class SaleRefundsInput(BaseModel):
    store_id: str
    txn_id: str


class ReservationRequest(BaseModel):
    reserve: ReserveRefundInput
    # The Refund workflow that waits for the answer.
    reply_to: str


class ReserveAnswer(BaseModel):
    """The reservation, or why the refund does not fit (`RefundExceedsSale: ...`)."""

    refund_id: str
    reservation: Reservation | None = None
    refused: str | None = None


@workflow.defn
class SaleRefunds:
    def __init__(self) -> None:
        self._queue: list[ReservationRequest] = []
        self._answers: dict[str, ReserveAnswer] = {}
        self._resend: list[ReservationRequest] = []
        self._ignored: list[str] = []

    @workflow.run
    async def run(self, input: SaleRefundsInput) -> int:
        decided = 0
        while True:
            try:
                await workflow.wait_condition(
                    lambda: bool(self._queue or self._resend), timeout=QUIET
                )
            except TimeoutError:
                if not self._queue and not self._resend:
                    break
            while self._resend:
                again = self._resend.pop(0)
                await self._reply(again.reply_to, self._answers[again.reserve.request.refund_id])
            if self._queue:
                request = self._queue[0]
                answer = await self._decide(request.reserve)
                self._queue.pop(0)
                self._answers[answer.refund_id] = answer
                decided += 1
                await self._reply(request.reply_to, answer)
            if workflow.info().is_continue_as_new_suggested() and not (self._queue or self._resend):
                workflow.continue_as_new(input)
        return decided

    @workflow.signal
    def request(self, request: ReservationRequest) -> None:
        refund_id = request.reserve.request.refund_id
        sale = workflow.info().workflow_id
        if (
            sale_refunds_workflow_id(
                request.reserve.request.store_id, request.reserve.request.txn_id
            )
            != sale
        ):
            self._ignored.append(f"{refund_id}: not a refund of this sale")
            return
        if refund_id in self._answers:
            self._resend.append(request)
        elif all(q.reserve.request.refund_id != refund_id for q in self._queue):
            self._queue.append(request)

    @workflow.query
    def waiting(self) -> list[str]:
        """The refunds waiting for a decision, in order."""
        return [q.reserve.request.refund_id for q in self._queue]

    @workflow.query
    def ignored(self) -> list[str]:
        """Requests not taken, and answers nobody waited for, with why."""
        return list(self._ignored)

    async def _decide(self, reserve: ReserveRefundInput) -> ReserveAnswer:
        refund_id = reserve.request.refund_id
        try:
            reservation = await workflow.execute_activity_method(
                OdooRefundActivities.reserve_refund, reserve, **ODOO_WRITE
            )
        except ActivityError as e:
            cause = e.cause
            if isinstance(cause, ApplicationError) and cause.non_retryable:
                return ReserveAnswer(refund_id=refund_id, refused=f"{cause.type}: {cause.message}")
            raise
        if len(self._answers) >= KEEP_ANSWERS:
            self._answers.pop(next(iter(self._answers)))
        return ReserveAnswer(refund_id=refund_id, reservation=reservation)

    async def _reply(self, refund_workflow_id: str, answer: ReserveAnswer) -> None:
        try:
            await workflow.get_external_workflow_handle(refund_workflow_id).signal(
                "reservation_decided", answer
            )
        except FailureError:
            # The Refund has ended (cancelled, or timed out): nobody waits for this answer.
            self._ignored.append(f"{answer.refund_id}: {refund_workflow_id} no longer waits")
