"""Conformance: pricelists and ``get_contextual_price`` (docs/odoo17-behaviour.md §c)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import odoorpc
import pytest


@pytest.fixture
def priced(odoo: odoorpc.ODOO, unique: Callable[[str], str]) -> dict[str, Any]:
    """A 12.50 product with a January promotion at 9.99, and 8.88 from 10 units."""
    sku = unique("SKU")
    pid = odoo.env["product.product"].create(
        {"name": "Probe Widget", "default_code": sku, "list_price": 12.5, "type": "product"}
    )
    window = {"date_start": "2025-01-01 00:00:00", "date_end": "2025-01-31 23:59:59"}
    pricelist = odoo.env["product.pricelist"].create(
        {
            "name": unique("Promo"),
            "item_ids": [
                (
                    0,
                    0,
                    {
                        "applied_on": "0_product_variant",
                        "product_id": pid,
                        "compute_price": "fixed",
                        "fixed_price": 9.99,
                        **window,
                    },
                ),
                (
                    0,
                    0,
                    {
                        "applied_on": "0_product_variant",
                        "product_id": pid,
                        "compute_price": "fixed",
                        "fixed_price": 8.88,
                        "min_quantity": 10,
                        **window,
                    },
                ),
            ],
        }
    )
    return {"sku": sku, "product": pid, "pricelist": pricelist}


def price(odoo: odoorpc.ODOO, pid: int, **context: Any) -> float:
    value = odoo.execute_kw(
        "product.product", "get_contextual_price", [[pid]], {"context": context}
    )
    assert isinstance(value, float)
    return value


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"date": "2025-01-15"}, 9.99),
        ({"date": "2025-01-15 10:00:00"}, 9.99),
        ({"date": "2025-01-15", "quantity": 10}, 8.88),
        ({"date": "2024-12-31"}, 12.5),
        ({"date": "2025-02-01"}, 12.5),
        ({"date": "2025-01-31"}, 9.99),
        ({}, 12.5),  # no date: now, after the window
    ],
)
def test_contextual_price_table(
    odoo: odoorpc.ODOO, priced: dict[str, Any], context: dict[str, Any], expected: float
) -> None:
    assert price(odoo, priced["product"], pricelist=priced["pricelist"], **context) == expected


def test_no_pricelist_means_list_price(odoo: odoorpc.ODOO, priced: dict[str, Any]) -> None:
    assert price(odoo, priced["product"], date="2025-01-15") == 12.5


def test_template_price_and_other_rules(odoo: odoorpc.ODOO, unique: Callable[[str], str]) -> None:
    pid = odoo.env["product.product"].create(
        {"name": unique("Mug"), "list_price": 20.0, "categ_id": 4}
    )
    tmpl = odoo.env["product.product"].read([pid], ["product_tmpl_id"])[0]["product_tmpl_id"][0]
    pricelist = odoo.env["product.pricelist"].create({"name": unique("Rules")})
    Item = odoo.env["product.pricelist.item"]
    Item.create(
        {
            "pricelist_id": pricelist,
            "applied_on": "2_product_category",
            "categ_id": 2,
            "compute_price": "percentage",
            "percent_price": 10,
        }
    )
    assert price(odoo, pid, pricelist=pricelist) == 18.0  # PoS is a child of Saleable
    Item.create(
        {
            "pricelist_id": pricelist,
            "applied_on": "1_product",
            "product_tmpl_id": tmpl,
            "compute_price": "formula",
            "price_discount": 50,
            "price_surcharge": 1,
        }
    )
    assert price(odoo, pid, pricelist=pricelist) == 11.0  # the product rule comes first
    template_price = odoo.execute_kw(
        "product.template", "get_contextual_price", [[tmpl]], {"context": {"pricelist": pricelist}}
    )
    assert template_price == 11.0


def test_pricelist_item_fields_and_defaults(
    odoo: odoorpc.ODOO, unique: Callable[[str], str]
) -> None:
    fields = odoo.execute_kw(
        "product.pricelist.item", "fields_get", [], {"attributes": ["type", "selection"]}
    )
    assert fields["date_start"]["type"] == fields["date_end"]["type"] == "datetime"
    assert [k for k, _ in fields["applied_on"]["selection"]] == [
        "3_global",
        "2_product_category",
        "1_product",
        "0_product_variant",
    ]
    assert [k for k, _ in fields["compute_price"]["selection"]] == [
        "fixed",
        "percentage",
        "formula",
    ]
    assert [k for k, _ in fields["base"]["selection"]] == [
        "list_price",
        "standard_price",
        "pricelist",
    ]
    odoo.env["product.pricelist"].create({"name": unique("Any")})
    item = odoo.env["product.pricelist.item"].create({"compute_price": "fixed", "fixed_price": 1.0})
    [row] = odoo.env["product.pricelist.item"].read([item], ["pricelist_id", "applied_on", "name"])
    assert row["pricelist_id"] is not False  # the field has a default
    assert (row["applied_on"], row["name"]) == ("3_global", "All Products")


def test_item_validation_errors(odoo: odoorpc.ODOO, priced: dict[str, Any]) -> None:
    Item = odoo.env["product.pricelist.item"]
    with pytest.raises(odoorpc.error.RPCError) as err:
        Item.create(
            {
                "pricelist_id": priced["pricelist"],
                "applied_on": "0_product_variant",
                "fixed_price": 1,
            }
        )
    assert err.value.info["data"]["name"] == "odoo.exceptions.ValidationError"
    assert (
        str(err.value) == "Please specify the product variant for which this rule should be applied"
    )
    with pytest.raises(odoorpc.error.RPCError) as err:
        Item.create(
            {
                "pricelist_id": priced["pricelist"],
                "applied_on": "0_product_variant",
                "product_id": priced["product"],
                "date_start": "2025-03-02 00:00:00",
                "date_end": "2025-03-01 00:00:00",
            }
        )
    assert str(err.value) == (
        f"Variant: [{priced['sku']}] Probe Widget: end date (Mar 1, 2025, 12:00:00 AM) "
        "should be greater than start date (Mar 2, 2025, 12:00:00 AM)"
    )


def test_private_pricing_methods_are_refused(odoo: odoorpc.ODOO, priced: dict[str, Any]) -> None:
    with pytest.raises(odoorpc.error.RPCError) as err:
        odoo.execute_kw(
            "product.pricelist",
            "_get_product_price",
            [[priced["pricelist"]], priced["product"], 1.0],
        )
    assert err.value.info["data"]["name"] == "odoo.exceptions.AccessError"
    assert (
        str(err.value) == "Private methods (such as _get_product_price) cannot be called remotely."
    )
