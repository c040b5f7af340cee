"""Scaffolding the simulators share: a ``ThreadingHTTPServer`` served in a background thread
(or in the calling one), request-handler plumbing, the command line's serve loop and the
basics of fault injection."""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, ClassVar, NoReturn, Protocol, Self

logger = logging.getLogger(__name__)

# -- serving --------------------------------------------------------------------------------


class SimulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Many short connections from urllib; a larger backlog avoids refused connects in bursts.
    request_queue_size = 128
    # A client that gave up (timeout, reset) is routine here; keep stderr for real output.
    quiet_errors: ClassVar[bool] = True
    logger: ClassVar[logging.Logger] = logger

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not self.quiet_errors:
            super().handle_error(request, client_address)
            return
        self.logger.debug("request from %s failed", client_address, exc_info=True)


class ServerClass(Protocol):
    def __call__(self, address: tuple[str, int], owner: Any, /) -> ThreadingHTTPServer: ...


class BackgroundServer:
    """The serving lifecycle of a simulator: ``start`` in a daemon thread, ``serve_forever`` in
    the calling one, ``stop``, and use as a context manager.

    Subclasses name their ``server_class`` (built as ``server_class((host, port), self)``),
    ``thread_name`` and ``not_started`` (for the error before ``start``), and may override
    ``_on_serve`` (run once the server is bound) and ``_close`` (run by ``stop``).
    """

    server_class: ClassVar[ServerClass]
    thread_name: ClassVar[str]
    not_started: ClassVar[str]
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.not_started} is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{self.not_started} is not started")
        return f"http://{self._server.server_address[0]!s}:{self.port}"

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a background thread; returns the base URL."""
        if self._server is not None:
            return self.url
        server = self._server = self.server_class((host, port), self)
        self._on_serve()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.thread_name}-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def serve_forever(self, host: str, port: int) -> None:
        """Serve in the calling thread (the CLI)."""
        server = self._server = self.server_class((host, port), self)
        self._on_serve()
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            server.server_close()
            self._server = None

    def stop(self) -> None:
        """Stop serving, then release what the simulator holds (``_close``)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
        self._close()

    def _on_serve(self) -> None:
        """Called once the server is bound, before it serves."""

    def _close(self) -> None:
        """Called by ``stop`` once serving has stopped."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- request handling -----------------------------------------------------------------------


class Dropped(Exception):
    """Raised to abandon a request without answering it."""


class SimulatorRequestHandler(BaseHTTPRequestHandler):
    """Plumbing: the body in, JSON (or bytes) out, and a connection dropped unanswered."""

    logger: ClassVar[logging.Logger] = logger

    def log_message(self, format: str, *args: Any) -> None:
        self.logger.debug("%s - %s", self.address_string(), format % args)

    def _content_length(self) -> int:
        return int(self.headers.get("Content-Length") or 0)

    def _read_body(self) -> bytes:
        length = self._content_length()
        return self.rfile.read(length) if length else b""

    def _encode(self, payload: Any) -> bytes:
        return json.dumps(payload).encode()

    def _send(
        self,
        status: int,
        payload: Any,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer ``payload``: bytes as they are, anything else encoded by ``_encode``."""
        body = payload if isinstance(payload, bytes) else self._encode(payload)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _drop(self) -> NoReturn:
        """Close the connection without any response (raises ``Dropped``)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise Dropped


class RoutedRequestHandler(SimulatorRequestHandler):
    """Hands GET, POST and PUT to ``_handle(method)`` (a subclass adds other verbs)."""

    def _handle(self, method: str) -> None:
        raise NotImplementedError

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")


# -- command line ---------------------------------------------------------------------------


def comma_list(text: str) -> tuple[str, ...]:
    return tuple(filter(None, (part.strip() for part in text.split(","))))


def add_server_arguments(parser: argparse.ArgumentParser, port: int) -> None:
    """``--host``, ``--port`` and ``--db``."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument(
        "--db", default=None, help="SQLite file (kept between runs); memory if omitted"
    )


def prepare(args: argparse.Namespace) -> None:
    """Configure logging (``--log-level``) and create the folder of ``--db``."""
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.db:
        os.makedirs(os.path.dirname(os.path.abspath(args.db)), exist_ok=True)


def serve(
    simulator: BackgroundServer, host: str, port: int, name: str, banner: str, *args: object
) -> int:
    """Log ``banner % args`` to logger ``name``, serve in the calling thread until SIGINT or
    SIGTERM, then ``stop``."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    logging.getLogger(name).info(banner, *args)
    try:
        simulator.serve_forever(host, port)
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()
    return 0


# -- fault injection ------------------------------------------------------------------------

FAULT_KINDS = ("transport", "http_500", "lost_response")


class FaultSettings:
    """What the fault dataclasses share: validation of the common settings and the random
    source (seeded by ``seed``) their draws use under ``_lock``."""

    latency_ms: float
    error_rate: float
    kinds: tuple[str, ...]
    seed: int | None
    _rng: random.Random
    _lock: threading.Lock

    def _check_and_seed(self) -> None:
        unknown = [k for k in self.kinds if k not in FAULT_KINDS]
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; expected some of {FAULT_KINDS}")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("error_rate must be within [0, 1]")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    @staticmethod
    def _known_settings(data: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
        """A copy of ``data``; ValueError if it names a setting not in ``allowed``."""
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault settings {sorted(unknown)}")
        return dict(data)
