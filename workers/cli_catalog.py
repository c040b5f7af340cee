"""`retailflow catalog ...`: Odoo's product master to the stores' catalogs (docs/catalog.md).

* `catalog sync [--full] [--stores S1,S2]`: run a CatalogSync now, wait, print its summary
  (exit 1 when items were refused or stores were left behind);
* `catalog status`: the newest syncs (scheduled or by hand), from Temporal's visibility;
* `catalog exceptions [SYNC_WORKFLOW_ID]`: the items stores refused, with their reasons (the
  newest sync's when no id is given).

Wired into the main CLI by `add_parsers(sub)`. Errors are one line (workers/cli.py's CliError).
"""

from __future__ import annotations

import argparse
import uuid
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

import workers.cli as cli
from domain.pricing import store_id_problem
from workers.settings import Settings
from workflows.catalog_sync import (
    CatalogException,
    CatalogSync,
    CatalogSyncInput,
    CatalogSyncReport,
    SyncStatus,
    sync_workflow_id,
)
from workflows.search_attributes import RETAIL_STATUS

RECENT = 10
QUERY_TIMEOUT = timedelta(seconds=15)


def _stores(text: str) -> list[str]:
    stores = [s.strip() for s in text.split(",")]
    for s in stores:
        problem = store_id_problem(s)
        if problem:
            raise argparse.ArgumentTypeError(problem)
    if len(set(stores)) != len(stores):
        raise argparse.ArgumentTypeError("a store is listed twice")
    return stores


def render_summary(r: CatalogSyncReport) -> str:
    lines = [
        f"{r.sync_id}: {r.status.value}; {r.pages} pages, {r.products_read} products read, "
        f"{r.upserts} upserts, {r.withdrawals} withdrawals, {r.commands_sent} commands",
        f"stores: {r.caught_up} of {r.stores} caught up"
        + (f" at {r.version}" if r.version else ""),
    ]
    lines += [f"  behind {s}: {why}" for s, why in sorted(r.behind.items())]
    lines += [f"  {reason}" for reason in r.reasons]
    if r.exception_count:
        lines.append(f"{r.exception_count} refused items: retailflow catalog exceptions")
    return "\n".join(lines)


def render_exceptions(items: list[CatalogException], total: int) -> str:
    out = [f"{e.store_id}\t{e.sku or '-'}\t{e.odoo_id or '-'}\t{e.reason}" for e in items]
    if total > len(items):
        out.append(f"... and {total - len(items)} more")
    return "\n".join(out) if out else "no refused items"


async def cmd_catalog_sync(args: argparse.Namespace, settings: Settings) -> int:
    client = await cli._client(settings)
    sync_id = f"cli-{uuid.uuid4().hex[:12]}"
    report: CatalogSyncReport = await client.execute_workflow(
        CatalogSync.run,
        CatalogSyncInput(sync_id=sync_id, full=args.full, stores=args.stores),
        id=sync_workflow_id(sync_id),
        task_queue=settings.task_queue,
        static_summary="catalog sync" + (" --full" if args.full else ""),
    )
    print(render_summary(report))
    if report.status is SyncStatus.REJECTED:
        raise cli.CliError("; ".join(report.reasons) or "sync refused")
    return cli.EXIT_OK if report.status is SyncStatus.COMPLETED and not report.behind else 1


async def _recent(client: Client, limit: int = RECENT) -> list[Any]:
    out = []
    async for wf in client.list_workflows(
        "WorkflowType = 'CatalogSync'", limit=limit, page_size=limit
    ):
        out.append(wf)
    return out


async def cmd_catalog_status(args: argparse.Namespace, settings: Settings) -> int:
    """From visibility alone (no query: a closed sync's worker may be gone)."""
    client = await cli._client(settings)
    runs = await _recent(client)
    if not runs:
        print("no catalog sync has run yet")
        return 0
    for wf in runs:
        state = wf.status.name.lower() if wf.status else "unknown"
        retail = wf.typed_search_attributes.get(RETAIL_STATUS) or "-"
        closed = wf.close_time.isoformat() if wf.close_time else "-"
        print(f"{wf.id}\t{state}\t{retail}\tstarted {wf.start_time.isoformat()}\tclosed {closed}")
    return 0


async def cmd_catalog_exceptions(args: argparse.Namespace, settings: Settings) -> int:
    client = await cli._client(settings)
    wf_id = args.sync
    run_id = None
    if wf_id is None:
        runs = await _recent(client, 1)
        if not runs:
            raise cli.CliError("no catalog sync has run yet")
        wf_id, run_id = runs[0].id, runs[0].run_id
    try:
        r = await client.get_workflow_handle(wf_id, run_id=run_id).query(
            CatalogSync.report, rpc_timeout=QUERY_TIMEOUT
        )
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            raise cli.CliError(f"no catalog sync {wf_id}") from e
        if e.status == RPCStatusCode.DEADLINE_EXCEEDED:
            raise cli.CliError(f"{wf_id}: no worker answered (is one running?)") from e
        raise
    except WorkflowQueryFailedError as e:
        raise cli.CliError(f"{wf_id}: {e}") from e
    print(render_exceptions(r.exceptions, r.exception_count))
    return 1 if r.exception_count else 0


def add_parsers(sub: Any) -> None:
    """`catalog sync|status|exceptions` under the main CLI's subcommands."""
    catalog = sub.add_parser(
        "catalog", help="Odoo's products to the stores' catalogs"
    ).add_subparsers(dest="catalog_command", required=True)
    p = catalog.add_parser("sync", help="sync the catalog now and wait for its summary")
    p.add_argument("--full", action="store_true", help="also withdraw what Odoo no longer has")
    p.add_argument("--stores", type=_stores, help="S1,S2 (default: every store)")
    p.set_defaults(func=cmd_catalog_sync)
    p = catalog.add_parser("status", help="the newest catalog syncs")
    p.set_defaults(func=cmd_catalog_status)
    p = catalog.add_parser("exceptions", help="items the stores refused, with their reasons")
    p.add_argument("sync", nargs="?", help="a sync's workflow id (default: the newest)")
    p.set_defaults(func=cmd_catalog_exceptions)
