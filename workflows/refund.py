"""Refund: policy, four-eyes approval, gateway refund, Odoo entry, restock.

Workflow id `refund:{refund_id}` (`refund-{refund_id}` before ids were joined by `:`; still
looked up, see `refund_workflow_ids`): a second request for the same refund is absorbed. The
refund never exceeds what the sale paid: its draft entry in Odoo reserves its share, decided one
at a time per sale by the SaleRefunds workflow (workflows/sale_refunds.py). It is never paid
twice: one idempotency key `refund:{id}:{n}` per card tender, and before paying, a refund that
the gateway already holds for it (found by its metadata: keys expire after 24 hours) is used.
It is never lost once the gateway has paid it (shown as `PaidPostingPending` until Odoo has
the entry), and it always says who approved it.

Every dead end is visible: a request that cannot be done ends `Rejected` with its reasons; a
problem after the customer was paid (Odoo refuses the entry or someone deleted its draft, the
restock fails, the gateway fails the refund later) shows `NeedsAttention` with the reason and
waits for ops: the signal `retry` tries the step again, `resolved_by_hand` records that a
person did it. A gateway refund that fails after the workflow closed reopens it as a new run
(`report_gateway_refund_failed`, called by the gateway webhook endpoint).

Who requests and who decides is proven, not typed: the request carries a signed `request`
assertion of the requester, and the Updates `approve` / `reject` take
`{"assertion": "<jws>", "comment": "..."}`, an assertion of the approver for this refund and
action (domain/approval.py). The validator verifies it against the public keys in the refund's
input, at `workflow.now()`, so it replays: a forgery, an expired or misdirected assertion, a
role the policy does not allow, or the requester approving their own refund (same subject) is
refused, and nothing is recorded. The Web UI's signals `approve_from_ui` / `reject_from_ui`
take the same JSON (a refused one is noted in the audit trail). Refunds started before
approvals were signed (patch `signed-approvals`) keep the old shape `{"by", "role"}`, with
names compared in a normal form (`Ann`, ` ann ` are one person).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.service import RPCError, RPCStatusCode

with workflow.unsafe.imports_passed_through():
    from activities.customers import CustomerSyncActivities, LoyaltyReversalInput
    from activities.odoo.refunds import (
        LoadSaleInput,
        OdooRefundActivities,
        PostRefundInput,
        RedraftRefundInput,
        ReleaseRefundInput,
        Reservation,
        ReserveRefundInput,
    )
    from activities.odoo.stock import DecrementStockInput, OdooStockActivities
    from activities.payments import (
        PaymentActivities,
        PaymentStatusInput,
        RefundPaymentInput,
        RefundStateInput,
    )
    from activities.sale_refunds import SaleRefundsActivities
    from domain.approval import Action, ApprovalClaims, ApprovalTrust, AssertionRefused
    from domain.ids import business_id
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
        check_signed_decision,
        identity,
        parse_refund,
        refund_business_day,
    )
    from domain.sale import PaymentMethod, Sale
    from workers.metrics_names import SDK_DUPLICATES_COUNTER
    from workflows.inventory_publisher import stock_moved
    from workflows.policies import (
        GATEWAY,
        ODOO_WRITE,
        SALE_REFUNDS_ASK_AGAIN,
        SALE_REFUNDS_LOCK,
        TEMPORAL_READ,
    )
    from workflows.sale_refunds import ReservationRequest, ReserveAnswer
    from workflows.search_attributes import STORE_ID, show_status

# The first change that is not replay-compatible with runs started before it (the reservation
# through the sale's lock): runs started earlier keep their old steps.
SALE_LOCK_PATCH = "sale-refunds-lock"
# Requester and deciders proven by signed assertions; runs started earlier take names.
SIGNED_APPROVALS_PATCH = "signed-approvals"
# A refund of a sale that names a customer takes back the loyalty points it earned.
LOYALTY_REVERSAL_PATCH = "loyalty-reversal"


def refund_workflow_id(refund_id: str) -> str:
    return business_id("refund", refund_id)


def legacy_refund_workflow_id(refund_id: str) -> str:
    """The id refunds had before ids were joined by `:` (may still be running)."""
    return f"refund-{refund_id}"


def refund_workflow_ids(refund_id: str) -> list[str]:
    """Where a refund may live, newest form first: look up both before saying "no refund"."""
    return [refund_workflow_id(refund_id), legacy_refund_workflow_id(refund_id)]


def gateway_refund_key(refund_id: str, n: int, attempt: int = 1) -> str:
    """The idempotency key of card tender n's refund; a new attempt after the gateway failed
    the previous one (days later) needs a new key."""
    if attempt == 1:
        return business_id("refund", refund_id, str(n))
    return business_id("refund", refund_id, str(n), f"attempt{attempt}")


class RefundStatus(StrEnum):
    CHECKING = "Checking"
    AWAITING_APPROVAL = "AwaitingApproval"
    REFUNDING = "Refunding"
    PAID_POSTING_PENDING = "PaidPostingPending"
    NEEDS_ATTENTION = "NeedsAttention"
    REFUNDED = "Refunded"
    REJECTED = "Rejected"


class Approval(BaseModel):
    """A decision: `assertion` (a signed JWS naming the approver, their role, this refund and
    the action) and a comment. `by` / `role` are only taken on refunds started before
    approvals were signed."""

    assertion: str | None = None
    comment: str = ""
    by: str | None = None
    role: str | None = None


class OpsAction(BaseModel):
    """Who acts on a refund that needs attention (signals `retry`, `resolved_by_hand`)."""

    by: str
    comment: str = ""


class GatewayRefundFailed(BaseModel):
    """The gateway failed a refund it had made (`refund.failed` / `charge.refund.updated`)."""

    gateway_refund_id: str
    failure_reason: str = "unknown"


class AuditEvent(BaseModel):
    at: datetime
    who: str
    what: str
    comment: str = ""
    # The authenticated subject behind `who`, when a verified assertion named it.
    sub: str | None = None


class PaidTender(BaseModel):
    """One card refund made through the gateway, to follow up if the gateway fails it."""

    n: int
    attempt: int = 1
    gateway_refund_id: str
    payment_intent: str
    amount: Decimal


class RefundResult(BaseModel):
    refund_id: str | None
    status: RefundStatus
    reasons: list[str] = []
    requested_by: str | None = None
    decided_by: str | None = None
    # The authenticated subjects (from verified assertions) behind the two names above.
    requested_by_sub: str | None = None
    decided_by_sub: str | None = None
    amount: Decimal | None = None
    tenders: list[Tender] = []
    gateway_refunds: list[str] = []
    move_name: str | None = None
    picking_name: str | None = None
    audit: list[AuditEvent] = []
    paid: list[PaidTender] = []
    sale_key: str | None = None
    # Gateway refunds whose failure was followed up (the gateway reports one failure twice).
    followed_up: list[str] = []


class RefundInput(BaseModel):
    request: dict[str, Any]
    policy: RefundPolicy = RefundPolicy()
    # A new run after the gateway failed a refund of this closed one: its last result.
    follow_up: RefundResult | None = None
    # Public keys that sign assertions, and the requester's `request` assertion.
    trust: ApprovalTrust | None = None
    request_assertion: str | None = None


class _Ops(BaseModel):
    action: str
    by: str
    comment: str = ""


@workflow.defn
class Refund:
    def __init__(self) -> None:
        self._r = RefundResult(refund_id=None, status=RefundStatus.CHECKING)
        self._request: RefundRequest | None = None
        self._policy = RefundPolicy()
        self._decision: Decision | None = None
        self._ops: _Ops | None = None
        self._failures: list[GatewayRefundFailed] = []
        self._v2 = True
        self._signed = False
        self._trust = ApprovalTrust()
        self._reservation_answer: ReserveAnswer | None = None

    @workflow.run
    async def run(self, input: RefundInput) -> RefundResult:
        r, self._policy = self._r, input.policy
        self._signed = workflow.patched(SIGNED_APPROVALS_PATCH)
        self._trust = input.trust or ApprovalTrust()
        if input.follow_up is not None:
            self._r = r = input.follow_up.model_copy(deep=True)
            self._note("gateway", "reopened: the gateway failed a refund it had made")
            if r.sale_key and r.sale_key.count(":") == 2:
                workflow.upsert_search_attributes([STORE_ID.value_set(r.sale_key.split(":")[1])])
            await self._finish()
            return r
        raw_id = input.request.get("refund_id")
        r.refund_id = raw_id if isinstance(raw_id, str) else None
        raw = input.request
        if self._signed and r.refund_id is not None:
            try:
                claims = self._verify(input.request_assertion, r.refund_id, "request")
            except AssertionRefused as e:
                return self._reject([f"requester not verified: {e}"])
            # Who asked is the authenticated person, whatever name the request gave.
            raw = {**raw, "requested_by": claims.name}
            r.requested_by_sub = claims.sub
        try:
            request = self._request = parse_refund(raw)
        except RefundRejected as e:
            return self._reject([str(err) for err in e.errors])
        r.requested_by, r.sale_key = request.requested_by, request.sale_key
        workflow.upsert_search_attributes([STORE_ID.value_set(request.store_id)])
        self._note(request.requested_by, f"requested ({request.reason})", sub=r.requested_by_sub)
        self._set_status(RefundStatus.CHECKING)

        try:
            loaded = await workflow.execute_activity_method(
                OdooRefundActivities.load_sale_for_refund,
                LoadSaleInput(store_id=request.store_id, txn_id=request.txn_id),
                **ODOO_WRITE,
            )
        except ActivityError as e:
            return self._reject([_business_reason(e)])
        on = refund_business_day(workflow.now(), loaded.sale)
        reserved = await self._reserve(request, loaded.sale, on)
        if isinstance(reserved, str):
            return self._reject([reserved])
        reservation = reserved
        r.amount, r.tenders = reservation.value.amount, reservation.tenders

        # The gateway is the owner of card payments: it must still hold what we mean to refund.
        for t in self._card_tenders(reservation):
            assert t.reference is not None
            try:
                status = await workflow.execute_activity_method(
                    PaymentActivities.payment_status,
                    PaymentStatusInput(payment_intent=t.reference),
                    **GATEWAY,
                )
            except ActivityError as e:
                if not self._v2:
                    raise
                await self._release(reservation)
                return self._reject([f"card payment {t.reference}: {_business_reason(e)}"])
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
            while True:
                try:
                    await self._pay(
                        request.refund_id, request.sale_key, n, 1, t.reference, t.amount
                    )
                    break
                except ActivityError as e:
                    if not r.gateway_refunds:
                        await self._release(reservation)
                        return self._reject([_business_reason(e)])
                    if not self._v2:
                        raise  # part is paid already: never unwind; ops see the failing refund
                    action = await self._needs_attention(
                        f"card refund {n} of {t.amount} on {t.reference} refused "
                        f"({_business_reason(e)}) after part of the refund was paid"
                    )
                    if action == "resolved_by_hand":
                        break
        if r.gateway_refunds:
            self._set_status(RefundStatus.PAID_POSTING_PENDING)

        if self._v2:
            r.move_name = await self._post(reservation, request, on)
        else:
            r.move_name = await self._post_legacy(reservation, request)
        if request.restock and request.lines:
            r.picking_name = await self._restock(request)
        if loaded.sale.customer is not None and workflow.patched(LOYALTY_REVERSAL_PATCH):
            # Its customer's CustomerSync takes the points back, once (docs/customers.md).
            await workflow.execute_activity_method(
                CustomerSyncActivities.request_loyalty_reversal,
                LoyaltyReversalInput(
                    sale=loaded.sale, refund_id=request.refund_id, amount=reservation.value.amount
                ),
                **TEMPORAL_READ,
            )
        self._set_status(RefundStatus.REFUNDED)
        await self._finish()
        return r

    async def _finish(self) -> None:
        """Follow up any failure the gateway reported, also one arriving at the last moment."""
        while True:
            await self._follow_up_failures()
            await workflow.wait_condition(workflow.all_handlers_finished)
            if not self._failures:
                return

    # -- decisions --------------------------------------------------------------------------

    @workflow.update
    async def approve(self, approval: Approval) -> str:
        """`{"assertion": "<jws>", "comment": "..."}`: an approver's signed assertion."""
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
        """For the Web UI's "Send a signal": {"assertion": "<jws>", "comment": "..."}, the
        assertion from `retailflow identity assert --refund ID --action approve`."""
        self._decide_from_signal(True, approval)

    @workflow.signal
    def reject_from_ui(self, approval: Approval) -> None:
        self._decide_from_signal(False, approval)

    @workflow.query
    def show(self) -> RefundResult:
        return self._r

    @workflow.signal
    def reservation_decided(self, answer: ReserveAnswer) -> None:
        """The sale's SaleRefunds workflow answers this refund's reservation request."""
        if self._request is not None and answer.refund_id == self._request.refund_id:
            self._reservation_answer = answer

    @workflow.signal
    def requested_again(self) -> None:
        """The requester asked for this refund id again and was answered with this workflow:
        absorbed, counted only (SDK metrics endpoint; nothing recorded while replaying)."""
        workflow.metric_meter().create_counter(
            SDK_DUPLICATES_COUNTER, "Resubmissions absorbed without acting twice, by kind"
        ).add(1, {"kind": "refund"})

    @workflow.signal
    def retry(self, action: OpsAction) -> None:
        """For a refund that needs attention: try the failed step again."""
        self._act("retry", action)

    @workflow.signal
    def resolved_by_hand(self, action: OpsAction) -> None:
        """For a refund that needs attention: a person did the failed step (say how)."""
        self._act("resolved_by_hand", action)

    @workflow.signal
    def gateway_refund_failed(self, failure: GatewayRefundFailed) -> None:
        """The gateway says it failed one of this refund's card refunds (its webhook); checked
        with the gateway before anything is done."""
        self._failures.append(failure)
        self._note("gateway", f"refund {failure.gateway_refund_id} reported failed")

    def _act(self, what: str, action: OpsAction) -> None:
        if self._r.status is not RefundStatus.NEEDS_ATTENTION or self._ops is not None:
            self._note(action.by, f"{what} ignored: the refund is {self._r.status.value}")
            return
        if not identity(action.by):
            self._note("ops", f"{what} ignored: it must say who acts (by)")
            return
        self._ops = _Ops(action=what, by=action.by, comment=action.comment)

    def _check(self, approve: bool, approval: Approval) -> Decision:
        if self._r.status is not RefundStatus.AWAITING_APPROVAL or self._decision is not None:
            raise DecisionRefused(
                f"refund {self._r.refund_id} is {self._r.status.value}: it takes no decision"
            )
        assert self._request is not None
        if self._signed:
            return self._check_signed(approve, approval, self._request)
        try:
            decision = Decision(
                approve=approve, by=approval.by, role=approval.role, comment=approval.comment
            )
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
            )
            raise DecisionRefused(f"decision refused: {problems}") from None
        check_decision(self._policy, self._request, decision)
        return decision

    def _verify(self, token: str | None, refund_id: str, action: Action) -> ApprovalClaims:
        # cryptography imports its exception classes when it raises one (a bad signature):
        # that import must reach the real module, not a fresh copy inside the sandbox.
        with workflow.unsafe.imports_passed_through():
            return self._trust.verify(token, workflow.now(), refund_id, action)

    def _check_signed(self, approve: bool, approval: Approval, request: RefundRequest) -> Decision:
        """The verified decision of the person the assertion names, or DecisionRefused."""
        if approval.assertion is None:
            raise DecisionRefused(
                "decision refused: no assertion; who decides comes from a signed assertion "
                "(retailflow identity assert), by/role are not taken"
            )
        action: Action = "approve" if approve else "reject"
        try:
            claims = self._verify(approval.assertion, request.refund_id, action)
        except AssertionRefused as e:
            raise DecisionRefused(f"decision refused: {e}") from None
        check_signed_decision(self._policy, request.refund_id, self._r.requested_by_sub, claims)
        try:
            return Decision(
                approve=approve,
                by=claims.name,
                role=claims.role,
                comment=approval.comment,
                sub=claims.sub,
            )
        except ValidationError as e:
            problems = "; ".join(f"{err['loc'][0]}: {err['msg']}" for err in e.errors())
            raise DecisionRefused(f"decision refused: {problems}") from None

    def _decide(self, approve: bool, approval: Approval) -> str:
        if self._signed:
            try:  # verified again: the validator's answer is not kept, and replay needs it
                decision = self._check(approve, approval)
            except DecisionRefused as e:  # e.g. two decisions accepted at once: one wins
                raise ApplicationError(str(e), type="DecisionRefused", non_retryable=True) from None
        else:
            assert approval.by is not None and approval.role is not None
            decision = Decision(
                approve=approve, by=approval.by, role=approval.role, comment=approval.comment
            )
        self._decision = decision
        self._r.decided_by, self._r.decided_by_sub = decision.by, decision.sub
        verb = "approved" if approve else "rejected"
        self._note(decision.by, f"{verb} as {decision.role}", decision.comment, sub=decision.sub)
        return f"refund {self._r.refund_id} {verb} by {decision.by}"

    def _decide_from_signal(self, approve: bool, approval: Approval) -> None:
        try:
            self._check(approve, approval)
        except ValueError as e:
            who = approval.by if not self._signed and approval.by else "web-ui"
            self._note(who, f"decision refused: {e}", approval.comment)
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

    async def _reserve(self, request: RefundRequest, sale: Sale, on: date) -> Reservation | str:
        """The refund's share of the sale, or why it does not fit."""
        reserve = ReserveRefundInput(request=request, sale=sale, on=on)
        self._v2 = workflow.patched(SALE_LOCK_PATCH)
        if not self._v2:  # a run started before the sale's lock existed
            try:
                reservation: Reservation = await workflow.execute_activity_method(
                    OdooRefundActivities.reserve_refund, reserve, **ODOO_WRITE
                )
            except ActivityError as e:
                return _business_reason(e)
            return reservation
        ask = ReservationRequest(reserve=reserve, reply_to=workflow.info().workflow_id)
        while self._reservation_answer is None:
            await workflow.execute_activity_method(
                SaleRefundsActivities.request_reservation, ask, **SALE_REFUNDS_LOCK
            )
            try:
                await workflow.wait_condition(
                    lambda: self._reservation_answer is not None, timeout=SALE_REFUNDS_ASK_AGAIN
                )
            except TimeoutError:
                pass
        answer = self._reservation_answer
        if answer.reservation is None:
            return answer.refused or "the sale's refunds refused this one"
        return answer.reservation

    async def _release(self, reservation: Reservation) -> None:
        await workflow.execute_activity_method(
            OdooRefundActivities.release_refund,
            ReleaseRefundInput(move_id=reservation.move_id),
            **ODOO_WRITE,
        )

    async def _pay(
        self, refund_id: str, sale_key: str, n: int, attempt: int, intent: str, amount: Decimal
    ) -> None:
        metadata = {"refund_id": refund_id, "sale": sale_key}
        if attempt > 1:
            metadata["attempt"] = str(attempt)
        paid = await workflow.execute_activity_method(
            PaymentActivities.refund_payment,
            RefundPaymentInput(
                payment_intent=intent,
                amount=amount,
                idempotency_key=gateway_refund_key(refund_id, n, attempt),
                metadata=metadata,
                # A live refund of this payment for this refund id is this one, made earlier
                # (the key may have expired, or had its older form).
                find_by=["refund_id"] if self._v2 else [],
            ),
            **GATEWAY,
        )
        self._r.gateway_refunds.append(paid.gateway_refund_id)
        self._r.paid.append(
            PaidTender(
                n=n,
                attempt=attempt,
                gateway_refund_id=paid.gateway_refund_id,
                payment_intent=intent,
                amount=paid.amount,
            )
        )
        self._note("gateway", f"refunded {paid.amount} on {intent} ({paid.gateway_refund_id})")

    def _audit_record(self) -> dict[str, Any]:
        return {
            "audit": [e.model_dump(mode="json") for e in self._r.audit],
            "gateway_refunds": self._r.gateway_refunds,
            "decided_by": self._r.decided_by,
        }

    async def _post(self, reservation: Reservation, request: RefundRequest, on: date) -> str | None:
        """Post the entry. Once the money is given back it is never unwound: a refusal by Odoo,
        or a draft someone deleted, needs attention; `retry` posts again (writing the entry
        again if it was deleted), `resolved_by_hand` records that it was booked by hand."""
        while True:
            try:
                return await self._post_entry(reservation, request)
            except ActivityError as e:
                missing = _error_type(e) == "RefundEntryMissing"
                problem = (
                    "its draft entry was deleted in Odoo: retry writes it again and posts it"
                    if missing
                    else f"Odoo refused to post its entry ({_business_reason(e)}): retry posts it"
                )
                action = await self._needs_attention(
                    f"{self._r.amount} given back, not booked: {problem}, or resolved_by_hand "
                    "once it is booked by hand"
                )
                if action == "resolved_by_hand":
                    return None
                if missing:
                    reservation = await workflow.execute_activity_method(
                        OdooRefundActivities.redraft_refund,
                        RedraftRefundInput(request=request, reservation=reservation, on=on),
                        **ODOO_WRITE,
                    )
                self._set_status(RefundStatus.PAID_POSTING_PENDING, "posting again")

    async def _post_entry(self, reservation: Reservation, request: RefundRequest) -> str:
        """Post the refund's entry, with the audit trail; its name."""
        posted = await workflow.execute_activity_method(
            OdooRefundActivities.post_refund,
            PostRefundInput(
                move_id=reservation.move_id, refund_key=request.key, audit=self._audit_record()
            ),
            **ODOO_WRITE,
        )
        return posted.move_name

    async def _post_legacy(self, reservation: Reservation, request: RefundRequest) -> str:
        """How runs started before the sale's lock post (kept so that they replay)."""
        wait = timedelta(seconds=30)
        while True:
            try:
                return await self._post_entry(reservation, request)
            except ActivityError as e:
                reason = _business_reason(e)
                self._set_status(RefundStatus.PAID_POSTING_PENDING, f"Odoo refused: {reason}")
                await workflow.sleep(wait)
                wait = min(wait * 2, timedelta(hours=1))

    async def _restock(self, request: RefundRequest) -> str | None:
        """The returned goods back in stock; a failure after the refund was given needs
        attention instead of failing the refund."""
        assert request.lines is not None
        while True:
            try:
                stock = await workflow.execute_activity_method(
                    OdooStockActivities.decrement_stock,
                    DecrementStockInput(
                        origin=request.key,
                        lines=[StockLine(sku=ln.sku, qty=ln.qty) for ln in request.lines],
                        incoming=True,
                        # Back on the shelf of the store that took it back (docs/inventory.md).
                        store_id=request.store_id,
                    ),
                    **ODOO_WRITE,
                )
                await stock_moved(stock)
                return stock.picking_name
            except ActivityError as e:
                if not self._v2:
                    raise
                action = await self._needs_attention(
                    f"refund given and booked, but the returned goods are not back in stock "
                    f"({_business_reason(e)}): retry, or resolved_by_hand once restocked by hand"
                )
                if action == "resolved_by_hand":
                    return None

    async def _needs_attention(self, reason: str) -> str:
        """Show the problem and wait for ops: `retry` or `resolved_by_hand`."""
        self._ops = None
        self._r.reasons.append(reason)
        self._set_status(RefundStatus.NEEDS_ATTENTION, reason)
        self._note("retailflow", f"needs attention: {reason}")
        await workflow.wait_condition(lambda: self._ops is not None)
        ops = self._ops
        assert ops is not None
        self._ops = None
        self._note(ops.by, ops.action.replace("_", " "), ops.comment)
        return ops.action

    async def _follow_up_failures(self) -> None:
        """Card refunds the gateway failed after making them: the customer does not have that
        money. Checked with the gateway, then ops decide: retry pays again (a new refund),
        resolved_by_hand records that it was paid back another way."""
        while self._failures:
            notice = self._failures.pop(0)
            gid = notice.gateway_refund_id
            if gid in self._r.followed_up:
                continue
            if gid not in self._r.gateway_refunds:
                self._note("gateway", f"{gid} is not a refund of this one: ignored")
                continue
            state = await workflow.execute_activity_method(
                PaymentActivities.refund_state, RefundStateInput(gateway_refund_id=gid), **GATEWAY
            )
            if state.status != "failed":
                self._note("gateway", f"{gid} is {state.status}: nothing to follow up")
                continue
            self._r.followed_up.append(gid)
            paid = next((p for p in self._r.paid if p.gateway_refund_id == gid), None)
            if paid is None:  # a refund paid before `paid` was kept: the gateway knows
                paid = PaidTender(
                    n=self._r.gateway_refunds.index(gid) + 1,
                    gateway_refund_id=gid,
                    payment_intent=state.payment_intent,
                    amount=state.amount,
                )
            attempt = paid.attempt
            problem = (
                f"the gateway failed card refund {paid.gateway_refund_id} of {paid.amount} on "
                f"{paid.payment_intent} ({state.failure_reason or notice.failure_reason}): "
                "the customer does not have this money"
            )
            while True:
                action = await self._needs_attention(
                    f"{problem}; retry refunds it again, or resolved_by_hand once paid back "
                    "another way"
                )
                if action == "resolved_by_hand":
                    break
                attempt += 1
                self._set_status(RefundStatus.REFUNDING, f"paying again (attempt {attempt})")
                try:
                    assert self._r.refund_id is not None
                    await self._pay(
                        self._r.refund_id,
                        self._r.sale_key or "",
                        paid.n,
                        attempt,
                        paid.payment_intent,
                        paid.amount,
                    )
                    break
                except ActivityError as e:
                    problem = f"paying {paid.amount} again on {paid.payment_intent} failed " + (
                        f"({_business_reason(e)})"
                    )
            self._set_status(RefundStatus.REFUNDED)

    def _note(self, who: str, what: str, comment: str = "", sub: str | None = None) -> None:
        self._r.audit.append(
            AuditEvent(at=workflow.now(), who=who, what=what, comment=comment, sub=sub)
        )

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
    if isinstance(cause, ApplicationError):
        return f"{cause.type}: {cause.message}"
    return f"{type(cause).__name__ if cause else 'ActivityError'}: {cause or e}"


