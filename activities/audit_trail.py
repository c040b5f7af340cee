"""The audit trail's collector: workflow histories read through Temporal's API, their audit
events appended to the audit log (activities/audit_store.py), each event exactly once.

One `collect` call reads a bounded batch: first the workflows closed since the cursor (from
visibility, `CloseTime`, oldest first, a few minutes of overlap since visibility is eventually
consistent; runs whose close is recorded already are skipped without reading their history),
then the running ones' new events (those after the newest event recorded of the run). The
UNIQUE event key makes a batch read twice, or a call retried after a crash, record nothing
twice. The histories come through the worker's own client, so payloads are decoded (and
decrypted, with the project's codec) before anything is summarised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.audit_store import AuditStore, event_key
from domain.audit_log import (
    DECISIONS,
    WRITE_ACTIVITIES,
    AuditEvent,
    Kind,
    Scalar,
    Target,
    actor_of,
    summarize,
)

AUDIT_WORKFLOW = "AuditTrail"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CollectInput(BaseModel):
    # Closed workflows from this time on (less the overlap); None: the log's own cursor.
    closed_since: datetime | None = None
    # Running workflows after this `workflow_id/run_id` (a batch that stopped among them).
    running_after: str = ""
    max_workflows: int = 200
    overlap_s: float = 300.0
    # A visibility filter AND-ed to the collector's queries (e.g. `TaskQueue = "..."`), for a
    # partial collection with a cursor of its own; "": every workflow of the namespace.
    scope: str = ""


class CollectResult(BaseModel):
    workflows: int = 0  # histories read
    events: int = 0  # records appended
    closed_since: datetime  # the cursor for the next batch
    running_after: str = ""
    more: bool = False  # the batch was full: call again with the cursor above


_CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "canceled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued as new",
}


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class AuditTrailActivities:
    def __init__(self, db_path: str | Path) -> None:
        # Opened on first use: a worker that never collects creates no file.
        self._path = Path(db_path)
        self._store: AuditStore | None = None

    @property
    def store(self) -> AuditStore:
        if self._store is None:
            self._store = AuditStore(self._path)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    @activity.defn
    async def collect_audit_events(self, input: CollectInput) -> CollectResult:
        """Record the audit events of one bounded batch of workflows; heartbeats per workflow."""
        client = activity.client()
        store = self.store
        scope = input.scope.strip()
        since = input.closed_since or await asyncio.to_thread(store.cursor, scope) or EPOCH
        started = datetime.now(UTC)
        budget = max(1, input.max_workflows)
        result = CollectResult(closed_since=since, running_after=input.running_after)

        found: list[AuditEvent] = []
        if not input.running_after:
            closed = await _closed_since(client, since - timedelta(seconds=input.overlap_s), scope)
            done = await asyncio.to_thread(store.closed_runs, [run_id for _, _, run_id in closed])
            todo = [c for c in closed if c[2] not in done]
            batch, result.more = todo[:budget], len(todo) > budget
            for close_time, wf_id, run_id in batch:
                found += await self._read_run(client, wf_id, run_id, result)
                if result.more:
                    result.closed_since = close_time
            if not result.more:
                result.closed_since = started
                budget -= len(batch)

        if not result.more:
            running = await _running(client, scope)
            after = [r for r in running if f"{r[0]}/{r[1]}" > input.running_after]
            if len(after) > budget:
                after, result.more = after[:budget], True
            for wf_id, run_id in after:
                found += await self._read_run(client, wf_id, run_id, result)
            result.running_after = f"{after[-1][0]}/{after[-1][1]}" if result.more else ""
        # The batch's records and the cursor move together, in one transaction.
        result.events = await asyncio.to_thread(store.append, found, result.closed_since, scope)
        return result

    async def _read_run(
        self, client: Client, wf_id: str, run_id: str, progress: CollectResult
    ) -> list[AuditEvent]:
        activity.heartbeat(progress.model_dump(mode="json"), wf_id)
        progress.workflows += 1
        seen = (await asyncio.to_thread(self.store.last_event_ids, [run_id])).get(run_id, 0)
        history = client.get_workflow_handle(wf_id, run_id=run_id).fetch_history_events()
        events = [e async for e in history]
        if not events or events[-1].event_id <= seen:
            return []
        return await audit_events(client, wf_id, run_id, events, after_event_id=seen)


def _query(condition: str, scope: str) -> str:
    query = f"{condition} AND WorkflowType != {_quote(AUDIT_WORKFLOW)}"
    return f"{query} AND ({scope})" if scope else query


async def _listed(client: Client, query: str) -> list[Any]:
    try:
        return [wf async for wf in client.list_workflows(query)]
    except RPCError as e:
        if e.status == RPCStatusCode.INVALID_ARGUMENT:
            # A scope Temporal cannot read: retrying would not change it.
            raise ApplicationError(
                f"visibility refused the query {query!r}: {e.message}",
                type="BadScope",
                non_retryable=True,
            ) from e
        raise


async def _closed_since(
    client: Client, since: datetime, scope: str
) -> list[tuple[datetime, str, str]]:
    at = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    query = _query(f'ExecutionStatus != "Running" AND CloseTime >= "{at}"', scope)
    listed = await _listed(client, query)
    return sorted((wf.close_time, wf.id, wf.run_id) for wf in listed if wf.close_time)


async def _running(client: Client, scope: str) -> list[tuple[str, str]]:
    listed = await _listed(client, _query('ExecutionStatus = "Running"', scope))
    return sorted((wf.id, wf.run_id) for wf in listed)


async def _decode(client: Client, payloads: Sequence[Payload]) -> list[Any]:
    """Payload values as JSON-like data; what cannot be decoded is None (never raised: an
    undecodable payload leaves its record without details, not the log without a record)."""
    if not payloads:
        return []
    try:
        # Decrypted by the client's codec (if any), then converted, untyped: JSON-like data.
        return list(await client.data_converter.decode(list(payloads)))
    except Exception:
        return [None] * len(payloads)


def _failure_details(failure: Failure) -> dict[str, Scalar]:
    """The failure's type (never its message: free text may name people)."""
    kind = (
        failure.application_failure_info.type
        if failure.HasField("application_failure_info")
        else ""
    )
    if not kind and failure.HasField("timeout_failure_info"):
        kind = "Timeout"
    cause = failure.cause
    while not kind and cause.HasField("application_failure_info"):
        kind = cause.application_failure_info.type
        cause = cause.cause
    return {"failure_type": kind or failure.source or "unknown"}


