"""The gateway's SQLite schema: payment intents, their charges, refunds, balance transactions
and stored idempotent results. Behaviour lives in ``ledger.py``."""

from __future__ import annotations

from sqlalchemy import Index, MetaData
from sqlmodel import Field, SQLModel


class GatewayTable(SQLModel):
    """Base of the gateway's tables: their own MetaData, so that they never clash with
    tables other parts of the process declare on ``SQLModel.metadata``."""

    metadata = MetaData()


class PaymentIntentRow(GatewayTable, table=True):
    __tablename__ = "gw_payment_intent"
    # Search walks (store, created, id) newest first: a store-day is an index range, whatever
    # the size of the account.
    __table_args__ = (
        Index("ix_gw_pi_store_created", "store_id", "created", "id"),
        Index("ix_gw_pi_created", "created", "id"),
    )

    id: str = Field(primary_key=True)
    amount: int
    currency: str
    metadata_json: str = "{}"
    # metadata["store_id"], denormalised so that a store's search is indexed.
    store_id: str | None = None
    created: int
    charge_id: str


class ChargeRow(GatewayTable, table=True):
    __tablename__ = "gw_charge"

    id: str = Field(primary_key=True)
    payment_intent: str = Field(index=True)
    amount: int
    amount_refunded: int = 0
    currency: str
    created: int
    balance_transaction: str


class RefundRow(GatewayTable, table=True):
    __tablename__ = "gw_refund"

    seq: int | None = Field(default=None, primary_key=True)  # list order
    id: str = Field(unique=True)
    charge: str
    payment_intent: str = Field(index=True)
    amount: int
    currency: str
    status: str  # succeeded | failed
    reason: str | None = None
    failure_reason: str | None = None
    metadata_json: str = "{}"
    created: int
    balance_transaction: str | None = None
    # A refund that failed after it succeeded: the transaction that gave the money back.
    failure_balance_transaction: str | None = None


class BalanceTransactionRow(GatewayTable, table=True):
    __tablename__ = "gw_balance_transaction"

    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True)
    type: str  # charge | refund | refund_failure
    amount: int
    fee: int
    net: int
    currency: str
    created: int = Field(index=True)
    source: str


class IdempotencyRow(GatewayTable, table=True):
    __tablename__ = "gw_idempotency_key"

    key: str = Field(primary_key=True)
    method: str
    path: str
    params_json: str  # canonical form of the first request's parameters
    status: int
    body: str
    request_id: str
    created: float


class EventRow(GatewayTable, table=True):
    """An event as Stripe keeps it for ``GET /v1/events`` and sends it to the webhook."""

    __tablename__ = "gw_event"

    seq: int | None = Field(default=None, primary_key=True)  # list order
    id: str = Field(unique=True)
    type: str = Field(index=True)
    created: int
    body: str  # the event object, JSON