def _error_type(e: ActivityError) -> str | None:
    return e.cause.type if isinstance(e.cause, ApplicationError) else None


async def report_gateway_refund_failed(
    client: Client, task_queue: str, event: dict[str, Any]
) -> str:
    """For the gateway's webhook endpoint, once it has verified the event's signature: a
    `refund.failed` or `charge.refund.updated` event of a failed retailflow refund reaches its
    Refund workflow: signalled while it runs, reopened as a new run (from its last result) once
    it is closed. Anything else is ignored. Returns what was done, for the endpoint's log."""
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if (
        event.get("type") not in ("refund.failed", "charge.refund.updated")
        or not isinstance(obj, dict)
        or obj.get("object") != "refund"
        or obj.get("status") != "failed"
    ):
        return "ignored: not a failed refund"
    metadata = obj.get("metadata")
    refund_id = metadata.get("refund_id") if isinstance(metadata, dict) else None
    if not isinstance(refund_id, str) or not refund_id or not isinstance(obj.get("id"), str):
        return "ignored: not a retailflow refund"
    notice = GatewayRefundFailed(
        gateway_refund_id=obj["id"], failure_reason=str(obj.get("failure_reason") or "unknown")
    )
    for wid in refund_workflow_ids(refund_id):
        handle = client.get_workflow_handle_for(Refund.run, wid)
        try:
            described = await handle.describe()
        except RPCError as e:
            if e.status is RPCStatusCode.NOT_FOUND:
                continue
            raise
        if described.status is WorkflowExecutionStatus.RUNNING:
            await handle.signal(Refund.gateway_refund_failed, notice)
            return f"signalled {wid}"
        if described.status is not WorkflowExecutionStatus.COMPLETED:
            return f"{wid} ended {described.status.name if described.status else '?'}: not reopened"
        previous = await handle.result()
        await client.start_workflow(
            Refund.run,
            RefundInput(request={"refund_id": refund_id}, follow_up=previous),
            id=wid,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal="gateway_refund_failed",
            start_signal_args=[notice],
            static_summary=f"Refund {refund_id}: the gateway failed {notice.gateway_refund_id}",
        )
        return f"reopened {wid}"
    return f"ignored: no refund {refund_id}"
