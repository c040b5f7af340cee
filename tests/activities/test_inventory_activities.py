"""Stores as stock locations and inventory adjustments, against the Odoo emulator: a store's
location is created once, its sales leave it, an adjustment is booked once per audit key (also
when Odoo's answer is lost)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import odoorpc
import pytest
from temporalio.exceptions import ApplicationError

from activities.odoo.client import OdooClient, OdooSettings, OdooUnavailable
from activities.odoo.inventory import (
    AdjustmentLine,
    ApplyAdjustmentInput,
    OdooInventoryActivities,
    OnHandInput,
)
from activities.odoo.stock import (
    DecrementStockInput,
    EnsureStoreLocationsInput,
    OdooStockActivities,
)
from domain.posting import PostingProfile, StockLine
from simulators.odoo import Faults, OdooEmulator
from tests.activities.helpers import new_product


def plain(emu: OdooEmulator) -> OdooClient:
    return OdooClient(OdooSettings(url=f"http://127.0.0.1:{emu.port}", timeout_s=10))


@pytest.fixture
def store() -> str:
    return f"S{uuid.uuid4().hex[:6].upper()}"


@pytest.fixture
def profile(store: str) -> PostingProfile:
    return PostingProfile(store_locations={store: f"WH/Stock/{store}"})


def quantity_at(odoo: odoorpc.ODOO, product_id: int, location_id: int) -> float:
    rows = odoo.execute_kw(
        "stock.quant",
        "search_read",
        [[("product_id", "=", product_id), ("location_id", "=", location_id)]],
        {"fields": ["quantity"]},
    )
    return float(sum(r["quantity"] for r in rows))


def inventory_moves(odoo: odoorpc.ODOO, key: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = odoo.execute_kw(
        "stock.move",
        "search_read",
        [[("name", "=", key), ("is_inventory", "=", True)]],
        {"fields": ["quantity", "state", "location_id", "location_dest_id"]},
    )
    return rows


def test_a_store_location_is_created_once_under_the_warehouse_stock(
    odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO, store: str, profile: PostingProfile
) -> None:
    stock = OdooStockActivities(plain(odoo_emulator), profile)
    first = stock.ensure_store_locations(EnsureStoreLocationsInput())
    [made] = first.locations
    assert made.created and made.store_id == store
    row = odoo.execute_kw(
        "stock.location",
        "read",
        [[made.location_id]],
        {"fields": ["complete_name", "usage", "location_id"]},
    )[0]
    assert row["complete_name"] == f"WH/Stock/{store}" and row["usage"] == "internal"
    assert row["location_id"][1] == "WH/Stock"
    # Again (another worker, nothing cached): found, not created twice.
    again = OdooStockActivities(plain(odoo_emulator), profile).ensure_store_locations(
        EnsureStoreLocationsInput(stores=[store])
    )
    assert [(x.location_id, x.created) for x in again.locations] == [(made.location_id, False)]
    found = odoo.execute_kw(
        "stock.location", "search", [[("complete_name", "=", f"WH/Stock/{store}")]]
    )
    assert found == [made.location_id]


def test_an_unknown_store_or_parent_is_refused_with_a_reason(
    odoo_emulator: OdooEmulator, store: str
) -> None:
    profile = PostingProfile(store_locations={store: f"NOWHERE/{store}"})
    stock = OdooStockActivities(plain(odoo_emulator), profile)
    with pytest.raises(ApplicationError, match="parent 'NOWHERE' does not exist"):
        stock.ensure_store_locations(EnsureStoreLocationsInput())
    with pytest.raises(ApplicationError, match="without a location in the posting profile"):
        stock.ensure_store_locations(EnsureStoreLocationsInput(stores=["S-OTHER"]))


def test_a_sale_leaves_the_stores_own_location(
    odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO, store: str, profile: PostingProfile
) -> None:
    stock = OdooStockActivities(plain(odoo_emulator), profile)
    [loc] = stock.ensure_store_locations(EnsureStoreLocationsInput()).locations
    sku = f"SKU-L{uuid.uuid4().hex[:6].upper()}"
    pid = new_product(odoo, sku)
    warehouse_stock = odoo.env.ref("stock.stock_location_stock").id
    stock.decrement_stock(
        DecrementStockInput(origin=f"POS:{store}:T1", lines=[StockLine(sku=sku, qty=Decimal(3))])
    )
    assert quantity_at(odoo, pid, loc.location_id) == -3
    assert quantity_at(odoo, pid, warehouse_stock) == 0
    # A store without a location of its own still sells from the warehouse's stock.
    stock.decrement_stock(
        DecrementStockInput(origin="POS:ELSEWHERE:T1", lines=[StockLine(sku=sku, qty=Decimal(1))])
    )
    assert quantity_at(odoo, pid, warehouse_stock) == -1


def test_a_missing_store_location_is_a_refusal_not_a_retry(
    odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO, store: str, profile: PostingProfile
) -> None:
    sku = f"SKU-M{uuid.uuid4().hex[:6].upper()}"
    new_product(odoo, sku)
    stock = OdooStockActivities(plain(odoo_emulator), profile)
    with pytest.raises(ApplicationError) as refused:
        stock.decrement_stock(
            DecrementStockInput(origin=f"POS:{store}:T1", lines=[StockLine(sku=sku, qty=1)])
        )
    assert refused.value.non_retryable and refused.value.type == "UnknownLocation"


def test_an_adjustment_is_booked_once_per_key_even_when_odoo_loses_its_answer(
    odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO, store: str, profile: PostingProfile
) -> None:
    inventory = OdooInventoryActivities(plain(odoo_emulator), profile)
    [loc] = inventory.ensure_store_locations(EnsureStoreLocationsInput()).locations
    sku = f"SKU-A{uuid.uuid4().hex[:6].upper()}"
    pid = new_product(odoo, sku)
    key = f"inventory:{store}:2026-11-30"
    adjust = ApplyAdjustmentInput(
        key=key,
        store_id=store,
        lines=[AdjustmentLine(product_id=pid, sku=sku, delta=Decimal(4))],
    )
    odoo_emulator.faults = Faults(
        error_rate=1.0,
        kinds=("lost_response",),
        methods=("stock.quant.action_apply_inventory",),
    )
    try:
        with pytest.raises(OdooUnavailable):
            inventory.apply_adjustment(adjust)
    finally:
        odoo_emulator.faults = Faults()
    retried = inventory.apply_adjustment(adjust)
    assert retried.already == [sku] and retried.applied == []
    assert quantity_at(odoo, pid, loc.location_id) == 4
    moves = inventory_moves(odoo, key)
    assert [(m["quantity"], m["state"]) for m in moves] == [(4.0, "done")]
    # The audit reads it back as on hand at the store's location.
    [seen] = inventory.on_hand(OnHandInput(store_id=store, product_ids=[pid])).on_hand
    assert seen.qty == Decimal(4) and seen.sku == sku


def test_an_adjustment_adds_the_drift_to_what_is_on_hand_now(
    odoo_emulator: OdooEmulator, odoo: odoorpc.ODOO, store: str, profile: PostingProfile
) -> None:
    inventory = OdooInventoryActivities(plain(odoo_emulator), profile)
    [loc] = inventory.ensure_store_locations(EnsureStoreLocationsInput()).locations
    sku = f"SKU-B{uuid.uuid4().hex[:6].upper()}"
    pid = new_product(odoo, sku)
    # A sale booked after the audit read 0 on hand: the drift (-2) is added, the sale stays.
    inventory.decrement_stock(
        DecrementStockInput(origin=f"POS:{store}:T9", lines=[StockLine(sku=sku, qty=1)])
    )
    result = inventory.apply_adjustment(
        ApplyAdjustmentInput(
            key=f"inventory:{store}:x",
            store_id=store,
            lines=[AdjustmentLine(product_id=pid, sku=sku, delta=Decimal(-2))],
        )
    )
    assert result.applied == [sku]
    assert quantity_at(odoo, pid, loc.location_id) == -3
    [move] = inventory_moves(odoo, f"inventory:{store}:x")
    assert move["location_id"][0] == loc.location_id  # type: ignore[index]
