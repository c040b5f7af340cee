"""CustomerSync: one long-lived workflow per POS customer, through which everything retailflow
writes about that customer into Odoo goes, one event at a time (docs/customers.md).

Workflow id `customer:{platform}:{pos_customer_id}`. Sales (after they are posted), refunds and
erasure requests arrive by signal-with-start (`sale`, `refund`, `erase`), so many sales of one
customer never race each other in Odoo. For each event one activity upserts the partner (one
per POS id, bound by an external id), fills its empty contact fields, records consent when it is
newer (by consent time) and applies the event's loyalty points once.

The POS customer id is an opaque key (it names this workflow and the Odoo binder, which stay
after an erasure); names, emails, phones travel only in payloads, which the codec encrypts.
After an erasure the workflow drops every personal field it held and continues as new, so the
running history holds none, even encrypted; later events of the customer carry none to Odoo.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.odoo.customers import (
        EraseCustomerInput,
        OdooCustomerActivities,
        SyncCustomerInput,
    )
    from domain.customer import ConsentRecord, Customer, newer_consent, points_to_reverse
    from domain.ids import business_id
    from workflows.policies import ODOO_WRITE

# Sales remembered for refunds and duplicates; the oldest are forgotten past this many.
MAX_REMEMBERED_SALES = 2_000


def customer_workflow_id(platform: str, pos_customer_id: str) -> str:
    return business_id("customer", platform, pos_customer_id)


class EventKind(StrEnum):
    SALE = "sale"
    REFUND = "refund"
    ERASE = "erase"


class CustomerEvent(BaseModel):
    kind: EventKind
    # Unique per event: `sale:<sale key>`, `refund:<refund id>`, `erase:<request id>`.
    key: str
    # A sale: the customer as the store gave it, who recorded it, the points it earns.
    customer: Customer | None = None
    store_id: str | None = None
    points: int = 0
    # A refund: its sale, the sale's total, the amount refunded now (points: what the sale
    # earns under the policy, used when this workflow does not remember the sale).
    sale_key: str | None = None
    sale_total: Decimal = Decimal(0)
    refund_amount: Decimal = Decimal(0)

    def without_personal_data(self) -> CustomerEvent:
        if self.customer is None:
            return self
        return self.model_copy(update={"customer": self.customer.without_personal_data()})


class SaleLoyalty(BaseModel):
    points: int
    refunded: Decimal = Decimal(0)
    reversed: int = 0


class CustomerCarry(BaseModel):
    """What a customer's workflow remembers across continue-as-new (no personal data)."""

    pending: list[CustomerEvent] = []
    sales: dict[str, SaleLoyalty] = {}
    refunds: list[str] = []
    consent: ConsentRecord | None = None
    erased: bool = False
    partner_id: int | None = None
    loyalty_points: int = 0
    events: int = 0
    duplicates: int = 0
    # Events Odoo refused (key -> why): kept for ops, never failing the customer's workflow.
    refused: dict[str, str] = {}
    runs: int = 1


class CustomerSyncInput(BaseModel):
    platform: str
    pos_customer_id: str
    carry: CustomerCarry = CustomerCarry()
    max_history_events: int = 5_000


class CustomerStatus(BaseModel):
    pos_customer_id: str
    partner_id: int | None
    loyalty_points: int
    consent: ConsentRecord | None
    erased: bool
    events: int
    pending: int
    duplicates: int
    refused: dict[str, str] = {}
    runs: int = 1


