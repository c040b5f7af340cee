"""Reads for the three-way reconciliation of one store-day, and the comparison itself.

One activity reads all three sources and returns the computed `ReconReport` (the report is
small; the sources are not, so they never travel through Temporal). Each read is compact and
paged, a few RPCs per store-day whatever its size, never one per sale:

* the POS: its Z-report and its journal (the day's transactions, 1,000 a page);
* Odoo: in one read paged by id, the tender items of the day's per-sale entries
  (`ref =like 'POS:{store}:%'`, posted, dated the day: one or two items a sale) and of the
  day's refund entries (`REFUND:%`, kept for this store by their label); then the day's posted
  summaries (`SUM:{store}:{day}:%`) with the sales their narration lists; `create_date` for
  late sales; a heartbeat per page;
* the gateway: its payment intents for the store (Stripe's search on `metadata['store_id']`
  over the day's window and a margin), with their latest charge for the refunded amount, page
  by page as Stripe's JSON (a heartbeat per page).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any

import stripe
from pydantic import BaseModel
from temporalio import activity

from activities.gateway_client import GatewayClient, from_minor, raise_classified
from activities.odoo.base import record_from_narration
from activities.odoo.client import OdooClient
from activities.odoo.summary import sales_of_record
from activities.pos_client import PosJournalReader
from domain.money import ZERO, cents
from domain.posting import PostingProfile, summary_ref
from domain.reconciliation import (
    TENDERS,
    GatewayCharge,
    OdooBooking,
    ReconReport,
    ReconSources,
    TolerancePolicy,
    pos_view,
    reconcile,
)
from domain.sale import PaymentMethod, sale_key

ODOO_PAGE = 5000
GATEWAY_PAGE = 100
# Stores report their local offset; a store-day spans at most UTC-12 .. UTC+14.
WINDOW_BEFORE = timedelta(hours=14)
WINDOW_AFTER = timedelta(hours=12)


class ReconcileInput(BaseModel):
    store_id: str
    business_day: date
    closed_at: datetime | None = None
    tolerance: TolerancePolicy = TolerancePolicy()


class DayTotalsInput(BaseModel):
    store_id: str
    business_day: date


class OdooDayTotals(BaseModel):
    """What Odoo books for a store-day: sales (each counted once per posted entry that books
    it), and the amount per tender."""

    store_id: str
    business_day: date
    sales: int
    tenders: dict[PaymentMethod, Decimal]
    refunds: int = 0
    refunded: dict[PaymentMethod, Decimal] = {}


class PosSaleInput(BaseModel):
    store_id: str
    txn_id: str


def _heartbeat(what: str) -> None:
    if activity.in_activity():
        activity.heartbeat(what)


def _utc(text: Any) -> datetime | None:
    """Odoo's Datetime (naive UTC 'YYYY-MM-DD HH:MM:SS') as an aware datetime."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        return None


class _Booking:
    """A sale key's bookings as they are read: tenders of its first entry, every entry."""

    def __init__(self, txn_id: str, kind: str) -> None:
        self.txn_id = txn_id
        self.kind = kind
        self.entries: dict[int, str] = {}  # move id -> ref
        self.tenders: dict[int, dict[PaymentMethod, Decimal]] = defaultdict(dict)
        self.created: dict[int, datetime | None] = {}

    def add(
        self,
        move_id: int,
        ref: str,
        created: datetime | None,
        method: PaymentMethod | None = None,
        amount: Decimal = ZERO,
    ) -> None:
        self.entries.setdefault(move_id, ref)
        self.created.setdefault(move_id, created)
        if method is not None:
            booked = self.tenders[move_id]
            booked[method] = booked.get(method, ZERO) + amount

    def view(self) -> OdooBooking:
        first = min(self.entries)
        return OdooBooking(
            txn_id=self.txn_id,
            kind="refund" if self.kind == "refund" else "sale",
            tenders=dict(self.tenders.get(first, {})),
            entries=[self.entries[m] for m in sorted(self.entries)],
            created_at=self.created.get(first),
        )


