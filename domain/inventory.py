"""Inventory audit rules: a store's counts against Odoo's on-hand at the store's location.

Odoo owns stock on hand; a store's count is evidence that Odoo is wrong. Each counted product
gets one verdict: in step (nothing to do), a drift small enough to adjust in Odoo at once, a
drift whose value needs an approver first, or an exception for ops (too large a quantity, a
product Odoo does not know, a negative count). Negative stock is always reported as such:
retailflow never zeroes it, because it usually means sales rung up offline that Odoo has not
seen yet, and hiding it would hide those sales.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

ZERO = Decimal(0)


class AuditPolicy(BaseModel):
    """When a drift is adjusted at once, needs an approval, or goes to ops."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # A drift of more than this many units (either way) is an exception, never adjusted.
    quantity_threshold: Decimal = Field(default=Decimal(10), ge=0)
    # A drift worth more than this (units × Odoo's standard price) needs an approval.
    value_threshold: Decimal = Field(default=Decimal(500), ge=0)
    # Who may approve an adjustment (roles in the approver's signed assertion).
    approver_roles: tuple[str, ...] = ("store_manager", "inventory_manager")


class StoreCount(BaseModel):
    """One product as the store counted it (the POS platform's inventory)."""

    model_config = ConfigDict(frozen=True)

    sku: str
    product_id: int | None = None
    qty: Decimal
    counted_at: datetime | None = None


class OnHand(BaseModel):
    """One product's on-hand quantity in Odoo at the store's location."""

    model_config = ConfigDict(frozen=True)

    product_id: int
    sku: str = ""
    qty: Decimal
    standard_price: Decimal = ZERO


class Verdict(StrEnum):
    ADJUST = "adjust"
    NEEDS_APPROVAL = "needs_approval"
    EXCEPTION = "exception"


class Drift(BaseModel):
    """A counted product whose count differs from Odoo (or that cannot be compared)."""

    model_config = ConfigDict(frozen=True)

    sku: str
    product_id: int | None
    counted: Decimal
    on_hand: Decimal | None
    # counted − on_hand: what an adjustment adds in Odoo (negative: takes away).
    delta: Decimal
    value: Decimal
    verdict: Verdict
    reason: str
    negative: bool = False


def _fmt(qty: Decimal) -> str:
    return format(qty.normalize(), "f") if qty == qty.to_integral() else str(qty)


def judge(count: StoreCount, on_hand: OnHand | None, policy: AuditPolicy) -> Drift | None:
    """The verdict on one counted product (None: count and Odoo agree, nothing negative)."""
    if on_hand is None:
        return Drift(
            sku=count.sku,
            product_id=count.product_id,
            counted=count.qty,
            on_hand=None,
            delta=ZERO,
            value=ZERO,
            verdict=Verdict.EXCEPTION,
            reason=f"{count.sku}: counted at the store but unknown to Odoo",
            negative=count.qty < 0,
        )
    delta = count.qty - on_hand.qty
    value = abs(delta) * on_hand.standard_price
    negative = count.qty < 0 or on_hand.qty < 0
    where = f"{count.sku}: store counts {_fmt(count.qty)}, Odoo has {_fmt(on_hand.qty)}"
    base = {
        "sku": count.sku,
        "product_id": on_hand.product_id,
        "counted": count.qty,
        "on_hand": on_hand.qty,
        "delta": delta,
        "value": value,
        "negative": negative,
    }
    if count.qty < 0:
        # A store cannot hold less than nothing: sales beyond what it had (e.g. offline).
        return Drift(
            **base,
            verdict=Verdict.EXCEPTION,
            reason=f"{where}: negative count at the store (sales beyond stock?), not adjusted",
        )
    if delta == 0:
        if on_hand.qty < 0:
            return Drift(
                **base,
                verdict=Verdict.EXCEPTION,
                reason=f"{where}: negative stock in Odoo",
            )
        return None
    if abs(delta) > policy.quantity_threshold:
        return Drift(
            **base,
            verdict=Verdict.EXCEPTION,
            reason=f"{where}: drift {_fmt(delta)} beyond the threshold of "
            f"{_fmt(policy.quantity_threshold)} units",
        )
    negative_note = " (Odoo was negative)" if on_hand.qty < 0 else ""
    if value > policy.value_threshold:
        return Drift(
            **base,
            verdict=Verdict.NEEDS_APPROVAL,
            reason=f"{where}: drift {_fmt(delta)} worth {_fmt(value)}, above "
            f"{_fmt(policy.value_threshold)}: needs an approval{negative_note}",
        )
    return Drift(
        **base,
        verdict=Verdict.ADJUST,
        reason=f"{where}: adjusted by {_fmt(delta)}{negative_note}",
    )


def drifts(counts: list[StoreCount], on_hand: list[OnHand], policy: AuditPolicy) -> list[Drift]:
    """Every counted product that needs something, in the counts' order. Counts are matched
    to Odoo by product id, else by SKU; products the store did not count are not judged."""
    by_id = {h.product_id: h for h in on_hand}
    by_sku = {h.sku: h for h in on_hand if h.sku}
    out: list[Drift] = []
    for count in counts:
        found = by_id.get(count.product_id) if count.product_id is not None else None
        found = found or by_sku.get(count.sku)
        drift = judge(count, found, policy)
        if drift is not None:
            out.append(drift)
    return out


class AuditSummary(BaseModel):
    counted: int = 0
    adjusted: int = 0
    awaiting_approval: int = 0
    exceptions: int = 0
    negative: int = 0

    @property
    def drift_count(self) -> int:
        """Products whose count and Odoo disagree and are not yet fixed (the drift gauge)."""
        return self.awaiting_approval + self.exceptions


def summarise(counted: int, found: list[Drift]) -> AuditSummary:
    return AuditSummary(
        counted=counted,
        adjusted=sum(d.verdict is Verdict.ADJUST for d in found),
        awaiting_approval=sum(d.verdict is Verdict.NEEDS_APPROVAL for d in found),
        exceptions=sum(d.verdict is Verdict.EXCEPTION for d in found),
        negative=sum(d.negative for d in found),
    )
