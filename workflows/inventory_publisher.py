"""InventoryPublisher: Odoo's on-hand at a store's location, published to that store, on change
and coalesced.

One per store (`availability:{store}`), started by signal-with-start from whatever changed the
store's stock in Odoo (activities/availability.py `inventory_changed`). Changes arriving within
`coalesce` of the first are gathered: N changes make one read of Odoo and one availability
command to the store (idempotent by its command id), not one per sale. Continues as new every
MAX_PUBLISHES publications, carrying what is still pending.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.inventory import (
        AvailabilityItem,
        InventoryActivities,
        PublishAvailabilityInput,
    )
    from activities.odoo.inventory import OdooInventoryActivities, OnHandInput
    from activities.odoo.stock import DecrementStockResult
    from domain.ids import business_id
    from workflows.policies import ODOO_WRITE, POS_COMMAND_PUBLISH, TEMPORAL_READ

MAX_PUBLISHES = 200


def publisher_workflow_id(store_id: str) -> str:
    return business_id("availability", store_id)


class InventoryChanged(BaseModel):
    """Products whose on-hand at the store's location may have changed."""

    product_ids: list[int]


class PublisherInput(BaseModel):
    store_id: str
    coalesce: timedelta = timedelta(seconds=10)
    # Carried over continue-as-new.
    pending: list[int] = []
    published: int = 0


class PublisherState(BaseModel):
    published: int
    pending: list[int]


@workflow.defn
class InventoryPublisher:
    def __init__(self) -> None:
        self._pending: set[int] = set()
        self._published = 0

    @workflow.signal
    def changed(self, change: InventoryChanged) -> None:
        self._pending.update(p for p in change.product_ids if isinstance(p, int) and p > 0)

    @workflow.query
    def state(self) -> PublisherState:
        return PublisherState(published=self._published, pending=sorted(self._pending))

    @workflow.run
    async def run(self, input: PublisherInput) -> None:
        self._pending.update(input.pending)
        self._published = input.published
        for _ in range(MAX_PUBLISHES):
            await workflow.wait_condition(lambda: bool(self._pending))
            # Let the changes of a busy moment gather: one publication for all of them.
            await workflow.sleep(input.coalesce)
            batch, self._pending = sorted(self._pending), set()
            read = await workflow.execute_activity_method(
                OdooInventoryActivities.on_hand,
                OnHandInput(store_id=input.store_id, product_ids=batch),
                **ODOO_WRITE,
            )
            if read.on_hand:
                await workflow.execute_activity_method(
                    InventoryActivities.publish_availability,
                    PublishAvailabilityInput(
                        store_id=input.store_id,
                        command_id=business_id(
                            "availability", input.store_id, workflow.uuid4().hex
                        ),
                        items=[
                            AvailabilityItem(sku=h.sku, product_id=h.product_id, qty=h.qty)
                            for h in read.on_hand
                        ],
                    ),
                    **POS_COMMAND_PUBLISH,
                )
            self._published += 1
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            PublisherInput(
                store_id=input.store_id,
                coalesce=input.coalesce,
                pending=sorted(self._pending),
                published=self._published,
            )
        )


# Workflows that move stock tell the store's publisher, from this version on.
AVAILABILITY_ON_STOCK_MOVE = "availability-on-stock-move"


async def stock_moved(result: DecrementStockResult) -> None:
    """Called by a workflow after its goods moved (a sale, a ledger batch, a refund's restock):
    when they left or came back to a store's own location, that store's InventoryPublisher
    republishes the products' on-hand, coalesced with the store's other changes. Goods of the
    warehouse's shared stock change no store's availability."""
    if result.store_id and result.product_ids and workflow.patched(AVAILABILITY_ON_STOCK_MOVE):
        await workflow.execute_activity(
            # By name: activities/availability.py imports this module.
            "inventory_changed",
            {"store_id": result.store_id, "product_ids": result.product_ids},
            **TEMPORAL_READ,
        )
