"""The end of a store-day: `StoreDayClose` per store and day, `DailySettlement` per region and
night (started by the region's Temporal Schedule), which closes each store's day and starts its
three-way `Reconciliation` (docs/architecture.md, "Settlement").

Both are keyed by business ids, `close:{store}:{day}` and `recon:{store}:{day}`, started with
REJECT_DUPLICATE: a night that runs twice (a catch-up after downtime, a backfill over it, a manual
trigger) finds the day already closed and reconciled and does neither again.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import SearchAttributeKey, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.day_close import DayCloseActivities, DayCloseResult, OpenWork, StoreDay
    from activities.pos import ListStoresInput, PosActivities
    from activities.recon import DayTotalsInput, ReconActivities
    from domain.ids import BadIdPart, business_id
    from domain.money import ZERO
    from domain.pricing import StoreTarget, TargetKind
    from domain.reconciliation import TolerancePolicy
    from domain.schedule import RegionSchedule
    from workflows.policies import POS_LISTING, TEMPORAL_READ
    from workflows.reconciliation import (
        RECON_READ,
        Reconciliation,
        ReconciliationInput,
        reconciliation_workflow_id,
    )
    from workflows.search_attributes import BUSINESS_DAY, STORE_ID, show_status

SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


def close_workflow_id(store_id: str, business_day: date) -> str:
    return business_id("close", store_id, business_day.isoformat())


class DayCloseInput(BaseModel):
    store_id: str
    business_day: date
    # How long the close waits for the day's sales to be posted or parked as exceptions.
    settle_timeout: timedelta = timedelta(hours=6)
    # How often it looks again meanwhile (visibility counts; cheap).
    poll_every: timedelta = timedelta(seconds=5)


@workflow.defn
class StoreDayClose:
    """Close one store's day: flush and close its ledger, wait until every sale of the day is
    posted or in the exception inbox, and note when the day closed."""

    @workflow.run
    async def run(self, input: DayCloseInput) -> DayCloseResult:
        day = StoreDay(store_id=input.store_id, business_day=input.business_day)
        workflow.upsert_search_attributes(
            [
                STORE_ID.value_set(input.store_id),
                BUSINESS_DAY.value_set(input.business_day.isoformat()),
            ]
        )
        show_status("Closing", f"{input.store_id} {input.business_day}")
        ledgers = await workflow.execute_activity_method(
            DayCloseActivities.close_ledgers, day, **TEMPORAL_READ
        )
        deadline = workflow.now() + input.settle_timeout
        while True:
            # Visibility lags the workflows by a moment: look once more after it says settled.
            open_work = await self._open_work(day)
            if open_work.settled:
                await workflow.sleep(input.poll_every)
                open_work = await self._open_work(day)
                if open_work.settled:
                    break
            if workflow.now() >= deadline:
                break
            show_status(
                "Closing",
                f"{input.store_id} {input.business_day}",
                facts=[
                    f"waiting for {open_work.ledgers} ledger(s) and {open_work.posting} sale(s)"
                ],
            )
            await workflow.sleep(input.poll_every)
        status = "Closed" if open_work.settled else "ClosedWithOpenWork"
        closed_at = workflow.now()
        odoo = await workflow.execute_activity_method(
            ReconActivities.odoo_day_totals,
            DayTotalsInput(store_id=input.store_id, business_day=input.business_day),
            **RECON_READ,
        )
        result = DayCloseResult(
            store_id=input.store_id,
            business_day=input.business_day,
            closed_at=closed_at,
            status=status,
            odoo=odoo,
            ledgers_closed=ledgers,
            still_open=open_work if not open_work.settled else OpenWork(),
            exceptions=open_work.exceptions,
        )
        facts = [
            f"closed at {result.closed_at.isoformat(timespec='seconds')}",
            f"Odoo books {odoo.sales} sale(s): "
            + ", ".join(f"{t.value} {amount}" for t, amount in sorted(odoo.tenders.items())),
        ]
        if open_work.exceptions:
            facts.append(f"{open_work.exceptions} sale(s) or ledger(s) in the exception inbox")
        reasons = (
            [f"{open_work.ledgers} ledger(s), {open_work.posting} sale(s) still posting"]
            if not open_work.settled
            else []
        )
        show_status(status, f"{input.store_id} {input.business_day}", facts, reasons)
        return result

    async def _open_work(self, day: StoreDay) -> OpenWork:
        return await workflow.execute_activity_method(
            DayCloseActivities.open_work, day, **TEMPORAL_READ
        )


class SettlementInput(BaseModel):
    """One region's night: which day (None: the day its scheduled time closes), which stores."""

    region: str
    time_zone: str = "UTC"
    close_at: str = "02:00"
    # Empty: the POS platform's stores of the region (every store for region `all`).
    stores: list[str] = []
    tolerance: TolerancePolicy = TolerancePolicy()
    business_day: date | None = None
    # Stores closed and reconciled at once.
    concurrency: int = Field(default=50, ge=1, le=500)
    settle_timeout: timedelta = timedelta(hours=6)
    poll_every: timedelta = timedelta(seconds=5)
    # Late sales: the days before this one whose reconciliation runs again when Odoo has
    # booked sales for them since it ran (docs/architecture.md, "Late sales").
    recheck_days: int = Field(default=2, ge=0, le=14)


