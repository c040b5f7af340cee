"""The claim protocol (activities/odoo/claim.py) against the emulator, with racing attempts
driven deterministically: another attempt's step runs inside one of our calls. Every race must
converge on exactly one posted entry / done picking, with no false refusal and no orphan draft."""

from __future__ import annotations

import uuid
from typing import Any

import odoorpc
import pytest

from activities.odoo.client import OdooClient, OdooSettings, OdooUnavailable
from activities.odoo.sales import OdooSalesActivities, PostSaleInput
from activities.odoo.stock import DecrementStockInput, OdooStockActivities
from domain.posting import PostingProfile, StockLine, journal_entry_for
from domain.sale import parse_sale
from simulators.odoo import OdooEmulator
from tests.activities.helpers import ScriptedClient, before, new_product, sale_of


def plain(emu: OdooEmulator) -> OdooClient:
    return OdooClient(OdooSettings(url=f"http://127.0.0.1:{emu.port}", timeout_s=10))


def entries(odoo: odoorpc.ODOO, key: str) -> list[str]:
    rows = odoo.execute_kw(
        "account.move", "search_read", [[("ref", "=", key)]], {"fields": ["state"]}
    )
    return sorted(r["state"] for r in rows)


def pickings(odoo: odoorpc.ODOO, origin: str) -> list[str]:
    rows = odoo.execute_kw(
        "stock.picking", "search_read", [[("origin", "=", origin)]], {"fields": ["state"]}
    )
    return sorted(r["state"] for r in rows)


@pytest.fixture
def sale(odoo: odoorpc.ODOO) -> Any:
    store = f"C{uuid.uuid4().hex[:6].upper()}"
    sku = f"SKU-{store}"
    new_product(odoo, sku)
    return parse_sale(sale_of(store, "T1", sku))


def test_a_racing_attempt_that_posts_first(
    odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO, sale: Any
) -> None:
    other = OdooSalesActivities(plain(odoo_emulator), PostingProfile())
    ours = ScriptedClient(odoo_emulator)
    # Just before we post our draft, the other attempt finds it and posts it.
    ours.on(
        "account.move", "action_post", before(lambda: other.post_sale(PostSaleInput(sale=sale)))
    )
    result = OdooSalesActivities(ours, PostingProfile()).post_sale(PostSaleInput(sale=sale))
    assert entries(odoo, sale.key) == ["posted"]
    assert result.owns_stock


def test_a_draft_deleted_by_another_attempt(
    odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO, sale: Any
) -> None:
    ours = ScriptedClient(odoo_emulator)

    def delete_our_draft() -> None:
        ids = odoo.execute_kw("account.move", "search", [[("ref", "=", sale.key)]])
        odoo.execute_kw("account.move", "unlink", [ids])

    ours.on("account.move", "action_post", before(delete_our_draft))
    result = OdooSalesActivities(ours, PostingProfile()).post_sale(PostSaleInput(sale=sale))
    assert entries(odoo, sale.key) == ["posted"]
    assert not result.already_posted


def test_a_retry_after_a_lost_response(
    odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO, sale: Any
) -> None:
    ours = ScriptedClient(odoo_emulator)
    real = plain(odoo_emulator)

    def posted_then_lost(model: str, method: str, args: tuple[Any, ...]) -> Any:
        real.call_raw(model, method, *args)
        raise OdooUnavailable("connection reset after the server committed")

    ours.on("account.move", "action_post", posted_then_lost)
    activities = OdooSalesActivities(ours, PostingProfile())
    with pytest.raises(OdooUnavailable):
        activities.post_sale(PostSaleInput(sale=sale, stock_origin="batch:X:1"))
    retried = activities.post_sale(PostSaleInput(sale=sale, stock_origin="batch:X:1"))
    assert entries(odoo, sale.key) == ["posted"]
    # The retry is the same attempt's: it still owns the sale's stock.
    assert retried.already_posted and retried.owns_stock and retried.stock_origin == "batch:X:1"


def test_an_entry_finished_between_our_read_and_our_unlink(
    odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO, sale: Any
) -> None:
    # Two attempts each left a draft; ours keeps the lower one and removes the other, but the
    # other attempt posts its draft between our read and our unlink.
    first = OdooSalesActivities(plain(odoo_emulator), PostingProfile())
    vals = first._move_vals(journal_entry_for(sale, PostingProfile()))
    low = odoo.execute_kw("account.move", "create", [vals])
    high = odoo.execute_kw("account.move", "create", [vals])
    ours = ScriptedClient(odoo_emulator)
    ours.on(
        "account.move",
        "unlink",
        before(lambda: odoo.execute_kw("account.move", "action_post", [[high]])),
    )
    result = OdooSalesActivities(ours, PostingProfile()).post_sale(PostSaleInput(sale=sale))
    assert entries(odoo, sale.key) == ["posted"]
    assert result.move_id == high and low != high


def test_a_picking_validated_between_our_read_and_our_unlink(
    odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO, sale: Any
) -> None:
    origin = f"{sale.key}:race"
    lines = [StockLine(sku=ln.sku, qty=ln.qty) for ln in sale.lines]
    stock = OdooStockActivities(plain(odoo_emulator), PostingProfile())
    found, _ = stock.odoo.products(ln.sku for ln in lines)
    vals = stock._picking_vals(DecrementStockInput(origin=origin, lines=lines), lines, found)
    odoo.execute_kw("stock.picking", "create", [vals])
    high = odoo.execute_kw("stock.picking", "create", [vals])
    ours = ScriptedClient(odoo_emulator)
    ours.on(
        "stock.picking",
        "unlink",
        before(lambda: odoo.execute_kw("stock.picking", "button_validate", [[high]])),
    )
    result = OdooStockActivities(ours, PostingProfile()).decrement_stock(
        DecrementStockInput(origin=origin, lines=lines)
    )
    assert pickings(odoo, origin) == ["done"]
    assert result.picking_id == high


def test_a_racing_attempt_that_validates_first(
    odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO, sale: Any
) -> None:
    origin = f"{sale.key}:race2"
    lines = [StockLine(sku=ln.sku, qty=ln.qty) for ln in sale.lines]
    other = OdooStockActivities(plain(odoo_emulator), PostingProfile())
    ours = ScriptedClient(odoo_emulator)
    ours.on(
        "stock.picking",
        "button_validate",
        before(lambda: other.decrement_stock(DecrementStockInput(origin=origin, lines=lines))),
    )
    OdooStockActivities(ours, PostingProfile()).decrement_stock(
        DecrementStockInput(origin=origin, lines=lines)
    )
    assert pickings(odoo, origin) == ["done"]
