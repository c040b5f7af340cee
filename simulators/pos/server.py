"""HTTP transport of the POS platform: JSON routes over a stdlib ``ThreadingHTTPServer``.

Routes (see the package docstring for the bodies):

* ``GET /v1/stores[?region=]``, ``POST /v1/stores/{id}/price-commands``,
  ``GET /v1/stores/{id}/price-commands/{command_id}``, ``GET /v1/stores/{id}/prices``;
* ``POST /v1/stores/{id}/transactions`` (ring up one sale; 201 new, 200 repeat, 409 another
  body under the same id), ``GET /v1/stores/{id}/z-report?day=D``,
  ``GET /v1/stores/{id}/transactions?day=D&limit=N&starting_after=TXN``,
  ``GET /v1/stores/{id}/transactions/{txn_id}``: the store's journal;
* ``POST /v1/stores/{id}/catalog-commands`` (202 new, 200 repeat, 409 another body under the
  same id, 400 ``{"error": "<field>: <why>"}`` on a malformed body),
  ``GET /v1/stores/{id}/catalog-commands/{command_id}``,
  ``GET /v1/stores/{id}/catalog?after_sku=&limit=``, ``GET /v1/stores/{id}/catalog/version``:
  the store's catalog (``catalog.py``);
* ``POST /_sim/stores/{id}/transactions`` (a list, bulk, online or not),
  ``PUT /_sim/stores/{id}``, ``GET /_sim/stores/{id}``, ``PUT /_sim/fleet``,
  ``GET /_sim/stats``, ``POST /_sim/reset``: run-time control for tests, demo and benchmarks.

HTTP/1.1 with keep-alive, so a client's connection pool is reused across commands.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from simulators.serving import RoutedRequestHandler, SimulatorHTTPServer

from .catalog import CatalogCommandConflict, parse_page_limit
from .errors import InvalidField, PlatformBusy, StoreOffline, UnknownCommand, UnknownStore
from .inventory import inventory_route
from .journal import TransactionConflict, UnknownTransaction, parse_day, parse_limit

if TYPE_CHECKING:
    from .platform import PosPlatform

logger = logging.getLogger(__name__)

MAX_BODY = 1 << 20
STORE = re.compile(r"^/v1/stores/([^/]+)/(prices|price-commands)(?:/([^/]+))?$")
JOURNAL = re.compile(r"^/v1/stores/([^/]+)/(transactions|z-report)$")
ONE_TXN = re.compile(r"^/v1/stores/([^/]+)/transactions/([^/]+)$")
CATALOG_COMMANDS = re.compile(r"^/v1/stores/([^/]+)/catalog-commands(?:/([^/]+))?$")
CATALOG = re.compile(r"^/v1/stores/([^/]+)/catalog(/version)?$")
INVENTORY = re.compile(
    r"^/v1/stores/([^/]+)/(inventory|availability)$|^/_sim/stores/([^/]+)/(inventory)$"
)
SIM_STORE = re.compile(r"^/_sim/stores/([^/]+)$")
SIM_TRANSACTIONS = re.compile(r"^/_sim/stores/([^/]+)/transactions$")


class _BadBody(Exception):
    """The request body is not JSON."""


class PosRequestHandler(RoutedRequestHandler):
    server: PosHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "POSPlatform/1.0"
    timeout = 60  # an idle keep-alive connection is closed after this
    # Headers and body go out in separate writes: without this, Nagle and delayed ACKs add
    # ~40 ms to every answer on a kept-alive connection.
    disable_nagle_algorithm = True
    logger = logger

    @property
    def platform(self) -> PosPlatform:
        return self.server.platform

    # -- plumbing ---------------------------------------------------------------------------

    def _body(self) -> Any:
        if self._content_length() > MAX_BODY:
            self.close_connection = True
            raise InvalidField(None, "the body is too large")
        raw = self._read_body()
        try:
            return json.loads(raw) if raw else None
        except ValueError as exc:
            raise _BadBody(str(exc)) from None

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        try:
            status, payload = self._route(method, parts.path, parse_qs(parts.query))
        except _BadBody as exc:
            status, payload = 422, {"error": f"the body is not JSON: {exc}", "field": None}
        except InvalidField as exc:
            status, payload = 422, {"error": exc.message, "field": exc.field}
        except (UnknownStore, UnknownCommand, UnknownTransaction) as exc:
            status, payload = 404, {"error": str(exc)}
        except (TransactionConflict, CatalogCommandConflict) as exc:
            status, payload = 409, {"error": str(exc)}
        except StoreOffline as exc:
            status, payload = 504, {"error": str(exc)}
        except PlatformBusy as exc:
            retry_after = {"Retry-After": f"{exc.retry_after_s:g}"}
            self._send(exc.status, {"error": str(exc)}, headers=retry_after)
            return
        except Exception as exc:
            logger.exception("%s %s", method, self.path)
            status, payload = 500, {"error": f"internal error: {exc}"}
        self._send(status, payload)

    # -- routes -----------------------------------------------------------------------------

    def _route(self, method: str, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        platform = self.platform
        if path == "/v1/stores" and method == "GET":
            region = query.get("region", [None])[-1]
            return 200, {"stores": platform.list_stores(region)}
        match = STORE.match(path)
        if match:
            store_id, resource, command_id = match.group(1), match.group(2), match.group(3)
            store_id = unquote(store_id)
            if resource == "prices" and command_id is None and method == "GET":
                return 200, platform.price_list(store_id)
            if resource == "price-commands" and command_id is None and method == "POST":
                created, view = platform.receive_command(store_id, self._body())
                return (202 if created else 200), view
            if resource == "price-commands" and command_id is not None and method == "GET":
                return 200, platform.command_status(store_id, unquote(command_id))
            return 405, {"error": f"{method} is not allowed on {path}"}
        match = CATALOG_COMMANDS.match(path)
        if match:
            return self._catalog_commands(method, path, match.group(1), match.group(2))
        match = CATALOG.match(path)
        if match:
            if method != "GET":
                return 405, {"error": f"{method} is not allowed on {path}"}
            store_id = unquote(match.group(1))
            if match.group(2):
                return 200, platform.catalog_version(store_id)
            try:
                limit = parse_page_limit(query.get("limit", [None])[-1])
            except InvalidField as exc:
                return 400, {"error": exc.message}
            after = query.get("after_sku", [None])[-1] or None
            return 200, platform.catalog_page(store_id, after, limit)
        match = INVENTORY.match(path)
        if match:
            store_id = unquote(match.group(1) or match.group(3))
            sim = match.group(3) is not None
            return inventory_route(
                platform, method, sim, match.group(2) or "inventory", store_id, query, self._body
            )
        match = JOURNAL.match(path)
        if match:
            return self._journal(method, unquote(match.group(1)), match.group(2), query)
        match = ONE_TXN.match(path)
        if match:
            if method != "GET":
                return 405, {"error": f"{method} is not allowed on {path}"}
            return 200, platform.transaction(unquote(match.group(1)), unquote(match.group(2)))
        match = SIM_TRANSACTIONS.match(path)
        if match:
            if method != "POST":
                return 405, {"error": f"{method} is not allowed on {path}"}
            return 200, platform.ring_up_many(unquote(match.group(1)), self._body())
        match = SIM_STORE.match(path)
        if match:
            store_id = unquote(match.group(1))
            if method == "GET":
                return 200, platform.store(store_id)
            if method == "PUT":
                platform.set_knobs(store_id, **_knob_changes(self._body()))
                return 200, platform.store(store_id)
            return 405, {"error": f"{method} is not allowed on {path}"}
        if path == "/_sim/fleet" and method == "PUT":
            changes = _knob_changes(self._body())
            platform.set_fleet(**changes)
            return 200, {"stores": len(platform.store_ids()), "changed": changes}
        if path == "/_sim/stats" and method == "GET":
            return 200, platform.stats()
        if path == "/_sim/reset" and method == "POST":
            platform.reset()
            return 200, {"reset": True, "stores": len(platform.store_ids())}
        if path == "/healthz" and method == "GET":
            return 200, {"ok": True, "platform_id": platform.platform_id}
        return 404, {"error": f"no route {method} {path}"}

    def _catalog_commands(
        self, method: str, path: str, store_id: str, command_id: str | None
    ) -> tuple[int, Any]:
        platform = self.platform
        store_id = unquote(store_id)
        if command_id is None and method == "POST":
            try:
                created, answer = platform.receive_catalog_command(store_id, self._body())
            except _BadBody as exc:
                return 400, {"error": f"body: not JSON: {exc}"}
            except InvalidField as exc:
                return 400, {"error": exc.message}
            return (202 if created else 200), answer
        if command_id is not None and method == "GET":
            return 200, platform.catalog_command_status(store_id, unquote(command_id))
        return 405, {"error": f"{method} is not allowed on {path}"}

    def _journal(
        self, method: str, store_id: str, resource: str, query: dict[str, list[str]]
    ) -> tuple[int, Any]:
        platform = self.platform
        if resource == "transactions" and method == "POST":
            created, view = platform.ring_up(store_id, self._body())
            return (201 if created else 200), view
        if method != "GET":
            return 405, {"error": f"{method} is not allowed on {resource}"}
        day = parse_day(query.get("day", [None])[-1])
        if resource == "z-report":
            return 200, platform.z_report(store_id, day)
        limit = parse_limit(query.get("limit", [None])[-1])
        after = query.get("starting_after", [None])[-1]
        return 200, platform.transactions(store_id, day, limit, after or None)


def _knob_changes(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidField(None, "the body must be a JSON object of knobs")
    return body


class PosHTTPServer(SimulatorHTTPServer):
    # Bursts of 100-200 concurrent senders; a larger backlog avoids refused connects.
    request_queue_size = 1024
    quiet_errors = False

    def __init__(self, address: tuple[str, int], platform: PosPlatform) -> None:
        self.platform = platform
        super().__init__(address, PosRequestHandler)
