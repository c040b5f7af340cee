"""The ``postgres`` concurrency mode: calls interleave, commits land out of id order, and
writers that collide fail with PostgreSQL's serialization failure.

Odoo runs each RPC in one REPEATABLE READ transaction of PostgreSQL. Three consequences
matter to clients and cannot happen when every RPC runs under one lock:

* ids come from sequences at insert, but transactions commit in any order: a search can see
  a row of id 11 while the row of id 10, inserted earlier by a call still running, is not
  visible yet ("count the lower ids" is not a safe claim);
* two transactions that update the same row (or, in stock, the quants of one product) while
  both are open: the later one fails with ``could not serialize access due to concurrent
  update`` (after Odoo's own retries have failed too);
* Python-checked uniqueness is racy: two drafts created at once in a journal's new period
  both get the period's first name, and the second ``action_post`` fails.

The emulator keeps one SQLite connection and runs each call's statements under the lock (so
each call stays all-or-nothing), then models the window between the end of a call's work and
its commit:

1. the call's snapshot is the commit counter when it arrives;
2. its work runs under the lock through a :class:`TrackedConnection`, which takes ids from
   per-table counters (never reused, like PostgreSQL sequences, even after a rollback) and
   records what the call writes: updated and deleted rows, and for ``stock_quant`` the
   product (Odoo locks a product's quants to move stock);
3. if another call that committed after this call's snapshot, or has not committed yet,
   wrote any of the same keys, the work is rolled back and the call fails with
   :class:`SerializationFailure` after ``conflict_delay_ms`` (standing for Odoo's retries);
4. otherwise the rows it inserted are moved aside (invisible to every other call: reads see
   only committed rows), the lock is released, and after a random delay of up to
   ``commit_jitter_ms`` the rows are put back with their ids: the commit. The call answers
   only then, so a client always sees its own writes.

Updates and deletes are visible from step 4 on rather than at the commit: a transaction that
got there can no longer fail, and a writer of the same rows meanwhile fails at step 3 as it
would on PostgreSQL. Read-only calls have nothing to commit and answer at once.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Delete, Insert, Table, Update, delete, insert, select

MODES = ("serial", "postgres")
# A standard ir.sequence is a PostgreSQL sequence: taking a number locks no row.
UNLOCKED_TABLES = frozenset({"ir_sequence"})
CHUNK = 5000
SERIALIZATION_FAILURE = "could not serialize access due to concurrent update"


class SerializationFailure(Exception):
    """What psycopg2 raises when a REPEATABLE READ transaction loses a write conflict."""

    odoo_name = "psycopg2.errors.SerializationFailure"

    def __init__(self) -> None:
        super().__init__(SERIALIZATION_FAILURE)


@dataclass
class Concurrency:
    """How calls run: ``serial`` (one at a time, commits in call order) or ``postgres``.

    ``commit_jitter_ms``: each writing call commits after a uniform random delay in
    [0, commit_jitter_ms]; ``conflict_delay_ms``: the delay after a lost write conflict;
    ``retries``: how many times a call that lost a conflict is run again, with a fresh
    snapshot, before its serialization failure is answered (Odoo tries 5 times; the default
    0 answers the first one, which is what tests of the client's handling want);
    ``delays_ms``: fixed commit delays used first, in the order calls finish their work (then
    the random ones); ``seed``: makes the random delays reproducible.
    """

    mode: str = "serial"
    commit_jitter_ms: float = 20.0
    conflict_delay_ms: float = 10.0
    retries: int = 0
    delays_ms: tuple[float, ...] = ()
    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _scripted: list[float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"concurrency: expected one of {', '.join(MODES)}, got {self.mode!r}")
        for name in ("commit_jitter_ms", "conflict_delay_ms"):
            value = getattr(self, name)
            if not 0 <= value <= 60_000:
                raise ValueError(f"{name}: expected 0..60000, got {value!r}")
        if not 0 <= self.retries <= 10:
            raise ValueError(f"retries: expected 0..10, got {self.retries!r}")
        self.delays_ms = tuple(float(d) for d in self.delays_ms)
        if any(not 0 <= d <= 60_000 for d in self.delays_ms):
            raise ValueError("delays_ms: each delay must be within 0..60000")
        self._rng = random.Random(self.seed)
        self._scripted = list(self.delays_ms)

    @property
    def interleaved(self) -> bool:
        return self.mode == "postgres"

    def commit_delay(self) -> float:
        """Seconds before the next commit becomes visible (called under the database lock)."""
        if self._scripted:
            return self._scripted.pop(0) / 1000
        return self._rng.uniform(0, self.commit_jitter_ms) / 1000

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "commit_jitter_ms": self.commit_jitter_ms,
            "conflict_delay_ms": self.conflict_delay_ms,
            "retries": self.retries,
            "seed": self.seed,
        }


class Txn:
    """What one call wrote: its snapshot, the keys it locked, the rows it inserted."""

    def __init__(self, snapshot: int) -> None:
        self.snapshot = snapshot
        self.keys: set[tuple[str, int]] = set()
        self.inserted: dict[Table, list[int]] = defaultdict(list)
        self.stash: list[tuple[Table, list[dict[str, Any]]]] = []

    @property
    def wrote(self) -> bool:
        return bool(self.keys or self.inserted)


class IdCounters:
    """Per-table id sequences: an id is never handed out twice, even after a rollback."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def load(self, conn: Connection, tables: list[Table]) -> None:
        self._next = {
            table.name: int(
                conn.execute(select(table.c.id).order_by(table.c.id.desc())).scalar() or 0
            )
            + 1
            for table in tables
        }

    def take(self, table: Table) -> int:
        value = self._next[table.name]
        self._next[table.name] = value + 1
        return value


class TrackedConnection:
    """The connection as one call sees it in ``postgres`` mode: records its writes."""

    def __init__(self, conn: Connection, txn: Txn, ids: IdCounters) -> None:
        self._conn = conn
        self._txn = txn
        self._ids = ids

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def execute(self, statement: Any, parameters: Any = None, *args: Any, **kwargs: Any) -> Any:
        if isinstance(statement, Insert):
            parameters = self._insert(statement.table, parameters)  # type: ignore[arg-type]
        elif isinstance(statement, Update | Delete):
            self._lock_rows(statement.table, statement.whereclause)  # type: ignore[arg-type]
        return self._conn.execute(statement, parameters, *args, **kwargs)

    def _insert(self, table: Table, parameters: Any) -> Any:
        many = isinstance(parameters, list)
        rows = [dict(row) for row in (parameters if many else [parameters or {}])]
        for row in rows:
            if row.get("id") is None:
                row["id"] = self._ids.take(table)
            self._txn.inserted[table].append(int(row["id"]))
            if table.name == "stock_quant" and row.get("product_id") is not None:
                self._txn.keys.add(("stock_quant.product_id", int(row["product_id"])))
        return rows if many else rows[0]

    def _lock_rows(self, table: Table, where: Any) -> None:
        if table.name in UNLOCKED_TABLES:
            return
        quants = table.name == "stock_quant"
        columns = [table.c.id, table.c.product_id] if quants else [table.c.id]
        stmt = select(*columns)
        if where is not None:
            stmt = stmt.where(where)
        for row in self._conn.execute(stmt):
            if quants:
                self._txn.keys.add(("stock_quant.product_id", int(row.product_id)))
            else:
                self._txn.keys.add((table.name, int(row.id)))


def stash_inserts(conn: Connection, txn: Txn) -> None:
    """Move the rows ``txn`` inserted out of their tables, until its commit."""
    for table, ids in txn.inserted.items():
        rows: list[dict[str, Any]] = []
        for start in range(0, len(ids), CHUNK):
            part = ids[start : start + CHUNK]
            rows.extend(
                dict(r._mapping) for r in conn.execute(select(table).where(table.c.id.in_(part)))
            )
            conn.execute(delete(table).where(table.c.id.in_(part)))
        if rows:
            txn.stash.append((table, rows))


def restore_inserts(conn: Connection, txn: Txn) -> None:
    for table, rows in txn.stash:
        conn.execute(insert(table), rows)
    txn.stash.clear()


class Ledger:
    """Commit order and the keys of open and recently committed writers (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sequence = 0
        self.conflicts_lost = 0
        self.failures = 0
        self._open: dict[int, Txn] = {}
        self._committed: list[tuple[int, set[tuple[str, int]]]] = []
        self._snapshots: dict[int, int] = {}

    def begin(self) -> Txn:
        with self._lock:
            txn = Txn(self.sequence)
            self._snapshots[id(txn)] = txn.snapshot
            return txn

    def conflicts(self, txn: Txn) -> bool:
        """Did a writer that ``txn`` cannot see write one of its keys?"""
        if not txn.keys:
            return False
        with self._lock:
            for other in self._open.values():
                if other is not txn and other.keys & txn.keys:
                    return True
            return any(seq > txn.snapshot and keys & txn.keys for seq, keys in self._committed)

    def hold(self, txn: Txn) -> None:
        with self._lock:
            self._open[id(txn)] = txn

    def commit(self, txn: Txn) -> None:
        with self._lock:
            self._open.pop(id(txn), None)
            self.sequence += 1
            if txn.keys:
                self._committed.append((self.sequence, txn.keys))
            self._end(txn)

    def fail(self, txn: Txn) -> None:
        with self._lock:
            self.conflicts_lost += 1
            self._end(txn)

    def answered_failure(self) -> None:
        with self._lock:
            self.failures += 1

    def end(self, txn: Txn) -> None:
        with self._lock:
            self._end(txn)

    def _end(self, txn: Txn) -> None:
        self._snapshots.pop(id(txn), None)
        # Keep only the commits some open call may not have seen.
        oldest = min(self._snapshots.values(), default=self.sequence)
        self._committed = [(s, k) for s, k in self._committed if s > oldest]

    @property
    def pending(self) -> int:
        """Calls whose work is done and whose commit is not visible yet."""
        with self._lock:
            return len(self._open)


def pause(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)
