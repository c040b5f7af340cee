"""Posting sales against the emulator: which path owns a sale's stock, currencies, amounts."""

from __future__ import annotations

import uuid
from decimal import Decimal

import odoorpc
import pytest
from temporalio.exceptions import ApplicationError

from activities.odoo.client import OdooClient, OdooSettings
from activities.odoo.sales import (
    OdooSalesActivities,
    PostSaleInput,
    PostSaleResult,
    PostSalesBatchInput,
)
from activities.odoo.stock import DecrementStockInput, DecrementStockResult, OdooStockActivities
from domain.posting import PostingProfile, journal_entry_for, stock_lines_for
from domain.sale import Sale, parse_sale
from simulators.odoo import OdooEmulator
from tests.activities.helpers import ScriptedClient, new_product, sale_of
from tests.workflows.helpers import lines_of, moves_for


@pytest.fixture
def sales(odoo_emulator: OdooEmulator) -> OdooSalesActivities:
    client = OdooClient(OdooSettings(url=f"http://127.0.0.1:{odoo_emulator.port}", timeout_s=10))
    return OdooSalesActivities(client, PostingProfile(currencies=("USD", "EUR")))


def a_sale(odoo: odoorpc.ODOO, **changes: object) -> Sale:
    store = f"A{uuid.uuid4().hex[:6].upper()}"
    new_product(odoo, f"SKU-{store}")
    return parse_sale({**sale_of(store, "T1", f"SKU-{store}"), **changes})


def test_the_path_that_posts_an_entry_owns_its_stock(
    sales: OdooSalesActivities, odoo: odoorpc.ODOO
) -> None:
    sale = a_sale(odoo)
    first = sales.post_sales_batch(PostSalesBatchInput(sales=[sale], stock_origin="batch:S:1"))
    # The same batch again (a retry after a lost response): still its stock.
    again = sales.post_sales_batch(PostSalesBatchInput(sales=[sale], stock_origin="batch:S:1"))
    # Another batch (a resubmission after the ledger closed), or the per-sale path: not theirs.
    other = sales.post_sales_batch(PostSalesBatchInput(sales=[sale], stock_origin="batch:S:2"))
    alone = sales.post_sale(PostSaleInput(sale=sale))
    assert [o.owns_stock for o in (*first.outcomes, *again.outcomes, *other.outcomes)] == [
        True,
        True,
        False,
    ]
    assert not alone.owns_stock and alone.stock_origin == "batch:S:1"
    assert len(moves_for(odoo, sale.key)) == 1


def test_an_entry_posted_before_entries_named_their_stock_is_owned_by_no_new_path(
    sales: OdooSalesActivities, odoo: odoorpc.ODOO
) -> None:
    sale = a_sale(odoo)
    vals = sales._move_vals(journal_entry_for(sale, sales.profile))
    vals["narration"] = "retailflow sale: {}"
    move = odoo.execute_kw("account.move", "create", [vals])
    odoo.execute_kw("account.move", "action_post", [[move]])
    result = sales.post_sale(PostSaleInput(sale=sale))
    assert result.already_posted and not result.owns_stock


def test_a_foreign_currency_sale_is_refused_naming_the_currency(
    sales: OdooSalesActivities, odoo: odoorpc.ODOO
) -> None:
    sale = a_sale(odoo, currency="EUR")
    with pytest.raises(ApplicationError) as refused:
        sales.post_sale(PostSaleInput(sale=sale))
    assert refused.value.non_retryable and refused.value.type == "CurrencyNotBooked"
    assert "EUR" in str(refused.value) and "USD" in str(refused.value)
    assert moves_for(odoo, sale.key) == []


