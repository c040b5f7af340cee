"""Persistence of the fleet: one SQLite connection, written by one thread in group commits.

The platform keeps its state in memory and hands every change here as it happens. A single
writer thread takes whatever has been queued, in order, and writes it in one transaction
(consecutive rows of the same statement in one ``executemany``), so a burst of commands
costs a few commits, not one each. ``wait(ticket)`` blocks until a change is committed: a
command is on disk before the platform answers 202. A restart on the same file finds the
fleet, its prices and every command as they were.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import (
    Engine,
    Executable,
    bindparam,
    create_engine,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.pool import StaticPool

from .tables import (
    CATALOG_BODIES,
    CATALOG_COMMANDS,
    CATALOG_ITEMS,
    CATALOG_VERSIONS,
    COMMANDS,
    PRICES,
    STORES,
    TRANSACTIONS,
    PosTable,
)

logger = logging.getLogger(__name__)

Write = tuple[Executable, list[dict[str, Any]] | None]


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def _keyed(table_update: Any, *keys: str) -> Any:
    return table_update.where(*[table_update.table.c[k] == bindparam(f"b_{k}") for k in keys])


UPDATE_COMMAND = _keyed(update(COMMANDS), "store_id", "command_id").values(
    status=bindparam("status"),
    reason=bindparam("reason"),
    apply_count=bindparam("apply_count"),
    applied_at=bindparam("applied_at"),
    confirmation=bindparam("confirmation"),
)
UPDATE_CONFIRMATION = _keyed(update(COMMANDS), "store_id", "command_id").values(
    confirmation=bindparam("confirmation")
)
UPDATE_PRICE = _keyed(update(PRICES), "store_id", "sku").values(price=bindparam("price"))
UPDATE_KNOBS = _keyed(update(STORES), "store_id").values(
    knobs=bindparam("knobs"), windows_set_at=bindparam("windows_set_at")
)
UPDATE_CATALOG_COMMAND = _keyed(update(CATALOG_COMMANDS), "store_id", "command_id").values(
    state=bindparam("state"),
    applied=bindparam("applied"),
    refused=bindparam("refused"),
    applied_at=bindparam("applied_at"),
    payload=None,
)
DELETE_CATALOG_ITEM = delete(CATALOG_ITEMS).where(
    CATALOG_ITEMS.c.store_id == bindparam("b_store_id"), CATALOG_ITEMS.c.sku == bindparam("b_sku")
)
PUT_CATALOG_ITEM = insert(CATALOG_ITEMS).prefix_with("OR REPLACE")
PUT_CATALOG_BODY = insert(CATALOG_BODIES).prefix_with("OR IGNORE")
PUT_CATALOG_VERSION = insert(CATALOG_VERSIONS).prefix_with("OR REPLACE")
INSERT_CATALOG_COMMAND = insert(CATALOG_COMMANDS)
INSERT_COMMAND = insert(COMMANDS)
INSERT_TRANSACTION = insert(TRANSACTIONS)


class PosDatabase:
    """The fleet's SQLite database (a file, or memory when ``path`` is None)."""

    def __init__(self, path: str | None = None) -> None:
        url = f"sqlite:///{path}" if path else "sqlite://"
        self.engine: Engine = create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        event.listen(self.engine, "connect", _on_connect)
        self._conn_lock = threading.Lock()
        self.conn = self.engine.connect()
        with self._conn_lock:
            PosTable.metadata.create_all(self.conn)
            self.conn.commit()
        self._cond = threading.Condition()
        self._queue: list[tuple[int, Write]] = []
        self._queued = 0  # last ticket handed out
        self._committed = 0  # last ticket written (or given up on)
        self._closing = False
        self.failed_writes = 0
        self._writer = threading.Thread(target=self._write_loop, name="pos-db-writer", daemon=True)
        self._writer.start()

    # -- the writer -------------------------------------------------------------------------

    def submit(self, *writes: Write) -> int:
        """Queue writes (in order, after everything queued before); returns a ticket."""
        with self._cond:
            if self._closing:
                raise RuntimeError("the database is closed")
            self._queued += 1
            self._queue.extend((self._queued, write) for write in writes)
            self._cond.notify_all()
            return self._queued

    def wait(self, ticket: int | None = None, timeout: float | None = 30.0) -> bool:
        """Block until the writes of ``ticket`` (default: everything queued) are committed."""
        with self._cond:
            target = self._queued if ticket is None else ticket
            return self._cond.wait_for(lambda: self._committed >= target, timeout=timeout)

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue) or self._closing)
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
            self._write_batch([write for _ticket, write in batch])
            with self._cond:
                self._committed = batch[-1][0]
                self._cond.notify_all()

    def _write_batch(self, writes: list[Write]) -> None:
        # Consecutive rows for the same statement go in one executemany; order is kept.
        runs: list[Write] = []
        for statement, rows in writes:
            last = runs[-1] if runs else None
            if last is not None and last[0] is statement and rows and last[1]:
                last[1].extend(rows)
            else:
                runs.append((statement, list(rows) if rows is not None else None))
        with self._conn_lock:
            try:
                for statement, rows in runs:
                    if rows is None:
                        self.conn.execute(statement)
                    elif rows:
                        self.conn.execute(statement, rows)
                self.conn.commit()
            except Exception:
                self.conn.rollback()
                self.failed_writes += len(writes)
                logger.exception("writing %d changes failed", len(writes))

    # -- reads ------------------------------------------------------------------------------

    def load(self) -> tuple[list[RowMapping], list[RowMapping], list[RowMapping]]:
        """Stores (in fleet order), prices and commands (in arrival order), once everything
        queued is written."""
        self.wait()
        with self._conn_lock:
            stores = list(self.conn.execute(select(STORES).order_by(STORES.c.position)).mappings())
            prices = list(self.conn.execute(select(PRICES)).mappings())
            commands = list(
                self.conn.execute(select(COMMANDS).order_by(COMMANDS.c.received_at)).mappings()
            )
            self.conn.rollback()
        return stores, prices, commands

    def load_transactions(self) -> list[RowMapping]:
        """Every transaction of the fleet's journals, once everything queued is written."""
        self.wait()
        with self._conn_lock:
            rows = list(self.conn.execute(select(TRANSACTIONS)).mappings())
            self.conn.rollback()
        return rows

    def load_catalogs(
        self,
    ) -> tuple[list[RowMapping], list[RowMapping], list[RowMapping]]:
        """Catalog items (with their bodies), versions and catalog commands (in arrival order)."""
        self.wait()
        with self._conn_lock:
            join = CATALOG_ITEMS.join(
                CATALOG_BODIES, CATALOG_ITEMS.c.digest == CATALOG_BODIES.c.digest
            )
            items = list(
                self.conn.execute(
                    select(CATALOG_ITEMS.c.store_id, CATALOG_BODIES.c.body).select_from(join)
                ).mappings()
            )
            versions = list(self.conn.execute(select(CATALOG_VERSIONS)).mappings())
            commands = list(
                self.conn.execute(
                    select(CATALOG_COMMANDS).order_by(CATALOG_COMMANDS.c.received_at)
                ).mappings()
            )
            self.conn.rollback()
        return items, versions, commands

    # -- writes -----------------------------------------------------------------------------

    def add_stores(self, stores: list[dict[str, Any]], prices: list[dict[str, Any]]) -> None:
        self.wait(self.submit((insert(STORES), stores), (insert(PRICES), prices)))

    def wipe(self) -> None:
        self.wait(
            self.submit(
                (delete(TRANSACTIONS), None),
                (delete(CATALOG_COMMANDS), None),
                (delete(CATALOG_ITEMS), None),
                (delete(CATALOG_BODIES), None),
                (delete(CATALOG_VERSIONS), None),
                (delete(COMMANDS), None),
                (delete(PRICES), None),
                (delete(STORES), None),
            )
        )

    def add_command(self, row: dict[str, Any]) -> int:
        return self.submit((INSERT_COMMAND, [row]))

    def add_transactions(self, rows: list[dict[str, Any]]) -> int:
        return self.submit((INSERT_TRANSACTION, rows))

    def save_applied(self, commands: list[dict[str, Any]], prices: list[dict[str, Any]]) -> int:
        """A batch of processed commands and the prices they set."""
        return self.submit((UPDATE_COMMAND, commands), (UPDATE_PRICE, prices))

    def add_catalog_command(self, row: dict[str, Any]) -> int:
        return self.submit((INSERT_CATALOG_COMMAND, [row]))

    @staticmethod
    def catalog_writes(
        store_id: str,
        row: dict[str, Any],
        removed: list[str],
        items: list[tuple[str, str, str]],
        version: str | None,
    ) -> list[Write]:
        """The writes of one processed catalog command, in order (SKUs removed, then the
        items written as ``(sku, digest, body)``); the caller submits a batch of them."""
        writes: list[Write] = [(UPDATE_CATALOG_COMMAND, [row])]
        if removed:
            writes.append(
                (DELETE_CATALOG_ITEM, [{"b_store_id": store_id, "b_sku": s} for s in removed])
            )
        if items:
            writes.append((PUT_CATALOG_BODY, [{"digest": d, "body": b} for _s, d, b in items]))
            writes.append(
                (
                    PUT_CATALOG_ITEM,
                    [{"store_id": store_id, "sku": s, "digest": d} for s, d, _b in items],
                )
            )
        if version is not None:
            writes.append((PUT_CATALOG_VERSION, [{"store_id": store_id, "version": version}]))
        return writes

    def save_confirmation(self, store_id: str, command_id: str, confirmation: str) -> int:
        row = {"b_store_id": store_id, "b_command_id": command_id, "confirmation": confirmation}
        return self.submit((UPDATE_CONFIRMATION, [row]))

    def save_knobs(self, rows: list[dict[str, Any]]) -> int:
        return self.submit((UPDATE_KNOBS, rows))

    def close(self) -> None:
        """Write what is queued, stop the writer, close the connection."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify_all()
        self._writer.join(timeout=30)
        with self._conn_lock:
            self.conn.close()
        self.engine.dispose()
