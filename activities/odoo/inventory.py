"""Inventory in Odoo per store location: what is on hand, and adjustments applied exactly once.

An adjustment is Odoo 17's own inventory count: `stock.quant.create` in `inventory_mode` with
the counted `inventory_quantity` (it merges into the location's quant), then
`action_apply_inventory`, which books a done `is_inventory` stock move against the
inventory-adjustment location. The move's name is the `inventory_name` of the context: the
audit's key. That is the claim: before counting a product, the activity looks for a done
inventory move of that key, product and location, and a retry after a lost answer finds it and
counts nothing twice. The count is the quant's quantity read just before plus the drift, so a
sale booked between the audit's reads and the adjustment is not undone.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel
from temporalio import activity

from activities.odoo.client import OdooUnavailable
from activities.odoo.stock import OdooStockActivities
from domain.inventory import OnHand


class OnHandInput(BaseModel):
    store_id: str
    product_ids: list[int] = []
    # Counted products the store knows only by SKU.
    skus: list[str] = []


class OnHandResult(BaseModel):
    location_id: int
    on_hand: list[OnHand]


class AdjustmentLine(BaseModel):
    product_id: int
    sku: str
    delta: Decimal


class ApplyAdjustmentInput(BaseModel):
    # The audit's key: the name of every inventory move it books (one per product).
    key: str
    store_id: str
    lines: list[AdjustmentLine]


class ApplyAdjustmentResult(BaseModel):
    applied: list[str] = []
    # Already booked under this key by an earlier attempt: nothing counted again.
    already: list[str] = []


class OdooInventoryActivities(OdooStockActivities):
    """Reads and adjustments at the stores' locations (the stock activities' location map)."""

    @activity.defn
    def on_hand(self, input: OnHandInput) -> OnHandResult:
        """On-hand quantity and standard price at the store's location for these products."""
        location = self.store_location_id(input.store_id)
        ids = list(dict.fromkeys(input.product_ids))
        products: dict[int, dict[str, object]] = {}
        if ids:
            for row in self.odoo.call(
                "product.product", "read", ids, ["default_code", "standard_price", "type"]
            ):
                products[row["id"]] = row
        if input.skus:
            for row in self.odoo.call(
                "product.product",
                "search_read",
                [("default_code", "in", list(dict.fromkeys(input.skus)))],
                fields=["default_code", "standard_price", "type"],
                order="id asc",
            ):
                products.setdefault(row["id"], row)
        qty: dict[int, Decimal] = {}
        if products:
            for quant in self.odoo.call(
                "stock.quant",
                "search_read",
                [("location_id", "=", location), ("product_id", "in", sorted(products))],
                fields=["product_id", "quantity"],
            ):
                pid = quant["product_id"][0]
                qty[pid] = qty.get(pid, Decimal(0)) + _decimal(quant["quantity"])
        return OnHandResult(
            location_id=location,
            on_hand=[
                OnHand(
                    product_id=pid,
                    sku=str(row.get("default_code") or ""),
                    qty=qty.get(pid, Decimal(0)),
                    standard_price=_decimal(row.get("standard_price") or 0),
                )
                for pid, row in products.items()
                if row.get("type") != "service"
            ],
        )

    @activity.defn
    def apply_adjustment(self, input: ApplyAdjustmentInput) -> ApplyAdjustmentResult:
        """Add each line's drift to the store location's on-hand, once per key and product."""
        location = self.store_location_id(input.store_id)
        lines = {ln.product_id: ln for ln in input.lines if ln.delta != 0}
        if not lines:
            return ApplyAdjustmentResult()
        done = {
            row["product_id"][0]
            for row in self.odoo.call(
                "stock.move",
                "search_read",
                [
                    ("name", "=", input.key),
                    ("is_inventory", "=", True),
                    ("state", "=", "done"),
                    ("product_id", "in", sorted(lines)),
                ],
                fields=["product_id", "location_id", "location_dest_id"],
            )
            if location in (row["location_id"][0], row["location_dest_id"][0])
        }
        todo = [pid for pid in lines if pid not in done]
        if todo:
            current: dict[int, float] = {pid: 0.0 for pid in todo}
            for quant in self.odoo.call(
                "stock.quant",
                "search_read",
                [("location_id", "=", location), ("product_id", "in", todo)],
                fields=["product_id", "quantity"],
            ):
                current[quant["product_id"][0]] += float(quant["quantity"])
            quant_ids = []
            for pid in todo:
                counted = current[pid] + float(lines[pid].delta)
                created = self.odoo.call(
                    "stock.quant",
                    "create",
                    {"product_id": pid, "location_id": location, "inventory_quantity": counted},
                    context={"inventory_mode": True},
                )
                quant_ids.append(created[0] if isinstance(created, list) else int(created))
            answer = self.odoo.call(
                "stock.quant",
                "action_apply_inventory",
                quant_ids,
                context={"inventory_name": input.key},
            )
            if isinstance(answer, dict):
                # Odoo's conflict wizard: a quant moved between our count and the apply (a
                # sale). Nothing was applied; the retry counts again from what is on hand.
                raise OdooUnavailable(
                    f"{input.key}: Odoo answered {answer.get('res_model') or answer} instead of "
                    f"applying the count (the quant changed meanwhile): counting again"
                )
        return ApplyAdjustmentResult(
            applied=[lines[p].sku for p in todo], already=[lines[p].sku for p in done]
        )


def _decimal(value: object) -> Decimal:
    """Odoo's float as a Decimal, whole numbers without a fraction (6.0 -> 6)."""
    number = Decimal(str(value))
    return number.quantize(Decimal(1)) if number == number.to_integral_value() else number
