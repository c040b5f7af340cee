"""`retailflow`: start and steer retail workflows from a shell.

retailflow worker                          run a worker (Odoo activities, all workflows)
retailflow ingress                         HTTP API: POST /v1/sales
retailflow sale post FILE.jsonl [--mode per-sale|batched] [--wait]
retailflow sale status STORE TXN
retailflow sale retry|dismiss STORE TXN --by NAME [--comment TEXT]
retailflow sale exceptions [--store S]     the exception inbox
retailflow demo [--keep-running]           everything on the embedded default
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workers.client import connect
from workers.settings import Settings
from workers.submit import (
    Mode,
    Submission,
    Submitted,
    raw_from_text,
    sale_result,
    submit_many,
    wait_until_settled,
)
from workflows.sale_posting import EXCEPTION_STATES, OpsDecision, SalePosting


class CliError(Exception):
    """An error to show the user as one clear line (exit code 2)."""


def _read_jsonl(path: str) -> list[dict[str, Any] | str]:
    p = Path(path)
    if not p.is_file():
        raise CliError(f"{path}: no such file")
    return [raw_from_text(line) for line in p.read_text().splitlines() if line.strip()]


async def _client(settings: Settings) -> Client:
    try:
        return await connect(settings.temporal)
    except RuntimeError as e:
        raise CliError(
            f"cannot reach Temporal at {settings.temporal.address} "
            f"(namespace {settings.temporal.namespace}): {e}. Set TEMPORAL_ADDRESS, or start a "
            "dev server: .venv/bin/temporal server start-dev"
        ) from e


def _describe(s: Submitted) -> str:
    who = f"{s.store_id or '?'}/{s.txn_id or '?'}"
    line = f"{who:<22} {s.submission.value:<10} {s.workflow_id}"
    if s.errors:
        line += "\n" + "\n".join(f"{'':<24}- {e}" for e in s.errors)
    return line


async def cmd_sale_post(args: argparse.Namespace, settings: Settings) -> int:
    raws = _read_jsonl(args.file)
    client = await _client(settings)
    submitted = await submit_many(
        client, settings, raws, Mode(args.mode), source=f"cli:{args.file}"
    )
    for s in submitted:
        print(_describe(s))
    counts = {k: sum(1 for s in submitted if s.submission is k) for k in Submission}
    print(
        f"\n{len(submitted)} lines: " + ", ".join(f"{n} {k.value}" for k, n in counts.items() if n)
    )
    if not args.wait:
        return 0
    results = await wait_until_settled(client, submitted, timedelta(seconds=args.timeout))
    exceptions = {w: r for w, r in results.items() if r.status in EXCEPTION_STATES}
    print(f"settled: {len(results) - len(exceptions)} posted, {len(exceptions)} in exception state")
    for wf_id, r in sorted(exceptions.items()):
        print(f"  {wf_id}: {r.status.value}: {'; '.join(r.reasons)}")
    return 0


def _split_sale(args: argparse.Namespace) -> tuple[str, str]:
    return args.store, args.txn


async def cmd_sale_status(args: argparse.Namespace, settings: Settings) -> int:
    client = await _client(settings)
    result = await sale_result(client, *_split_sale(args))
    if result is None:
        raise CliError(f"no sale {args.store}/{args.txn} is known to Temporal")
    print(json.dumps(result.model_dump(mode="json"), indent=2))
    return 0


async def cmd_sale_decide(args: argparse.Namespace, settings: Settings) -> int:
    client = await _client(settings)
    handle = client.get_workflow_handle_for(SalePosting.run, f"sale-{args.store}-{args.txn}")
    decision = OpsDecision(by=args.by, comment=args.comment)
    try:
        state = await handle.query(SalePosting.status)
        if state.status.value != "NeedsAttention":
            raise CliError(
                f"sale {args.store}/{args.txn} is {state.status.value}: only a sale that needs "
                "attention can be retried or dismissed"
            )
        signal = SalePosting.retry if args.action == "retry" else SalePosting.dismiss
        await handle.signal(signal, decision)
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            raise CliError(f"no workflow for sale {args.store}/{args.txn}") from e
        raise
    print(f"{args.action} sent to {handle.id} by {args.by}")
    return 0


async def cmd_sale_exceptions(args: argparse.Namespace, settings: Settings) -> int:
    client = await _client(settings)
    query = (
        'WorkflowType = "SalePosting" AND RetailStatus IN ("Rejected", "NeedsAttention", "Failed")'
    )
    if args.store:
        query += f' AND StoreId = "{args.store}"'
    n = 0
    async for wf in client.list_workflows(query, limit=args.limit):
        handle = client.get_workflow_handle_for(SalePosting.run, wf.id, run_id=wf.run_id)
        r = await handle.query(SalePosting.status)
        print(f"{wf.id:<32} {r.status.value:<15} {'; '.join(r.reasons)}")
        n += 1
    print(f"{n} sales in the exception inbox")
    return 0


async def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from workers.worker import run_worker

    await run_worker(settings)
    return 0


async def cmd_ingress(args: argparse.Namespace, settings: Settings) -> int:
    from workers.ingress import serve

    await serve(
        settings, host=args.host or settings.ingress_host, port=args.port or settings.ingress_port
    )
    return 0


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from workers.demo import run_demo

    return await run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="retailflow", description="Durable POS ⇄ Odoo integration on Temporal."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("worker", help="run a worker")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("ingress", help="serve the HTTP ingress API")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_ingress)

    sale = sub.add_parser("sale", help="post sales and follow them").add_subparsers(
        dest="sale_command", required=True
    )
    p = sale.add_parser("post", help="submit the sales of a JSON Lines file")
    p.add_argument("file")
    p.add_argument("--mode", choices=[m.value for m in Mode], default=Mode.PER_SALE.value)
    p.add_argument("--wait", action="store_true", help="return when every sale is settled")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait (with --wait)")
    p.set_defaults(func=cmd_sale_post)

    p = sale.add_parser("status", help="where one sale stands")
    p.add_argument("store")
    p.add_argument("txn")
    p.set_defaults(func=cmd_sale_status)

    for action in ("retry", "dismiss"):
        p = sale.add_parser(action, help=f"{action} a sale that needs attention")
        p.add_argument("store")
        p.add_argument("txn")
        p.add_argument("--by", required=True, help="who decides (kept in the history)")
        p.add_argument("--comment", default="")
        p.set_defaults(func=cmd_sale_decide, action=action)

    p = sale.add_parser("exceptions", help="list sales rejected or needing attention")
    p.add_argument("--store")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=cmd_sale_exceptions)

    p = sub.add_parser("demo", help="run the demo on the embedded default")
    p.add_argument("--keep-running", action="store_true", help="leave everything up afterwards")
    p.add_argument("--per-store", type=int, default=60, help="sales per store")
    p.add_argument("--temporal-port", type=int, default=7233)
    p.add_argument("--ui-port", type=int, default=8233)
    p.add_argument("--odoo-port", type=int, default=8069)
    p.add_argument("--fault-rate", type=float, default=0.05, help="Odoo faults injected (0-1)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO
        if args.verbose or args.command in ("worker", "ingress")
        else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = Settings()
        code = asyncio.run(args.func(args, settings))
    except CliError as e:
        print(f"retailflow: {e}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    # Exit without interpreter finalization: temporalio's Rust threads can abort it
    # (sdk-python#300), turning a success into exit code 134.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
