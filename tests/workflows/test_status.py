"""`retailflow status` against the dev server: a task queue of its own with a sale Posted, one
Rejected (invalid) and one NeedsAttention (a SKU Odoo does not know), and a worker polling."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from temporalio.client import Client

from simulators.odoo import OdooEmulator
from tests.conftest import running_worker, settings_for
from tests.workflows.helpers import eventually, sales_for
from tests.workflows.test_cli import run_cli
from workers.status import Status, collect, render
from workers.submit import Mode, submit_many, wait_until_settled


def _settled(status: Status) -> bool:
    kinds = {(k.workflow_type, k.status): k.count for k in status.exceptions}
    return (
        kinds.get(("SalePosting", "Rejected")) == 1
        and kinds.get(("SalePosting", "NeedsAttention")) == 1
        and status.running.get("SalePosting") == 1
        and status.workers >= 1
    )


async def test_status_counts_exceptions_running_workflows_and_workers(
    client: Client, odoo_emulator: OdooEmulator, temporal_address: str, store_id: str
) -> None:
    settings = settings_for(odoo_emulator, temporal_address)
    env = {"TEMPORAL_ADDRESS": temporal_address, "RETAILFLOW_TASK_QUEUE": settings.task_queue}
    good, unknown_sku, invalid = sales_for(store_id, 3)
    unknown_sku["lines"][0]["sku"] = "NOPE-404"
    invalid["payments"][0]["amount"] = "0.01"

    async with running_worker(client, settings):
        submitted = await submit_many(
            client, settings, [good, unknown_sku, invalid], Mode.PER_SALE, "test"
        )
        await wait_until_settled(client, submitted, timedelta(seconds=60))
        status = await eventually(
            lambda: collect(client, settings.task_queue), _settled, timeout=30
        )
        text = await asyncio.to_thread(run_cli, ["status"], env)
        as_json = await asyncio.to_thread(run_cli, ["status", "--json"], env)

    by_kind = {(k.workflow_type, k.status): k for k in status.exceptions}
    assert set(by_kind) == {("SalePosting", "Rejected"), ("SalePosting", "NeedsAttention")}
    assert by_kind["SalePosting", "Rejected"].open == 0, "an invalid sale ends, Rejected"
    assert by_kind["SalePosting", "NeedsAttention"].open == 1, "it waits for ops"
    assert all(0 <= k.oldest_age_s < 600 for k in status.exceptions)
    assert status.running == {"SalePosting": 1}  # the Posted sale has ended
    assert status.last_settlement is None
    assert [q.kind for q in status.queues] == ["workflow", "activity"]

    assert text.returncode == 0, text.stderr
    assert "\x1b" not in text.stdout, "no colours when stdout is not a terminal"
    assert settings.task_queue in text.stdout
    assert "Rejected" in text.stdout and "NeedsAttention" in text.stdout
    assert "SalePosting" in text.stdout

    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    counts = {(k["workflow_type"], k["status"]): k["count"] for k in data["exceptions"]}
    assert counts == {("SalePosting", "Rejected"): 1, ("SalePosting", "NeedsAttention"): 1}
    assert data["running"] == {"SalePosting": 1}
    assert data["workers"] >= 1


async def test_status_colours_only_when_asked_and_an_empty_queue_is_calm(
    client: Client, odoo_emulator: OdooEmulator, temporal_address: str
) -> None:
    settings = settings_for(odoo_emulator, temporal_address)
    status = await collect(client, settings.task_queue)
    assert status.exceptions == [] and status.running == {} and status.workers == 0
    assert "\x1b[" in render(status, colour=True)
    plain = render(status, colour=False)
    assert "\x1b" not in plain and "none" in plain


def test_status_refuses_a_task_queue_that_would_change_the_query() -> None:
    result = run_cli(["status"], {"RETAILFLOW_TASK_QUEUE": 'q" OR "1"="1'})
    assert result.returncode == 2
    assert "RETAILFLOW_TASK_QUEUE" in result.stderr and len(result.stderr.splitlines()) == 1
