"""Product attributes and variants: product.attribute, product.attribute.value,
product.template.attribute.line and product.template.attribute.value, as Odoo 17 has them.

A template's attribute lines pick values of attributes; each line materialises one
``product.template.attribute.value`` (ptav) per value picked, carrying the value's
``price_extra`` for that template. Variants are the cartesian product of the active ptavs of
the lines whose attribute creates variants (``create_variant='always'``; ``no_variant``
attributes never make variants, ``dynamic`` ones only reuse the variants that exist), created,
reactivated or removed by ``product.template._create_variant_ids``; a variant that cannot be
deleted (stock moves or quants use it, or ...) is archived instead (``_unlink_or_archive``).
Changing a ptav's ``price_extra`` writes only that ptav: neither the variant nor the template
is written (their ``lst_price`` is computed).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select

from .. import fields as F
from .. import tables as T
from ..domain import LINK
from ..exceptions import UserError, ValidationError
from ..orm import BaseModel

CREATE_VARIANT = [
    ("always", "Instantly"),
    ("dynamic", "Dynamically"),
    ("no_variant", "Never (option)"),
]
DISPLAY_TYPE = [
    ("radio", "Radio"),
    ("pills", "Pills"),
    ("select", "Select"),
    ("color", "Color"),
    ("multi", "Multi-checkbox (option)"),
]
LINE_VALUES = "product_attribute_value_product_template_attribute_line_rel"
COMBINATION = "product_variant_combination"


def _used_on(model: BaseModel, attribute_ids: list[int]) -> dict[int, list[int]]:
    """The templates each attribute is used on (through its attribute lines, any state)."""
    line = model.env["product.template.attribute.line"]._t
    out: dict[int, list[int]] = defaultdict(list)
    stmt = (
        select(line.c.attribute_id, line.c.product_tmpl_id)
        .where(line.c.attribute_id.in_(attribute_ids))
        .distinct()
    )
    for attribute, template in model._conn.execute(stmt):
        out[attribute].append(template)
    return out


def attribute_value_names(model: BaseModel, ids: Any) -> dict[int, str]:
    """`Attribute: Value`, the display name of an attribute value and of a template's."""
    raw = model._read_raw(ids, ["name", "attribute_id"])
    attributes = model.env["product.attribute"]._column_values(
        sorted({v["attribute_id"] for v in raw.values() if v["attribute_id"]}), "name"
    )
    return {i: f"{attributes.get(v['attribute_id'])}: {v['name']}" for i, v in raw.items()}


class ProductAttribute(BaseModel):
    _name = "product.attribute"
    _description = "Product Attribute"
    _table = T.ProductAttribute
    _order = "sequence, id"

    name = F.Char("Attribute", required=True)
    create_variant = F.Selection(
        CREATE_VARIANT, "Variants Creation Mode", required=True, default="always"
    )
    display_type = F.Selection(DISPLAY_TYPE, "Display Type", required=True, default="radio")
    sequence = F.Integer("Sequence")
    value_ids = F.One2many("product.attribute.value", "attribute_id", "Values")
    attribute_line_ids = F.One2many("product.template.attribute.line", "attribute_id", "Lines")

    def _products_label(self, attribute_id: int) -> str:
        templates = _used_on(self, [attribute_id]).get(attribute_id, [])
        names = self.env["product.template"]._display_names(sorted(templates))
        return ", ".join(names[t] for t in sorted(templates))

    def _write(self, ids: Any, vals: dict[str, Any]) -> None:
        if "create_variant" in vals:
            current = self._column_values(list(ids), "create_variant")
            used = _used_on(self, list(ids))
            for rid in ids:
                if vals["create_variant"] != current.get(rid) and used.get(rid):
                    name = self._column_values([rid], "name")[rid]
                    raise UserError(
                        f"You cannot change the Variants Creation Mode of the attribute {name}"
                        " because it is used on the following products:\n"
                        f"{self._products_label(rid)}"
                    )
        super()._write(ids, vals)

    def _unlink_check(self, ids: list[int]) -> None:
        used = _used_on(self, ids)
        names = self._column_values(ids, "name")
        for rid in ids:
            if used.get(rid):
                raise UserError(
                    f"You cannot delete the attribute {names[rid]} because it is used on the"
                    f" following products:\n{self._products_label(rid)}"
                )


