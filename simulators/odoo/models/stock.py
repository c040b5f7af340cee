"""Inventory: locations, warehouse, operation types, quants, transfers and stock moves.

Follows Odoo 17 as observed: on-hand quantity lives in ``stock.quant`` rows of internal
locations; an inventory count (``inventory_mode`` context) creates a done ``is_inventory`` move
against the inventory-adjustment location; a plain ``quantity`` create sets on-hand silently.

Transfers (see docs/architecture.md for the sequences the project relies on):

* a move created in a transfer with a ``quantity`` is confirmed at once; a storable one
  reserves that quantity on its quant even beyond what is on hand (the transfer is
  ``assigned``), a consumable one stays ``confirmed``;
* ``button_validate`` confirms a draft transfer (reserving what is free) and fills untouched
  quantities with the demand; refuses a transfer with nothing reserved ("no quantities are
  reserved", also for done and cancelled ones); marks every move picked when none is; answers
  the backorder wizard action when a move has less than its demand (unless ``skip_backorder``,
  which moves only the quantities and splits the rest into a backorder, or cancels it for the
  transfers in ``picking_ids_not_to_backorder``);
* validating takes stock out even below zero, then frees the reservations of other *unpicked*
  moves that the quant no longer covers (Odoo's ``_free_reservation``): a transfer whose moves
  had only their preset quantity, not ``picked``, drops back to ``confirmed`` with nothing
  reserved and its own validation is refused.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from .. import fields as F
from .. import tables as T
from ..exceptions import UserError, ValidationError
from ..orm import BaseModel, api_records, normalize_ids

LOCATION_USAGES = [
    ("supplier", "Vendor Location"),
    ("view", "View"),
    ("internal", "Internal Location"),
    ("customer", "Customer Location"),
    ("inventory", "Inventory Loss"),
    ("production", "Production"),
    ("transit", "Transit Location"),
]
MOVE_STATES = [
    ("draft", "New"),
    ("waiting", "Waiting Another Move"),
    ("confirmed", "Waiting Availability"),
    ("partially_available", "Partially Available"),
    ("assigned", "Available"),
    ("done", "Done"),
    ("cancel", "Cancelled"),
]
PICKING_STATES = [
    ("draft", "Draft"),
    ("waiting", "Waiting Another Operation"),
    ("confirmed", "Waiting"),
    ("assigned", "Ready"),
    ("done", "Done"),
    ("cancel", "Cancelled"),
]
QUANT_LOCATIONS = ("internal", "transit")
RESERVED_STATES = ("partially_available", "assigned")
INVENTORY_LOCATION = 14
CANNOT_CANCEL_DONE = (
    "You cannot cancel a stock move that has been set to 'Done'. Create a return in order to "
    "reverse the moves which took place."
)
NO_QUANTITIES = (
    "You cannot validate a transfer if no quantities are reserved. To force the transfer, "
    "encode quantities."
)
NO_MOVES = "Please add some items to move."
# The id of the ``stock.view_backorder_confirmation`` view; it differs between databases.
BACKORDER_VIEW_ID = 1213


class StockLocation(BaseModel):
    _name = "stock.location"
    _description = "Inventory Locations"
    _table = T.StockLocation
    _rec_name = "complete_name"
    _parent_name = "location_id"
    _order = "complete_name, id"

    name = F.Char("Location Name", required=True)
    complete_name = F.Char("Full Location Name", readonly=True)
    location_id = F.Many2one("stock.location", "Parent Location", ondelete="cascade")
    child_ids = F.One2many("stock.location", "location_id", "Contains")
    parent_path = F.Char("Parent Path", readonly=True)
    usage = F.Selection(LOCATION_USAGES, "Location Type", required=True, default="internal")
    active = F.Boolean("Active", default=True)
    company_id = F.Many2one("res.company", "Company", default=1)
    warehouse_id = F.Many2one("stock.warehouse", "Warehouse")
    scrap_location = F.Boolean("Is a Scrap Location?", default=False)
    barcode = F.Char("Barcode")

    def _create(self, vals_list: Any) -> list[int]:
        ids = super()._create(vals_list)
        self._recompute_paths(ids)
        return ids

    def _check_constraints(self, ids: list[int], names: set[str]) -> None:
        # Odoo 17's _sql_constraints `barcode_company_uniq`: unique (barcode, company_id);
        # PostgreSQL lets any number of rows without a barcode through.
        if names & {"barcode", "company_id"}:
            self._check_unique(
                ids,
                ("barcode", "company_id"),
                "The barcode for a location must be unique per company !",
            )

    def _write(self, ids: Any, vals: dict[str, Any]) -> None:
        super()._write(ids, vals)
        if {"name", "location_id", "usage"} & set(vals):
            self._recompute_paths(self._hierarchy(list(ids)))

    def _recompute_paths(self, ids: list[int]) -> None:
        for rid in ids:
            row = self._get(rid, "name", "location_id", "usage")
            if row.location_id:
                parent = self._get(row.location_id, "complete_name", "parent_path")
                path = f"{parent.parent_path}{rid}/"
                # Odoo 17: a view location keeps its bare name.
                complete = row.name if row.usage == "view" else f"{parent.complete_name}/{row.name}"
            else:
                complete, path = row.name, f"{rid}/"
            self._conn.execute(
                self._t.update()
                .where(self._t.c.id == rid)
                .values(complete_name=complete, parent_path=path)
            )


class StockWarehouse(BaseModel):
    _name = "stock.warehouse"
    _description = "Warehouse"
    _table = T.StockWarehouse
    _order = "id"

    name = F.Char("Warehouse", required=True)
    code = F.Char("Short Name", required=True)
    company_id = F.Many2one("res.company", "Company", required=True, default=1)
    partner_id = F.Many2one("res.partner", "Address")
    view_location_id = F.Many2one("stock.location", "View Location", required=True)
    lot_stock_id = F.Many2one("stock.location", "Location Stock", required=True)
    in_type_id = F.Many2one("stock.picking.type", "In Type")
    out_type_id = F.Many2one("stock.picking.type", "Out Type")
    pick_type_id = F.Many2one("stock.picking.type", "Pick Type")
    pack_type_id = F.Many2one("stock.picking.type", "Pack Type")
    int_type_id = F.Many2one("stock.picking.type", "Internal Type")
    pos_type_id = F.Many2one("stock.picking.type", "Point of Sale Operation Type")
    reception_steps = F.Selection(
        [("one_step", "Receive goods directly (1 step)")], "Incoming Shipments", default="one_step"
    )
    delivery_steps = F.Selection(
        [("ship_only", "Deliver goods directly (1 step)")],
        "Outgoing Shipments",
        default="ship_only",
    )
    active = F.Boolean("Active", default=True)


class StockPickingType(BaseModel):
    _name = "stock.picking.type"
    _description = "Picking Type"
    _table = T.StockPickingType
    _order = "sequence, id"

    name = F.Char("Operation Type", required=True)
    code = F.Selection(
        [("incoming", "Receipt"), ("outgoing", "Delivery"), ("internal", "Internal Transfer")],
        "Type of Operation",
        required=True,
    )
    sequence_code = F.Char("Sequence Prefix", required=True)
    sequence_id = F.Many2one("ir.sequence", "Reference Sequence")
    default_location_src_id = F.Many2one("stock.location", "Default Source Location")
    default_location_dest_id = F.Many2one("stock.location", "Default Destination Location")
    warehouse_id = F.Many2one("stock.warehouse", "Warehouse", ondelete="cascade")
    company_id = F.Many2one("res.company", "Company", required=True, default=1)
    active = F.Boolean("Active", default=True)
    sequence = F.Integer("Sequence", default=1)

    def _display_names(self, ids: Any) -> dict[int, str]:
        raw = self._read_raw(ids, ["name", "warehouse_id"])
        warehouses = self.env["stock.warehouse"]._display_names(
            sorted({v["warehouse_id"] for v in raw.values() if v["warehouse_id"]})
        )
        return {
            i: f"{warehouses[v['warehouse_id']]}: {v['name']}" if v["warehouse_id"] else v["name"]
            for i, v in raw.items()
        }


class StockQuant(BaseModel):
    _name = "stock.quant"
    _description = "Quants"
    _table = T.StockQuant
    _rec_name = None

    product_id = F.Many2one("product.product", "Product", required=True, ondelete="restrict")
    product_tmpl_id = F.Many2one(
        "product.template", "Product Template", related="product_id.product_tmpl_id"
    )
    product_uom_id = F.Many2one("uom.uom", "Unit of Measure", related="product_id.uom_id")
    location_id = F.Many2one("stock.location", "Location", required=True, ondelete="restrict")
    company_id = F.Many2one("res.company", "Company", default=1)
    quantity = F.Float("Quantity", digits=2, default=0.0)
    reserved_quantity = F.Float("Reserved Quantity", digits=2, default=0.0)
    available_quantity = F.Float("Available Quantity", compute="_compute_available")
    inventory_quantity = F.Float("Counted Quantity", digits=2)
    inventory_diff_quantity = F.Float("Difference", compute="_compute_available")
    inventory_quantity_set = F.Boolean("Inventory Quantity Set", default=False)
    inventory_quantity_auto_apply = F.Float(
        "Inventoried Quantity", compute="_compute_available", inverse="_set_inventory_quantity"
    )
    inventory_date = F.Date("Scheduled Date")
    in_date = F.Datetime("Incoming Date", readonly=True)
    user_id = F.Many2one("res.users", "Assigned To")

    INVENTORY_FIELDS = frozenset(
        {
            "product_id",
            "location_id",
            "lot_id",
            "package_id",
            "owner_id",
            "inventory_quantity",
            "inventory_quantity_auto_apply",
            "inventory_diff_quantity",
            "inventory_date",
            "user_id",
            "inventory_quantity_set",
            "is_outdated",
        }
    )

    def _display_names(self, ids: Any) -> dict[int, str]:
        raw = self._read_raw(ids, ["product_id", "location_id"])
        products = self.env["product.product"]._display_names(
            sorted({v["product_id"] for v in raw.values()})
        )
        locations = self.env["stock.location"]._display_names(
            sorted({v["location_id"] for v in raw.values()})
        )
        return {
            i: f"{locations[v['location_id']]} - {products[v['product_id']]}"
            for i, v in raw.items()
        }

    def _compute_available(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        raw = self._read_raw(
            ids, ["quantity", "reserved_quantity", "inventory_quantity", "inventory_quantity_set"]
        )
        out = {}
        for i, v in raw.items():
            qty = v["quantity"] or 0.0
            diff = (v["inventory_quantity"] or 0.0) - qty if v["inventory_quantity_set"] else 0.0
            out[i] = {
                "available_quantity": qty - (v["reserved_quantity"] or 0.0),
                "inventory_diff_quantity": diff,
                "inventory_quantity_auto_apply": qty,
            }
        return out

    def _inventory_mode(self) -> bool:
        return bool(self.env.context.get("inventory_mode"))

    def _gather(self, product_id: int, location_id: int) -> int | None:
        t = self._t
        found: int | None = self._conn.execute(
            select(t.c.id)
            .where(t.c.product_id == product_id, t.c.location_id == location_id)
            .order_by(t.c.id)
            .limit(1)
        ).scalar()
        return found

    def _check_constraints(self, ids: list[int], names: set[str]) -> None:
        if "product_id" in names:
            raw = self._read_raw(ids, ["product_id"])
            products = sorted({v["product_id"] for v in raw.values()})
            types = self.env["product.product"]._read_raw(products, ["type"])
            if any(types[p]["type"] != "product" for p in products):
                raise ValidationError("Quants cannot be created for consumables or services.")

    def _create(self, vals_list: Any) -> list[int]:
        ids: list[int] = []
        for vals in vals_list:
            vals = dict(vals)
            counted = "inventory_quantity" in vals or "inventory_quantity_auto_apply" in vals
            if self._inventory_mode() and counted:
                if any(key not in self.INVENTORY_FIELDS for key in vals):
                    raise UserError("Quant's creation is restricted, you can't do this operation.")
                auto_apply = "inventory_quantity_auto_apply" in vals
                quantity = (
                    vals.pop("inventory_quantity_auto_apply", False)
                    or vals.pop("inventory_quantity", False)
                    or 0
                )
                vals.pop("inventory_quantity", None)
                plain = self.with_context(inventory_mode=False)
                existing = (
                    plain._gather(int(vals["product_id"]), int(vals["location_id"]))
                    if vals.get("product_id") and vals.get("location_id")
                    else None
                )
                quant_id = existing or super(StockQuant, plain)._create([vals])[0]
                if auto_apply:
                    self._write([quant_id], {"inventory_quantity_auto_apply": quantity})
                else:
                    self._write(
                        [quant_id],
                        {
                            "inventory_quantity": quantity,
                            "user_id": vals.get("user_id", self.env.uid),
                            "inventory_date": self.env.today,
                        },
                    )
                ids.append(quant_id)
            else:
                if "inventory_quantity" in vals:
                    vals["inventory_quantity_set"] = True
                ids.extend(super()._create([vals]))
        return ids

    def _write(self, ids: Any, vals: dict[str, Any]) -> None:
        vals = dict(vals)
        if "inventory_quantity" in vals and "inventory_quantity_set" not in vals:
            vals["inventory_quantity_set"] = True
        super()._write(ids, vals)

    def _set_inventory_quantity(self, ids: list[int], value: Any) -> None:
        """Inverse of ``inventory_quantity_auto_apply``: count and apply at once."""
        if not self._inventory_mode():
            return
        quantities = self._column_values(ids, "quantity")
        to_apply = [i for i in ids if (quantities[i] or 0.0) != float(value or 0.0)]
        if to_apply:
            self._write(to_apply, {"inventory_quantity": value})
            self._apply_inventory(to_apply)

    def _apply_inventory(self, ids: list[int]) -> None:
        raw = self._read_raw(
            ids,
            [
                "product_id",
                "location_id",
                "quantity",
                "inventory_quantity",
                "inventory_quantity_set",
                "company_id",
            ],
        )
        moves = []
        name = self.env.context.get("inventory_name") or "Product Quantity Updated"
        for values in raw.values():
            diff = (
                (values["inventory_quantity"] or 0.0) - (values["quantity"] or 0.0)
                if values["inventory_quantity_set"]
                else 0.0
            )
            source, dest = (
                (INVENTORY_LOCATION, values["location_id"])
                if diff > 0
                else (values["location_id"], INVENTORY_LOCATION)
            )
            moves.append(
                {
                    "name": name,
                    "product_id": values["product_id"],
                    "product_uom_qty": abs(diff),
                    "quantity": abs(diff),
                    "location_id": source,
                    "location_dest_id": dest,
                    "company_id": values["company_id"] or 1,
                    "is_inventory": True,
                    "picked": True,
                    "state": "confirmed",
                }
            )
        move_model = self.env["stock.move"].with_context(inventory_mode=False)
        move_model._action_done(move_model._create(moves))
        super()._write(
            ids,
            {
                "inventory_quantity": 0,
                "inventory_quantity_set": False,
                "user_id": False,
                "inventory_date": self.env.today,
            },
        )

    def _update_available_quantity(
        self, product_id: int, location_id: int, quantity: float
    ) -> None:
        """Add ``quantity`` on hand (may go negative), creating the quant if needed."""
        existing = self._gather(product_id, location_id)
        if existing:
            self._conn.execute(
                self._t.update()
                .where(self._t.c.id == existing)
                .values(quantity=self._t.c.quantity + quantity)
            )
        else:
            self._new_quant(product_id, location_id, quantity, 0.0)

    def _new_quant(
        self, product_id: int, location_id: int, quantity: float, reserved: float
    ) -> int:
        return super(StockQuant, self.with_context(inventory_mode=False))._create(
            [
                {
                    "product_id": product_id,
                    "location_id": location_id,
                    "quantity": quantity,
                    "reserved_quantity": reserved,
                    "in_date": self.env.now,
                }
            ]
        )[0]

    @api_records
    def action_apply_inventory(self, ids: Any) -> None:
        ids = normalize_ids(ids)
        self._ensure_exist(ids)
        self._apply_inventory(ids)
        return None

    @api_records
    def action_set_inventory_quantity_to_zero(self, ids: Any) -> None:
        super()._write(
            normalize_ids(ids), {"inventory_quantity": 0, "inventory_quantity_set": False}
        )


class StockMove(BaseModel):
    _name = "stock.move"
    _description = "Stock Move"
    _table = T.StockMove
    _order = "sequence, id"

    name = F.Char("Description", required=True)
    reference = F.Char("Reference", readonly=True)
    origin = F.Char("Source Document")
    picking_id = F.Many2one("stock.picking", "Transfer", ondelete="cascade")
    picking_type_id = F.Many2one("stock.picking.type", "Operation Type")
    product_id = F.Many2one("product.product", "Product", required=True)
    product_tmpl_id = F.Many2one(
        "product.template", "Product Template", related="product_id.product_tmpl_id"
    )
    product_uom_qty = F.Float("Demand", digits=2, required=True, default=0.0)
    product_qty = F.Float("Real Quantity", compute="_compute_product_qty")
    quantity = F.Float("Quantity", digits=2, default=0.0)
    product_uom = F.Many2one("uom.uom", "UoM", required=True)
    location_id = F.Many2one("stock.location", "Source Location", required=True)
    location_dest_id = F.Many2one("stock.location", "Destination Location", required=True)
    partner_id = F.Many2one("res.partner", "Destination Address")
    company_id = F.Many2one("res.company", "Company", required=True, default=1)
    state = F.Selection(MOVE_STATES, "Status", readonly=True, default="draft")
    picked = F.Boolean("Picked", default=False)
    is_inventory = F.Boolean("Inventory", default=False)
    procure_method = F.Selection(
        [
            ("make_to_stock", "Default: Take From Stock"),
            ("make_to_order", "Advanced: Apply Procurement Rules"),
        ],
        "Supply Method",
        required=True,
        default="make_to_stock",
    )
    date = F.Datetime("Date Scheduled", required=True, default=lambda env: env.now)
    sequence = F.Integer("Sequence", default=10)
    price_unit = F.Float("Unit Price", default=0.0)

    def _display_names(self, ids: Any) -> dict[int, str]:
        raw = self._read_raw(ids, ["reference", "name"])
        return {i: v["reference"] or v["name"] or "" for i, v in raw.items()}

    def _compute_product_qty(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        return {
            i: {"product_qty": q or 0.0}
            for i, q in self._column_values(ids, "product_uom_qty").items()
        }

    def _create(self, vals_list: Any) -> list[int]:
        pickings = self.env["stock.picking"]
        products = self.env["product.product"]
        prepared = []
        for vals in vals_list:
            vals = dict(vals)
            if vals.get("picking_id"):
                # Odoo 17 computes these from the transfer (precomputed stored fields).
                picking = pickings._get(
                    int(vals["picking_id"]),
                    "name",
                    "location_id",
                    "location_dest_id",
                    "picking_type_id",
                    "origin",
                    "partner_id",
                )
                vals.setdefault("location_id", picking.location_id)
                vals.setdefault("location_dest_id", picking.location_dest_id)
                vals.setdefault("picking_type_id", picking.picking_type_id)
                vals.setdefault("reference", picking.name)
                if picking.origin:
                    vals.setdefault("origin", picking.origin)
            if not vals.get("product_uom") and vals.get("product_id"):
                uom = products._read_raw([int(vals["product_id"])], ["uom_id"]).get(
                    int(vals["product_id"])
                )
                if uom:
                    vals["product_uom"] = uom["uom_id"]
            vals.setdefault("reference", vals.get("name"))
            prepared.append(vals)
        ids = super()._create(prepared)
        self._confirm_preset(ids)
        return ids

    def _confirm_preset(self, ids: list[int]) -> None:
        """A transfer's move created with a ``quantity`` is confirmed at once, and a storable
        one reserves that quantity on the quant whatever is on hand (so a quant can show more
        reserved than it holds); a consumable one stays ``confirmed``."""
        raw = self._read_raw(
            ids,
            ["picking_id", "state", "quantity", "product_uom_qty", "product_id", "location_id"],
        )
        preset = [
            mid
            for mid, v in raw.items()
            if v["picking_id"] and v["state"] == "draft" and (v["quantity"] or 0.0) > 0
        ]
        if not preset:
            return
        t = self._t
        self._conn.execute(t.update().where(t.c.id.in_(preset)).values(state="confirmed"))
        reserving = self._reserving({mid: raw[mid] for mid in preset})
        self._recompute_state(reserving)
        self._sync_reserved(self._keys(reserving))

    SPLIT_COPIED = (
        "name",
        "product_id",
        "product_uom",
        "location_id",
        "location_dest_id",
        "picking_id",
        "picking_type_id",
        "origin",
        "partner_id",
        "company_id",
        "procure_method",
        "sequence",
        "price_unit",
        "reference",
        "date",
    )

    def _copy_split(self, move_id: int, quantity: float) -> int:
        """``_split``: a new confirmed move for ``quantity`` of the demand, nothing reserved."""
        row = self._get(move_id, *self.SPLIT_COPIED)
        vals = {name: getattr(row, name) for name in self.SPLIT_COPIED}
        vals.update(product_uom_qty=quantity, quantity=0.0, state="confirmed", picked=False)
        return self._create([vals])[0]

    def _storable(self, product_ids: list[int]) -> set[int]:
        raw = self.env["product.product"]._read_raw(sorted(set(product_ids)), ["type"])
        return {pid for pid, v in raw.items() if v["type"] == "product"}

    def _location_usage(self, location_ids: list[int]) -> dict[int, str]:
        usage: dict[int, str] = self.env["stock.location"]._column_values(
            sorted(set(location_ids)), "usage"
        )
        return usage

    def _reserving(self, raw: dict[int, dict[str, Any]]) -> list[int]:
        """The moves among ``raw`` that reserve on quants: storable, from a quant location."""
        storable = self._storable([v["product_id"] for v in raw.values()])
        usage = self._location_usage([v["location_id"] for v in raw.values()])
        return [
            mid
            for mid, v in raw.items()
            if v["product_id"] in storable and usage.get(v["location_id"]) in QUANT_LOCATIONS
        ]

    def _keys(self, ids: list[int]) -> set[tuple[int, int]]:
        raw = self._read_raw(ids, ["product_id", "location_id"])
        return {(v["product_id"], v["location_id"]) for v in raw.values()}

    def _sync_reserved(self, keys: set[tuple[int, int]]) -> None:
        """Quants' ``reserved_quantity``: what the live moves of each (product, location) hold."""
        quants = self.env["stock.quant"]
        q, t = quants._t, self._t
        for product_id, location_id in sorted(keys):
            reserved = float(
                self._conn.execute(
                    select(func.sum(t.c.quantity)).where(
                        t.c.product_id == product_id,
                        t.c.location_id == location_id,
                        t.c.state.in_(RESERVED_STATES),
                    )
                ).scalar()
                or 0.0
            )
            rows = list(
                self._conn.execute(
                    select(q.c.id, q.c.reserved_quantity)
                    .where(q.c.product_id == product_id, q.c.location_id == location_id)
                    .order_by(q.c.id)
                )
            )
            if not rows:
                if reserved:
                    quants._new_quant(product_id, location_id, 0.0, reserved)
                continue
            wanted = {rows[0].id: reserved, **{r.id: 0.0 for r in rows[1:]}}
            for row in rows:
                if (row.reserved_quantity or 0.0) != wanted[row.id]:
                    self._conn.execute(
                        q.update().where(q.c.id == row.id).values(reserved_quantity=wanted[row.id])
                    )

    def _recompute_state(self, ids: list[int]) -> None:
        """Odoo's ``_recompute_state``: a live move's state from its quantity."""
        t = self._t
        for mid, v in self._read_raw(ids, ["state", "quantity", "product_uom_qty"]).items():
            if v["state"] in ("draft", "done", "cancel"):
                continue
            quantity, demand = v["quantity"] or 0.0, v["product_uom_qty"] or 0.0
            state = (
                "assigned"
                if quantity >= demand
                else "partially_available"
                if quantity > 0
                else "confirmed"
            )
            if state != v["state"]:
                self._conn.execute(t.update().where(t.c.id == mid).values(state=state))

    def _write(self, ids: Any, vals: dict[str, Any]) -> None:
        ids = list(dict.fromkeys(ids))
        before = self._keys(ids) if "quantity" in vals or "location_id" in vals else set()
        super()._write(ids, vals)
        if before:
            self._recompute_state(ids)
            self._sync_reserved(before | self._keys(ids))
            self.env["stock.picking"]._refresh_state(self._pickings(ids))

    def _unlink(self, ids: Any) -> None:
        keys = self._keys(list(ids))
        super()._unlink(ids)
        self._sync_reserved(keys)

    def _pickings(self, ids: list[int]) -> list[int]:
        return sorted({p for p in self._column_values(ids, "picking_id").values() if p})

    def _action_confirm(self, ids: list[int]) -> None:
        t = self._t
        self._conn.execute(
            t.update().where(t.c.id.in_(ids), t.c.state == "draft").values(state="confirmed")
        )
        self._action_assign(ids)

    def _free_quantity(self, product_id: int, location_id: int) -> float:
        """On hand under ``location_id`` minus what is reserved there (never below zero)."""
        locations = self.env["stock.location"]._hierarchy([location_id])
        quant = self.env["stock.quant"]._t
        on_hand, reserved = self._conn.execute(
            select(func.sum(quant.c.quantity), func.sum(quant.c.reserved_quantity)).where(
                quant.c.product_id == product_id, quant.c.location_id.in_(locations)
            )
        ).one()
        return max(0.0, float(on_hand or 0.0) - float(reserved or 0.0))

    def _action_assign(self, ids: list[int]) -> None:
        raw = self._read_raw(
            ids, ["product_id", "location_id", "state", "product_uom_qty", "quantity"]
        )
        reserving = set(self._reserving(raw))
        free: dict[tuple[int, int], float] = {}
        t = self._t
        for mid in ids:
            move = raw[mid]
            if move["state"] not in ("confirmed", "partially_available", "waiting"):
                continue
            demand, quantity = move["product_uom_qty"] or 0.0, move["quantity"] or 0.0
            if quantity < demand:
                if mid not in reserving:
                    quantity = demand
                else:
                    key = (move["product_id"], move["location_id"])
                    if key not in free:
                        free[key] = self._free_quantity(*key)
                    taken = max(0.0, min(free[key], demand - quantity))
                    free[key] -= taken
                    quantity += taken
            self._conn.execute(t.update().where(t.c.id == mid).values(quantity=quantity))
        self._recompute_state(ids)
        self._sync_reserved(self._keys(sorted(reserving)))

    def _action_done(self, ids: list[int]) -> None:
        """Move each move's ``quantity`` (stock may go negative), then free the reservations
        of other unpicked moves that the quants can no longer cover (``_free_reservation``)."""
        raw = self._read_raw(
            ids,
            ["product_id", "location_id", "location_dest_id", "quantity", "state", "picking_id"],
        )
        todo = {mid: v for mid, v in raw.items() if v["state"] not in ("done", "cancel")}
        self.env.work["done", "stock.move"] += len(todo)
        storable = self._storable([v["product_id"] for v in todo.values()])
        usage = self._location_usage(
            [v["location_id"] for v in todo.values()]
            + [v["location_dest_id"] for v in todo.values()]
        )
        quants = self.env["stock.quant"]
        sources: dict[tuple[int, int], int | None] = {}
        for move in todo.values():
            quantity = move["quantity"] or 0.0
            if move["product_id"] not in storable:
                continue
            if usage[move["location_id"]] in QUANT_LOCATIONS:
                quants._update_available_quantity(
                    move["product_id"], move["location_id"], -quantity
                )
                sources.setdefault((move["product_id"], move["location_id"]), move["picking_id"])
            if usage[move["location_dest_id"]] in QUANT_LOCATIONS:
                quants._update_available_quantity(
                    move["product_id"], move["location_dest_id"], quantity
                )
        t = self._t
        self._conn.execute(
            t.update()
            .where(t.c.id.in_(list(todo)))
            .values(state="done", picked=True, date=self.env.now, write_date=self.env.cr_now)
        )
        self._sync_reserved(set(sources))
        for key, picking_id in sources.items():
            self._free_reservation(key, picking_id)

    def _free_reservation(self, key: tuple[int, int], picking_id: int | None) -> None:
        product_id, location_id = key
        quant, t = self.env["stock.quant"]._t, self._t
        on_hand, reserved = self._conn.execute(
            select(func.sum(quant.c.quantity), func.sum(quant.c.reserved_quantity)).where(
                quant.c.product_id == product_id, quant.c.location_id == location_id
            )
        ).one()
        missing = float(reserved or 0.0) - float(on_hand or 0.0)
        if missing <= 0:
            return
        picking = self.env["stock.picking"]._t
        candidates = list(
            self._conn.execute(
                select(t.c.id, t.c.quantity, t.c.picking_id, t.c.date, picking.c.scheduled_date)
                .select_from(t.outerjoin(picking, picking.c.id == t.c.picking_id))
                .where(
                    t.c.product_id == product_id,
                    t.c.location_id == location_id,
                    t.c.state.in_(RESERVED_STATES),
                    t.c.quantity > 0,
                    t.c.picked.is_not(True),
                )
            )
        )
        # Odoo takes the current transfer first, then the latest scheduled ones.
        candidates.sort(
            key=lambda c: (
                c.picking_id != picking_id,
                -((c.scheduled_date or c.date).timestamp()),
                -c.id,
            )
        )
        touched = []
        for candidate in candidates:
            taken = min(candidate.quantity, missing)
            self._conn.execute(
                t.update().where(t.c.id == candidate.id).values(quantity=candidate.quantity - taken)
            )
            touched.append(candidate.id)
            missing -= taken
            if missing <= 0:
                break
        self._recompute_state(touched)
        self._sync_reserved({key})
        self.env["stock.picking"]._refresh_state(self._pickings(touched))

    def _action_cancel(self, ids: list[int]) -> None:
        states = self._column_values(ids, "state")
        if any(state == "done" for state in states.values()):
            raise UserError(CANNOT_CANCEL_DONE)
        t = self._t
        self._conn.execute(t.update().where(t.c.id.in_(ids)).values(state="cancel", quantity=0.0))
        self._sync_reserved(self._keys(ids))

    @api_records
    def action_confirm(self, ids: Any) -> list[int]:
        move_ids = normalize_ids(ids)
        self._ensure_exist(move_ids)
        self._action_confirm(move_ids)
        self.env["stock.picking"]._refresh_state(self._pickings(move_ids))
        return move_ids

    @api_records
    def action_assign(self, ids: Any) -> bool:
        ids = normalize_ids(ids)
        self._ensure_exist(ids)
        self._action_assign(ids)
        self.env["stock.picking"]._refresh_state(self._pickings(ids))
        return True