class StoreSettlement(BaseModel):
    store_id: str
    # The close's status ("Closed", "ClosedWithOpenWork"), or "ClosingElsewhere" when another
    # run of the same night is closing this store-day (it starts the reconciliation too).
    close: str
    closed_at: datetime | None = None
    reconciliation: str | None = None
    # False when the store-day's reconciliation had already been started by an earlier run.
    reconciliation_started: bool = False


class SettlementResult(BaseModel):
    region: str
    business_day: date
    stores: list[StoreSettlement]
    # Earlier store-days reconciled again because late sales were booked for them since:
    # "{store} {day}".
    rechecked: list[str] = []
    # Why the night could not settle (e.g. the POS would not list the region's stores).
    problems: list[str] = []


@workflow.defn
class DailySettlement:
    """A region's night: close each store's day, then start its reconciliation."""

    @workflow.run
    async def run(self, input: SettlementInput) -> SettlementResult:
        try:
            day = input.business_day or self._scheduled_day(input)
        except ValueError as e:  # a time zone or close time it was started with by hand
            why = f"cannot tell which store-day to settle: {e}"
            show_status("NeedsAttention", f"region {input.region}", reasons=[why])
            today = workflow.now().date()
            return SettlementResult(
                region=input.region, business_day=today, stores=[], problems=[why]
            )
        workflow.upsert_search_attributes([BUSINESS_DAY.value_set(day.isoformat())])
        try:
            stores = input.stores or await self._region_stores(input.region)
        except ActivityError as e:
            # The POS refused the listing (a store id it cannot name a workflow after): ops see it.
            why = f"cannot list the stores of region {input.region}: {e.cause or e}"
            show_status("NeedsAttention", f"region {input.region}, {day}", reasons=[why])
            return SettlementResult(
                region=input.region, business_day=day, stores=[], problems=[why]
            )
        show_status("Settling", f"region {input.region}, {day}", [f"{len(stores)} store(s)"])
        out: list[StoreSettlement] = []
        for first in range(0, len(stores), input.concurrency):
            chunk = stores[first : first + input.concurrency]
            out.extend(await asyncio.gather(*(self._settle(s, day, input) for s in chunk)))
        rechecked: list[str] = []
        for back in range(1, input.recheck_days + 1):
            past = day - timedelta(days=back)
            for first in range(0, len(stores), input.concurrency):
                chunk = stores[first : first + input.concurrency]
                again = await asyncio.gather(*(self._recheck(s, past, input) for s in chunk))
                rechecked.extend(f"{s} {past}" for s in again if s)
        started = sum(s.reconciliation_started for s in out)
        elsewhere = [s.store_id for s in out if s.close == "ClosingElsewhere"]
        open_work = [s.store_id for s in out if s.close == "ClosedWithOpenWork"]
        reasons = [f"closed with sales still posting: {', '.join(open_work)}"] if open_work else []
        if elsewhere:
            reasons.append(f"being closed by another run: {', '.join(elsewhere)}")
        facts_late = [f"late sales: reconciled again {', '.join(rechecked)}"] if rechecked else []
        show_status(
            "Settled",
            f"region {input.region}, {day}",
            [f"{len(out)} store(s); {started} reconciliation(s) started", *facts_late],
            reasons,
        )
        return SettlementResult(
            region=input.region, business_day=day, stores=out, rechecked=rechecked
        )

    async def _recheck(self, store: str, day: date, input: SettlementInput) -> str | None:
        """Reconcile an earlier store-day again if Odoo books other amounts for it than its
        last reconciliation saw: late sales (an offline store replaying) booked since."""
        try:
            recon_id = reconciliation_workflow_id(store, day)
        except BadIdPart:
            return None
        report = await workflow.execute_activity_method(
            DayCloseActivities.last_reconciliation, recon_id, **TEMPORAL_READ
        )
        if report is None:  # never reconciled, or ops are still on it
            return None
        closed = await workflow.execute_activity_method(
            DayCloseActivities.close_result, close_workflow_id(store, day), **TEMPORAL_READ
        )
        if closed is None:
            return None
        now = await workflow.execute_activity_method(
            ReconActivities.odoo_day_totals,
            DayTotalsInput(store_id=store, business_day=day),
            **RECON_READ,
        )
        seen = {t.tender: t.odoo_sales for t in report.totals}
        if all(now.tenders.get(m, ZERO) == seen.get(m, ZERO) for m in {*now.tenders, *seen}):
            return None
        # ALLOW_DUPLICATE: its last run has ended; one already running again is left alone.
        again = await self._reconcile(closed, input, WorkflowIDReusePolicy.ALLOW_DUPLICATE)
        return store if again else None

    async def _reconcile(
        self, closed: DayCloseResult, input: SettlementInput, reuse: WorkflowIDReusePolicy
    ) -> bool:
        """Start the store-day's reconciliation; False if its id refuses a new run."""
        try:
            await workflow.start_child_workflow(
                Reconciliation.run,
                ReconciliationInput(
                    store_id=closed.store_id,
                    business_day=closed.business_day,
                    closed_at=closed.closed_at,
                    tolerance=input.tolerance,
                ),
                id=reconciliation_workflow_id(closed.store_id, closed.business_day),
                id_reuse_policy=reuse,
                # It may wait days for ops to resolve a difference: the night does not.
                parent_close_policy=ParentClosePolicy.ABANDON,
            )
        except WorkflowAlreadyStartedError:
            return False
        return True

    def _scheduled_day(self, input: SettlementInput) -> date:
        # A run started by the Schedule (a catch-up or backfill too) carries the time it was
        # scheduled for: the day it closes follows from that, not from when it runs.
        fired = workflow.info().typed_search_attributes.get(SCHEDULED_START) or workflow.now()
        region = RegionSchedule(
            name=input.region, time_zone=input.time_zone, close_at=input.close_at
        )
        with workflow.unsafe.sandbox_unrestricted():
            return region.business_day_closing_at(fired)

    async def _region_stores(self, region: str) -> list[str]:
        target = (
            StoreTarget(kind=TargetKind.ALL)
            if region == "all"
            else StoreTarget(kind=TargetKind.REGION, region=region)
        )
        listed = await workflow.execute_activity_method(
            PosActivities.list_stores, ListStoresInput(target=target), **POS_LISTING
        )
        stores: list[str] = listed.stores
        return stores

    async def _settle(self, store: str, day: date, input: SettlementInput) -> StoreSettlement:
        try:
            close_id = close_workflow_id(store, day)
        except BadIdPart as e:  # given by hand: refused, the other stores go on
            return StoreSettlement(store_id=store, close=f"Refused: {e}")
        try:
            closed = await workflow.execute_child_workflow(
                StoreDayClose.run,
                DayCloseInput(
                    store_id=store,
                    business_day=day,
                    settle_timeout=input.settle_timeout,
                    poll_every=input.poll_every,
                ),
                id=close_id,
                # A completed close is never redone; one that failed or was terminated is.
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                parent_close_policy=ParentClosePolicy.ABANDON,
            )
        except WorkflowAlreadyStartedError:
            earlier = await workflow.execute_activity_method(
                DayCloseActivities.close_result, close_id, **TEMPORAL_READ
            )
            if earlier is None:
                return StoreSettlement(store_id=store, close="ClosingElsewhere")
            closed = earlier
        # REJECT_DUPLICATE: a store-day is reconciled once by its nights (late sales aside).
        started = await self._reconcile(closed, input, WorkflowIDReusePolicy.REJECT_DUPLICATE)
        return StoreSettlement(
            store_id=store,
            close=closed.status,
            closed_at=closed.closed_at,
            reconciliation=reconciliation_workflow_id(store, day),
            reconciliation_started=started,
        )
