"""`retailflow status [--json]`: one screen of health for engineers.

- backlog: the task queue's approximate backlog (Temporal's task-queue stats) and its pollers,
  hence the workers polling it;
- running workflows by type (visibility counts);
- exceptions by workflow type and `RetailStatus`, with the age of the oldest: open workflows in
  an exception state, and those that ended in one in the last day;
- last settlement: the last DailySettlement run, when it started and how it stands.

All of it scoped to this deployment's task queue (`RETAILFLOW_TASK_QUEUE`). Colours only when
stdout is a terminal and NO_COLOR is unset; `--json` prints one JSON object for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from domain.limits import visibility_literal
from workers.settings import Settings

# The RetailStatus values that ask for a person (or are about to).
EXCEPTION_STATUSES = (
    "NeedsAttention",
    "Failed",
    "Rejected",
    "PaidPostingPending",
    "AwaitingApproval",
    "Unreconciled",
)
# Workflows that ended in an exception state still count for a day.
RECENT = timedelta(days=1)
# A bound on the workflows read to find the oldest of one kind; more is said as "at least".
SCAN_LIMIT = 10_000
WORKFLOW_TYPES = (
    "SalePosting",
    "StoreLedger",
    "PriceRollout",
    "StorePriceCommand",
    "Refund",
    "SaleRefunds",
    "StoreDayClose",
    "DailySettlement",
    "GatewaySettlement",
    "Reconciliation",
    "AuditTrail",
)


@dataclass
class QueueState:
    kind: str  # "workflow" or "activity"
    backlog: int | None  # None: the server does not report it
    backlog_age_s: float | None
    pollers: list[str] = field(default_factory=list)


@dataclass
class ExceptionKind:
    workflow_type: str
    status: str
    count: int
    open: int
    oldest_age_s: float
    capped: bool = False  # more than SCAN_LIMIT: count is a lower bound


@dataclass
class Settlement:
    workflow_id: str
    started: str
    execution_status: str
    retail_status: str | None


@dataclass
class Status:
    task_queue: str
    queues: list[QueueState]
    workers: int
    running: dict[str, int]
    exceptions: list[ExceptionKind]
    last_settlement: Settlement | None


async def collect(client: Client, task_queue: str, now: datetime | None = None) -> Status:
    now = now or datetime.now(UTC)
    queue = visibility_literal(task_queue, "RETAILFLOW_TASK_QUEUE")
    queues = [
        await _queue(client, task_queue, "workflow", TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
        await _queue(client, task_queue, "activity", TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
    ]
    workers = len({p for q in queues for p in q.pollers})
    running = {}
    for wf_type in WORKFLOW_TYPES:
        n = await client.count_workflows(
            f'TaskQueue = {queue} AND WorkflowType = "{wf_type}" AND ExecutionStatus = "Running"'
        )
        if n.count:
            running[wf_type] = n.count
    return Status(
        task_queue=task_queue,
        queues=queues,
        workers=workers,
        running=running,
        exceptions=await _exceptions(client, queue, now),
        last_settlement=await _last_settlement(client, queue),
    )


async def _queue(client: Client, name: str, kind: str, queue_type: Any) -> QueueState:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=name),
            task_queue_type=queue_type,
            report_stats=True,
        )
    )
    stats = response.stats if response.HasField("stats") else None
    return QueueState(
        kind=kind,
        backlog=stats.approximate_backlog_count if stats is not None else None,
        backlog_age_s=stats.approximate_backlog_age.ToTimedelta().total_seconds()
        if stats is not None and stats.HasField("approximate_backlog_age")
        else None,
        pollers=sorted({p.identity for p in response.pollers}),
    )


async def _exceptions(client: Client, queue: str, now: datetime) -> list[ExceptionKind]:
    statuses = ", ".join(f'"{s}"' for s in EXCEPTION_STATUSES)
    since = (now - RECENT).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = (
        f"TaskQueue = {queue} AND RetailStatus IN ({statuses}) AND "
        f'(ExecutionStatus = "Running" OR CloseTime >= "{since}")'
    )
    kinds: dict[tuple[str, str], ExceptionKind] = {}
    seen = 0
    async for wf in client.list_workflows(query, limit=SCAN_LIMIT + 1):
        seen += 1
        if seen > SCAN_LIMIT:
            for kind in kinds.values():
                kind.capped = True
            break
        status = wf.search_attributes.get("RetailStatus")
        status_text = str(status[0]) if isinstance(status, list) and status else "?"
        key = (wf.workflow_type, status_text)
        age = max(0.0, (now - wf.start_time).total_seconds())
        kind = kinds.setdefault(key, ExceptionKind(key[0], key[1], 0, 0, 0.0))
        kind.count += 1
        kind.open += wf.close_time is None
        kind.oldest_age_s = max(kind.oldest_age_s, age)
    return sorted(kinds.values(), key=lambda k: (-k.oldest_age_s, k.workflow_type, k.status))


async def _last_settlement(client: Client, queue: str) -> Settlement | None:
    last = None
    async for wf in client.list_workflows(
        f'TaskQueue = {queue} AND WorkflowType = "DailySettlement"', limit=200
    ):
        if last is None or wf.start_time > last.start_time:
            last = wf
    if last is None:
        return None
    status = last.search_attributes.get("RetailStatus")
    return Settlement(
        workflow_id=last.id,
        started=last.start_time.isoformat(timespec="seconds"),
        execution_status=last.status.name if last.status is not None else "UNKNOWN",
        retail_status=str(status[0]) if isinstance(status, list) and status else None,
    )


# --- rendering ----------------------------------------------------------------------------------


def use_colour(out: TextIO) -> bool:
    return out.isatty() and not os.environ.get("NO_COLOR")


def _age(seconds: float) -> str:
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def render(status: Status, colour: bool) -> str:
    def paint(text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if colour else text

    red, yellow, green, bold = "31", "33", "32", "1"
    lines = [paint(f"retailflow status — task queue {status.task_queue}", bold)]
    workers = paint(str(status.workers), green if status.workers else red)
    lines.append(f"workers polling: {workers}")
    for q in status.queues:
        backlog = "not reported" if q.backlog is None else str(q.backlog)
        if q.backlog:
            backlog = paint(backlog, yellow)
        age = f", oldest {_age(q.backlog_age_s)}" if q.backlog_age_s else ""
        lines.append(f"  {q.kind:<9} backlog {backlog}{age}, {len(q.pollers)} poller(s)")
    lines.append(paint("running workflows", bold))
    if status.running:
        for wf_type, n in sorted(status.running.items()):
            lines.append(f"  {wf_type:<20} {n}")
    else:
        lines.append("  none")
    lines.append(paint("exceptions (open, or ended in the last day)", bold))
    if status.exceptions:
        for k in status.exceptions:
            count = f"{'≥' if k.capped else ''}{k.count}"
            lines.append(
                f"  {k.workflow_type:<20} {paint(f'{k.status:<18}', red)} {count:>6} "
                f"({k.open} open)  oldest {_age(k.oldest_age_s)}"
            )
    else:
        lines.append("  " + paint("none", green))
    lines.append(paint("last settlement", bold))
    s = status.last_settlement
    if s is None:
        lines.append("  none yet")
    else:
        state = s.retail_status or s.execution_status
        good = state in ("Settled", "COMPLETED")
        bad = state == "NeedsAttention" or s.execution_status in ("FAILED", "TERMINATED")
        painted = paint(state, green if good else red if bad else yellow)
        lines.append(f"  {s.workflow_id} started {s.started}: {painted}")
    return "\n".join(lines)


def as_json(status: Status) -> str:
    return json.dumps(asdict(status), indent=2, sort_keys=True)


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from workers.cli import CliError, _client  # the CLI's one-line errors

    try:
        visibility_literal(settings.task_queue, "RETAILFLOW_TASK_QUEUE")
    except ValueError as e:
        raise CliError(str(e)) from e
    client = await _client(settings)
    status = await collect(client, settings.task_queue)
    out = sys.stdout
    print(as_json(status) if args.json else render(status, use_colour(out)), file=out)
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("status", help="one screen of health: backlog, exceptions, settlement")
    p.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    p.set_defaults(func=cmd_status)