class ReconActivities:
    def __init__(
        self,
        odoo: OdooClient,
        profile: PostingProfile,
        pos: PosJournalReader,
        gateway: GatewayClient,
        window_margin: timedelta = timedelta(hours=1),
    ) -> None:
        self.odoo = odoo
        self.profile = profile
        self.pos = pos
        self.margin = window_margin
        self._stripe = gateway.stripe

    # -- activities ---------------------------------------------------------------------------

    @activity.defn
    def reconcile_store_day(self, input: ReconcileInput) -> ReconReport:
        """Read the three sources of one store-day and compare them: the report."""
        sources = self.sources(input.store_id, input.business_day)
        return reconcile(sources, input.tolerance, input.closed_at)

    @activity.defn
    def odoo_day_totals(self, input: DayTotalsInput) -> OdooDayTotals:
        """Odoo's booked totals of a store-day, per tender, and how many sales it books."""
        bookings = self.odoo_bookings(input.store_id, input.business_day)
        tenders = dict.fromkeys(TENDERS, ZERO)
        refunded = dict.fromkeys(TENDERS, ZERO)
        sales = refunds = 0
        for b in bookings:
            target = tenders if b.kind == "sale" else refunded
            for m, a in b.tenders.items():
                target[m] += a * len(b.entries)
            if b.kind == "sale":
                sales += len(b.entries)
            else:
                refunds += len(b.entries)
        return OdooDayTotals(
            store_id=input.store_id,
            business_day=input.business_day,
            sales=sales,
            tenders=tenders,
            refunds=refunds,
            refunded=refunded,
        )

    @activity.defn
    def pos_sale(self, input: PosSaleInput) -> dict[str, Any]:
        """The POS's own copy of a sale (the public sale JSON), to post it again."""
        body = dict(self.pos.transaction(input.store_id, input.txn_id))
        body.pop("kind", None)
        return body

    # -- the three sources --------------------------------------------------------------------

    def sources(self, store_id: str, day: date) -> ReconSources:
        _heartbeat("pos")
        z = self.pos.z_report(store_id, day)
        journal = self.pos.journal(store_id, day)
        pos = [pos_view(t) for t in journal]
        odoo = self.odoo_bookings(store_id, day)
        zone = _store_zone(journal)
        refs = {ref for t in pos for ref in t.card_refs if ref}
        txns = {t.txn_id for t in pos}
        gateway = self.gateway_charges(store_id, day, zone, refs, txns)
        z_sales = {PaymentMethod(m): Decimal(v["amount"]) for m, v in z["sales"]["tenders"].items()}
        return ReconSources(
            store_id=store_id,
            business_day=day,
            pos=pos,
            odoo=odoo,
            gateway=gateway,
            pos_z_sales=z_sales,
        )

    def _tender_account_ids(self) -> list[int]:
        ids = self.odoo.account_ids(self.profile.tender_accounts.values())
        return sorted(set(ids.values()))

    def _lines(self, domain: list[Any]) -> Iterator[dict[str, Any]]:
        """Journal items matching `domain`, paged by id (each page one indexed read)."""
        last = 0
        while True:
            _heartbeat("odoo")
            rows: list[dict[str, Any]] = self.odoo.call(
                "account.move.line",
                "search_read",
                [*domain, ("id", ">", last)],
                fields=["name", "debit", "credit", "move_id", "ref", "create_date"],
                order="id asc",
                limit=ODOO_PAGE,
            )
            yield from rows
            if len(rows) < ODOO_PAGE:
                return
            last = rows[-1]["id"]

    def odoo_bookings(self, store_id: str, day: date) -> list[OdooBooking]:
        """Every sale and refund of the store-day Odoo books in a posted entry."""
        prefix = sale_key(store_id, "")
        tender_ids = self._tender_account_ids()
        common = [("date", "=", day.isoformat()), ("parent_state", "=", "posted")]
        bookings: dict[tuple[str, str], _Booking] = {}

        def booking(kind: str, txn_id: str) -> _Booking:
            return bookings.setdefault((kind, txn_id), _Booking(txn_id, kind))

        # One paged read for the tender items of both kinds of per-transaction entry:
        # * per-sale entries (ref = the sale key), labelled `{key} {method}`;
        # * the day's refund entries, labelled `REFUND:{id} POS:{store}:{txn} {method}`
        #   (credits: money given back), kept for this store by their label.
        for line in self._lines(
            [
                "|",
                ("ref", "=like", f"{prefix}%"),
                ("ref", "=like", "REFUND:%"),
                *common,
                ("account_id", "in", tender_ids),
            ]
        ):
            ref = str(line.get("ref") or "")
            method = _method_of(line["name"])
            if method is None:
                continue
            created = _utc(line.get("create_date"))
            debit, credit = Decimal(str(line["debit"])), Decimal(str(line["credit"]))
            if ref.startswith("REFUND:"):
                parts = str(line["name"]).split(" ")
                if len(parts) != 3 or not parts[1].startswith(prefix):
                    continue
                booking("refund", parts[0].removeprefix("REFUND:")).add(
                    line["move_id"][0], parts[0], created, method, cents(credit - debit)
                )
            # `=like` treats `_` and `%` in a store id as wildcards: keep exact prefixes only.
            elif ref.startswith(prefix):
                booking("sale", ref[len(prefix) :]).add(
                    line["move_id"][0], ref, created, method, cents(debit - credit)
                )
        # Summary entries: the sales their narration lists.
        sum_prefix = summary_ref(store_id, day, "")
        _heartbeat("odoo summaries")
        summaries = self.odoo.call(
            "account.move",
            "search_read",
            [("ref", "=like", f"{sum_prefix}%"), ("state", "=", "posted")],
            fields=["ref", "narration", "create_date"],
            order="id asc",
        )
        for row in summaries:
            if not str(row["ref"]).startswith(sum_prefix):
                continue
            created = _utc(row.get("create_date"))
            for txn_id, payments in _summarised(record_from_narration(row["narration"])):
                b = booking("sale", txn_id)
                for method, amount in payments:
                    b.add(row["id"], row["ref"], created, method, amount)
        return [bookings[k].view() for k in sorted(bookings)]

    def gateway_charges(
        self, store_id: str, day: date, zone: tzinfo, refs: set[str], txns: set[str]
    ) -> list[GatewayCharge]:
        """The store's payment intents around the day: those the day's sales name, and those
        created within the store-day (in the store's offset) that no sale names."""
        start = datetime.combine(day, time(), UTC) - WINDOW_BEFORE - self.margin
        end = datetime.combine(day + timedelta(days=1), time(), UTC) + WINDOW_AFTER + self.margin
        local_start = datetime.combine(day, time(), zone)
        local_end = local_start + timedelta(days=1)
        query = (
            f"metadata['store_id']:'{store_id}' AND created>={int(start.timestamp())} "
            f"AND created<{int(end.timestamp())}"
        )
        out: list[GatewayCharge] = []
        params: dict[str, Any] = {
            "query": query,
            "limit": GATEWAY_PAGE,
            "expand": ["data.latest_charge"],
        }
        try:
            while True:
                _heartbeat("gateway")
                # The SDK's request (auth, errors, retries) but its JSON as is: building a
                # StripeObject per intent and charge costs more CPU than the rest of the
                # reconciliation together (a store-day has thousands of intents).
                page: dict[str, Any] = self._stripe.raw_request(
                    "get", "/v1/payment_intents/search", **params
                ).data
                for pi in page.get("data") or []:
                    charge = _charge_of(pi, refs, txns, local_start, local_end)
                    if charge is not None:
                        out.append(charge)
                if not page.get("has_more") or not page.get("next_page"):
                    break
                params["page"] = page["next_page"]
        except stripe.StripeError as e:
            raise_classified(e, f"payment intents of {store_id} on {day}")
        return out


