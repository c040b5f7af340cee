"""The product master read from Odoo for the stores' catalog (docs/catalog.md).

Reads only, in pages: `search_read` with `limit`, ordered `write_date asc, id asc`, with
`active_test: False` so archived products come back (to be withdrawn). Each page's taxes,
categories and attribute values are read once for the page, not per product. A product edited
on its template keeps its variant's `write_date`, so templates are followed as a stream of
their own and their variants read again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from temporalio import activity

from activities.odoo.base import OdooActivityBase
from domain.catalog import (
    CatalogCursor,
    Cursor,
    MappedPage,
    map_products,
    percent,
    stamp_of,
    unread_variants,
)

PRODUCT = "product.product"
TEMPLATE = "product.template"
VALUE = "product.template.attribute.value"
ORDER = "write_date asc, id asc"
ALL_RECORDS = {"active_test": False}
PRODUCT_FIELDS = [
    "default_code",
    "barcode",
    "name",
    "categ_id",
    "list_price",
    # The variant's price: list_price plus the price_extra of its attribute values.
    "lst_price",
    "taxes_id",
    "active",
    "write_date",
    "product_tmpl_id",
]
ATTRIBUTES = "product_template_attribute_value_ids"
# Products per page: a page is one command to each store, and its read a few RPCs.
PAGE = 200


class Stream(StrEnum):
    VARIANTS = "variants"  # product.product by its own write_date
    TEMPLATES = "templates"  # product.template by its write_date: its variants read again
    # product.template.attribute.value by its write_date (a price_extra edit writes only the
    # value): the variants that carry it read again
    VALUES = "values"


class ReadProductsInput(BaseModel):
    cursor: CatalogCursor
    stream: Stream
    limit: int = PAGE
    # The seconds this sync's variants stream read (from its start position to the sync's
    # start): the templates' and the values' streams leave out the variants it already read
    # since their change (None: none left out).
    variants_read: tuple[str, str] | None = None
    # The sync's horizon: at a stream's end, a position before it moves to the next second.
    horizon: str | None = None


class ProductPage(BaseModel):
    """A page mapped to the POS model, and the cursor after it; `rows` 0 = the stream's end."""

    page: MappedPage
    cursor: CatalogCursor
    rows: int
    # The page was full: there may be more.
    more: bool


class ProductStatesInput(BaseModel):
    odoo_ids: list[int]


class ProductStates(BaseModel):
    """`active` of each id Odoo still has (a deleted product is absent)."""

    active: dict[int, bool]


class OdooCatalogActivities(OdooActivityBase):
    _currency: str | None = None
    _has_attributes: bool | None = None

    @activity.defn
    def read_changed_products(self, input: ReadProductsInput) -> ProductPage:
        """The next page of changed products of one stream, mapped to POS items."""
        cursor = input.cursor
        stream = {
            Stream.VARIANTS: cursor.variants,
            Stream.TEMPLATES: cursor.templates,
            Stream.VALUES: cursor.values or Cursor(),
        }[input.stream]
        limit = max(1, input.limit)
        rows: Sequence[Mapping[str, Any]]
        if input.stream is Stream.VARIANTS:
            stamped = self._products(stream.domain(), limit=limit)
            rows = stream.fresh(stamped)
        else:
            model, link = (
                (TEMPLATE, "product_tmpl_id")
                if input.stream is Stream.TEMPLATES
                else (VALUE, ATTRIBUTES)
            )
            if model == VALUE and not self._attributes_known():
                stamped = []  # a database without variants' attribute values
            else:
                stamped = self.odoo.call(
                    model,
                    "search_read",
                    stream.domain(),
                    fields=["write_date"],
                    order=ORDER,
                    limit=limit,
                    context=ALL_RECORDS,
                )
            fresh = stream.fresh(stamped)
            ids = [t["id"] for t in fresh]
            rows = self._products([(link, "in", ids)]) if ids else []
            changed = {t["id"]: stamp_of(t) for t in fresh}
            rows = unread_variants(rows, changed, link, input.variants_read)
        after = stream.advance(stamped)
        if len(stamped) < limit:
            after = after.settled(input.horizon)
        new = cursor.model_copy(update={input.stream.value: after})
        return ProductPage(
            page=self._mapped(rows), cursor=new, rows=len(stamped), more=len(stamped) >= limit
        )

    @activity.defn
    def product_states(self, input: ProductStatesInput) -> ProductStates:
        """Which of these products Odoo still has, and whether each is active (--full)."""
        if not input.odoo_ids:
            return ProductStates(active={})
        rows = self.odoo.call(
            PRODUCT,
            "search_read",
            [("id", "in", sorted(set(input.odoo_ids)))],
            fields=["active"],
            context=ALL_RECORDS,
        )
        return ProductStates(active={r["id"]: bool(r["active"]) for r in rows})

    def _products(self, domain: list[Any], limit: int | None = None) -> list[dict[str, Any]]:
        fields = [*PRODUCT_FIELDS, *([ATTRIBUTES] if self._attributes_known() else [])]
        kwargs: dict[str, Any] = {"fields": fields, "order": ORDER, "context": ALL_RECORDS}
        if limit is not None:
            kwargs["limit"] = limit
        rows: list[dict[str, Any]] = self.odoo.call(PRODUCT, "search_read", domain, **kwargs)
        return rows

    def _attributes_known(self) -> bool:
        """Whether the database has product variants' attribute values (Odoo 17 always has;
        a database without the field maps every product with no attributes)."""
        if self._has_attributes is None:
            fields = self.odoo.call(PRODUCT, "fields_get", [ATTRIBUTES], attributes=["type"])
            self._has_attributes = ATTRIBUTES in fields
        return self._has_attributes

    def _mapped(self, rows: Sequence[Mapping[str, Any]]) -> MappedPage:
        """The page's rows mapped, reading its taxes, categories and attribute values once."""
        tax_ids = sorted({t for r in rows for t in (r.get("taxes_id") or [])})
        categ_ids = sorted({r["categ_id"][0] for r in rows if isinstance(r.get("categ_id"), list)})
        value_ids = sorted({v for r in rows for v in (r.get(ATTRIBUTES) or [])})
        rates: dict[int, str] = {}
        if tax_ids:
            for t in self.odoo.call(
                "account.tax", "read", tax_ids, ["amount", "amount_type"], context=ALL_RECORDS
            ):
                rate = percent(t["amount"]) if t.get("amount_type") == "percent" else None
                if rate is not None:
                    rates[t["id"]] = rate
        categories: dict[int, str] = {}
        if categ_ids:
            for c in self.odoo.call("product.category", "read", categ_ids, ["complete_name"]):
                categories[c["id"]] = c["complete_name"] or ""
        values: dict[int, tuple[str, str]] = {}
        if value_ids:
            for v in self.odoo.call(
                "product.template.attribute.value", "read", value_ids, ["attribute_id", "name"]
            ):
                attribute = v.get("attribute_id")
                if isinstance(attribute, list) and len(attribute) > 1:
                    values[v["id"]] = (str(attribute[1]), str(v["name"]))
        return map_products(rows, rates, categories, values, self._company_currency())

    def _company_currency(self) -> str:
        if self._currency is None:
            rows = self.odoo.call("res.company", "search_read", [], fields=["currency_id"], limit=1)
            currency = rows[0]["currency_id"] if rows else False
            self._currency = currency[1] if isinstance(currency, list) else "USD"
        return self._currency


def stream_cursor(cursor: CatalogCursor, stream: Stream) -> Cursor:
    return cursor.variants if stream is Stream.VARIANTS else cursor.templates
