"""The store-day close and the nightly settlement that drives it."""

from __future__ import annotations

import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import odoorpc
from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.day_close import OpenWork, StoreDay
from activities.recon import DayTotalsInput, OdooDayTotals
from simulators.odoo import OdooEmulator
from tests.conftest import running_worker, settings_for
from tests.workflows.helpers import a_day_with_problems, sales_for
from workers.submit import Mode, submit_many, wait_until_settled
from workflows.search_attributes import ALL
from workflows.settlement import DayCloseInput, StoreDayClose, close_workflow_id
from workflows.store_ledger import ledger_workflow_id

BIN = Path(sys.executable).parent
DAY = date(2026, 11, 20)
SETTLE = timedelta(seconds=90)


async def test_the_close_flushes_the_ledger_and_waits_for_every_sale(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    # A ledger that would stay open for an hour and batch 1,000 sales: only the close ends it.
    settings = settings_for(
        odoo_emulator,
        temporal_address,
        batch_size=1000,
        batch_max_age_s=3600.0,
        ledger_idle_close_s=3600.0,
    )
    _, stream = a_day_with_problems(store_id)
    async with running_worker(client, settings):
        submitted = await submit_many(client, settings, stream, Mode.BATCHED, source="test")
        # A second store-day's sale, sent per sale: the close of DAY must not wait for it.
        other = sales_for(store_id, 1, seed=9)[0] | {
            "txn_id": "Y0000",
            "occurred_at": "2026-11-21T10:00:00+00:00",
        }
        await submit_many(client, settings, [other], Mode.PER_SALE, source="test")
        ledger = client.get_workflow_handle(ledger_workflow_id(store_id, DAY))
        assert (await ledger.describe()).status == WorkflowExecutionStatus.RUNNING

        result = await client.execute_workflow(
            StoreDayClose.run,
            DayCloseInput(store_id=store_id, business_day=DAY, poll_every=timedelta(seconds=1)),
            id=close_workflow_id(store_id, DAY),
            task_queue=settings.task_queue,
        )
        settled = await wait_until_settled(client, submitted, SETTLE)

    assert result.status == "Closed"
    assert result.ledgers_closed == [ledger_workflow_id(store_id, DAY)]
    assert (await ledger.describe()).status == WorkflowExecutionStatus.COMPLETED
    # Nothing of the day was still posting when it closed: every sale is posted or an exception
    # (the unknown SKU waits for ops, the invalid sale is rejected), and the close counted them.
    assert all(r.status.value in {"Posted", "NeedsAttention", "Rejected"} for r in settled.values())
    assert result.exceptions == sum(r.status.value != "Posted" for r in settled.values()) > 0
    assert result.still_open.settled
    # The day's Odoo totals, as the close saw them: every posted sale, and what they were paid.
    posted = [s for s in settled.values() if s.status.value == "Posted"]
    assert result.odoo is not None and result.odoo.sales == len(posted)
    paid = sum(
        (Decimal(p["amount"]) for sale in stream[:25] for p in sale["payments"]), Decimal(0)
    ) - sum((Decimal(p["amount"]) for p in stream[3]["payments"]), Decimal(0))
    assert sum(result.odoo.tenders.values(), Decimal(0)) == paid


async def test_a_close_whose_sales_never_settle_ends_at_its_timeout_and_says_so() -> None:
    """Time skipping: six hours of waiting for a sale stuck posting pass in a moment."""
    calls = {"open_work": 0}

    @activity.defn(name="close_ledgers")
    async def close_ledgers(day: StoreDay) -> list[str]:
        return []

    @activity.defn(name="odoo_day_totals")
    async def odoo_day_totals(input: DayTotalsInput) -> OdooDayTotals:
        return OdooDayTotals(store_id="S001", business_day=DAY, sales=3, tenders={})

    @activity.defn(name="open_work")
    async def open_work(day: StoreDay) -> OpenWork:
        calls["open_work"] += 1
        return OpenWork(posting=1, exceptions=2)

    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        data_converter=pydantic_data_converter,
    ) as env:
        # The test server has no ListSearchAttributes, but registers them when asked.
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={
                    key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in ALL
                },
            )
        )
        async with Worker(
            env.client,
            task_queue="close",
            workflows=[StoreDayClose],
            activities=[close_ledgers, open_work, odoo_day_totals],
        ):
            result = await env.client.execute_workflow(
                StoreDayClose.run,
                DayCloseInput(
                    store_id="S001",
                    business_day=DAY,
                    settle_timeout=timedelta(hours=6),
                    poll_every=timedelta(minutes=10),
                ),
                id="close:S001:2026-11-20",
                task_queue="close",
            )
    assert result.status == "ClosedWithOpenWork"
    assert result.still_open == OpenWork(posting=1, exceptions=2)
    assert result.exceptions == 2
    # It looked every ten minutes for six hours, then gave up waiting.
    assert calls["open_work"] == 6 * 6 + 1
