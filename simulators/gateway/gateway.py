"""``Gateway``: one simulated Stripe account (ledger, knobs, HTTP) to embed or run."""

from __future__ import annotations

import random
import threading
from typing import Any

from .faults import GatewayFaults
from .ledger import Ledger
from .server import GatewayHTTPServer, Stats


class Gateway:
    """A Stripe-compatible payment gateway subset backed by SQLite, serving in a background
    thread. ``db_path`` None keeps the data in memory; ``seed`` makes ids and decline draws
    reproducible."""

    def __init__(
        self,
        db_path: str | None = None,
        seed: int | None = None,
        faults: GatewayFaults | None = None,
    ) -> None:
        self.ledger = Ledger(db_path, seed=seed)
        self.faults = faults or GatewayFaults()
        self.stats_counter = Stats()
        self._seed = seed
        self._decline_lock = threading.Lock()
        self._declined: set[str] = set()
        self._decline_rate = 0.0
        self._decline_rng = random.Random(seed)
        self._server: GatewayHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- serving ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the gateway is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the gateway is not started")
        return f"http://{self._server.server_address[0]}:{self.port}"

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a background thread; returns the base URL (the SDK's API base)."""
        if self._server is not None:
            return self.url
        self._server = GatewayHTTPServer((host, port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"gateway-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def serve_forever(self, host: str = "127.0.0.1", port: int = 8090) -> None:
        """Serve in the calling thread (the CLI)."""
        self._server = GatewayHTTPServer((host, port), self)
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
        self.ledger.close()

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- data -------------------------------------------------------------------------------

    def create_payment_intent(
        self,
        intent_id: str,
        amount_cents: int,
        currency: str = "usd",
        metadata: dict[str, str] | None = None,
        created: int | None = None,
    ) -> dict[str, Any]:
        """A succeeded card payment (with its charge and balance transaction); idempotent by
        id: an id already known returns the existing payment intent unchanged."""
        return self.ledger.create_payment_intent(
            intent_id, amount_cents, currency, metadata, created
        )

    def payment_intent(self, intent_id: str) -> dict[str, Any]:
        return self.ledger.payment_intent(intent_id, ("latest_charge",))

    def refunds(
        self, payment_intent: str | None = None, charge: str | None = None
    ) -> list[dict[str, Any]]:
        """Refund objects (newest first), failed (declined) ones included."""
        return self.ledger.refunds(payment_intent, charge)

    # -- knobs ------------------------------------------------------------------------------

    def decline(self, *payment_intents: str) -> None:
        """Refunds of these payment intents are declined (HTTP 402 ``refund_declined``)."""
        with self._decline_lock:
            self._declined.update(payment_intents)

    def set_declines(
        self, payment_intents: list[str] | tuple[str, ...] = (), rate: float = 0.0
    ) -> None:
        """Replace the decline settings: these payment intents always, others at ``rate``."""
        rate = float(rate)
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within [0, 1]")
        with self._decline_lock:
            self._declined = {str(p) for p in payment_intents}
            self._decline_rate = rate

    def declines(self) -> dict[str, Any]:
        with self._decline_lock:
            return {"payment_intents": sorted(self._declined), "rate": self._decline_rate}

    def declined(self, payment_intent: str) -> bool:
        """Whether a refund of this payment intent, being made now, is declined."""
        with self._decline_lock:
            if payment_intent in self._declined:
                return True
            return self._decline_rate > 0 and self._decline_rng.random() < self._decline_rate

    def stats(self) -> dict[str, Any]:
        return self.stats_counter.snapshot()

    def reset(self) -> None:
        """Empty the account, and clear faults, declines and stats."""
        self.ledger.reset()
        self.faults = GatewayFaults()
        self.set_declines()
        self.stats_counter.clear()
