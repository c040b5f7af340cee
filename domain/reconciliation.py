"""Three-way reconciliation of one store-day: what the POS rang up, what Odoo booked, what the
payment gateway captured. Pure: the three sources come in as compact per-transaction views,
a `ReconReport` comes out.

Every difference is explained down to the transaction (`ReconDiff`, id `{kind}:{subject}`,
stable across re-runs, so a decision taken on a diff survives the comparison being run again):

* `missing_in_odoo`: the POS rang it up, Odoo books nothing for it;
* `missing_at_pos`: Odoo books a sale (or refund) the POS never rang up (or voided);
* `missing_at_gateway`: a card payment with no capture at the gateway;
* `charge_without_sale`: a capture whose reference no sale of the day has;
* `amount_differs`: per tender, the POS's amount and Odoo's (or the gateway's);
* `duplicate`: booked in two posted entries, or captured twice;
* `late_sale`: booked after the day was closed (informational: it is booked once, dated the
  day it was rung up).

A `TolerancePolicy` decides what passes: differences of the kinds it lists pass, with a note,
while their absolute total per tender stays within its limit; late sales always pass.
`Reconciled` when nothing is left open, `Unreconciled` otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.money import ZERO, cents
from domain.sale import PaymentMethod

TENDERS = (PaymentMethod.CASH, PaymentMethod.CARD, PaymentMethod.GIFT_CARD)


class DiffKind(StrEnum):
    MISSING_IN_ODOO = "missing_in_odoo"
    MISSING_AT_POS = "missing_at_pos"
    MISSING_AT_GATEWAY = "missing_at_gateway"
    CHARGE_WITHOUT_SALE = "charge_without_sale"
    AMOUNT_DIFFERS = "amount_differs"
    DUPLICATE = "duplicate"
    LATE_SALE = "late_sale"


class DiffState(StrEnum):
    OPEN = "open"  # needs ops: accept it, or repost the sale
    PASSED = "passed"  # within the tolerance policy, or informational
    ACCEPTED = "accepted"  # ops accepted it, with who and why
    RESOLVED = "resolved"  # gone on a later comparison (e.g. the sale was reposted)


class ReconStatus(StrEnum):
    RECONCILING = "Reconciling"
    RECONCILED = "Reconciled"
    UNRECONCILED = "Unreconciled"


Kind = Literal["sale", "refund", "void"]


# -- the three sources ------------------------------------------------------------------------


class PosTxn(BaseModel):
    """One transaction of the store's journal."""

    model_config = ConfigDict(frozen=True)

    txn_id: str
    kind: Kind = "sale"
    tenders: dict[PaymentMethod, Decimal] = {}
    # Card payments by their gateway reference (a card payment without one: key "").
    card_refs: dict[str, Decimal] = {}


class OdooBooking(BaseModel):
    """What Odoo books for one sale key (or refund), over every posted entry that books it."""

    model_config = ConfigDict(frozen=True)

    txn_id: str  # the sale's txn id; for a refund, the refund id
    kind: Literal["sale", "refund"] = "sale"
    tenders: dict[PaymentMethod, Decimal] = {}  # as booked by the first entry
    entries: list[str] = []  # refs of the posted entries that book it (one, normally)
    created_at: datetime | None = None  # create_date of the first booking entry, UTC

    @field_validator("created_at")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        # Odoo's create_date is naive UTC.
        return v.replace(tzinfo=UTC) if v is not None and v.tzinfo is None else v


class GatewayCharge(BaseModel):
    """One payment intent at the gateway."""

    model_config = ConfigDict(frozen=True)

    reference: str
    txn_id: str | None = None  # its metadata's txn id, when it has one
    captured: Decimal = ZERO
    refunded: Decimal = ZERO


class ReconSources(BaseModel):
    store_id: str
    business_day: date
    pos: list[PosTxn]
    odoo: list[OdooBooking]
    gateway: list[GatewayCharge]
    # The POS's own Z-report totals per tender (sales), when read: cross-checked with its
    # journal, so a journal page lost on the way shows.
    pos_z_sales: dict[PaymentMethod, Decimal] | None = None


