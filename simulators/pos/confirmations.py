"""Delivery of signed confirmation callbacks from a small pool of threads.

Each delivery is retried on a connection error or a 5xx (up to ``retries`` more attempts,
with a short exponential backoff); a 2xx is delivered, a 4xx (or 3xx) is final. Every
attempt is signed afresh, so a retried callback carries a current timestamp.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from .signing import sign

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Confirmation:
    """One callback to deliver; ``body`` is the JSON object sent."""

    url: str
    store_id: str
    command_id: str
    body: dict[str, Any]
    epoch: int = 0


class ConfirmationSender:
    """Sends confirmations; calls ``on_done(confirmation, delivered)`` after the last attempt,
    with ``delivered`` None when ``stop()`` cut the retries short (it is still to be sent)."""

    def __init__(
        self,
        secret: str,
        platform_id: str,
        on_done: Callable[[Confirmation, bool | None], None],
        workers: int = 8,
        timeout_s: float = 5.0,
        retries: int = 3,
        backoff_s: float = 0.1,
    ) -> None:
        self.secret = secret
        self.platform_id = platform_id
        self._on_done = on_done
        self._workers = workers
        self._timeout_s = timeout_s
        self._retries = retries
        self._backoff_s = backoff_s
        self._stopping = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        # One client per sending thread: a shared connection pool's lock costs more than it
        # saves when every thread sends all the time.
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def start(self) -> None:
        if self._pool is not None:
            return
        self._stopping.clear()
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="pos-confirm")

    def stop(self) -> None:
        """Drop what is queued, let what is being sent finish (no more retries), close."""
        self._stopping.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            clients, self._clients = self._clients, []
            self._in_flight = 0
        for client in clients:
            client.close()
        self._pool = None
        self._local = threading.local()

    def send(self, confirmation: Confirmation) -> None:
        if self._pool is None:
            raise RuntimeError("the confirmation sender is not started")
        with self._lock:
            self._in_flight += 1
        self._pool.submit(self._deliver, confirmation)

    def headers(self, body: bytes, timestamp: int) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "X-POS-Platform": self.platform_id,
            "X-POS-Timestamp": str(timestamp),
            "X-POS-Signature": sign(self.secret, timestamp, body),
        }

    def _thread_client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(timeout=self._timeout_s)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _deliver(self, confirmation: Confirmation) -> None:
        delivered: bool | None = False
        try:
            delivered = self._attempts(confirmation)
        except Exception:
            logger.exception("confirmation %s/%s", confirmation.store_id, confirmation.command_id)
        finally:
            with self._lock:
                self._in_flight -= 1
            self._on_done(confirmation, delivered)

    def _attempts(self, confirmation: Confirmation) -> bool | None:
        """True delivered, False refused or out of retries, None cut short by ``stop()``."""
        body = json.dumps(confirmation.body, separators=(",", ":")).encode()
        for attempt in range(self._retries + 1):
            if attempt and self._stopping.wait(self._backoff_s * 2 ** (attempt - 1)):
                return None
            if self._stopping.is_set():
                return None
            headers = self.headers(body, int(time.time()))
            try:
                response = self._thread_client().post(
                    confirmation.url, content=body, headers=headers
                )
            except httpx.HTTPError as exc:
                logger.debug("confirmation to %s failed: %s", confirmation.url, exc)
                continue
            if response.is_success:
                return True
            if response.status_code < 500:
                logger.info(
                    "confirmation to %s refused with HTTP %s",
                    confirmation.url,
                    response.status_code,
                )
                return False
        return False
