"""The Temporal Schedules that drive settlement, made to match the schedule file.

`apply` creates or updates them idempotently: one `settlement-daily-{region}` per region (at
the region's `close_at`, in its time zone, starting `DailySettlement`) and
`gateway-settlement-daily` (starting `GatewaySettlement` over the last days' payouts), and
`audit-trail` (starting `AuditTrail` every 15 minutes, whatever the file says: the audit log is
filled from histories before their retention ends, docs/security.md "Audit trail"),
`catalog-sync` (starting `CatalogSync` every 5 minutes, docs/catalog.md) and
`inventory-audit` (starting `InventoryAuditRun` daily at INVENTORY_AUDIT_AT UTC: one
InventoryAudit per store, docs/inventory.md).
Applying the same file twice leaves one schedule each, unchanged; a region removed from the
file loses its schedule.

Overlap and catch-up (docs/architecture.md, "Settlement"): the server fires a schedule whether
or not a worker runs, so a worker down for a night finds the night's run waiting in its task
queue and runs it once. If the Temporal server itself was down, fires missed within
`catchup_days` run when it returns, one after the other (BUFFER_ALL). A run for a day that was
already settled (a backfill over it, a manual trigger) finds `close:{store}:{day}` and
`recon:{store}:{day}` by id and does neither again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleCalendarSpec,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from domain.approval import ApprovalTrust
from domain.schedule import RegionSchedule, SettlementSchedule
from workflows.audit_trail import AUDIT_TRAIL_ID, AuditTrail, AuditTrailInput
from workflows.catalog_sync import SCHEDULE_ID as CATALOG_SCHEDULE
from workflows.catalog_sync import CatalogSync, CatalogSyncInput
from workflows.gateway_settlement import GatewaySettlement, GatewaySettlementInput
from workflows.inventory_audit import InventoryAuditRun, InventoryAuditRunInput
from workflows.settlement import DailySettlement, SettlementInput

PREFIX = "settlement-daily-"
GATEWAY_SCHEDULE = "gateway-settlement-daily"
AUDIT_SCHEDULE = AUDIT_TRAIL_ID
INVENTORY_SCHEDULE = "inventory-audit"
CATALOG_FULL_SCHEDULE = f"{CATALOG_SCHEDULE}-full"
MANAGED = (
    PREFIX,
    GATEWAY_SCHEDULE,
    AUDIT_SCHEDULE,
    CATALOG_SCHEDULE,
    CATALOG_FULL_SCHEDULE,
    INVENTORY_SCHEDULE,
)
# Stores count after closing; the audit compares once the night's sales are posted.
INVENTORY_AUDIT_AT = (4, 0)
# Far below the namespace's retention (24 h on the dev server): every closed workflow's history
# is read several times over before it is deleted.
AUDIT_EVERY = timedelta(minutes=15)
# Odoo's product changes reach the stores within minutes (docs/catalog.md).
CATALOG_EVERY = timedelta(minutes=5)
# Nightly, a sync with --full withdraws what Odoo deleted (no incremental read can see it).
CATALOG_FULL_AT = (3, 0)


@dataclass
class Applied:
    schedule_id: str
    # "created", "updated" or "unchanged"; "deleted" for a region no longer in the file.
    change: str


def _calendar(hour: int, minute: int) -> ScheduleCalendarSpec:
    return ScheduleCalendarSpec(hour=[ScheduleRange(hour)], minute=[ScheduleRange(minute)])


def settlement_input(
    region: RegionSchedule,
    config: SettlementSchedule,
    stores: Sequence[str] | None = None,
    **run: Any,
) -> SettlementInput:
    """What DailySettlement takes for a region of the schedule file: its time zone, close time,
    stores (`stores` instead when given; none: the POS's stores of the region) and the
    tolerance. `run`: the rest, for a run started by hand (business_day, timeouts)."""
    return SettlementInput(
        region=region.name,
        time_zone=region.time_zone,
        close_at=region.close_at,
        stores=list(stores or region.stores),
        tolerance=config.tolerance,
        **run,
    )


def settlement_run_id(region: str, day: date) -> str:
    """The id of a region's settlement of one day, started by hand (the CLI, the demo)."""
    return f"settlement:{region}:{day.isoformat()}"


def region_schedule(
    region: RegionSchedule, config: SettlementSchedule, task_queue: str
) -> Schedule:
    close = region.close_time
    return Schedule(
        action=ScheduleActionStartWorkflow(
            DailySettlement.run,
            settlement_input(region, config),
            # Runs are named `settlement:{region}-{scheduled time}` by the server.
            id=f"settlement:{region.name}",
            task_queue=task_queue,
            memo={
                DIGEST: _digest(
                    region.model_dump(mode="json"),
                    config.tolerance.model_dump(mode="json"),
                    config.catchup_days,
                    task_queue,
                )
            },
        ),
        spec=ScheduleSpec(
            calendars=[_calendar(close.hour, close.minute)],
            time_zone_name=region.time_zone,
        ),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.BUFFER_ALL,
            catchup_window=timedelta(days=config.catchup_days),
        ),
        state=ScheduleState(
            note=f"store-days of region {region.name} close at {region.close_at} "
            f"{region.time_zone}, the next day"
        ),
    )


