"""The pricing activities against the Odoo emulator: items owned by their rollout, one pricelist
per store, and rollouts of thousands of changes done in bounded chunks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import odoorpc
import pytest

from activities.odoo.client import OdooClient, OdooSettings
from activities.odoo.pricing import (
    OdooPricingActivities,
    PreparePriceRolloutInput,
    PricelistItem,
    RemovePricelistItemsInput,
    WritePricelistItemsInput,
    key_part,
    store_pricelist_name,
)
from domain.posting import PostingProfile
from domain.pricing import PriceChange
from simulators.odoo import OdooEmulator
from workflows.price_rollout import CHUNK, chunks, item_chunks

AT = datetime(2026, 1, 1, tzinfo=UTC)
LATER = AT + timedelta(days=1)


@pytest.fixture
def pricing(odoo_emulator: OdooEmulator) -> OdooPricingActivities:
    settings = OdooSettings(url=f"http://127.0.0.1:{odoo_emulator.port}", timeout_s=30)
    return OdooPricingActivities(OdooClient(settings), PostingProfile())


@pytest.fixture
def base() -> str:
    """A base pricelist name of the test's own, so tests never share store pricelists."""
    return f"Prices {uuid.uuid4().hex[:6]}"


def product_id(odoo: odoorpc.ODOO, sku: str) -> int:
    found: list[int] = odoo.execute_kw("product.product", "search", [[("default_code", "=", sku)]])
    return found[0]


def price_in(odoo: odoorpc.ODOO, pricelist: str, sku: str, at: datetime = LATER) -> float:
    """Odoo's price for a SKU in a pricelist (by name), as a person or the POS would read it."""
    pl = odoo.execute_kw("product.pricelist", "search", [[("name", "=", pricelist)]])
    ctx: dict[str, object] = {"date": at.strftime("%Y-%m-%d %H:%M:%S"), "quantity": 1}
    if pl:
        ctx["pricelist"] = pl[0]
    price: float = odoo.execute_kw(
        "product.product", "get_contextual_price", [[product_id(odoo, sku)]], {"context": ctx}
    )
    return price


def rollout_items(odoo: odoorpc.ODOO, rollout_id: str) -> list[int]:
    """The pricelist items a rollout owns: those its external ids point at."""
    rows = odoo.execute_kw(
        "ir.model.data",
        "search_read",
        [[("module", "=", "retailflow"), ("model", "=", "product.pricelist.item")]],
        {"fields": ["name", "res_id"]},
    )
    prefix = f"rollout_{key_part(rollout_id)}_"
    ids = [r["res_id"] for r in rows if r["name"].startswith(prefix)]
    alive: list[int] = odoo.execute_kw("product.pricelist.item", "search", [[("id", "in", ids)]])
    return alive


def write(
    pricing: OdooPricingActivities,
    odoo: odoorpc.ODOO,
    rollout_id: str,
    base: str,
    stores: list[str],
    prices: dict[str, str],
) -> int:
    return pricing.write_pricelist_items(
        WritePricelistItemsInput(
            rollout_id=rollout_id,
            pricelist=base,
            stores=stores,
            items=[
                PricelistItem(product_id=product_id(odoo, sku), price=Decimal(p), start=AT)
                for sku, p in prices.items()
            ],
        )
    ).written


def test_identical_rollouts_own_their_items_and_undoing_one_keeps_the_other(
    pricing: OdooPricingActivities, odoo: odoorpc.ODOO, base: str
) -> None:
    change = {"MILK-1L": "0.99"}
    assert write(pricing, odoo, "R-A", base, ["S001"], change) == 1
    assert write(pricing, odoo, "R-B", base, ["S001"], change) == 1
    # Written again (a retried activity): still one item each.
    assert write(pricing, odoo, "R-A", base, ["S001"], change) == 1
    a, b = rollout_items(odoo, "R-A"), rollout_items(odoo, "R-B")
    assert len(a) == len(b) == 1 and a != b  # R-B did not adopt R-A's identical item

    removed = pricing.remove_pricelist_items(
        RemovePricelistItemsInput(
            rollout_id="R-A",
            pricelist=base,
            stores=["S001"],
            product_ids=[product_id(odoo, "MILK-1L")],
        )
    )
    assert removed.removed == 1
    assert rollout_items(odoo, "R-A") == []
    assert rollout_items(odoo, "R-B") == b
    assert price_in(odoo, store_pricelist_name(base, "S001"), "MILK-1L") == 0.99


