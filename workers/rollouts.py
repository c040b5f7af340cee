"""Starting and following price rollouts: shared by the CLI, the demo and the tests."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.service import RPCError

from domain.limits import visibility_literal
from domain.pricing import Rollout, parse_rollout, store_id_problem
from workers.settings import Settings
from workflows.price_rollout import (
    PriceRollout,
    PriceRolloutInput,
    RolloutReport,
    StorePriceCommand,
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


class StoreCommand(BaseModel):
    """One command a rollout sent to a store (the change, or its revert), and how it ended."""

    rollout_workflow_id: str
    command_id: str
    outcome: str
    sends: int = 0
    reason: str | None = None
    confirmed_at: datetime | None = None


class StoreCommands(BaseModel):
    commands: list[StoreCommand] = []
    # Rollouts that did not answer (no worker polling their task queue, or busy): with why.
    unanswered: dict[str, str] = {}


async def store_commands(
    client: Client,
    store_id: str,
    limit: int = 50,
    timeout: timedelta = timedelta(seconds=10),
) -> StoreCommands:
    """Every command sent to `store_id` by the newest `limit` rollouts, newest first.

    Rollouts send commands in batches (no workflow per store): each rollout answers the
    `store_commands` query with the commands it sent the store (a few rollouts asked at a
    time). Rollouts started before then have a `StorePriceCommand` child per store, found by
    its `StoreId` search attribute. Raises ValueError for a store id no store can have."""
    problem = store_id_problem(store_id)
    if problem:
        raise ValueError(problem)
    # Checked before anything is asked: the id goes into a visibility query below.
    store = visibility_literal(store_id, "store id")
    out = StoreCommands()
    gate = asyncio.Semaphore(8)

    async def ask(wf_id: str, run_id: str | None) -> list[StoreCommand]:
        handle = client.get_workflow_handle_for(PriceRollout.run, wf_id, run_id=run_id)
        async with gate:
            try:
                results = await handle.query(
                    PriceRollout.store_commands, store_id, rpc_timeout=timeout
                )
            except WorkflowQueryFailedError as e:
                if "store_commands" not in str(e):
                    out.unanswered[wf_id] = str(e)[:200]
                return []  # from before batched commands: its children are listed below
            except RPCError as e:
                out.unanswered[wf_id] = f"{e.status.name if e.status else 'error'}: {e.message}"[
                    :200
                ]
                return []
        return [
            StoreCommand(
                rollout_workflow_id=wf_id,
                command_id=r.command_id,
                outcome=r.outcome.value,
                sends=r.sends,
                reason=r.reason,
                confirmed_at=r.confirmed_at,
            )
            for r in results
        ]

    rollouts = [
        (wf.id, wf.run_id)
        async for wf in client.list_workflows('WorkflowType = "PriceRollout"', limit=limit)
    ]
    for found in await asyncio.gather(*(ask(w, r) for w, r in rollouts)):
        out.commands.extend(found)
    legacy = f'WorkflowType = "StorePriceCommand" AND StoreId = {store}'
    async for wf in client.list_workflows(legacy, limit=limit):
        child = client.get_workflow_handle_for(StorePriceCommand.run, wf.id, run_id=wf.run_id)
        try:
            state = await child.query(StorePriceCommand.state, rpc_timeout=timeout)
        except (WorkflowQueryFailedError, RPCError) as e:
            out.unanswered[wf.id] = str(e)[:200]
            continue
        out.commands.append(
            StoreCommand(
                rollout_workflow_id=wf.parent_id or "?",
                command_id=wf.id,
                outcome=state.outcome.value if state else "pending",
                sends=state.sends if state else 0,
                reason=state.reason if state else None,
                confirmed_at=state.confirmed_at if state else None,
            )
        )
    return out
