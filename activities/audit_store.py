"""The audit log's storage: an append-only SQLite file (RETAILFLOW_AUDIT_DB, `var/audit.db`).

Each history event is recorded once: `event_key` (workflow_id/run_id/event_id) is UNIQUE, and
a batch is appended in one transaction that starts from the last stored record (BEGIN
IMMEDIATE: two collectors append one after the other, never interleaved), so a collector run
twice, or one that crashed mid-way, neither repeats nor skips an event. There is no code path
that updates or deletes a record, and SQLite triggers refuse UPDATE and DELETE on the table.
Each batch also appends a row to `audit_run`, the collector's cursor.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, event, text
from sqlmodel import Field, Session, SQLModel, col, create_engine, func, select

from domain.audit_log import GENESIS, AuditEvent, chain, timestamp


class AuditTable(SQLModel):
    """The audit log's tables: their own MetaData, apart from any other tables."""

    metadata = MetaData()


class AuditRow(AuditTable, table=True):
    __tablename__ = "audit_record"

    seq: int = Field(primary_key=True)
    event_key: str = Field(unique=True)
    at: str = Field(index=True)  # domain.audit_log.timestamp: UTC, sorts as text
    workflow_type: str
    workflow_id: str = Field(index=True)
    run_id: str = Field(index=True)
    event_id: int
    kind: str
    actor: str
    action: str
    target: str
    outcome: str
    details: str  # JSON
    prev_hash: str
    hash: str


class AuditRunRow(AuditTable, table=True):
    """One collector batch: when, how much, and the cursor it moved to."""

    __tablename__ = "audit_run"

    id: int | None = Field(default=None, primary_key=True)
    at: str
    closed_since: str  # the cursor: closed workflows are collected from this time on
    scope: str = ""  # the visibility filter of a partial collection ("": every workflow)
    workflows: int
    events: int


_TRIGGERS = [
    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {verb} refused'); END"
    for table in ("audit_record", "audit_run")
    for verb in ("UPDATE", "DELETE")
]


