"""HTTP transport: Stripe's ``/v1`` routes, the ``/_sim`` admin routes and fault injection.

A dropped connection is a real one: the socket is shut down without a byte of response, so
the SDK's HTTP client raises a connection error (``stripe.APIConnectionError``, which it
retries with the same ``Idempotency-Key`` when ``max_network_retries`` allows).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from simulators.serving import Dropped, RoutedRequestHandler, SimulatorHTTPServer

from .errors import StripeError
from .faults import FAULT_KINDS, GatewayFaults
from .ledger import Reply
from .wire import API_VERSION, decode_form

if TYPE_CHECKING:
    from .gateway import Gateway

logger = logging.getLogger(__name__)

_ID = r"([^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"^/v1/payment_intents/search$"), "search_payment_intents"),
    ("GET", re.compile(rf"^/v1/payment_intents/{_ID}$"), "get_payment_intent"),
    ("GET", re.compile(rf"^/v1/charges/{_ID}$"), "get_charge"),
    ("POST", re.compile(r"^/v1/refunds$"), "create_refund"),
    ("GET", re.compile(r"^/v1/refunds$"), "list_refunds"),
    ("GET", re.compile(rf"^/v1/refunds/{_ID}$"), "get_refund"),
    ("GET", re.compile(r"^/v1/balance_transactions$"), "list_balance_transactions"),
    ("GET", re.compile(r"^/v1/payouts$"), "list_payouts"),
    ("GET", re.compile(r"^/v1/events$"), "list_events"),
    ("GET", re.compile(rf"^/v1/events/{_ID}$"), "get_event"),
    ("GET", re.compile(rf"^/v1/payouts/{_ID}$"), "get_payout"),
]


class Stats:
    """Counters of requests, refunds, replays, faults and declines, safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self.counts: Counter[str] = Counter()
            self.faults: Counter[str] = Counter()
            self.errors: Counter[str] = Counter()

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] += n

    def fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def error(self, code: str) -> None:
        with self._lock:
            self.errors[code] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.counts["requests"],
                "refunds_created": self.counts["refunds_created"],
                "idempotent_replays": self.counts["idempotent_replays"],
                "declines": self.counts["declines"],
                "faults": {kind: self.faults.get(kind, 0) for kind in FAULT_KINDS},
                "faults_total": sum(self.faults.values()),
                "errors": dict(self.errors),
            }


_FAIL_REFUND = re.compile(rf"^/_sim/refunds/{_ID}/fail$")


