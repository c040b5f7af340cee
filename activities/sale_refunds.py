"""The Refund workflow's way into its sale's refund lock (workflows/sale_refunds.py): an
update-with-start through the worker's Temporal client, which a workflow cannot do itself."""

from __future__ import annotations

import asyncio
import contextlib

from temporalio import activity
from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateStage
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from activities.odoo.refunds import ReserveRefundInput
from domain.ids import business_id
from workflows.sale_refunds import (
    ReserveAnswer,
    SaleRefunds,
    SaleRefundsInput,
    sale_refunds_workflow_id,
)

HEARTBEAT_EVERY_S = 10.0


class SaleRefundsActivities:
    @activity.defn
    async def reserve_in_sale_lock(self, input: ReserveRefundInput) -> ReserveAnswer:
        """Ask the sale's SaleRefunds workflow (started if it is not running) to reserve this
        refund, and wait for its decision. The update id is the refund's: a retry of this
        activity joins the same decision instead of asking twice."""
        client = activity.client()
        request = input.request
        start = WithStartWorkflowOperation(
            SaleRefunds.run,
            SaleRefundsInput(store_id=request.store_id, txn_id=request.txn_id),
            id=sale_refunds_workflow_id(request.store_id, request.txn_id),
            task_queue=activity.info().task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=f"Refund reservations of {request.sale_key}",
        )
        beat = asyncio.create_task(_heartbeat(request.refund_id))
        try:
            update = await client.start_update_with_start_workflow(
                SaleRefunds.reserve,
                input,
                start_workflow_operation=start,
                id=business_id("reserve", request.refund_id),
                wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            )
            return await update.result()
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat


async def _heartbeat(refund_id: str) -> None:
    while True:
        activity.heartbeat(f"waiting for the sale's decision on {refund_id}")
        await asyncio.sleep(HEARTBEAT_EVERY_S)
