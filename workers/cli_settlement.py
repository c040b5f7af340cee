"""`retailflow settlement payouts --from D --to D [--wait]`: book the gateway's payouts in Odoo.

Starts the GatewaySettlement workflow of that window (workflows/gateway_settlement.py), or
joins the one already running for it, and with `--wait` prints its result as a table. Exit
codes as workers/cli.py: 0 settled, 1 some payout needs attention, 2 refused before anything
was done, 4 still running when the wait ended.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import date, timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy

from workers.settings import Settings
from workflows.gateway_settlement import (
    NEEDS_ATTENTION,
    GatewaySettlement,
    GatewaySettlementInput,
    GatewaySettlementResult,
    settlement_workflow_id,
)

# A window is a few days of payouts; a year is a generous ceiling for a catch-up.
MAX_WINDOW = timedelta(days=366)
COLUMNS = (
    "payout",
    "status",
    "outcome",
    "amount",
    "charges",
    "refunds",
    "fees",
    "net",
    "entry",
    "reversal",
)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-20") from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 1 to 86400")
    return value


def add_payouts_parser(settlement: Any) -> None:
    """Add `payouts` to the `settlement` command's subcommands."""
    p = settlement.add_parser(
        "payouts",
        help="book in Odoo every gateway payout created from --from to --to (UTC dates, "
        "included); reverse the failed ones",
    )
    p.add_argument("--from", dest="date_from", required=True, type=_date, help="e.g. 2026-11-20")
    p.add_argument("--to", dest="date_to", required=True, type=_date, help="e.g. 2026-11-26")
    p.add_argument("--wait", action="store_true", help="wait for the result and print it")
    p.add_argument("--timeout", type=_seconds, default=600.0, help="seconds to wait (with --wait)")
    p.set_defaults(func=cmd_settlement_payouts)


async def start_settlement(
    client: Client, task_queue: str, date_from: date, date_to: date
) -> WorkflowHandle[GatewaySettlement, GatewaySettlementResult]:
    """Start the window's settlement, or join the run already going for it. A finished run is
    run again: booking is exactly once, so a rerun books only what is new (a payout paid
    since, a failure to reverse)."""
    return await client.start_workflow(
        GatewaySettlement.run,
        GatewaySettlementInput(date_from=date_from, date_to=date_to),
        id=settlement_workflow_id(date_from, date_to),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


def render(result: GatewaySettlementResult) -> str:
    """The result as a text table, one payout a row, and a totals line."""
    rows = [
        (
            p.payout_id,
            p.status,
            p.outcome + (f" ({p.reason})" if p.reason else ""),
            f"{p.amount} {p.currency.upper()}",
            *(str(v) if v is not None else "-" for v in (p.charges, p.refunds, p.fees, p.net)),
            p.move_name or "-",
            p.reversal_name or "-",
        )
        for p in result.payouts
    ]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    booked = result.count("booked", "already booked")
    lines.append(
        f"{result.status}: {len(result.payouts)} payouts from {result.date_from} to "
        f"{result.date_to}: {booked} booked, "
        f"{result.count('reversed', 'already reversed')} reversed, "
        f"{result.count('pending')} pending, {result.count('refused')} refused"
    )
    return "\n".join(lines)


async def cmd_settlement_payouts(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here: workers/cli.py imports this module to add its parsers.
    from workers.cli import EXIT_EXCEPTIONS, EXIT_STILL_RUNNING, CliError, Outcome, _client

    if args.date_to < args.date_from:
        raise CliError(f"--to {args.date_to} is before --from {args.date_from}")
    if args.date_to - args.date_from > MAX_WINDOW:
        raise CliError(f"--from {args.date_from} --to {args.date_to}: more than a year at once")
    client = await _client(settings)
    handle = await start_settlement(client, settings.task_queue, args.date_from, args.date_to)
    if not args.wait:
        print(f"settlement {handle.id} started (follow it with --wait, or in the Web UI)")
        return 0
    try:
        result = await asyncio.wait_for(handle.result(), args.timeout)
    except TimeoutError:
        raise Outcome(
            f"settlement {handle.id} still running after {args.timeout:g} s", EXIT_STILL_RUNNING
        ) from None
    print(render(result))
    if result.status == NEEDS_ATTENTION:
        raise Outcome(
            f"settlement {handle.id}: {result.count('refused')} payout(s) need attention",
            EXIT_EXCEPTIONS,
        )
    return 0