class TolerancePolicy(BaseModel):
    """What may pass without ops: differences of `kinds`, while their absolute total per
    tender and store-day stays within `max_per_tender`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_per_tender: Decimal = Field(default=Decimal("0.05"), ge=0)
    kinds: frozenset[DiffKind] = frozenset({DiffKind.AMOUNT_DIFFERS})


# -- the report -------------------------------------------------------------------------------


class ReconDiff(BaseModel):
    id: str
    kind: DiffKind
    txn_id: str | None = None
    reference: str | None = None
    tender: PaymentMethod | None = None
    pos_amount: Decimal | None = None
    other_amount: Decimal | None = None  # Odoo's or the gateway's, per `source`
    source: Literal["pos", "odoo", "gateway"] = "odoo"
    cause: str
    state: DiffState = DiffState.OPEN
    note: str = ""
    decided_by: str | None = None

    @property
    def delta(self) -> Decimal:
        return abs((self.other_amount or ZERO) - (self.pos_amount or ZERO))

    @property
    def settled(self) -> bool:
        return self.state is not DiffState.OPEN

    def line(self) -> str:
        """One line for people: id, state, cause (and note)."""
        note = f" ({self.note})" if self.note else ""
        return f"{self.id} [{self.state.value}]: {self.cause}{note}"


class TenderTotals(BaseModel):
    tender: PaymentMethod
    pos_sales: Decimal = ZERO
    pos_refunds: Decimal = ZERO
    odoo_sales: Decimal = ZERO
    odoo_refunds: Decimal = ZERO
    gateway_captured: Decimal = ZERO
    gateway_refunded: Decimal = ZERO


class ReconReport(BaseModel):
    store_id: str
    business_day: date
    status: ReconStatus
    totals: list[TenderTotals]
    pos_transactions: int = 0
    odoo_bookings: int = 0
    gateway_charges: int = 0
    matched: int = 0
    diffs: list[ReconDiff] = []

    @property
    def open_diffs(self) -> list[ReconDiff]:
        return [d for d in self.diffs if d.state is DiffState.OPEN]

    def diff(self, diff_id: str) -> ReconDiff | None:
        return next((d for d in self.diffs if d.id == diff_id), None)


# -- comparing --------------------------------------------------------------------------------

_ORDER = {kind: n for n, kind in enumerate(DiffKind)}


def _money(amounts: dict[PaymentMethod, Decimal]) -> dict[PaymentMethod, Decimal]:
    return {m: cents(a) for m, a in amounts.items() if a}


def _fmt(tenders: dict[PaymentMethod, Decimal]) -> str:
    return ", ".join(f"{m.value} {a}" for m, a in sorted(tenders.items())) or "nothing"


class _Diffs:
    def __init__(self) -> None:
        self.items: dict[str, ReconDiff] = {}
        self.touched: set[str] = set()  # POS txn ids with any difference

    def add(self, kind: DiffKind, subject: str, cause: str, **fields: object) -> None:
        diff_id = f"{kind.value}:{subject}"
        if diff_id not in self.items:
            self.items[diff_id] = ReconDiff(id=diff_id, kind=kind, cause=cause, **fields)
        txn = fields.get("txn_id")
        if isinstance(txn, str) and kind is not DiffKind.LATE_SALE:
            self.touched.add(txn)


def _compare_booking(diffs: _Diffs, txn: PosTxn, booking: OdooBooking, key: str, what: str) -> None:
    if len(booking.entries) > 1:
        diffs.add(
            DiffKind.DUPLICATE,
            txn.txn_id,
            f"{what} {key} is booked in {len(booking.entries)} posted entries: "
            f"{', '.join(booking.entries)}",
            txn_id=txn.txn_id,
        )
    pos, odoo = _money(txn.tenders), _money(booking.tenders)
    for tender in TENDERS:
        a, b = pos.get(tender, ZERO), odoo.get(tender, ZERO)
        if a != b:
            diffs.add(
                DiffKind.AMOUNT_DIFFERS,
                f"{txn.txn_id}:{tender.value}",
                f"{what} {key}: {tender.value} {a} at the POS, {b} booked in Odoo "
                f"(off by {abs(b - a)})",
                txn_id=txn.txn_id,
                tender=tender,
                pos_amount=a,
                other_amount=b,
            )


def _late(diffs: _Diffs, booking: OdooBooking, key: str, closed_at: datetime | None) -> None:
    if closed_at is None or booking.created_at is None:
        return
    closed = closed_at if closed_at.tzinfo else closed_at.replace(tzinfo=UTC)
    if booking.created_at > closed:
        diffs.add(
            DiffKind.LATE_SALE,
            booking.txn_id,
            f"{key} was booked at {booking.created_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC, "
            f"after the day closed at {closed.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC; it is "
            "booked once, dated the day it was rung up",
            txn_id=booking.txn_id,
            source="odoo",
        )


def _compare_gateway(
    diffs: _Diffs,
    sales: list[PosTxn],
    charges: list[GatewayCharge],
    store_id: str,
) -> None:
    by_ref = {c.reference: c for c in charges}
    claimed: set[str] = set()
    sale_ids = {t.txn_id for t in sales}
    for txn in sales:
        for ref, amount in sorted(txn.card_refs.items()):
            if not ref:
                diffs.add(
                    DiffKind.MISSING_AT_GATEWAY,
                    txn.txn_id,
                    f"sale {txn.txn_id}: a card payment of {cents(amount)} carries no gateway "
                    "reference",
                    txn_id=txn.txn_id,
                    tender=PaymentMethod.CARD,
                    pos_amount=cents(amount),
                    source="gateway",
                )
                continue
            charge = by_ref.get(ref)
            if charge is None:
                diffs.add(
                    DiffKind.MISSING_AT_GATEWAY,
                    txn.txn_id,
                    f"sale {txn.txn_id}: card payment {ref} of {cents(amount)} was never "
                    "captured at the gateway",
                    txn_id=txn.txn_id,
                    reference=ref,
                    tender=PaymentMethod.CARD,
                    pos_amount=cents(amount),
                    source="gateway",
                )
                continue
            claimed.add(ref)
            if cents(charge.captured) != cents(amount):
                diffs.add(
                    DiffKind.AMOUNT_DIFFERS,
                    f"{txn.txn_id}:gateway:{ref}",
                    f"sale {txn.txn_id}: card {cents(amount)} at the POS, {cents(charge.captured)}"
                    f" captured by the gateway ({ref})",
                    txn_id=txn.txn_id,
                    reference=ref,
                    tender=PaymentMethod.CARD,
                    pos_amount=cents(amount),
                    other_amount=cents(charge.captured),
                    source="gateway",
                )
    for charge in sorted(charges, key=lambda c: c.reference):
        if charge.reference in claimed or not charge.captured:
            continue
        if charge.txn_id in sale_ids:
            diffs.add(
                DiffKind.DUPLICATE,
                f"{charge.txn_id}:gateway:{charge.reference}",
                f"sale {charge.txn_id} was captured twice: {charge.reference} "
                f"({cents(charge.captured)}) is a second capture the sale does not list",
                txn_id=charge.txn_id,
                reference=charge.reference,
                tender=PaymentMethod.CARD,
                other_amount=cents(charge.captured),
                source="gateway",
            )
        else:
            said = f" (its metadata says txn {charge.txn_id})" if charge.txn_id else ""
            diffs.add(
                DiffKind.CHARGE_WITHOUT_SALE,
                charge.reference,
                f"the gateway captured {cents(charge.captured)} under {charge.reference} for "
                f"store {store_id}, and no sale of the day has that reference{said}",
                reference=charge.reference,
                tender=PaymentMethod.CARD,
                other_amount=cents(charge.captured),
                source="gateway",
            )


def _totals(src: ReconSources) -> list[TenderTotals]:
    rows = {t: TenderTotals(tender=t) for t in TENDERS}
    for txn in src.pos:
        for m, a in txn.tenders.items():
            if txn.kind == "sale":
                rows[m].pos_sales += cents(a)
            elif txn.kind == "refund":
                rows[m].pos_refunds += cents(a)
    for b in src.odoo:
        for m, a in b.tenders.items():
            if b.kind == "sale":
                rows[m].odoo_sales += cents(a) * max(len(b.entries), 1)
            else:
                rows[m].odoo_refunds += cents(a) * max(len(b.entries), 1)
    card = rows[PaymentMethod.CARD]
    for c in src.gateway:
        card.gateway_captured += cents(c.captured)
        card.gateway_refunded += cents(c.refunded)
    return [rows[t] for t in TENDERS]


def _z_check(diffs: _Diffs, src: ReconSources, totals: list[TenderTotals]) -> None:
    if src.pos_z_sales is None:
        return
    for row in totals:
        z = cents(src.pos_z_sales.get(row.tender, ZERO))
        if z != row.pos_sales:
            diffs.add(
                DiffKind.AMOUNT_DIFFERS,
                f"z-report:{row.tender.value}",
                f"the POS's Z-report says {row.tender.value} sales {z}, its journal adds up to "
                f"{row.pos_sales}",
                tender=row.tender,
                pos_amount=z,
                other_amount=row.pos_sales,
                source="pos",
            )


def compare(src: ReconSources, closed_at: datetime | None = None) -> ReconReport:
    """Every difference between the three sources, each still open (see `decide`)."""
    diffs = _Diffs()
    sales = [t for t in src.pos if t.kind == "sale"]
    refunds = {t.txn_id: t for t in src.pos if t.kind == "refund"}
    voids = {t.txn_id for t in src.pos if t.kind == "void"}
    booked = {b.txn_id: b for b in src.odoo if b.kind == "sale"}
    booked_refunds = {b.txn_id: b for b in src.odoo if b.kind == "refund"}
    sale_ids = {t.txn_id for t in sales}
    for txn in sales:
        key = f"POS:{src.store_id}:{txn.txn_id}"
        booking = booked.get(txn.txn_id)
        if booking is None:
            diffs.add(
                DiffKind.MISSING_IN_ODOO,
                txn.txn_id,
                f"sale {txn.txn_id} ({_fmt(_money(txn.tenders))}) was rung up at the POS and "
                f"Odoo books nothing for {key} on {src.business_day}",
                txn_id=txn.txn_id,
                pos_amount=sum(_money(txn.tenders).values(), ZERO),
            )
            continue
        _compare_booking(diffs, txn, booking, key, "sale")
    for txn_id, booking in sorted(booked.items()):
        key = f"POS:{src.store_id}:{txn_id}"
        _late(diffs, booking, key, closed_at)
        if txn_id in sale_ids:
            continue
        why = "voided at the POS" if txn_id in voids else "never rung up at the POS that day"
        diffs.add(
            DiffKind.MISSING_AT_POS,
            txn_id,
            f"Odoo books {key} ({_fmt(_money(booking.tenders))}) in {', '.join(booking.entries)}"
            f": the sale was {why}",
            txn_id=txn_id,
            other_amount=sum(_money(booking.tenders).values(), ZERO),
        )
        if len(booking.entries) > 1:
            diffs.add(
                DiffKind.DUPLICATE,
                txn_id,
                f"{key} is booked in {len(booking.entries)} posted entries: "
                f"{', '.join(booking.entries)}",
                txn_id=txn_id,
            )
    for refund_id, txn in sorted(refunds.items()):
        booking = booked_refunds.get(refund_id)
        if booking is None:
            diffs.add(
                DiffKind.MISSING_IN_ODOO,
                refund_id,
                f"refund {refund_id} ({_fmt(_money(txn.tenders))}) was rung up at the POS and "
                f"Odoo books no REFUND:{refund_id}",
                txn_id=refund_id,
                pos_amount=sum(_money(txn.tenders).values(), ZERO),
            )
        else:
            _compare_booking(diffs, txn, booking, f"REFUND:{refund_id}", "refund")
    for refund_id, booking in sorted(booked_refunds.items()):
        if refund_id not in refunds:
            diffs.add(
                DiffKind.MISSING_AT_POS,
                refund_id,
                f"Odoo books refund REFUND:{refund_id} ({_fmt(_money(booking.tenders))}) that "
                "the POS never rang up",
                txn_id=refund_id,
                other_amount=sum(_money(booking.tenders).values(), ZERO),
            )
    _compare_gateway(diffs, sales, src.gateway, src.store_id)
    totals = _totals(src)
    _z_check(diffs, src, totals)
    ordered = sorted(
        diffs.items.values(), key=lambda d: (d.txn_id or d.reference or "", _ORDER[d.kind], d.id)
    )
    return ReconReport(
        store_id=src.store_id,
        business_day=src.business_day,
        status=ReconStatus.RECONCILING,
        totals=totals,
        pos_transactions=len(src.pos),
        odoo_bookings=len(src.odoo),
        gateway_charges=len(src.gateway),
        # Every POS transaction (sales, refunds, voids) no difference names.
        matched=sum(1 for t in src.pos if t.txn_id not in diffs.touched),
        diffs=ordered,
    )


def decide(report: ReconReport, policy: TolerancePolicy) -> ReconReport:
    """Apply the tolerance policy to the open diffs, then set the status."""
    used: dict[PaymentMethod, Decimal] = defaultdict(lambda: ZERO)
    for d in report.diffs:
        if d.state is DiffState.OPEN and d.kind in policy.kinds and d.tender is not None:
            used[d.tender] += d.delta
    diffs: list[ReconDiff] = []
    for d in report.diffs:
        if d.state is DiffState.OPEN and d.kind is DiffKind.LATE_SALE:
            d = d.model_copy(update={"state": DiffState.PASSED, "note": "informational"})
        elif (
            d.state is DiffState.OPEN
            and d.kind in policy.kinds
            and d.tender is not None
            and used[d.tender] <= policy.max_per_tender
        ):
            note = (
                f"within tolerance: {d.tender.value} differences total {used[d.tender]} "
                f"<= {policy.max_per_tender} for the store-day"
            )
            d = d.model_copy(update={"state": DiffState.PASSED, "note": note})
        diffs.append(d)
    status = ReconStatus.RECONCILED if all(d.settled for d in diffs) else ReconStatus.UNRECONCILED
    return report.model_copy(update={"diffs": diffs, "status": status})


def reconcile(
    src: ReconSources, policy: TolerancePolicy, closed_at: datetime | None = None
) -> ReconReport:
    """Compare the three sources and decide: the store-day's report."""
    return decide(compare(src, closed_at), policy)


