"""What the stock activity makes of each answer Odoo may give `button_validate`: a wizard or a
UserError is a refusal for ops (with Odoo's answer), a serialization failure is retried."""

from __future__ import annotations

import uuid

import odoorpc
import pytest
from temporalio.exceptions import ApplicationError

from activities.odoo.client import OdooUnavailable
from activities.odoo.stock import DecrementStockInput, OdooStockActivities
from domain.posting import PostingProfile, StockLine
from simulators.odoo import OdooEmulator
from tests.activities.helpers import (
    ScriptedClient,
    answering,
    moved,
    new_product,
    odoo_error,
    raising,
)

BACKORDER_WIZARD = {
    "name": "Create Backorder?",
    "type": "ir.actions.act_window",
    "res_model": "stock.backorder.confirmation",
    "target": "new",
}
NO_RESERVATION = (
    "You cannot validate a transfer if no quantities are reserved. To force the transfer, "
    "encode quantities."
)
SERIALIZATION = "could not serialize access due to concurrent update"


@pytest.fixture
def sku(odoo: odoorpc.ODOO) -> str:
    sku = f"SKU-S{uuid.uuid4().hex[:6].upper()}"
    new_product(odoo, sku)
    return sku


def stock_input(sku: str) -> DecrementStockInput:
    return DecrementStockInput(origin=f"POS:{sku}:T1", lines=[StockLine(sku=sku, qty=2)])


@pytest.mark.parametrize(
    ("answer", "error_type", "shown"),
    [
        (answering(BACKORDER_WIZARD), "StockNotValidated", "stock.backorder.confirmation"),
        (
            raising(odoo_error("odoo.exceptions.UserError", NO_RESERVATION)),
            "OdooUserError",
            "no quantities are reserved",
        ),
    ],
    ids=["wizard", "user-error"],
)
def test_an_answer_other_than_true_is_a_refusal_with_odoos_answer(
    odoo_emulator: OdooEmulator,
    odoo: odoorpc.ODOO,
    sku: str,
    answer: object,
    error_type: str,
    shown: str,
) -> None:
    client = ScriptedClient(odoo_emulator)
    client.on("stock.picking", "button_validate", answer)  # type: ignore[arg-type]
    with pytest.raises(ApplicationError) as refused:
        OdooStockActivities(client, PostingProfile()).decrement_stock(stock_input(sku))
    assert refused.value.non_retryable and refused.value.type == error_type
    assert shown in str(refused.value)
    assert moved(odoo, sku) == 0
    # Once Odoo answers True (ops fixed it), the same call finishes the same draft.
    result = OdooStockActivities(client, PostingProfile()).decrement_stock(stock_input(sku))
    assert moved(odoo, sku) == 2
    assert not result.already_done


def test_a_serialization_failure_is_retried_then_succeeds(
    odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO, sku: str
) -> None:
    client = ScriptedClient(odoo_emulator)
    client.on(
        "stock.picking",
        "button_validate",
        raising(odoo_error("psycopg2.errors.SerializationFailure", SERIALIZATION)),
    )
    stock = OdooStockActivities(client, PostingProfile())
    with pytest.raises(OdooUnavailable):  # retryable: Temporal tries the activity again
        stock.decrement_stock(stock_input(sku))
    stock.decrement_stock(stock_input(sku))
    assert moved(odoo, sku) == 2
    rows = odoo.execute_kw(
        "stock.picking", "search_read", [[("origin", "=", f"POS:{sku}:T1")]], {"fields": ["state"]}
    )
    assert [r["state"] for r in rows] == ["done"]
