"""``Gateway``: one simulated Stripe account (ledger, knobs, HTTP) to embed or run."""

from __future__ import annotations

import random
import threading
from typing import Any

from simulators.serving import BackgroundServer

from .faults import GatewayFaults
from .ledger import Ledger
from .server import GatewayHTTPServer, Stats


class Gateway(BackgroundServer):
    """A Stripe-compatible payment gateway subset backed by SQLite, serving in a background
    thread (``start`` returns the base URL: the SDK's API base). ``db_path`` None keeps the
    data in memory; ``seed`` makes ids and decline draws reproducible."""

    server_class = GatewayHTTPServer
    thread_name = "gateway"
    not_started = "the gateway"

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

    # -- serving ----------------------------------------------------------------------------

    def serve_forever(self, host: str = "127.0.0.1", port: int = 8090) -> None:
        """Serve in the calling thread (the CLI)."""
        super().serve_forever(host, port)

    def _close(self) -> None:
        self.ledger.close()

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