def carry_over(new: ReconReport, old: ReconReport, policy: TolerancePolicy) -> ReconReport:
    """A fresh comparison, keeping what ops decided on the previous one: a diff accepted
    before stays accepted (same id, same who and why); a diff of the previous run that is
    gone now is kept, `resolved`, so the report still tells what happened."""
    previous = {d.id: d for d in old.diffs}
    diffs: list[ReconDiff] = []
    for d in new.diffs:
        before = previous.pop(d.id, None)
        if before is not None and before.state is DiffState.ACCEPTED:
            d = d.model_copy(
                update={
                    "state": DiffState.ACCEPTED,
                    "note": before.note,
                    "decided_by": before.decided_by,
                }
            )
        diffs.append(d)
    for gone in previous.values():
        if gone.state in (DiffState.OPEN, DiffState.ACCEPTED, DiffState.RESOLVED):
            note = gone.note if gone.state is DiffState.RESOLVED else "gone on a later comparison"
            diffs.append(gone.model_copy(update={"state": DiffState.RESOLVED, "note": note}))
    diffs.sort(key=lambda d: (d.txn_id or d.reference or "", _ORDER[d.kind], d.id))
    return decide(new.model_copy(update={"diffs": diffs}), policy)


class DecisionError(ValueError):
    """A decision on a report that cannot be taken (unknown diff, nobody named...)."""