class ProductAttributeValue(BaseModel):
    _name = "product.attribute.value"
    _description = "Attribute Value"
    _table = T.ProductAttributeValue
    _order = "attribute_id, sequence, id"

    name = F.Char("Value", required=True)
    sequence = F.Integer("Sequence")
    attribute_id = F.Many2one("product.attribute", "Attribute", required=True, ondelete="cascade")
    default_extra_price = F.Float("Default Extra Price", digits=2, default=0.0)

    def _display_names(self, ids: Any) -> dict[int, str]:
        return attribute_value_names(self, ids)

    def _check_constraints(self, ids: list[int], names: set[str]) -> None:
        # _sql_constraints value_company_uniq: unique (name, attribute_id).
        if names & {"name", "attribute_id"}:
            self._check_unique(
                ids,
                ("name", "attribute_id"),
                "You cannot create two values with the same name for the same attribute.",
            )

    def _write(self, ids: Any, vals: dict[str, Any]) -> None:
        if "attribute_id" in vals:
            current = self._column_values(list(ids), "attribute_id")
            for rid in ids:
                if current.get(rid) != vals["attribute_id"] and self._used_templates(rid):
                    label = self._display_names([rid])[rid]
                    raise UserError(
                        f"You cannot change the attribute of the value {label} because it is"
                        f" used on the following products: {self._templates_label(rid)}"
                    )
        super()._write(ids, vals)

    def _used_templates(self, value_id: int) -> list[int]:
        ptav = self.env["product.template.attribute.value"]._t
        stmt = (
            select(ptav.c.product_tmpl_id)
            .where(ptav.c.product_attribute_value_id == value_id, ptav.c.ptav_active == True)  # noqa: E712
            .distinct()
        )
        return sorted(t for t in self._conn.execute(stmt).scalars() if t)

    def _templates_label(self, value_id: int) -> str:
        templates = self._used_templates(value_id)
        names = self.env["product.template"]._display_names(templates)
        return ", ".join(names[t] for t in templates)

    def _unlink_check(self, ids: list[int]) -> None:
        for rid in ids:
            if self._used_templates(rid):
                label = self._display_names([rid])[rid]
                raise UserError(
                    f"You cannot delete the value {label} because it is used on the following"
                    f" products:\n{self._templates_label(rid)}\n If the value has been"
                    " associated to a product in the past, you will not be able to delete it."
                )


