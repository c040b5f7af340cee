"""Prices in Odoo for a rollout: check the SKUs, read the prices in force, write the rollout's
fixed-price pricelist items (exactly once), and remove them again when the rollout is undone."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.odoo.base import OdooActivityBase, odoo_datetime
from activities.odoo.claim import remove
from activities.odoo.client import OdooUnavailable
from domain.money import cents
from domain.pricing import PriceChange


class PreparePriceRolloutInput(BaseModel):
    changes: list[PriceChange]
    # When the old prices are read: the rollout's effective time.
    at: datetime
    pricelist: str


class PreparedPriceRollout(BaseModel):
    pricelist_id: int
    product_ids: dict[str, int]
    # The price each SKU had in the stores' pricelist at the effective time: what compensation
    # restores in the stores.
    old_prices: dict[str, Decimal]


class PricelistItem(BaseModel):
    product_id: int
    price: Decimal
    start: datetime
    end: datetime | None = None


class WritePricelistItemsInput(BaseModel):
    pricelist_id: int
    items: list[PricelistItem]


class WrittenPricelistItems(BaseModel):
    item_ids: list[int]


class RemovePricelistItemsInput(BaseModel):
    item_ids: list[int]


class OdooPricingActivities(OdooActivityBase):
    @activity.defn
    def prepare_price_rollout(self, input: PreparePriceRolloutInput) -> PreparedPriceRollout:
        """Check every SKU exists and read the prices in force, before anything is written."""
        found, problems = self.odoo.products(c.sku for c in input.changes)
        if problems:
            raise ApplicationError(
                "; ".join(problems[sku] for sku in sorted(problems)),
                type="UnknownSku",
                non_retryable=True,
            )
        pricelist_id = self._claim_one(
            "product.pricelist", [("name", "=", input.pricelist)], {"name": input.pricelist}
        )
        context = {"pricelist": pricelist_id, "date": odoo_datetime(input.at), "quantity": 1}
        old = {
            c.sku: cents(
                Decimal(
                    str(
                        self.odoo.call(
                            "product.product",
                            "get_contextual_price",
                            [found[c.sku].id],
                            context=context,
                        )
                    )
                )
            )
            for c in input.changes
        }
        return PreparedPriceRollout(
            pricelist_id=pricelist_id,
            product_ids={sku: info.id for sku, info in found.items()},
            old_prices=old,
        )

    @activity.defn
    def write_pricelist_items(self, input: WritePricelistItemsInput) -> WrittenPricelistItems:
        """One fixed-price item per change, exactly once (claimed by its natural key)."""
        ids = []
        for item in input.items:
            vals: dict[str, Any] = {
                "pricelist_id": input.pricelist_id,
                "applied_on": "0_product_variant",
                "product_id": item.product_id,
                "compute_price": "fixed",
                "fixed_price": float(item.price),
                "date_start": odoo_datetime(item.start),
                "date_end": odoo_datetime(item.end) if item.end else False,
            }
            ids.append(
                self._claim_one(
                    "product.pricelist.item", [(k, "=", v) for k, v in vals.items()], vals
                )
            )
        return WrittenPricelistItems(item_ids=ids)

    @activity.defn
    def remove_pricelist_items(self, input: RemovePricelistItemsInput) -> None:
        """Compensation: the rollout's items go, so the prices in force before it apply again."""
        remove(self.odoo, "product.pricelist.item", input.item_ids)

    def _claim_one(self, model: str, domain: list[Any], vals: dict[str, Any]) -> int:
        """The record matching `domain`, created once even across retries and races: the lowest
        id wins and any other copy is removed."""
        found: list[int] = self.odoo.call(model, "search", domain, order="id asc")
        if found:
            return found[0]
        self.odoo.call(model, "create", vals)
        found = self.odoo.call(model, "search", domain, order="id asc")
        if not found:
            raise OdooUnavailable(f"{model} created but not found by {domain}")
        remove(self.odoo, model, found[1:])
        return found[0]
