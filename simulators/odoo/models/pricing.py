"""Pricelists: product.pricelist, product.pricelist.item and ``get_contextual_price``
(docs/odoo17-behaviour.md §c).

The price of a product is the first applicable item of the pricelist in Odoo's item order
(``applied_on, min_quantity desc, categ_id desc, id desc``): items are applicable when
``date_start <= date <= date_end`` (both inclusive, a date-only value meaning 00:00, no date
meaning now), the quantity reaches ``min_quantity`` and the item targets the product, its
template, its category (or a parent) or all products. No applicable item, or no pricelist in
the context, gives the list price.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import or_, select

from .. import fields as F
from .. import tables as T
from ..exceptions import ValidationError
from ..orm import BaseModel

APPLIED_ON = [
    ("3_global", "All Products"),
    ("2_product_category", "Product Category"),
    ("1_product", "Product"),
    ("0_product_variant", "Product Variant"),
]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def format_datetime(value: dt.datetime) -> str:
    """babel's en_US medium datetime, which Odoo's ``format_datetime`` uses (tz UTC)."""
    hour = value.hour % 12 or 12
    suffix = "AM" if value.hour < 12 else "PM"
    return (
        f"{MONTHS[value.month - 1]} {value.day}, {value.year}, "
        f"{hour}:{value.minute:02d}:{value.second:02d} {suffix}"
    )


class ProductPricelist(BaseModel):
    _name = "product.pricelist"
    _description = "Pricelist"
    _table = T.ProductPricelist
    _order = "sequence, id"

    name = F.Char("Pricelist Name", required=True)
    active = F.Boolean("Active", default=True)
    sequence = F.Integer("Sequence", default=16)
    currency_id = F.Many2one("res.currency", "Currency", required=True, default=1)
    company_id = F.Many2one("res.company", "Company")
    discount_policy = F.Selection(
        [
            ("with_discount", "Discount included in the price"),
            ("without_discount", "Show public price & discount to the customer"),
        ],
        "Discount Policy",
        default="with_discount",
    )
    item_ids = F.One2many("product.pricelist.item", "pricelist_id", "Pricelist Rules")

    def _display_names(self, ids: Any) -> dict[int, str]:
        raw = self._read_raw(ids, ["name", "currency_id"])
        currencies = self.env["res.currency"]._display_names(
            sorted({v["currency_id"] for v in raw.values() if v["currency_id"]})
        )
        return {i: f"{v['name']} ({currencies.get(v['currency_id'], '')})" for i, v in raw.items()}

    def _product_price(
        self, pricelist_id: int, product_id: int, quantity: float, when: dt.datetime
    ) -> float:
        """``_get_product_price`` for one variant."""
        item_model = self.env["product.pricelist.item"]
        t = item_model._t
        product = self.env["product.product"]._read_raw(
            [product_id], ["product_tmpl_id", "categ_id", "list_price", "standard_price"]
        )[product_id]
        categories = self.env["product.category"]._hierarchy([product["categ_id"]], children=False)
        stmt = (
            select(t.c.id)
            .where(
                t.c.pricelist_id == pricelist_id,
                or_(t.c.date_start.is_(None), t.c.date_start <= when),
                or_(t.c.date_end.is_(None), t.c.date_end >= when),
                or_(t.c.categ_id.is_(None), t.c.categ_id.in_(categories)),
                or_(
                    t.c.product_tmpl_id.is_(None), t.c.product_tmpl_id == product["product_tmpl_id"]
                ),
                or_(t.c.product_id.is_(None), t.c.product_id == product_id),
            )
            .order_by(*item_model._order_by(None))
        )
        candidates = list(self._conn.execute(stmt).scalars())
        items = item_model._read_raw(
            candidates,
            [
                "applied_on",
                "min_quantity",
                "compute_price",
                "fixed_price",
                "percent_price",
                "price_discount",
                "price_surcharge",
                "price_round",
                "base",
                "base_pricelist_id",
            ],
        )
        for item_id in candidates:
            item = items[item_id]
            if item["min_quantity"] and quantity < item["min_quantity"]:
                continue
            if item["compute_price"] == "fixed":
                return float(item["fixed_price"] or 0.0)
            if item["base"] == "standard_price":
                base = float(product["standard_price"] or 0.0)
            elif item["base"] == "pricelist" and item["base_pricelist_id"]:
                base = self._product_price(item["base_pricelist_id"], product_id, quantity, when)
            else:
                base = float(product["list_price"] or 0.0)
            if item["compute_price"] == "percentage":
                return base - base * (item["percent_price"] or 0.0) / 100
            price = base - base * (item["price_discount"] or 0.0) / 100
            if item["price_round"]:
                price = round(price / item["price_round"]) * item["price_round"]
            return price + (item["price_surcharge"] or 0.0)
        return float(product["list_price"] or 0.0)


class ProductPricelistItem(BaseModel):
    _name = "product.pricelist.item"
    _description = "Pricelist Rule"
    _table = T.ProductPricelistItem
    _order = "applied_on, min_quantity desc, categ_id desc, id desc"

    pricelist_id = F.Many2one(
        "product.pricelist",
        "Pricelist",
        required=True,
        ondelete="cascade",
        default=lambda env: next(iter(env["product.pricelist"]._search([], limit=1)), False),
    )
    name = F.Char("Name", compute="_compute_name")
    applied_on = F.Selection(APPLIED_ON, "Apply On", required=True, default="3_global")
    categ_id = F.Many2one("product.category", "Product Category", ondelete="cascade")
    product_tmpl_id = F.Many2one("product.template", "Product", ondelete="cascade")
    product_id = F.Many2one("product.product", "Product Variant", ondelete="cascade")
    min_quantity = F.Float("Min. Quantity", default=0.0)
    date_start = F.Datetime("Start Date")
    date_end = F.Datetime("End Date")
    base = F.Selection(
        [
            ("list_price", "Sales Price"),
            ("standard_price", "Cost"),
            ("pricelist", "Other Pricelist"),
        ],
        "Based on",
        required=True,
        default="list_price",
    )
    base_pricelist_id = F.Many2one("product.pricelist", "Other Pricelist")
    compute_price = F.Selection(
        [("fixed", "Fixed Price"), ("percentage", "Discount"), ("formula", "Formula")],
        "Computation",
        required=True,
        default="fixed",
    )
    fixed_price = F.Float("Fixed Price", digits=2)
    percent_price = F.Float("Percentage Price")
    price_discount = F.Float("Price Discount", digits=2)
    price_surcharge = F.Float("Price Surcharge", digits=2)
    price_round = F.Float("Price Rounding", digits=2)
    company_id = F.Many2one("res.company", "Company")

    def _compute_name(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        return {i: {"name": label} for i, label in self._display_names(ids).items()}

    def _display_names(self, ids: Any) -> dict[int, str]:
        raw = self._read_raw(ids, ["applied_on", "categ_id", "product_tmpl_id", "product_id"])
        labels = {}
        for rid, v in raw.items():
            if v["applied_on"] == "2_product_category" and v["categ_id"]:
                label = (
                    "Category: "
                    + self.env["product.category"]._display_names([v["categ_id"]])[v["categ_id"]]
                )
            elif v["applied_on"] == "1_product" and v["product_tmpl_id"]:
                names = self.env["product.template"]._display_names([v["product_tmpl_id"]])
                label = "Product: " + names[v["product_tmpl_id"]]
            elif v["applied_on"] == "0_product_variant" and v["product_id"]:
                names = self.env["product.product"]._display_names([v["product_id"]])
                label = "Variant: " + names[v["product_id"]]
            else:
                label = "All Products"
            labels[rid] = label
        return labels

    @staticmethod
    def _consistent(vals: dict[str, Any]) -> dict[str, Any]:
        """Clear the targets the ``applied_on`` level does not use (as Odoo's create/write)."""
        clear = {
            "3_global": ("product_id", "product_tmpl_id", "categ_id"),
            "2_product_category": ("product_id", "product_tmpl_id"),
            "1_product": ("product_id", "categ_id"),
            "0_product_variant": ("categ_id",),
        }.get(vals.get("applied_on") or "", ())
        return {**vals, **dict.fromkeys(clear, False)}

    def _create(self, vals_list: Any) -> list[int]:
        return super()._create([self._consistent(dict(v)) for v in vals_list])

    def _write(self, ids: Any, vals: dict[str, Any]) -> None:
        super()._write(ids, self._consistent(dict(vals)))

    def _check_constraints(self, ids: list[int], names: set[str]) -> None:
        raw = self._read_raw(
            ids,
            ["applied_on", "categ_id", "product_tmpl_id", "product_id", "date_start", "date_end"],
        )
        for rid, v in raw.items():
            if v["applied_on"] == "2_product_category" and not v["categ_id"]:
                raise ValidationError(
                    "Please specify the category for which this rule should be applied"
                )
            if v["applied_on"] == "1_product" and not v["product_tmpl_id"]:
                raise ValidationError(
                    "Please specify the product for which this rule should be applied"
                )
            if v["applied_on"] == "0_product_variant" and not v["product_id"]:
                raise ValidationError(
                    "Please specify the product variant for which this rule should be applied"
                )
            if v["date_start"] and v["date_end"] and v["date_start"] >= v["date_end"]:
                label = self._display_names([rid])[rid]
                raise ValidationError(
                    f"{label}: end date ({format_datetime(v['date_end'])}) should be greater than "
                    f"start date ({format_datetime(v['date_start'])})"
                )


def contextual_price(model: BaseModel, product_id: int) -> float:
    """``_get_contextual_price``: the pricelist, date and quantity come from the context."""
    env = model.env
    wanted = env.context.get("pricelist")
    pricelists = env["product.pricelist"]
    pricelist_id: int | None = None
    if isinstance(wanted, str) and wanted:
        found = pricelists._search([("name", "=", wanted)], limit=1)
        pricelist_id = found[0] if found else None
    elif wanted:
        pricelist_id = int(wanted)
    if not pricelist_id or not pricelists._existing([pricelist_id]):
        product = env["product.product"]._read_raw([product_id], ["list_price"])[product_id]
        return float(product["list_price"] or 0.0)
    when = env.context.get("date")
    moment = F.Datetime().to_column(when) if when else env.now
    quantity = float(env.context.get("quantity") or 1.0)
    return float(pricelists._product_price(pricelist_id, product_id, quantity, moment))