def _charge_of(
    pi: dict[str, Any], refs: set[str], txns: set[str], local_start: datetime, local_end: datetime
) -> GatewayCharge | None:
    """A payment intent (Stripe's JSON, latest charge expanded) of the store-day, or None when
    it is another day's that no sale of the day names."""
    meta = pi.get("metadata") or {}
    txn = meta.get("txn_id")
    created = datetime.fromtimestamp(int(pi["created"]), UTC)
    named = pi["id"] in refs or txn in txns
    if not named and not local_start <= created < local_end:
        return None
    charge = pi.get("latest_charge")
    refunded = charge.get("amount_refunded", 0) if isinstance(charge, dict) else 0
    # Only money actually taken counts (a canceled or pending intent took none).
    captured = int(pi.get("amount_received") or 0)
    return GatewayCharge(
        reference=pi["id"],
        txn_id=str(txn) if txn else None,
        captured=from_minor(captured),
        refunded=from_minor(int(refunded or 0)),
    )


def _summarised(
    record: dict[str, Any] | None,
) -> list[tuple[str, list[tuple[PaymentMethod, Decimal]]]]:
    """Each sale a summary's narration record holds: its txn id and payments. Read straight
    from the record retailflow wrote from validated sales (validating each whole sale again
    cost a third of a store-day's CPU); a record not of that shape is validated in full, so
    it fails as before."""
    out = []
    try:
        for item in record["sales"] if record else []:
            sale = item["sale"]
            payments = [
                (PaymentMethod(p["method"]), Decimal(str(p["amount"]))) for p in sale["payments"]
            ]
            out.append((str(sale["txn_id"]), payments))
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return [
            (s.txn_id, [(p.method, p.amount) for p in s.payments]) for s in sales_of_record(record)
        ]
    return out


def _method_of(label: Any) -> PaymentMethod | None:
    tail = str(label).rsplit(" ", 1)[-1]
    try:
        return PaymentMethod(tail)
    except ValueError:
        return None


def _store_zone(journal: list[dict[str, Any]]) -> tzinfo:
    """The UTC offset the store reports (its first transaction's), UTC when it has none."""
    for t in journal:
        try:
            at = datetime.fromisoformat(str(t.get("occurred_at")))
        except ValueError:
            continue
        if at.utcoffset() is not None:
            return timezone(at.utcoffset() or timedelta(0))
    return UTC
