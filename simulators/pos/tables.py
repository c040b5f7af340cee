"""The simulator's SQLite schema: stores (with their knobs), their prices and the commands
they received, the transactions they rang up, and their catalogs with the catalog commands.
Behaviour lives in ``platform.py``; this module is only the storage layout."""

from __future__ import annotations

from sqlalchemy import MetaData, Table
from sqlmodel import Field, SQLModel


class PosTable(SQLModel):
    """Base of the simulator's tables: their own MetaData, so that they never clash with
    tables other parts of the process declare on ``SQLModel.metadata``."""

    metadata = MetaData()


class StoreRow(PosTable, table=True):
    __tablename__ = "pos_store"

    store_id: str = Field(primary_key=True)
    position: int = Field(index=True)
    region: str
    knobs: str  # StoreKnobs as JSON
    windows_set_at: float | None = None  # unix time the offline windows count from


class PriceRow(PosTable, table=True):
    __tablename__ = "pos_price"

    store_id: str = Field(primary_key=True)
    sku: str = Field(primary_key=True)
    price: str  # decimal string


class CommandRow(PosTable, table=True):
    __tablename__ = "pos_command"

    store_id: str = Field(primary_key=True)
    command_id: str = Field(primary_key=True)
    payload: str  # changes, effective_at, callback_url as JSON
    status: str
    reason: str | None = None
    apply_count: int = 0
    received_at: str
    applied_at: str | None = None
    confirmation: str | None = None  # pending | sent | failed | lost; None without callback


class TransactionRow(PosTable, table=True):
    """A transaction the store rang up (its journal): the body as the POS keeps it."""

    __tablename__ = "pos_transaction"

    store_id: str = Field(primary_key=True)
    txn_id: str = Field(primary_key=True)
    day: str = Field(index=True)  # the occurred_at date, in the offset the POS reported
    kind: str  # sale | refund | void
    body: str  # the sale JSON


class CatalogItemRow(PosTable, table=True):
    """An item a store sells: its body is kept once per distinct body (``pos_catalog_body``)."""

    __tablename__ = "pos_catalog_item"

    store_id: str = Field(primary_key=True)
    sku: str = Field(primary_key=True)
    digest: str


class CatalogBodyRow(PosTable, table=True):
    __tablename__ = "pos_catalog_body"

    digest: str = Field(primary_key=True)
    body: str  # the item's canonical JSON


class CatalogVersionRow(PosTable, table=True):
    __tablename__ = "pos_catalog_version"

    store_id: str = Field(primary_key=True)
    version: str


class CatalogCommandRow(PosTable, table=True):
    __tablename__ = "pos_catalog_command"

    store_id: str = Field(primary_key=True)
    command_id: str = Field(primary_key=True)
    digest: str  # of the body as received: a repeat with another body is refused
    payload: str | None  # version, upserts, withdrawals as JSON; dropped once processed
    version: str
    state: str
    applied: int = 0
    refused: str = "[]"  # JSON list of {sku, odoo_id, reason}
    received_at: str
    applied_at: str | None = None


def table(name: str) -> Table:
    return PosTable.metadata.tables[name]


STORES = table("pos_store")
PRICES = table("pos_price")
COMMANDS = table("pos_command")
TRANSACTIONS = table("pos_transaction")
CATALOG_ITEMS = table("pos_catalog_item")
CATALOG_BODIES = table("pos_catalog_body")
CATALOG_VERSIONS = table("pos_catalog_version")
CATALOG_COMMANDS = table("pos_catalog_command")
