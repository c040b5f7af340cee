"""Conformance: store locations as Odoo 17 creates and reads them, and the calls the inventory
audit makes (quants per location, a count applied under a named inventory move)."""

from __future__ import annotations

from collections.abc import Callable

import odoorpc
import pytest
from odoorpc.error import RPCError

WH_STOCK = 8
INVENTORY_LOSS = 14


def new_location(odoo: odoorpc.ODOO, name: str, **vals: object) -> int:
    return int(
        odoo.execute_kw(
            "stock.location",
            "create",
            [{"name": name, "location_id": WH_STOCK, "usage": "internal", **vals}],
        )
    )


def test_an_internal_location_under_wh_stock(
    odoo: odoorpc.ODOO, unique: Callable[[str], str]
) -> None:
    name = unique("S")
    loc = new_location(odoo, name)
    [row] = odoo.execute_kw(
        "stock.location",
        "read",
        [[loc], ["complete_name", "usage", "location_id", "parent_path", "company_id", "active"]],
    )
    assert row["complete_name"] == f"WH/Stock/{name}"
    assert row["usage"] == "internal" and row["active"] is True
    assert row["location_id"] == [WH_STOCK, "WH/Stock"]
    assert row["parent_path"].endswith(f"/{WH_STOCK}/{loc}/")
    assert row["company_id"][0] == 1
    found = odoo.execute_kw(
        "stock.location", "search", [[("complete_name", "=", f"WH/Stock/{name}")]]
    )
    assert found == [loc]


def test_location_names_are_not_unique(odoo: odoorpc.ODOO, unique: Callable[[str], str]) -> None:
    name = unique("DUP")
    first, second = new_location(odoo, name), new_location(odoo, name)
    assert first != second
    found = odoo.execute_kw(
        "stock.location", "search", [[("complete_name", "=", f"WH/Stock/{name}")]], {"order": "id"}
    )
    assert found == [first, second]
    # An empty location can be removed again (what a claim does with a racing copy).
    assert odoo.execute_kw("stock.location", "unlink", [[second]]) is True


def test_a_location_barcode_is_unique_per_company(
    odoo: odoorpc.ODOO, unique: Callable[[str], str]
) -> None:
    code = unique("LOC")
    new_location(odoo, unique("A"), barcode=code)
    with pytest.raises(RPCError) as refused:
        new_location(odoo, unique("B"), barcode=code)
    assert refused.value.info["data"]["name"] == "odoo.exceptions.ValidationError"
    assert str(refused.value) == (
        "The operation cannot be completed: The barcode for a location must be unique per company !"
    )
    # Without barcodes, any number of locations.
    new_location(odoo, unique("C"))
    new_location(odoo, unique("D"))


def test_a_location_needs_a_name(odoo: odoorpc.ODOO) -> None:
    with pytest.raises(RPCError):
        odoo.execute_kw(
            "stock.location", "create", [{"location_id": WH_STOCK, "usage": "internal"}]
        )


def test_a_named_count_at_a_store_location(
    odoo: odoorpc.ODOO, unique: Callable[[str], str]
) -> None:
    loc = new_location(odoo, unique("S"))
    pid = int(
        odoo.execute_kw(
            "product.product",
            "create",
            [{"name": unique("P"), "default_code": unique("SKU"), "type": "product"}],
        )
    )
    mode = {"context": {"inventory_mode": True}}
    quant = odoo.execute_kw(
        "stock.quant",
        "create",
        [{"product_id": pid, "location_id": loc, "inventory_quantity": 6}],
        mode,
    )
    # create merges into the location's quant: the same id again.
    again = odoo.execute_kw(
        "stock.quant",
        "create",
        [{"product_id": pid, "location_id": loc, "inventory_quantity": 5}],
        mode,
    )
    assert again == quant
    answer = odoo.execute_kw(
        "stock.quant",
        "action_apply_inventory",
        [[quant]],
        {"context": {"inventory_name": "AUDIT-1"}},
    )
    assert answer is None
    quants = odoo.execute_kw(
        "stock.quant",
        "search_read",
        [[("location_id", "=", loc), ("product_id", "in", [pid])]],
        {"fields": ["product_id", "quantity"]},
    )
    assert [(q["product_id"][0], q["quantity"]) for q in quants] == [(pid, 5.0)]
    [move] = odoo.execute_kw(
        "stock.move",
        "search_read",
        [[("name", "=", "AUDIT-1"), ("is_inventory", "=", True), ("product_id", "in", [pid])]],
        {"fields": ["state", "quantity", "location_id", "location_dest_id"]},
    )
    assert move["state"] == "done" and move["quantity"] == 5.0
    assert (move["location_id"][0], move["location_dest_id"][0]) == (INVENTORY_LOSS, loc)
    # On hand for this location only, through the product's location context.
    [row] = odoo.execute_kw(
        "product.product", "read", [[pid], ["qty_available"]], {"context": {"location": loc}}
    )
    assert row["qty_available"] == 5.0
