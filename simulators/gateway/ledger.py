"""The gateway's books: payment intents and their charges, refunds, balance transactions,
payouts and stored idempotent results, in SQLite through SQLModel.

One lock serialises every operation, and an idempotent request runs its work and stores its
result in the same transaction, so a response lost after the commit is replayed, never redone.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import string
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, event, or_
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, col, create_engine, delete, select, update

from .errors import StripeError, invalid, missing
from .search import search_payment_intents
from .tables import (
    BalanceTransactionRow,
    ChargeRow,
    EventRow,
    GatewayTable,
    IdempotencyRow,
    PaymentIntentRow,
    PayoutRow,
    RefundRow,
)
from .wire import API_VERSION, canonical, money

IDEMPOTENCY_TTL_S = 24 * 3600
# Why Stripe says a refund failed after it had succeeded.
REFUND_FAILURE_REASONS = ("lost_or_stolen_card", "expired_or_canceled_card", "unknown")
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
REFUND_PARAMS = frozenset(
    {"payment_intent", "charge", "amount", "reason", "metadata", "expand", "currency"}
)
# Why a payout fails, as Stripe words it (``failure_code`` -> ``failure_message``).
PAYOUT_FAILURES = {
    "account_closed": "The bank account has been closed.",
    "account_frozen": "The bank account has been frozen.",
    "bank_account_restricted": "The bank account has restrictions on the payouts allowed.",
    "could_not_process": "The bank could not process this payout.",
    "insufficient_funds": "Your Stripe account has insufficient funds to cover the payout.",
    "invalid_account_number": "The account number is invalid.",
    "no_account": "The bank account details on file are probably incorrect.",
}
DAY_S = 86400
PAYOUT_DELAY_DAYS = 2
_ALPHABET = string.ascii_letters + string.digits


def card_fee(amount: int) -> int:
    """Stripe's US card pricing: 2.9 % + 30 cents."""
    return round(amount * 0.029) + 30


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    request_id: str
    replayed: bool = False


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def _int(value: Any, param: str, minimum: int = 1) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise invalid(
            "Invalid integer: " + str(value), "parameter_invalid_integer", param
        ) from None
    if number < minimum:
        raise invalid(
            f"This value must be greater than or equal to {minimum}.",
            "parameter_invalid_integer",
            param,
        )
    return number


def _metadata(value: Any) -> dict[str, str]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise invalid("Invalid hash", "parameter_invalid_empty", "metadata")
    # An empty value unsets a key in Stripe; on creation it is simply left out.
    return {str(k): str(v) for k, v in value.items() if v != ""}


def _limit(params: dict[str, Any]) -> int:
    limit = _int(params.get("limit", 10), "limit")
    if limit > 100:
        raise invalid(
            "This value must be less than or equal to 100.", "parameter_invalid_integer", "limit"
        )
    return limit


def _page(items: list[dict[str, Any]], url: str, params: dict[str, Any]) -> dict[str, Any]:
    """Stripe's list object over ``items`` (newest first), with its cursor parameters."""
    limit = _limit(params)
    ids = [item["id"] for item in items]
    after, before = params.get("starting_after"), params.get("ending_before")
    if after:
        if after not in ids:
            raise missing("object", after, "starting_after")
        items = items[ids.index(after) + 1 :]
    elif before:
        if before not in ids:
            raise missing("object", before, "ending_before")
        items = items[: ids.index(before)][-limit:]
        return {"object": "list", "data": items, "has_more": ids.index(before) > limit, "url": url}
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit, "url": url}


def _created_filter(value: Any) -> Callable[[int], bool]:
    if value is None:
        return lambda _created: True
    if not isinstance(value, dict):
        exact = _int(value, "created", 0)
        return lambda created: created == exact
    bounds = {op: _int(v, f"created[{op}]", 0) for op, v in value.items()}
    unknown = set(bounds) - {"gt", "gte", "lt", "lte"}
    if unknown:
        raise invalid(
            f"Received unknown parameter: created[{sorted(unknown)[0]}]", "parameter_unknown"
        )

    def accept(created: int) -> bool:
        return all(
            {"gt": created > b, "gte": created >= b, "lt": created < b, "lte": created <= b}[op]
            for op, b in bounds.items()
        )

    return accept


