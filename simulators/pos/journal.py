"""The store's own journal: every transaction it rang up, and its end-of-day Z-report.

The POS is the source of truth of what was rung up. A transaction is a sale in the public sale
JSON contract (``store_id``, ``txn_id``, ``occurred_at``, ``currency``, ``lines``,
``payments``) with an optional ``kind``: ``sale`` (default), ``refund`` (money given back on
the listed tenders) or ``void`` (rung up then cancelled: no money moved). Its day is the
``occurred_at`` date in the offset the POS reported. A transaction id is used once: the same
body again is absorbed, a different body under the same id is a conflict.

Only what the journal needs is checked here (identity, day, tenders); the sale's full
validation is the integration's job, and a transaction it would reject is still what the
store rang up.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import InvalidField

KINDS = ("sale", "refund", "void")
TENDERS = ("cash", "card", "gift_card")
CENT = Decimal("0.01")
MAX_PAGE = 1000


class TransactionConflict(Exception):
    """The store already has this transaction id with a different body: HTTP 409."""

    def __init__(self, store_id: str, txn_id: str) -> None:
        super().__init__(f"store {store_id} already has transaction {txn_id} with a different body")


class UnknownTransaction(LookupError):
    """The store never rang up this transaction: HTTP 404."""

    def __init__(self, store_id: str, txn_id: str) -> None:
        super().__init__(f"store {store_id} has no transaction {txn_id}")


@dataclass(frozen=True, slots=True)
class Transaction:
    """One transaction as the store keeps it."""

    store_id: str
    txn_id: str
    day: str  # YYYY-MM-DD
    kind: str
    body: dict[str, Any]
    digest: str
    tenders: tuple[tuple[str, Decimal], ...]  # (method, amount), merged per method

    def row(self) -> dict[str, Any]:
        return {
            "store_id": self.store_id,
            "txn_id": self.txn_id,
            "day": self.day,
            "kind": self.kind,
            "body": json.dumps(self.body, sort_keys=True),
        }


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _amount(value: object, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidField(name, f"{name} must be a decimal amount")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidField(name, f"{name} must be a decimal amount") from None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(CENT):
        raise InvalidField(name, f"{name} must be positive, with at most 2 decimal places")
    return amount


def _day_of(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidField("occurred_at", "occurred_at must be an ISO 8601 date-time")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidField("occurred_at", "occurred_at must be an ISO 8601 date-time") from None
    if at.tzinfo is None:
        raise InvalidField("occurred_at", "occurred_at must carry a UTC offset")
    return at.date().isoformat()


def parse_transaction(store_id: str, body: object) -> Transaction:
    """A transaction body checked for what the journal needs; InvalidField naming the field."""
    if not isinstance(body, dict):
        raise InvalidField(None, "the body must be a JSON object (a sale)")
    txn_id = body.get("txn_id")
    if not isinstance(txn_id, str) or not txn_id.strip() or len(txn_id) > 64:
        raise InvalidField("txn_id", "txn_id must be a non-empty string of at most 64 characters")
    if body.get("store_id", store_id) != store_id:
        raise InvalidField("store_id", f"store_id must be {store_id} (the store of the route)")
    kind = body.get("kind", "sale")
    if kind not in KINDS:
        raise InvalidField("kind", f"kind must be one of {', '.join(KINDS)}")
    day = _day_of(body.get("occurred_at"))
    payments = body.get("payments")
    if not isinstance(payments, list) or not payments:
        raise InvalidField("payments", "payments must be a non-empty list")
    merged: dict[str, Decimal] = {}
    for i, payment in enumerate(payments):
        name = f"payments[{i}]"
        if not isinstance(payment, dict):
            raise InvalidField(name, f"{name} must be an object")
        method = payment.get("method")
        if method not in TENDERS:
            raise InvalidField(f"{name}.method", f"{name}.method must be one of {TENDERS}")
        merged[method] = merged.get(method, Decimal(0)) + _amount(
            payment.get("amount"), f"{name}.amount"
        )
    stored = {**body, "store_id": store_id, "kind": kind}
    return Transaction(
        store_id=store_id,
        txn_id=txn_id,
        day=day,
        kind=kind,
        body=stored,
        digest=_digest(stored),
        tenders=tuple(sorted(merged.items())),
    )


def transaction_from_row(row: Any) -> Transaction:
    body = json.loads(row["body"])
    return parse_transaction(row["store_id"], body)


@dataclass
class Journal:
    """One store's transactions, by id and by day (ids kept sorted for paging)."""

    by_id: dict[str, Transaction] = field(default_factory=dict)
    by_day: dict[str, list[str]] = field(default_factory=dict)

    def add(self, txn: Transaction) -> bool:
        """True when new; False when the same body is already there; a conflict otherwise."""
        known = self.by_id.get(txn.txn_id)
        if known is not None:
            if known.digest != txn.digest:
                raise TransactionConflict(txn.store_id, txn.txn_id)
            return False
        self.by_id[txn.txn_id] = txn
        bisect.insort(self.by_day.setdefault(txn.day, []), txn.txn_id)
        return True

    def page(self, day: str, limit: int, starting_after: str | None) -> dict[str, Any]:
        ids = self.by_day.get(day, [])
        start = bisect.bisect_right(ids, starting_after) if starting_after else 0
        chosen = ids[start : start + limit]
        return {
            "day": day,
            "transactions": [self.by_id[t].body for t in chosen],
            "has_more": start + limit < len(ids),
        }

    def z_report(self, store_id: str, day: str) -> dict[str, Any]:
        """Counts and amounts per tender for sales, refunds and voids, and the totals."""
        counts = {k: dict.fromkeys(TENDERS, 0) for k in KINDS}
        amounts = {k: dict.fromkeys(TENDERS, Decimal(0)) for k in KINDS}
        txns = dict.fromkeys(KINDS, 0)
        for txn_id in self.by_day.get(day, []):
            txn = self.by_id[txn_id]
            txns[txn.kind] += 1
            for method, amount in txn.tenders:
                counts[txn.kind][method] += 1
                amounts[txn.kind][method] += amount

        def section(kind: str) -> dict[str, Any]:
            return {
                "count": txns[kind],
                "amount": str(sum(amounts[kind].values(), Decimal(0))),
                "tenders": {
                    m: {"count": counts[kind][m], "amount": str(amounts[kind][m])} for m in TENDERS
                },
            }

        net = {m: amounts["sale"][m] - amounts["refund"][m] for m in TENDERS}
        return {
            "store_id": store_id,
            "day": day,
            "sales": section("sale"),
            "refunds": section("refund"),
            "voids": section("void"),
            "totals": {
                "transactions": sum(txns.values()),
                # What the drawer and the terminals hold: sales less refunds (voids moved nothing).
                "net": str(sum(net.values(), Decimal(0))),
                "net_by_tender": {m: str(v) for m, v in net.items()},
            },
        }


def parse_day(value: str | None) -> str:
    if not value:
        raise InvalidField("day", "day is required (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise InvalidField("day", "day must be a date, YYYY-MM-DD") from None


def parse_limit(value: str | None) -> int:
    if value is None:
        return 100
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise InvalidField("limit", f"limit must be a whole number from 1 to {MAX_PAGE}")
    return int(value)
