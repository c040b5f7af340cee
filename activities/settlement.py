"""Gateway reads for settlement: the payouts of a window, and each payout's totals.

A payout may settle 100,000 balance transactions: they are read page by page with the stripe
SDK and summed in the activity (domain/settlement.py), so only the sums travel through
Temporal, never the transactions.
"""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity

from activities.gateway_client import GatewayClient
from domain.settlement import PayoutTotals


class PayoutWindowInput(BaseModel):
    # Unix seconds, [created_gte, created_lt).
    created_gte: int
    created_lt: int


class PayoutInfo(BaseModel):
    payout_id: str
    currency: str
    status: str
    amount: int
    created: int
    arrival_date: int
    failure_code: str | None = None


class PayoutsInWindow(BaseModel):
    payouts: list[PayoutInfo]


class SettlementActivities:
    def __init__(self, gateway: GatewayClient) -> None:
        self.gateway = gateway

    @activity.defn
    def list_payouts(self, input: PayoutWindowInput) -> PayoutsInWindow:
        """Every payout created in the window, with its current status."""
        found = self.gateway.payouts(input.created_gte, input.created_lt)
        return PayoutsInWindow(payouts=[PayoutInfo(**p) for p in found])

    @activity.defn
    def payout_totals(self, input: PayoutInfo) -> PayoutTotals:
        """The payout with the sums of the transactions it settles (heartbeats every page)."""

        def beat(count: int) -> None:
            if activity.in_activity():
                activity.heartbeat(count)

        return self.gateway.payout_totals(input.model_dump(), on_page=beat)
