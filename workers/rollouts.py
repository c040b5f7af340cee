"""Starting and following price rollouts: shared by the CLI, the demo and the tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle
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