class GatewayRequestHandler(RoutedRequestHandler):
    server: GatewayHTTPServer
    protocol_version = "HTTP/1.0"
    server_version = "nginx"
    sys_version = ""
    logger = logger

    @property
    def gateway(self) -> Gateway:
        return self.server.gateway

    # -- plumbing ---------------------------------------------------------------------------

    def _encode(self, payload: Any) -> bytes:
        return json.dumps(payload, indent=2).encode()

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        split = urlsplit(self.path)
        path = split.path.rstrip("/") or "/"
        try:
            body = self._read_body()
            if path.startswith("/_sim/"):
                self._admin(method, path, body)
            else:
                self._api(method, path, split.query, body)
        except Dropped:
            pass

    # -- Stripe API -------------------------------------------------------------------------

    def _api(self, method: str, path: str, query: str, body: bytes) -> None:
        gateway = self.gateway
        stats = gateway.stats_counter
        stats.add("requests")
        request_id = gateway.ledger.new_id("req_")[:18]
        headers = {"Request-Id": request_id, "Stripe-Version": API_VERSION}
        key = self.headers.get("Idempotency-Key") if method == "POST" else None
        if key:
            headers["Idempotency-Key"] = key
        try:
            self._authenticate()
            faults = gateway.faults
            fault = faults.draw(method, path)
            if fault:
                stats.fault(fault)
            if fault == "transport":
                self._drop()
            if fault == "http_500":
                raise StripeError(
                    500, "api_error", "An unknown error occurred while processing your request."
                )
            try:
                params = decode_form(query if method != "POST" else body.decode())
            except (ValueError, UnicodeDecodeError) as exc:
                raise StripeError(
                    400, "invalid_request_error", f"Invalid request body: {exc}"
                ) from None
            with gateway.ledger.claim(key):
                if faults.latency_ms and faults.applies(method, path):
                    time.sleep(faults.latency_ms / 1000.0)
                reply = self._route(method, path, params, key)
        except StripeError as exc:
            stats.error(exc.code or exc.type)
            self._send(exc.status, exc.body(), headers=headers)
            return
        if reply.replayed:
            stats.add("idempotent_replays")
            headers["Idempotent-Replayed"] = "true"
            headers["Original-Request"] = reply.request_id
        elif method == "POST" and reply.status == 200:
            stats.add("refunds_created")
        if reply.status == 402 and not reply.replayed:
            stats.add("declines")
        if reply.status >= 400:
            stats.error(str(reply.body["error"].get("code") or reply.body["error"]["type"]))
        if fault == "lost_response":
            # Committed and stored: only the answer is lost.
            self._drop()
        self._send(reply.status, reply.body, headers=headers)

    def _authenticate(self) -> None:
        auth = self.headers.get("Authorization") or ""
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "basic":
            try:
                token = base64.b64decode(token).decode().partition(":")[0]
            except (binascii.Error, ValueError):
                token = ""
        elif scheme.lower() != "bearer":
            token = ""
        token = token.strip()
        if not token:
            raise StripeError(
                401,
                "authentication_error",
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth "
                "(e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        if not token.startswith("sk_test_"):
            shown = token[:8] + "*" * 12 + token[-4:] if len(token) > 12 else "****"
            raise StripeError(401, "authentication_error", f"Invalid API Key provided: {shown}")

    def _route(self, method: str, path: str, params: dict[str, Any], key: str | None) -> Reply:
        ledger = self.gateway.ledger
        found = next(
            (
                (name, m)
                for verb, pattern, name in ROUTES
                if verb == method and (m := pattern.match(path))
            ),
            None,
        )
        if found is None:
            raise StripeError(
                404,
                "invalid_request_error",
                f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
                "or we can help at https://support.stripe.com/.",
            )
        name, match = found
        arg = match.group(1) if match.groups() else ""
        expand = tuple(params.get("expand") or ())
        if name == "create_refund":
            return ledger.idempotent(
                key,
                method,
                path,
                params,
                lambda s: ledger.create_refund(s, params, self.gateway.declined),
            )
        if name == "search_payment_intents":
            result = ledger.search_payment_intents(params)
        elif name == "get_payment_intent":
            result = ledger.payment_intent(arg, expand)
        elif name == "get_charge":
            result = ledger.charge(arg, expand)
        elif name == "list_refunds":
            result = ledger.list_refunds(params)
        elif name == "get_refund":
            result = ledger.refund(arg)
        elif name == "list_balance_transactions":
            result = ledger.list_balance_transactions(params)
        elif name == "list_payouts":
            result = ledger.list_payouts(params)
        elif name == "list_events":
            result = ledger.list_events(params)
        elif name == "get_event":
            result = ledger.event(arg)
        else:
            result = ledger.payout(arg)
        return Reply(200, result, "")

    # -- admin ------------------------------------------------------------------------------

    def _admin(self, method: str, path: str, body: bytes) -> None:
        gateway = self.gateway
        try:
            data = json.loads(body or b"{}")
            if method == "POST" and path == "/_sim/payment_intents":
                intent = gateway.create_payment_intent(
                    str(data["id"]),
                    amount_cents=int(data["amount"]),
                    currency=str(data.get("currency", "usd")),
                    metadata=data.get("metadata"),
                    created=data.get("created"),
                )
                self._send(200, intent)
            elif path == "/_sim/faults" and method == "GET":
                self._send(200, gateway.faults.to_dict())
            elif path == "/_sim/faults" and method == "PUT":
                gateway.faults = GatewayFaults.from_dict({**gateway.faults.to_dict(), **data})
                self._send(200, gateway.faults.to_dict())
            elif path == "/_sim/declines" and method == "GET":
                self._send(200, gateway.declines())
            elif path == "/_sim/declines" and method == "PUT":
                gateway.set_declines(
                    payment_intents=data.get("payment_intents", []), rate=data.get("rate", 0.0)
                )
                self._send(200, gateway.declines())
            elif method == "POST" and (m := _FAIL_REFUND.match(path)):
                events = gateway.fail_refund(
                    m.group(1), str(data.get("failure_reason", "lost_or_stolen_card"))
                )
                self._send(200, {"events": events})
            elif path == "/_sim/idempotency" and method == "GET":
                self._send(200, {"ttl_s": gateway.idempotency_ttl_s})
            elif path == "/_sim/idempotency" and method == "PUT":
                if "ttl_s" in data:
                    gateway.idempotency_ttl_s = float(data["ttl_s"])
                if data.get("expire_now"):
                    gateway.ledger.expire_idempotency_keys(0)
                self._send(200, {"ttl_s": gateway.idempotency_ttl_s})
            elif path == "/_sim/webhook" and method == "GET":
                self._send(200, {"url": gateway.webhook_url})
            elif path == "/_sim/webhook" and method == "PUT":
                gateway.webhook_url = data.get("url") or None
                if data.get("secret"):
                    gateway.webhook_secret = str(data["secret"])
                self._send(200, {"url": gateway.webhook_url})
            elif path == "/_sim/stats" and method == "GET":
                self._send(200, gateway.stats())
            elif path == "/_sim/stats" and method == "DELETE":
                gateway.stats_counter.clear()
                self._send(200, gateway.stats())
            elif path == "/_sim/reset" and method == "POST":
                gateway.reset()
                self._send(200, {"reset": True})
            else:
                self._send(404, {"error": f"no admin route {method} {path}"})
        except (ValueError, TypeError, KeyError) as exc:
            self._send(400, {"error": f"{type(exc).__name__}: {exc}"})


class GatewayHTTPServer(SimulatorHTTPServer):
    logger = logger

    def __init__(self, address: tuple[str, int], gateway: Gateway) -> None:
        self.gateway = gateway
        super().__init__(address, GatewayRequestHandler)
