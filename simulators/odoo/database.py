"""The emulator's SQLite database: engine, schema, seeding and one transaction per RPC.

SQLite has one writer at a time, so a single connection guarded by a lock serves every
request thread; each RPC runs in one transaction that commits on success and rolls back on
any exception, which is Odoo's all-or-nothing behaviour per call. In the ``postgres``
concurrency mode (see ``concurrency``) commits become visible after the call's work, out of
id order, and colliding writers fail as on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.pool import StaticPool

from . import tables as T
from .concurrency import (
    Concurrency,
    IdCounters,
    Ledger,
    SerializationFailure,
    TrackedConnection,
    pause,
    restore_inserts,
    stash_inserts,
)
from .cost import consume_current
from .models import MODEL_CLASSES
from .orm import Env, Registry
from .seed import seed

# Planner statistics (sqlite_stat1 rows: table, index, "rows rows-per-key..."). SQLite has no
# statistics until ANALYZE runs, and then only for the data of that moment; fixed figures of a
# large database keep it choosing the selective index (a move's lines by move_id, not by
# account_id) however small or skewed the data is.
PLANNER_STATS = [
    ("account_move", "ix_account_move_ref", "200000 2"),
    ("account_move", "ix_account_move_name", "200000 1"),
    ("account_move", "account_move_journal_date", "200000 25000 100"),
    ("account_move", "account_move_journal", "200000 25000"),
    ("account_move", "account_move_sequence_index", "200000 25000 20000 1"),
    ("account_move_line", "ix_account_move_line_move_id", "800000 4"),
    ("account_move_line", "ix_account_move_line_account_id", "800000 20000"),
    ("product_product", "ix_product_product_default_code", "100000 2"),
    ("product_product", "ix_product_product_barcode", "100000 1"),
    ("product_product", "ix_product_product_product_tmpl_id", "100000 1"),
    ("product_template", "ix_product_template_default_code", "100000 2"),
    ("product_template", "ix_product_template_name", "100000 2"),
    ("stock_picking", "ix_stock_picking_origin", "100000 2"),
    ("stock_picking", "ix_stock_picking_name", "100000 1"),
    ("stock_move", "ix_stock_move_picking_id", "300000 3"),
    ("stock_move", "stock_move_product_state", "300000 30 10"),
    ("stock_quant", "stock_quant_product_location", "100000 5 1"),
    ("m2m_link", "m2m_link_left", "300000 30000 2"),
    ("m2m_link", "m2m_link_right", "300000 30000 50"),
]


def _install_planner_stats(conn: Any) -> None:
    conn.exec_driver_sql("ANALYZE sqlite_schema")
    conn.exec_driver_sql("DELETE FROM sqlite_stat1")
    for table, index, stat in PLANNER_STATS:
        conn.exec_driver_sql(
            "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)", (table, index, stat)
        )
    # Makes the connection reload the statistics.
    conn.exec_driver_sql("ANALYZE sqlite_schema")


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # LIKE must be case-sensitive for Odoo's 'like' (ilike lowers both sides explicitly).
    cursor.execute("PRAGMA case_sensitive_like = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Database:
    """One emulated Odoo database backed by SQLite (a file, or memory when ``path`` is None)."""

    def __init__(self, path: str | None = None, concurrency: Concurrency | None = None) -> None:
        self.concurrency = concurrency or Concurrency()
        self.ledger = Ledger()
        self.ids = IdCounters()
        url = f"sqlite:///{path}" if path else "sqlite://"
        self.engine: Engine = create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        event.listen(self.engine, "connect", _on_connect)
        self.registry = Registry(MODEL_CLASSES)
        self.lock = threading.Lock()
        # Ids known to exist as of the last commit (see Env.committed); saves FK look-ups.
        self.known: dict[str, set[int]] = {}
        # The transaction timestamp of each call (PostgreSQL's now(), microseconds, UTC
        # naive); tests replace it to write several records within one second.
        self.clock: Callable[[], dt.datetime] = _utc_now
        self.conn = self.engine.connect()
        with self.lock:
            T.EmulatorTable.metadata.create_all(self.conn)
            self.conn.commit()
            companies = T.ResCompany.__table__  # type: ignore[attr-defined]
            empty = self.conn.execute(select(func.count()).select_from(companies)).scalar_one() == 0
            if empty:
                seed(self.conn, self.registry)
            _install_planner_stats(self.conn)
            self.conn.commit()
            self._load_ids()

    def _load_ids(self) -> None:
        self.ids.load(self.conn, list(T.EmulatorTable.metadata.sorted_tables))

    @contextmanager
    def transaction(self, uid: int, context: dict[str, Any] | None = None) -> Iterator[Env]:
        """One call's unit of work: commit if the block returns, roll back if it raises."""
        if self.concurrency.interleaved:
            with self._interleaved(uid, context) as env:
                yield env
            return
        with self.lock:
            env = Env(self.registry, self.conn, uid, context, self.clock(), known=self.known)
            try:
                yield env
            except BaseException:
                self.conn.rollback()
                raise
            else:
                self.conn.commit()
                env.committed()

    @contextmanager
    def _interleaved(self, uid: int, context: dict[str, Any] | None) -> Iterator[Env]:
        """``postgres`` mode: work under the lock, commit later, fail on write conflicts."""
        txn = self.ledger.begin()
        conn = TrackedConnection(self.conn, txn, self.ids)
        delay = 0.0
        failed = False
        with self.lock:
            # A fresh existence cache: another call's view of what exists is not this one's.
            env = Env(self.registry, conn, uid, context, self.clock(), known={})  # type: ignore[arg-type]
            try:
                yield env
            except BaseException:
                self.conn.rollback()
                self.ledger.end(txn)
                raise
            if not txn.wrote:
                self.conn.commit()
                self.ledger.commit(txn)
                return
            if self.ledger.conflicts(txn):
                self.conn.rollback()
                self.ledger.fail(txn)
                failed = True
            else:
                stash_inserts(self.conn, txn)
                self.conn.commit()
                self.ledger.hold(txn)
                delay = self.concurrency.commit_delay()
        # The call's server time (cost model): its transaction stays open meanwhile, and the
        # lock is free for the other calls.
        consume_current()
        if failed:
            pause(self.concurrency.conflict_delay_ms / 1000)
            raise SerializationFailure()
        pause(delay)
        with self.lock:
            restore_inserts(self.conn, txn)
            self.conn.commit()
            self.ledger.commit(txn)

    @property
    def pending_commits(self) -> int:
        """Calls (``postgres`` mode) whose work is done but whose commit is not visible yet."""
        return self.ledger.pending

    def reset(self) -> None:
        """Wipe every table and seed the chart again."""
        with self.lock:
            self.known.clear()
            T.EmulatorTable.metadata.drop_all(self.conn)
            T.EmulatorTable.metadata.create_all(self.conn)
            seed(self.conn, self.registry)
            _install_planner_stats(self.conn)
            self.conn.commit()
            self._load_ids()

    def ensure_users(self, logins: list[str]) -> None:
        """Create the configured logins that the seed does not have (as internal users)."""
        with self.transaction(uid=1) as env:
            users = env["res.users"]
            existing = set(
                env.conn.execute(
                    select(users._t.c.login).where(users._t.c.login.in_(logins))
                ).scalars()
            )
            for login in logins:
                if login not in existing:
                    users._create([{"login": login, "name": login.title(), "company_id": 1}])

    def close(self) -> None:
        with self.lock:
            self.conn.close()
        self.engine.dispose()
