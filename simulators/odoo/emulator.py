"""``OdooEmulator``: one emulated Odoo 17 server (database, services, HTTP) to embed or run."""

from __future__ import annotations

from typing import Any

from simulators.serving import BackgroundServer

from .concurrency import Concurrency
from .cost import CostModel
from .database import Database
from .faults import Faults
from .rpc import Services
from .server import EmulatorHTTPServer, Stats


class OdooEmulator(BackgroundServer):
    """An Odoo 17 JSON-RPC server backed by SQLite, serving in a background thread.

    ``db_path`` None keeps the data in memory; an existing file keeps its data (it is seeded
    only when empty). ``users`` maps logins to passwords; ``admin`` is uid 2.
    ``concurrency``: ``"serial"`` (default: one call at a time) or ``"postgres"`` (calls
    interleave, commits land out of id order, colliding writers get PostgreSQL's
    serialization failure), or a ``Concurrency`` with its delays and seed.
    ``cost_model``: None (default: calls answer as fast as the emulator can), ``"odoo17"``
    or a ``CostModel``: each call uses the server time a real Odoo 17 would (see ``cost``).
    """

    server_class = EmulatorHTTPServer
    thread_name = "odoo-emulator"
    not_started = "the emulator"

    def __init__(
        self,
        db_path: str | None = None,
        dbname: str = "retail",
        users: dict[str, str] | None = None,
        dbs: list[str] | None = None,
        faults: Faults | None = None,
        concurrency: str | Concurrency = "serial",
        cost_model: str | CostModel | None = None,
    ) -> None:
        self.dbname = dbname
        if isinstance(concurrency, str):
            concurrency = Concurrency(mode=concurrency)
        self.database = Database(db_path, concurrency)
        users = dict(users if users is not None else {"admin": "admin"})
        self.database.ensure_users(sorted(users))
        if isinstance(cost_model, str):
            cost_model = CostModel.named(cost_model)
        self.cost_model = cost_model
        self.services = Services(
            self.database, dbname, users, dbs if dbs is not None else [dbname], cost_model
        )
        self.faults = faults or Faults()
        self.stats_counter = Stats()

    def serve_forever(self, host: str = "127.0.0.1", port: int = 8069) -> None:
        """Serve in the calling thread (the CLI)."""
        super().serve_forever(host, port)

    def _close(self) -> None:
        self.database.close()

    def stats(self) -> dict[str, Any]:
        return {
            **self.stats_counter.snapshot(),
            "cost_model": self.cost_model.name if self.cost_model else None,
            # What committed calls did, e.g. "post account.move": entries posted.
            "work": {
                f"{kind} {model}": n for (kind, model), n in sorted(self.services.work.items())
            },
            # Answered to clients / lost by an attempt (some then retried).
            "serialization_failures": self.database.ledger.failures,
            "write_conflicts": self.database.ledger.conflicts_lost,
        }

    def reset_stats(self) -> None:
        self.stats_counter.clear()
        self.services.work.clear()

    def reset(self) -> None:
        """Wipe the database back to the seeded chart (users kept)."""
        self.database.reset()
        self.database.ensure_users(sorted(self.services.users))
