"""The catalog's Odoo reads against the emulator: pages by write_date with ids as tie-breaker,
archived products read back (to be withdrawn), taxes and categories mapped."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import odoorpc
import pytest

from activities.odoo.catalog import (
    OdooCatalogActivities,
    ProductStatesInput,
    ReadProductsInput,
    Stream,
)
from activities.odoo.client import OdooClient, OdooSettings
from domain.catalog import CatalogCursor, Cursor
from domain.posting import PostingProfile
from simulators.odoo import OdooEmulator


@pytest.fixture
def catalog(odoo_emulator: OdooEmulator) -> OdooCatalogActivities:
    settings = OdooSettings(url=f"http://127.0.0.1:{odoo_emulator.port}", timeout_s=30)
    return OdooCatalogActivities(OdooClient(settings), PostingProfile())


def since() -> CatalogCursor:
    stamp = (datetime.now(UTC) - timedelta(seconds=2)).strftime("%Y-%m-%d %H:%M:%S")
    return CatalogCursor(variants=Cursor(stamp=stamp), templates=Cursor(stamp=stamp))


def test_changed_products_are_read_in_pages_and_archived_ones_withdrawn(
    catalog: OdooCatalogActivities, odoo: odoorpc.ODOO
) -> None:
    cursor = since()
    tag = uuid.uuid4().hex[:6].upper()
    categ = odoo.execute_kw(
        "product.category", "search", [[("complete_name", "=", "All / Saleable / PoS")]]
    )[0]
    ids = [
        odoo.execute_kw(
            "product.product",
            "create",
            [
                {
                    "name": f"Cat {i}",
                    "default_code": f"CAT-{tag}-{i}",
                    "list_price": 2.5 + i,
                    "categ_id": categ,
                }
            ],
        )
        for i in range(3)
    ]
    odoo.execute_kw("product.product", "write", [[ids[2]], {"active": False}])
    got: dict[int, object] = {}
    withdrawn: list[int] = []
    pages = 0
    while True:
        page = catalog.read_changed_products(
            ReadProductsInput(cursor=cursor, stream=Stream.VARIANTS, limit=2)
        )
        if page.rows == 0:
            break
        pages += 1
        got.update({u.odoo_id: u for u in page.page.upserts})
        withdrawn += [w.odoo_id for w in page.page.withdrawals]
        cursor = page.cursor
    assert pages >= 2  # limit 2: the three products took more than one page
    assert {ids[0], ids[1]} <= got.keys() and ids[2] in withdrawn and ids[2] not in got
    item = got[ids[1]]
    assert item.model_dump(exclude={"odoo_id"}) == {  # type: ignore[attr-defined]
        "sku": f"CAT-{tag}-1",
        "barcode": None,
        "name": "Cat 1",
        "category": "All / Saleable / PoS",
        "attributes": {},
        "price": "3.50",
        "currency": "USD",
        "tax_rates": ["15"],
    }
    # Read to its end: nothing new until something changes.
    again = catalog.read_changed_products(
        ReadProductsInput(cursor=cursor, stream=Stream.VARIANTS, limit=2)
    )
    assert again.rows == 0
    states = catalog.product_states(ProductStatesInput(odoo_ids=[*ids, 10**9]))
    assert states.active == {ids[0]: True, ids[1]: True, ids[2]: False}


def test_a_template_edit_reaches_its_variants(
    catalog: OdooCatalogActivities, odoo: odoorpc.ODOO
) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    pid = odoo.execute_kw(
        "product.product", "create", [{"name": "Tmpl", "default_code": f"TM-{tag}"}]
    )
    tmpl = odoo.execute_kw("product.product", "read", [[pid], ["product_tmpl_id"]])[0][
        "product_tmpl_id"
    ][0]
    cursor = since()
    odoo.execute_kw("product.template", "write", [[tmpl], {"list_price": 9.99}])
    page = catalog.read_changed_products(
        ReadProductsInput(cursor=cursor, stream=Stream.TEMPLATES, limit=50)
    )
    mine = [u for u in page.page.upserts if u.odoo_id == pid]
    assert [u.price for u in mine] == ["9.99"]
    assert (
        page.cursor.templates.stamp >= cursor.templates.stamp and tmpl in page.cursor.templates.seen
    )
