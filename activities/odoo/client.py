"""The Odoo adapter: odoorpc behind a small, thread-safe client that classifies failures.

It speaks only Odoo 17's public external API (the same calls work against a real Odoo and the
project's emulator) and resolves the codes the posting profile uses (account codes, journal
codes, SKUs, the warehouse) to database ids once, caching them for the life of the worker.
"""

from __future__ import annotations

import http.client
import logging
import socket
import threading
import time
import urllib.error
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import urlsplit

import odoorpc
from odoorpc.error import RPCError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.odoo.limiter import LimiterSettings, OdooLimiter
from workers.metrics import external_call

log = logging.getLogger(__name__)

# Odoo exceptions that say "this request is wrong", not "try again later".
_BUSINESS_ERRORS = {
    "odoo.exceptions.UserError": "OdooUserError",
    "odoo.exceptions.ValidationError": "OdooValidationError",
    "odoo.exceptions.AccessError": "OdooAccessError",
    "odoo.exceptions.MissingError": "OdooMissingError",
    "builtins.ValueError": "OdooValueError",
    "builtins.TypeError": "OdooTypeError",
    "builtins.AttributeError": "OdooAttributeError",
    "builtins.KeyError": "OdooKeyError",
}
SEQUENCE_COLLISION = "Another entry with the same name already exists"
READ_METHODS = frozenset({"search", "search_read", "search_count", "read", "fields_get"})
READ_RETRIES = 3


class OdooUnavailable(Exception):
    """A transport or server fault: the call may or may not have been applied; retry it."""


@dataclass(frozen=True)
class OdooSettings:
    url: str = "http://127.0.0.1:8069"
    db: str = "retail"
    login: str = "admin"
    password: str = field(default="admin", repr=False)  # never in a repr or a log
    # Each RPC's own limit; it must stay under the activities' heartbeat timeout
    # (workflows/policies.py), so a hung call fails before Temporal retries beside it. Odoo may
    # take ~18 s to give up on a serialization failure; a large batch create takes seconds.
    timeout_s: float = 30.0
    # The adaptive limit on concurrent RPCs (activities/odoo/limiter.py).
    limiter: LimiterSettings = field(default_factory=LimiterSettings)


def heartbeat(what: str) -> None:
    """Before each RPC of an activity: tell Temporal the attempt is alive (a dead worker's attempt
    is then retried after the heartbeat timeout), and stop an attempt Temporal has already given
    up on instead of racing its retry."""
    if not activity.in_activity():
        return
    activity.heartbeat(what)
    if activity.is_cancelled():
        raise OdooUnavailable(f"attempt abandoned by Temporal before {what}")


def error_name(exc: RPCError) -> str | None:
    info = exc.info
    if isinstance(info, dict):
        data = info.get("data")
        if isinstance(data, dict):
            name = data.get("name")
            return name if isinstance(name, str) else None
    return None


def is_sequence_collision(exc: BaseException) -> bool:
    return isinstance(exc, RPCError) and SEQUENCE_COLLISION in str(exc)


def raise_classified(exc: BaseException, what: str) -> NoReturn:
    """Re-raise an odoorpc/urllib failure the way activities must see it.

    Business refusals become non-retryable ApplicationErrors typed after Odoo's exception;
    everything that may succeed on a later try (transport, HTTP 5xx, timeouts, database
    serialization, sequence-name collisions, authentication outages) is raised as retryable.
    """
    if isinstance(exc, RPCError):
        name = error_name(exc)
        if name in _BUSINESS_ERRORS and not is_sequence_collision(exc):
            raise ApplicationError(
                f"Odoo refused {what}: {exc}", type=_BUSINESS_ERRORS[name], non_retryable=True
            ) from exc
        # psycopg2 errors, AccessDenied (rotated password: fix the settings and it resumes),
        # 'Wrong login ID or password' (no info): retry with backoff, visible in the Web UI.
        raise OdooUnavailable(f"Odoo failed {what}: {name or 'RPCError'}: {exc}") from exc
    if isinstance(
        exc, urllib.error.URLError | http.client.HTTPException | ConnectionError | socket.timeout
    ):
        raise OdooUnavailable(f"Odoo unreachable during {what}: {exc!r}") from exc
    raise exc