def _merge(*parts: dict[str, Scalar]) -> dict[str, Scalar]:
    out: dict[str, Scalar] = {}
    for part in parts:
        for k, v in part.items():
            if len(out) < 24:
                out[k] = v
    return out


async def audit_events(
    client: Client,
    wf_id: str,
    run_id: str,
    events: Sequence[HistoryEvent],
    after_event_id: int = 0,
) -> list[AuditEvent]:
    """The audit events of a run's history (those after `after_event_id`; the earlier ones are
    read for what later ones refer to, without decoding their payloads)."""
    wf_type = ""
    scheduled: dict[int, tuple[str, Sequence[Payload]]] = {}
    updates: dict[int, tuple[str, Sequence[Payload]]] = {}
    out: list[AuditEvent] = []
    for e in events:
        t = e.event_type
        if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            wf_type = e.workflow_execution_started_event_attributes.workflow_type.name
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            a_act = e.activity_task_scheduled_event_attributes
            if a_act.activity_type.name in WRITE_ACTIVITIES:
                scheduled[e.event_id] = (a_act.activity_type.name, a_act.input.payloads)
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            req = e.workflow_execution_update_accepted_event_attributes.accepted_request
            updates[e.event_id] = (req.input.name, req.input.args.payloads)
        if e.event_id <= after_event_id:
            continue
        found = await _audit_event(client, e, scheduled, updates)
        if found is not None:
            kind, action, target, outcome, actor, details = found
            out.append(
                AuditEvent(
                    event_key=event_key(wf_id, run_id, e.event_id),
                    at=e.event_time.ToDatetime(tzinfo=UTC),
                    workflow_type=wf_type,
                    workflow_id=wf_id,
                    kind=kind,
                    action=wf_type if action is None else action,
                    target=target,
                    outcome=outcome,
                    actor=actor,
                    details=details,
                )
            )
    return out


