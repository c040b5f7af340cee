"""The Refund workflow's way into its sale's refund lock (workflows/sale_refunds.py): a
signal-with-start through the worker's Temporal client, which a workflow cannot do itself. It
returns as soon as the request is delivered: the answer comes back to the Refund as a signal,
so no worker slot is held while the refund waits its turn."""

from __future__ import annotations

from temporalio import activity
from temporalio.common import WorkflowIDReusePolicy

from workflows.sale_refunds import (
    ReservationRequest,
    SaleRefunds,
    SaleRefundsInput,
    sale_refunds_workflow_id,
)


class SaleRefundsActivities:
    @activity.defn
    async def request_reservation(self, input: ReservationRequest) -> None:
        """Deliver the refund's request to its sale's SaleRefunds workflow (started if it is not
        running). Delivering it twice is harmless: the sale answers each refund once."""
        request = input.reserve.request
        await activity.client().start_workflow(
            SaleRefunds.run,
            SaleRefundsInput(store_id=request.store_id, txn_id=request.txn_id),
            id=sale_refunds_workflow_id(request.store_id, request.txn_id),
            task_queue=activity.info().task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            start_signal="request",
            start_signal_args=[input],
            static_summary=f"Refund reservations of {request.sale_key}",
        )
