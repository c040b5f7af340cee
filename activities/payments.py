"""PaymentActivities: card refunds through the gateway, never twice (idempotency keys)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel
from temporalio import activity

from activities.gateway_client import GatewayClient, from_minor


class PaymentStatusInput(BaseModel):
    payment_intent: str


class PaymentStatus(BaseModel):
    amount: Decimal
    refunded: Decimal
    currency: str

    @property
    def refundable(self) -> Decimal:
        return self.amount - self.refunded


class RefundPaymentInput(BaseModel):
    payment_intent: str
    amount: Decimal
    # `refund:{refund_id}:{n}`: a retry, or a replay after a lost response, gets the same refund
    # (within the gateway's 24 hours; after that, `find_by` finds it).
    idempotency_key: str
    metadata: dict[str, str] = {}
    # The metadata keys that identify this refund at the gateway (e.g. refund_id and payment
    # attempt): a live refund carrying the same values is this one, made earlier.
    find_by: list[str] = []


class RefundStateInput(BaseModel):
    gateway_refund_id: str


class RefundState(BaseModel):
    gateway_refund_id: str
    status: str
    failure_reason: str | None = None
    payment_intent: str
    amount: Decimal


class RefundPaymentResult(BaseModel):
    gateway_refund_id: str
    status: str
    amount: Decimal


class PaymentActivities:
    def __init__(self, gateway: GatewayClient) -> None:
        self.gateway = gateway

    @activity.defn
    def payment_status(self, input: PaymentStatusInput) -> PaymentStatus:
        p = self.gateway.payment(input.payment_intent)
        return PaymentStatus(
            amount=from_minor(p["amount"]),
            refunded=from_minor(p["amount_refunded"]),
            currency=str(p["currency"]).upper(),
        )

    @activity.defn
    def refund_payment(self, input: RefundPaymentInput) -> RefundPaymentResult:
        """Refund once: a refund already made for this (found by its metadata) is returned,
        otherwise one is made under the idempotency key."""
        r = None
        if input.find_by:
            wanted = {k: input.metadata[k] for k in input.find_by if k in input.metadata}
            r = self.gateway.find_refund(input.payment_intent, wanted)
        if r is None:
            r = self.gateway.refund(
                input.payment_intent, input.amount, input.idempotency_key, input.metadata
            )
        return RefundPaymentResult(
            gateway_refund_id=r["id"], status=r["status"], amount=from_minor(r["amount"])
        )

    @activity.defn
    def refund_state(self, input: RefundStateInput) -> RefundState:
        r = self.gateway.refund_state(input.gateway_refund_id)
        return RefundState(
            gateway_refund_id=r["id"],
            status=r["status"],
            failure_reason=r["failure_reason"],
            payment_intent=r["payment_intent"],
            amount=from_minor(r["amount"]),
        )
