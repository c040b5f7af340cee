"""`retailflow recon ...`: run, show and resolve the three-way reconciliation of store-days.

* `recon run STORE DAY [--closed-at ISO]`: start the store-day's Reconciliation by hand;
* `recon show STORE DAY`: its report (totals per tender, matched count, each difference);
* `recon accept STORE DAY DIFF_ID|all --by NAME --comment TEXT`: accept differences;
* `recon repost STORE DAY DIFF_ID --by NAME`: post a sale missing in Odoo again, from the
  POS's copy, through the normal sale workflow;
* `recon report DAY [--store S] [--format table|csv|json]`: the day's reports over all stores
  (Temporal's visibility: `WorkflowType = "Reconciliation"` and `BusinessDay = "DAY"`).

Wired into the main CLI by `add_parsers(sub)`. Errors are one line (workers/cli.py's CliError).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from datetime import date, datetime
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

import workers.cli as cli
from domain.ids import BadIdPart
from domain.limits import visibility_literal
from domain.reconciliation import ReconReport, ReconStatus
from workers.settings import Settings
from workflows.reconciliation import (
    Reconciliation,
    ReconciliationInput,
    ReconDecision,
    reconciliation_workflow_id,
)

FORMATS = ("table", "csv", "json")
CSV_FIELDS = [
    "store_id",
    "business_day",
    "status",
    "row",
    "tender",
    "pos_sales",
    "pos_refunds",
    "odoo_sales",
    "odoo_refunds",
    "gateway_captured",
    "gateway_refunded",
    "matched",
    "diff_id",
    "kind",
    "state",
    "txn_id",
    "reference",
    "pos_amount",
    "other_amount",
    "cause",
    "note",
]


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from None


def _store(text: str) -> str:
    store = text.strip()
    if not store or ":" in store or any(c.isspace() for c in store) or len(store) > 64:
        raise argparse.ArgumentTypeError(f"{text!r} is not a store id")
    try:
        visibility_literal(store, "store")
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not a store id: {e}") from None
    return store


def _instant(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date-time") from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset (e.g. +00:00)")
    return at


# -- rendering (pure) -------------------------------------------------------------------------


def render_table(reports: list[ReconReport]) -> str:
    out: list[str] = []
    for r in reports:
        open_n = len(r.open_diffs)
        out.append(
            f"{r.store_id} {r.business_day}  {r.status.value}  matched {r.matched} of "
            f"{r.pos_transactions} POS transactions; {len(r.diffs)} differences, {open_n} open"
        )
        out.append(
            f"  {'tender':<10}{'pos sales':>12}{'pos refunds':>12}{'odoo sales':>12}"
            f"{'odoo refunds':>13}{'gw captured':>12}{'gw refunded':>12}"
        )
        for t in r.totals:
            out.append(
                f"  {t.tender.value:<10}{t.pos_sales:>12}{t.pos_refunds:>12}{t.odoo_sales:>12}"
                f"{t.odoo_refunds:>13}{t.gateway_captured:>12}{t.gateway_refunded:>12}"
            )
        out.extend(f"  - {d.line()}" for d in r.diffs)
    if len(reports) != 1:
        done = sum(1 for r in reports if r.status is ReconStatus.RECONCILED)
        out.append(f"{len(reports)} store-days: {done} reconciled, {len(reports) - done} not")
    return "\n".join(out)


def render_csv(reports: list[ReconReport]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in reports:
        head = {"store_id": r.store_id, "business_day": r.business_day, "status": r.status.value}
        for t in r.totals:
            writer.writerow(
                {
                    **head,
                    "row": "total",
                    "matched": r.matched,
                    **t.model_dump(mode="json"),
                }
            )
        for d in r.diffs:
            writer.writerow(
                {
                    **head,
                    "row": "diff",
                    "tender": d.tender.value if d.tender else "",
                    "diff_id": d.id,
                    "kind": d.kind.value,
                    "state": d.state.value,
                    "txn_id": d.txn_id or "",
                    "reference": d.reference or "",
                    "pos_amount": "" if d.pos_amount is None else d.pos_amount,
                    "other_amount": "" if d.other_amount is None else d.other_amount,
                    "cause": d.cause,
                    "note": d.note,
                }
            )
    return buf.getvalue().rstrip("\n")


def render_json(reports: list[ReconReport]) -> str:
    return json.dumps([r.model_dump(mode="json") for r in reports], indent=2)


def render(reports: list[ReconReport], fmt: str) -> str:
    return {"table": render_table, "csv": render_csv, "json": render_json}[fmt](reports)


# -- commands ---------------------------------------------------------------------------------


def _workflow_id(store: str, day: date) -> str:
    try:
        return reconciliation_workflow_id(store, day)
    except BadIdPart as e:
        raise cli.CliError(str(e)) from e


async def _report_of(client: Client, wf_id: str, run_id: str | None = None) -> ReconReport:
    """The report of a store-day: its result when closed, its `report` query while open."""
    handle: WorkflowHandle[Any, ReconReport] = client.get_workflow_handle_for(
        Reconciliation.run, wf_id, run_id=run_id
    )
    try:
        desc = await handle.describe()
        if desc.status == WorkflowExecutionStatus.COMPLETED:
            return await handle.result()
        report = await handle.query(Reconciliation.report)
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            raise cli.CliError(f"no reconciliation {wf_id} (start one: recon run)") from e
        raise
    except WorkflowQueryFailedError as e:
        raise cli.CliError(f"{wf_id} cannot answer now: {cli._first_line(e)}") from e
    if report is None:
        raise cli.CliError(f"{wf_id} is still comparing: try again in a moment")
    return report


async def cmd_recon_run(args: argparse.Namespace, settings: Settings) -> int:
    client = await cli._client(settings)
    wf_id = _workflow_id(args.store, args.day)
    try:
        await client.start_workflow(
            Reconciliation.run,
            ReconciliationInput(
                store_id=args.store, business_day=args.day, closed_at=args.closed_at
            ),
            id=wf_id,
            task_queue=settings.task_queue,
            static_summary=f"Reconciliation {args.store} {args.day}",
        )
    except WorkflowAlreadyStartedError as e:
        raise cli.CliError(f"{wf_id} is already running: see recon show") from e
    print(f"started {wf_id}")
    return 0


async def cmd_recon_show(args: argparse.Namespace, settings: Settings) -> int:
    client = await cli._client(settings)
    report = await _report_of(client, _workflow_id(args.store, args.day))
    print(render([report], args.format))
    return 0 if report.status is ReconStatus.RECONCILED else cli.EXIT_EXCEPTIONS


async def _decide(args: argparse.Namespace, settings: Settings, action: str) -> int:
    client = await cli._client(settings)
    wf_id = _workflow_id(args.store, args.day)
    handle = client.get_workflow_handle_for(Reconciliation.run, wf_id)
    update = Reconciliation.accept if action == "accept" else Reconciliation.repost
    decision = ReconDecision(diff_id=args.diff_id, by=args.by, comment=args.comment)
    try:
        answer = await handle.execute_update(update, decision)
    except WorkflowUpdateFailedError as e:
        raise cli.CliError(f"{action} refused: {e.cause}") from e
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            if "completed" in str(e):
                raise cli.CliError(f"{wf_id} is closed: it takes no decision") from e
            raise cli.CliError(f"no reconciliation {wf_id}") from e
        raise
    print(answer)
    return 0


async def cmd_recon_accept(args: argparse.Namespace, settings: Settings) -> int:
    return await _decide(args, settings, "accept")


async def cmd_recon_repost(args: argparse.Namespace, settings: Settings) -> int:
    return await _decide(args, settings, "repost")


async def day_reports(client: Client, day: date, store: str | None) -> list[ReconReport]:
    """The day's reports, one per store (its latest run), in store order."""
    query = f'WorkflowType = "Reconciliation" AND BusinessDay = "{day.isoformat()}"'
    if store:
        query += f" AND StoreId = {visibility_literal(store, 'store')}"
    latest: dict[str, tuple[datetime, str, str | None]] = {}
    async for wf in client.list_workflows(query):
        seen = latest.get(wf.id)
        if seen is None or wf.start_time > seen[0]:
            latest[wf.id] = (wf.start_time, wf.id, wf.run_id)
    reports = [await _report_of(client, wf_id, run_id) for _, wf_id, run_id in latest.values()]
    return sorted(reports, key=lambda r: r.store_id)


