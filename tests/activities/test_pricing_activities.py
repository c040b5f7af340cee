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
    ItemsInto,
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


def store_price(odoo: odoorpc.ODOO, base: str, store: str, sku: str) -> float:
    """A store's price: its own pricelist's, or the base pricelist's for a store without one."""
    own = store_pricelist_name(base, store)
    found = odoo.execute_kw("product.pricelist", "search", [[("name", "=", own)]])
    return price_in(odoo, own if found else base, sku)


def count(odoo: odoorpc.ODOO, model: str) -> int:
    n: int = odoo.execute_kw(model, "search_count", [[]])
    return n


def test_an_all_stores_rollout_writes_an_item_per_sku_and_per_shadowing_store_only(
    pricing: OdooPricingActivities, odoo: odoorpc.ODOO, base: str
) -> None:
    stores = [f"S{i:03d}" for i in range(1, 81)]
    milk, coffee = product_id(odoo, "MILK-1L"), product_id(odoo, "COFFEE-250")
    list_milk, list_coffee = price_in(odoo, base, "MILK-1L"), price_in(odoo, base, "COFFEE-250")
    # Earlier targeted rollouts: S001 has its own MILK price, S002 a pricelist without one.
    write(pricing, odoo, "R-T1", base, ["S001"], {"MILK-1L": "0.99"})
    write(pricing, odoo, "R-T2", base, ["S002"], {"EGGS-12": "1.11"})
    items, keys = count(odoo, "product.pricelist.item"), count(odoo, "ir.model.data")

    def write_all(into: ItemsInto, on: list[str]) -> int:
        return pricing.write_pricelist_items(
            WritePricelistItemsInput(
                rollout_id="R-ALL",
                pricelist=base,
                stores=on,
                items=[
                    PricelistItem(product_id=milk, price=Decimal("1.19"), start=AT),
                    PricelistItem(product_id=coffee, price=Decimal("5.55"), start=AT),
                ],
                into=into,
            )
        ).written

    assert write_all(ItemsInto.BASE, []) == 2
    assert write_all(ItemsInto.OVERRIDES, stores[:40]) == 1  # S001's MILK
    assert write_all(ItemsInto.OVERRIDES, stores[40:]) == 0
    # Retried (a lost answer): nothing new.
    assert write_all(ItemsInto.BASE, []) == 2
    assert write_all(ItemsInto.OVERRIDES, stores[:40]) == 1
    # 3 items and their 3 external ids, not 80 stores x 2 SKUs.
    assert count(odoo, "product.pricelist.item") - items == 3
    assert count(odoo, "ir.model.data") - keys == 3
    assert len(rollout_items(odoo, "R-ALL")) == 3
    for store in ("S001", "S002", "S003", "S080"):
        assert store_price(odoo, base, store, "MILK-1L") == 1.19, store
        assert store_price(odoo, base, store, "COFFEE-250") == 5.55, store
    assert store_price(odoo, base, "S002", "EGGS-12") == 1.11
    # A later rollout to S002 alone wins there, and only there.
    write(pricing, odoo, "R-T3", base, ["S002"], {"MILK-1L": "0.88"})
    assert store_price(odoo, base, "S002", "MILK-1L") == 0.88
    assert store_price(odoo, base, "S003", "MILK-1L") == 1.19

    # Undone: every store has its price from before R-ALL again; R-T3 stays in force.
    removed = sum(
        pricing.remove_pricelist_items(
            RemovePricelistItemsInput(
                rollout_id="R-ALL",
                pricelist=base,
                stores=part,
                product_ids=[milk, coffee],
                base=first,
            )
        ).removed
        for first, part in ((True, stores[:40]), (False, stores[40:]))
    )
    assert removed == 3
    assert rollout_items(odoo, "R-ALL") == []
    assert store_price(odoo, base, "S001", "MILK-1L") == 0.99
    assert store_price(odoo, base, "S002", "MILK-1L") == 0.88
    assert store_price(odoo, base, "S003", "MILK-1L") == list_milk
    assert store_price(odoo, base, "S001", "COFFEE-250") == list_coffee
    assert store_price(odoo, base, "S080", "COFFEE-250") == list_coffee


def test_a_store_rule_of_someone_elses_gets_the_all_stores_item_too(
    pricing: OdooPricingActivities, odoo: odoorpc.ODOO, base: str
) -> None:
    """A store pricelist with another rule before its fallback (here a 10% discount on all
    products, as a person might add) still ends at the rollout's price."""
    write(pricing, odoo, "R-T1", base, ["S005"], {"EGGS-12": "1.11"})
    own = odoo.execute_kw(
        "product.pricelist", "search", [[("name", "=", store_pricelist_name(base, "S005"))]]
    )[0]
    odoo.execute_kw(
        "product.pricelist.item",
        "create",
        [
            {
                "pricelist_id": own,
                "applied_on": "3_global",
                "compute_price": "percentage",
                "percent_price": 10.0,
            }
        ],
    )
    item = PricelistItem(product_id=product_id(odoo, "PEN-BLUE"), price=Decimal("0.66"), start=AT)
    for into in (ItemsInto.BASE, ItemsInto.OVERRIDES):
        pricing.write_pricelist_items(
            WritePricelistItemsInput(
                rollout_id="R-ALL-2",
                pricelist=base,
                stores=["S005", "S006"],
                items=[item],
                into=into,
            )
        )
    assert len(rollout_items(odoo, "R-ALL-2")) == 2
    assert store_price(odoo, base, "S005", "PEN-BLUE") == 0.66
    assert store_price(odoo, base, "S006", "PEN-BLUE") == 0.66