def check_accept(report: ReconReport, diff_id: str, by: str) -> list[str]:
    """The ids an acceptance applies to (`all`: every open diff); DecisionError otherwise."""
    if not by or not by.strip():
        raise DecisionError("by: an acceptance must say who accepts")
    if diff_id == "all":
        ids = [d.id for d in report.open_diffs]
        if not ids:
            raise DecisionError("nothing to accept: no difference is open")
        return ids
    diff = report.diff(diff_id)
    if diff is None:
        known = ", ".join(d.id for d in report.open_diffs[:5]) or "none open"
        raise DecisionError(f"diff_id: no difference {diff_id!r} in this report ({known})")
    if diff.state is not DiffState.OPEN:
        raise DecisionError(f"diff_id: {diff_id} is already {diff.state.value}")
    return [diff_id]


def accept(report: ReconReport, ids: Iterable[str], by: str, comment: str) -> ReconReport:
    """Mark open diffs accepted, with who and why; the status follows."""
    chosen = set(ids)
    note = f"accepted by {by.strip()}" + (f": {comment.strip()}" if comment.strip() else "")
    diffs = [
        d.model_copy(update={"state": DiffState.ACCEPTED, "note": note, "decided_by": by.strip()})
        if d.id in chosen and d.state is DiffState.OPEN
        else d
        for d in report.diffs
    ]
    status = ReconStatus.RECONCILED if all(d.settled for d in diffs) else ReconStatus.UNRECONCILED
    return report.model_copy(update={"diffs": diffs, "status": status})


