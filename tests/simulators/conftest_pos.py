"""Helpers for the POS platform simulator tests (imported explicitly by ``test_pos_*``):
a running platform, a local receiver of confirmation callbacks, command bodies, polling."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from simulators.pos import PosPlatform

SECRET = "test-secret"
PLATFORM_ID = "pos-test"
EFFECTIVE_AT = "2025-03-01T06:00:00+00:00"


@contextmanager
def running_platform(stores: int = 8, **options: Any) -> Iterator[PosPlatform]:
    options.setdefault("secret", SECRET)
    options.setdefault("platform_id", PLATFORM_ID)
    options.setdefault("seed", 1)
    pos = PosPlatform(stores=stores, **options)
    pos.start(host="127.0.0.1", port=0)
    try:
        yield pos
    finally:
        pos.stop()


def command(
    command_id: str,
    changes: list[tuple[str, str]] | None = None,
    callback_url: str | None = None,
) -> dict[str, Any]:
    """A price command body; ``changes`` are (sku, price)."""
    return {
        "command_id": command_id,
        "changes": [
            {"sku": sku, "price": price, "currency": "USD", "start": None, "end": None}
            for sku, price in (changes or [("MILK-1L", "1.49")])
        ],
        "effective_at": EFFECTIVE_AT,
        "callback_url": callback_url,
    }


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01) -> Any:
    """The first truthy value of ``predicate()``; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@dataclass(frozen=True)
class Callback:
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.raw)
        return parsed


class Receiver:
    """A tiny local HTTP server recording every POST; answers from ``statuses`` in turn
    (the last one repeats), 200 by default."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.calls: list[Callback] = []
        self.statuses = list(statuses or [200])
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.calls.append(Callback(self.path, dict(self.headers.items()), raw))
                    status = receiver.statuses[min(len(receiver.calls), len(receiver.statuses)) - 1]
                body = b"{}"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/pos/confirmations"

    def received(self) -> list[Callback]:
        with self._lock:
            return list(self.calls)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def receiving(statuses: list[int] | None = None) -> Iterator[Receiver]:
    receiver = Receiver(statuses)
    try:
        yield receiver
    finally:
        receiver.close()