def is_strain(exc: BaseException) -> bool:
    """Whether a failed RPC says Odoo is struggling (what raise_classified makes retryable),
    rather than refusing the request itself."""
    try:
        raise_classified(exc, "")
    except OdooUnavailable:
        return True
    except BaseException:
        return False


def call_outcome(exc: BaseException) -> str:
    """How a failed call is counted (workers/metrics.py): business_refusal (Odoo said no),
    server_error (an HTTP 5xx or a server-side fault such as a serialization failure), or
    transport (no answer)."""
    if isinstance(exc, ApplicationError):
        return "business_refusal"
    cause = exc.__cause__ if isinstance(exc, OdooUnavailable) else exc
    if isinstance(cause, RPCError):
        name = error_name(cause)
        refused = name in _BUSINESS_ERRORS and not is_sequence_collision(cause)
        return "business_refusal" if refused else "server_error"
    if isinstance(cause, urllib.error.HTTPError):
        return "server_error" if cause.code >= 500 else "transport"
    return "transport"


class OdooClient:
    """A logged-in odoorpc connection per thread, plus code → id caches shared by all threads."""

    def __init__(self, settings: OdooSettings, limiter: OdooLimiter | None = None) -> None:
        self.settings = settings
        # One per client, and the worker builds one client: shared by all its Odoo activities.
        self.limiter = limiter or OdooLimiter(settings.limiter)
        parts = urlsplit(settings.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"RETAILFLOW_ODOO_URL must be http(s)://host[:port], got {settings.url!r}"
            )
        self._host = parts.hostname
        self._ssl = parts.scheme == "https"
        self._port = parts.port or (443 if self._ssl else 80)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._accounts: dict[str, int] = {}
        self._journals: dict[str, int] = {}
        self._products: dict[str, ProductInfo] = {}
        self._stock_route: StockRoute | None = None

    # -- transport -------------------------------------------------------------------------

    def _connection(self) -> Any:
        odoo = getattr(self._local, "odoo", None)
        if odoo is None:
            odoo = odoorpc.ODOO(
                self._host,
                protocol="jsonrpc+ssl" if self._ssl else "jsonrpc",
                port=self._port,
                timeout=self.settings.timeout_s,
            )
            odoo.login(self.settings.db, self.settings.login, self.settings.password)
            self._local.odoo = odoo
        return odoo

    def _execute(self, model: str, method: str, args: tuple[Any, ...], kwargs: Any) -> Any:
        """One execute_kw within a limiter slot (OdooBusy, retryable, when none frees up in
        time); its latency and outcome adapt the limit."""
        self.limiter.acquire(f"{model}.{method}", heartbeat)
        started = time.monotonic()
        strained = True
        try:
            # Timed without the wait for a slot: the metric is Odoo's latency.
            with external_call("odoo", f"{model}.{method}", call_outcome):
                result = self._connection().execute_kw(model, method, list(args), kwargs)
            strained = False
            return result
        except Exception as e:
            strained = is_strain(e)
            raise
        finally:
            self.limiter.release(time.monotonic() - started, strained)

    def call(self, model: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """execute_kw with classified failures (see raise_classified).

        Reads are retried here a few times on transport faults: they change nothing, and a
        blip on a read should not cost a whole activity retry with its backoff.
        """
        tries = READ_RETRIES if method in READ_METHODS else 1
        for attempt in range(tries):
            heartbeat(f"{model}.{method}")
            try:
                return self._execute(model, method, args, kwargs)
            except Exception as e:
                if isinstance(e, RPCError) and error_name(e) == "odoo.exceptions.AccessDenied":
                    self._local.odoo = None  # log in again on the next try
                try:
                    raise_classified(e, f"{model}.{method}")
                except OdooUnavailable:
                    if attempt + 1 == tries:
                        raise
                    time.sleep(0.05 * 4**attempt)
        raise AssertionError("unreachable")

    def call_raw(self, model: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """execute_kw letting RPCError through, for callers that handle Odoo's answer."""
        heartbeat(f"{model}.{method}")
        try:
            return self._execute(model, method, args, kwargs)
        except RPCError:
            raise
        except Exception as e:
            raise_classified(e, f"{model}.{method}")

    def version(self) -> str:
        return str(self._connection().version)

    # -- code → id resolution ---------------------------------------------------------------

    def account_ids(self, codes: Iterable[str]) -> dict[str, int]:
        wanted = set(codes)
        missing = wanted - self._accounts.keys()
        if missing:
            rows = self.call(
                "account.account",
                "search_read",
                [("code", "in", sorted(missing))],
                fields=["code"],
            )
            found = {r["code"]: r["id"] for r in rows}
            with self._lock:
                self._accounts.update(found)
            unknown = missing - found.keys()
            if unknown:
                raise ApplicationError(
                    f"Odoo has no account with code {', '.join(sorted(unknown))} "
                    "(check the posting profile)",
                    type="UnknownAccount",
                    non_retryable=True,
                )
        return {code: self._accounts[code] for code in wanted}

    def journal_id(self, code: str) -> int:
        if code not in self._journals:
            ids = self.call("account.journal", "search", [("code", "=", code)], limit=1)
            if not ids:
                raise ApplicationError(
                    f"Odoo has no journal with code {code} (check the posting profile)",
                    type="UnknownJournal",
                    non_retryable=True,
                )
            with self._lock:
                self._journals[code] = ids[0]
        return self._journals[code]

    def products(self, skus: Iterable[str]) -> tuple[dict[str, ProductInfo], dict[str, str]]:
        """Resolve SKUs (product default_code). Returns (found, problems by SKU).

        Unknown SKUs are not cached, so a product created later is found on the next try.
        default_code is not unique in Odoo: two active products with one SKU is a problem.
        """
        wanted = set(skus)
        missing = sorted(wanted - self._products.keys())
        problems: dict[str, str] = {}
        if missing:
            rows = self.call(
                "product.product",
                "search_read",
                [("default_code", "in", missing)],
                fields=["default_code", "type", "uom_id"],
                order="id asc",
            )
            by_sku: dict[str, list[dict[str, Any]]] = {}
            for r in rows:
                by_sku.setdefault(r["default_code"], []).append(r)
            for sku in missing:
                matches = by_sku.get(sku, [])
                if not matches:
                    problems[sku] = (
                        f"unknown SKU {sku!r}: no active product has this internal reference"
                    )
                elif len(matches) > 1:
                    ids = ", ".join(str(m["id"]) for m in matches)
                    problems[sku] = (
                        f"ambiguous SKU {sku!r}: products {ids} share this internal reference"
                    )
                else:
                    m = matches[0]
                    uom = m.get("uom_id")
                    info = ProductInfo(
                        id=m["id"],
                        type=m.get("type") or "product",
                        uom_id=uom[0] if isinstance(uom, list) and uom else 1,
                    )
                    with self._lock:
                        self._products[sku] = info
        found = {sku: self._products[sku] for sku in wanted if sku in self._products}
        return found, problems

    def stock_route(self, warehouse_code: str) -> StockRoute:
        """Where sold goods leave from and go to: the warehouse's stock, to Customers."""
        if self._stock_route is None:
            rows = self.call(
                "stock.warehouse",
                "search_read",
                [("code", "=", warehouse_code)],
                fields=["lot_stock_id", "out_type_id", "in_type_id"],
                limit=1,
            )
            if not rows:
                raise ApplicationError(
                    f"Odoo has no warehouse with code {warehouse_code} (check the posting profile)",
                    type="UnknownWarehouse",
                    non_retryable=True,
                )
            customers = self.call("stock.location", "search", [("usage", "=", "customer")], limit=1)
            if not customers:
                raise ApplicationError(
                    "Odoo has no customer location", type="UnknownLocation", non_retryable=True
                )
            w = rows[0]
            route = StockRoute(
                stock_location_id=w["lot_stock_id"][0],
                customer_location_id=customers[0],
                out_type_id=w["out_type_id"][0],
                in_type_id=w["in_type_id"][0],
            )
            with self._lock:
                self._stock_route = route
        return self._stock_route


@dataclass(frozen=True)
class ProductInfo:
    id: int
    type: str
    uom_id: int

    @property
    def moves_stock(self) -> bool:
        return self.type != "service"


@dataclass(frozen=True)
class StockRoute:
    stock_location_id: int
    customer_location_id: int
    out_type_id: int
    in_type_id: int