class StockPicking(BaseModel):
    _name = "stock.picking"
    _description = "Transfer"
    _table = T.StockPicking
    _order = "priority desc, scheduled_date asc, id desc"

    name = F.Char("Reference", default="/")
    origin = F.Char("Source Document", index=True)
    picking_type_id = F.Many2one("stock.picking.type", "Operation Type", required=True)
    picking_type_code = F.Selection(
        [("incoming", "Receipt"), ("outgoing", "Delivery"), ("internal", "Internal Transfer")],
        "Type of Operation",
        related="picking_type_id.code",
    )
    location_id = F.Many2one("stock.location", "Source Location", required=True)
    location_dest_id = F.Many2one("stock.location", "Destination Location", required=True)
    partner_id = F.Many2one("res.partner", "Contact")
    company_id = F.Many2one("res.company", "Company", required=True, default=1)
    state = F.Selection(PICKING_STATES, "Status", readonly=True, default="draft")
    move_type = F.Selection(
        [("direct", "As soon as possible"), ("one", "When all products are ready")],
        "Shipping Policy",
        required=True,
        default="direct",
    )
    priority = F.Selection([("0", "Normal"), ("1", "Urgent")], "Priority", default="0")
    scheduled_date = F.Datetime("Scheduled Date", default=lambda env: env.now)
    date_done = F.Datetime("Date of Transfer", readonly=True)
    note = F.Html("Notes")
    user_id = F.Many2one("res.users", "Responsible", default=lambda env: env.uid)
    backorder_id = F.Many2one("stock.picking", "Back Order of")
    move_ids = F.One2many("stock.move", "picking_id", "Stock Moves")
    move_ids_without_package = F.One2many("stock.move", "picking_id", "Stock moves not in package")

    def _create(self, vals_list: Any) -> list[int]:
        types = self.env["stock.picking.type"]
        sequences = self.env["ir.sequence"]
        prepared = []
        for vals in vals_list:
            vals = dict(vals)
            type_id = vals.get("picking_type_id") or self.env.context.get("default_picking_type_id")
            if type_id:
                ptype = types._get(
                    int(type_id),
                    "sequence_id",
                    "default_location_src_id",
                    "default_location_dest_id",
                )
                if not vals.get("location_id") and ptype.default_location_src_id:
                    vals["location_id"] = ptype.default_location_src_id
                if not vals.get("location_dest_id") and ptype.default_location_dest_id:
                    vals["location_dest_id"] = ptype.default_location_dest_id
                if vals.get("name", "/") in ("/", False, None) and ptype.sequence_id:
                    vals["name"] = sequences._next(ptype.sequence_id)
            prepared.append(vals)
        ids = super()._create(prepared)
        self._refresh_state(ids)
        return ids

    def _moves(self, ids: list[int]) -> list[int]:
        move = self.env["stock.move"]
        return list(
            self._conn.execute(
                select(move._t.c.id)
                .where(move._t.c.picking_id.in_(ids))
                .order_by(move._t.c.sequence, move._t.c.id)
            ).scalars()
        )

    def _refresh_state(self, ids: list[int]) -> None:
        """Transfer state from its moves (Odoo's ``_compute_state`` for the 'direct' policy)."""
        if not ids:
            return
        move = self.env["stock.move"]._t
        states: dict[int, set[str]] = defaultdict(set)
        for pid, state in self._conn.execute(
            select(move.c.picking_id, move.c.state).where(move.c.picking_id.in_(ids))
        ):
            states[pid].add(state)
        for pid in ids:
            found = states.get(pid, set())
            if not found or found == {"draft"}:
                continue
            live = found - {"cancel", "done"}
            if not live:
                state = "cancel" if found == {"cancel"} else "done"
            elif live & {"assigned", "partially_available"}:
                state = "assigned"
            else:
                state = "confirmed"
            self._conn.execute(self._t.update().where(self._t.c.id == pid).values(state=state))

    def _unlink_check(self, ids: list[int]) -> None:
        moves = self._moves(ids)
        if moves:
            self.env["stock.move"]._action_cancel(moves)

    @api_records
    def action_confirm(self, ids: Any) -> bool:
        ids = normalize_ids(ids)
        self._ensure_exist(ids)
        self.env["stock.move"]._action_confirm(self._moves(ids))
        self._refresh_state(ids)
        return True

    @api_records
    def action_assign(self, ids: Any) -> bool:
        ids = normalize_ids(ids)
        self._ensure_exist(ids)
        self.env["stock.move"]._action_assign(self._moves(ids))
        self._refresh_state(ids)
        return True

    @api_records
    def action_cancel(self, ids: Any) -> bool:
        ids = normalize_ids(ids)
        self._ensure_exist(ids)
        self.env["stock.move"]._action_cancel(self._moves(ids))
        self._conn.execute(self._t.update().where(self._t.c.id.in_(ids)).values(state="cancel"))
        return True

    def _live_moves(self, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        """Each transfer's moves that are not done or cancelled, in order."""
        raw = self.env["stock.move"]._read_raw(
            self._moves(ids),
            ["picking_id", "state", "product_uom_qty", "quantity", "picked", "is_inventory"],
        )
        out: dict[int, list[dict[str, Any]]] = {pid: [] for pid in ids}
        for mid, v in raw.items():
            if v["state"] not in ("done", "cancel"):
                out[v["picking_id"]].append({"id": mid, **v})
        return out

    @api_records
    def button_validate(self, ids: Any) -> bool | dict[str, Any]:
        """Odoo 17's ``button_validate``: confirm drafts (filling untouched quantities with
        the demand), the sanity check, the backorder question, then ``_action_done``."""
        ids = normalize_ids(ids)
        self._ensure_exist(ids)
        move_model = self.env["stock.move"]
        states = self._column_values(ids, "state")
        drafts = [i for i in ids if states[i] == "draft"]
        if drafts:
            self.action_confirm(drafts)
            fill = [
                m["id"]
                for moves in self._live_moves(drafts).values()
                for m in moves
                if not m["quantity"] and m["product_uom_qty"]
            ]
            for mid in fill:
                demand = move_model._column_values([mid], "product_uom_qty")[mid]
                move_model._write([mid], {"quantity": demand})
        # _sanity_check
        if not self._moves(ids):
            raise UserError(NO_MOVES)
        live = self._live_moves(ids)
        if any(all(not m["quantity"] for m in moves) for moves in live.values()):
            raise UserError(NO_QUANTITIES)
        # _pre_action_done_hook: nothing picked means everything is.
        for moves in live.values():
            if moves and not any(m["picked"] for m in moves):
                move_model._write([m["id"] for m in moves], {"picked": True})
                for m in moves:
                    m["picked"] = True
        context = self.env.context
        if not context.get("skip_backorder"):
            to_backorder = [
                pid
                for pid in ids
                if any(
                    (m["product_uom_qty"] and not m["picked"])
                    or (m["quantity"] or 0.0) < (m["product_uom_qty"] or 0.0)
                    for m in live[pid]
                )
            ]
            if to_backorder:
                return self._backorder_wizard(ids, to_backorder)
        not_to_backorder = set(normalize_ids(context.get("picking_ids_not_to_backorder")))
        for pid in ids:
            self._done(pid, live[pid], cancel_backorder=pid in not_to_backorder)
        return True

    def _backorder_wizard(self, ids: list[int], to_backorder: list[int]) -> dict[str, Any]:
        """``_action_generate_backorder_wizard`` (``stock.view_backorder_confirmation``)."""
        context = dict(self.env.context)
        context.setdefault("button_validate_picking_ids", ids)
        return {
            "name": "Create Backorder?",
            "type": "ir.actions.act_window",
            "view_mode": "form",
            "res_model": "stock.backorder.confirmation",
            "views": [[BACKORDER_VIEW_ID, "form"]],
            "view_id": BACKORDER_VIEW_ID,
            "target": "new",
            "context": {
                **context,
                "default_show_transfers": len(ids) > 1,
                "default_pick_ids": [[4, pid] for pid in to_backorder],
            },
        }

    def _done(self, pid: int, moves: list[dict[str, Any]], cancel_backorder: bool) -> None:
        """``_action_done`` of one transfer: what is picked moves, the rest of each demand is
        split off into a backorder (or cancelled with ``cancel_backorder``)."""
        move_model = self.env["stock.move"]
        t = move_model._t
        to_cancel: list[int] = []
        to_backorder: list[int] = []
        todo: list[int] = []
        for m in moves:
            quantity, demand = m["quantity"] or 0.0, m["product_uom_qty"] or 0.0
            if (quantity <= 0 or not m["picked"]) and not m["is_inventory"]:
                if demand == 0 or cancel_backorder:
                    to_cancel.append(m["id"])
                else:
                    to_backorder.append(m["id"])
                continue
            if quantity < demand:
                split = move_model._copy_split(m["id"], demand - quantity)
                self._conn.execute(
                    t.update().where(t.c.id == m["id"]).values(product_uom_qty=quantity)
                )
                (to_cancel if cancel_backorder else to_backorder).append(split)
            todo.append(m["id"])
        if to_cancel:
            move_model._action_cancel(to_cancel)
        move_model._action_done(todo)
        self._conn.execute(
            self._t.update()
            .where(self._t.c.id == pid)
            .values(date_done=self.env.now, priority="0", write_date=self.env.cr_now)
        )
        if to_backorder:
            self._create_backorder(pid, to_backorder)
        self._refresh_state([pid])

    def _create_backorder(self, pid: int, move_ids: list[int]) -> int:
        row = self._get(
            pid,
            "picking_type_id",
            "location_id",
            "location_dest_id",
            "origin",
            "partner_id",
            "company_id",
            "scheduled_date",
            "move_type",
            "user_id",
        )
        [backorder] = self._create(
            [
                {
                    "picking_type_id": row.picking_type_id,
                    "location_id": row.location_id,
                    "location_dest_id": row.location_dest_id,
                    "origin": row.origin,
                    "partner_id": row.partner_id,
                    "company_id": row.company_id,
                    "scheduled_date": row.scheduled_date,
                    "move_type": row.move_type,
                    "user_id": row.user_id,
                    "backorder_id": pid,
                }
            ]
        )
        name = self._get(backorder, "name").name
        move_model = self.env["stock.move"]
        t = move_model._t
        self._conn.execute(
            t.update()
            .where(t.c.id.in_(move_ids))
            .values(picking_id=backorder, reference=name, picked=False)
        )
        move_model._action_assign(move_ids)
        self._refresh_state([backorder])
        return backorder


class StockChangeProductQty(BaseModel):
    _name = "stock.change.product.qty"
    _description = "Change Product Quantity"
    _table = T.StockChangeProductQty
    _rec_name = None

    product_id = F.Many2one("product.product", "Product", required=True)
    product_tmpl_id = F.Many2one("product.template", "Template")
    new_quantity = F.Float("New Quantity on Hand", digits=2, required=True, default=1.0)

    @api_records
    def change_product_qty(self, ids: Any) -> dict[str, Any]:
        quants = self.env["stock.quant"].with_context(inventory_mode=True)
        stock = self.env["stock.warehouse"]._column_values([1], "lot_stock_id").get(1) or 8
        for wizard in self._read_raw(normalize_ids(ids), ["product_id", "new_quantity"]).values():
            quant_id = quants._create(
                [
                    {
                        "product_id": wizard["product_id"],
                        "location_id": stock,
                        "inventory_quantity": wizard["new_quantity"],
                    }
                ]
            )[0]
            quants._apply_inventory([quant_id])
        return {"type": "ir.actions.act_window_close"}