def test_amounts_reach_odoo_exact_to_the_cent(
    sales: OdooSalesActivities, odoo: odoorpc.ODOO
) -> None:
    sale = a_sale(odoo)
    raw = sale.model_dump(mode="json")
    raw["lines"][0].update(qty="1", unit_price="987654321.09", tax_rate="0")
    raw["payments"][0]["amount"] = "987654321.09"
    big = parse_sale(raw)
    sales.post_sale(PostSaleInput(sale=big))
    [move] = moves_for(odoo, big.key)
    assert {Decimal(str(ln["debit"] or ln["credit"])) for ln in lines_of(odoo, move["id"])} == {
        Decimal("987654321.09")
    }


def test_amounts_too_large_to_book_exactly_are_refused(
    sales: OdooSalesActivities, odoo: odoorpc.ODOO
) -> None:
    # Every amount of the sale is within the contract's bounds, but the revenue line that
    # sums them is not: posting must refuse it rather than send a float that loses cents.
    sale = a_sale(odoo)
    raw = sale.model_dump(mode="json")
    line = {**raw["lines"][0], "qty": "1", "unit_price": "600000000.01", "tax_rate": "0"}
    raw["lines"] = [line, line]
    raw["payments"] = [
        {"method": "card", "amount": "600000000.01"},
        {"method": "cash", "amount": "600000000.01"},
    ]
    huge = parse_sale(raw)
    with pytest.raises(ApplicationError) as refused:
        sales.post_sale(PostSaleInput(sale=huge))
    assert refused.value.type == "AmountNotBookable" and refused.value.non_retryable
    assert moves_for(odoo, huge.key) == []


def test_a_first_posting_costs_odoo_three_calls_and_its_stock_two(
    odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO
) -> None:
    # Each RPC costs Odoo server time (docs/odoo17-behaviour.md §h): a sale's first posting
    # creates its draft at once, reads once (a racing or earlier record, and the narration that
    # says whose stock it is), and posts; its stock, known to be new, is created and validated.
    scripted = ScriptedClient(odoo_emulator)
    sales = OdooSalesActivities(scripted, PostingProfile())
    stock = OdooStockActivities(scripted, PostingProfile())

    def post(sale: Sale) -> tuple[PostSaleResult, DecrementStockResult]:
        return sales.post_sale(PostSaleInput(sale=sale)), stock.decrement_stock(
            DecrementStockInput(origin=sale.key, lines=stock_lines_for([sale]), new_origin=True)
        )

    post(a_sale(odoo))  # the caches (journal, currency, warehouse) warm
    sale = a_sale(odoo)
    scripted.calls.clear()
    posted, moved = post(sale)
    calls = [c for c in scripted.calls if c[0] != "product.product"]
    assert calls == [
        ("account.move", "create"),
        ("account.move", "search_read"),
        ("account.move", "action_post"),
        ("stock.picking", "create"),
        ("stock.picking", "button_validate"),
    ]
    [entry] = moves_for(odoo, sale.key)
    assert posted.move_id == entry["id"] and entry["state"] == "posted"
    # A later draft of the period is named `/` until posted: the name is not read back.
    assert posted.move_name is None and entry["name"] != "/"
    assert posted.owns_stock and posted.stock_origin == sale.key
    [picking] = odoo.execute_kw(
        "stock.picking", "search_read", [[("origin", "=", sale.key)]], {"fields": ["state"]}
    )
    assert picking == {"id": moved.picking_id, "state": "done"}


def test_a_first_posting_of_a_sale_posted_before_books_nothing(
    odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO
) -> None:
    sale = a_sale(odoo)
    client = OdooClient(OdooSettings(url=f"http://127.0.0.1:{odoo_emulator.port}", timeout_s=10))
    first = OdooSalesActivities(client, PostingProfile()).post_sale(PostSaleInput(sale=sale))
    # The same sale again, by another path that expects nothing yet (its first attempt): the
    # draft it creates at once is seen beside the posted entry, and removed.
    again = OdooSalesActivities(client, PostingProfile()).post_sale(PostSaleInput(sale=sale))
    assert again.already_posted and again.move_id == first.move_id
    assert [m["state"] for m in moves_for(odoo, sale.key)] == ["posted"]
