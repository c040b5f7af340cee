"""``OdooEmulator``: one emulated Odoo 17 server (database, services, HTTP) to embed or run."""

from __future__ import annotations

import threading
from typing import Any

from .database import Database
from .faults import Faults
from .rpc import Services
from .server import EmulatorHTTPServer, Stats


class OdooEmulator:
    """An Odoo 17 JSON-RPC server backed by SQLite, serving in a background thread.

    ``db_path`` None keeps the data in memory; an existing file keeps its data (it is seeded
    only when empty). ``users`` maps logins to passwords; ``admin`` is uid 2.
    """

    def __init__(
        self,
        db_path: str | None = None,
        dbname: str = "retail",
        users: dict[str, str] | None = None,
        dbs: list[str] | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.dbname = dbname
        self.database = Database(db_path)
        users = dict(users if users is not None else {"admin": "admin"})
        self.database.ensure_users(sorted(users))
        self.services = Services(self.database, dbname, users, dbs if dbs is not None else [dbname])
        self.faults = faults or Faults()
        self.stats_counter = Stats()
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        host = str(self._server.server_address[0])
        return f"http://{host}:{self.port}"

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a background thread; returns the base URL."""
        if self._server is not None:
            return self.url
        self._server = EmulatorHTTPServer((host, port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"odoo-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def serve_forever(self, host: str = "127.0.0.1", port: int = 8069) -> None:
        """Serve in the calling thread (the CLI)."""
        self._server = EmulatorHTTPServer((host, port), self)
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._server.server_close()
            self._server = None

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
        self.database.close()

    def stats(self) -> dict[str, Any]:
        return self.stats_counter.snapshot()

    def reset_stats(self) -> None:
        self.stats_counter.clear()

    def reset(self) -> None:
        """Wipe the database back to the seeded chart (users kept)."""
        self.database.reset()
        self.database.ensure_users(sorted(self.services.users))

    def __enter__(self) -> OdooEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
