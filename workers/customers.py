"""Requests about customers from outside the workflows (the CLI, the ingress): an erasure
request delivered to the customer's CustomerSync (docs/customers.md)."""

from __future__ import annotations

from pydantic import TypeAdapter
from temporalio.client import Client

from activities.customers import deliver, erase_event
from domain.customer import DEFAULT_PLATFORM, CustomerId
from workers.settings import Settings
from workflows.customer_sync import customer_workflow_id

# A POS customer id as the edge accepts it (1-64 characters, no ':', '@' or white space).
CUSTOMER_ID: TypeAdapter[str] = TypeAdapter(CustomerId)


async def erase_customer(
    client: Client, settings: Settings, pos_customer_id: str, platform: str = DEFAULT_PLATFORM
) -> str:
    """Deliver an erasure request to the customer's CustomerSync (started if need be); its
    workflow id. Delivering it twice is harmless."""
    await deliver(client, settings.task_queue, pos_customer_id, "erase", erase_event(), platform)
    return customer_workflow_id(platform, pos_customer_id)
