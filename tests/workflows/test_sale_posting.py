"""SalePosting against the real dev server and the Odoo emulator."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import odoorpc
from temporalio.client import Client

from simulators.odoo import OdooEmulator
from tests.activities.helpers import ScriptedClient, answering, worker_with
from tests.activities.test_stock_activities import BACKORDER_WIZARD
from tests.conftest import running_worker, settings_for
from tests.workflows.helpers import lines_of, moves_for, pickings_for, sales_for
from workers.submit import Mode, Submission, sale_result, submit_sale, wait_until_settled
from workflows.sale_posting import OpsDecision, SalePosting, SalePostingInput, SaleStatus
from workflows.search_attributes import RETAIL_STATUS

SETTLE = timedelta(seconds=60)


async def test_a_sale_is_posted_once_with_its_stock(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address)
    sale = sales_for(store_id, 1)[0]
    async with running_worker(client, settings):
        sub = await submit_sale(client, settings, sale, Mode.PER_SALE, source="test")
        assert sub.submission is Submission.ACCEPTED
        assert sub.workflow_id == f"sale:{store_id}:X0000"
        await wait_until_settled(client, [sub], SETTLE)
        result = await client.get_workflow_handle_for(SalePosting.run, sub.workflow_id).result()

    assert result.status is SaleStatus.POSTED
    moves = moves_for(odoo, f"POS:{store_id}:X0000")
    assert [m["state"] for m in moves] == ["posted"]
    assert result.move_id == moves[0]["id"]
    lines = lines_of(odoo, moves[0]["id"])
    assert round(sum(ln["debit"] for ln in lines), 2) == round(sum(ln["credit"] for ln in lines), 2)
    assert all(ln["name"].startswith(f"POS:{store_id}:X0000 ") for ln in lines)
    pickings = pickings_for(odoo, f"POS:{store_id}:X0000")
    assert [(p["state"], p["origin"]) for p in pickings] == [("done", f"POS:{store_id}:X0000")]
    assert result.picking_id == pickings[0]["id"]


async def test_a_duplicate_start_is_absorbed(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address)
    sale = sales_for(store_id, 1)[0]
    async with running_worker(client, settings):
        first = await submit_sale(client, settings, sale, Mode.PER_SALE, source="test")
        again = await submit_sale(client, settings, sale, Mode.PER_SALE, source="test")
        await wait_until_settled(client, [first], SETTLE)
        # Also after the first run has completed.
        late = await submit_sale(client, settings, sale, Mode.PER_SALE, source="test")
    assert (first.submission, again.submission, late.submission) == (
        Submission.ACCEPTED,
        Submission.DUPLICATE,
        Submission.DUPLICATE,
    )
    assert len(moves_for(odoo, f"POS:{store_id}:X0000")) == 1


async def test_an_invalid_sale_is_kept_rejected_with_its_reasons(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address)
    sale: dict[str, Any] = sales_for(store_id, 1)[0]
    sale["lines"][0]["qty"] = "0"
    async with running_worker(client, settings):
        sub = await submit_sale(client, settings, sale, Mode.PER_SALE, source="test")
        assert sub.submission is Submission.REJECTED
        assert [e.field for e in sub.errors] == ["lines[0].qty"]
        handle = client.get_workflow_handle_for(SalePosting.run, sub.workflow_id)
        result = await handle.result()
        desc = await handle.describe()
    assert result.status is SaleStatus.REJECTED
    assert result.reasons == ["lines[0].qty: input should be greater than 0"]
    assert desc.typed_search_attributes.get(RETAIL_STATUS) == "Rejected"
    assert moves_for(odoo, f"POS:{store_id}:X0000") == []


async def test_malformed_json_is_kept_too(
    client: Client, odoo_emulator: OdooEmulator, temporal_address: str
) -> None:
    settings = settings_for(odoo_emulator, temporal_address)
    async with running_worker(client, settings):
        sub = await submit_sale(
            client, settings, '{"store_id": "S1", "lines": [', Mode.PER_SALE, "t"
        )
        result = await client.get_workflow_handle_for(SalePosting.run, sub.workflow_id).result()
    assert sub.workflow_id.startswith("sale-unidentified:")
    assert result.status is SaleStatus.REJECTED
    assert result.reasons[0].startswith("sale: malformed JSON")


async def test_unknown_sku_needs_attention_then_ops_retry_posts_it(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address)
    sku = f"NEW-{store_id}"
    sale: dict[str, Any] = {
        "store_id": store_id,
        "txn_id": "U1",
        "occurred_at": "2026-11-20T10:00:00+00:00",
        "currency": "USD",
        "lines": [{"sku": sku, "qty": "1", "unit_price": "10.00", "tax_rate": "0.15"}],
        "payments": [{"method": "cash", "amount": "11.50"}],
    }
    async with running_worker(client, settings):
        sub = await submit_sale(client, settings, sale, Mode.PER_SALE, source="test")
        settled = await wait_until_settled(client, [sub], SETTLE)
        assert settled[sub.workflow_id].status is SaleStatus.NEEDS_ATTENTION
        assert f"unknown SKU '{sku}'" in settled[sub.workflow_id].reasons[0]
        assert "UnknownSku" in settled[sub.workflow_id].reasons[0]

        odoo.execute_kw(
            "product.product", "create", [{"name": "New", "default_code": sku, "type": "product"}]
        )
        handle = client.get_workflow_handle_for(SalePosting.run, sub.workflow_id)
        await handle.signal(SalePosting.retry, OpsDecision(by="ops-anna", comment="SKU created"))
        result = await handle.result()
    assert result.status is SaleStatus.POSTED
    assert result.decided_by == "ops-anna"
    assert len(moves_for(odoo, f"POS:{store_id}:U1")) == 1


async def test_dismissed_sale_ends_failed(
    client: Client, odoo_emulator: OdooEmulator, temporal_address: str, store_id: str
) -> None:
    settings = settings_for(odoo_emulator, temporal_address)
    sale = sales_for(store_id, 1)[0]
    sale["lines"][0]["sku"] = "NOPE-404"
    async with running_worker(client, settings):
        sub = await submit_sale(client, settings, sale, Mode.PER_SALE, source="test")
        await wait_until_settled(client, [sub], SETTLE)
        handle = client.get_workflow_handle_for(SalePosting.run, sub.workflow_id)
        await handle.signal(
            SalePosting.dismiss, OpsDecision(by="ops-bob", comment="booked by hand")
        )
        result = await handle.result()
        desc = await handle.describe()
    assert result.status is SaleStatus.FAILED
    assert result.reasons[-1] == "dismissed by ops-bob: booked by hand"
    assert desc.typed_search_attributes.get(RETAIL_STATUS) == "Failed"


async def test_sales_whose_old_ids_collided_both_post(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    # Store `X-1` txn `2` and store `X` txn `1-2` were both `sale-X-1-2`.
    settings = settings_for(odoo_emulator, temporal_address)
    one = {**sales_for(f"{store_id}-1", 1)[0], "txn_id": "2"}
    two = {**sales_for(store_id, 1)[0], "txn_id": "1-2"}
    async with running_worker(client, settings):
        subs = [await submit_sale(client, settings, s, Mode.PER_SALE, "test") for s in (one, two)]
        settled = await wait_until_settled(client, subs, SETTLE)
    assert [s.submission for s in subs] == [Submission.ACCEPTED, Submission.ACCEPTED]
    assert [r.status for r in settled.values()] == [SaleStatus.POSTED, SaleStatus.POSTED]
    assert len(moves_for(odoo, f"POS:{store_id}-1:2")) == 1
    assert len(moves_for(odoo, f"POS:{store_id}:1-2")) == 1


async def test_a_sale_started_under_its_old_id_is_still_found(
    client: Client, odoo_emulator: OdooEmulator, temporal_address: str, store_id: str
) -> None:
    settings = settings_for(odoo_emulator, temporal_address)
    sale = sales_for(store_id, 1)[0]
    async with running_worker(client, settings):
        handle = await client.start_workflow(
            SalePosting.run,
            SalePostingInput(sale=sale),
            id=f"sale-{store_id}-X0000",  # as started before ids were joined by ':'
            task_queue=settings.task_queue,
        )
        await handle.result()
        found = await sale_result(client, store_id, "X0000")
    assert found is not None and found.status is SaleStatus.POSTED


async def test_a_corrected_sale_replaces_a_rejected_one_and_posts_once(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address)
    sale = sales_for(store_id, 1)[0]
    bad = {**sale, "payments": [{"method": "cash", "amount": "0.01"}]}
    async with running_worker(client, settings):
        rejected = await submit_sale(client, settings, bad, Mode.PER_SALE, "test")
        await wait_until_settled(client, [rejected], SETTLE)
        corrected = await submit_sale(client, settings, sale, Mode.PER_SALE, "test")
        settled = await wait_until_settled(client, [corrected], SETTLE)
        again = await submit_sale(client, settings, sale, Mode.PER_SALE, "test")
        still_bad = await submit_sale(client, settings, bad, Mode.PER_SALE, "test")
        status = await sale_result(client, store_id, "X0000")
    assert [s.submission for s in (rejected, corrected, again, still_bad)] == [
        Submission.REJECTED,
        Submission.ACCEPTED,
        Submission.DUPLICATE,
        Submission.DUPLICATE,
    ]
    assert settled[corrected.workflow_id].status is SaleStatus.POSTED
    assert status is not None and status.status is SaleStatus.POSTED
    assert [m["state"] for m in moves_for(odoo, f"POS:{store_id}:X0000")] == ["posted"]


async def test_a_batched_corrected_sale_is_what_status_reports(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address, batch_size=5)
    sale = sales_for(store_id, 1)[0]
    bad = {**sale, "payments": [{"method": "cash", "amount": "0.01"}]}
    async with running_worker(client, settings):
        rejected = await submit_sale(client, settings, bad, Mode.BATCHED, "test")
        await wait_until_settled(client, [rejected], SETTLE)
        corrected = await submit_sale(client, settings, sale, Mode.BATCHED, "test")
        await wait_until_settled(client, [corrected], SETTLE)
        status = await sale_result(client, store_id, "X0000")
    assert (rejected.submission, corrected.submission) == (
        Submission.REJECTED,
        Submission.QUEUED,
    )
    assert status is not None and status.status is SaleStatus.POSTED
    assert [m["state"] for m in moves_for(odoo, f"POS:{store_id}:X0000")] == ["posted"]


async def test_a_picking_odoo_will_not_validate_needs_attention_with_odoos_answer(
    client: Client,
    odoo_emulator: OdooEmulator,
    temporal_address: str,
    odoo: odoorpc.ODOO,
    store_id: str,
) -> None:
    settings = settings_for(odoo_emulator, temporal_address)
    sale = sales_for(store_id, 1)[0]
    scripted = ScriptedClient(odoo_emulator)
    scripted.on("stock.picking", "button_validate", answering(BACKORDER_WIZARD))
    async with worker_with(client, settings, scripted):
        sub = await submit_sale(client, settings, sale, Mode.PER_SALE, "test")
        settled = await wait_until_settled(client, [sub], SETTLE)
        handle = client.get_workflow_handle_for(SalePosting.run, sub.workflow_id)
        await handle.signal(SalePosting.retry, OpsDecision(by="ops-anna"))
        result = await handle.result()
    waiting = settled[sub.workflow_id]
    assert waiting.status is SaleStatus.NEEDS_ATTENTION
    assert "StockNotValidated" in waiting.reasons[0]
    assert "stock.backorder.confirmation" in waiting.reasons[0]
    assert result.status is SaleStatus.POSTED
    assert [p["state"] for p in pickings_for(odoo, f"POS:{store_id}:X0000")] == ["done"]
