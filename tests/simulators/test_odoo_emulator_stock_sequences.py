"""Conformance: every call sequence that decrements stock for a sale, answered as a real
Odoo 17 answers it (return values, wizard action, errors, states, quantities).

Names: S1p = create with ``quantity`` and ``picked`` then ``button_validate``; S1 = the same
without ``picked``; S0 = create without quantity then ``button_validate``; S2 = create,
``action_confirm``, ``action_assign``, ``button_validate``; S3 = create, ``action_confirm``,
write ``quantity`` and ``picked`` on the moves, ``button_validate``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import odoorpc
import pytest

NO_QUANTITIES = (
    "You cannot validate a transfer if no quantities are reserved. To force the transfer, "
    "encode quantities."
)
CANNOT_CANCEL_DONE = (
    "You cannot cancel a stock move that has been set to 'Done'. Create a return in order to "
    "reverse the moves which took place."
)
INVENTORY_MODE = {"context": {"inventory_mode": True}}
Product = Callable[..., int]


@pytest.fixture
def product(odoo: odoorpc.ODOO, unique: Callable[[str], str]) -> Product:
    """A fresh product (storable unless ``kind='consu'``) with ``on_hand`` in WH/Stock."""

    def make(on_hand: float = 0, kind: str = "product") -> int:
        pid = int(
            odoo.env["product.product"].create(
                {"name": unique("Seq"), "default_code": unique("SEQ"), "type": kind}
            )
        )
        if on_hand:
            odoo.execute_kw(
                "stock.quant",
                "create",
                [{"product_id": pid, "location_id": 8, "inventory_quantity_auto_apply": on_hand}],
                INVENTORY_MODE,
            )
        return pid

    return make


def move(pid: int, demand: float, quantity: float | None = None, picked: bool | None = None) -> Any:
    vals: dict[str, Any] = {
        "name": "sale line",
        "product_id": pid,
        "product_uom": 1,
        "product_uom_qty": demand,
        "location_id": 8,
        "location_dest_id": 5,
    }
    if quantity is not None:
        vals["quantity"] = quantity
    if picked is not None:
        vals["picked"] = picked
    return (0, 0, vals)


def create(odoo: odoorpc.ODOO, origin: str, moves: list[Any]) -> int:
    return int(
        odoo.env["stock.picking"].create(
            {
                "picking_type_id": 2,
                "location_id": 8,
                "location_dest_id": 5,
                "origin": origin,
                "move_ids": moves,
            }
        )
    )


def validate(odoo: odoorpc.ODOO, pick: int, **context: Any) -> Any:
    kwargs = {"context": context} if context else {}
    return odoo.execute_kw("stock.picking", "button_validate", [[pick]], kwargs)


def on_hand(odoo: odoorpc.ODOO, pid: int) -> float:
    [row] = odoo.env["product.product"].read([pid], ["qty_available"])
    return float(row["qty_available"])


def picking(odoo: odoorpc.ODOO, pick: int) -> dict[str, Any]:
    [row] = odoo.env["stock.picking"].read([pick], ["state", "move_ids", "backorder_id"])
    return dict(row)


def moves_of(odoo: odoorpc.ODOO, pick: int) -> list[tuple[str, float, float]]:
    """(state, demand, quantity) of each move of a transfer, in id order."""
    rows = odoo.env["stock.move"].search_read(
        [("picking_id", "=", pick)], ["state", "product_uom_qty", "quantity"], order="id"
    )
    return [(r["state"], r["product_uom_qty"], r["quantity"]) for r in rows]


def backorders(odoo: odoorpc.ODOO, pick: int) -> list[int]:
    return list(odoo.env["stock.picking"].search([("backorder_id", "=", pick)]))


def reserved(odoo: odoorpc.ODOO, pid: int) -> float:
    quants = odoo.env["stock.quant"].search_read(
        [("product_id", "=", pid), ("location_id", "=", 8)], ["reserved_quantity"]
    )
    return float(sum(q["reserved_quantity"] for q in quants))


def user_error(call: Callable[[], Any]) -> odoorpc.error.RPCError:
    with pytest.raises(odoorpc.error.RPCError) as err:
        call()
    assert err.value.info["data"]["name"] == "odoo.exceptions.UserError"
    return err.value


# -- S1p ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stock", "after"), [(0, -5.0), (10, 5.0), (2, -3.0)])
def test_s1p_moves_the_full_demand_whatever_the_stock(
    odoo: odoorpc.ODOO, product: Product, unique: Callable[[str], str], stock: float, after: float
) -> None:
    pid = product(stock)
    pick = create(odoo, unique("S1P"), [move(pid, 5, quantity=5, picked=True)])
    assert picking(odoo, pick)["state"] == "assigned"
    assert validate(odoo, pick) is True
    assert picking(odoo, pick)["state"] == "done"
    assert moves_of(odoo, pick) == [("done", 5.0, 5.0)]
    assert backorders(odoo, pick) == []
    assert on_hand(odoo, pid) == after
    assert reserved(odoo, pid) == 0.0


def test_s1p_consumable_is_confirmed_after_create_and_done_after_validate(
    odoo: odoorpc.ODOO, product: Product, unique: Callable[[str], str]
) -> None:
    pid = product(kind="consu")
    pick = create(odoo, unique("S1P-C"), [move(pid, 5, quantity=5, picked=True)])
    assert picking(odoo, pick)["state"] == "confirmed"
    assert validate(odoo, pick) is True
    assert picking(odoo, pick)["state"] == "done"
    assert moves_of(odoo, pick) == [("done", 5.0, 5.0)]


def test_s1p_with_50_moves_short_and_stocked(
    odoo: odoorpc.ODOO, product: Product, unique: Callable[[str], str]
) -> None:
    pids = [product(2 if n % 2 else 0) for n in range(50)]
    pick = create(odoo, unique("S1P-50"), [move(p, 5, quantity=5, picked=True) for p in pids])
    assert picking(odoo, pick)["state"] == "assigned"
    assert validate(odoo, pick) is True
    assert picking(odoo, pick)["state"] == "done"
    assert moves_of(odoo, pick) == [("done", 5.0, 5.0)] * 50
    assert backorders(odoo, pick) == []
    assert [on_hand(odoo, p) for p in pids] == [-3.0 if n % 2 else -5.0 for n in range(50)]


def test_s1p_pickings_keep_their_reservation_when_another_is_validated(
    odoo: odoorpc.ODOO, product: Product, unique: Callable[[str], str]
) -> None:
    pid = product()
    first = create(odoo, unique("S1P-A"), [move(pid, 5, quantity=5, picked=True)])
    second = create(odoo, unique("S1P-B"), [move(pid, 5, quantity=5, picked=True)])
    assert validate(odoo, first) is True
    assert moves_of(odoo, second) == [("assigned", 5.0, 5.0)]
    assert validate(odoo, second) is True
    assert on_hand(odoo, pid) == -10.0


# -- S1 ----------------------------------------------------------------------------------------


def test_s1_reserves_at_zero_stock_and_loses_it_to_another_validation(
    odoo: odoorpc.ODOO, product: Product, unique: Callable[[str], str]
) -> None:
    pid = product()
    first = create(odoo, unique("S1-A"), [move(pid, 5, quantity=5)])
    assert moves_of(odoo, first) == [("assigned", 5.0, 5.0)]
    assert picking(odoo, first)["state"] == "assigned"
    assert reserved(odoo, pid) == 5.0  # reserved although nothing is on hand
    second = create(odoo, unique("S1-B"), [move(pid, 5, quantity=5)])
    assert reserved(odoo, pid) == 10.0
    assert validate(odoo, first) is True
    assert on_hand(odoo, pid) == -5.0
    # Validating the first took the second's reservation.
    assert picking(odoo, second)["state"] == "confirmed"
    assert moves_of(odoo, second) == [("confirmed", 5.0, 0.0)]
    assert reserved(odoo, pid) == 0.0
    err = user_error(lambda: validate(odoo, second))
    assert str(err) == NO_QUANTITIES
    assert picking(odoo, second)["state"] == "confirmed"
    assert on_hand(odoo, pid) == -5.0


def test_s1_with_enough_stock_keeps_both_reservations(
    odoo: odoorpc.ODOO, product: Product, unique: Callable[[str], str]
) -> None:
    pid = product(10)
    first = create(odoo, unique("S1-A"), [move(pid, 5, quantity=5)])
    second = create(odoo, unique("S1-B"), [move(pid, 5, quantity=5)])
    assert validate(odoo, first) is True
    assert moves_of(odoo, second) == [("assigned", 5.0, 5.0)]
    assert validate(odoo, second) is True
    assert on_hand(odoo, pid) == 0.0


# -- S0 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stock", "after"), [(0, -5.0), (10, 5.0)])
def test_s0_zero_or_enough_stock_validates_in_full(
    odoo: odoorpc.ODOO, product: Product, unique: Callable[[str], str], stock: float, after: float
) -> None:
    pid = product(stock)
    pick = create(odoo, unique("S0"), [move(pid, 5)])
    assert picking(odoo, pick)["state"] == "draft"
    assert validate(odoo, pick) is True
    assert picking(odoo, pick)["state"] == "done"
    assert moves_of(odoo, pick) == [("done", 5.0, 5.0)]
    assert on_hand(odoo, pid) == after


def test_s0_partial_stock_answers_the_backorder_wizard(
    odoo: odoorpc.ODOO, product: Product, unique: Callable[[str], str]
) -> None:
    pid = product(2)
    pick = create(odoo, unique("S0-P"), [move(pid, 5)])
    answer = validate(odoo, pick)
    assert isinstance(answer, dict)
    context = answer.pop("context")
    assert answer == {
        "name": "Create Backorder?",
        "type": "ir.actions.act_window",
        "view_mode": "form",
        "res_model": "stock.backorder.confirmation",
        "views": [[answer["view_id"], "form"]],
        "view_id": answer["view_id"],
        "target": "new",
    }
    assert isinstance(answer["view_id"], int)
    assert context["button_validate_picking_ids"] == [pick]
    assert context["default_pick_ids"] == [[4, pick]]
    assert context["default_show_transfers"] is False
    assert picking(odoo, pick)["state"] == "assigned"
    assert moves_of(odoo, pick) == [("partially_available", 5.0, 2.0)]
    assert on_hand(odoo, pid) == 2.0


# -- S2 ----------------------------------------------------------------------------------------


def s2(odoo: odoorpc.ODOO, pid: int, origin: str) -> int:
    pick = create(odoo, origin, [move(pid, 5)])
    odoo.env["stock.picking"].action_confirm([pick])
    odoo.env["stock.picking"].action_assign([pick])
    return pick


def test_s2_storable_at_zero_stock_is_refused(
    odoo: odoorpc.ODOO, product: Product, unique: Callable[[str], str]
) -> None:
    pid = product()
    pick = s2(odoo, pid, unique("S2-0"))
    err = user_error(lambda: validate(odoo, pick))
    assert str(err) == NO_QUANTITIES
    assert picking(odoo, pick)["state"] == "confirmed"
    assert on_hand(odoo, pid) == 0.0


def test_s2_partial_stock_answers_the_backorder_wizard(
    odoo: odoorpc.ODOO, product: Product, unique: Callable[[str], str]
) -> None:
    pid = product(2)
    pick = s2(odoo, pid, unique("S2-P"))
    answer = validate(odoo, pick)
    assert isinstance(answer, dict)
    assert answer["res_model"] == "stock.backorder.confirmation"
    assert picking(odoo, pick)["state"] == "assigned"
    assert moves_of(odoo, pick) == [("partially_available", 5.0, 2.0)]


@pytest.mark.parametrize(("stock", "kind", "after"), [(10, "product", 5.0), (0, "consu", 0.0)])
def test_s2_enough_stock_or_consumable_validates(
    odoo: odoorpc.ODOO,
    product: Product,
    unique: Callable[[str], str],
    stock: float,
    kind: str,
    after: float,
) -> None:
    pid = product(stock, kind=kind)
    pick = s2(odoo, pid, unique("S2-OK"))
    assert validate(odoo, pick) is True
    assert moves_of(odoo, pick) == [("done", 5.0, 5.0)]
    assert on_hand(odoo, pid) == after


# -- S3 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stock", [0, 2, 10])
@pytest.mark.parametrize(
    "context",
    [{}, {"skip_backorder": True}, {"skip_backorder": True, "not_to_backorder": True}],
    ids=["plain", "skip_backorder", "not_to_backorder"],
)
def test_s3_moves_the_full_demand(
    odoo: odoorpc.ODOO,
    product: Product,
    unique: Callable[[str], str],
    stock: float,
    context: dict[str, Any],
) -> None:
    pid = product(stock)
    pick = create(odoo, unique("S3"), [move(pid, 5)])
    odoo.env["stock.picking"].action_confirm([pick])
    move_ids = picking(odoo, pick)["move_ids"]
    odoo.env["stock.move"].write(move_ids, {"quantity": 5, "picked": True})
    if context.pop("not_to_backorder", False):
        context["picking_ids_not_to_backorder"] = [pick]
    assert validate(odoo, pick, **context) is True
    assert picking(odoo, pick)["state"] == "done"
    assert moves_of(odoo, pick) == [("done", 5.0, 5.0)]
    assert backorders(odoo, pick) == []
    assert on_hand(odoo, pid) == stock - 5


# -- contexts ----------------------------------------------------------------------------------


def test_skip_backorder_moves_only_the_reserved_part_and_creates_a_backorder(
    odoo: odoorpc.ODOO, product: Product, unique: Callable[[str], str]
) -> None:
    pid = product(2)
    pick = create(odoo, unique("SKIP"), [move(pid, 5)])
    assert validate(odoo, pick, skip_backorder=True) is True
    assert picking(odoo, pick)["state"] == "done"
    assert moves_of(odoo, pick) == [("done", 2.0, 2.0)]
    assert on_hand(odoo, pid) == 0.0
    [backorder] = backorders(odoo, pick)
    assert picking(odoo, backorder)["state"] == "confirmed"
    assert moves_of(odoo, backorder) == [("confirmed", 3.0, 0.0)]
    [row] = odoo.env["stock.picking"].read([backorder], ["origin", "name"])
    assert row["origin"] == odoo.env["stock.picking"].read([pick], ["origin"])[0]["origin"]


def test_picking_ids_not_to_backorder_moves_only_the_reserved_part(
    odoo: odoorpc.ODOO, product: Product, unique: Callable[[str], str]
) -> None:
    pid = product(2)
    pick = create(odoo, unique("NOBO"), [move(pid, 5)])
    answer = validate(odoo, pick, skip_backorder=True, picking_ids_not_to_backorder=[pick])
    assert answer is True
    assert picking(odoo, pick)["state"] == "done"
    assert backorders(odoo, pick) == []
    assert on_hand(odoo, pid) == 0.0
    done = [m for m in moves_of(odoo, pick) if m[0] == "done"]
    assert done == [("done", 2.0, 2.0)]


def test_zero_reserved_moves_among_50_are_cancelled_without_backorder(
    odoo: odoorpc.ODOO, product: Product, unique: Callable[[str], str]
) -> None:
    pids = [product(2 if n % 2 else 0) for n in range(50)]
    pick = create(odoo, unique("NOBO-50"), [move(p, 5) for p in pids])
    odoo.env["stock.picking"].action_confirm([pick])
    odoo.env["stock.picking"].action_assign([pick])
    answer = validate(odoo, pick, skip_backorder=True, picking_ids_not_to_backorder=[pick])
    assert answer is True
    assert backorders(odoo, pick) == []
    rows = odoo.env["stock.move"].search_read(
        [("picking_id", "=", pick), ("product_id", "in", pids)],
        ["product_id", "state", "quantity"],
    )
    by_product: dict[int, set[tuple[str, float]]] = {}
    for r in rows:
        by_product.setdefault(r["product_id"][0], set()).add((r["state"], r["quantity"]))
    for n, pid in enumerate(pids):
        if n % 2:
            assert ("done", 2.0) in by_product[pid]
            assert on_hand(odoo, pid) == 0.0
        else:
            assert by_product[pid] == {("cancel", 0.0)}
            assert on_hand(odoo, pid) == 0.0
    assert picking(odoo, pick)["state"] == "done"


# -- finished transfers ------------------------------------------------------------------------


def test_validating_a_done_or_cancelled_picking_is_refused_and_moves_nothing(
    odoo: odoorpc.ODOO, product: Product, unique: Callable[[str], str]
) -> None:
    pid = product()
    done = create(odoo, unique("DONE"), [move(pid, 5, quantity=5, picked=True)])
    assert validate(odoo, done) is True
    assert str(user_error(lambda: validate(odoo, done))) == NO_QUANTITIES
    assert on_hand(odoo, pid) == -5.0
    assert picking(odoo, done)["state"] == "done"
    cancelled = create(odoo, unique("CANCEL"), [move(pid, 5, quantity=5, picked=True)])
    assert odoo.env["stock.picking"].action_cancel([cancelled]) is True
    assert str(user_error(lambda: validate(odoo, cancelled))) == NO_QUANTITIES
    assert picking(odoo, cancelled)["state"] == "cancel"
    assert on_hand(odoo, pid) == -5.0
    assert reserved(odoo, pid) == 0.0


@pytest.mark.parametrize("method", ["unlink", "action_cancel"])
def test_a_done_picking_cannot_be_cancelled_or_deleted(
    odoo: odoorpc.ODOO, product: Product, unique: Callable[[str], str], method: str
) -> None:
    pid = product()
    done = create(odoo, unique("DONE"), [move(pid, 5, quantity=5, picked=True)])
    validate(odoo, done)
    err = user_error(lambda: odoo.execute_kw("stock.picking", method, [[done]]))
    assert str(err) == CANNOT_CANCEL_DONE
    assert picking(odoo, done)["state"] == "done"
    assert moves_of(odoo, done) == [("done", 5.0, 5.0)]


def test_draft_and_cancelled_pickings_unlink_and_origin_is_not_unique(
    odoo: odoorpc.ODOO, product: Product, unique: Callable[[str], str]
) -> None:
    pid = product()
    origin = unique("ORIGIN")
    draft = create(odoo, origin, [move(pid, 5)])
    reserved_one = create(odoo, origin, [move(pid, 5, quantity=5)])
    assert sorted(odoo.env["stock.picking"].search([("origin", "=", origin)])) == sorted(
        [draft, reserved_one]
    )
    assert odoo.env["stock.picking"].unlink([draft]) is True
    assert odoo.env["stock.picking"].action_cancel([reserved_one]) is True
    assert reserved(odoo, pid) == 0.0
    assert odoo.env["stock.picking"].unlink([reserved_one]) is True
    assert odoo.env["stock.picking"].search([("origin", "=", origin)]) == []


def test_a_picking_without_moves_is_refused(
    odoo: odoorpc.ODOO, unique: Callable[[str], str]
) -> None:
    pick = create(odoo, unique("EMPTY"), [])
    assert str(user_error(lambda: validate(odoo, pick))) == "Please add some items to move."
