"""`retailflow customer ...`: customers synced from the stores to Odoo (docs/customers.md).

* `customer erase POS_CUSTOMER_ID [--wait]`: the customer asked to be forgotten: their partner in
  Odoo is anonymised (binder kept), and retailflow keeps nothing personal about them from then on;
* `customer show POS_CUSTOMER_ID`: partner id, loyalty balance, consent, events (nothing personal).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from pydantic import ValidationError
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

import workers.cli as cli
from domain.customer import DEFAULT_PLATFORM
from workers.customers import CUSTOMER_ID, erase_customer
from workers.settings import Settings
from workflows.customer_sync import CustomerStatus, CustomerSync, customer_workflow_id


def _customer_id(text: str) -> str:
    try:
        return CUSTOMER_ID.validate_python(text)
    except ValidationError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a POS customer id (1-64 characters, no ':', '@' or spaces)"
        ) from None


async def customer_status(client: Client, workflow_id: str) -> CustomerStatus:
    handle = client.get_workflow_handle_for(CustomerSync.run, workflow_id)
    try:
        return await handle.query(CustomerSync.status)
    except (WorkflowQueryFailedError, RPCError) as e:
        raise cli.CliError(f"{workflow_id} cannot answer now ({cli._first_line(e)})") from e


async def cmd_erase(args: argparse.Namespace, settings: Settings) -> int:
    client = await cli._client(settings)
    wf_id = await erase_customer(client, settings, args.pos_customer_id)
    print(f"erasure requested: {wf_id}")
    if args.wait:
        for _ in range(args.wait * 2):
            status = await customer_status(client, wf_id)
            if status.erased and status.pending == 0:
                print(f"erased: partner {status.partner_id} anonymised in Odoo")
                return 0
            await asyncio.sleep(0.5)
        raise cli.CliError(f"{wf_id}: erasure not confirmed within {args.wait}s (still queued)")
    print(f"follow it: retailflow customer show {args.pos_customer_id}")
    return 0


async def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    client = await cli._client(settings)
    status = await customer_status(client, customer_workflow_id(DEFAULT_PLATFORM, args.id))
    print(json.dumps(status.model_dump(mode="json"), indent=2))
    return 0


def add_parsers(sub: Any) -> None:
    customer = sub.add_parser(
        "customer", help="customers synced to Odoo: erase on request, show"
    ).add_subparsers(dest="customer_command", required=True)
    p = customer.add_parser("erase", help="anonymise a customer in Odoo (right to erasure)")
    p.add_argument("pos_customer_id", type=_customer_id, metavar="POS_CUSTOMER_ID")
    p.add_argument(
        "--wait", type=int, default=0, metavar="SECONDS", help="wait until Odoo is anonymised"
    )
    p.set_defaults(func=cmd_erase)
    p = customer.add_parser("show", help="a customer's sync state (nothing personal)")
    p.add_argument("id", type=_customer_id, metavar="POS_CUSTOMER_ID")
    p.set_defaults(func=cmd_show)