def record_of(row: AuditRow) -> dict[str, Any]:
    """The record as it was hashed."""
    return {
        "seq": row.seq,
        "event_key": row.event_key,
        "at": row.at,
        "workflow_type": row.workflow_type,
        "workflow_id": row.workflow_id,
        "kind": row.kind,
        "actor": row.actor,
        "action": row.action,
        "target": row.target,
        "outcome": row.outcome,
        "details": json.loads(row.details),
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


class AuditStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(f"sqlite:///{self.path}")
        _immediate_transactions(self.engine)
        AuditTable.metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            for ddl in _TRIGGERS:
                conn.execute(text(ddl))

    def close(self) -> None:
        self.engine.dispose()

    def append(
        self, events: Iterable[AuditEvent], cursor: datetime | None = None, scope: str = ""
    ) -> int:
        """Append the events not recorded yet, chained after the last record, and the batch's
        run row (with `cursor`, when given), in one transaction. Returns how many records
        were added."""
        pending = list(events)
        with Session(self.engine) as session, session.begin():
            known: set[str] = set()
            keys = [e.event_key for e in pending]
            for i in range(0, len(keys), 500):
                where = col(AuditRow.event_key).in_(keys[i : i + 500])
                known.update(session.exec(select(AuditRow.event_key).where(where)))
            fresh: list[AuditEvent] = []
            for e in pending:
                if e.event_key not in known:
                    known.add(e.event_key)
                    fresh.append(e)
            last = session.exec(
                select(AuditRow).order_by(col(AuditRow.seq).desc()).limit(1)
            ).first()
            records = chain(fresh, last.seq if last else 0, last.hash if last else GENESIS)
            for r in records:
                _, run_id, event_id = split_key(r["event_key"])
                fields = {k: v for k, v in r.items() if k != "details"}
                details = json.dumps(r["details"], sort_keys=True)
                session.add(AuditRow(**fields, details=details, run_id=run_id, event_id=event_id))
            if cursor is not None:
                session.add(
                    AuditRunRow(
                        at=timestamp(datetime.now(UTC)),
                        closed_since=timestamp(cursor),
                        scope=scope,
                        workflows=len({split_key(e.event_key)[1] for e in fresh}),
                        events=len(records),
                    )
                )
        return len(records)

    def cursor(self, scope: str = "") -> datetime | None:
        """Where the last batch (of this scope) left the collector: closed workflows from this
        time on."""
        with Session(self.engine) as session:
            row = session.exec(
                select(AuditRunRow)
                .where(AuditRunRow.scope == scope)
                .order_by(col(AuditRunRow.id).desc())
                .limit(1)
            ).first()
        return _parse(row.closed_since) if row else None

    def closed_runs(self, run_ids: Iterable[str]) -> set[str]:
        """Of these runs, those whose close is recorded already (nothing left to collect)."""
        ids = list(run_ids)
        out: set[str] = set()
        with Session(self.engine) as session:
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                out.update(
                    session.exec(
                        select(AuditRow.run_id)
                        .where(col(AuditRow.run_id).in_(chunk))
                        .where(AuditRow.kind == "close")
                    )
                )
        return out

    def last_event_ids(self, run_ids: Iterable[str]) -> dict[str, int]:
        """The newest event id recorded per run: a running workflow's later events are new."""
        ids = list(run_ids)
        out: dict[str, int] = {}
        with Session(self.engine) as session:
            for i in range(0, len(ids), 500):
                rows = session.exec(
                    select(AuditRow.run_id, func.max(AuditRow.event_id))
                    .where(col(AuditRow.run_id).in_(ids[i : i + 500]))
                    .group_by(col(AuditRow.run_id))
                )
                out.update({run_id: int(top) for run_id, top in rows})
        return out

    def head(self) -> tuple[int, str]:
        """The last record's seq and hash (0 and 64 zeros when empty)."""
        with Session(self.engine) as session:
            last = session.exec(
                select(AuditRow).order_by(col(AuditRow.seq).desc()).limit(1)
            ).first()
        return (last.seq, last.hash) if last else (0, GENESIS)

    def export(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """Records in chain order, from the first whose event time is at or after `start` to
        the last whose event time is before `end`: a contiguous run of the chain (so it
        verifies), which may hold a few records of neighbouring times recorded between them."""
        lo_at, hi_at = timestamp(start), timestamp(end)
        with Session(self.engine) as session:
            first = session.exec(
                select(func.min(AuditRow.seq))
                .where(AuditRow.at >= lo_at)
                .where(AuditRow.at < hi_at)
            ).one()
            last = session.exec(
                select(func.max(AuditRow.seq))
                .where(AuditRow.at >= lo_at)
                .where(AuditRow.at < hi_at)
            ).one()
            if first is None or last is None:
                return
            seq = first
            while seq <= last:
                rows = session.exec(
                    select(AuditRow)
                    .where(AuditRow.seq >= seq)
                    .where(AuditRow.seq <= last)
                    .order_by(col(AuditRow.seq))
                    .limit(1000)
                ).all()
                if not rows:
                    return
                for row in rows:
                    yield record_of(row)
                seq = rows[-1].seq + 1


def event_key(workflow_id: str, run_id: str, event_id: int) -> str:
    return f"{workflow_id}/{run_id}/{event_id}"


def split_key(key: str) -> tuple[str, str, int]:
    """workflow_id, run_id, event_id of an event key (a workflow id may hold `/`)."""
    workflow_id, run_id, event_id = key.rsplit("/", 2)
    return workflow_id, run_id, int(event_id)


def _parse(text_value: str) -> datetime:
    return datetime.fromisoformat(text_value.replace("Z", "+00:00"))


def _immediate_transactions(engine: Engine) -> None:
    """Transactions take SQLite's write lock when they begin (BEGIN IMMEDIATE): a batch reads
    the last record and appends after it with no other writer in between."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
