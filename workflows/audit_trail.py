"""AuditTrail: the audit log filled from workflow histories, before their retention ends.

Started every 15 minutes by the `audit-trail` Schedule (workers/schedules.py), or by hand
(`retailflow audit collect`). Each run collects bounded batches (activities/audit_trail.py)
until nothing is left: the workflows closed since the log's cursor, then the running ones' new
events. After `max_batches` it continues as new with the cursor in its input, so a backlog
never grows one history without bound. Each event is recorded exactly once whatever runs
twice (the log's UNIQUE event key), so overlapping runs are harmless; the Schedule skips a fire
while a run is still going anyway.

The interval must stay far below the namespace's retention (24 h on the dev server, `temporal
operator namespace describe`): a closed workflow is deleted with its history when retention
ends, and what was not collected by then is lost to the log (docs/security.md, "Audit trail").
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.audit_trail import AuditTrailActivities, CollectInput

AUDIT_TRAIL_ID = "audit-trail"

# One batch reads up to a few hundred histories: minutes at most; the activity heartbeats per
# workflow, so a dead worker is noticed within a minute. Retried without limit: a batch read
# again records nothing twice.
AUDIT_COLLECT: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=15),
    "heartbeat_timeout": timedelta(seconds=60),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=60),
        maximum_attempts=0,
    ),
}


class AuditTrailInput(BaseModel):
    # Closed workflows from this time on; None: where the log's last batch left off.
    closed_since: datetime | None = None
    running_after: str = ""
    batch_size: int = 200
    max_batches: int = 20
    # Minutes of overlap with the last batch (visibility is eventually consistent).
    overlap_minutes: float = 5.0
    # A visibility filter for a partial collection (e.g. `TaskQueue = "..."`), with a cursor
    # of its own; "": every workflow of the namespace (the Schedule's).
    scope: str = ""
    # Carried over continue-as-new, so the last run's result counts the whole collection.
    workflows_so_far: int = 0
    events_so_far: int = 0


class AuditTrailResult(BaseModel):
    workflows: int  # histories read
    events: int  # audit records appended
    closed_since: datetime | None  # the cursor the next collection starts from
    batches: int


@workflow.defn
class AuditTrail:
    @workflow.run
    async def run(self, input: AuditTrailInput) -> AuditTrailResult:
        cursor, running_after = input.closed_since, input.running_after
        workflows, events = input.workflows_so_far, input.events_so_far
        for batch in range(1, max(1, input.max_batches) + 1):
            got = await workflow.execute_activity_method(
                AuditTrailActivities.collect_audit_events,
                CollectInput(
                    closed_since=cursor,
                    running_after=running_after,
                    max_workflows=max(1, input.batch_size),
                    overlap_s=max(0.0, input.overlap_minutes) * 60,
                    scope=input.scope,
                ),
                **AUDIT_COLLECT,
            )
            workflows, events = workflows + got.workflows, events + got.events
            cursor, running_after = got.closed_since, got.running_after
            if not got.more:
                return AuditTrailResult(
                    workflows=workflows, events=events, closed_since=cursor, batches=batch
                )
        workflow.continue_as_new(
            input.model_copy(
                update={
                    "closed_since": cursor,
                    "running_after": running_after,
                    "workflows_so_far": workflows,
                    "events_so_far": events,
                }
            )
        )
