"""What the inventory audit and the availability publisher ask of the stores: their counts,
page by page, and Odoo's on-hand for them. Async: the POS client is httpx."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.pos_client import PosClient
from domain.inventory import StoreCount


class StoreCountsInput(BaseModel):
    store_id: str
    after_sku: str | None = None
    limit: int = 200


class StoreCountsPage(BaseModel):
    counts: list[StoreCount]
    # The cursor of the next page (None: this was the last).
    next_after: str | None = None
    # Rows the store sent that could not be read, with why: reported, never fatal.
    unreadable: list[str] = []


class AvailabilityItem(BaseModel):
    sku: str
    product_id: int | None = None
    qty: Decimal


class PublishAvailabilityInput(BaseModel):
    store_id: str
    command_id: str
    items: list[AvailabilityItem]


class PublishAvailabilityResult(BaseModel):
    applied: bool


class InventoryActivities:
    def __init__(self, pos: PosClient) -> None:
        self.pos = pos

    @activity.defn
    async def store_counts(self, input: StoreCountsInput) -> StoreCountsPage:
        page = await self.pos.inventory(input.store_id, input.after_sku, input.limit)
        counts: list[StoreCount] = []
        unreadable: list[str] = []
        items = page.get("items")
        if not isinstance(items, list):
            raise ApplicationError(
                f"store {input.store_id}: inventory answer without items",
                type="PosBadAnswer",
                non_retryable=True,
            )
        for i, row in enumerate(items):
            try:
                counts.append(
                    StoreCount(
                        sku=row["sku"],
                        product_id=row.get("product_id"),
                        qty=Decimal(str(row["qty"])),
                        counted_at=datetime.fromisoformat(row["counted_at"])
                        if row.get("counted_at")
                        else None,
                    )
                )
            except (KeyError, TypeError, ValueError, ArithmeticError, ValidationError) as e:
                unreadable.append(f"item {i} ({str(row)[:80]}): {str(e)[:120]}")
        last = items[-1].get("sku") if items and isinstance(items[-1], dict) else None
        return StoreCountsPage(
            counts=counts,
            next_after=str(last) if page.get("has_more") and last else None,
            unreadable=unreadable,
        )

    @activity.defn
    async def publish_availability(
        self, input: PublishAvailabilityInput
    ) -> PublishAvailabilityResult:
        answer = await self.pos.put_availability(
            input.store_id,
            input.command_id,
            [
                {"sku": it.sku, "product_id": it.product_id, "qty": str(it.qty)}
                for it in input.items
            ],
        )
        return PublishAvailabilityResult(applied=bool(answer.get("applied")))