def gateway_schedule(config: SettlementSchedule, task_queue: str) -> Schedule:
    g = config.gateway
    return Schedule(
        action=ScheduleActionStartWorkflow(
            GatewaySettlement.run,
            GatewaySettlementInput(lookback_days=g.lookback_days),
            id="gateway-settlement",
            task_queue=task_queue,
            memo={DIGEST: _digest(g.model_dump(mode="json"), config.catchup_days, task_queue)},
        ),
        spec=ScheduleSpec(
            calendars=[_calendar(g.at_time.hour, g.at_time.minute)], time_zone_name=g.time_zone
        ),
        policy=SchedulePolicy(
            # Each run books every payout of its window not booked yet: a missed run's payouts
            # are booked by the next, so one catch-up run is enough.
            overlap=ScheduleOverlapPolicy.BUFFER_ONE,
            catchup_window=timedelta(days=config.catchup_days),
        ),
        state=ScheduleState(
            note=f"gateway payouts of the last {g.lookback_days} days booked in Odoo"
        ),
    )


def audit_schedule(task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            AuditTrail.run,
            AuditTrailInput(),
            id=AUDIT_TRAIL_ID,
            task_queue=task_queue,
            memo={DIGEST: _digest("audit", AUDIT_EVERY.total_seconds(), task_queue)},
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=AUDIT_EVERY)]),
        policy=SchedulePolicy(
            # A run collects everything since the log's cursor: one that is still going covers
            # the next fire, and one catch-up run after an outage covers all that was missed.
            overlap=ScheduleOverlapPolicy.SKIP,
            catchup_window=timedelta(hours=1),
        ),
        state=ScheduleState(
            note="the audit log filled from workflow histories, before their retention ends"
        ),
    )


def catalog_schedule(task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            CatalogSync.run,
            CatalogSyncInput(),
            # Runs are named `catalog-sync-{scheduled time}` by the server.
            id=CATALOG_SCHEDULE,
            task_queue=task_queue,
            # The input's defaults are in the digest: a release that changes them (the settle
            # time, the polling) updates the schedule.
            memo={
                DIGEST: _digest(
                    "catalog",
                    CATALOG_EVERY.total_seconds(),
                    task_queue,
                    CatalogSyncInput().model_dump(mode="json"),
                )
            },
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=CATALOG_EVERY)]),
        policy=SchedulePolicy(
            # Each run starts from the versions the stores hold: one still going covers the
            # next fire, and one run after an outage catches every store up.
            overlap=ScheduleOverlapPolicy.SKIP,
            catchup_window=timedelta(hours=1),
        ),
        state=ScheduleState(note="Odoo's product changes published to every store's catalog"),
    )


def catalog_full_schedule(task_queue: str) -> Schedule:
    hour, minute = CATALOG_FULL_AT
    return Schedule(
        action=ScheduleActionStartWorkflow(
            CatalogSync.run,
            CatalogSyncInput(full=True),
            # Runs are named `catalog-sync-full-{scheduled time}` by the server.
            id=CATALOG_FULL_SCHEDULE,
            task_queue=task_queue,
            memo={
                DIGEST: _digest(
                    "catalog-full",
                    CATALOG_FULL_AT,
                    task_queue,
                    CatalogSyncInput(full=True).model_dump(mode="json"),
                )
            },
        ),
        spec=ScheduleSpec(calendars=[_calendar(hour, minute)], time_zone_name="UTC"),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
        state=ScheduleState(
            note="every store's catalog against Odoo: deleted or archived products withdrawn"
        ),
    )


def inventory_schedule(task_queue: str, trust: ApprovalTrust | None) -> Schedule:
    trust = trust or ApprovalTrust()
    hour, minute = INVENTORY_AUDIT_AT
    return Schedule(
        action=ScheduleActionStartWorkflow(
            InventoryAuditRun.run,
            InventoryAuditRunInput(trust=trust),
            # Runs are named `inventory-audit-run-{scheduled time}`; each store's audit is
            # `inventory-audit:{store}:{day}`, so a catch-up run audits each day once.
            id="inventory-audit-run",
            task_queue=task_queue,
            memo={
                DIGEST: _digest(
                    "inventory", INVENTORY_AUDIT_AT, trust.model_dump(mode="json"), task_queue
                )
            },
        ),
        spec=ScheduleSpec(calendars=[_calendar(hour, minute)], time_zone_name="UTC"),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
        state=ScheduleState(note="each store's counts against Odoo's on-hand, drift fixed"),
    )


