"""Conformance: product.template / product.product behaviour of docs/odoo17-behaviour.md §b."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import odoorpc
import pytest

DUPLICATE_BARCODE = (
    "Barcode(s) already assigned:\n\n"
    '- Barcode "{barcode}" already assigned to product(s): [{sku}] Probe Widget, Dup\n\n'
    "Note: products that you don't have access to will not be shown above."
)


def product_vals(sku: str, barcode: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "Probe Widget",
        "default_code": sku,
        "barcode": barcode,
        "list_price": 12.5,
        "standard_price": 7.25,
        "type": "product",
        "categ_id": 2,
        "taxes_id": [(6, 0, [1])],
        **extra,
    }


def test_template_create_makes_one_variant(
    odoo: odoorpc.ODOO, unique: Callable[[str], str], barcode: Callable[[], str]
) -> None:
    sku, code = unique("SKU"), barcode()
    tid = odoo.env["product.template"].create(product_vals(sku, code))
    assert isinstance(tid, int)
    [tmpl] = odoo.execute_kw(
        "product.template",
        "read",
        [[tid]],
        {
            "fields": [
                "type",
                "detailed_type",
                "barcode",
                "standard_price",
                "default_code",
                "list_price",
                "available_in_pos",
                "taxes_id",
                "product_variant_id",
                "product_variant_count",
                "categ_id",
                "display_name",
            ]
        },
    )
    assert tmpl["type"] == tmpl["detailed_type"] == "product"
    assert tmpl["barcode"] == code
    assert tmpl["standard_price"] == 7.25
    assert tmpl["list_price"] == 12.5
    assert tmpl["default_code"] == sku
    assert tmpl["available_in_pos"] is False
    assert tmpl["taxes_id"] == [1]
    assert tmpl["product_variant_count"] == 1
    assert tmpl["categ_id"] == [2, "All / Saleable"]
    assert tmpl["display_name"] == f"[{sku}] Probe Widget"
    variant_id = tmpl["product_variant_id"][0]
    [variant] = odoo.execute_kw(
        "product.product",
        "read",
        [[variant_id]],
        {"fields": ["product_tmpl_id", "barcode", "default_code", "name", "lst_price"]},
    )
    assert variant["product_tmpl_id"][0] == tid
    assert (variant["barcode"], variant["default_code"], variant["name"]) == (
        code,
        sku,
        "Probe Widget",
    )
    assert variant["lst_price"] == 12.5


def test_variant_create_makes_its_template(
    odoo: odoorpc.ODOO, unique: Callable[[str], str], barcode: Callable[[], str]
) -> None:
    sku = unique("SKU")
    pid = odoo.env["product.product"].create(product_vals(sku, barcode()))
    [variant] = odoo.execute_kw(
        "product.product",
        "read",
        [[pid]],
        {"fields": ["product_tmpl_id", "type", "detailed_type", "list_price", "taxes_id"]},
    )
    assert variant["type"] == variant["detailed_type"] == "product"
    assert variant["list_price"] == 12.5
    assert variant["taxes_id"] == [1]
    tid = variant["product_tmpl_id"][0]
    [tmpl] = odoo.execute_kw(
        "product.template", "read", [[tid]], {"fields": ["product_variant_ids", "default_code"]}
    )
    assert tmpl["product_variant_ids"] == [pid]
    assert tmpl["default_code"] == sku


@pytest.mark.parametrize("model", ["product.product", "product.template"])
def test_duplicate_barcode_is_refused_with_odoo_text(
    odoo: odoorpc.ODOO, unique: Callable[[str], str], barcode: Callable[[], str], model: str
) -> None:
    sku, code = unique("SKU"), barcode()
    odoo.env["product.template"].create(product_vals(sku, code))
    with pytest.raises(odoorpc.error.RPCError) as err:
        odoo.env[model].create({"name": "Dup", "barcode": code})
    assert err.value.info["data"]["name"] == "odoo.exceptions.ValidationError"
    assert str(err.value) == DUPLICATE_BARCODE.format(barcode=code, sku=sku)
    # The failed call left nothing behind.
    assert odoo.env["product.template"].search([("name", "=", "Dup"), ("barcode", "=", code)]) == []


def test_archived_product_frees_its_barcode(
    odoo: odoorpc.ODOO, unique: Callable[[str], str], barcode: Callable[[], str]
) -> None:
    code = barcode()
    first = odoo.env["product.product"].create(product_vals(unique("SKU"), code))
    odoo.env["product.product"].write([first], {"active": False})
    second = odoo.env["product.product"].create({"name": "Replacement", "barcode": code})
    assert odoo.env["product.product"].search([("barcode", "=", code)]) == [second]


def test_default_code_is_not_unique(
    odoo: odoorpc.ODOO, unique: Callable[[str], str], barcode: Callable[[], str]
) -> None:
    sku = unique("SKU")
    first = odoo.env["product.template"].create(product_vals(sku, barcode()))
    second = odoo.env["product.template"].create(product_vals(sku, barcode(), name="Same SKU"))
    assert first != second
    found = odoo.env["product.product"].search_read(
        [("default_code", "=", sku)], ["name", "default_code"]
    )
    assert [f["name"] for f in found] == ["Probe Widget", "Same SKU"]
    matches = odoo.env["product.product"].name_search(sku)
    assert [label for _id, label in matches] == [f"[{sku}] Probe Widget", f"[{sku}] Same SKU"]


@pytest.mark.parametrize("key", ["type", "detailed_type"])
def test_type_and_detailed_type_stay_in_sync(
    odoo: odoorpc.ODOO, unique: Callable[[str], str], key: str
) -> None:
    tid = odoo.env["product.template"].create({"name": unique("T"), key: "product"})
    [row] = odoo.env["product.template"].read([tid], ["type", "detailed_type"])
    assert row["type"] == row["detailed_type"] == "product"
    odoo.env["product.template"].write([tid], {key: "service"})
    [row] = odoo.env["product.template"].read([tid], ["type", "detailed_type"])
    assert row["type"] == row["detailed_type"] == "service"


def test_default_type_is_consumable(odoo: odoorpc.ODOO, unique: Callable[[str], str]) -> None:
    tid = odoo.env["product.template"].create({"name": unique("T")})
    [row] = odoo.env["product.template"].read(
        [tid], ["type", "detailed_type", "available_in_pos", "categ_id"]
    )
    assert (row["type"], row["detailed_type"], row["available_in_pos"]) == ("consu", "consu", False)
    assert row["categ_id"] == [1, "All"]


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("product.template", "detailed_type"),
        ("product.template", "type"),
        ("product.product", "type"),
    ],
)
def test_bad_type_value_is_a_value_error(odoo: odoorpc.ODOO, model: str, key: str) -> None:
    with pytest.raises(odoorpc.error.RPCError) as err:
        odoo.env[model].create({"name": "Bad type", key: "storable"})
    assert err.value.info["data"]["name"] == "builtins.ValueError"
    assert str(err.value) == "Wrong value for product.template.detailed_type: 'storable'"


def test_search_by_template_fields_through_the_variant(
    odoo: odoorpc.ODOO, unique: Callable[[str], str], barcode: Callable[[], str]
) -> None:
    name = unique("Named")
    pid = odoo.env["product.product"].create(
        {"name": name, "barcode": barcode(), "list_price": 3.0}
    )
    assert odoo.env["product.product"].search([("name", "=", name)]) == [pid]
    assert odoo.env["product.product"].search(
        [("name", "ilike", name.lower()), ("list_price", "=", 3.0)]
    ) == [pid]
    assert odoo.env["product.product"].search([("product_tmpl_id.name", "=", name)]) == [pid]


def test_template_barcode_is_searchable_and_writable(
    odoo: odoorpc.ODOO, unique: Callable[[str], str], barcode: Callable[[], str]
) -> None:
    code, new_code = barcode(), barcode()
    tid = odoo.env["product.template"].create(product_vals(unique("SKU"), code))
    assert odoo.env["product.template"].search([("barcode", "=", code)]) == [tid]
    odoo.env["product.template"].write([tid], {"barcode": new_code, "standard_price": 9.0})
    [variant] = odoo.env["product.product"].search_read(
        [("product_tmpl_id", "=", tid)], ["barcode", "standard_price"]
    )
    assert (variant["barcode"], variant["standard_price"]) == (new_code, 9.0)


def test_seeded_categories_and_taxes(odoo: odoorpc.ODOO) -> None:
    categories = odoo.env["product.category"].search_read(
        [], ["complete_name", "property_cost_method", "property_valuation"], order="id"
    )
    assert [c["complete_name"] for c in categories[:4]] == [
        "All",
        "All / Saleable",
        "All / Expenses",
        "All / Saleable / PoS",
    ]
    assert {(c["property_cost_method"], c["property_valuation"]) for c in categories} == {
        ("standard", "manual_periodic")
    }
    taxes = odoo.env["account.tax"].read(
        [1, 2], ["name", "type_tax_use", "amount_type", "amount", "price_include"]
    )
    assert [
        (t["name"], t["type_tax_use"], t["amount_type"], t["amount"], t["price_include"])
        for t in taxes
    ] == [
        ("15%", "sale", "percent", 15.0, False),
        ("15%", "purchase", "percent", 15.0, False),
    ]
    assert odoo.env["product.category"].search([("id", "child_of", 2)]) == [2, 4]