def check_repost(report: ReconReport, diff_id: str, by: str) -> str:
    """The txn id a repost re-drives; DecisionError unless the diff is an open sale missing in
    Odoo."""
    if not by or not by.strip():
        raise DecisionError("by: a repost must say who asks for it")
    diff = report.diff(diff_id)
    if diff is None:
        raise DecisionError(f"diff_id: no difference {diff_id!r} in this report")
    if diff.kind is not DiffKind.MISSING_IN_ODOO or diff.txn_id is None:
        raise DecisionError(
            f"diff_id: {diff_id} is {diff.kind.value}; only a sale missing in Odoo is reposted"
        )
    if not diff.cause.startswith("sale "):
        raise DecisionError(f"diff_id: {diff_id} is a refund; refunds go through `refund`")
    if diff.state is not DiffState.OPEN:
        raise DecisionError(f"diff_id: {diff_id} is already {diff.state.value}")
    return diff.txn_id


# -- building the views from raw data ---------------------------------------------------------


def pos_view(transaction: dict[str, object]) -> PosTxn:
    """A journal transaction (sale JSON with `kind`) as the POS view. Amounts are read as
    given; a transaction the journal holds is always readable (the POS checked it)."""
    tenders: dict[PaymentMethod, Decimal] = defaultdict(lambda: ZERO)
    refs: dict[str, Decimal] = defaultdict(lambda: ZERO)
    payments = transaction.get("payments")
    for p in payments if isinstance(payments, list) else []:
        if not isinstance(p, dict):
            continue
        try:
            method = PaymentMethod(str(p.get("method")))
            amount = Decimal(str(p.get("amount")))
        except (ValueError, ArithmeticError):
            continue
        tenders[method] += amount
        if method is PaymentMethod.CARD:
            refs[str(p.get("reference") or "")] += amount
    raw_kind = transaction.get("kind", "sale")
    kind: Kind = "refund" if raw_kind == "refund" else "void" if raw_kind == "void" else "sale"
    return PosTxn(
        txn_id=str(transaction.get("txn_id")),
        kind=kind,
        tenders=dict(tenders),
        card_refs=dict(refs),
    )
