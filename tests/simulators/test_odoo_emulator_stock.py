"""Conformance: warehouse, quants and outgoing transfers (docs/odoo17-behaviour.md §d)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import odoorpc
import pytest

INVENTORY_MODE = {"context": {"inventory_mode": True}}


@pytest.fixture
def storable(odoo: odoorpc.ODOO, unique: Callable[[str], str]) -> Callable[[], int]:
    """A fresh storable product (variant id) with nothing on hand."""

    def make() -> int:
        return int(
            odoo.env["product.product"].create(
                {"name": unique("Stocked"), "default_code": unique("STK"), "type": "product"}
            )
        )

    return make


def quantities(odoo: odoorpc.ODOO, pid: int, **context: Any) -> dict[str, Any]:
    [row] = odoo.execute_kw(
        "product.product",
        "read",
        [[pid], ["qty_available", "virtual_available", "free_qty", "outgoing_qty", "incoming_qty"]],
        {"context": context} if context else {},
    )
    return row


def outgoing(pid: int, qty: float, origin: str, preset: bool = True) -> dict[str, Any]:
    move: dict[str, Any] = {
        "name": f"{origin} line",
        "product_id": pid,
        "product_uom_qty": qty,
        "product_uom": 1,
        "location_id": 8,
        "location_dest_id": 5,
    }
    if preset:
        move["quantity"] = qty
    return {
        "picking_type_id": 2,
        "location_id": 8,
        "location_dest_id": 5,
        "origin": origin,
        "move_ids": [(0, 0, move)],
    }


def test_seeded_warehouse_locations_and_types(odoo: odoorpc.ODOO) -> None:
    [wh] = odoo.env["stock.warehouse"].search_read(
        [("code", "=", "WH")], ["lot_stock_id", "out_type_id", "in_type_id", "pos_type_id"]
    )
    assert wh["lot_stock_id"] == [8, "WH/Stock"]
    out_type = wh["out_type_id"][0]
    [types] = odoo.env["stock.picking.type"].read(
        [out_type], ["name", "code", "sequence_code", "default_location_src_id"]
    )
    assert (types["name"], types["code"], types["sequence_code"]) == (
        "Delivery Orders",
        "outgoing",
        "OUT",
    )
    assert wh["out_type_id"][1] == "My Company: Delivery Orders"
    assert wh["pos_type_id"][1] == "My Company: PoS Orders"
    usages = {
        r["id"]: (r["complete_name"], r["usage"])
        for r in odoo.env["stock.location"].read([5, 8, 14], ["complete_name", "usage"])
    }
    assert usages == {
        5: ("Partners/Customers", "customer"),
        8: ("WH/Stock", "internal"),
        14: ("Virtual Locations/Inventory adjustment", "inventory"),
    }
    assert odoo.env["stock.location"].search([("usage", "=", "customer")], limit=1) == [5]


def test_inventory_quantity_auto_apply_sets_on_hand_with_an_inventory_move(
    odoo: odoorpc.ODOO, storable: Callable[[], int]
) -> None:
    pid = storable()
    odoo.execute_kw(
        "stock.quant",
        "create",
        [{"product_id": pid, "location_id": 8, "inventory_quantity_auto_apply": 25}],
        INVENTORY_MODE,
    )
    assert quantities(odoo, pid)["qty_available"] == 25.0
    moves = odoo.env["stock.move"].search_read(
        [("product_id", "=", pid)],
        ["is_inventory", "state", "location_id", "location_dest_id", "quantity"],
    )
    assert [
        (
            m["is_inventory"],
            m["state"],
            m["location_id"][0],
            m["location_dest_id"][0],
            m["quantity"],
        )
        for m in moves
    ] == [(True, "done", 14, 8, 25.0)]


def test_inventory_count_then_apply(odoo: odoorpc.ODOO, storable: Callable[[], int]) -> None:
    pid = storable()
    vals = {"product_id": pid, "location_id": 8, "inventory_quantity": 10}
    quant = odoo.execute_kw("stock.quant", "create", [vals], INVENTORY_MODE)
    assert quantities(odoo, pid)["qty_available"] == 0.0  # counted, not applied yet
    assert odoo.execute_kw("stock.quant", "action_apply_inventory", [[quant]]) is None
    assert quantities(odoo, pid)["qty_available"] == 10.0
    # Create merges into the existing quant, so counting again is safe.
    again = odoo.execute_kw(
        "stock.quant", "create", [{**vals, "inventory_quantity": 4}], INVENTORY_MODE
    )
    assert again == quant
    odoo.execute_kw("stock.quant", "action_apply_inventory", [[quant]])
    assert quantities(odoo, pid)["qty_available"] == 4.0
    moves = odoo.env["stock.move"].search_read(
        [("product_id", "=", pid)], ["location_id", "location_dest_id", "quantity"], order="id"
    )
    assert [(m["location_id"][0], m["location_dest_id"][0], m["quantity"]) for m in moves] == [
        (14, 8, 10.0),
        (8, 14, 6.0),
    ]


def test_without_inventory_mode_a_count_is_only_pending(
    odoo: odoorpc.ODOO, storable: Callable[[], int]
) -> None:
    pid = storable()
    quant = odoo.env["stock.quant"].create(
        {"product_id": pid, "location_id": 8, "inventory_quantity": 10}
    )
    [row] = odoo.env["stock.quant"].read(
        [quant], ["quantity", "inventory_quantity", "inventory_quantity_set"]
    )
    assert (row["quantity"], row["inventory_quantity"], row["inventory_quantity_set"]) == (
        0.0,
        10.0,
        True,
    )
    assert quantities(odoo, pid)["qty_available"] == 0.0


def test_plain_quantity_sets_on_hand_silently(
    odoo: odoorpc.ODOO, storable: Callable[[], int]
) -> None:
    pid = storable()
    odoo.env["stock.quant"].create({"product_id": pid, "location_id": 8, "quantity": 7})
    assert quantities(odoo, pid)["qty_available"] == 7.0
    assert odoo.env["stock.move"].search_count([("product_id", "=", pid)]) == 0


def test_quants_are_for_storable_products_only(
    odoo: odoorpc.ODOO, unique: Callable[[str], str]
) -> None:
    pid = odoo.env["product.product"].create({"name": unique("Consu"), "type": "consu"})
    with pytest.raises(odoorpc.error.RPCError) as err:
        odoo.env["stock.quant"].create({"product_id": pid, "location_id": 8, "quantity": 1})
    assert err.value.info["data"]["name"] == "odoo.exceptions.ValidationError"
    assert str(err.value) == "Quants cannot be created for consumables or services."


def test_outgoing_picking_validates_in_one_call(
    odoo: odoorpc.ODOO, storable: Callable[[], int], unique: Callable[[str], str]
) -> None:
    pid = storable()
    odoo.execute_kw(
        "stock.quant",
        "create",
        [{"product_id": pid, "location_id": 8, "inventory_quantity_auto_apply": 10}],
        INVENTORY_MODE,
    )
    origin = unique("EXT-TX")
    Picking = odoo.env["stock.picking"]
    pick = Picking.create(outgoing(pid, 3, origin))
    [draft] = Picking.read([pick], ["name", "state", "origin", "move_ids", "picking_type_id"])
    assert re.fullmatch(r"WH/OUT/\d{5}", draft["name"])
    # A preset quantity confirms and reserves at create.
    assert (draft["state"], draft["origin"]) == ("assigned", origin)
    assert Picking.button_validate([pick]) is True
    [done] = Picking.read([pick], ["state", "date_done"])
    assert done["state"] == "done"
    assert done["date_done"]
    [move] = odoo.env["stock.move"].read(
        draft["move_ids"], ["state", "picked", "quantity", "reference"]
    )
    assert (move["state"], move["picked"], move["quantity"], move["reference"]) == (
        "done",
        True,
        3.0,
        draft["name"],
    )
    assert quantities(odoo, pid)["qty_available"] == 7.0
    assert Picking.search([("origin", "=", origin)]) == [pick]


def test_delivery_names_follow_the_sequence(fresh: Any) -> None:
    odoo = fresh.odoo
    pid = odoo.env["product.product"].create({"name": "Seq", "type": "product"})
    first = odoo.env["stock.picking"].create(outgoing(pid, 1, "A"))
    second = odoo.env["stock.picking"].create(outgoing(pid, 1, "B"))
    names = [r["name"] for r in odoo.env["stock.picking"].read([first, second], ["name"])]
    assert names == ["WH/OUT/00001", "WH/OUT/00002"]


def test_stock_may_go_negative(
    odoo: odoorpc.ODOO, storable: Callable[[], int], unique: Callable[[str], str]
) -> None:
    pid = storable()
    odoo.execute_kw(
        "stock.quant",
        "create",
        [{"product_id": pid, "location_id": 8, "inventory_quantity_auto_apply": 5}],
        INVENTORY_MODE,
    )
    pick = odoo.env["stock.picking"].create(outgoing(pid, 12, unique("NEG")))
    assert odoo.env["stock.picking"].button_validate([pick]) is True
    assert quantities(odoo, pid)["qty_available"] == -7.0


def test_no_stock_and_no_preset_quantity_still_validates_in_full(
    odoo: odoorpc.ODOO, storable: Callable[[], int], unique: Callable[[str], str]
) -> None:
    pid = storable()
    pick = odoo.env["stock.picking"].create(outgoing(pid, 4, unique("ZERO"), preset=False))
    assert odoo.env["stock.picking"].button_validate([pick]) is True
    assert quantities(odoo, pid)["qty_available"] == -4.0


def test_partial_reservation_returns_the_backorder_wizard(
    odoo: odoorpc.ODOO, storable: Callable[[], int], unique: Callable[[str], str]
) -> None:
    pid = storable()
    odoo.execute_kw(
        "stock.quant",
        "create",
        [{"product_id": pid, "location_id": 8, "inventory_quantity_auto_apply": 7}],
        INVENTORY_MODE,
    )
    pick = odoo.env["stock.picking"].create(outgoing(pid, 50, unique("PART"), preset=False))
    answer = odoo.env["stock.picking"].button_validate([pick])
    assert isinstance(answer, dict)
    assert answer["res_model"] == "stock.backorder.confirmation"
    assert answer["type"] == "ir.actions.act_window"
    [row] = odoo.env["stock.picking"].read([pick], ["state", "move_ids"])
    assert row["state"] == "assigned"
    [move] = odoo.env["stock.move"].read(row["move_ids"], ["quantity", "state"])
    assert (move["quantity"], move["state"]) == (7.0, "partially_available")
    assert quantities(odoo, pid)["qty_available"] == 7.0
    # Forcing the quantity then validating, as docs/odoo17-behaviour.md §d describes.
    odoo.env["stock.move"].write(row["move_ids"], {"quantity": 50, "picked": True})
    assert odoo.env["stock.picking"].button_validate([pick]) is True
    assert quantities(odoo, pid)["qty_available"] == -43.0


def test_forecast_and_location_context(
    odoo: odoorpc.ODOO, storable: Callable[[], int], unique: Callable[[str], str]
) -> None:
    pid = storable()
    odoo.execute_kw(
        "stock.quant",
        "create",
        [{"product_id": pid, "location_id": 8, "inventory_quantity_auto_apply": 20}],
        INVENTORY_MODE,
    )
    pick = odoo.env["stock.picking"].create(outgoing(pid, 6, unique("FC")))
    odoo.env["stock.picking"].action_confirm([pick])
    q = quantities(odoo, pid)
    assert (q["qty_available"], q["outgoing_qty"], q["virtual_available"], q["free_qty"]) == (
        20.0,
        6.0,
        14.0,
        14.0,
    )
    assert quantities(odoo, pid, location=8)["qty_available"] == 20.0
    assert quantities(odoo, pid, location=5)["qty_available"] == 0.0
    odoo.env["stock.picking"].button_validate([pick])
    assert quantities(odoo, pid, location=7)["qty_available"] == 14.0  # WH view includes WH/Stock


def test_cancel_and_unlink_rules(
    odoo: odoorpc.ODOO, storable: Callable[[], int], unique: Callable[[str], str]
) -> None:
    pid = storable()
    Picking = odoo.env["stock.picking"]
    cancelled = Picking.create(outgoing(pid, 1, unique("CAN")))
    assert Picking.action_cancel([cancelled]) is True
    assert Picking.read([cancelled], ["state"])[0]["state"] == "cancel"
    draft = Picking.create(outgoing(pid, 1, unique("DRAFT")))
    assert Picking.unlink([draft]) is True
    assert Picking.search([("id", "=", draft)]) == []
    done = Picking.create(outgoing(pid, 1, unique("DONE")))
    Picking.button_validate([done])
    with pytest.raises(odoorpc.error.RPCError) as err:
        Picking.unlink([done])
    assert err.value.info["data"]["name"] == "odoo.exceptions.UserError"
    assert str(err.value) == (
        "You cannot cancel a stock move that has been set to 'Done'. Create a return in order to "
        "reverse the moves which took place."
    )


def test_change_product_qty_wizard(odoo: odoorpc.ODOO, storable: Callable[[], int]) -> None:
    pid = storable()
    [variant] = odoo.env["product.product"].read([pid], ["product_tmpl_id"])
    wizard = odoo.env["stock.change.product.qty"].create(
        {"product_id": pid, "product_tmpl_id": variant["product_tmpl_id"][0], "new_quantity": 30}
    )
    assert odoo.env["stock.change.product.qty"].change_product_qty([wizard]) == {
        "type": "ir.actions.act_window_close"
    }
    assert quantities(odoo, pid)["qty_available"] == 30.0
    [tmpl] = odoo.env["product.template"].read([variant["product_tmpl_id"][0]], ["qty_available"])
    assert tmpl["qty_available"] == 30.0
