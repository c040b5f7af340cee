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
    # `refund-{refund_id}-{n}`: a retry, or a replay after a lost response, gets the same refund.
    idempotency_key: str
    metadata: dict[str, str] = {}


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
        r = self.gateway.refund(
            input.payment_intent, input.amount, input.idempotency_key, input.metadata
        )
        return RefundPaymentResult(
            gateway_refund_id=r["id"], status=r["status"], amount=from_minor(r["amount"])
        )
