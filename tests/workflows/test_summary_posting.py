"""Summary mode: a store's batch booked as one entry and one picking per SKU, each sale in
exactly one posted summary whatever is resubmitted, also after the ledger closed; traceable
from a sale to its summary and back; refundable like any sale."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import odoorpc
from temporalio.client import Client

from activities.odoo.base import record_from_narration
from domain.posting import stock_lines_for
from domain.sale import parse_sale
from simulators.odoo import OdooEmulator
from tests.activities.helpers import moved, new_product, sale_of
from tests.conftest import running_worker, settings_for
from tests.workflows.helpers import a_day_with_problems, eventually, sales_for
from tests.workflows.test_store_ledger import DAY, SETTLE, close_ledger
from workers.submit import Mode, Submission, sale_result, submit_many, wait_until_settled
from workflows.sale_posting import SaleStatus
from workflows.store_ledger import (
    SUMMARY,
    LedgerInput,
    LedgerSubmission,
    StoreLedger,
    ledger_workflow_id,
)


def summaries_of(odoo: odoorpc.ODOO, store_id: str) -> list[dict[str, Any]]:
    """Every summary entry of the store in Odoo, with the sale keys its narration lists."""
    rows: list[dict[str, Any]] = odoo.execute_kw(
        "account.move",
        "search_read",
        [[("ref", "=like", f"SUM:{store_id}:%")]],
        {"fields": ["ref", "name", "state", "narration"], "order": "id asc"},
    )
    for row in rows:
        record = record_from_narration(row["narration"]) or {}
        row["keys"] = [s["key"] for s in record.get("sales", [])]
    return rows


def picking_moves(odoo: odoorpc.ODOO, origin: str) -> dict[str, float]:
    """The done picking of `origin`: quantity per product code."""
    [picking] = odoo.execute_kw(
        "stock.picking", "search_read", [[("origin", "=", origin)]], {"fields": ["state"]}
    )
    assert picking["state"] == "done"
    moves = odoo.execute_kw(
        "stock.move",
        "search_read",
        [[("picking_id", "=", picking["id"])]],
        {"fields": ["product_id", "quantity"]},
    )
    codes = {
        p["id"]: p["default_code"]
        for p in odoo.execute_kw(
            "product.product",
            "read",
            [[m["product_id"][0] for m in moves]],
            {"fields": ["default_code"]},
        )
    }
    return {codes[m["product_id"][0]]: m["quantity"] for m in moves}


async def test_summary_books_each_sale_once_per_batch_with_one_picking_per_sku(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address, summary_batch_size=10)
    sales, stream = a_day_with_problems(store_id)

    async with running_worker(client, settings):
        submitted = await submit_many(client, settings, stream, Mode.SUMMARY, source="test")
        settled = await wait_until_settled(client, submitted, SETTLE)
        traced = await sale_result(client, store_id, "X0005")
        progress = await close_ledger(client, store_id)

    statuses = {wf: r.status for wf, r in settled.items()}
    assert statuses[f"sale:{store_id}:X0003"] is SaleStatus.NEEDS_ATTENTION
    assert statuses[f"sale:{store_id}:X0025"] is SaleStatus.REJECTED
    assert sum(s is SaleStatus.POSTED for s in statuses.values()) == 24
    assert progress.mode == SUMMARY and progress.posted == 24
    assert set(progress.exceptions) == {"X0003"}
    answered = sum(s.submission is Submission.DUPLICATE for s in submitted)
    assert progress.duplicates + answered == 2

    summaries = summaries_of(odoo, store_id)
    assert all(s["state"] == "posted" for s in summaries)
    assert len(summaries) == progress.summaries < 24
    keys = [k for s in summaries for k in s["keys"]]
    expected = {f"POS:{store_id}:X{i:04d}" for i in range(25) if i != 3}
    assert sorted(keys) == sorted(expected)  # each sale in exactly one posted summary
    # No sale has an entry of its own.
    own = odoo.execute_kw("account.move", "search_count", [[("ref", "in", sorted(expected))]])
    assert own == 0
    # Each summary's picking moves what its sales sold, aggregated per SKU.
    by_key = {f"POS:{store_id}:{s['txn_id']}": parse_sale(s) for s in sales}
    for s in summaries:
        want = {ln.sku: float(ln.qty) for ln in stock_lines_for([by_key[k] for k in s["keys"]])}
        assert picking_moves(odoo, s["ref"]) == want

    # From a sale to its summary entry and picking, and back.
    assert traced is not None and traced.status is SaleStatus.POSTED
    [holder] = [s for s in summaries if f"POS:{store_id}:X0005" in s["keys"]]
    assert traced.summary_ref == holder["ref"] and traced.move_name == holder["name"]
    assert traced.picking_name and traced.picking_name.startswith("WH/OUT/")


async def test_a_sale_resubmitted_after_its_summary_ledger_closed_is_not_booked_again(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address, summary_batch_size=10)
    skus = [f"SKU-{store_id}-{i}" for i in range(4)]
    for sku in skus:
        new_product(odoo, sku)
    sales = [sale_of(store_id, f"T{i}", skus[i]) for i in range(4)]
    async with running_worker(client, settings):
        first = await submit_many(client, settings, sales[:3], Mode.SUMMARY, source="test")
        await wait_until_settled(client, first, SETTLE)
        await close_ledger(client, store_id)
        # An offline replay straight into a new run of the ledger (bypassing the submission's
        # duplicate answer): the new run starts knowing nothing; Odoo's summaries know.
        ledger_id = ledger_workflow_id(store_id, DAY)
        await client.start_workflow(
            StoreLedger.run,
            LedgerInput(
                store_id=store_id,
                business_day=DAY,
                mode=SUMMARY,
                max_batch_age=timedelta(seconds=1),
            ),
            id=ledger_id,
            task_queue=settings.task_queue,
            start_signal="add_sale",
            start_signal_args=[LedgerSubmission(sale=sales[0])],
        )
        ledger = client.get_workflow_handle_for(StoreLedger.run, ledger_id)
        for sale in (sales[1], sales[3], sales[2]):
            await ledger.signal(StoreLedger.add_sale, LedgerSubmission(sale=sale))
        await eventually(
            lambda: ledger.query(StoreLedger.progress), lambda p: p.posted == 4, timeout=60
        )
        progress = await close_ledger(client, store_id)
        traced = await sale_result(client, store_id, "T1")

    assert progress.duplicates == 3
    summaries = summaries_of(odoo, store_id)
    assert sorted(k for s in summaries for k in s["keys"]) == [
        f"POS:{store_id}:T{i}" for i in range(4)
    ]
    assert [len(s["keys"]) for s in summaries] == [3, 1]
    assert [moved(odoo, sku) for sku in skus] == [2.0, 2.0, 2.0, 2.0]
    # The new run learnt where T1 is booked from Odoo.
    assert traced is not None and traced.summary_ref == summaries[0]["ref"]


async def test_a_summary_ledger_balances_to_the_cent(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address, summary_batch_size=50)
    sales = sales_for(store_id, 30, seed=9)
    async with running_worker(client, settings):
        submitted = await submit_many(client, settings, sales, Mode.SUMMARY, source="test")
        await wait_until_settled(client, submitted, SETTLE)
        await close_ledger(client, store_id)
    summaries = summaries_of(odoo, store_id)
    items = odoo.execute_kw(
        "account.move.line",
        "search_read",
        [[("move_id", "in", [s["id"] for s in summaries])]],
        {"fields": ["debit", "credit"]},
    )
    debit = sum(Decimal(str(i["debit"])) for i in items)
    assert debit == sum(Decimal(str(i["credit"])) for i in items)
    assert debit == sum((parse_sale(s).total for s in sales), Decimal(0))
