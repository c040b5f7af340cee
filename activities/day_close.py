"""Activities that talk to Temporal itself for the store-day close: close a day's ledgers, and
count what of the day is still being posted (from visibility, by the search attributes every
sale and ledger workflow carries: StoreId, BusinessDay, RetailStatus)."""

from __future__ import annotations

from datetime import date, datetime
from typing import TypeVar

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.recon import OdooDayTotals
from domain.reconciliation import ReconReport
from workflows.store_ledger import ledger_workflow_id, legacy_ledger_workflow_id

R = TypeVar("R", bound=BaseModel)


class StoreDay(BaseModel):
    store_id: str
    business_day: date


class OpenWork(BaseModel):
    """What of a store-day is not settled yet, and what sits in the exception inbox."""

    # Ledgers still booking (a ledger parked on stock it could not move is an exception).
    ledgers: int = 0
    # Sales whose own workflow is still posting, or has not said its day yet.
    posting: int = 0
    # Sales and ledgers waiting for ops (NeedsAttention), or that ended Rejected or Failed.
    exceptions: int = 0

    @property
    def settled(self) -> bool:
        return self.ledgers == 0 and self.posting == 0


class DayCloseResult(BaseModel):
    store_id: str
    business_day: date
    # When the day was closed: a sale booked for it afterwards is a late sale.
    closed_at: datetime
    # "Closed", or "ClosedWithOpenWork" when sales were still posting at the settle timeout.
    status: str
    ledgers_closed: list[str] = []
    still_open: OpenWork = OpenWork()
    # Sales and ledgers of the day in the exception inbox when it closed.
    exceptions: int = 0
    # What Odoo books for the day when it closed: sales, per tender.
    odoo: OdooDayTotals | None = None


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class DayCloseActivities:
    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn
    async def close_ledgers(self, day: StoreDay) -> list[str]:
        """Signal `close` to the store-day's running ledgers; the ids of those signalled."""
        closed = []
        for workflow_id in (
            ledger_workflow_id(day.store_id, day.business_day),
            legacy_ledger_workflow_id(day.store_id, day.business_day),
        ):
            handle = self._client.get_workflow_handle(workflow_id)
            try:
                desc = await handle.describe()
                if desc.status != WorkflowExecutionStatus.RUNNING:
                    continue
                await handle.signal("close")
            except RPCError as e:
                if e.status == RPCStatusCode.NOT_FOUND:  # no ledger, or it just ended
                    continue
                raise
            closed.append(workflow_id)
        return closed

    @activity.defn
    async def close_result(self, workflow_id: str) -> DayCloseResult | None:
        """The result of a store-day close that already ran; None while it still runs."""
        return await self._result_of(workflow_id, DayCloseResult)

    @activity.defn
    async def last_reconciliation(self, workflow_id: str) -> ReconReport | None:
        """The report of a store-day's last reconciliation if it has ended; None if it never
        ran or still waits for ops."""
        return await self._result_of(workflow_id, ReconReport)

    async def _result_of(self, workflow_id: str, kind: type[R]) -> R | None:
        handle = self._client.get_workflow_handle(workflow_id, result_type=kind)
        try:
            desc = await handle.describe()
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        if desc.status != WorkflowExecutionStatus.COMPLETED:
            return None  # still running; or failed, terminated, cancelled: no result
        result: R = await handle.result()
        return result

    @activity.defn
    async def open_work(self, day: StoreDay) -> OpenWork:
        """Counts from visibility (a second or so behind the workflows themselves)."""
        of_day = (
            f"StoreId = {_quote(day.store_id)} AND BusinessDay = "
            f"{_quote(day.business_day.isoformat())}"
        )
        running = 'ExecutionStatus = "Running"'

        async def count(query: str) -> int:
            return (await self._client.count_workflows(query)).count

        ledgers = await count(
            f'WorkflowType = "StoreLedger" AND {of_day} AND {running} AND RetailStatus = "Open"'
        )
        posting = await count(
            f'WorkflowType = "SalePosting" AND {of_day} AND {running} AND RetailStatus = "Posting"'
        )
        # A sale workflow that has not run its first task yet has no BusinessDay: it may be
        # this day's, so it counts as still posting.
        unsaid = await count(
            f'WorkflowType = "SalePosting" AND StoreId = {_quote(day.store_id)} '
            f"AND BusinessDay IS NULL AND {running}"
        )
        exceptions = await count(
            f'{of_day} AND (WorkflowType = "SalePosting" OR WorkflowType = "StoreLedger") '
            'AND RetailStatus IN ("NeedsAttention", "Rejected", "Failed")'
        )
        return OpenWork(ledgers=ledgers, posting=posting + unsaid, exceptions=exceptions)
