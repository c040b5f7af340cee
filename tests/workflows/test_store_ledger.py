"""StoreLedger: micro-batched posting, still exactly once per sale."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import odoorpc
from temporalio.client import Client

from simulators.odoo import OdooEmulator
from tests.conftest import running_worker, settings_for
from tests.workflows.helpers import moves_for, pickings_for, sales_for
from workers.submit import Mode, Submission, submit_many, wait_until_settled
from workflows.sale_posting import SaleStatus
from workflows.store_ledger import LedgerInput, LedgerSubmission, StoreLedger, ledger_workflow_id

SETTLE = timedelta(seconds=90)
DAY = date(2026, 11, 20)


async def test_batched_posting_isolates_bad_sales(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address, batch_size=10)
    sales: list[Any] = sales_for(store_id, 25)
    sales[3]["lines"][0]["sku"] = "NOPE-404"  # valid sale, unknown to Odoo
    invalid = sales_for(store_id, 26)[25]
    invalid["payments"][0]["amount"] = "0.01"  # mismatched totals
    stream = [*sales, invalid, sales[0], sales[7]]  # two cashier retries

    async with running_worker(client, settings):
        submitted = await submit_many(client, settings, stream, Mode.BATCHED, source="test")
        ledger_id = ledger_workflow_id(store_id, DAY)
        assert {s.workflow_id for s in submitted if s.submission is Submission.QUEUED} == {
            ledger_id
        }
        rejected = [s for s in submitted if s.submission is Submission.REJECTED]
        assert [s.txn_id for s in rejected] == ["X0025"]
        settled = await wait_until_settled(client, submitted, SETTLE)
        ledger = client.get_workflow_handle_for(StoreLedger.run, ledger_id)
        progress = await ledger.query(StoreLedger.progress)

    statuses = {wf: r.status for wf, r in settled.items()}
    assert statuses[f"sale-{store_id}-X0003"] is SaleStatus.NEEDS_ATTENTION
    assert statuses[f"sale-{store_id}-X0025"] is SaleStatus.REJECTED
    posted = [wf for wf, s in statuses.items() if s is SaleStatus.POSTED]
    assert len(posted) == 24
    assert progress.posted == 24
    assert progress.duplicates == 2
    assert set(progress.exceptions) == {"X0003"}
    for i in range(25):
        moves = moves_for(odoo, f"POS:{store_id}:X{i:04d}")
        assert [m["state"] for m in moves] == ([] if i == 3 else ["posted"]), i
    # One picking per batch, all done; the bad sale's goods did not move.
    pickings = pickings_for(odoo, f"POS:{store_id}:2026-11-20:batch-")
    assert pickings and all(p["state"] == "done" for p in pickings)
    assert len(pickings) == progress.batches


async def test_ledger_continues_as_new_without_losing_or_repeating(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address, batch_size=4)
    sales = sales_for(store_id, 40, seed=5)
    async with running_worker(client, settings):
        ledger_id = ledger_workflow_id(store_id, DAY)
        # A tiny history budget forces several continue-as-new cycles.
        handle = await client.start_workflow(
            StoreLedger.run,
            LedgerInput(
                store_id=store_id,
                business_day=DAY,
                batch_size=4,
                max_history_events=40,
                max_batch_age=timedelta(seconds=1),
            ),
            id=ledger_id,
            task_queue=settings.task_queue,
        )
        for sale in [*sales, *sales[:10]]:
            await handle.signal(StoreLedger.add_sale, LedgerSubmission(sale=sale))
        submitted = await submit_many(client, settings, sales, Mode.BATCHED, source="test")
        await wait_until_settled(client, submitted, SETTLE)
        progress = await client.get_workflow_handle_for(StoreLedger.run, ledger_id).query(
            StoreLedger.progress
        )
    assert progress.runs > 1
    assert progress.posted == 40
    assert progress.duplicates == 50
    for i in range(40):
        assert len(moves_for(odoo, f"POS:{store_id}:X{i:04d}")) == 1
    # No sale of this store was handed to its own workflow.
    assert progress.exceptions == {}
