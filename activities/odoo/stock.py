"""Stock for sales and refunds: one done picking per key (a sale's goods leave, a refund's
return), exactly once.

The call sequence is the one a real Odoo 17 always ends in one `done` picking with: create the
picking with every move's `quantity` set to its demand and `picked` true, then `button_validate`
with no context. That moves the full demand, creates no backorder and lets stock go negative
when the shop sold what the system did not know it had (docs/architecture.md, "Odoo behaviours
relied on"). Anything else Odoo answers (a wizard action, a refusal) is a business problem for
ops, never a retry loop.
"""

from __future__ import annotations

from typing import Any

from odoorpc.error import RPCError
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.odoo.base import OdooActivityBase, first_attempt, raise_refusal, refusal_of
from activities.odoo.claim import PICKING, RECHECK, Recheck, Refusal, claim
from activities.odoo.client import OdooClient, ProductInfo
from activities.odoo.locations import LocationResolver
from domain.posting import PostingProfile, StockLine, store_of_origin


class DecrementStockInput(BaseModel):
    # Idempotency key of the picking: a sale key, or a batch key derived from its sales.
    origin: str
    lines: list[StockLine]
    # False: goods leave (stock -> customers); True: goods come back (a refund's restock).
    incoming: bool = False
    # The caller knows no picking of this origin can exist yet (a sale whose entry its own
    # workflow just posted, asking for the first time): a first attempt creates and validates
    # without the claim's read (one RPC less, docs/odoo17-behaviour.md §h). A retry claims.
    new_origin: bool = False
    # The store whose shelf the goods leave (or return to): its location in the posting
    # profile. None: the store the origin names (a sale, a summary, a ledger batch), else the
    # warehouse's stock location.
    store_id: str | None = None


class DecrementStockResult(BaseModel):
    picking_id: int | None
    picking_name: str | None
    already_done: bool = False
    # Services and SKUs Odoo does not know move no stock; they are reported, not fatal.
    skipped_skus: list[str] = []
    # The store whose own location (posting profile) the goods left or came back to, and the
    # products moved: what its InventoryPublisher republishes. None: the warehouse's stock.
    store_id: str | None = None
    product_ids: list[int] = []


class EnsureStoreLocationsInput(BaseModel):
    # Only these stores (all of the profile's store_locations when empty).
    stores: list[str] = []


class StoreLocation(BaseModel):
    store_id: str
    location: str
    location_id: int
    created: bool


class EnsureStoreLocationsResult(BaseModel):
    locations: list[StoreLocation]


