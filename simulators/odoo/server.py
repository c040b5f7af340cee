"""HTTP transport: Odoo's JSON-RPC endpoints, the admin endpoints and fault injection.

Routes:

* ``POST /web/webclient/version_info`` and ``POST /jsonrpc`` (services common/db/object),
  JSON-RPC 2.0 envelopes; server errors are HTTP 200 with Odoo's ``error`` member;
* ``POST /web/session/authenticate`` (enough for a login check);
* ``GET``/``PUT /_emulator/faults``, ``GET``/``DELETE /_emulator/stats``,
  ``POST /_emulator/reset``: run-time control (see the package docstring).

A dropped connection is a real one: the socket is shut down without a byte of response, so
urllib (and odoorpc above it) raises ``http.client.RemoteDisconnected``, not a JSON-RPC error.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from simulators.serving import Dropped, SimulatorHTTPServer, SimulatorRequestHandler

from . import cost
from .exceptions import AccessDenied, serialize_exception
from .faults import Faults
from .rpc import VERSION_INFO

if TYPE_CHECKING:
    from .emulator import OdooEmulator

logger = logging.getLogger(__name__)


class Stats:
    """Counters of calls and injected faults, safe across request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        self.calls = 0
        self.object_calls = 0
        self.errors = 0
        self.by_method: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        # Cost model: server seconds charged, and the thread CPU the calls really used.
        self.server_time_s = 0.0
        self.server_cpu_s = 0.0
        self.server_time_by_method: dict[str, float] = {}

    def record_call(self, service: str, method: str, target: str | None) -> None:
        with self._lock:
            self.calls += 1
            if service == "object":
                self.object_calls += 1
            self.by_method[target or f"{service}.{method}"] += 1

    def record_fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def record_cost(self, target: str, charged: float, used: float) -> None:
        with self._lock:
            self.server_time_s += charged
            self.server_cpu_s += used
            self.server_time_by_method[target] = (
                self.server_time_by_method.get(target, 0.0) + charged
            )

    def record_error(self) -> None:
        with self._lock:
            self.errors += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": self.calls,
                "object_calls": self.object_calls,
                "errors": self.errors,
                "by_method": dict(self.by_method),
                "faults": {
                    kind: self.faults.get(kind, 0)
                    for kind in ("transport", "http_500", "lost_response")
                },
                "faults_total": sum(self.faults.values()),
                "server_time_s": round(self.server_time_s, 6),
                "server_cpu_s": round(self.server_cpu_s, 6),
                "server_time_by_method": {
                    k: round(v, 6)
                    for k, v in sorted(self.server_time_by_method.items(), key=lambda kv: -kv[1])
                },
            }


