"""Starting and following price rollouts: shared by the CLI, the demo and the tests."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy

from domain.pricing import Rollout, parse_rollout
from workers.settings import Settings
from workflows.price_rollout import (
    PriceRollout,
    PriceRolloutInput,
    RolloutReport,
    rollout_workflow_id,
)


async def start_rollout(
    client: Client,
    settings: Settings,
    raw: dict[str, Any],
    poll_every: timedelta = timedelta(seconds=30),
) -> tuple[Rollout, WorkflowHandle[PriceRollout, RolloutReport]]:
    """Validate (raises RolloutRejected naming each field) and start the rollout's workflow.

    A rollout id is used once: starting it again raises WorkflowAlreadyStartedError."""
    rollout = parse_rollout(raw)
    handle = await client.start_workflow(
        PriceRollout.run,
        PriceRolloutInput(
            rollout=rollout.model_dump(mode="json"),
            pricelist=settings.store_pricelist,
            callback_url=settings.confirmation_url,
            concurrency=settings.rollout_concurrency,
            poll_every=poll_every,
        ),
        id=rollout_workflow_id(rollout.rollout_id),
        task_queue=settings.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        static_summary=(
            f"Price rollout **{rollout.rollout_id}**: {len(rollout.changes)} prices to "
            f"{rollout.target} at {rollout.effective_at.isoformat()}, by {rollout.requested_by}"
        ),
    )
    return rollout, handle


async def validation_verdict(
    handle: WorkflowHandle[PriceRollout, RolloutReport],
    timeout: timedelta = timedelta(seconds=60),
    poll: float = 0.25,
) -> RolloutReport | None:
    """Wait for the rollout's own checks (its SKUs in Odoo, its stores on the POS platform):
    None once they passed (its stores are known), the report when it ended before that (e.g.
    Rejected). Raises TimeoutError while it is still checking after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout.total_seconds()
    while True:
        desc = await handle.describe()
        if desc.status != WorkflowExecutionStatus.RUNNING:
            return await handle.query(PriceRollout.report)
        if (await handle.query(PriceRollout.progress)).total > 0:
            return None
        if loop.time() > deadline:
            raise TimeoutError(f"rollout {handle.id} still being checked after {timeout}")
        await asyncio.sleep(poll)