class OdooStockActivities(OdooActivityBase):
    def __init__(self, odoo: OdooClient, profile: PostingProfile) -> None:
        super().__init__(odoo, profile)
        self.locations = LocationResolver(odoo)

    def store_location_id(self, store_id: str | None) -> int:
        """The store's stock location id: its own from the profile, else the warehouse's."""
        ref = self.profile.store_location(store_id)
        if ref is None or store_id is None:
            return self.odoo.stock_route(self.profile.warehouse_code).stock_location_id
        return self.locations.resolve(ref, store_id)

    @activity.defn
    def ensure_store_locations(
        self, input: EnsureStoreLocationsInput
    ) -> EnsureStoreLocationsResult:
        """Create the profile's missing store locations (internal, under their parent), once."""
        wanted = {
            s: ref
            for s, ref in sorted(self.profile.store_locations.items())
            if not input.stores or s in input.stores
        }
        unknown = sorted(set(input.stores) - set(wanted))
        if unknown:
            raise ApplicationError(
                f"stores without a location in the posting profile: {', '.join(unknown)}",
                type="UnknownStore",
                non_retryable=True,
            )
        made = self.locations.ensure(list(wanted.values()))
        return EnsureStoreLocationsResult(
            locations=[
                StoreLocation(
                    store_id=s, location=ref, location_id=made[ref][0], created=made[ref][1]
                )
                for s, ref in wanted.items()
            ]
        )

    @activity.defn
    def decrement_stock(self, input: DecrementStockInput) -> DecrementStockResult:
        """One outgoing picking (stock → customers) per key, validated exactly once.
        With `incoming`, the receipt that puts returned goods back (customers → stock)."""
        found, _ = self.odoo.products(line.sku for line in input.lines)
        lines = [ln for ln in input.lines if ln.sku in found and found[ln.sku].moves_stock]
        skipped = sorted({ln.sku for ln in input.lines} - {ln.sku for ln in lines})
        if not lines:
            return DecrementStockResult(picking_id=None, picking_name=None, skipped_skus=skipped)
        vals = self._picking_vals(input, lines, found)
        store = input.store_id or store_of_origin(input.origin)
        moved = {
            "store_id": store if self.profile.store_location(store) else None,
            "product_ids": sorted({found[ln.sku].id for ln in lines}),
        }
        if input.new_origin and first_attempt():
            done = self._create_and_validate(input.origin, vals)
            if done is not None:
                return DecrementStockResult(
                    picking_id=done, picking_name=None, skipped_skus=skipped, **moved
                )
        result = claim(
            self.odoo,
            PICKING,
            [input.origin],
            create=lambda keys: self._create(input.origin, vals),
            finish=self._validate,
            fresh=first_attempt(),
        )[input.origin]
        if isinstance(result, Refusal):
            raise_refusal(result)
        return DecrementStockResult(
            picking_id=result.id,
            picking_name=result.name,
            already_done=result.already,
            skipped_skus=skipped,
            **moved,
        )

    def _picking_vals(
        self, input: DecrementStockInput, lines: list[StockLine], found: dict[str, ProductInfo]
    ) -> dict[str, Any]:
        route = self.odoo.stock_route(self.profile.warehouse_code)
        shelf = self.store_location_id(input.store_id or store_of_origin(input.origin))
        src, dest = shelf, route.customer_location_id
        picking_type = route.out_type_id
        if input.incoming:
            src, dest, picking_type = dest, src, route.in_type_id
        return {
            "picking_type_id": picking_type,
            "location_id": src,
            "location_dest_id": dest,
            "origin": input.origin,
            "move_ids": [
                (
                    0,
                    0,
                    {
                        "name": f"{input.origin} {ln.sku}",
                        "product_id": found[ln.sku].id,
                        "product_uom": found[ln.sku].uom_id,
                        # Quantity = demand, picked: validates in full, stock or not.
                        "product_uom_qty": float(ln.qty),
                        "quantity": float(ln.qty),
                        "picked": True,
                        "location_id": src,
                        "location_dest_id": dest,
                    },
                )
                for ln in lines
            ],
        }

    def _create_and_validate(self, origin: str, vals: dict[str, Any]) -> int | None:
        """The picking of a new origin, created and validated: its id, or None when the claim
        must read (a racing attempt's work). Odoo's refusals are raised."""
        try:
            picking_id = int(self.odoo.call_raw("stock.picking", "create", vals))
        except RPCError as e:
            raise_refusal(refusal_of(e, f"stock.picking.create {origin}"))
        answer = self._validate({origin: picking_id}).get(origin)
        if isinstance(answer, Refusal):
            raise_refusal(answer)
        return picking_id if answer is None else None

    def _create(self, origin: str, vals: dict[str, Any]) -> dict[str, Refusal]:
        try:
            self.odoo.call_raw("stock.picking", "create", vals)
        except RPCError as e:
            return {origin: refusal_of(e, f"stock.picking.create {origin}")}
        return {}

    def _validate(self, survivors: dict[str, int]) -> dict[str, Refusal | Recheck]:
        refused: dict[str, Refusal | Recheck] = {}
        for origin, picking_id in survivors.items():
            try:
                answer = self.odoo.call_raw("stock.picking", "button_validate", [picking_id])
            except RPCError as e:
                if self._state(picking_id) in ("done", None):
                    # A racing attempt validated (or removed) it: the claim reads again.
                    refused[origin] = RECHECK
                    continue
                refused[origin] = refusal_of(e, f"stock.picking.button_validate {origin}")
                continue
            if answer is not True:
                # A wizard (backorder, immediate transfer...) where the sequence above never
                # asks for one: Odoo is configured differently than expected. Ops must look.
                refused[origin] = Refusal(
                    "StockNotValidated",
                    f"Odoo did not validate picking {origin} (id {picking_id}); it answered "
                    f"{_describe(answer)}",
                )
        return refused

    def _state(self, picking_id: int) -> str | None:
        rows = self.odoo.call("stock.picking", "read", [picking_id], ["state"])
        return rows[0]["state"] if rows else None


def _describe(answer: Any) -> str:
    if isinstance(answer, dict):
        keys = ("name", "type", "res_model")
        return "an action " + ", ".join(f"{k}={answer.get(k)!r}" for k in keys if k in answer)
    return repr(answer)[:200]