def json_default(value: Any) -> Any:
    """Odoo's ``json_default``: dates as server strings, sets as lists."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


class OdooRequestHandler(SimulatorRequestHandler):
    server: EmulatorHTTPServer
    protocol_version = "HTTP/1.0"
    server_version = "Werkzeug/3.0.1"
    sys_version = "Python/3.11"
    logger = logger

    # -- plumbing ---------------------------------------------------------------------------

    def _read_json(self) -> Any:
        return json.loads(self._read_body() or b"{}")

    def _encode(self, payload: Any) -> bytes:
        return json.dumps(payload, default=json_default).encode()

    def _http_500(self) -> None:
        body = (
            b"<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n"
            b"<h1>Internal Server Error</h1>\n<p>The server encountered an internal error and was "
            b"unable to complete your request.</p>\n"
        )
        self._send(500, body, "text/html; charset=utf-8")

    @property
    def emulator(self) -> OdooEmulator:
        return self.server.emulator

    # -- routes -----------------------------------------------------------------------------

    def do_POST(self) -> None:
        try:
            self._post()
        except Dropped:
            pass
        except ValueError as exc:  # not JSON
            self._send(400, {"error": f"invalid JSON-RPC request: {exc}"})

    def _post(self) -> None:
        if self.path == "/jsonrpc":
            self._jsonrpc()
        elif self.path == "/web/webclient/version_info":
            request = self._read_json()
            self._send(
                200, {"jsonrpc": "2.0", "id": request.get("id"), "result": dict(VERSION_INFO)}
            )
        elif self.path == "/web/session/authenticate":
            self._authenticate()
        elif self.path == "/_emulator/reset":
            self.emulator.reset()
            self._send(200, {"reset": True})
        else:
            self._send(404, b"<h1>Not Found</h1>", "text/html; charset=utf-8")

    def do_GET(self) -> None:
        if self.path == "/_emulator/faults":
            self._send(200, self.emulator.faults.to_dict())
        elif self.path == "/_emulator/stats":
            self._send(200, self.emulator.stats())
        elif self.path in ("/web/webclient/version_info", "/web/health"):
            self._send(200, dict(VERSION_INFO))
        else:
            self._send(404, b"<h1>Not Found</h1>", "text/html; charset=utf-8")

    def do_PUT(self) -> None:
        if self.path != "/_emulator/faults":
            self._send(404, b"<h1>Not Found</h1>", "text/html; charset=utf-8")
            return
        try:
            update = self._read_json()
            merged = {**self.emulator.faults.to_dict(), **update}
            if "kinds" in update and "fault_mix" not in update:
                merged["fault_mix"] = None
            self.emulator.faults = Faults.from_dict(merged)
        except (ValueError, TypeError) as exc:
            self._send(400, {"error": str(exc)})
            return
        self._send(200, self.emulator.faults.to_dict())

    def do_DELETE(self) -> None:
        if self.path == "/_emulator/stats":
            self.emulator.reset_stats()
            self._send(200, self.emulator.stats())
        else:
            self._send(404, b"<h1>Not Found</h1>", "text/html; charset=utf-8")

    def _authenticate(self) -> None:
        request = self._read_json()
        params = request.get("params") or {}
        services = self.emulator.services
        try:
            uid = services.common(
                "authenticate", [params.get("db"), params.get("login"), params.get("password")]
            )
            if not uid:
                raise AccessDenied()
            result = {
                "uid": uid,
                "db": params.get("db"),
                "username": params.get("login"),
                "user_context": {"lang": "en_US", "tz": False, "uid": uid},
                "company_id": 1,
                "server_version": VERSION_INFO["server_version"],
                "server_version_info": VERSION_INFO["server_version_info"],
            }
            self._send(200, {"jsonrpc": "2.0", "id": request.get("id"), "result": result})
        except Exception as exc:
            self._send(
                200, {"jsonrpc": "2.0", "id": request.get("id"), "error": serialize_exception(exc)}
            )

    def _jsonrpc(self) -> None:
        request = self._read_json()
        params = request.get("params") or {}
        service, method = params.get("service"), params.get("method")
        args = list(params.get("args") or [])
        target = None
        if service == "object" and len(args) > 4:
            target = f"{args[3]}.{args[4]}"
        emulator = self.emulator
        faults = emulator.faults
        emulator.stats_counter.record_call(str(service), str(method), target)
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000.0)
        # res.users.context_get is the second half of odoorpc's login: logins are spared.
        faultable = target is not None and target != "res.users.context_get"
        fault = faults.draw(str(args[4]), target) if faultable else None
        if fault:
            emulator.stats_counter.record_fault(fault)
        if fault == "transport":
            self._drop()
        if fault == "http_500":
            self._http_500()
            return
        response = self._dispatch(request, str(service), str(method), args, target)
        if fault == "lost_response":
            # The transaction is committed: the work is done, only the answer is lost.
            self._drop()
        self._send(200, response)

    def _dispatch(
        self, request: Any, service: str, method: str, args: list[Any], target: str | None
    ) -> dict[str, Any]:
        """Run the call; with a cost model, answer only once its server time is used."""
        emulator = self.emulator
        model = emulator.cost_model
        if model is None:
            return self._answer(request, service, method, args)
        with cost.charging() as charge:
            if service != "object":
                charge.add(model.service_call(service, method))
            response = self._answer(request, service, method, args)
            charge.seconds = max(charge.seconds, model.rpc_floor_s)
            charge.consume()
            emulator.stats_counter.record_cost(
                target or f"{service}.{method}", charge.seconds, charge.used
            )
        return response

    def _answer(self, request: Any, service: str, method: str, args: list[Any]) -> dict[str, Any]:
        emulator = self.emulator
        try:
            result = emulator.services.dispatch(service, method, args)
            return {"jsonrpc": "2.0", "id": request.get("id"), "result": result}
        except Exception as exc:
            emulator.stats_counter.record_error()
            return {"jsonrpc": "2.0", "id": request.get("id"), "error": serialize_exception(exc)}


class EmulatorHTTPServer(SimulatorHTTPServer):
    logger = logger

    def __init__(self, address: tuple[str, int], emulator: OdooEmulator) -> None:
        self.emulator = emulator
        super().__init__(address, OdooRequestHandler)
