"""Products: product.category, product.template and product.product (one variant per template).

Mirrors Odoo 17's split: the template holds name, prices, type and taxes; the variant holds
barcode, standard_price and its own default_code, and reaches the template's fields through
``_inherits``. Creating a template creates its variant; creating a variant creates its
template. ``type``/``detailed_type`` are kept equal, barcodes are unique among active
variants of a company (Odoo's ``_check_barcode_uniqueness`` text), default codes are not.
On-hand quantities are read from stock.quant, forecasts from pending stock.move.

Archiving and deleting as in Odoo 17: archiving a template archives all its variants;
unarchiving one with no active variant brings them back; ``action_archive`` on the last active
variant archives its template (and ``action_unarchive`` the reverse), while a plain
``write({'active': False})`` on a variant leaves the template alone. Unlinking a variant that
is its template's only active one unlinks the template too; a variant stock moves or quants
still reference is refused with Odoo's foreign-key text ("... If possible, archive it
instead."), and nothing is deleted.

Variants from attributes (models/attribute.py): a template's attribute lines make its variants
(``_create_variant_ids``, the cartesian product of the lines' values for attributes that create
variants); a variant's ``lst_price`` is the template's ``list_price`` plus the ``price_extra``
of its values, its display name adds them ("[SKU] Shirt (Red, L)").
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any, ClassVar

from sqlalchemy import func, select

from .. import fields as F
from .. import tables as T
from ..domain import LINK
from ..exceptions import ValidationError
from ..orm import BaseModel, api_records, ensure_one
from .pricing import contextual_price

TYPE_SELECTION = [
    ("consu", "Consumable"),
    ("service", "Service"),
    ("product", "Storable Product"),
    ("combo", "Combo"),
]
# Template fields that live on the (single) variant in Odoo 17.
VARIANT_FIELDS = ("barcode", "standard_price")
PENDING_MOVE_STATES = ("waiting", "confirmed", "partially_available", "assigned")
RESERVED_STATES = ("partially_available", "assigned")


def _sync_type(vals: dict[str, Any]) -> dict[str, Any]:
    """``type`` and ``detailed_type`` are one value; ``detailed_type`` is validated first."""
    if "detailed_type" not in vals and "type" not in vals:
        return vals
    value = vals.get("detailed_type", vals.get("type"))
    rest = {k: v for k, v in vals.items() if k not in ("detailed_type", "type")}
    return {"detailed_type": value, **rest, "type": value}


def _product_label(code: Any, name: Any) -> str:
    return f"[{code}] {name or ''}" if code else str(name or "")


class ProductCategory(BaseModel):
    _name = "product.category"
    _description = "Product Category"
    _table = T.ProductCategory
    _rec_name = "complete_name"
    _order = "complete_name"

    name = F.Char("Name", required=True)
    complete_name = F.Char("Complete Name", readonly=True)
    parent_id = F.Many2one("product.category", "Parent Category", ondelete="cascade")
    parent_path = F.Char("Parent Path", readonly=True)
    child_id = F.One2many("product.category", "parent_id", "Child Categories")
    property_cost_method = F.Selection(
        [
            ("standard", "Standard Price"),
            ("fifo", "First In First Out (FIFO)"),
            ("average", "Average Cost (AVCO)"),
        ],
        "Costing Method",
        compute="_compute_properties",
    )
    property_valuation = F.Selection(
        [("manual_periodic", "Manual"), ("real_time", "Automated")],
        "Inventory Valuation",
        compute="_compute_properties",
    )

    def _compute_properties(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        # Company-dependent defaults of the generic chart (docs/odoo17-behaviour.md §b).
        return {
            i: {"property_cost_method": "standard", "property_valuation": "manual_periodic"}
            for i in ids
        }

    def _create(self, vals_list: Any) -> list[int]:
        ids = super()._create(vals_list)
        self._recompute_paths(ids)
        return ids

    def _write(self, ids: Any, vals: dict[str, Any]) -> None:
        super()._write(ids, vals)
        if "name" in vals or "parent_id" in vals:
            self._recompute_paths(self._hierarchy(list(ids)))

    def _recompute_paths(self, ids: list[int]) -> None:
        for rid in ids:
            row = self._get(rid, "name", "parent_id")
            if row.parent_id:
                parent = self._get(row.parent_id, "complete_name", "parent_path")
                complete, path = (
                    f"{parent.complete_name} / {row.name}",
                    f"{parent.parent_path}{rid}/",
                )
            else:
                complete, path = row.name, f"{rid}/"
            self._conn.execute(
                self._t.update()
                .where(self._t.c.id == rid)
                .values(complete_name=complete, parent_path=path)
            )


class ProductTemplate(BaseModel):
    _name = "product.template"
    _description = "Product"
    _table = T.ProductTemplate
    _order = "priority desc, name, id"

    name = F.Char("Name", required=True)
    default_code = F.Char("Internal Reference")
    description = F.Html("Description")
    description_sale = F.Text("Sales Description")
    detailed_type = F.Selection(TYPE_SELECTION, "Product Type", required=True, default="consu")
    type = F.Selection(TYPE_SELECTION, "Type", default="consu")
    categ_id = F.Many2one("product.category", "Product Category", required=True, default=1)
    list_price = F.Float("Sales Price", digits=2, default=1.0)
    uom_id = F.Many2one("uom.uom", "Unit of Measure", required=True, default=1)
    uom_po_id = F.Many2one("uom.uom", "Purchase Unit of Measure", required=True, default=1)
    sale_ok = F.Boolean("Can be Sold", default=True)
    purchase_ok = F.Boolean("Can be Purchased", default=True)
    available_in_pos = F.Boolean("Available in POS", default=False)
    active = F.Boolean("Active", default=True)
    company_id = F.Many2one("res.company", "Company")
    tracking = F.Selection(
        [("serial", "By Unique Serial Number"), ("lot", "By Lots"), ("none", "No Tracking")],
        "Tracking",
        default="none",
    )
    invoice_policy = F.Selection(
        [("order", "Ordered quantities"), ("delivery", "Delivered quantities")],
        "Invoicing Policy",
        default="order",
    )
    priority = F.Selection([("0", "Normal"), ("1", "Favorite")], "Favorite", default="0")
    sequence = F.Integer("Sequence", default=1)
    weight = F.Float("Weight", digits=2, default=0.0)
    volume = F.Float("Volume", digits=4, default=0.0)
    taxes_id = F.Many2many(
        "account.tax", "product_taxes_rel", "Customer Taxes", default=lambda env: [(6, 0, [1])]
    )
    supplier_taxes_id = F.Many2many(
        "account.tax",
        "product_supplier_taxes_rel",
        "Vendor Taxes",
        default=lambda env: [(6, 0, [2])],
    )
    product_variant_ids = F.One2many("product.product", "product_tmpl_id", "Products")
    attribute_line_ids = F.One2many(
        "product.template.attribute.line", "product_tmpl_id", "Product Attributes"
    )
    product_variant_id = F.Many2one("product.product", "Product", compute="_compute_variant_fields")
    product_variant_count = F.Integer("# Product Variants", compute="_compute_variant_fields")
    barcode = F.Char(
        "Barcode",
        compute="_compute_variant_fields",
        inverse="_inverse_variant_field",
        search="_search_barcode",
    )
    standard_price = F.Float(
        "Cost",
        digits=2,
        compute="_compute_variant_fields",
        inverse="_inverse_variant_field",
        search="_search_standard_price",
    )
    qty_available = F.Float("Quantity On Hand", compute="_compute_quantities")
    virtual_available = F.Float("Forecasted Quantity", compute="_compute_quantities")
    incoming_qty = F.Float("Incoming", compute="_compute_quantities")
    outgoing_qty = F.Float("Outgoing", compute="_compute_quantities")

    def _display_names(self, ids: Any) -> dict[int, str]:
        raw = self._read_raw(ids, ["default_code", "name"])
        return {i: _product_label(v["default_code"], v["name"]) for i, v in raw.items()}

    def _name_search_domain(self, name: str, operator: str) -> list[Any]:
        return ["|", ("default_code", operator, name), ("name", operator, name)]

    def _unlink(self, ids: Any) -> None:
        # Its variants go by cascade; they must not try to delete it again.
        super(ProductTemplate, self.with_context(_unlinking_templates=True))._unlink(ids)

    def _write_active(self, ids: list[int], active: bool) -> None:
        """Archiving a template archives all its variants; unarchiving one that has no active
        variant brings its variants back (Odoo re-creates, i.e. reactivates, them)."""
        variant = self.env["product.product"]
        if not active:
            every = self._variants_by_template(ids, active_only=False)
            targets = [v for vids in every.values() for v in vids]
        else:
            live = self._variants_by_template(ids)
            every = self._variants_by_template([t for t in ids if not live.get(t)], False)
            targets = [v for vids in every.values() for v in vids]
        if targets:
            variant.with_context(create_product_product=False)._write(targets, {"active": active})

    def _variants_by_template(
        self, ids: list[int], active_only: bool = True
    ) -> dict[int, list[int]]:
        variant = self.env["product.product"]._t
        stmt = (
            select(variant.c.product_tmpl_id, variant.c.id)
            .where(variant.c.product_tmpl_id.in_(ids))
            .order_by(variant.c.id)
        )
        if active_only:
            stmt = stmt.where(variant.c.active == True)  # noqa: E712
        out: dict[int, list[int]] = defaultdict(list)
        for tmpl, vid in self._conn.execute(stmt):
            out[tmpl].append(vid)
        return out

    def _compute_variant_fields(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        variants = self._variants_by_template(ids)
        first = {tid: vids[0] for tid, vids in variants.items()}
        values = self.env["product.product"]._read_raw(
            list(first.values()), ["barcode", "standard_price"]
        )
        out: dict[int, dict[str, Any]] = {}
        for tid in ids:
            vids = variants.get(tid, [])
            single = values.get(first[tid]) if len(vids) == 1 else None
            out[tid] = {
                "product_variant_id": vids[0] if vids else None,
                "product_variant_count": len(vids),
                "barcode": single["barcode"] if single else None,
                "standard_price": single["standard_price"] if single else 0.0,
            }
        return out

    def _inverse_variant_field(self, ids: list[int], value: Any) -> None:
        """Writable on the template; ``_create``/``_write`` route the value to the variant."""

    def _search_barcode(self, operator: str, value: Any) -> list[Any]:
        return [("product_variant_ids.barcode", operator, value)]

    def _search_standard_price(self, operator: str, value: Any) -> list[Any]:
        return [("product_variant_ids.standard_price", operator, value)]

    def _compute_quantities(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        variants = self._variants_by_template(ids)
        all_variants = [v for vids in variants.values() for v in vids]
        per_variant = self.env["product.product"]._compute_quantities(all_variants)
        names = ("qty_available", "virtual_available", "incoming_qty", "outgoing_qty")
        return {
            tid: {n: sum(per_variant[v][n] for v in variants.get(tid, [])) for n in names}
            for tid in ids
        }

    @api_records
    def get_contextual_price(self, ids: Any, product: Any = None) -> float:
        record = ensure_one(self._name, ids)
        if product:
            return contextual_price(self, int(product))
        variants = self._variants_by_template([record]).get(record, [])
        if not variants:
            return float(self._read_raw([record], ["list_price"])[record]["list_price"] or 0.0)
        return contextual_price(self, variants[0])

    def _create(self, vals_list: Any) -> list[int]:
        prepared, variant_vals = [], []
        for vals in vals_list:
            vals = _sync_type(dict(vals))
            own_variant = {k: vals.pop(k) for k in VARIANT_FIELDS if k in vals}
            if vals.get("default_code"):
                own_variant["default_code"] = vals["default_code"]
            prepared.append(vals)
            variant_vals.append(own_variant)
        ids = super()._create(prepared)
        if self.env.context.get("create_product_product", True):
            variant = self.env["product.product"].with_context(create_product_product=False)
            plain = [
                (tid, vv)
                for tid, vv, vals in zip(ids, variant_vals, prepared, strict=True)
                if not vals.get("attribute_line_ids")
            ]
            variant._create([{"product_tmpl_id": tid, **vv} for tid, vv in plain])
            # Templates created with attribute lines have their variants already; the
            # variant-only values go to the variant only when there is exactly one.
            lined = [
                (tid, vv)
                for tid, vv, vals in zip(ids, variant_vals, prepared, strict=True)
                if vals.get("attribute_line_ids")
            ]
            if lined:
                self._create_variant_ids([tid for tid, _vv in lined])
                live = self._variants_by_template([tid for tid, _vv in lined])
                for tid, vv in lined:
                    if vv and len(live.get(tid, [])) == 1:
                        variant._write(live[tid], vv)
        return ids

    def _create_variant_ids(self, ids: list[int]) -> None:
        """Bring each template's variants in line with its attribute lines, as Odoo 17's
        ``_create_variant_ids``: every combination of the active values of the lines whose
        attribute creates variants gets a variant (an existing one, reactivated, or a new
        one); variants of no such combination are unlinked, or archived when they cannot be.
        A template whose lines have a ``dynamic`` attribute only keeps the variants it has."""
        if not ids:
            return
        variant = self.env["product.product"].with_context(create_product_product=False)
        line_model = self.env["product.template.attribute.line"]
        ptav_model = self.env["product.template.attribute.value"]
        to_create: list[dict[str, Any]] = []
        to_activate: list[int] = []
        to_unlink: list[int] = []
        actives = self._column_values(ids, "active")
        for tid in ids:
            line_ids = line_model._search([("product_tmpl_id", "=", tid), ("active", "=", True)])
            line_attr = line_model._column_values(line_ids, "attribute_id")
            modes = self.env["product.attribute"]._column_values(
                sorted(set(line_attr.values())), "create_variant"
            )
            lines = [i for i in line_ids if modes.get(line_attr[i]) != "no_variant"]
            dynamic = any(modes.get(line_attr[i]) == "dynamic" for i in lines)
            ptavs = ptav_model._search(
                [("attribute_line_id", "in", lines), ("ptav_active", "=", True)]
            )
            line_of = ptav_model._column_values(ptavs, "attribute_line_id")
            per_line = [[p for p in ptavs if line_of[p] == line] for line in lines]
            per_line = [vals for vals in per_line if vals]  # a line without values is invalid
            every = self._variants_by_template([tid], active_only=False).get(tid, [])
            variant_active = variant._column_values(every, "active")
            # Odoo sorts (active, -id): for one combination, the lowest active id wins.
            ordered = sorted(every, key=lambda v: (bool(variant_active[v]), -v))
            combos = variant._combinations(every)
            singles = [vals[0] for vals in per_line if len(vals) == 1]
            # Adding a single-value line does not recreate the variants: the value is
            # written on each of them (when the result is a whole combination).
            for v in ordered if singles else []:
                combined = set(combos[v]) | set(singles)
                if combined == set(combos[v]):
                    continue
                combined_lines = set(
                    ptav_model._column_values(sorted(combined), "attribute_line_id").values()
                )
                if len(combined) == len(lines) and combined_lines == set(lines):
                    variant._write(
                        [v], {"product_template_attribute_value_ids": [(6, 0, sorted(combined))]}
                    )
                    combos[v] = sorted(combined)
            existing = {frozenset(combos[v]): v for v in ordered}
            keep: list[int] = []
            if not dynamic:
                for combination in itertools.product(*per_line):
                    key = frozenset(combination)
                    if key in existing:
                        keep.append(existing[key])
                    else:
                        to_create.append(
                            {
                                "product_tmpl_id": tid,
                                "product_template_attribute_value_ids": [
                                    (6, 0, sorted(combination))
                                ],
                                "active": bool(actives.get(tid)),
                            }
                        )
            else:
                keep = list(existing.values())
            to_activate.extend(keep)
            to_unlink.extend(v for v in every if v not in keep)
        if to_activate:
            variant._write(to_activate, {"active": True})
        if to_create:
            variant._create(to_create)
        if to_unlink:
            variant._unlink_or_archive(to_unlink)
        # The template's own default_code follows its variant only while it has one.
        live = self._variants_by_template(ids)
        several = [t for t in ids if len(live.get(t, [])) > 1]
        if several:
            self._conn.execute(
                self._t.update().where(self._t.c.id.in_(several)).values(default_code=None)
            )

    def _write(self, ids: Any, vals: dict[str, Any]) -> None:
        vals = _sync_type(dict(vals))
        if "active" in vals:
            self._write_active(list(ids), bool(vals["active"]))
        own_variant = {k: vals.pop(k) for k in VARIANT_FIELDS if k in vals}
        if "default_code" in vals:
            own_variant["default_code"] = vals["default_code"]
        super()._write(ids, vals)  # stamps the template even when only its variant changes
        if own_variant:
            variant_ids = [
                v for vids in self._variants_by_template(list(ids)).values() for v in vids
            ]
            self.env["product.product"].with_context(create_product_product=False)._write(
                variant_ids, own_variant
            )


class ProductProduct(BaseModel):
    _name = "product.product"
    _description = "Product Variant"
    _table = T.ProductProduct
    _inherits: ClassVar[dict[str, str]] = {"product.template": "product_tmpl_id"}
    _order = "priority desc, default_code, name, id"

    product_tmpl_id = F.Many2one(
        "product.template", "Product Template", required=True, ondelete="cascade"
    )
    default_code = F.Char("Internal Reference")
    barcode = F.Char("Barcode")
    standard_price = F.Float("Cost", digits=2, default=0.0)
    active = F.Boolean("Active", default=True)
    product_template_attribute_value_ids = F.Many2many(
        "product.template.attribute.value", "product_variant_combination", "Attribute Values"
    )
    combination_indices = F.Char("Combination Indices", readonly=True)
    price_extra = F.Float("Variant Price Extra", compute="_compute_lst_price")
    lst_price = F.Float("Sales Price", compute="_compute_lst_price")
    partner_ref = F.Char("Customer Ref", compute="_compute_partner_ref")
    qty_available = F.Float("Quantity On Hand", compute="_compute_quantities")
    virtual_available = F.Float("Forecasted Quantity", compute="_compute_quantities")
    free_qty = F.Float("Free To Use Quantity", compute="_compute_quantities")
    incoming_qty = F.Float("Incoming", compute="_compute_quantities")
    outgoing_qty = F.Float("Outgoing", compute="_compute_quantities")

    def _display_names(self, ids: Any) -> dict[int, str]:
        raw = self._read_raw(ids, ["default_code", "name"])
        variants = self._combination_names(list(raw))
        return {
            i: _product_label(
                v["default_code"],
                f"{v['name']} ({variants[i]})" if variants.get(i) else v["name"],
            )
            for i, v in raw.items()
        }

    def _combinations(self, ids: list[int]) -> dict[int, list[int]]:
        """Each variant's product.template.attribute.value ids."""
        out: dict[int, list[int]] = {i: [] for i in ids}
        if not ids:
            return out
        stmt = select(LINK.c.left_id, LINK.c.right_id).where(
            LINK.c.relation == "product_variant_combination", LINK.c.left_id.in_(ids)
        )
        for vid, ptav in self._conn.execute(stmt):
            out[vid].append(ptav)
        return out

    def _combination_names(self, ids: list[int]) -> dict[int, str]:
        """ "Red, L": the variant's values, less those of single-value lines and of
        attributes that make no variants (Odoo's ``_get_combination_name``)."""
        combos = self._combinations(ids)
        ptav_ids = sorted({p for ps in combos.values() for p in ps})
        if not ptav_ids:
            return {}
        ptav = self.env["product.template.attribute.value"]
        raw = ptav._read_raw(
            ptav_ids,
            [
                "name",
                "ptav_active",
                "attribute_line_id",
                "attribute_id",
                "product_attribute_value_id",
            ],
        )
        lines = sorted({v["attribute_line_id"] for v in raw.values()})
        siblings: dict[int, list[bool]] = defaultdict(list)
        for line, active in self._conn.execute(
            select(ptav._t.c.attribute_line_id, ptav._t.c.ptav_active).where(
                ptav._t.c.attribute_line_id.in_(lines)
            )
        ):
            siblings[line].append(bool(active))
        attributes = self.env["product.attribute"]._read_raw(
            sorted({v["attribute_id"] for v in raw.values()}), ["create_variant", "sequence"]
        )
        values = self.env["product.attribute.value"]._read_raw(
            sorted({v["product_attribute_value_id"] for v in raw.values()}), ["sequence"]
        )

        def key(p: int) -> tuple[Any, ...]:
            v = raw[p]
            a, pav = attributes[v["attribute_id"]], values[v["product_attribute_value_id"]]
            return (a["sequence"] or 0, v["attribute_id"], pav["sequence"] or 0, p)

        out: dict[int, str] = {}
        for vid, ps in combos.items():
            shown = [p for p in ps if p in raw]
            only_active = all(raw[p]["ptav_active"] for p in shown)
            names = []
            for p in sorted(shown, key=key):
                v = raw[p]
                if attributes[v["attribute_id"]]["create_variant"] == "no_variant":
                    continue
                count = [a for a in siblings[v["attribute_line_id"]] if a or not only_active]
                if len(count) == 1:
                    continue
                names.append(str(v["name"] or ""))
            out[vid] = ", ".join(names)
        return out

    def _compute_partner_ref(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        return {i: {"partner_ref": n} for i, n in self._display_names(ids).items()}

    def _compute_lst_price(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        """``lst_price`` = the template's ``list_price`` + ``price_extra``, the sum of the
        variant's values' extras."""
        raw = self._read_raw(ids, ["list_price"])
        combos = self._combinations(list(raw))
        ptav = self.env["product.template.attribute.value"]
        extras = ptav._column_values(
            sorted({p for ps in combos.values() for p in ps}), "price_extra"
        )
        out: dict[int, dict[str, Any]] = {}
        for i, v in raw.items():
            extra = sum(extras.get(p) or 0.0 for p in combos.get(i, []))
            out[i] = {"price_extra": extra, "lst_price": (v["list_price"] or 0.0) + extra}
        return out

    def _name_search_domain(self, name: str, operator: str) -> list[Any]:
        return [
            "|",
            "|",
            ("default_code", operator, name),
            ("barcode", "=", name),
            ("name", operator, name),
        ]

    @api_records
    def get_contextual_price(self, ids: Any) -> float:
        return contextual_price(self, ensure_one(self._name, ids))

    def _create(self, vals_list: Any) -> list[int]:
        # The template is created through _inherits; it must not make a variant of its own.
        self_ = self.with_context(create_product_product=False)
        ids = super(ProductProduct, self_)._create(list(vals_list))
        self_._sync_template_code(ids)
        self_._store_combination_indices(ids)
        return ids

    def _write(self, ids: Any, vals: dict[str, Any]) -> None:
        super()._write(ids, vals)
        if "default_code" in vals:
            self._sync_template_code(list(ids))
        if "product_template_attribute_value_ids" in vals:
            self._store_combination_indices(list(ids))

    def _store_combination_indices(self, ids: list[int]) -> None:
        """``combination_indices``: the sorted ptav ids, comma-separated (stored)."""
        for vid, ptavs in self._combinations(ids).items():
            self._conn.execute(
                self._t.update()
                .where(self._t.c.id == vid)
                .values(combination_indices=",".join(str(p) for p in sorted(ptavs)))
            )

    def _unlink_blocked(self, ids: list[int]) -> set[int]:
        """The variants a delete would be refused for (a restricting reference to them)."""
        blocked: set[int] = set()
        for model_name, field in self.env.registry.references.get(self._name, []):
            if field.ondelete != "restrict":
                continue
            child = self.env[model_name]
            column = child._t.c[field.name]
            blocked.update(
                self._conn.execute(select(column).where(column.in_(ids)).distinct()).scalars()
            )
        return blocked

    def _unlink_or_archive(self, ids: list[int]) -> None:
        """Delete the variants that can be, archive the others (Odoo tries the delete and
        archives each variant it is refused for)."""
        ids = list(dict.fromkeys(ids))
        if not ids:
            return
        blocked = self._unlink_blocked(ids)
        self._unlink([i for i in ids if i not in blocked])
        active = self._column_values(sorted(blocked), "active")
        self._write([i for i in sorted(blocked) if active.get(i)], {"active": False})

    def _toggle_active(self, ids: list[int]) -> None:
        """Odoo's product.product.toggle_active: a template left with no active variant is
        archived, an archived template that has one again is unarchived."""
        super()._toggle_active(ids)
        template = self.env["product.template"]
        tmpl_ids = sorted(set(self._column_values(ids, "product_tmpl_id").values()))
        live = template._variants_by_template(tmpl_ids)
        active = template._column_values(tmpl_ids, "active")
        flip = [t for t in tmpl_ids if bool(active.get(t)) != bool(live.get(t))]
        if flip:
            # Flipped on the template's own row: its write() would (un)archive every variant.
            templ = template.with_context(create_product_product=False)
            for tid in flip:
                BaseModel._write(templ, [tid], {"active": not active.get(tid)})

    def _unlink(self, ids: Any) -> None:
        """Deleting a variant that is its template's only active one deletes the template too
        (after the variants: one that stock moves or quants still use is refused first). As
        in Odoo, "only" is judged per variant before anything is deleted: deleting two
        variants of one template in one call keeps the template."""
        ids = list(dict.fromkeys(ids))
        if not ids or self.env.context.get("_unlinking_templates"):
            super()._unlink(ids)
            return
        self._ensure_exist(ids)
        template = self.env["product.template"]
        tmpl_of = self._column_values(ids, "product_tmpl_id")
        live = template._variants_by_template(sorted(set(tmpl_of.values())))
        orphans = sorted(
            {t for pid, t in tmpl_of.items() if not [v for v in live.get(t, []) if v != pid]}
        )
        super()._unlink(ids)
        if orphans:
            template._unlink(orphans)

    def _sync_template_code(self, ids: list[int]) -> None:
        """The template's stored default_code follows its single variant's."""
        raw = self._read_raw(ids, ["product_tmpl_id", "default_code"])
        template = self.env["product.template"]
        counts = template._variants_by_template(
            sorted({v["product_tmpl_id"] for v in raw.values()})
        )
        for values in raw.values():
            if len(counts.get(values["product_tmpl_id"], [])) <= 1:
                self._conn.execute(
                    template._t.update()
                    .where(template._t.c.id == values["product_tmpl_id"])
                    .values(
                        default_code=values["default_code"],
                        write_uid=self.env.uid,
                        write_date=self.env.cr_now,
                    )
                )

    def _check_constraints(self, ids: list[int], names: set[str]) -> None:
        if names & {"barcode", "active", "company_id", "product_tmpl_id"}:
            self._check_barcode_uniqueness(ids)

    def _check_barcode_uniqueness(self, ids: list[int]) -> None:
        raw = self._read_raw(ids, ["barcode", "company_id"])
        by_company: dict[Any, set[str]] = defaultdict(set)
        for values in raw.values():
            if values["barcode"]:
                by_company[values["company_id"]].add(values["barcode"])
        for company_id, barcodes in by_company.items():
            domain: list[Any] = [("barcode", "in", sorted(barcodes))]
            if company_id:
                domain.append(("company_id", "in", [False, company_id]))
            matched = self._search(domain)
            codes = self._column_values(matched, "barcode")
            groups: dict[str, list[int]] = defaultdict(list)
            for pid in matched:
                groups[codes[pid]].append(pid)
            duplicates = {code: pids for code, pids in sorted(groups.items()) if len(pids) > 1}
            if duplicates:
                labels = self._display_names(matched)
                lines = "\n".join(
                    f'- Barcode "{code}" already assigned to product(s): '
                    + ", ".join(labels[p] for p in pids)
                    for code, pids in duplicates.items()
                )
                lines += "\n\nNote: products that you don't have access to will not be shown above."
                raise ValidationError(f"Barcode(s) already assigned:\n\n{lines}")

    def _stock_location_ids(self) -> Any:
        """Locations whose stock counts: ``context['location'|'warehouse']`` or all internal."""
        location = self.env["stock.location"]
        ctx = self.env.context
        wanted = ctx.get("location")
        if not wanted and ctx.get("warehouse"):
            warehouses = (
                ctx["warehouse"] if isinstance(ctx["warehouse"], list) else [ctx["warehouse"]]
            )
            views = self.env["stock.warehouse"]._column_values(
                [int(w) for w in warehouses], "view_location_id"
            )
            wanted = [v for v in views.values() if v]
        if wanted:
            if isinstance(wanted, str):
                roots = location._search([("complete_name", "ilike", wanted)])
            else:
                roots = [int(w) for w in (wanted if isinstance(wanted, list) else [wanted])]
            return location._hierarchy(roots)
        return select(location._t.c.id).where(location._t.c.usage == "internal")

    def _compute_quantities(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        locations = self._stock_location_ids()
        quant = self.env["stock.quant"]._t
        move = self.env["stock.move"]._t
        on_hand: dict[int, float] = {
            pid: qty or 0.0
            for pid, qty in self._conn.execute(
                select(quant.c.product_id, func.sum(quant.c.quantity))
                .where(quant.c.product_id.in_(ids), quant.c.location_id.in_(locations))
                .group_by(quant.c.product_id)
            )
        }
        # What ready (reserved) moves will take out of these locations.
        reserved: dict[int, float] = {
            pid: qty or 0.0
            for pid, qty in self._conn.execute(
                select(move.c.product_id, func.sum(move.c.quantity))
                .where(
                    move.c.product_id.in_(ids),
                    move.c.state.in_(RESERVED_STATES),
                    move.c.location_id.in_(locations),
                )
                .group_by(move.c.product_id)
            )
        }

        def pending(into: bool) -> dict[int, float]:
            inside = move.c.location_dest_id if into else move.c.location_id
            outside = move.c.location_id if into else move.c.location_dest_id
            stmt = (
                select(move.c.product_id, func.sum(move.c.product_uom_qty))
                .where(
                    move.c.product_id.in_(ids),
                    move.c.state.in_(PENDING_MOVE_STATES),
                    inside.in_(locations),
                    outside.not_in(locations),
                )
                .group_by(move.c.product_id)
            )
            return {pid: qty or 0.0 for pid, qty in self._conn.execute(stmt)}

        incoming, outgoing = pending(True), pending(False)
        out: dict[int, dict[str, Any]] = {}
        for pid in ids:
            qty = on_hand.get(pid, 0.0)
            inc, outg = incoming.get(pid, 0.0), outgoing.get(pid, 0.0)
            out[pid] = {
                "qty_available": qty,
                "free_qty": qty - reserved.get(pid, 0.0),
                "incoming_qty": inc,
                "outgoing_qty": outg,
                "virtual_available": qty + inc - outg,
            }
        return out