def _created_conditions(column: Any, value: Any) -> list[ColumnElement[bool]]:
    """``created=N`` or ``created[gt|gte|lt|lte]=N`` as SQL conditions on ``column``."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return [column == _int(value, "created", 0)]
    unknown = set(value) - {"gt", "gte", "lt", "lte"}
    if unknown:
        raise invalid(
            f"Received unknown parameter: created[{sorted(unknown)[0]}]", "parameter_unknown"
        )
    ops = {
        "gt": column.__gt__,
        "gte": column.__ge__,
        "lt": column.__lt__,
        "lte": column.__le__,
    }
    return [ops[op](_int(v, f"created[{op}]", 0)) for op, v in value.items()]


def _payout_id(day: int, currency: str) -> str:
    return f"po_sim{dt.datetime.fromtimestamp(day, dt.UTC).strftime('%Y%m%d')}{currency}"


def _migrate(engine: Engine) -> None:
    """Bring a database file kept from an older simulator up to the current schema."""
    with engine.begin() as conn:
        columns = {row[1] for row in conn.exec_driver_sql("PRAGMA table_info(gw_payment_intent)")}
        if "store_id" not in columns:
            conn.exec_driver_sql("ALTER TABLE gw_payment_intent ADD COLUMN store_id VARCHAR")
            conn.exec_driver_sql(
                "UPDATE gw_payment_intent SET store_id = json_extract(metadata_json, '$.store_id')"
            )
        columns = {
            row[1] for row in conn.exec_driver_sql("PRAGMA table_info(gw_balance_transaction)")
        }
        if "payout" not in columns:
            conn.exec_driver_sql("ALTER TABLE gw_balance_transaction ADD COLUMN payout VARCHAR")
        for name in ("gw_payment_intent", "gw_balance_transaction"):
            for index in GatewayTable.metadata.tables[name].indexes:
                index.create(conn, checkfirst=True)


def _day_start(timestamp: int) -> int:
    return timestamp - timestamp % DAY_S


class Ledger:
    """The simulated Stripe account (test mode): one SQLite database, memory when ``path`` is
    None. ``seed`` makes generated ids and decline draws reproducible. ``idempotency_ttl_s``:
    how long an idempotency key is kept (Stripe: 24 hours); a request with an older key runs
    again as a new request."""

    def __init__(
        self,
        path: str | None = None,
        seed: int | None = None,
        idempotency_ttl_s: float = IDEMPOTENCY_TTL_S,
    ) -> None:
        if idempotency_ttl_s < 0:
            raise ValueError("idempotency_ttl_s must be >= 0")
        self.idempotency_ttl_s = float(idempotency_ttl_s)
        url = f"sqlite:///{path}" if path else "sqlite://"
        self.engine = create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        event.listen(self.engine, "connect", _on_connect)
        GatewayTable.metadata.create_all(self.engine)
        _migrate(self.engine)
        self.lock = threading.RLock()
        with Session(self.engine) as s:
            # A restart on a kept file continues the id sequence instead of repeating it.
            known = len(s.exec(select(BalanceTransactionRow.seq)).all())
            known += len(s.exec(select(RefundRow.seq)).all())
        self.rng = random.Random(seed if not known or seed is None else f"{seed}:{known}")
        self._in_flight: set[str] = set()
        self._flight_lock = threading.Lock()
        with self.session() as s:
            # Transactions of a file kept from before payouts were stored join theirs now.
            query = select(BalanceTransactionRow).where(
                col(BalanceTransactionRow.payout).is_(None), BalanceTransactionRow.type != "payout"
            )
            for row in s.exec(query.order_by(col(BalanceTransactionRow.seq))).all():
                self._book(s, row)

    def close(self) -> None:
        self.engine.dispose()

    def reset(self) -> None:
        with self.lock:
            GatewayTable.metadata.drop_all(self.engine)
            GatewayTable.metadata.create_all(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One serialised transaction: committed if the block returns, rolled back if not."""
        with self.lock, Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
            except BaseException:
                session.rollback()
                raise
            session.commit()

    def new_id(self, prefix: str) -> str:
        with self.lock:
            return prefix + "".join(self.rng.choices(_ALPHABET, k=24))

    # -- objects ----------------------------------------------------------------------------

    def create_payment_intent(
        self,
        intent_id: str,
        amount: int,
        currency: str = "usd",
        metadata: dict[str, str] | None = None,
        created: int | None = None,
    ) -> dict[str, Any]:
        """A succeeded card payment and its charge; an id already known is returned as is."""
        if not intent_id:
            raise ValueError("a payment intent needs an id")
        if int(amount) < 1:
            raise ValueError("amount must be a positive integer (minor units)")
        with self.session() as s:
            row = s.get(PaymentIntentRow, intent_id)
            if row is None:
                when = int(created if created is not None else time.time())
                meta = {str(k): str(v) for k, v in (metadata or {}).items()}
                charge_id, txn_id = self.new_id("ch_"), self.new_id("txn_")
                row = PaymentIntentRow(
                    id=intent_id,
                    amount=int(amount),
                    currency=currency.lower(),
                    metadata_json=json.dumps(meta),
                    store_id=meta.get("store_id"),
                    created=when,
                    charge_id=charge_id,
                )
                fee = card_fee(row.amount)
                s.add(row)
                s.add(
                    ChargeRow(
                        id=charge_id,
                        payment_intent=intent_id,
                        amount=row.amount,
                        currency=row.currency,
                        created=when,
                        balance_transaction=txn_id,
                    )
                )
                self._book(
                    s,
                    BalanceTransactionRow(
                        id=txn_id,
                        type="charge",
                        amount=row.amount,
                        fee=fee,
                        net=row.amount - fee,
                        currency=row.currency,
                        created=when,
                        source=charge_id,
                    ),
                )
            return self._intent(s, row, expand=())

    def payment_intent(self, intent_id: str, expand: tuple[str, ...] = ()) -> dict[str, Any]:
        with self.session() as s:
            row = s.get(PaymentIntentRow, intent_id)
            if row is None:
                raise missing("payment_intent", intent_id, "intent")
            return self._intent(s, row, expand)

    def search_payment_intents(self, params: dict[str, Any]) -> dict[str, Any]:
        """``GET /v1/payment_intents/search``: Stripe's search result object (see search.py)."""
        with self.session() as s:
            rows, next_page, expand = search_payment_intents(s, params)
            return {
                "object": "search_result",
                "data": [self._intent(s, row, expand) for row in rows],
                "has_more": next_page is not None,
                "next_page": next_page,
                "url": "/v1/payment_intents/search",
            }

    def charge(self, charge_id: str, expand: tuple[str, ...] = ()) -> dict[str, Any]:
        with self.session() as s:
            row = s.get(ChargeRow, charge_id)
            if row is None:
                raise missing("charge", charge_id, "id")
            out = self._charge(row)
            if "payment_intent" in expand:
                intent = s.get(PaymentIntentRow, row.payment_intent)
                assert intent is not None
                out["payment_intent"] = self._intent(s, intent, ())
            return out

    def refund(self, refund_id: str) -> dict[str, Any]:
        with self.session() as s:
            row = s.exec(select(RefundRow).where(RefundRow.id == refund_id)).first()
            if row is None:
                raise missing("refund", refund_id, "id")
            return self._refund(row)

    def refunds(
        self, payment_intent: str | None = None, charge: str | None = None
    ) -> list[dict[str, Any]]:
        """Refunds, newest first, optionally of one payment intent or charge."""
        with self.session() as s:
            query = select(RefundRow).order_by(col(RefundRow.seq).desc())
            if payment_intent:
                query = query.where(RefundRow.payment_intent == payment_intent)
            if charge:
                query = query.where(RefundRow.charge == charge)
            return [self._refund(r) for r in s.exec(query)]

    def list_refunds(self, params: dict[str, Any]) -> dict[str, Any]:
        items = self.refunds(params.get("payment_intent"), params.get("charge"))
        accept = _created_filter(params.get("created"))
        return _page([r for r in items if accept(r["created"])], "/v1/refunds", params)

    def create_refund(
        self, s: Session, params: dict[str, Any], declined: Callable[[str], bool]
    ) -> dict[str, Any]:
        """Refund a charge (by payment intent or charge id), in the caller's transaction."""
        unknown = sorted(set(params) - REFUND_PARAMS)
        if unknown:
            raise invalid(
                f"Received unknown parameter: {unknown[0]}", "parameter_unknown", unknown[0]
            )
        intent_id, charge_id = params.get("payment_intent"), params.get("charge")
        if not intent_id and not charge_id:
            raise invalid(
                "One of the following params should be provided for this request: "
                "payment_intent or charge.",
                "parameter_missing",
            )
        if intent_id:
            intent = s.get(PaymentIntentRow, intent_id)
            if intent is None:
                raise missing("payment_intent", intent_id, "payment_intent")
            if charge_id and charge_id != intent.charge_id:
                raise invalid(
                    f"Charge {charge_id} does not belong to payment intent {intent_id}.",
                    param="charge",
                )
            charge_id = intent.charge_id
        charge = s.get(ChargeRow, charge_id)
        if charge is None:
            raise missing("charge", str(charge_id), "charge")
        reason = params.get("reason") or None
        if reason is not None and reason not in REFUND_REASONS:
            raise invalid(
                "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer",
                "parameter_invalid_empty",
                "reason",
            )
        metadata = _metadata(params.get("metadata"))
        if params.get("currency") and str(params["currency"]).lower() != charge.currency:
            raise invalid("Currency must match the charge's currency.", param="currency")
        remaining = charge.amount - charge.amount_refunded
        if remaining <= 0:
            raise invalid(
                f"Charge {charge.id} has already been refunded.",
                "charge_already_refunded",
                saved=True,
            )
        amount = (
            remaining if params.get("amount") in (None, "") else _int(params["amount"], "amount")
        )
        if amount > remaining:
            raise invalid(
                f"Refund amount ({money(amount, charge.currency)}) is greater than unrefunded "
                f"amount on charge ({money(remaining, charge.currency)})",
                "amount_too_large",
                "amount",
                saved=True,
            )
        now = int(time.time())
        row = RefundRow(
            id=self.new_id("re_"),
            charge=charge.id,
            payment_intent=charge.payment_intent,
            amount=amount,
            currency=charge.currency,
            status="succeeded",
            reason=reason,
            metadata_json=json.dumps(metadata),
            created=now,
        )
        if declined(charge.payment_intent):
            row.status, row.failure_reason = "failed", "declined"
            s.add(row)
            s.flush()
            raise StripeError(
                402,
                "card_error",
                f"The refund {row.id} was declined by the card issuer.",
                "refund_declined",
                saved=True,
                refund=self._refund(row),
            )
        row.balance_transaction = self.new_id("txn_")
        charge.amount_refunded += amount
        s.add(charge)
        s.add(row)
        self._book(
            s,
            BalanceTransactionRow(
                id=row.balance_transaction,
                type="refund",
                amount=-amount,
                fee=0,
                net=-amount,
                currency=charge.currency,
                created=now,
                source=row.id,
            ),
        )
        return self._refund(row)

    def fail_refund(self, refund_id: str, failure_reason: str = "unknown") -> list[dict[str, Any]]:
        """A succeeded refund fails afterwards, as Stripe reports days later when the card is
        closed: the money comes back to the account (a ``refund_failure`` balance transaction),
        the charge counts it as refundable again, and the events ``charge.refund.updated`` and
        ``refund.failed`` are recorded. Returns those events (for the webhook)."""
        if failure_reason not in REFUND_FAILURE_REASONS:
            raise ValueError(f"failure_reason must be one of {', '.join(REFUND_FAILURE_REASONS)}")
        with self.session() as s:
            row = s.exec(select(RefundRow).where(RefundRow.id == refund_id)).first()
            if row is None:
                raise ValueError(f"no refund {refund_id!r}")
            if row.status != "succeeded":
                raise ValueError(f"refund {refund_id} is {row.status}: only a succeeded one fails")
            charge = s.get(ChargeRow, row.charge)
            assert charge is not None
            previous = {"status": row.status, "failure_reason": None}
            now = int(time.time())
            row.status, row.failure_reason = "failed", failure_reason
            row.failure_balance_transaction = self.new_id("txn_")
            charge.amount_refunded -= row.amount
            s.add(row)
            s.add(charge)
            self._money_back(s, "refund_failure", row.failure_balance_transaction, row, now)
            refund = self._refund(row)
            return [
                self._event(s, kind, refund, previous, now)
                for kind in ("charge.refund.updated", "refund.failed")
            ]

    def _event(
        self,
        s: Session,
        kind: str,
        obj: dict[str, Any],
        previous: dict[str, Any] | None,
        created: int,
    ) -> dict[str, Any]:
        data: dict[str, Any] = {"object": obj}
        if previous is not None:
            data["previous_attributes"] = previous
        event_id = self.new_id("evt_")
        event: dict[str, Any] = {
            "id": event_id,
            "object": "event",
            "api_version": API_VERSION,
            "created": created,
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": kind,
        }
        s.add(EventRow(id=event_id, type=kind, created=created, body=json.dumps(event)))
        s.flush()
        return event

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Events, newest first, optionally of one type."""
        with self.session() as s:
            query = select(EventRow).order_by(col(EventRow.seq).desc())
            if kind:
                query = query.where(EventRow.type == kind)
            return [json.loads(r.body) for r in s.exec(query)]

    def list_events(self, params: dict[str, Any]) -> dict[str, Any]:
        accept = _created_filter(params.get("created"))
        types = params.get("types")
        items = [
            e
            for e in self.events(params.get("type"))
            if accept(e["created"]) and (not types or e["type"] in types)
        ]
        return _page(items, "/v1/events", params)

    def event(self, event_id: str) -> dict[str, Any]:
        with self.session() as s:
            row = s.exec(select(EventRow).where(EventRow.id == event_id)).first()
            if row is None:
                raise missing("event", event_id, "id")
            body: dict[str, Any] = json.loads(row.body)
            return body

    # -- settlement -------------------------------------------------------------------------

    def _money_back(
        self, s: Session, kind: str, txn_id: str, row: RefundRow | PayoutRow, now: int
    ) -> None:
        """The balance transaction of money the gateway gives back (a refund or a payout that
        failed): the amount back, no fee, paid out with the next payout."""
        self._book(
            s,
            BalanceTransactionRow(
                id=txn_id,
                type=kind,
                amount=row.amount,
                fee=0,
                net=row.amount,
                currency=row.currency,
                created=now,
                source=row.id,
            ),
        )

    def _book(self, s: Session, row: BalanceTransactionRow) -> None:
        """Add a transaction, counted in the payout of its UTC day and currency (whose own
        ``payout`` transaction follows its amount). A failed payout is final: a transaction
        that would join it joins the payout of today instead."""
        day = _day_start(row.created)
        payout = s.get(PayoutRow, _payout_id(day, row.currency))
        if payout is not None and payout.status == "failed":
            day = _day_start(int(time.time()))
            payout = s.get(PayoutRow, _payout_id(day, row.currency))
        if payout is None:
            closes = day + DAY_S
            payout = PayoutRow(
                id=_payout_id(day, row.currency),
                currency=row.currency,
                day=day,
                amount=0,
                created=closes,
                arrival_date=closes + PAYOUT_DELAY_DAYS * DAY_S,
                status="pending",
                balance_transaction=self.new_id("txn_"),
            )
            own = BalanceTransactionRow(
                id=payout.balance_transaction,
                type="payout",
                amount=0,
                fee=0,
                net=0,
                currency=row.currency,
                created=closes,
                source=payout.id,
            )
        else:
            own = s.exec(
                select(BalanceTransactionRow).where(
                    BalanceTransactionRow.id == payout.balance_transaction
                )
            ).one()
        payout.amount += row.net
        own.amount = own.net = -payout.amount
        row.payout = payout.id
        s.add(row)
        s.add(payout)
        s.add(own)
        s.flush()

    @staticmethod
    def _refresh_payouts(s: Session) -> None:
        """Payouts move on with time: ``in_transit`` once their day is over, ``paid`` on their
        arrival date (a failed one stays failed)."""
        now = int(time.time())
        s.exec(
            update(PayoutRow)
            .where(col(PayoutRow.status).in_(("pending", "in_transit")))
            .where(col(PayoutRow.arrival_date) <= now)
            .values(status="paid")
        )
        s.exec(
            update(PayoutRow)
            .where(col(PayoutRow.status) == "pending")
            .where(col(PayoutRow.created) <= now)
            .values(status="in_transit")
        )

    def list_balance_transactions(self, params: dict[str, Any]) -> dict[str, Any]:
        """Newest first, filtered and paginated in SQL: a payout of 100,000 transactions is
        read a page at a time, each page one index range."""
        limit = _limit(params)
        bt = BalanceTransactionRow
        conditions = _created_conditions(col(bt.created), params.get("created"))
        for key in ("type", "source", "currency"):
            if params.get(key):
                conditions.append(col(getattr(bt, key)) == str(params[key]))
        with self.session() as s:
            if params.get("payout"):
                if s.get(PayoutRow, str(params["payout"])) is None:
                    raise missing("payout", str(params["payout"]), "payout")
                conditions.append(col(bt.payout) == str(params["payout"]))
            after, before = params.get("starting_after"), params.get("ending_before")
            newest_first = True
            if after or before:
                anchor_id = str(after or before)
                anchor = s.exec(select(bt).where(bt.id == anchor_id)).first()
                if anchor is None:
                    raise missing(
                        "object", anchor_id, "starting_after" if after else "ending_before"
                    )
                if after:
                    conditions.append(
                        or_(
                            col(bt.created) < anchor.created,
                            and_(col(bt.created) == anchor.created, col(bt.seq) < anchor.seq),
                        )
                    )
                else:
                    newest_first = False
                    conditions.append(
                        or_(
                            col(bt.created) > anchor.created,
                            and_(col(bt.created) == anchor.created, col(bt.seq) > anchor.seq),
                        )
                    )
            order = (
                (col(bt.created).desc(), col(bt.seq).desc())
                if newest_first
                else (col(bt.created).asc(), col(bt.seq).asc())
            )
            rows = list(s.exec(select(bt).where(*conditions).order_by(*order).limit(limit + 1)))
            has_more = len(rows) > limit
            rows = rows[:limit] if newest_first else rows[:limit][::-1]
            return {
                "object": "list",
                "data": [self._transaction(r) for r in rows],
                "has_more": has_more,
                "url": "/v1/balance_transactions",
            }

    def list_payouts(self, params: dict[str, Any]) -> dict[str, Any]:
        """Newest first; few rows (one per day and currency), paged in memory."""
        conditions = _created_conditions(col(PayoutRow.created), params.get("created"))
        if params.get("status"):
            conditions.append(col(PayoutRow.status) == str(params["status"]))
        with self.session() as s:
            self._refresh_payouts(s)
            query = select(PayoutRow).where(*conditions)
            rows = s.exec(query.order_by(col(PayoutRow.created).desc(), col(PayoutRow.id).desc()))
            items = [self._payout(r) for r in rows]
        return _page(items, "/v1/payouts", params)

    def payout(self, payout_id: str) -> dict[str, Any]:
        with self.session() as s:
            self._refresh_payouts(s)
            row = s.get(PayoutRow, payout_id)
            if row is None:
                raise missing("payout", payout_id, "id")
            return self._payout(row)

    def fail_payout(
        self, payout_id: str, failure_code: str = "account_closed"
    ) -> list[dict[str, Any]]:
        """The bank returns a payout that was sent (``in_transit`` or ``paid``), as Stripe
        reports days later: it turns ``failed`` with ``failure_code``, a ``payout_failure``
        balance transaction gives the money back to the account (paid out again with today's
        payout), and the event ``payout.failed`` is recorded. Returns the events."""
        if failure_code not in PAYOUT_FAILURES:
            raise ValueError(f"failure_code must be one of {', '.join(PAYOUT_FAILURES)}")
        with self.session() as s:
            self._refresh_payouts(s)
            row = s.get(PayoutRow, payout_id)
            if row is None:
                raise ValueError(f"no payout {payout_id!r}")
            if row.status not in ("in_transit", "paid"):
                raise ValueError(
                    f"payout {payout_id} is {row.status}: only an in_transit or paid payout fails"
                )
            previous = {"status": row.status, "failure_code": None, "failure_message": None}
            now = int(time.time())
            row.status = "failed"
            row.failure_code, row.failure_message = failure_code, PAYOUT_FAILURES[failure_code]
            row.failure_balance_transaction = self.new_id("txn_")
            s.add(row)
            s.flush()
            self._money_back(s, "payout_failure", row.failure_balance_transaction, row, now)
            return [self._event(s, "payout.failed", self._payout(row), previous, now)]

    # -- idempotency ------------------------------------------------------------------------

    @contextmanager
    def claim(self, key: str | None) -> Iterator[None]:
        """Mark an idempotency key in use for a request's lifetime; a concurrent request with
        the same key is refused with 409, as Stripe does."""
        if not key:
            yield
            return
        with self._flight_lock:
            if key in self._in_flight:
                raise StripeError(
                    409,
                    "invalid_request_error",
                    "There is currently another in-progress request using this Stripe "
                    f"idempotent key (that probably means you submitted twice, and the other "
                    f"request is still going through): '{key}'. Please try again later.",
                    "idempotency_key_in_use",
                )
            self._in_flight.add(key)
        try:
            yield
        finally:
            with self._flight_lock:
                self._in_flight.discard(key)

    def idempotent(
        self,
        key: str | None,
        method: str,
        path: str,
        params: dict[str, Any],
        work: Callable[[Session], dict[str, Any]],
    ) -> Reply:
        """Run ``work`` once per key: a retry with the same parameters replays the stored
        result, one with other parameters is an ``idempotency_error``."""
        request_id = self.new_id("req_")[:18]
        text = canonical(params)
        with self.session() as s:
            row = s.get(IdempotencyRow, key) if key else None
            if row is not None and row.created <= time.time() - self.idempotency_ttl_s:
                s.delete(row)
                s.flush()
                row = None
            if row is not None:
                if (row.method, row.path, row.params_json) != (method, path, text):
                    raise StripeError(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with. Try using a key other than "
                        f"'{key}' if you meant to execute a different request.",
                    )
                return Reply(row.status, json.loads(row.body), row.request_id, replayed=True)
            try:
                reply = Reply(200, work(s), request_id)
            except StripeError as exc:
                if not exc.saved:
                    raise
                reply = Reply(exc.status, exc.body(), request_id)
            if key:
                s.add(
                    IdempotencyRow(
                        key=key,
                        method=method,
                        path=path,
                        params_json=text,
                        status=reply.status,
                        body=json.dumps(reply.body),
                        request_id=request_id,
                        created=time.time(),
                    )
                )
            return reply

    def expire_idempotency_keys(self, older_than_s: float | None = None) -> int:
        """Forget the keys older than this (default: the ledger's TTL), as time passing would."""
        with self.session() as s:
            ttl = self.idempotency_ttl_s if older_than_s is None else older_than_s
            cutoff = time.time() - ttl
            result = s.exec(delete(IdempotencyRow).where(col(IdempotencyRow.created) <= cutoff))
            return int(result.rowcount or 0)

    # -- shapes -----------------------------------------------------------------------------

    def _intent(self, s: Session, row: PaymentIntentRow, expand: tuple[str, ...]) -> dict[str, Any]:
        latest: Any = row.charge_id
        if "latest_charge" in expand:
            charge = s.get(ChargeRow, row.charge_id)
            assert charge is not None
            latest = self._charge(charge)
        return {
            "id": row.id,
            "object": "payment_intent",
            "amount": row.amount,
            "amount_capturable": 0,
            "amount_received": row.amount,
            "capture_method": "automatic",
            "confirmation_method": "automatic",
            "created": row.created,
            "currency": row.currency,
            "customer": None,
            "description": None,
            "latest_charge": latest,
            "livemode": False,
            "metadata": json.loads(row.metadata_json),
            "payment_method": None,
            "payment_method_types": ["card"],
            "status": "succeeded",
        }

    @staticmethod
    def _charge(row: ChargeRow) -> dict[str, Any]:
        return {
            "id": row.id,
            "object": "charge",
            "amount": row.amount,
            "amount_captured": row.amount,
            "amount_refunded": row.amount_refunded,
            "balance_transaction": row.balance_transaction,
            "captured": True,
            "created": row.created,
            "currency": row.currency,
            "livemode": False,
            "metadata": {},
            "paid": True,
            "payment_intent": row.payment_intent,
            "refunded": row.amount_refunded >= row.amount,
            "status": "succeeded",
        }

    @staticmethod
    def _refund(row: RefundRow) -> dict[str, Any]:
        out = {
            "id": row.id,
            "object": "refund",
            "amount": row.amount,
            "balance_transaction": row.balance_transaction,
            "charge": row.charge,
            "created": row.created,
            "currency": row.currency,
            "metadata": json.loads(row.metadata_json),
            "payment_intent": row.payment_intent,
            "reason": row.reason,
            "failure_balance_transaction": row.failure_balance_transaction,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": row.status,
            "transfer_reversal": None,
        }
        if row.failure_reason:
            out["failure_reason"] = row.failure_reason
        return out

    @staticmethod
    def _transaction(row: BalanceTransactionRow) -> dict[str, Any]:
        return {
            "id": row.id,
            "object": "balance_transaction",
            "amount": row.amount,
            "available_on": row.created + PAYOUT_DELAY_DAYS * DAY_S,
            "created": row.created,
            "currency": row.currency,
            "description": {
                "charge": "Payment",
                "refund": "REFUND FOR CHARGE",
                "refund_failure": "REFUND FAILURE",
                "payout": "STRIPE PAYOUT",
                "payout_failure": "Payout failure",
            }[row.type],
            "fee": row.fee,
            "fee_details": (
                [{"amount": row.fee, "currency": row.currency, "type": "stripe_fee"}]
                if row.fee
                else []
            ),
            "net": row.net,
            "reporting_category": {"payout_failure": "payout_reversal"}.get(row.type, row.type),
            "source": row.source,
            "status": "available",
            "type": row.type,
        }

    @staticmethod
    def _payout(row: PayoutRow) -> dict[str, Any]:
        return {
            "id": row.id,
            "object": "payout",
            "amount": row.amount,
            "arrival_date": row.arrival_date,
            "automatic": True,
            "balance_transaction": row.balance_transaction,
            "created": row.created,
            "currency": row.currency,
            "description": "STRIPE PAYOUT",
            "failure_balance_transaction": row.failure_balance_transaction,
            "failure_code": row.failure_code,
            "failure_message": row.failure_message,
            "livemode": False,
            "metadata": {},
            "method": "standard",
            "source_type": "card",
            "statement_descriptor": None,
            "status": row.status,
            "type": "bank_account",
        }