async def cmd_recon_report(args: argparse.Namespace, settings: Settings) -> int:
    client = await cli._client(settings)
    reports = await day_reports(client, args.day, args.store)
    if not reports:
        where = f" for store {args.store}" if args.store else ""
        raise cli.CliError(f"no reconciliation of {args.day}{where}")
    print(render(reports, args.format))
    unreconciled = [r for r in reports if r.status is not ReconStatus.RECONCILED]
    if unreconciled:
        raise cli.Outcome(
            f"{len(unreconciled)} of {len(reports)} store-days not reconciled: "
            + ", ".join(r.store_id for r in unreconciled[:10]),
            cli.EXIT_EXCEPTIONS,
        )
    return 0


def add_parsers(sub: Any) -> None:
    """`recon run|show|accept|repost|report` under the main CLI's subcommands."""
    recon = sub.add_parser(
        "recon", help="three-way reconciliation of store-days (POS, Odoo, gateway)"
    ).add_subparsers(dest="recon_command", required=True)
    p = recon.add_parser("run", help="start the reconciliation of a store-day")
    p.add_argument("store", type=_store)
    p.add_argument("day", type=_day)
    p.add_argument("--closed-at", type=_instant, help="when the day closed (late sales after)")
    p.set_defaults(func=cmd_recon_run)
    p = recon.add_parser("show", help="a store-day's report")
    p.add_argument("store", type=_store)
    p.add_argument("day", type=_day)
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=cmd_recon_show)
    p = recon.add_parser("accept", help="accept a difference (or all open ones), with why")
    p.add_argument("store", type=_store)
    p.add_argument("day", type=_day)
    p.add_argument("diff_id", help="a difference's id, or all")
    p.add_argument("--by", required=True, type=cli._name)
    p.add_argument("--comment", required=True, type=cli._comment)
    p.set_defaults(func=cmd_recon_accept)
    p = recon.add_parser("repost", help="post a sale missing in Odoo again, from the POS's copy")
    p.add_argument("store", type=_store)
    p.add_argument("day", type=_day)
    p.add_argument("diff_id")
    p.add_argument("--by", required=True, type=cli._name)
    p.add_argument("--comment", default="")
    p.set_defaults(func=cmd_recon_repost)
    p = recon.add_parser("report", help="a day's reconciliation over all stores")
    p.add_argument("day", type=_day)
    p.add_argument("--store", type=_store)
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=cmd_recon_report)