def test_a_rollout_to_one_store_leaves_another_stores_price_alone(
    pricing: OdooPricingActivities, odoo: odoorpc.ODOO, base: str
) -> None:
    s001 = store_pricelist_name(base, "S001")
    write(pricing, odoo, "R-S001", base, ["S001"], {"COFFEE-250": "6.49"})
    before = price_in(odoo, s001, "EGGS-12")
    write(pricing, odoo, "R-S003", base, ["S003"], {"EGGS-12": "1.11", "COFFEE-250": "4.44"})
    assert price_in(odoo, store_pricelist_name(base, "S003"), "EGGS-12") == 1.11
    assert price_in(odoo, s001, "EGGS-12") == before != 1.11
    assert price_in(odoo, s001, "COFFEE-250") == 6.49
    # Old prices are read per store: S001's own price comes back for S001 alone.
    prepared = pricing.prepare_price_rollout(
        PreparePriceRolloutInput(
            changes=[PriceChange(sku="COFFEE-250", price=Decimal("9.99"))],
            at=LATER,
            pricelist=base,
            stores=["S001", "S002", "S003"],
        )
    )
    assert prepared.old_prices == {"COFFEE-250": Decimal(str(price_in(odoo, base, "COFFEE-250")))}
    assert prepared.store_old_prices == {
        "S001": {"COFFEE-250": Decimal("6.49")},
        "S003": {"COFFEE-250": Decimal("4.44")},
    }
    # Each store pricelist was created once, however many rollouts reached the store.
    assert len(odoo.execute_kw("product.pricelist", "search", [[("name", "=", s001)]])) == 1


def test_thousands_of_changes_are_prepared_written_and_removed_in_bounded_chunks(
    pricing: OdooPricingActivities, odoo: odoorpc.ODOO, base: str
) -> None:
    n = 2_500
    tag = uuid.uuid4().hex[:6]
    skus = [f"BULK-{tag}-{i:04d}" for i in range(n)]
    ids = odoo.execute_kw(
        "product.product",
        "create",
        [[{"name": sku, "default_code": sku, "list_price": 2.0, "type": "consu"} for sku in skus]],
    )
    changes = [PriceChange(sku=sku, price=Decimal("1.50")) for sku in skus]
    stores = ["S010", "S011"]

    old: dict[str, Decimal] = {}
    for chunk in chunks(changes, CHUNK):
        prepared = pricing.prepare_price_rollout(
            PreparePriceRolloutInput(changes=chunk, at=AT, pricelist=base, stores=stores)
        )
        old.update(prepared.old_prices)
    assert len(old) == n and set(old.values()) == {Decimal("2.00")}

    pid = dict(zip(skus, ids, strict=True))
    blocks = item_chunks(changes, stores)
    assert all(len(c) * len(s) <= CHUNK for c, s in blocks)
    written = sum(
        pricing.write_pricelist_items(
            WritePricelistItemsInput(
                rollout_id=f"BULK-{tag}",
                pricelist=base,
                stores=s,
                items=[PricelistItem(product_id=pid[x.sku], price=x.price, start=AT) for x in c],
            )
        ).written
        for c, s in blocks
    )
    assert written == n * len(stores) == len(rollout_items(odoo, f"BULK-{tag}"))
    assert price_in(odoo, store_pricelist_name(base, "S011"), skus[-1]) == 1.5

    removed = sum(
        pricing.remove_pricelist_items(
            RemovePricelistItemsInput(
                rollout_id=f"BULK-{tag}",
                pricelist=base,
                stores=s,
                product_ids=[pid[x.sku] for x in c],
            )
        ).removed
        for c, s in blocks
    )
    assert removed == n * len(stores)
    assert rollout_items(odoo, f"BULK-{tag}") == []
    assert price_in(odoo, store_pricelist_name(base, "S011"), skus[-1]) == 2.0
