"""`retailflow schedules ...` and `retailflow settlement close|run ...`: the Temporal Schedules
that drive settlement, and a night run by hand."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowExecutionStatus
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from domain.schedule import SettlementSchedule, load_schedule
from workers import cli_settlement, schedules
from workers.cli import (
    EXIT_EXCEPTIONS,
    EXIT_OK,
    CliError,
    Outcome,
    _client,
    _day,
    _positive_seconds,
)
from workers.identity import trust_from
from workers.settings import Settings
from workflows.settlement import (
    DailySettlement,
    DayCloseInput,
    SettlementResult,
    StoreDayClose,
    close_workflow_id,
)


def _config(args: argparse.Namespace, settings: Settings) -> SettlementSchedule:
    path = getattr(args, "config", None) or settings.settlement_schedule
    try:
        return load_schedule(path)
    except ValueError as e:
        raise CliError(str(e)) from e


async def cmd_apply(args: argparse.Namespace, settings: Settings) -> int:
    config = _config(args, settings)
    client = await _client(settings)
    trust = trust_from(settings)  # the approval keys inventory audits verify approvers with
    for applied in await schedules.apply(client, config, settings.task_queue, trust):
        print(f"{applied.schedule_id}: {applied.change}")
    return EXIT_OK


def _when(times: list[Any]) -> str:
    return ", ".join(t.isoformat(timespec="minutes") for t in times) or "-"


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    client = await _client(settings)
    ids = await schedules.managed_ids(client)
    if not ids:
        print("no settlement schedules: `retailflow schedules apply` creates them")
        return EXIT_OK
    for schedule_id in ids:
        view = await schedules.describe(client, schedule_id)
        state = "PAUSED" if view.paused else "active"
        print(f"{schedule_id}  {state}  runs so far: {view.actions}")
        print(f"  next: {_when(view.next_runs)}")
        print(f"  recent: {_when(view.recent_runs)}")
        if view.note:
            print(f"  note: {view.note}")
    return EXIT_OK


async def _one(args: argparse.Namespace, settings: Settings, action: str) -> int:
    if not args.all and not args.schedule_id:
        raise CliError(f"name the SCHEDULE_ID to {action}, or --all")
    client = await _client(settings)
    ids = await schedules.managed_ids(client) if args.all else [args.schedule_id]
    if not ids:
        raise CliError("no settlement schedules to " + action)
    note = args.note or f"{action}d from the retailflow CLI"
    for schedule_id in ids:
        try:
            if action == "pause":
                await schedules.pause(client, schedule_id, note)
            elif action == "unpause":
                await schedules.unpause(client, schedule_id, note)
            else:
                await schedules.trigger(client, schedule_id)
        except schedules.UnknownSchedule as e:
            raise CliError(str(e)) from e
        print(f"{schedule_id}: {action}d" if action != "trigger" else f"{schedule_id}: triggered")
    return EXIT_OK


async def cmd_pause(args: argparse.Namespace, settings: Settings) -> int:
    return await _one(args, settings, "pause")


async def cmd_unpause(args: argparse.Namespace, settings: Settings) -> int:
    return await _one(args, settings, "unpause")


async def cmd_trigger(args: argparse.Namespace, settings: Settings) -> int:
    args.all, args.note = False, None
    return await _one(args, settings, "trigger")


async def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    first, last = _day(args.first), _day(args.last)
    if last < first:
        raise CliError(f"--to {last} is before --from {first}")
    if (last - first).days > 92:
        raise CliError("backfill at most 93 days at a time")
    config = _config(args, settings)
    client = await _client(settings)
    try:
        done = await schedules.backfill(client, config, first, last, args.region)
    except schedules.UnknownSchedule as e:
        raise CliError(str(e)) from e
    for schedule_id in done:
        print(f"{schedule_id}: backfilled the nights closing {first} to {last}")
    return EXIT_OK


def _print_settlement(result: SettlementResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.model_dump(mode="json"), indent=2))
        return
    print(f"region {result.region}, store-day {result.business_day}")
    for s in result.stores:
        recon = s.reconciliation or "-"
        again = "" if s.reconciliation_started else " (already started)"
        print(f"  {s.store_id}: {s.close}; reconciliation {recon}{again}")


async def cmd_settlement_run(args: argparse.Namespace, settings: Settings) -> int:
    """Settle one region's store-day now, as its Schedule would (nothing is done twice)."""
    config = _config(args, settings)
    region = config.region_named(args.region)
    if region is None:
        names = ", ".join(r.name for r in config.region)
        raise CliError(f"no region {args.region!r} in the schedule file (it has: {names})")
    day = _day(args.day)
    client = await _client(settings)
    workflow_id = schedules.settlement_run_id(region.name, day)
    try:
        handle = await client.start_workflow(
            DailySettlement.run,
            schedules.settlement_input(
                region,
                config,
                args.stores,
                business_day=day,
                poll_every=timedelta(seconds=args.poll_every),
            ),
            id=workflow_id,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        handle = client.get_workflow_handle_for(DailySettlement.run, workflow_id)
        print(f"{workflow_id} is already running: following it")
    if not args.wait:
        print(f"started {workflow_id}")
        return EXIT_OK
    result = await handle.result()
    _print_settlement(result, args.json)
    for problem in result.problems:
        print(f"  problem: {problem}")
    troubled = [s for s in result.stores if s.close != "Closed"]
    if result.problems:
        raise Outcome(f"region {result.region} not settled: {result.problems[0]}", EXIT_EXCEPTIONS)
    if troubled:
        raise Outcome(
            f"{len(troubled)} store-day(s) not cleanly closed: "
            + ", ".join(f"{s.store_id} {s.close}" for s in troubled),
            EXIT_EXCEPTIONS,
        )
    return EXIT_OK


async def cmd_settlement_close(args: argparse.Namespace, settings: Settings) -> int:
    """Close one store-day now (its ledger flushed and closed, its sales settled)."""
    day = _day(args.day)
    try:
        workflow_id = close_workflow_id(args.store, day)
    except ValueError as e:
        raise CliError(str(e)) from e
    client = await _client(settings)
    try:
        handle = await client.start_workflow(
            StoreDayClose.run,
            DayCloseInput(store_id=args.store, business_day=day),
            id=workflow_id,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        )
    except WorkflowAlreadyStartedError:
        handle = client.get_workflow_handle_for(StoreDayClose.run, workflow_id)
        try:
            desc = await handle.describe()
        except RPCError as e:
            raise CliError(f"{workflow_id}: {e}") from e
        what = "is closing" if desc.status == WorkflowExecutionStatus.RUNNING else "was closed"
        print(f"{args.store} {day} {what} already ({workflow_id})")
    result = await handle.result()
    print(f"{args.store} {day}: {result.status} at {result.closed_at.isoformat()}")
    if result.exceptions:
        print(f"  {result.exceptions} sale(s) or ledger(s) in the exception inbox")
    return EXIT_OK if result.status == "Closed" else EXIT_EXCEPTIONS


def add_parsers(sub: Any) -> None:
    sched = sub.add_parser(
        "schedules", help="the Temporal Schedules that drive settlement"
    ).add_subparsers(dest="schedules_command", required=True)
    p = sched.add_parser("apply", help="create or update the schedules from the schedule file")
    p.add_argument("--config", help="schedule file (TOML); default RETAILFLOW_SETTLEMENT_SCHEDULE")
    p.set_defaults(func=cmd_apply)
    p = sched.add_parser("list", help="the settlement schedules, next and recent runs")
    p.set_defaults(func=cmd_list)
    for action, func in (("pause", cmd_pause), ("unpause", cmd_unpause)):
        p = sched.add_parser(action, help=f"{action} a schedule (or --all)")
        p.add_argument("schedule_id", nargs="?", metavar="SCHEDULE_ID")
        p.add_argument("--all", action="store_true", help="every settlement schedule")
        p.add_argument("--note", help="why (shown in the Web UI)")
        p.set_defaults(func=func)
    p = sched.add_parser("trigger", help="run a schedule's action now")
    p.add_argument("schedule_id", metavar="SCHEDULE_ID")
    p.set_defaults(func=cmd_trigger)
    p = sched.add_parser("backfill", help="run the nights that close the days FROM..TO")
    p.add_argument("--from", dest="first", required=True, metavar="DAY")
    p.add_argument("--to", dest="last", required=True, metavar="DAY")
    p.add_argument("--region", help="one region only")
    p.add_argument("--config", help="schedule file (TOML); default RETAILFLOW_SETTLEMENT_SCHEDULE")
    p.set_defaults(func=cmd_backfill)

    settle = sub.add_parser(
        "settlement", help="close and settle store-days, book gateway payouts, by hand"
    ).add_subparsers(dest="settlement_command", required=True)
    p = settle.add_parser("run", help="settle a region's store-day now, as its schedule would")
    p.add_argument("region")
    p.add_argument("day", metavar="DAY")
    p.add_argument("--stores", nargs="+", metavar="STORE", help="only these stores")
    p.add_argument("--config", help="schedule file (TOML); default RETAILFLOW_SETTLEMENT_SCHEDULE")
    p.add_argument("--wait", action="store_true", help="wait and print the result")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--poll-every", type=_positive_seconds, default=5.0, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_settlement_run)
    cli_settlement.add_payouts_parser(settle)
    p = settle.add_parser("close", help="close one store-day now and wait for it")
    p.add_argument("store")
    p.add_argument("day", metavar="DAY")
    p.set_defaults(func=cmd_settlement_close)