class ProductTemplateAttributeLine(BaseModel):
    _name = "product.template.attribute.line"
    _description = "Product Template Attribute Line"
    _table = T.ProductTemplateAttributeLine
    _rec_name = None
    _order = "attribute_id, id"

    active = F.Boolean("Active", default=True)
    product_tmpl_id = F.Many2one(
        "product.template", "Product Template", required=True, ondelete="cascade"
    )
    attribute_id = F.Many2one("product.attribute", "Attribute", required=True, ondelete="restrict")
    value_ids = F.Many2many("product.attribute.value", LINE_VALUES, "Values")
    product_template_value_ids = F.One2many(
        "product.template.attribute.value", "attribute_line_id", "Product Attribute Values"
    )

    def _display_names(self, ids: Any) -> dict[int, str]:
        attributes = self._column_values(list(ids), "attribute_id")
        names = self.env["product.attribute"]._column_values(
            sorted({a for a in attributes.values() if a}), "name"
        )
        return {i: str(names.get(a) or "") for i, a in attributes.items()}

    def _labels(self, line_id: int) -> tuple[str, str]:
        row = self._get(line_id, "attribute_id", "product_tmpl_id")
        attribute = self.env["product.attribute"]._column_values([row.attribute_id], "name")
        template = self.env["product.template"]._display_names([row.product_tmpl_id])
        return str(attribute.get(row.attribute_id) or ""), template.get(row.product_tmpl_id, "")

    def _check_constraints(self, ids: list[int], names: set[str]) -> None:
        if not names & {"active", "value_ids", "attribute_id"}:
            return
        values_of = self._read_x2many(self._fields["value_ids"], ids)  # type: ignore[arg-type]
        raw = self._read_raw(ids, ["active", "attribute_id"])
        value_model = self.env["product.attribute.value"]
        for rid in ids:
            values = values_of.get(rid, [])
            attribute, product = self._labels(rid)
            if raw[rid]["active"] and not values:
                raise ValidationError(
                    f"The attribute {attribute} must have at least one value for the product"
                    f" {product}."
                )
            owners = value_model._column_values(values, "attribute_id")
            for value in values:
                if owners.get(value) != raw[rid]["attribute_id"]:
                    label = value_model._display_names([value])[value]
                    raise ValidationError(
                        f"On the product {product} you cannot associate the value {label}"
                        f" with the attribute {attribute} because they do not match."
                    )

    def _create(self, vals_list: Any) -> list[int]:
        """An archived line of the same template and attribute is reactivated (with the new
        values) instead of a new one, so its variants can be reused."""
        created: list[int | None] = []
        to_create: list[dict[str, Any]] = []
        reactivated: list[int] = []
        quiet = self.with_context(update_product_template_attribute_values=False)
        for raw in vals_list:
            vals = {**raw, "active": raw.get("active", True)}
            archived = self._search(
                [
                    ("active", "=", False),
                    ("product_tmpl_id", "=", vals.pop("product_tmpl_id", 0) or 0),
                    ("attribute_id", "=", vals.pop("attribute_id", 0) or 0),
                ],
                limit=1,
            )
            if archived:
                quiet._write(archived, vals)
                reactivated.extend(archived)
                created.append(archived[0])
            else:
                to_create.append(raw)
                created.append(None)
        new = iter(super()._create(to_create))
        ids = [rid if rid is not None else next(new) for rid in created]
        if self.env.context.get("create_product_product", True):
            self._update_template_values(ids)
        return ids

    def _write(self, ids: Any, vals: dict[str, Any]) -> None:
        ids = list(dict.fromkeys(ids))
        vals = dict(vals)
        if "product_tmpl_id" in vals:
            templates = self._column_values(ids, "product_tmpl_id")
            for rid in ids:
                if templates.get(rid) != vals["product_tmpl_id"]:
                    attribute, product = self._labels(rid)
                    raise UserError(
                        f"You cannot move the attribute {attribute} from the product"
                        f" {product} to the product {vals['product_tmpl_id']}."
                    )
        if "attribute_id" in vals:
            attributes = self._column_values(ids, "attribute_id")
            for rid in ids:
                if attributes.get(rid) != vals["attribute_id"]:
                    attribute, product = self._labels(rid)
                    raise UserError(
                        f"On the product {product} you cannot transform the attribute"
                        f" {attribute} into the attribute {vals['attribute_id']}."
                    )
        if not vals.get("active", True):
            # A line is archived without values, so it is clean if it is ever reactivated.
            vals["value_ids"] = [(5,)]
        super()._write(ids, vals)
        if self.env.context.get("update_product_template_attribute_values", True):
            self._update_template_values(ids)

    def _unlink(self, ids: Any) -> None:
        """Its values go first (their variants unlinked or archived); a line that cannot be
        deleted is archived; the templates' variants are then brought up to date."""
        ids = list(dict.fromkeys(ids))
        if not ids or self.env.context.get("_unlinking_templates"):
            super()._unlink(ids)
            return
        self._ensure_exist(ids)
        ptav = self.env["product.template.attribute.value"]
        values = ptav._search([("attribute_line_id", "in", ids), ("ptav_active", "=", True)])
        ptav._unlink(values)
        templates = sorted(set(self._column_values(ids, "product_tmpl_id").values()))
        still_used = set(
            self._conn.execute(
                select(ptav._t.c.attribute_line_id).where(
                    ptav._t.c.attribute_line_id.in_(ids),
                    ptav._t.c.id.in_(select(LINK.c.right_id).where(LINK.c.relation == COMBINATION)),
                )
            ).scalars()
        )
        deletable = [i for i in ids if i not in still_used]
        archive = [i for i in ids if i in still_used]
        super()._unlink(deletable)
        if archive:
            self._write(archive, {"active": False})
        archived_templates = set(self._column_values(archive, "product_tmpl_id").values())
        self.env["product.template"]._create_variant_ids(
            [t for t in templates if t not in archived_templates]
        )

    def _update_template_values(self, ids: list[int]) -> None:
        """Create, reactivate or remove the lines' ptavs to match ``value_ids``, then the
        templates' variants (Odoo's ``_update_product_template_attribute_values``)."""
        ptav = self.env["product.template.attribute.value"]
        to_create: list[dict[str, Any]] = []
        to_unlink: list[int] = []
        values_of = self._read_x2many(self._fields["value_ids"], ids)  # type: ignore[arg-type]
        raw = self._read_raw(ids, ["product_tmpl_id", "attribute_id"])
        pav = self.env["product.attribute.value"]
        for rid in ids:
            remaining = list(values_of.get(rid, []))
            to_activate: list[int] = []
            line_unlink: list[int] = []
            existing = ptav._read_raw(
                ptav._search([("attribute_line_id", "=", rid)]),
                ["product_attribute_value_id", "ptav_active"],
            )
            for vid, v in sorted(existing.items()):
                if v["product_attribute_value_id"] not in remaining:
                    if v["ptav_active"]:
                        line_unlink.append(vid)
                else:
                    remaining.remove(v["product_attribute_value_id"])
                    if not v["ptav_active"]:
                        to_activate.append(vid)
            extras = pav._column_values(remaining, "default_extra_price")
            for value in remaining:
                found = ptav._search(
                    [
                        ("ptav_active", "=", False),
                        ("product_tmpl_id", "=", raw[rid]["product_tmpl_id"]),
                        ("attribute_id", "=", raw[rid]["attribute_id"]),
                        ("product_attribute_value_id", "=", value),
                    ],
                    limit=1,
                )
                if found:
                    ptav._write(found, {"ptav_active": True, "attribute_line_id": rid})
                    to_unlink = [u for u in to_unlink if u != found[0]]
                else:
                    to_create.append(
                        {
                            "product_attribute_value_id": value,
                            "attribute_line_id": rid,
                            "price_extra": extras.get(value) or 0.0,
                        }
                    )
            ptav._write(to_activate, {"ptav_active": True})
            ptav._write(line_unlink, {"ptav_active": False})
            to_unlink.extend(line_unlink)
        if to_unlink:
            ptav._unlink(to_unlink)
        ptav._create(to_create)
        templates = sorted({v["product_tmpl_id"] for v in raw.values()})
        self.env["product.template"]._create_variant_ids(templates)