def schedules_for(
    config: SettlementSchedule, task_queue: str, trust: ApprovalTrust | None = None
) -> dict[str, Schedule]:
    out = {r.schedule_id: region_schedule(r, config, task_queue) for r in config.region}
    out[GATEWAY_SCHEDULE] = gateway_schedule(config, task_queue)
    out[AUDIT_SCHEDULE] = audit_schedule(task_queue)
    out[CATALOG_SCHEDULE] = catalog_schedule(task_queue)
    out[CATALOG_FULL_SCHEDULE] = catalog_full_schedule(task_queue)
    out[INVENTORY_SCHEDULE] = inventory_schedule(task_queue, trust)
    return out


# The schedule's settings as applied, in its action's memo: `apply` compares it to tell an
# unchanged schedule from one to update (what the server describes back is normalised).
DIGEST = "retailflow_schedule_digest"


def _digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


async def _digest_of(client: Client, schedule: Schedule) -> str | None:
    action = schedule.action
    if not isinstance(action, ScheduleActionStartWorkflow) or not action.memo:
        return None
    value = action.memo.get(DIGEST)
    if isinstance(value, Payload):
        # Described back as stored: encrypted, so through the codec too.
        value = (await client.data_converter.decode([value]))[0]
    return str(value) if value is not None else None


async def apply(
    client: Client,
    config: SettlementSchedule,
    task_queue: str,
    trust: ApprovalTrust | None = None,
) -> list[Applied]:
    """`trust`: the approval keys the inventory audits verify approvers with."""
    wanted = schedules_for(config, task_queue, trust)
    out: list[Applied] = []
    for schedule_id, schedule in wanted.items():
        try:
            await client.create_schedule(schedule_id, schedule)
            out.append(Applied(schedule_id, "created"))
            continue
        except ScheduleAlreadyRunningError:
            pass
        handle = client.get_schedule_handle(schedule_id)
        current = (await handle.describe()).schedule
        if await _digest_of(client, current) == await _digest_of(client, schedule):
            out.append(Applied(schedule_id, "unchanged"))
            continue

        def keep_state(update: ScheduleUpdateInput, new: Schedule = schedule) -> ScheduleUpdate:
            old = update.description.schedule.state
            new.state.paused, new.state.note = old.paused, old.note or new.state.note
            return ScheduleUpdate(schedule=new)

        await handle.update(keep_state)
        out.append(Applied(schedule_id, "updated"))
    for schedule_id in await managed_ids(client):
        if schedule_id not in wanted:
            await client.get_schedule_handle(schedule_id).delete()
            out.append(Applied(schedule_id, "deleted"))
    return out


async def managed_ids(client: Client) -> list[str]:
    ids = []
    async for listed in await client.list_schedules():
        if listed.id.startswith(MANAGED):
            ids.append(listed.id)
    return sorted(ids)


@dataclass
class ScheduleView:
    schedule_id: str
    paused: bool
    note: str
    next_runs: list[datetime]
    recent_runs: list[datetime]
    actions: int


async def describe(client: Client, schedule_id: str) -> ScheduleView:
    desc = await client.get_schedule_handle(schedule_id).describe()
    return ScheduleView(
        schedule_id=schedule_id,
        paused=desc.schedule.state.paused,
        note=desc.schedule.state.note or "",
        next_runs=list(desc.info.next_action_times[:3]),
        recent_runs=[a.scheduled_at for a in desc.info.recent_actions[-3:]],
        actions=desc.info.num_actions,
    )


class UnknownSchedule(LookupError):
    pass


async def _handle(client: Client, schedule_id: str) -> ScheduleHandle:
    handle = client.get_schedule_handle(schedule_id)
    try:
        await handle.describe()
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            raise UnknownSchedule(
                f"no schedule {schedule_id!r}: `retailflow schedules list` shows them"
            ) from e
        raise
    return handle


async def pause(client: Client, schedule_id: str, note: str) -> None:
    await (await _handle(client, schedule_id)).pause(note=note)


async def unpause(client: Client, schedule_id: str, note: str) -> None:
    await (await _handle(client, schedule_id)).unpause(note=note)


async def trigger(client: Client, schedule_id: str) -> None:
    await (await _handle(client, schedule_id)).trigger(overlap=ScheduleOverlapPolicy.BUFFER_ALL)


async def backfill(
    client: Client, config: SettlementSchedule, first: date, last: date, region: str | None
) -> list[str]:
    """Run each region's nights that close store-days `first`..`last` (a day already settled
    is not settled again). Returns the schedule ids backfilled."""
    regions = [r for r in config.region if region is None or r.name == region]
    if not regions:
        raise UnknownSchedule(f"no region {region!r} in the schedule file")
    done = []
    for r in regions:
        handle = await _handle(client, r.schedule_id)
        # The fires that close `first` and `last`, with a minute's margin either side.
        start = r.closes_at(first) - timedelta(minutes=1)
        end = r.closes_at(last) + timedelta(minutes=1)
        await handle.backfill(
            ScheduleBackfill(start_at=start, end_at=end, overlap=ScheduleOverlapPolicy.BUFFER_ALL)
        )
        done.append(r.schedule_id)
    return done
