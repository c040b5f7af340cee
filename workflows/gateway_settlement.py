"""GatewaySettlement: every gateway payout created in a window booked in Odoo, exactly once.

Workflow id `gateway-settlement:{from}:{to}` (UTC dates, both included). For each payout the
gateway created in the window: a paid or in-transit one gets one posted entry in the bank
journal (claimed by `PAYOUT:{payout_id}`, activities/odoo/payouts.py); a pending one is left for
the next run; a failed one that Odoo holds is reversed with Odoo's reversal wizard, once. The
transactions of a payout are summed where they are read (activities/settlement.py), so only the
sums travel through Temporal.

What ops see (`RetailStatus`): Settling, then Settled, or NeedsAttention when Odoo or the
posting rules refused a payout (its reason is in the result, and the run still books the
others). Data never fails the workflow. Query `progress` for the result so far.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.odoo.payouts import (
        BookPayoutInput,
        OdooPayoutActivities,
        ReversePayoutInput,
    )
    from activities.settlement import PayoutInfo, PayoutWindowInput, SettlementActivities
    from domain.ids import business_id
    from domain.settlement import BOOKABLE_STATUSES, PayoutTotals, from_minor
    from workflows.policies import GATEWAY, GATEWAY_SCAN, ODOO_WRITE
    from workflows.search_attributes import BUSINESS_DAY, show_status

SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
SETTLING = "Settling"
SETTLED = "Settled"
NEEDS_ATTENTION = "NeedsAttention"


def settlement_workflow_id(date_from: date, date_to: date) -> str:
    return business_id("gateway-settlement", date_from.isoformat(), date_to.isoformat())


class GatewaySettlementInput(BaseModel):
    # Payouts created from the start of date_from to the end of date_to, UTC. Left out (the
    # daily Schedule): the `lookback_days` before the day the run was scheduled for, and that
    # day (a day's payout is created at the midnight that ends it).
    date_from: date | None = None
    date_to: date | None = None
    lookback_days: int = 7


def window_of(input: GatewaySettlementInput, now: datetime) -> tuple[date, date]:
    to = input.date_to or now.astimezone(UTC).date()
    return input.date_from or to - timedelta(days=max(1, input.lookback_days)), to


class PayoutLine(BaseModel):
    payout_id: str
    status: str  # the gateway's: paid, in_transit, pending, failed
    currency: str
    amount: Decimal
    # booked | already booked | pending | refused | reversed | already reversed | not booked
    outcome: str
    transactions: int = 0
    charges: Decimal | None = None
    refunds: Decimal | None = None
    fees: Decimal | None = None
    net: Decimal | None = None
    move_id: int | None = None
    move_name: str | None = None
    reversed: bool = False
    reversal_name: str | None = None
    reason: str | None = None


class GatewaySettlementResult(BaseModel):
    date_from: date
    date_to: date
    status: str = SETTLING
    payouts: list[PayoutLine] = []

    def count(self, *outcomes: str) -> int:
        return sum(1 for p in self.payouts if p.outcome in outcomes)


def _refusal(e: ActivityError) -> str | None:
    """Why a non-retryable activity failure refused the payout, or None (raise it again)."""
    cause = e.cause
    if isinstance(cause, ApplicationError) and cause.non_retryable:
        return f"{cause.type}: {cause.message}"
    return None


@workflow.defn
class GatewaySettlement:
    def __init__(self) -> None:
        self._result: GatewaySettlementResult | None = None

    @workflow.run
    async def run(self, input: GatewaySettlementInput) -> GatewaySettlementResult:
        # A scheduled run (a catch-up too) covers the days before the time it was scheduled for.
        fired = workflow.info().typed_search_attributes.get(SCHEDULED_START) or workflow.now()
        date_from, date_to = window_of(input, fired)
        result = self._result = GatewaySettlementResult(date_from=date_from, date_to=date_to)
        if date_to < date_from:
            result.status = NEEDS_ATTENTION
            self._show(f"date_to {date_to} is before date_from {date_from}")
            return result
        workflow.upsert_search_attributes([BUSINESS_DAY.value_set(date_from.isoformat())])
        self._show()
        start = datetime.combine(date_from, time(), tzinfo=UTC)
        end = datetime.combine(date_to + timedelta(days=1), time(), tzinfo=UTC)
        listed = await workflow.execute_activity_method(
            SettlementActivities.list_payouts,
            PayoutWindowInput(created_gte=_unix(start), created_lt=_unix(end)),
            **GATEWAY,
        )
        for payout in sorted(listed.payouts, key=lambda p: (p.created, p.payout_id)):
            line = PayoutLine(
                payout_id=payout.payout_id,
                status=payout.status,
                currency=payout.currency,
                amount=from_minor(payout.amount, payout.currency),
                outcome=SETTLING.lower(),
            )
            result.payouts.append(line)
            if payout.status == "failed":
                await self._reverse(payout, line)
            elif payout.status in BOOKABLE_STATUSES:
                await self._book(payout, line)
            else:
                line.outcome = "pending"  # the next run books it
            self._show()
        result.status = NEEDS_ATTENTION if result.count("refused") else SETTLED
        self._show()
        return result

    @workflow.query
    def progress(self) -> GatewaySettlementResult | None:
        return self._result

    async def _book(self, payout: PayoutInfo, line: PayoutLine) -> None:
        try:
            totals: PayoutTotals = await workflow.execute_activity_method(
                SettlementActivities.payout_totals, payout, **GATEWAY_SCAN
            )
            _fill(line, totals)
            booked = await workflow.execute_activity_method(
                OdooPayoutActivities.book_payout, BookPayoutInput(totals=totals), **ODOO_WRITE
            )
        except ActivityError as e:
            reason = _refusal(e)
            if reason is None:
                raise
            line.outcome, line.reason = "refused", reason
            return
        line.move_id, line.move_name = booked.move_id, booked.move_name
        line.outcome = "already booked" if booked.already else "booked"

    async def _reverse(self, payout: PayoutInfo, line: PayoutLine) -> None:
        try:
            reversed_ = await workflow.execute_activity_method(
                OdooPayoutActivities.reverse_payout,
                ReversePayoutInput(
                    payout_id=payout.payout_id,
                    on=workflow.now().date(),
                    reason=f"gateway payout {payout.payout_id} failed: {payout.failure_code}",
                ),
                **ODOO_WRITE,
            )
        except ActivityError as e:
            reason = _refusal(e)
            if reason is None:
                raise
            line.outcome, line.reason = "refused", reason
            return
        if not reversed_.booked:
            line.outcome = "not booked"  # failed before it was ever booked: nothing to undo
            return
        line.move_id, line.move_name = reversed_.move_id, reversed_.move_name
        line.reversed, line.reversal_name = True, reversed_.reversal_name
        line.outcome = "already reversed" if reversed_.already else "reversed"

    def _show(self, detail: str = "") -> None:
        result = self._result
        assert result is not None
        facts = [
            f"{len(result.payouts)} payouts: {result.count('booked', 'already booked')} booked, "
            f"{result.count('reversed', 'already reversed')} reversed, "
            f"{result.count('pending')} pending, {result.count('refused')} refused"
        ]
        reasons = [f"{p.payout_id}: {p.reason}" for p in result.payouts if p.reason]
        show_status(
            result.status,
            detail or f"{result.date_from} to {result.date_to}",
            facts=facts,
            reasons=reasons,
        )


def _unix(at: datetime) -> int:
    return int(at.timestamp())


def _fill(line: PayoutLine, totals: PayoutTotals) -> None:
    line.transactions = totals.transactions
    line.charges = from_minor(totals.charges, totals.currency)
    line.refunds = from_minor(totals.refunds, totals.currency)
    line.fees = from_minor(totals.fees, totals.currency)
    line.net = from_minor(totals.net, totals.currency)