class ProductTemplateAttributeValue(BaseModel):
    _name = "product.template.attribute.value"
    _description = "Product Template Attribute Value"
    _table = T.ProductTemplateAttributeValue
    _order = "attribute_line_id, product_attribute_value_id, id"

    ptav_active = F.Boolean("Active", default=True)
    name = F.Char("Value", related="product_attribute_value_id.name")
    product_attribute_value_id = F.Many2one(
        "product.attribute.value", "Attribute Value", required=True, ondelete="cascade"
    )
    attribute_line_id = F.Many2one(
        "product.template.attribute.line", "Attribute Line", required=True, ondelete="cascade"
    )
    price_extra = F.Float("Value Price Extra", digits=2, default=0.0)
    product_tmpl_id = F.Many2one(
        "product.template",
        "Product Template",
        related="attribute_line_id.product_tmpl_id",
        store=True,
        ondelete="cascade",
    )
    attribute_id = F.Many2one(
        "product.attribute",
        "Attribute",
        related="attribute_line_id.attribute_id",
        store=True,
        ondelete="cascade",
    )

    def _display_names(self, ids: Any) -> dict[int, str]:
        return attribute_value_names(self, ids)

    def _check_constraints(self, ids: list[int], names: set[str]) -> None:
        if not names & {"attribute_line_id", "product_attribute_value_id"}:
            return
        self._check_unique(
            ids,
            ("attribute_line_id", "product_attribute_value_id"),
            "Each value should be defined only once per attribute per product.",
        )
        raw = self._read_raw(ids, ["attribute_line_id", "product_attribute_value_id"])
        pairs = [(v["attribute_line_id"], v["product_attribute_value_id"]) for v in raw.values()]
        line_model = self.env["product.template.attribute.line"]
        values_of = line_model._read_x2many(
            line_model._fields["value_ids"], sorted({line for line, _v in pairs})
        )
        active = self._column_values(ids, "ptav_active")
        for rid, v in raw.items():
            if active.get(rid) and v["product_attribute_value_id"] not in values_of.get(
                v["attribute_line_id"], []
            ):
                value = self.env["product.attribute.value"]._column_values(
                    [v["product_attribute_value_id"]], "name"
                )
                attribute, product = line_model._labels(v["attribute_line_id"])
                raise ValidationError(
                    f"The value {value[v['product_attribute_value_id']]} is not defined for the"
                    f" attribute {attribute} on the product {product}."
                )

    def _write(self, ids: Any, vals: dict[str, Any]) -> None:
        ids = list(dict.fromkeys(ids))
        for key, what in (("product_attribute_value_id", "value"), ("product_tmpl_id", "product")):
            if key in vals:
                current = self._column_values(ids, key)
                for rid in ids:
                    if current.get(rid) != vals[key]:
                        label = self._display_names([rid])[rid]
                        template = self._column_values([rid], "product_tmpl_id")[rid]
                        product = self.env["product.template"]._display_names([template])
                        raise UserError(
                            f"You cannot change the {what} of the value {label} set on product"
                            f" {product.get(template, '')}."
                        )
        super()._write(ids, vals)

    def _variants_using(self, ids: list[int]) -> dict[int, list[int]]:
        out: dict[int, list[int]] = defaultdict(list)
        stmt = select(LINK.c.right_id, LINK.c.left_id).where(
            LINK.c.relation == COMBINATION, LINK.c.right_id.in_(ids)
        )
        for ptav_id, variant in self._conn.execute(stmt):
            out[ptav_id].append(variant)
        return out

    def _unlink(self, ids: Any) -> None:
        """A value of a single-value line is taken off its variants; the variants using the
        values are unlinked or archived; a value still used (by an archived variant) is
        archived instead of deleted."""
        ids = list(dict.fromkeys(ids))
        if not ids or self.env.context.get("_unlinking_templates"):
            super()._unlink(ids)
            return
        self._ensure_exist(ids)
        variant = self.env["product.product"]
        lines = self._column_values(ids, "attribute_line_id")
        line_sizes: dict[int, int] = defaultdict(int)
        for line in self._conn.execute(
            select(self._t.c.attribute_line_id).where(
                self._t.c.attribute_line_id.in_(sorted(set(lines.values())))
            )
        ).scalars():
            line_sizes[line] += 1
        using = self._variants_using(ids)
        for rid in ids:
            if line_sizes[lines[rid]] == 1 and using.get(rid):
                variant._write(using[rid], {"product_template_attribute_value_ids": [(3, rid)]})
        using = self._variants_using(ids)
        variant._unlink_or_archive(sorted({v for vids in using.values() for v in vids}))
        using = self._variants_using(ids)
        super()._unlink([i for i in ids if not using.get(i)])
        self._write([i for i in ids if using.get(i)], {"ptav_active": False})
