"""Requesting and deciding refunds: shared by the CLI, the demo and the tests."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain.approval import AssertionRefused
from domain.refund import RefundRejected, RefundRequest, load_policy, parse_refund
from domain.validation import FieldError
from workers.identity import trust_from
from workers.settings import Settings
from workflows.refund import (
    Refund,
    RefundInput,
    RefundResult,
    RefundStatus,
    legacy_refund_workflow_id,
    refund_workflow_id,
)
from workflows.search_attributes import STORE_ID


async def request_refund(
    client: Client, settings: Settings, raw: dict[str, Any], assertion: str | None = None
) -> tuple[RefundRequest, WorkflowHandle[Refund, RefundResult], bool]:
    """Validate (RefundRejected names each field) and start the refund's workflow.
    `assertion` is the requester's signed `request` assertion for this refund: who requested
    is the person it names (its display name replaces `requested_by`); the workflow verifies
    it again against the trusted keys it is given (the settings' public keys).
    Returns (request, handle, duplicate): a refund id already requested is absorbed, also
    one requested under the id refunds had before ids were joined by `:`."""
    trust = trust_from(settings)
    refund_id = raw.get("refund_id")
    if isinstance(refund_id, str):
        try:
            claims = trust.verify(assertion, datetime.now(UTC), refund_id, "request")
        except AssertionRefused as e:
            raise RefundRejected([FieldError(field="assertion", message=str(e))]) from None
        raw = {**raw, "requested_by": claims.name}
    request = parse_refund(raw)
    legacy = client.get_workflow_handle_for(
        Refund.run, legacy_refund_workflow_id(request.refund_id)
    )
    try:
        await legacy.describe()
        await _count_absorbed(legacy)
        return request, legacy, True
    except RPCError as e:
        if e.status != RPCStatusCode.NOT_FOUND:
            raise
    handle = client.get_workflow_handle_for(Refund.run, refund_workflow_id(request.refund_id))
    try:
        handle = await client.start_workflow(
            Refund.run,
            RefundInput(
                request=raw,
                policy=load_policy(settings.refund_policy),
                trust=trust,
                request_assertion=assertion,
            ),
            id=refund_workflow_id(request.refund_id),
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(STORE_ID, request.store_id)]
            ),
            static_summary=(
                f"Refund {request.refund_id} of {request.sale_key}: "
                f"{request.amount if request.amount is not None else 'lines'}, "
                f"{request.reason}, by {request.requested_by}"
            ),
        )
    except WorkflowAlreadyStartedError:
        await _count_absorbed(handle)
        return request, handle, True
    return request, handle, False


async def _count_absorbed(handle: WorkflowHandle[Refund, RefundResult]) -> None:
    """Tell the refund it was asked for again, for the duplicates-absorbed counter (the
    requester's process has no metrics endpoint; the worker's does). Best effort: a closed
    refund is not signalled, and the answer to the requester is the same either way."""
    try:
        await handle.signal(Refund.requested_again)
    except RPCError:
        pass


async def first_verdict(
    handle: WorkflowHandle[Refund, RefundResult],
    timeout: timedelta = timedelta(seconds=60),
    poll: float = 0.25,
) -> RefundResult:
    """Wait until the refund has been checked against its sale, what was paid and the gateway:
    its state then (Rejected with its reasons, AwaitingApproval, Refunding, ...). Raises
    TimeoutError while it is still being checked after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout.total_seconds()
    while True:
        shown = await handle.query(Refund.show)
        if shown.status is not RefundStatus.CHECKING:
            return shown
        if loop.time() > deadline:
            raise TimeoutError(f"refund {handle.id} still being checked after {timeout}")
        await asyncio.sleep(poll)
