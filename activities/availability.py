"""Telling a store's InventoryPublisher that stock changed: signal-with-start, so the first
change starts it and later ones join it (workflows/inventory_publisher.py)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client

from workflows.inventory_publisher import (
    InventoryChanged,
    InventoryPublisher,
    PublisherInput,
    publisher_workflow_id,
)


class InventoryChangedInput(BaseModel):
    store_id: str
    product_ids: list[int]
    coalesce: timedelta = timedelta(seconds=10)


class AvailabilityActivities:
    def __init__(self, client: Client) -> None:
        self.client = client

    @activity.defn
    async def inventory_changed(self, input: InventoryChangedInput) -> None:
        if not input.product_ids:
            return
        await self.client.start_workflow(
            InventoryPublisher.run,
            PublisherInput(store_id=input.store_id, coalesce=input.coalesce),
            id=publisher_workflow_id(input.store_id),
            task_queue=activity.info().task_queue,
            start_signal="changed",
            start_signal_args=[InventoryChanged(product_ids=input.product_ids)],
        )
