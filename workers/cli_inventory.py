"""`retailflow inventory ...` and `retailflow stock ...` (docs/inventory.md):

* `inventory audit --store S [--audit-id ID] [--dry-run]`: audit one store now and report (an
  audit waiting for an approval is left running: exit 4, decide with `inventory approve`);
* `inventory approve|reject --store S --audit-id ID [--comment ...]`: decide an audit's
  adjustments above the value threshold (a signed assertion, like refunds);
* `stock locations ensure [--store S ...]`: create the posting profile's missing store
  locations in Odoo (internal, under their parent, each once).
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

import workers.cli as cli
from activities.odoo.client import OdooClient
from activities.odoo.stock import EnsureStoreLocationsInput, OdooStockActivities
from domain.ids import BadIdPart
from domain.posting import ProfileError, load_profile
from workers.identity import trust_from
from workers.settings import Settings
from workflows.inventory_audit import (
    AuditApproval,
    AuditStatus,
    InventoryAudit,
    InventoryAuditInput,
    InventoryAuditResult,
    inventory_audit_id,
    inventory_audit_key,
)

# How long `inventory audit` waits for the result before leaving the audit to run on.
WAIT = timedelta(minutes=2)


def _ids(store: str, audit_id: str) -> tuple[str, str]:
    try:
        return inventory_audit_id(store, audit_id), inventory_audit_key(store, audit_id)
    except BadIdPart as e:
        raise cli.CliError(str(e)) from e


def _report(r: InventoryAuditResult) -> None:
    s = r.summary
    print(
        f"{r.key}: {r.status.value}: counted {s.counted}, drift {len(r.drifts)}, adjusted "
        f"{len(r.adjusted)} (already {len(r.already_adjusted)}), awaiting approval "
        f"{s.awaiting_approval}, exceptions {s.exceptions}, negative {s.negative}"
    )
    for d in r.drifts:
        print(f"  {d.verdict.value:<15} {d.reason}")
    for reason in r.attention:
        print(f"  attention: {reason}")


async def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    audit_id = args.audit_id or datetime.now(UTC).strftime("manual-%Y%m%dT%H%M%S")
    workflow_id, _ = _ids(args.store, audit_id)
    client = await cli._client(settings)
    handle = await client.start_workflow(
        InventoryAudit.run,
        InventoryAuditInput(
            store_id=args.store,
            audit_id=audit_id,
            dry_run=args.dry_run,
            trust=trust_from(settings),
            requested_by_sub=settings.identity_subject or None,
        ),
        id=workflow_id,
        task_queue=settings.task_queue,
        static_summary=f"Inventory audit of **{args.store}** ({audit_id})",
    )
    try:
        result = await asyncio.wait_for(handle.result(), WAIT.total_seconds())
    except TimeoutError:
        progress = await handle.query(InventoryAudit.progress)
        if progress is not None:
            _report(progress)
        raise cli.Outcome(
            f"audit {workflow_id} is still running (decide with `retailflow inventory approve "
            f"--store {args.store} --audit-id {audit_id}`)",
            cli.EXIT_STILL_RUNNING,
        ) from None
    _report(result)
    return cli.EXIT_EXCEPTIONS if result.status is AuditStatus.NEEDS_ATTENTION else cli.EXIT_OK


async def cmd_decide(args: argparse.Namespace, settings: Settings) -> int:
    workflow_id, key = _ids(args.store, args.audit_id)
    who = cli._identity(args, settings, key, args.action)
    client = await cli._client(settings)
    handle = client.get_workflow_handle_for(InventoryAudit.run, workflow_id)
    update = InventoryAudit.approve if args.action == "approve" else InventoryAudit.reject
    try:
        answer = await handle.execute_update(
            update, AuditApproval(assertion=who.assertion or "", comment=args.comment)
        )
    except WorkflowUpdateFailedError as e:
        raise cli.CliError(f"{args.action} refused: {e.cause}") from e
    except RPCError as e:
        raise cli.CliError(f"audit {workflow_id}: {cli._first_line(e)}") from e
    print(answer)
    return cli.EXIT_OK


async def cmd_locations_ensure(args: argparse.Namespace, settings: Settings) -> int:
    try:
        profile = load_profile(settings.posting_profile)
    except ProfileError as e:
        raise cli.CliError(str(e)) from e
    if not profile.store_locations:
        raise cli.CliError(
            "the posting profile maps no store to a location (store_locations): nothing to do"
        )
    stock = OdooStockActivities(OdooClient(settings.odoo()), profile)
    try:
        result = await asyncio.to_thread(
            stock.ensure_store_locations, EnsureStoreLocationsInput(stores=args.store or [])
        )
    except ApplicationError as e:
        raise cli.CliError(str(e)) from e
    for loc in result.locations:
        verb = "created" if loc.created else "exists"
        print(f"{loc.store_id}: {loc.location} (id {loc.location_id}) {verb}")
    return cli.EXIT_OK


def add_parsers(sub: Any) -> None:
    inventory = sub.add_parser(
        "inventory", help="inventory audits: store counts against Odoo"
    ).add_subparsers(dest="inventory_command", required=True)
    p = inventory.add_parser("audit", help="audit one store now and report")
    p.add_argument("--store", required=True)
    p.add_argument("--audit-id", help="the audit's id (default: manual-<UTC time>)")
    p.add_argument("--dry-run", action="store_true", help="report only, adjust nothing")
    p.set_defaults(func=cmd_audit)
    for action in ("approve", "reject"):
        p = inventory.add_parser(action, help=f"{action} an audit's adjustments")
        p.add_argument("--store", required=True)
        p.add_argument("--audit-id", required=True)
        p.add_argument("--comment", default="")
        cli._assertion_options(p)
        p.set_defaults(func=cmd_decide, action=action)
    stock = sub.add_parser("stock", help="stock in Odoo").add_subparsers(
        dest="stock_command", required=True
    )
    locations = stock.add_parser("locations", help="the stores' stock locations").add_subparsers(
        dest="locations_command", required=True
    )
    p = locations.add_parser("ensure", help="create the profile's missing store locations")
    p.add_argument("--store", action="append", help="only this store (repeatable)")
    p.set_defaults(func=cmd_locations_ensure)
