"""Summary posting against the emulator: one balanced entry per batch, exactly once, whatever
retries, lost responses and racing attempts happen; sales it cannot hold come back refused."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import odoorpc
import pytest

from activities.odoo.base import record_from_narration
from activities.odoo.client import OdooClient, OdooSettings, OdooUnavailable
from activities.odoo.refunds import LoadSaleInput, OdooRefundActivities
from activities.odoo.sales import OdooSalesActivities, PostSaleInput
from activities.odoo.summary import (
    OdooSummaryActivities,
    PostSummaryInput,
    SummaryIndexInput,
    sales_of_record,
)
from domain.posting import PostingProfile, summary_ref
from domain.sale import Sale, parse_sale
from simulators.odoo import OdooEmulator
from tests.activities.helpers import ScriptedClient, before, new_product, sale_of
from tests.workflows.helpers import lines_of, moves_for

DAY = date(2026, 11, 20)


def client_of(emu: OdooEmulator) -> OdooClient:
    return OdooClient(OdooSettings(url=f"http://127.0.0.1:{emu.port}", timeout_s=10))


@pytest.fixture
def summary(odoo_emulator: OdooEmulator) -> OdooSummaryActivities:
    return OdooSummaryActivities(client_of(odoo_emulator), PostingProfile())


def store_sales(odoo: odoorpc.ODOO, n: int) -> tuple[str, list[Sale]]:
    store = f"U{uuid.uuid4().hex[:6].upper()}"
    new_product(odoo, f"SKU-{store}")
    sales = [
        parse_sale(sale_of(store, f"T{i}", f"SKU-{store}", qty=str(1 + i % 3))) for i in range(n)
    ]
    return store, sales


def a_batch(store: str, sales: list[Sale], batch: str = "b1") -> PostSummaryInput:
    return PostSummaryInput(
        store_id=store, business_day=DAY, ref=summary_ref(store, DAY, batch), sales=sales
    )


def test_one_balanced_entry_lists_every_sale_with_its_total(
    summary: OdooSummaryActivities, odoo: odoorpc.ODOO
) -> None:
    store, sales = store_sales(odoo, 12)
    result = summary.post_summary(a_batch(store, sales))

    [move] = moves_for(odoo, result.ref)
    assert move["state"] == "posted" and result.move_name == move["name"]
    items = lines_of(odoo, move["id"])
    debit = sum(Decimal(str(i["debit"])) for i in items)
    credit = sum(Decimal(str(i["credit"])) for i in items)
    assert debit == credit == sum(s.total for s in sales)
    # Aggregated: one item per tender, one revenue and one tax item per rate; not per sale.
    assert len(items) == 3
    assert all(i["name"].startswith(result.ref) for i in items)
    record = record_from_narration(
        odoo.execute_kw("account.move", "read", [[move["id"]]], {"fields": ["narration"]})[0][
            "narration"
        ]
    )
    assert record is not None
    assert {(r["key"], r["total"]) for r in record["sales"]} == {
        (s.key, str(s.total)) for s in sales
    }
    assert [s.key for s in result.included] == [s.key for s in sales]
    assert all(o.posted and o.stock_origin == result.ref for o in result.outcomes)


def test_a_retry_after_a_lost_response_finds_the_posted_summary(
    odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO
) -> None:
    store, sales = store_sales(odoo, 5)
    scripted, real = ScriptedClient(odoo_emulator), client_of(odoo_emulator)

    def posted_then_lost(model: str, method: str, args: tuple[Any, ...]) -> Any:
        real.call_raw(model, method, *args)
        raise OdooUnavailable("connection reset after the server committed")

    scripted.on("account.move", "action_post", posted_then_lost)
    activities = OdooSummaryActivities(scripted, PostingProfile())
    batch = a_batch(store, sales)
    with pytest.raises(OdooUnavailable):
        activities.post_summary(batch)
    again = activities.post_summary(batch)

    moves = moves_for(odoo, batch.ref)
    assert [m["state"] for m in moves] == ["posted"]
    assert again.move_id == moves[0]["id"] and again.already_posted
    assert [s.key for s in again.included] == [s.key for s in sales]
    # Each sale is new to the books, whichever attempt posted the summary.
    assert all(o.posted and not o.already_posted for o in again.outcomes)


def test_racing_attempts_converge_on_one_posted_summary(
    odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO
) -> None:
    store, sales = store_sales(odoo, 4)
    batch = a_batch(store, sales)
    other = OdooSummaryActivities(client_of(odoo_emulator), PostingProfile())
    scripted = ScriptedClient(odoo_emulator)
    # Just before this attempt creates its draft, a racing attempt runs to the end.
    scripted.on("account.move", "create", before(lambda: other.post_summary(batch)))
    mine = OdooSummaryActivities(scripted, PostingProfile()).post_summary(batch)

    moves = moves_for(odoo, batch.ref)
    assert [m["state"] for m in moves] == ["posted"]
    assert mine.move_id == moves[0]["id"]


def test_sales_it_cannot_hold_come_back_refused_and_the_rest_is_booked(
    summary: OdooSummaryActivities, odoo: odoorpc.ODOO
) -> None:
    store, sales = store_sales(odoo, 3)
    unknown = parse_sale(sale_of(store, "T-unknown", "NOPE-404"))
    result = summary.post_summary(a_batch(store, [*sales, unknown]))

    by_txn = {o.txn_id: o for o in result.outcomes}
    assert by_txn["T-unknown"].posted is False
    assert by_txn["T-unknown"].error_type == "UnknownSku"
    assert [s.txn_id for s in result.included] == ["T0", "T1", "T2"]


def test_a_sale_with_its_own_entry_is_not_summarised_again(
    summary: OdooSummaryActivities, odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO
) -> None:
    store, sales = store_sales(odoo, 3)
    alone = OdooSalesActivities(client_of(odoo_emulator), PostingProfile())
    own = alone.post_sale(PostSaleInput(sale=sales[1]))
    result = summary.post_summary(a_batch(store, sales))

    by_txn = {o.txn_id: o for o in result.outcomes}
    assert by_txn["T1"].posted and by_txn["T1"].already_posted
    assert by_txn["T1"].move_id == own.move_id and not by_txn["T1"].owns_stock
    assert [s.txn_id for s in result.included] == ["T0", "T2"]


def test_the_days_summaries_are_read_back_with_their_sales(
    summary: OdooSummaryActivities, odoo: odoorpc.ODOO
) -> None:
    store, sales = store_sales(odoo, 6)
    summary.post_summary(a_batch(store, sales[:4], "b1"))
    summary.post_summary(a_batch(store, sales[4:], "b2"))
    index = summary.summarised_sales(SummaryIndexInput(store_id=store, business_day=DAY))
    assert [(t.ref, t.txn_ids) for t in index.summaries] == [
        (summary_ref(store, DAY, "b1"), ["T0", "T1", "T2", "T3"]),
        (summary_ref(store, DAY, "b2"), ["T4", "T5"]),
    ]
    other_day = summary.summarised_sales(
        SummaryIndexInput(store_id=store, business_day=date(2026, 11, 21))
    )
    assert other_day.summaries == []


def test_a_refund_finds_a_summarised_sale_through_its_summary(
    summary: OdooSummaryActivities, odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO
) -> None:
    store, sales = store_sales(odoo, 12)
    result = summary.post_summary(a_batch(store, sales))
    refunds = OdooRefundActivities(client_of(odoo_emulator), PostingProfile())
    loaded = refunds.load_sale_for_refund(LoadSaleInput(store_id=store, txn_id="T1"))
    # T1, not T10 or T11, whose keys contain it.
    assert loaded.sale == sales[1]
    assert loaded.move_id == result.move_id and loaded.move_name == result.move_name


def test_sales_of_record_reads_only_summaries() -> None:
    assert sales_of_record(None) == []
    assert sales_of_record({"store_id": "S"}) == []
