"""The sale and refund paths' way into a customer's CustomerSync workflow: a signal-with-start
through the worker's Temporal client, which a workflow cannot do itself. Points are computed
here, under the loyalty policy file the worker was given (docs/customers.md). Delivering an
event twice is harmless: the customer's workflow absorbs a repeated key."""

from __future__ import annotations

import uuid
from decimal import Decimal

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy

from domain.customer import DEFAULT_PLATFORM, LoyaltyPolicy, points_for
from domain.sale import Sale
from workflows.customer_sync import (
    CustomerEvent,
    CustomerSync,
    CustomerSyncInput,
    EventKind,
    customer_workflow_id,
)


class CustomerSalesInput(BaseModel):
    # Posted sales that name a customer.
    sales: list[Sale]


class LoyaltyReversalInput(BaseModel):
    # The refunded sale (as its Odoo entry keeps it: the customer by id) and the refund.
    sale: Sale
    refund_id: str
    amount: Decimal


def sale_points(sale: Sale, policy: LoyaltyPolicy) -> int:
    return points_for([(line.sku, line.net) for line in sale.lines], policy)


async def deliver(
    client: Client,
    task_queue: str,
    pos_customer_id: str,
    signal: str,
    event: CustomerEvent,
    platform: str = DEFAULT_PLATFORM,
) -> None:
    """Signal-with-start the customer's workflow (it runs as long as the customer exists)."""
    await client.start_workflow(
        CustomerSync.run,
        CustomerSyncInput(platform=platform, pos_customer_id=pos_customer_id),
        id=customer_workflow_id(platform, pos_customer_id),
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        start_signal=signal,
        start_signal_args=[event],
        static_summary="Customer sync",
    )


def erase_event() -> CustomerEvent:
    return CustomerEvent(kind=EventKind.ERASE, key=f"erase:{uuid.uuid4().hex}")


class CustomerSyncActivities:
    def __init__(self, policy: LoyaltyPolicy, platform: str = DEFAULT_PLATFORM) -> None:
        self.policy = policy
        self.platform = platform

    @activity.defn
    async def request_customer_sync(self, input: CustomerSalesInput) -> int:
        """Hand each posted sale's customer to its CustomerSync; how many were handed over."""
        sent = 0
        for sale in input.sales:
            if sale.customer is None:
                continue
            event = CustomerEvent(
                kind=EventKind.SALE,
                key=f"sale:{sale.key}",
                customer=sale.customer,
                store_id=sale.store_id,
                points=sale_points(sale, self.policy),
                sale_key=sale.key,
            )
            await deliver(
                activity.client(),
                activity.info().task_queue,
                sale.customer.pos_customer_id,
                "sale",
                event,
                self.platform,
            )
            sent += 1
        return sent

    @activity.defn
    async def request_loyalty_reversal(self, input: LoyaltyReversalInput) -> bool:
        """Hand a posted refund to its sale's customer, so the points it earned come back."""
        customer = input.sale.customer
        if customer is None:
            return False
        event = CustomerEvent(
            kind=EventKind.REFUND,
            key=f"refund:{input.refund_id}",
            points=sale_points(input.sale, self.policy),
            sale_key=input.sale.key,
            sale_total=input.sale.total,
            refund_amount=input.amount,
        )
        await deliver(
            activity.client(),
            activity.info().task_queue,
            customer.pos_customer_id,
            "refund",
            event,
            self.platform,
        )
        return True
