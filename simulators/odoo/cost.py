"""The ``odoo17`` cost model: each RPC costs the server time a real Odoo 17 spends on it.

Off by default (unit tests stay fast). When on, every JSON-RPC call is charged server time as
a function of what it did (see ``docs/odoo17-behaviour.md`` §h, "Cost model", for where each
parameter comes from), and the call does not answer before its thread has used that much CPU
time. The time is consumed the way Odoo (``workers=0``) consumes it: in the request's thread,
as Python bytecode holding the GIL. The emulator's own work counts toward the charge; the rest
is a busy loop in pure Python, which the interpreter's switch interval shares with the other
request threads like Odoo's threads share it, so two heavy calls at once each take about twice
as long (a parallel ``sleep`` would not).

What a call did is read from the call's ``Env``: the rows it inserted per model
(``env.work["create", model]``), the journal entries and items it posted
(``["post", "account.move"]``, ``["post", "account.move.line"]``), the stock moves it validated
(``["done", "stock.move"]``), and the domains it searched (``env.searched``; a search on a
field PostgreSQL has no index for scans the whole table).

Where the time is consumed: never while holding the database lock (that would serialize the
calls first-come first-served instead of sharing the CPU). In the ``postgres`` concurrency
mode a writing call consumes it after its work and before its commit, so its transaction stays
open meanwhile, as in Odoo; otherwise at the end of the call, before the answer is sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

if TYPE_CHECKING:
    from .orm import Env

MODELS = ("odoo17",)

# Methods that only read: charged the indexed read cost (plus rows returned and scans).
READ_METHODS = frozenset(
    {
        "read",
        "search",
        "search_read",
        "search_count",
        "name_search",
        "name_get",
        "read_group",
        "fields_get",
        "default_get",
        "exists",
        "check_access_rights",
        "check_access_rule",
        "get_contextual_price",
        "context_get",
        "check_object_reference",
    }
)

# Fields Odoo 17 keeps without a database index (no ``index=`` in the field definition): a
# domain on one of them, with no selective indexed key beside it, is a sequential scan.
UNINDEXED: dict[str, frozenset[str]] = {
    "account.move.line": frozenset({"name"}),
    "account.move": frozenset({"narration"}),
    "stock.picking": frozenset({"note"}),
}
# Indexed keys selective enough that PostgreSQL uses them first, then filters the few rows.
SELECTIVE = frozenset({"id", "move_id", "picking_id"})

# Models whose creates are charged by their own calibrated terms, not the generic create.
CALIBRATED = frozenset({"account.move", "account.move.line", "stock.picking", "stock.move"})


@dataclass(frozen=True)
class CostModel:
    """Server seconds per thing a call does (all in seconds; the fit is in the docs).

    ``*_call_s`` is charged once per call that does that kind of work, on top of
    ``rpc_floor_s`` which every call pays, failed ones included.
    """

    name: str = "odoo17"
    # Every call: common.version over /jsonrpc, median.
    rpc_floor_s: float = 0.0090
    # A read or search through an index: search_read of 1 product by default_code, 28.7 ms.
    read_call_s: float = 0.0197
    # Each record a read returns (estimate: Odoo formats ~10k small records/s).
    read_per_record_s: float = 0.0001
    # A sequential scan, per row of the table: (47 - 28.7) ms / 24.8k journal items (upper end).
    scan_per_row_s: float = 0.73e-6
    # account.move create: least-squares fit (relative) of 3-line x1/x100/x500 and 100-line x1.
    move_create_call_s: float = 0.0490
    move_create_per_move_s: float = 0.0050
    move_create_per_line_s: float = 0.00192
    # account.move action_post: same fit on the posting times.
    move_post_call_s: float = 0.0316
    move_post_per_move_s: float = 0.0071
    move_post_per_line_s: float = 0.000283
    # stock.picking create (S1p): smallest line over the 1/10/100-move measurements (second
    # measurement, busier machine) that is nowhere below them.
    picking_create_call_s: float = 0.1040
    picking_create_per_move_s: float = 0.0230
    # button_validate (S1p): same rule.
    picking_validate_call_s: float = 0.1540
    picking_validate_per_move_s: float = 0.0230
    # Other models (not measured; estimates in line with the above): create, write, unlink,
    # and any other method (action_*, wizards), per call and per record.
    create_call_s: float = 0.0200
    create_per_record_s: float = 0.0100
    write_call_s: float = 0.0150
    write_per_record_s: float = 0.0020
    unlink_call_s: float = 0.0150
    unlink_per_record_s: float = 0.0030
    action_call_s: float = 0.0200
    action_per_record_s: float = 0.0050

    @classmethod
    def named(cls, name: str) -> CostModel:
        if name not in MODELS:
            raise ValueError(f"cost model: expected one of {', '.join(MODELS)}, got {name!r}")
        return cls(name=name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # -- charges ----------------------------------------------------------------------------

    def service_call(self, service: str, method: str) -> float:
        """``common`` and ``db`` services: the floor; a login also reads the user."""
        if service == "common" and method in ("login", "authenticate"):
            return self.rpc_floor_s + self.read_call_s
        return self.rpc_floor_s

    def object_call(
        self, env: Env | None, model: str, method: str, args: list[Any], result: Any = None
    ) -> float:
        """Seconds charged for one ``object`` call (after its work, failed or not)."""
        cost = self.rpc_floor_s
        if env is None:  # failed before any work (database, credentials)
            return cost
        work = env.work
        phases = self._phases(work)
        cost += phases
        if method in READ_METHODS:
            cost += self.read_call_s + self.read_per_record_s * _count_returned(result)
        elif method == "create":
            if model not in CALIBRATED:
                created = work["create", model]
                cost += self.create_call_s + self.create_per_record_s * created
        elif method == "write":
            cost += self.write_call_s + self.write_per_record_s * _count_ids(args)
        elif method == "unlink":
            cost += self.unlink_call_s + self.unlink_per_record_s * _count_ids(args)
        elif not phases:
            cost += self.action_call_s + self.action_per_record_s * _count_ids(args)
        return cost + self._scans(env)

    def _phases(self, work: Any) -> float:
        cost = 0.0
        moves, lines = work["create", "account.move"], work["create", "account.move.line"]
        if moves or lines:
            cost += (
                self.move_create_call_s
                + self.move_create_per_move_s * moves
                + self.move_create_per_line_s * lines
            )
        posted = work["post", "account.move"]
        if posted:
            cost += (
                self.move_post_call_s
                + self.move_post_per_move_s * posted
                + self.move_post_per_line_s * work["post", "account.move.line"]
            )
        stock_moves = work["create", "stock.move"]
        if stock_moves or work["create", "stock.picking"]:
            cost += self.picking_create_call_s + self.picking_create_per_move_s * stock_moves
        done = work["done", "stock.move"]
        if done:
            cost += self.picking_validate_call_s + self.picking_validate_per_move_s * done
        return cost

    def _scans(self, env: Env) -> float:
        rows_by_model: dict[str, int] = {}
        cost = 0.0
        for model, domain in env.searched:
            if not is_scan(model, domain):
                continue
            if model not in rows_by_model:
                table = env[model]._t
                # The highest id stands for the table's size (dead rows are scanned too).
                rows_by_model[model] = int(
                    env.conn.execute(select(func.max(table.c.id))).scalar() or 0
                )
            cost += self.scan_per_row_s * rows_by_model[model]
        return cost


def _count_returned(result: Any) -> int:
    return len(result) if isinstance(result, list) else 1 if result else 0


def _count_ids(args: list[Any]) -> int:
    if not args:
        return 0
    ids = args[0]
    if isinstance(ids, list | tuple):
        return len(ids)
    return 1 if isinstance(ids, int) else 0


def _leaf_fields(domain: Any) -> list[str]:
    fields = []
    for leaf in domain if isinstance(domain, list | tuple) else ():
        if isinstance(leaf, list | tuple) and len(leaf) == 3 and isinstance(leaf[0], str):
            fields.append(leaf[0].split(".")[0])
    return fields


def is_scan(model: str, domain: Any) -> bool:
    """Does searching ``model`` with ``domain`` read the whole table on PostgreSQL?"""
    unindexed = UNINDEXED.get(model)
    if not unindexed:
        return False
    fields = _leaf_fields(domain)
    return any(f in unindexed for f in fields) and not any(f in SELECTIVE for f in fields)


# -- consuming the time -----------------------------------------------------------------------


class Charge:
    """One call's server time: what it was charged and the thread CPU time it started at."""

    def __init__(self) -> None:
        self.start = time.thread_time()
        self.seconds = 0.0

    def add(self, seconds: float) -> None:
        self.seconds += seconds

    def consume(self) -> None:
        """Burn this thread's CPU, holding the GIL, until it has used what was charged."""
        end = self.start + self.seconds
        now = time.thread_time
        handover = now() + HANDOVER_S
        while (clock := now()) < end:
            # Pure bytecode between clock reads: the GIL is held and shared at the switch
            # interval with the other request threads, like Odoo's.
            for _ in range(200):
                pass
            if clock >= handover:
                # Hand the GIL over now and then: a thread coming back from SQLite (which runs
                # without the GIL) would otherwise wait a whole switch interval for it.
                time.sleep(0)
                handover = clock + HANDOVER_S

    @property
    def used(self) -> float:
        return time.thread_time() - self.start


HANDOVER_S = 0.001
_current = threading.local()


def current() -> Charge | None:
    """The charge of the call running in this thread, if the cost model is on."""
    return getattr(_current, "charge", None)


@contextmanager
def charging() -> Iterator[Charge]:
    charge = Charge()
    _current.charge = charge
    try:
        yield charge
    finally:
        _current.charge = None


def consume_current() -> None:
    """Consume the running call's charge so far (a no-op without a cost model)."""
    charge = current()
    if charge is not None:
        charge.consume()
