"""Refund: policy, four-eyes approval, gateway refund, Odoo entry, restock.

Workflow id `refund-{refund_id}`: a second request for the same refund is absorbed. The refund
never exceeds what the sale paid (its draft entry in Odoo reserves its share, see
`OdooRefundActivities.reserve_refund`), is never paid twice (idempotency key `refund-{id}-{n}` per
card tender), is never lost once the gateway has paid it (the Odoo posting then retries until
it succeeds, shown as `PaidPostingPending`), and always says who approved it.

Ops decide with the Updates `approve` / `reject` (validated: an approver role, not the
requester, and only while the request is open), or from the Web UI with the signals
`approve_from_ui` / `reject_from_ui` (same checks; a refused one is noted in the audit trail).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.odoo.refunds import (
        LoadSaleInput,
        OdooRefundActivities,
        PostRefundInput,
        ReleaseRefundInput,
        Reservation,
        ReserveRefundInput,
    )
    from activities.odoo.stock import DecrementStockInput, OdooStockActivities
    from activities.payments import PaymentActivities, PaymentStatusInput, RefundPaymentInput
    from domain.posting import StockLine
    from domain.refund import (
        Decision,
        DecisionRefused,
        RefundPolicy,
        RefundRejected,
        RefundRequest,
        Tender,
        approval_needed,
        check_decision,
        parse_refund,
    )
    from domain.sale import PaymentMethod
    from workflows.policies import GATEWAY, ODOO_WRITE
    from workflows.search_attributes import STORE_ID, show_status


def refund_workflow_id(refund_id: str) -> str:
    return f"refund-{refund_id}"


class RefundStatus(StrEnum):
    CHECKING = "Checking"
    AWAITING_APPROVAL = "AwaitingApproval"
    REFUNDING = "Refunding"
    PAID_POSTING_PENDING = "PaidPostingPending"
    REFUNDED = "Refunded"
    REJECTED = "Rejected"


class RefundInput(BaseModel):
    request: dict[str, Any]
    policy: RefundPolicy = RefundPolicy()


class Approval(BaseModel):
    by: str
    role: str
    comment: str = ""


class AuditEvent(BaseModel):
    at: datetime
    who: str
    what: str
    comment: str = ""


class RefundResult(BaseModel):
    refund_id: str | None
    status: RefundStatus
    reasons: list[str] = []
    requested_by: str | None = None
    decided_by: str | None = None
    amount: Decimal | None = None
    tenders: list[Tender] = []
    gateway_refunds: list[str] = []
    move_name: str | None = None
    picking_name: str | None = None
    audit: list[AuditEvent] = []


@workflow.defn
class Refund:
    def __init__(self) -> None:
        self._r = RefundResult(refund_id=None, status=RefundStatus.CHECKING)
        self._request: RefundRequest | None = None
        self._policy = RefundPolicy()
        self._decision: Decision | None = None

    @workflow.run
    async def run(self, input: RefundInput) -> RefundResult:
        r, self._policy = self._r, input.policy
        raw_id = input.request.get("refund_id")
        r.refund_id = raw_id if isinstance(raw_id, str) else None
        try:
            request = self._request = parse_refund(input.request)
        except RefundRejected as e:
            return self._reject([str(err) for err in e.errors])
        r.requested_by = request.requested_by
        workflow.upsert_search_attributes([STORE_ID.value_set(request.store_id)])
        self._note(request.requested_by, f"requested ({request.reason})")
        self._set_status(RefundStatus.CHECKING)

        try:
            loaded = await workflow.execute_activity_method(
                OdooRefundActivities.load_sale_for_refund,
                LoadSaleInput(store_id=request.store_id, txn_id=request.txn_id),
                **ODOO_WRITE,
            )
            reservation = await workflow.execute_activity_method(
                OdooRefundActivities.reserve_refund,
                ReserveRefundInput(request=request, sale=loaded.sale, on=workflow.now().date()),
                **ODOO_WRITE,
            )
        except ActivityError as e:
            return self._reject([_business_reason(e)])
        r.amount, r.tenders = reservation.value.amount, reservation.tenders

        # The gateway is the owner of card payments: it must still hold what we mean to refund.
        for t in self._card_tenders(reservation):
            assert t.reference is not None
            status = await workflow.execute_activity_method(
                PaymentActivities.payment_status,
                PaymentStatusInput(payment_intent=t.reference),
                **GATEWAY,
            )
            if status.refundable < t.amount:
                await self._release(reservation)
                return self._reject(
                    [
                        f"card payment {t.reference}: {t.amount} to refund, the gateway has "
                        f"{status.refundable} left (paid {status.amount}, "
                        f"refunded {status.refunded})"
                    ]
                )

        why = approval_needed(self._policy, request, reservation.value.amount)
        if why is None:
            self._note("policy", f"approved by policy: {reservation.value.amount} within limits")
        else:
            self._set_status(RefundStatus.AWAITING_APPROVAL, why)
            if not await self._await_decision():
                await self._release(reservation)
                return self._reject([self._r.reasons[-1]])
            assert self._decision is not None
            if not self._decision.approve:
                await self._release(reservation)
                d = self._decision
                return self._reject([f"rejected by {d.by} ({d.role}): {d.comment}".rstrip(": ")])

        self._set_status(RefundStatus.REFUNDING)
        for n, t in enumerate(self._card_tenders(reservation), start=1):
            assert t.reference is not None
            try:
                paid = await workflow.execute_activity_method(
                    PaymentActivities.refund_payment,
                    RefundPaymentInput(
                        payment_intent=t.reference,
                        amount=t.amount,
                        idempotency_key=f"refund-{request.refund_id}-{n}",
                        metadata={"refund_id": request.refund_id, "sale": request.sale_key},
                    ),
                    **GATEWAY,
                )
            except ActivityError as e:
                if r.gateway_refunds:
                    raise  # part is paid already: never unwind; ops see the failing refund
                await self._release(reservation)
                return self._reject([_business_reason(e)])
            r.gateway_refunds.append(paid.gateway_refund_id)
            self._note(
                "gateway", f"refunded {paid.amount} on {t.reference} ({paid.gateway_refund_id})"
            )
        if r.gateway_refunds:
            self._set_status(RefundStatus.PAID_POSTING_PENDING)

        posted = await self._post(reservation, request)
        r.move_name = posted
        if request.restock and request.lines:
            stock = await workflow.execute_activity_method(
                OdooStockActivities.decrement_stock,
                DecrementStockInput(
                    origin=request.key,
                    lines=[StockLine(sku=ln.sku, qty=ln.qty) for ln in request.lines],
                    incoming=True,
                ),
                **ODOO_WRITE,
            )
            r.picking_name = stock.picking_name
        self._set_status(RefundStatus.REFUNDED)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return r

    # -- decisions --------------------------------------------------------------------------

    @workflow.update
    async def approve(self, approval: Approval) -> str:
        return self._decide(True, approval)

    @approve.validator
    def _validate_approve(self, approval: Approval) -> None:
        self._check(True, approval)

    @workflow.update
    async def reject(self, approval: Approval) -> str:
        return self._decide(False, approval)

    @reject.validator
    def _validate_reject(self, approval: Approval) -> None:
        self._check(False, approval)

    @workflow.signal
    def approve_from_ui(self, approval: Approval) -> None:
        """For the Web UI's "Send a signal": {"by": "...", "role": "...", "comment": "..."}."""
        self._decide_from_signal(True, approval)

    @workflow.signal
    def reject_from_ui(self, approval: Approval) -> None:
        self._decide_from_signal(False, approval)

    @workflow.query
    def show(self) -> RefundResult:
        return self._r

    def _check(self, approve: bool, approval: Approval) -> None:
        if self._r.status is not RefundStatus.AWAITING_APPROVAL or self._decision is not None:
            raise DecisionRefused(
                f"refund {self._r.refund_id} is {self._r.status.value}: it takes no decision"
            )
        assert self._request is not None
        check_decision(
            self._policy,
            self._request,
            Decision(approve=approve, by=approval.by, role=approval.role, comment=approval.comment),
        )

    def _decide(self, approve: bool, approval: Approval) -> str:
        self._decision = Decision(
            approve=approve, by=approval.by, role=approval.role, comment=approval.comment
        )
        self._r.decided_by = approval.by
        verb = "approved" if approve else "rejected"
        self._note(approval.by, f"{verb} as {approval.role}", approval.comment)
        return f"refund {self._r.refund_id} {verb} by {approval.by}"

    def _decide_from_signal(self, approve: bool, approval: Approval) -> None:
        try:
            self._check(approve, approval)
        except ValueError as e:
            self._note(approval.by, f"decision refused: {e}", approval.comment)
            return
        self._decide(approve, approval)

    async def _await_decision(self) -> bool:
        """Wait for a decision: a reminder after the first timeout, expiry after the second."""
        p = self._policy
        try:
            await workflow.wait_condition(
                lambda: self._decision is not None, timeout=p.remind_after
            )
            return True
        except TimeoutError:
            self._note("policy", f"reminder: no decision after {p.remind_after}")
            self._set_status(RefundStatus.AWAITING_APPROVAL, "reminder sent: still waiting")
        try:
            await workflow.wait_condition(
                lambda: self._decision is not None, timeout=p.expire_after - p.remind_after
            )
            return True
        except TimeoutError:
            self._r.reasons.append(f"expired: no decision within {p.expire_after}")
            self._note("policy", "expired")
            return False

    # -- steps ------------------------------------------------------------------------------

    def _card_tenders(self, reservation: Reservation) -> list[Tender]:
        return [t for t in reservation.tenders if t.method is PaymentMethod.CARD and t.reference]

    async def _release(self, reservation: Reservation) -> None:
        await workflow.execute_activity_method(
            OdooRefundActivities.release_refund,
            ReleaseRefundInput(move_id=reservation.move_id),
            **ODOO_WRITE,
        )

    async def _post(self, reservation: Reservation, request: RefundRequest) -> str:
        """Post the entry. Once the gateway has paid, a refusal by Odoo is retried, never
        unwound: the refund shows as PaidPostingPending until Odoo takes it."""
        audit = {
            "audit": [e.model_dump(mode="json") for e in self._r.audit],
            "gateway_refunds": self._r.gateway_refunds,
            "decided_by": self._r.decided_by,
        }
        wait = timedelta(seconds=30)
        while True:
            try:
                posted = await workflow.execute_activity_method(
                    OdooRefundActivities.post_refund,
                    PostRefundInput(
                        move_id=reservation.move_id, refund_key=request.key, audit=audit
                    ),
                    **ODOO_WRITE,
                )
                return posted.move_name
            except ActivityError as e:
                reason = _business_reason(e)
                self._set_status(RefundStatus.PAID_POSTING_PENDING, f"Odoo refused: {reason}")
                await workflow.sleep(wait)
                wait = min(wait * 2, timedelta(hours=1))

    def _note(self, who: str, what: str, comment: str = "") -> None:
        self._r.audit.append(AuditEvent(at=workflow.now(), who=who, what=what, comment=comment))

    def _set_status(self, status: RefundStatus, detail: str = "") -> None:
        self._r.status = status
        facts = []
        if self._r.amount is not None:
            facts.append(f"amount {self._r.amount}, requested by {self._r.requested_by}")
        show_status(status.value, detail, facts, self._r.reasons)

    def _reject(self, reasons: list[str]) -> RefundResult:
        self._r.reasons = reasons
        self._set_status(RefundStatus.REJECTED, "; ".join(reasons))
        return self._r


def _business_reason(e: ActivityError) -> str:
    cause = e.cause
    if isinstance(cause, ApplicationError) and cause.non_retryable:
        return f"{cause.type}: {cause.message}"
    raise e