_Found = tuple[Kind, str | None, Target, str, str, dict[str, Scalar]]


async def _summary(client: Client, payloads: Sequence[Payload]) -> tuple[str, dict[str, Scalar]]:
    """The actor the payloads name, and their impersonal details."""
    values = await _decode(client, payloads)
    return actor_of(values), _merge(*(summarize(v) for v in values))


def _decision(name: str) -> Kind:
    return Kind.DECISION if name in DECISIONS else Kind.UPDATE


async def _audit_event(
    client: Client,
    e: HistoryEvent,
    scheduled: dict[int, tuple[str, Sequence[Payload]]],
    updates: dict[int, tuple[str, Sequence[Payload]]],
) -> _Found | None:
    t = e.event_type
    temporal = Target.TEMPORAL
    if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        a = e.workflow_execution_started_event_attributes
        actor, details = await _summary(client, a.input.payloads)
        if a.HasField("parent_workflow_execution"):
            parent = a.parent_workflow_execution.workflow_id
            details = _merge({"parent_workflow_id": parent}, details)
        return Kind.START, None, temporal, "started", actor, details
    if t in _CLOSED:
        details = {}
        if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            result = e.workflow_execution_completed_event_attributes.result.payloads
            details = (await _summary(client, result))[1]
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
            details = _failure_details(e.workflow_execution_failed_event_attributes.failure)
        return Kind.CLOSE, None, temporal, _CLOSED[t], "system", details
    if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        sig = e.workflow_execution_signaled_event_attributes
        actor, details = await _summary(client, sig.input.payloads)
        kind = Kind.DECISION if sig.signal_name in DECISIONS else Kind.SIGNAL
        return kind, sig.signal_name, temporal, "received", actor, details
    if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
        name, args = updates[e.event_id]
        actor, details = await _summary(client, args)
        return _decision(name), name, temporal, "accepted", actor, details
    if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
        upd = e.workflow_execution_update_completed_event_attributes
        name, args = updates.get(upd.accepted_event_id, ("update", []))
        actor = actor_of(await _decode(client, args))
        if upd.outcome.HasField("failure"):
            return (
                _decision(name),
                name,
                temporal,
                "refused",
                actor,
                _failure_details(upd.outcome.failure),
            )
        details = (await _summary(client, upd.outcome.success.payloads))[1]
        return _decision(name), name, temporal, "completed", actor, details
    if t == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
        done = e.activity_task_completed_event_attributes
        return await _write(
            client, scheduled.get(done.scheduled_event_id), "completed", done.result.payloads
        )
    if t == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
        failed = e.activity_task_failed_event_attributes
        extra = _failure_details(failed.failure)
        return await _write(client, scheduled.get(failed.scheduled_event_id), "failed", [], extra)
    if t == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
        timed_out = e.activity_task_timed_out_event_attributes
        return await _write(client, scheduled.get(timed_out.scheduled_event_id), "timed out", [])
    return None


async def _write(
    client: Client,
    found: tuple[str, Sequence[Payload]] | None,
    outcome: str,
    result: Sequence[Payload],
    extra: dict[str, Scalar] | None = None,
) -> _Found | None:
    """A write activity's end: what it was given and what it answered (ids, amounts)."""
    if found is None:
        return None
    name, inputs = found
    details = _merge((await _summary(client, inputs))[1], (await _summary(client, result))[1])
    return Kind.WRITE, name, WRITE_ACTIVITIES[name], outcome, "system", _merge(extra or {}, details)