@workflow.defn
class CustomerSync:
    @workflow.init
    def __init__(self, input: CustomerSyncInput) -> None:
        # Signal-with-start delivers the first event before `run` starts: state is ready here.
        self._input = input
        self._c = input.carry

    @workflow.run
    async def run(self, input: CustomerSyncInput) -> CustomerStatus:
        while True:
            await workflow.wait_condition(lambda: bool(self._c.pending))
            event = self._c.pending.pop(0)
            erasing = event.kind is EventKind.ERASE
            try:
                await self._apply(event)
            except ActivityError as e:
                cause = e.cause
                if not isinstance(cause, ApplicationError) or not cause.non_retryable:
                    raise
                # Odoo refused it (a business error, not an outage): kept with why, the
                # customer's other events go on.
                self._c.refused[event.key] = f"{cause.type}: {cause.message}"
            self._c.events += 1
            workflow.set_current_details(self._details())
            if erasing or self._history_is_large():
                await workflow.wait_condition(workflow.all_handlers_finished)
                self._c.runs += 1
                # After an erasure the new run starts from a carry with no personal data.
                workflow.continue_as_new(input.model_copy(update={"carry": self._c}))

    # -- messages -------------------------------------------------------------------------------

    @workflow.signal
    def sale(self, event: CustomerEvent) -> None:
        self._take(event)

    @workflow.signal
    def refund(self, event: CustomerEvent) -> None:
        self._take(event)

    @workflow.signal
    def erase(self, event: CustomerEvent) -> None:
        self._take(event.model_copy(update={"kind": EventKind.ERASE}))
        self._c.erased = True
        # Nothing personal waits here any more, whatever arrived before the request.
        self._c.pending = [e.without_personal_data() for e in self._c.pending]

    @workflow.query
    def status(self) -> CustomerStatus:
        return CustomerStatus(
            pos_customer_id=self._input.pos_customer_id,
            partner_id=self._c.partner_id,
            loyalty_points=self._c.loyalty_points,
            consent=self._c.consent,
            erased=self._c.erased,
            events=self._c.events,
            pending=len(self._c.pending),
            duplicates=self._c.duplicates,
            refused=dict(self._c.refused),
            runs=self._c.runs,
        )

    def _take(self, event: CustomerEvent) -> None:
        if self._c.erased:
            event = event.without_personal_data()
        seen = event.key in {e.key for e in self._c.pending}
        if event.kind is EventKind.SALE and event.sale_key in self._c.sales:
            seen = True
        if event.kind is EventKind.REFUND and event.key in self._c.refunds:
            seen = True
        if seen:
            self._c.duplicates += 1
            return
        self._c.pending.append(event)

    # -- events ---------------------------------------------------------------------------------

    async def _apply(self, event: CustomerEvent) -> None:
        c = self._c
        if event.kind is EventKind.ERASE:
            erased = await workflow.execute_activity_method(
                OdooCustomerActivities.erase_customer,
                EraseCustomerInput(
                    platform=self._input.platform, pos_customer_id=self._input.pos_customer_id
                ),
                **ODOO_WRITE,
            )
            c.partner_id = erased.partner_id or c.partner_id
            return
        delta, consent = 0, None
        customer = event.customer or Customer(pos_customer_id=self._input.pos_customer_id)
        if event.kind is EventKind.SALE:
            assert event.sale_key is not None
            delta = event.points
            c.sales[event.sale_key] = SaleLoyalty(points=event.points)
            while len(c.sales) > MAX_REMEMBERED_SALES:
                del c.sales[next(iter(c.sales))]
            if customer.consent is not None:
                consent = ConsentRecord(
                    marketing=customer.consent.marketing,
                    at=customer.consent.at,
                    source=customer.consent.source,
                    recorded_by=event.store_id or "unknown",
                )
        else:
            sale = c.sales.get(event.sale_key or "") or SaleLoyalty(points=event.points)
            back = points_to_reverse(
                sale.points, event.sale_total, sale.refunded, event.refund_amount, sale.reversed
            )
            sale.refunded += event.refund_amount
            sale.reversed += back
            if event.sale_key:
                c.sales[event.sale_key] = sale
            c.refunds.append(event.key)
            del c.refunds[:-MAX_REMEMBERED_SALES]
            delta = -back
        if c.erased:
            customer = customer.without_personal_data()
        result = await workflow.execute_activity_method(
            OdooCustomerActivities.sync_customer,
            SyncCustomerInput(
                platform=self._input.platform,
                pos_customer_id=self._input.pos_customer_id,
                customer=customer,
                consent=newer_consent(c.consent, consent),
                loyalty_event=event.key if delta else None,
                loyalty_delta=delta,
                erased=c.erased,
            ),
            **ODOO_WRITE,
        )
        c.partner_id = result.partner_id
        c.consent = result.consent
        c.loyalty_points = result.loyalty_points

    def _history_is_large(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > self._input.max_history_events
        )

    def _details(self) -> str:
        s = self.status()
        erased = ", erased" if s.erased else ""
        return (
            f"partner {s.partner_id}, **{s.loyalty_points}** points, {s.events} events, "
            f"{s.pending} pending, {s.duplicates} duplicates absorbed{erased} (run {s.runs})"
        )
