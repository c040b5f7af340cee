"""Conformance: product attributes and variants, as Odoo 17 makes them.

The calls the catalog sync makes on a database with variants (``fields_get`` of
``product_template_attribute_value_ids``, ``search_read`` of variants with it,
``product.template.attribute.value.read``) and the create/write paths that make variants:
a template's attribute lines make the cartesian product of their values, removing a value
unlinks (or, when stock uses them, archives) its variants, and ``lst_price`` adds the values'
``price_extra``. Odoo's refusals come back with Odoo's exception class and text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import odoorpc
import pytest

from .conftest import Fresh

ALL = {"context": {"active_test": False}}


def attribute(odoo: odoorpc.ODOO, name: str, values: list[str], **extra: Any) -> list[int]:
    """An attribute with its values: [attribute id, value ids...]."""
    aid = int(
        odoo.env["product.attribute"].create(
            {"name": name, "value_ids": [(0, 0, {"name": v}) for v in values], **extra}
        )
    )
    [row] = odoo.execute_kw("product.attribute", "read", [[aid], ["value_ids"]])
    return [aid, *row["value_ids"]]


def line(attribute_id: int, value_ids: list[int]) -> tuple[int, int, dict[str, Any]]:
    return (0, 0, {"attribute_id": attribute_id, "value_ids": [(6, 0, value_ids)]})


def variants(odoo: odoorpc.ODOO, tmpl: int, active_test: bool = True) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = odoo.execute_kw(
        "product.product",
        "search_read",
        [[("product_tmpl_id", "=", tmpl)]],
        {
            "fields": [
                "display_name",
                "product_template_attribute_value_ids",
                "combination_indices",
                "lst_price",
                "list_price",
                "active",
                "write_date",
            ],
            "order": "id",
            "context": {"active_test": active_test},
        },
    )
    return rows


def shirt(odoo: odoorpc.ODOO, unique: Callable[[str], str]) -> tuple[int, list[int], list[int]]:
    """A template with 2 colours x 2 sizes: (template, [colour, red, blue], [size, s, l])."""
    colour = attribute(odoo, unique("Colour"), ["Red", "Blue"])
    size = attribute(odoo, unique("Size"), ["S", "L"])
    tmpl = int(
        odoo.env["product.template"].create(
            {
                "name": "Shirt",
                "list_price": 20.0,
                "type": "product",
                "attribute_line_ids": [line(colour[0], colour[1:]), line(size[0], size[1:])],
            }
        )
    )
    return tmpl, colour, size


def test_lines_make_the_cartesian_product_of_their_values(
    odoo: odoorpc.ODOO, unique: Callable[[str], str]
) -> None:
    tmpl, _colour, _size = shirt(odoo, unique)
    rows = variants(odoo, tmpl)
    assert len(rows) == 4
    assert sorted(r["display_name"] for r in rows) == [
        "Shirt (Blue, L)",
        "Shirt (Blue, S)",
        "Shirt (Red, L)",
        "Shirt (Red, S)",
    ]
    for r in rows:
        assert len(r["product_template_attribute_value_ids"]) == 2
        ids = sorted(r["product_template_attribute_value_ids"])
        assert r["combination_indices"] == ",".join(str(i) for i in ids)
    [tpl] = odoo.execute_kw(
        "product.template", "read", [[tmpl], ["product_variant_count", "attribute_line_ids"]]
    )
    assert tpl["product_variant_count"] == 4
    assert len(tpl["attribute_line_ids"]) == 2


def test_the_reads_the_sync_makes(odoo: odoorpc.ODOO, unique: Callable[[str], str]) -> None:
    fields = odoo.execute_kw(
        "product.product",
        "fields_get",
        [["product_template_attribute_value_ids"]],
        {"attributes": ["type"]},
    )
    assert fields == {"product_template_attribute_value_ids": {"type": "many2many"}}
    tmpl, colour, _size = shirt(odoo, unique)
    [red_s] = [r for r in variants(odoo, tmpl) if r["display_name"] == "Shirt (Red, S)"]
    ptavs = red_s["product_template_attribute_value_ids"]
    values = odoo.execute_kw(
        "product.template.attribute.value", "read", [ptavs, ["attribute_id", "name"]]
    )
    by_name = {v["name"]: v["attribute_id"] for v in values}
    assert set(by_name) == {"Red", "S"}
    assert by_name["Red"] == [colour[0], odoo.env["product.attribute"].browse(colour[0]).name]


def test_lst_price_adds_price_extra_and_a_price_extra_change_writes_only_the_value(
    fresh: Fresh, unique: Callable[[str], str]
) -> None:
    odoo = fresh.odoo
    fresh.emu.database.clock = lambda: dt.datetime(2026, 1, 5, 10, 0, 0, 100)
    tmpl, colour, _size = shirt(odoo, unique)
    ptav = odoo.env["product.template.attribute.value"]
    [red] = ptav.search([("product_tmpl_id", "=", tmpl), ("name", "=", "Red")])
    fresh.emu.database.clock = lambda: dt.datetime(2026, 1, 5, 11, 0, 0, 100)
    odoo.execute_kw("product.template.attribute.value", "write", [[red], {"price_extra": 5.5}])
    rows = variants(odoo, tmpl)
    prices = {r["display_name"]: r["lst_price"] for r in rows}
    assert prices == {
        "Shirt (Red, S)": 25.5,
        "Shirt (Red, L)": 25.5,
        "Shirt (Blue, S)": 20.0,
        "Shirt (Blue, L)": 20.0,
    }
    assert all(r["list_price"] == 20.0 for r in rows)
    # Neither the variants nor the template are written: only the value is.
    assert {r["write_date"] for r in rows} == {"2026-01-05 10:00:00"}
    [tpl] = odoo.execute_kw("product.template", "read", [[tmpl], ["write_date"]])
    assert tpl["write_date"] == "2026-01-05 10:00:00"
    [value] = odoo.execute_kw("product.template.attribute.value", "read", [[red], ["write_date"]])
    assert value["write_date"] == "2026-01-05 11:00:00"
    # A value added: Odoo's _create_variant_ids writes `active` on every variant it keeps, so
    # the existing variants are written too, not only the new ones.
    fresh.emu.database.clock = lambda: dt.datetime(2026, 1, 5, 12, 0, 0, 100)
    green = odoo.env["product.attribute.value"].create({"name": "Green", "attribute_id": colour[0]})
    [colour_line] = odoo.env["product.template.attribute.line"].search(
        [("product_tmpl_id", "=", tmpl), ("attribute_id", "=", colour[0])]
    )
    odoo.execute_kw(
        "product.template.attribute.line", "write", [[colour_line], {"value_ids": [(4, green)]}]
    )
    after = variants(odoo, tmpl)
    assert len(after) == 6 and {r["write_date"] for r in after} == {"2026-01-05 12:00:00"}


def test_adding_a_value_makes_its_variants_removing_one_unlinks_or_archives(
    odoo: odoorpc.ODOO, unique: Callable[[str], str]
) -> None:
    tmpl, colour, _size = shirt(odoo, unique)
    green = int(
        odoo.env["product.attribute.value"].create({"name": "Green", "attribute_id": colour[0]})
    )
    [colour_line] = odoo.env["product.template.attribute.line"].search(
        [("product_tmpl_id", "=", tmpl), ("attribute_id", "=", colour[0])]
    )
    odoo.execute_kw(
        "product.template",
        "write",
        [[tmpl], {"attribute_line_ids": [(1, colour_line, {"value_ids": [(4, green)]})]}],
    )
    names = sorted(r["display_name"] for r in variants(odoo, tmpl))
    assert len(names) == 6 and "Shirt (Green, L)" in names
    # Stock on (Blue, S): that variant cannot be deleted, it is archived.
    [blue_s] = [r["id"] for r in variants(odoo, tmpl) if r["display_name"] == "Shirt (Blue, S)"]
    odoo.env["stock.quant"].create({"product_id": blue_s, "location_id": 8, "quantity": 3})
    odoo.execute_kw(
        "product.template.attribute.line",
        "write",
        [[colour_line], {"value_ids": [(6, 0, [colour[1], green])]}],
    )
    active = sorted(r["display_name"] for r in variants(odoo, tmpl))
    assert active == ["Shirt (Green, L)", "Shirt (Green, S)", "Shirt (Red, L)", "Shirt (Red, S)"]
    every = {r["id"]: r for r in variants(odoo, tmpl, active_test=False)}
    assert len(every) == 5 and every[blue_s]["active"] is False
    # The archived variant keeps its (now archived) value.
    [blue] = odoo.execute_kw(
        "product.template.attribute.value",
        "search_read",
        [[("product_tmpl_id", "=", tmpl), ("name", "=", "Blue")]],
        {"fields": ["ptav_active"]},
    )
    assert blue["ptav_active"] is False
    # Putting Blue back reuses the archived variant and its value.
    odoo.execute_kw(
        "product.template.attribute.line",
        "write",
        [[colour_line], {"value_ids": [(4, colour[2])]}],
    )
    again = {r["id"]: r for r in variants(odoo, tmpl)}
    assert blue_s in again and len(again) == 6


def test_the_lone_variant_is_replaced_and_no_variant_attributes_make_none(
    odoo: odoorpc.ODOO, unique: Callable[[str], str]
) -> None:
    tmpl = int(odoo.env["product.template"].create({"name": "Mug", "default_code": unique("MUG")}))
    [lone] = [r["id"] for r in variants(odoo, tmpl)]
    colour = attribute(odoo, unique("Colour"), ["Red", "Blue"])
    engraving = attribute(odoo, unique("Engraving"), ["Yes", "No"], create_variant="no_variant")
    odoo.execute_kw(
        "product.template",
        "write",
        [
            [tmpl],
            {
                "attribute_line_ids": [
                    line(colour[0], colour[1:]),
                    line(engraving[0], engraving[1:]),
                ]
            },
        ],
    )
    rows = variants(odoo, tmpl)
    assert sorted(r["display_name"] for r in rows) == ["Mug (Blue)", "Mug (Red)"]
    assert lone not in [r["id"] for r in rows]
    assert variants(odoo, tmpl, active_test=False) == rows  # the lone one was unlinked
    # A single-value line is written on the variants, and left out of their names.
    material = attribute(odoo, unique("Material"), ["Clay"])
    odoo.execute_kw(
        "product.template",
        "write",
        [[tmpl], {"attribute_line_ids": [line(material[0], material[1:])]}],
    )
    after = variants(odoo, tmpl)
    assert [r["id"] for r in after] == [r["id"] for r in rows]
    assert all(len(r["product_template_attribute_value_ids"]) == 2 for r in after)
    assert sorted(r["display_name"] for r in after) == ["Mug (Blue)", "Mug (Red)"]


def test_refusals(odoo: odoorpc.ODOO, unique: Callable[[str], str]) -> None:
    colour = attribute(odoo, unique("Colour"), ["Red", "Blue"])
    size = attribute(odoo, unique("Size"), ["S"])
    template = odoo.env["product.template"]
    with pytest.raises(odoorpc.error.RPCError) as err:
        template.create({"name": "Bare", "attribute_line_ids": [line(colour[0], [])]})
    assert err.value.info["data"]["name"] == "odoo.exceptions.ValidationError"
    assert str(err.value) == (
        f"The attribute {odoo.env['product.attribute'].browse(colour[0]).name} must have at least"
        " one value for the product Bare."
    )
    with pytest.raises(odoorpc.error.RPCError) as err:
        template.create({"name": "Mixed", "attribute_line_ids": [line(colour[0], [size[1]])]})
    assert err.value.info["data"]["name"] == "odoo.exceptions.ValidationError"
    assert "On the product Mixed you cannot associate the value" in str(err.value)
    assert str(err.value).endswith("because they do not match.")
    assert not template.search([("name", "in", ["Bare", "Mixed"])])
    with pytest.raises(odoorpc.error.RPCError) as err:
        odoo.env["product.attribute.value"].create({"name": "Red", "attribute_id": colour[0]})
    assert err.value.info["data"]["name"] == "odoo.exceptions.ValidationError"
    assert str(err.value) == (
        "The operation cannot be completed: You cannot create two values with the same name"
        " for the same attribute."
    )
    tmpl = int(
        template.create({"name": "Cap", "attribute_line_ids": [line(colour[0], colour[1:])]})
    )
    with pytest.raises(odoorpc.error.RPCError) as err:
        odoo.execute_kw("product.attribute", "unlink", [[colour[0]]])
    assert err.value.info["data"]["name"] == "odoo.exceptions.UserError"
    assert "because it is used on the following products:\nCap" in str(err.value)
    [ptal] = odoo.env["product.template.attribute.line"].search([("product_tmpl_id", "=", tmpl)])
    with pytest.raises(odoorpc.error.RPCError) as err:
        odoo.execute_kw(
            "product.template.attribute.line", "write", [[ptal], {"attribute_id": size[0]}]
        )
    assert err.value.info["data"]["name"] == "odoo.exceptions.UserError"
    assert "you cannot transform the attribute" in str(err.value)


def test_the_values_stream_reads(fresh: Fresh, unique: Callable[[str], str]) -> None:
    """The sync's third stream: attribute values by write_date (with the cursor's '|' domain:
    a value seen in its second and written again later comes back), then the variants that
    carry them, archived ones included."""
    odoo = fresh.odoo
    fresh.emu.database.clock = lambda: dt.datetime(2026, 2, 1, 9, 0, 0, 500)
    tmpl, _colour, _size = shirt(odoo, unique)
    ptav = "product.template.attribute.value"
    values = odoo.execute_kw(
        ptav,
        "search_read",
        [[("product_tmpl_id", "=", tmpl)]],
        {"fields": ["name", "write_date"], "order": "write_date asc, id asc"},
    )
    assert [v["write_date"] for v in values] == ["2026-02-01 09:00:00"] * 4
    red = next(v["id"] for v in values if v["name"] == "Red")
    fresh.emu.database.clock = lambda: dt.datetime(2026, 2, 1, 9, 0, 2, 100)
    odoo.execute_kw(ptav, "write", [[red], {"price_extra": 1.0}])
    seen = sorted(v["id"] for v in values)
    domain = [
        "|",
        ("write_date", ">=", "2026-02-01 09:00:01"),
        "&",
        ("write_date", ">=", "2026-02-01 09:00:00"),
        ("id", "not in", seen),
    ]
    again = odoo.execute_kw(
        ptav,
        "search_read",
        [domain],
        {
            "fields": ["write_date"],
            "order": "write_date asc, id asc",
            "limit": 10,
            "context": {"active_test": False},
        },
    )
    assert again == [{"id": red, "write_date": "2026-02-01 09:00:02"}]
    [red_s, red_l] = [r for r in variants(odoo, tmpl) if "Red" in r["display_name"]]
    odoo.execute_kw("product.product", "write", [[red_l["id"]], {"active": False}])
    carriers = odoo.execute_kw(
        "product.product",
        "search_read",
        [[("product_template_attribute_value_ids", "in", [red])]],
        {"fields": ["lst_price", "active"], "context": {"active_test": False}},
    )
    assert sorted((c["id"], c["lst_price"], c["active"]) for c in carriers) == sorted(
        [(red_s["id"], 21.0, True), (red_l["id"], 21.0, False)]
    )
