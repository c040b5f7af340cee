"""StoreLedger: micro-batched posting, still exactly once per sale."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import odoorpc
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from simulators.odoo import OdooEmulator
from tests.activities.helpers import (
    ScriptedClient,
    answering,
    moved,
    new_product,
    raising,
    sale_of,
    worker_with,
)
from tests.activities.test_stock_activities import BACKORDER_WIZARD
from tests.conftest import running_worker, settings_for
from tests.workflows.helpers import (
    a_day_with_problems,
    eventually,
    moves_for,
    pickings_for,
    sales_for,
)
from workers.submit import Mode, Submission, submit_many, submit_sale, wait_until_settled
from workflows.sale_posting import (
    OpsDecision,
    SalePosting,
    SalePostingResult,
    SaleStatus,
    posting_workflow_id,
)
from workflows.search_attributes import RETAIL_STATUS
from workflows.store_ledger import (
    LedgerInput,
    LedgerProgress,
    LedgerSubmission,
    StoreLedger,
    ledger_workflow_id,
)

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
    _, stream = a_day_with_problems(store_id)

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
    assert statuses[f"sale:{store_id}:X0003"] is SaleStatus.NEEDS_ATTENTION
    assert statuses[f"sale:{store_id}:X0025"] is SaleStatus.REJECTED
    posted = [wf for wf, s in statuses.items() if s is SaleStatus.POSTED]
    assert len(posted) == 24
    assert progress.posted == 24
    # The two retries are answered `duplicate` at submission, or absorbed by the ledger.
    answered = [s.txn_id for s in submitted if s.submission is Submission.DUPLICATE]
    assert progress.duplicates + len(answered) == 2
    assert set(progress.exceptions) == {"X0003"}
    for i in range(25):
        moves = moves_for(odoo, f"POS:{store_id}:X{i:04d}")
        assert [m["state"] for m in moves] == ([] if i == 3 else ["posted"]), i
    # One picking per batch, all done; the bad sale's goods did not move.
    pickings = pickings_for(odoo, f"batch:{store_id}:2026-11-20:")
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
    # The second 40 are answered `duplicate` at submission, or absorbed by the ledger.
    answered = sum(s.submission is Submission.DUPLICATE for s in submitted)
    assert progress.duplicates + answered == 50
    for i in range(40):
        assert len(moves_for(odoo, f"POS:{store_id}:X{i:04d}")) == 1
    # No sale of this store was handed to its own workflow.
    assert progress.exceptions == {}


# -- exactly-once stock, whatever the path (docs/architecture.md, "Exactly-once stock") ---------


def own_sales(odoo: odoorpc.ODOO, store_id: str, n: int) -> list[dict[str, Any]]:
    """Sales each of a product of its own, so the goods each one moved can be counted."""
    out = []
    for i in range(n):
        sku = f"SKU-{store_id}-{i}"
        new_product(odoo, sku)
        out.append(sale_of(store_id, f"T{i}", sku))
    return out


def goods_moved(odoo: odoorpc.ODOO, sales: list[dict[str, Any]]) -> list[float]:
    return [moved(odoo, s["lines"][0]["sku"]) for s in sales]


async def close_ledger(client: Client, store_id: str) -> LedgerProgress:
    ledger = client.get_workflow_handle_for(StoreLedger.run, ledger_workflow_id(store_id, DAY))
    await ledger.signal(StoreLedger.close)
    return await ledger.result()


async def test_stock_leaves_once_when_a_sale_is_sent_per_sale_then_batched(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address, batch_size=10)
    sales = own_sales(odoo, store_id, 3)
    async with running_worker(client, settings):
        first = await submit_many(client, settings, sales[:2], Mode.PER_SALE, source="test")
        await wait_until_settled(client, first, SETTLE)
        then = await submit_many(client, settings, sales, Mode.BATCHED, source="test")
        await wait_until_settled(client, then, SETTLE)
        progress = await close_ledger(client, store_id)
    assert progress.posted == 3 and progress.duplicates == 2
    assert goods_moved(odoo, sales) == [2.0, 2.0, 2.0]


async def test_stock_leaves_once_when_a_sale_is_batched_then_sent_per_sale(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address, batch_size=10)
    sales = own_sales(odoo, store_id, 2)
    async with running_worker(client, settings):
        batched = await submit_many(client, settings, sales, Mode.BATCHED, source="test")
        await wait_until_settled(client, batched, SETTLE)
        alone = await submit_sale(client, settings, sales[0], Mode.PER_SALE, source="test")
        result = await client.get_workflow_handle_for(SalePosting.run, alone.workflow_id).result()
    assert alone.submission is Submission.ACCEPTED
    assert result.status is SaleStatus.POSTED and result.already_posted
    assert result.stock_origin is not None and result.stock_origin.startswith(f"batch:{store_id}:")
    assert goods_moved(odoo, sales) == [2.0, 2.0]


async def test_stock_leaves_once_when_a_sale_is_resubmitted_after_its_ledger_closed(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address, batch_size=10)
    sales = own_sales(odoo, store_id, 2)
    async with running_worker(client, settings):
        batched = await submit_many(client, settings, sales, Mode.BATCHED, source="test")
        await wait_until_settled(client, batched, SETTLE)
        await close_ledger(client, store_id)
        # An offline replay straight into a new run of the ledger (bypassing the ingress's
        # duplicate answer): the new run does not know the sales, Odoo does.
        await client.start_workflow(
            StoreLedger.run,
            LedgerInput(store_id=store_id, business_day=DAY, max_batch_age=timedelta(seconds=1)),
            id=ledger_workflow_id(store_id, DAY),
            task_queue=settings.task_queue,
            start_signal="add_sale",
            start_signal_args=[LedgerSubmission(sale=sales[0])],
        )
        ledger = client.get_workflow_handle_for(StoreLedger.run, ledger_workflow_id(store_id, DAY))
        await ledger.signal(StoreLedger.add_sale, LedgerSubmission(sale=sales[1]))
        await eventually(
            lambda: ledger.query(StoreLedger.progress), lambda p: p.posted == 2, timeout=60
        )
        progress = await close_ledger(client, store_id)
    assert progress.duplicates == 2
    assert goods_moved(odoo, sales) == [2.0, 2.0]


async def test_a_batched_duplicate_is_answered_duplicate(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    store_id: str,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address, batch_size=10)
    sale = sales_for(store_id, 1)[0]
    async with running_worker(client, settings):
        first = await submit_sale(client, settings, sale, Mode.BATCHED, source="test")
        await wait_until_settled(client, [first], SETTLE)
        again = await submit_sale(client, settings, sale, Mode.BATCHED, source="test")
        await close_ledger(client, store_id)
        after_close = await submit_sale(client, settings, sale, Mode.BATCHED, source="test")
        settled = await wait_until_settled(client, [again], SETTLE)
    assert (first.submission, again.submission, after_close.submission) == (
        Submission.QUEUED,
        Submission.DUPLICATE,
        Submission.DUPLICATE,
    )
    assert [r.status for r in settled.values()] == [SaleStatus.POSTED]


# -- a ledger never fails -------------------------------------------------------------------


async def test_a_batch_whose_stock_odoo_refuses_is_parked_and_the_ledger_goes_on(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address, batch_size=2)
    sales = own_sales(odoo, store_id, 4)
    scripted = ScriptedClient(odoo_emulator)
    scripted.on("stock.picking", "button_validate", answering(BACKORDER_WIZARD), keep=True)
    ledger_id = ledger_workflow_id(store_id, DAY)
    async with worker_with(client, settings, scripted):
        first = await submit_many(client, settings, sales[:2], Mode.BATCHED, source="test")
        await wait_until_settled(client, first, SETTLE)
        ledger = client.get_workflow_handle_for(StoreLedger.run, ledger_id)
        parked = await eventually(
            lambda: ledger.query(StoreLedger.progress), lambda p: bool(p.stock_problems)
        )
        desc = await ledger.describe()
        # Still open, still posting what comes in.
        later = await submit_many(client, settings, sales[2:], Mode.BATCHED, source="test")
        await wait_until_settled(client, later, SETTLE)
        scripted.clear()  # ops fixed Odoo's configuration
        # A decision that names nobody is ignored, and says so.
        await ledger.signal(StoreLedger.retry_stock, OpsDecision(by="  "))
        nobody = await eventually(
            lambda: ledger.query(StoreLedger.progress), lambda p: bool(p.stock_decisions)
        )
        await ledger.signal(StoreLedger.retry_stock, OpsDecision(by="ops-anna"))
        await eventually(
            lambda: ledger.query(StoreLedger.progress), lambda p: not p.stock_problems, timeout=30
        )
        progress = await close_ledger(client, store_id)
        closed = await ledger.describe()
    assert desc.typed_search_attributes.get(RETAIL_STATUS) == "NeedsAttention"
    assert [sorted(p.txn_ids) for p in parked.stock_problems] == [["T0", "T1"]]
    assert "StockNotValidated" in parked.stock_problems[0].reason
    assert "stock.backorder.confirmation" in parked.stock_problems[0].reason
    assert nobody.stock_problems and nobody.stock_decisions == [
        "retry_stock ignored: it must say who decided (`by`)"
    ]
    retried = progress.stock_decisions[1:]
    assert retried and all(d.endswith(": retried by ops-anna: ") for d in retried)
    assert f"{parked.stock_problems[0].origin}: retried by ops-anna: " in retried
    assert progress.posted == 4 and progress.stock_problems == []
    assert closed.typed_search_attributes.get(RETAIL_STATUS) == "Closed"
    assert goods_moved(odoo, sales) == [2.0, 2.0, 2.0, 2.0]


async def test_a_ledger_survives_odd_signals(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    store_id: str,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address, batch_size=10)
    sale = sales_for(store_id, 1)[0]
    async with running_worker(client, settings):
        handle = await client.start_workflow(
            StoreLedger.run,
            LedgerInput(store_id=store_id, business_day=DAY, max_batch_age=timedelta(seconds=1)),
            id=ledger_workflow_id(store_id, DAY),
            task_queue=settings.task_queue,
        )
        for odd in ({}, {"store_id": 7}, {"store_id": store_id, "txn_id": ["x"]}, sale):
            await handle.signal(StoreLedger.add_sale, LedgerSubmission(sale=odd))
        await handle.signal(StoreLedger.retry_stock, OpsDecision(by="ops"))
        await handle.signal(StoreLedger.dismiss_stock, OpsDecision(by="ops"))
        await eventually(lambda: handle.query(StoreLedger.progress), lambda p: p.posted == 1)
        progress = await close_ledger(client, store_id)
    assert progress.received == 4 and progress.posted == 1


# -- a rejected sale's txn id can be used again ------------------------------------------------


async def test_a_ledger_takes_the_corrected_sale_of_a_rejected_one(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address, batch_size=10)
    sale = sales_for(store_id, 1)[0]
    bad = {**sale, "payments": [{"method": "cash", "amount": "0.01"}]}
    async with running_worker(client, settings):
        handle = await client.start_workflow(
            StoreLedger.run,
            LedgerInput(store_id=store_id, business_day=DAY, max_batch_age=timedelta(seconds=1)),
            id=ledger_workflow_id(store_id, DAY),
            task_queue=settings.task_queue,
            start_signal="add_sale",
            start_signal_args=[LedgerSubmission(sale=bad)],
        )
        own = client.get_workflow_handle_for(SalePosting.run, f"sale:{store_id}:X0000")
        rejected = await eventually(
            lambda: _status_or_none(own),
            lambda r: r is not None and r.status is SaleStatus.REJECTED,
        )
        await handle.signal(StoreLedger.add_sale, LedgerSubmission(sale=sale))
        await handle.signal(StoreLedger.add_sale, LedgerSubmission(sale=sale))  # and again
        result = await eventually(
            lambda: _status_or_none(own), lambda r: r is not None and r.status is SaleStatus.POSTED
        )
        progress = await close_ledger(client, store_id)
    assert rejected is not None and result is not None
    assert progress.duplicates == 1
    assert [m["state"] for m in moves_for(odoo, f"POS:{store_id}:X0000")] == ["posted"]
    assert len(pickings_for(odoo, f"POS:{store_id}:X0000")) == 1


async def _status_or_none(handle: Any) -> SalePostingResult | None:
    try:
        result: SalePostingResult = await handle.query(SalePosting.status)
        return result
    except RPCError:
        return None


async def test_a_batch_that_fails_after_posting_hands_its_stock_to_each_sale(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    # The batch posts its entries, then fails as a whole (a refusal after the posting): its
    # sales go to their own workflows, which find the entries posted under the batch's stock
    # key. Nobody else will move those goods, so each sale's workflow must.
    settings = settings_for(odoo_emulator, temporal_address, batch_size=3)
    sales = own_sales(odoo, store_id, 3)
    scripted = ScriptedClient(odoo_emulator)
    scripted.on(
        "account.move",
        "read",
        raising(
            ApplicationError("refused after posting", type="OdooUserError", non_retryable=True)
        ),
    )
    async with worker_with(client, settings, scripted):
        submitted = await submit_many(client, settings, sales, Mode.BATCHED, source="test")
        await wait_until_settled(client, submitted, SETTLE)
        progress = await close_ledger(client, store_id)
        results = [
            await client.get_workflow_handle_for(
                SalePosting.run, posting_workflow_id(store_id, s["txn_id"])
            ).result()
            for s in sales
        ]
    assert all("BatchFailed" in progress.exceptions[s["txn_id"]] for s in sales)
    assert [r.status for r in results] == [SaleStatus.POSTED] * 3
    assert all(r.already_posted for r in results)
    assert [len(moves_for(odoo, f"POS:{store_id}:{s['txn_id']}")) for s in sales] == [1, 1, 1]
    assert goods_moved(odoo, sales) == [2.0, 2.0, 2.0]
