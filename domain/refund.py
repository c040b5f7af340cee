"""Refunds: the request, what a sale can still refund, and the approval policy.

A refund must never exceed what was paid, per tender, counting every earlier refund; it goes
back to the tenders of the sale, card first (through the gateway), then gift card, then cash.
Small refunds pass by policy; larger ones need a person with an approver role who is not the
requester (four eyes).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from domain.approval import ApprovalClaims
from domain.limits import MAX_AMOUNT, MAX_QTY
from domain.money import ZERO, cents, has_cent_precision
from domain.sale import Identifier, PaymentMethod, Sale, sale_key
from domain.validation import FieldError, InvalidInput, field_errors, load_settings_file

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


def identity(name: str) -> str:
    """The form in which two names of people are compared: `Ann`, ` ann ` and `ＡＮＮ` are one
    person (NFKC, case folded, invisible format characters and surrounding space removed).
    Until identities are authenticated, this is what keeps four eyes from being two."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    visible = "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
    return unicodedata.normalize("NFKC", visible).strip()


def _person(v: str) -> str:
    if not identity(v):
        raise ValueError("must name a person (it is empty once spaces and invisible marks go)")
    return v


PersonName = Annotated[Name, AfterValidator(_person)]


class RefundRejected(InvalidInput):
    """A refund request refused, with the reasons (and the numbers)."""


class RefundLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: Name
    qty: Decimal = Field(gt=0, lt=MAX_QTY, decimal_places=3)


class RefundRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    refund_id: Identifier
    store_id: Identifier
    txn_id: Identifier
    lines: list[RefundLine] | None = None
    amount: Decimal | None = Field(default=None, gt=0, lt=MAX_AMOUNT)
    reason: Name
    requested_by: PersonName
    restock: bool = False

    @field_validator("amount")
    @classmethod
    def _cents(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and not has_cent_precision(v):
            raise ValueError("must have at most 2 decimal places")
        return v

    @model_validator(mode="after")
    def _lines_or_amount(self) -> RefundRequest:
        if (self.lines is None) == (self.amount is None):
            raise ValueError("give either lines (sku, qty) or an amount, not both or neither")
        if self.lines is not None:
            if not self.lines:
                raise ValueError("lines: at least one line is needed")
            dups = sorted(s for s, n in Counter(ln.sku for ln in self.lines).items() if n > 1)
            if dups:
                raise ValueError(f"lines: SKU {', '.join(dups)} appears more than once")
        if self.restock and self.lines is None:
            raise ValueError("restock needs lines: say which items come back")
        return self

    @property
    def key(self) -> str:
        return f"REFUND:{self.refund_id}"

    @property
    def sale_key(self) -> str:
        return sale_key(self.store_id, self.txn_id)


def parse_refund(raw: dict[str, Any]) -> RefundRequest:
    try:
        return RefundRequest.model_validate(raw)
    except ValidationError as e:
        raise RefundRejected(field_errors(e, "refund")) from e


class Tender(BaseModel):
    """Money on one tender of a sale: what was paid, or what a refund gives back on it."""

    model_config = ConfigDict(frozen=True)

    method: PaymentMethod
    reference: str | None = None
    amount: Decimal

    @property
    def slot(self) -> tuple[PaymentMethod, str | None]:
        return self.method, self.reference


class PriorRefund(BaseModel):
    refund_id: str
    tenders: list[Tender]
    lines: list[RefundLine] = []


# Card first: it goes back through the gateway to where it came from; cash last.
_ORDER = {PaymentMethod.CARD: 0, PaymentMethod.GIFT_CARD: 1, PaymentMethod.CASH: 2}


def paid_tenders(sale: Sale) -> list[Tender]:
    totals: dict[tuple[PaymentMethod, str | None], Decimal] = {}
    for p in sale.payments:
        totals[(p.method, p.reference)] = totals.get((p.method, p.reference), ZERO) + p.amount
    return [Tender(method=m, reference=r, amount=a) for (m, r), a in totals.items()]


def refundable_tenders(sale: Sale, prior: list[PriorRefund]) -> list[Tender]:
    """What each tender of the sale can still give back, card first."""
    refunded: dict[tuple[PaymentMethod, str | None], Decimal] = {}
    for r in prior:
        for t in r.tenders:
            refunded[t.slot] = refunded.get(t.slot, ZERO) + t.amount
    left = [
        Tender(method=t.method, reference=t.reference, amount=t.amount - refunded.get(t.slot, ZERO))
        for t in paid_tenders(sale)
    ]
    return sorted((t for t in left if t.amount > 0), key=lambda t: _ORDER[t.method])


def refundable_amount(sale: Sale, prior: list[PriorRefund]) -> Decimal:
    return sum((t.amount for t in refundable_tenders(sale, prior)), ZERO)


class RefundValue(BaseModel):
    """What a refund gives back: its amount, split into net and tax per rate (for the entry)."""

    amount: Decimal
    net: Decimal
    tax_by_rate: dict[Decimal, Decimal]


def value_of_lines(sale: Sale, lines: list[RefundLine], prior: list[PriorRefund]) -> RefundValue:
    """Returning these items is worth their net and tax, pro rata per unit; quantities checked."""
    returned: dict[str, Decimal] = {}
    for r in prior:
        for ln in r.lines:
            returned[ln.sku] = returned.get(ln.sku, Decimal(0)) + ln.qty
    errors: list[FieldError] = []
    net, taxes = ZERO, dict[Decimal, Decimal]()
    for i, req in enumerate(lines):
        sold = [ln for ln in sale.lines if ln.sku == req.sku]
        sold_qty = sum((ln.qty for ln in sold), Decimal(0))
        left = sold_qty - returned.get(req.sku, Decimal(0))
        if not sold:
            errors.append(
                FieldError(field=f"lines[{i}].sku", message=f"{req.sku} is not in sale {sale.key}")
            )
        elif req.qty > left:
            errors.append(
                FieldError(
                    field=f"lines[{i}].qty",
                    message=f"{req.qty} of {req.sku} asked back, {left} left to return "
                    f"(sold {sold_qty}, returned {sold_qty - left})",
                )
            )
        else:
            share = req.qty / sold_qty
            net += cents(sum((ln.net for ln in sold), ZERO) * share)
            for line in sold:
                taxes[line.tax_rate] = taxes.get(line.tax_rate, ZERO) + line.tax * share
    if errors:
        raise RefundRejected(errors)
    tax_by_rate = {rate: cents(t) for rate, t in taxes.items() if cents(t)}
    return RefundValue(
        amount=net + sum(tax_by_rate.values(), ZERO), net=net, tax_by_rate=tax_by_rate
    )


def value_of_amount(sale: Sale, amount: Decimal) -> RefundValue:
    """An amount refund, split into net and tax in the sale's own proportions."""
    taxes: dict[Decimal, Decimal] = {}
    for ln in sale.lines:
        taxes[ln.tax_rate] = taxes.get(ln.tax_rate, ZERO) + ln.tax
    tax_by_rate = {
        rate: cents(amount * t / sale.total) for rate, t in taxes.items() if t and sale.total
    }
    tax_by_rate = {rate: t for rate, t in tax_by_rate.items() if t}
    return RefundValue(
        amount=amount, net=amount - sum(tax_by_rate.values(), ZERO), tax_by_rate=tax_by_rate
    )


def value_of(request: RefundRequest, sale: Sale, prior: list[PriorRefund]) -> RefundValue:
    if request.lines is not None:
        return value_of_lines(sale, request.lines, prior)
    assert request.amount is not None
    return value_of_amount(sale, request.amount)


def amount_for_lines(sale: Sale, lines: list[RefundLine], prior: list[PriorRefund]) -> Decimal:
    return value_of_lines(sale, lines, prior).amount


def allocate(amount: Decimal, sale: Sale, prior: list[PriorRefund]) -> list[Tender]:
    """Split a refund over the sale's tenders, card first; refuse more than is refundable."""
    left = refundable_tenders(sale, prior)
    available = sum((t.amount for t in left), ZERO)
    if amount > available:
        paid = sum((t.amount for t in paid_tenders(sale)), ZERO)
        raise RefundRejected(
            [
                FieldError(
                    field="amount",
                    message=f"refund {amount} exceeds what {sale.key} can still refund: "
                    f"{available} (paid {paid}, already refunded {paid - available})",
                )
            ]
        )
    out, rest = [], amount
    for t in left:
        if rest <= 0:
            break
        take = min(rest, t.amount)
        out.append(Tender(method=t.method, reference=t.reference, amount=take))
        rest -= take
    return out


class RefundPolicy(BaseModel):
    """Who may approve what, and how long a request waits. Overridable by configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    auto_approve_up_to: Decimal = Decimal("25.00")
    # Reason codes that pass by policy up to a higher cap (e.g. goods damaged on arrival).
    auto_approve_reasons: frozenset[str] = frozenset({"damaged", "defective"})
    auto_approve_reason_cap: Decimal = Decimal("100.00")
    approver_roles: frozenset[str] = frozenset({"store_manager", "finance"})
    remind_after: timedelta = timedelta(hours=4)
    expire_after: timedelta = timedelta(hours=48)


def approval_needed(policy: RefundPolicy, request: RefundRequest, amount: Decimal) -> str | None:
    """None if the policy approves on its own, else why a person must decide."""
    if amount <= policy.auto_approve_up_to:
        return None
    if request.reason in policy.auto_approve_reasons and amount <= policy.auto_approve_reason_cap:
        return None
    return f"{amount} is over the auto-approval limit of {policy.auto_approve_up_to}"


class Decision(BaseModel):
    """An approver's answer to a pending refund."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approve: bool
    by: PersonName
    role: Name
    comment: str = ""
    # The authenticated subject, from a verified assertion (None on refunds decided before
    # approvals were signed).
    sub: str | None = None


class DecisionRefused(ValueError):
    pass


def check_decision(policy: RefundPolicy, request: RefundRequest, decision: Decision) -> None:
    """Raise DecisionRefused if this person may not take this decision."""
    if decision.role not in policy.approver_roles:
        allowed = ", ".join(sorted(policy.approver_roles))
        raise DecisionRefused(f"role {decision.role!r} may not decide refunds (allowed: {allowed})")
    if decision.approve and identity(decision.by) == identity(request.requested_by):
        raise DecisionRefused(
            f"four eyes: {decision.by} requested refund {request.refund_id} and cannot approve it"
        )


def check_signed_decision(
    policy: RefundPolicy, refund_id: str, requested_by_sub: str | None, claims: ApprovalClaims
) -> None:
    """Raise DecisionRefused if the verified person may not take this decision: a role the
    policy does not allow, or the requester approving their own refund (on the authenticated
    subject, whatever display name either carries)."""
    if claims.role not in policy.approver_roles:
        allowed = ", ".join(sorted(policy.approver_roles))
        raise DecisionRefused(f"role {claims.role!r} may not decide refunds (allowed: {allowed})")
    if claims.action == "approve" and claims.sub == requested_by_sub:
        raise DecisionRefused(
            f"four eyes: {claims.sub} requested refund {refund_id} and cannot approve it"
        )


def refund_business_day(now: datetime, sale: Sale) -> date:
    """The store's business day of a refund made `now`: the calendar day at the store, in the
    UTC offset its POS reported for the sale (as the sale itself is dated), not the UTC day."""
    return now.astimezone(sale.occurred_at.tzinfo).date()


def excess(sale: Sale, refunds: list[PriorRefund]) -> list[str]:
    """What these refunds of a sale, together, give back beyond what it paid (per tender) or
    take back beyond what it sold (per SKU): empty when they all fit."""
    paid = {t.slot: t.amount for t in paid_tenders(sale)}
    given: dict[tuple[PaymentMethod, str | None], Decimal] = {}
    returned: dict[str, Decimal] = {}
    for r in refunds:
        for t in r.tenders:
            given[t.slot] = given.get(t.slot, ZERO) + t.amount
        for ln in r.lines:
            returned[ln.sku] = returned.get(ln.sku, Decimal(0)) + ln.qty
    sold: dict[str, Decimal] = {}
    for line in sale.lines:
        sold[line.sku] = sold.get(line.sku, Decimal(0)) + line.qty
    problems = [
        f"{method.value}{f' {ref}' if ref else ''}: {amount} refunded, "
        f"{paid.get((method, ref), ZERO)} paid"
        for (method, ref), amount in given.items()
        if amount > paid.get((method, ref), ZERO)
    ]
    problems += [
        f"{sku}: {qty} returned, {sold.get(sku, Decimal(0))} sold"
        for sku, qty in returned.items()
        if qty > sold.get(sku, Decimal(0))
    ]
    return problems


def load_policy(path: str | None) -> RefundPolicy:
    """The default refund policy, or one read from a TOML or JSON file (unknown keys refused)."""
    return (
        RefundPolicy() if path is None else load_settings_file(RefundPolicy, path, "refund policy")
    )
