"""``Gateway``: one simulated Stripe account (ledger, knobs, HTTP) to embed or run."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from simulators.serving import BackgroundServer

from .faults import GatewayFaults
from .ledger import IDEMPOTENCY_TTL_S, Ledger
from .server import GatewayHTTPServer, Stats


class Gateway(BackgroundServer):
    """A Stripe-compatible payment gateway subset backed by SQLite, serving in a background
    thread (``start`` returns the base URL: the SDK's API base). ``db_path`` None keeps the
    data in memory; ``seed`` makes ids and decline draws reproducible; ``idempotency_ttl_s``
    is how long idempotency keys are kept (Stripe: 24 h). ``webhook_url`` receives events
    (a refund failing later) signed as Stripe signs them, with ``webhook_secret``."""

    server_class = GatewayHTTPServer
    thread_name = "gateway"
    logger = logging.getLogger(__name__)
    not_started = "the gateway"

    def __init__(
        self,
        db_path: str | None = None,
        seed: int | None = None,
        faults: GatewayFaults | None = None,
        idempotency_ttl_s: float = IDEMPOTENCY_TTL_S,
        webhook_url: str | None = None,
        webhook_secret: str = "whsec_retailflow",
    ) -> None:
        self.ledger = Ledger(db_path, seed=seed, idempotency_ttl_s=idempotency_ttl_s)
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
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

    def fail_refund(
        self, refund_id: str, failure_reason: str = "lost_or_stolen_card"
    ) -> list[dict[str, Any]]:
        """Make a succeeded refund fail now, as Stripe does days after the fact (the card was
        closed): the money is back on the account, the charge can be refunded again, and the
        events ``charge.refund.updated`` and ``refund.failed`` are listed by ``GET /v1/events``
        and sent to the webhook when one is set. Returns the events."""
        events = self.ledger.fail_refund(refund_id, failure_reason)
        for event in events:
            self.deliver(event)
        return events

    def fail_payout(
        self, payout_id: str, failure_code: str = "account_closed"
    ) -> list[dict[str, Any]]:
        """The bank returns a payout already sent (in transit or paid), as Stripe reports days
        later: it turns ``failed`` with ``failure_code``, a ``payout_failure`` balance
        transaction gives the money back, and the event ``payout.failed`` is listed by
        ``GET /v1/events`` and sent to the webhook when one is set. Returns the events."""
        events = self.ledger.fail_payout(payout_id, failure_code)
        for event in events:
            self.deliver(event)
        return events

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        return self.ledger.events(kind)

    def deliver(self, event: dict[str, Any]) -> int | None:
        """POST one event to the webhook, signed like Stripe (``Stripe-Signature: t=..,v1=..``,
        an HMAC-SHA256 of ``{t}.{payload}`` with the endpoint secret). Returns the HTTP status,
        or None when there is no webhook or it could not be reached (the event stays listed)."""
        if not self.webhook_url:
            return None
        payload = json.dumps(event).encode()
        request = urllib.request.Request(
            self.webhook_url,
            data=payload,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": self.signature(payload),
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            with exc:
                return int(exc.code)
        except (urllib.error.URLError, OSError) as exc:
            self.logger.warning(
                "webhook %s unreachable for %s: %s", self.webhook_url, event["id"], exc
            )
            return None

    def signature(self, payload: bytes, timestamp: int | None = None) -> str:
        t = int(time.time()) if timestamp is None else timestamp
        mac = hmac.new(
            self.webhook_secret.encode(), f"{t}.".encode() + payload, hashlib.sha256
        ).hexdigest()
        return f"t={t},v1={mac}"

    # -- knobs ------------------------------------------------------------------------------

    @property
    def idempotency_ttl_s(self) -> float:
        return self.ledger.idempotency_ttl_s

    @idempotency_ttl_s.setter
    def idempotency_ttl_s(self, value: float) -> None:
        if float(value) < 0:
            raise ValueError("idempotency_ttl_s must be >= 0")
        self.ledger.idempotency_ttl_s = float(value)

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
        self.ledger.idempotency_ttl_s = IDEMPOTENCY_TTL_S
        self.faults = GatewayFaults()
        self.set_declines()
        self.stats_counter.clear()
